import { DeleteCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { generateApiKey, hashApiKey } from '../../services/accounts/api-key';
import { loadKeyApiConfig } from '../../services/key-api/config';
import { documentClient } from '../../services/platform/aws-clients';
import { LOCAL_CREDENTIALS } from '../support/aws';
import {
  endpoints,
  errorCode,
  keyApi,
  signUpAndSignIn,
  type TestUser,
  userApi,
} from '../support/local-stack';
import { eventually, sleep } from '../support/wait';

/** The fresh window of the stack's key-api, as it composed it from its settings (docs/keys.md: 10 s). */
const FRESH_MS = loadKeyApiConfig(inject('env'))[ENV.keyCacheFreshMs];
/** How often the revoked key is tried. */
const POLL_MS = 100;
/**
 * Measuring slack for when the refusal is seen: the poll after the window's end starts up to
 * POLL_MS plus one request round trip later (local ALB on a shared 2-core machine). The bound itself,
 * that no request sent from the window's end on is accepted, is asserted without it.
 */
const ROUND_TRIP_SLACK_MS = 400;

interface KeyView {
  id: string;
  name: string;
  start: string | null;
  status: string;
  createdAt: string;
  expiresAt?: string;
}
interface Issued {
  id: string;
  key: string;
  name: string;
  start: string;
  createdAt: string;
  previous?: { id: string; status: string; expiresAt: string };
}

const keys = async (user: TestUser) =>
  ((await userApi(user.idToken, 'GET', '/keys')).body as { keys: KeyView[] }).keys;

function dynamo() {
  const { dynamodb, region } = endpoints();
  return documentClient({ region, credentials: LOCAL_CREDENTIALS, endpoints: { dynamodb } });
}

describe('sign-up to key check, against the local stack', () => {
  let owner: TestUser;

  beforeAll(async () => {
    owner = await signUpAndSignIn('owner');
  });

  it('provisions the account and a first key whose secret reaches its owner exactly once', async () => {
    const me = await userApi(owner.idToken, 'GET', '/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ email: owner.email });
    const { userId, createdAt } = me.body as { userId: string; createdAt: string };
    expect(userId).toMatch(/.+/);
    expect(Date.parse(createdAt)).not.toBeNaN();

    const [first, ...others] = await keys(owner);
    expect(others).toEqual([]);
    expect(first).toMatchObject({ name: 'default', status: 'pending', start: null });
    if (!first) throw new Error('no first key');

    const revealed = await userApi(owner.idToken, 'POST', `/keys/${first.id}/reveal`);
    expect(revealed.status).toBe(201);
    const { key } = revealed.body as Issued;
    expect(key).toMatch(/^tg_[0-9A-Za-z]{28}$/);

    const again = await userApi(owner.idToken, 'POST', `/keys/${first.id}/reveal`);
    expect(again.status).toBe(409);
    expect(errorCode(again)).toBe('conflict');
    expect(again.text).not.toContain(key);

    expect((await keyApi({ headers: { 'x-api-key': key } })).body).toMatchObject({
      ok: true,
      keyId: first.id,
    });

    // Only the hash is stored: no attribute of any item holds the secret.
    const scan = await dynamo().send(new ScanCommand({ TableName: inject('env').TOLLGATE_KEYS_TABLE }));
    const stored = (scan.Items ?? []).find((item) => item.keyId === first.id);
    expect(stored?.keyHash).toBe(hashApiKey(key));
    expect(JSON.stringify(scan.Items)).not.toContain(key);
  });

  it('creates, rolls and revokes keys; key-api follows each change', async () => {
    const created = await userApi(owner.idToken, 'POST', '/keys', { name: 'production' });
    expect(created.status).toBe(201);
    const issued = created.body as Issued;
    expect(issued).toMatchObject({ name: 'production', start: issued.key.slice(0, 7) });
    expect((await keyApi({ headers: { authorization: `Bearer ${issued.key}` } })).status).toBe(200);
    expect((await keyApi({ body: JSON.stringify({ key: issued.key }) })).status).toBe(200);

    const listed = await keys(owner);
    const view = listed.find((k) => k.id === issued.id);
    expect(view).toEqual({
      id: issued.id,
      name: 'production',
      start: issued.start,
      status: 'active',
      createdAt: issued.createdAt,
      count: 0,
      lastUsedAt: null,
    });
    expect(JSON.stringify(listed)).not.toContain(issued.key);

    const rolled = await userApi(owner.idToken, 'POST', `/keys/${issued.id}/roll`);
    expect(rolled.status).toBe(201);
    const next = rolled.body as Issued;
    expect(next.id).not.toBe(issued.id);
    expect(next.previous?.id).toBe(issued.id);
    const graceMs = Date.parse(next.previous?.expiresAt ?? '') - Date.now();
    expect(graceMs).toBeGreaterThan(23.9 * 3600_000);
    expect(graceMs).toBeLessThanOrEqual(24 * 3600_000);
    // Both keys work during the grace period.
    let nextAccepted = 0;
    expect((await keyApi({ headers: { 'x-api-key': next.key } })).status).toBe(200);
    nextAccepted++;
    expect((await keyApi({ headers: { 'x-api-key': issued.key } })).status).toBe(200);
    expect((await keys(owner)).find((k) => k.id === issued.id)).toMatchObject({
      status: 'expiring',
      expiresAt: next.previous?.expiresAt,
    });
    const rollAgain = await userApi(owner.idToken, 'POST', `/keys/${issued.id}/roll`);
    expect(rollAgain.status).toBe(409);

    const revoked = await userApi(owner.idToken, 'DELETE', `/keys/${next.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: next.id, status: 'revoked' });
    // Refused within the fresh window of the DELETE's answer (the key was cached just before it).
    const since = Date.now();
    let lastAcceptedSentAfterMs = -1;
    let refusedAfterMs = -1;
    while (Date.now() - since < FRESH_MS + 5000) {
      const sentAt = Date.now();
      const answer = await keyApi({ headers: { 'x-api-key': next.key } });
      if (errorCode(answer) === 'revoked_key') {
        refusedAfterMs = Date.now() - since;
        break;
      }
      expect(answer.status).toBe(200);
      nextAccepted++;
      lastAcceptedSentAfterMs = sentAt - since;
      await sleep(POLL_MS);
    }
    expect(refusedAfterMs, 'never refused').toBeGreaterThanOrEqual(0);
    expect(lastAcceptedSentAfterMs).toBeLessThan(FRESH_MS);
    expect(refusedAfterMs).toBeLessThanOrEqual(FRESH_MS + POLL_MS + ROUND_TRIP_SLACK_MS);
    // All billable: every 200 the key was given, the ones after its DELETE included, is counted.
    const billed = async () =>
      ((await userApi(owner.idToken, 'GET', `/usage?keyId=${next.id}`)).body as { total: number }).total;
    await eventually(async () => (await billed()) >= nextAccepted, 10_000, 200);
    expect(await billed()).toBe(nextAccepted);
  });

  it('ends a rolled key when a zero grace period is asked for', async () => {
    const created = (await userApi(owner.idToken, 'POST', '/keys', { name: 'short-lived' })).body as Issued;
    const rolled = await userApi(owner.idToken, 'POST', `/keys/${created.id}/roll`, {
      gracePeriodSeconds: 0,
    });
    expect(rolled.status).toBe(201);
    // Never checked before, so not cached: refused at once.
    expect(errorCode(await keyApi({ headers: { 'x-api-key': created.key } }))).toBe('expired_key');
    expect((await keys(owner)).find((k) => k.id === created.id)?.status).toBe('expired');
  });

  it('refuses missing, malformed and unknown keys with a 401 that says which', async () => {
    expect(errorCode(await keyApi())).toBe('missing_key');
    expect(errorCode(await keyApi({ headers: { 'x-api-key': 'tg_nope' } }))).toBe('malformed_key');
    const unknown = await keyApi({ headers: { 'x-api-key': generateApiKey('tg').key } });
    expect(unknown.status).toBe(401);
    expect(errorCode(unknown)).toBe('unknown_key');
  });

  it('keeps each owner to their own keys: another account sees 404 for every key id', async () => {
    const intruder = await signUpAndSignIn('intruder');
    const [ownersKey] = await keys(owner);
    if (!ownersKey) throw new Error('owner has no key');
    for (const [method, path] of [
      ['POST', `/keys/${ownersKey.id}/roll`],
      ['POST', `/keys/${ownersKey.id}/reveal`],
      ['DELETE', `/keys/${ownersKey.id}`],
    ] as const) {
      const response = await userApi(intruder.idToken, method, path);
      expect(response.status, `${method} ${path}`).toBe(404);
      expect(errorCode(response)).toBe('not_found');
    }
    expect((await keys(intruder)).map((k) => k.id)).not.toContain(ownersKey.id);
    expect((await keys(owner)).find((k) => k.id === ownersKey.id)?.status).not.toBe('revoked');
  });

  it('provisions once even when Cognito replays the trigger', async () => {
    const me = (await userApi(owner.idToken, 'GET', '/me')).body as { userId: string };
    const before = await keys(owner);
    const event = {
      version: '1',
      region: 'us-east-1',
      userPoolId: endpoints().cognito.userPoolId,
      userName: me.userId,
      triggerSource: 'PostConfirmation_ConfirmSignUp',
      callerContext: { awsSdkVersion: 'test', clientId: endpoints().cognito.clientId },
      request: { userAttributes: { sub: me.userId, email: owner.email, email_verified: 'true' } },
      response: {},
    };
    const invoked = await fetch(
      `${endpoints().lambda}/2015-03-31/functions/tollgate-auth-triggers/invocations`,
      {
        method: 'POST',
        body: JSON.stringify(event),
      },
    );
    expect(invoked.status).toBe(200);
    expect(invoked.headers.get('x-amz-function-error')).toBeNull();
    expect(await invoked.json()).toMatchObject({ userName: me.userId });
    // Same keys, same states: nothing provisioned a second time (counts may still be settling).
    const shape = (list: KeyView[]) =>
      list.map(({ id, name, status, createdAt }) => ({ id, name, status, createdAt }));
    expect(shape(await keys(owner))).toEqual(shape(before));
  });

  it('finishes provisioning on first visit when the sign-up trigger never ran', async () => {
    const user = await signUpAndSignIn('healed');
    const { userId } = (await userApi(user.idToken, 'GET', '/me')).body as { userId: string };
    const env = inject('env');
    const db = dynamo();
    // As if Cognito had confirmed the user and the trigger had failed: no account, no key.
    const [firstKey] = await keys(user);
    await db.send(new DeleteCommand({ TableName: env.TOLLGATE_ACCOUNTS_TABLE, Key: { accountId: userId } }));
    await db.send(
      new DeleteCommand({
        TableName: env.TOLLGATE_KEYS_TABLE,
        Key: { accountId: userId, keyId: firstKey?.id },
      }),
    );
    expect(await keys(user)).toEqual([]);

    const me = await userApi(user.idToken, 'GET', '/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ userId, email: user.email });
    expect((await keys(user)).map((k) => k.status)).toEqual(['pending']);
  });
});
