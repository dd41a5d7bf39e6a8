import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_WINDOWS } from '../../services/key-api/key-cache';
import { recordFigures } from '../support/figures';
import { errorCode, keyApi, signUpAndSignIn, type TestUser, userApi } from '../support/local-stack';
import { sleep } from '../support/wait';

interface Issued {
  id: string;
  key: string;
}

/** How often the test asks key-api whether a revoked key still works. */
const POLL_MS = 100;

describe('revocation bound: a revoked key stops working within the fresh window (10 s)', () => {
  let owner: TestUser;
  beforeAll(async () => {
    owner = await signUpAndSignIn('revoker');
  });

  const create = async (name: string) => {
    const response = await userApi(owner.idToken, 'POST', '/keys', { name });
    expect(response.status).toBe(201);
    return response.body as Issued;
  };
  const check = async (key: string) => keyApi({ method: 'GET', headers: { 'x-api-key': key } });

  it('measures, through user-api and the local ALB, how long each revoked key keeps working', async () => {
    const [warmedEarly, warmedLast, hot, neverChecked] = await Promise.all(
      ['warmed 5 s before', 'warmed just before', 'hot', 'never checked'].map(create),
    );
    if (!warmedEarly || !warmedLast || !hot || !neverChecked) throw new Error('keys missing');

    expect((await check(warmedEarly.key)).status).toBe(200);
    await sleep(5000);
    expect((await check(warmedLast.key)).status).toBe(200);
    expect((await check(hot.key)).status).toBe(200);

    // The hot key is used without pause throughout; its 200s after revocation are billable.
    let hotting = true;
    let hotAcceptedAfterRevoke = 0;
    let revokedAt = Number.POSITIVE_INFINITY;
    const hotTraffic = (async () => {
      while (hotting) {
        const response = await check(hot.key);
        if (response.status === 200 && Date.now() > revokedAt) hotAcceptedAfterRevoke++;
        await sleep(20);
      }
    })();

    // Revoke all four at once; each DELETE's answer starts its own clock.
    const measure = async (issued: Issued) => {
      const revoked = await userApi(owner.idToken, 'DELETE', `/keys/${issued.id}`);
      expect(revoked.status).toBe(200);
      expect((revoked.body as { status: string }).status).toBe('revoked');
      const since = Date.now();
      revokedAt = Math.min(revokedAt, since);
      let accepted = 0;
      while (Date.now() - since < DEFAULT_WINDOWS.freshMs + 5000) {
        const response = await check(issued.key);
        if (errorCode(response) === 'revoked_key')
          return { refusedAfterMs: Date.now() - since, acceptedAfter: accepted };
        expect(response.status, `${issued.id} answered ${response.status}`).toBe(200);
        accepted++;
        await sleep(POLL_MS);
      }
      throw new Error(`${issued.id} still works ${DEFAULT_WINDOWS.freshMs + 5000} ms after revocation`);
    };
    const [early, last, hotResult, never] = await Promise.all(
      [warmedEarly, warmedLast, hot, neverChecked].map(measure),
    );
    hotting = false;
    await hotTraffic;
    if (!early || !last || !hotResult || !never) throw new Error('no measurement');

    // The bound: the fresh window, plus one poll and one round trip of slack for the measuring.
    const bound = DEFAULT_WINDOWS.freshMs + POLL_MS + 400;
    for (const r of [early, last, hotResult, never]) expect(r.refusedAfterMs).toBeLessThanOrEqual(bound);
    expect(never.refusedAfterMs).toBeLessThan(500); // nothing cached: refused at once
    expect(early.refusedAfterMs).toBeLessThan(last.refusedAfterMs); // its cached answer was older

    await recordFigures('revocation', {
      freshWindowMs: DEFAULT_WINDOWS.freshMs,
      assertedBoundMs: bound,
      warmed5sBefore: early,
      warmedJustBefore: last,
      hotKey: { ...hotResult, acceptedAfterRevokeByHotTraffic: hotAcceptedAfterRevoke },
      neverChecked: never,
    });
  }, 60_000);
});
