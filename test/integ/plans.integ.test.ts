import { beforeAll, describe, expect, inject, it } from 'vitest';
import { ENV } from '../../contracts/config';
import type { PlanBody } from '../../contracts/plans';
import { utcDay } from '../../contracts/usage-event';
import { readCapturedCodes } from '../../infra/local/mailbox';
import { PlanStore } from '../../services/accounts/plan-store';
import { loadGateConfig } from '../../services/gate/index';
import { documentClient } from '../../services/platform/aws-clients';
import {
  errorCode,
  exampleApi,
  type JsonResponse,
  signUpAndSignIn,
  type TestUser,
  userApi,
} from '../support/local-stack';
import { eventually, sleep } from '../support/wait';

// Plans enforced by the gate of `npm start`'s example API, the plan assigned straight in the tables
// (the admin routes that write them have their own tests, admin.integ.test.ts).

const env = inject('env');
const FRESH_MS = loadGateConfig(env)[ENV.keyCacheFreshMs];

function planStore() {
  return new PlanStore({
    client: documentClient(inject('aws')),
    plansTable: env[ENV.plansTable] as string,
    accountsTable: env[ENV.accountsTable] as string,
  });
}

const rates = (key: string) => exampleApi('/v1/rates/EUR', { key });

/** A new owner on a plan of its own, with one usable key. */
async function ownerOn(
  plan: PlanBody,
  label: string,
): Promise<{ owner: TestUser; accountId: string; key: string }> {
  const owner = await signUpAndSignIn(label);
  const me = await userApi(owner.idToken, 'GET', '/me');
  const accountId = (me.body as { userId: string }).userId;
  const planId = `${label}-${Date.now()}`;
  const store = planStore();
  await store.putPlan(planId, plan, new Date());
  expect(await store.assignPlan(accountId, planId)).toBe(true);
  const created = await userApi(owner.idToken, 'POST', '/keys', { name: 'limited' });
  expect(created.status).toBe(201);
  return { owner, accountId, key: (created.body as { key: string }).key };
}

const today = () => utcDay(Date.now());

describe('plans, enforced by the gate on the local stack', () => {
  let quota: Awaited<ReturnType<typeof ownerOn>>;
  beforeAll(async () => {
    quota = await ownerOn({ name: 'Tiny', quota: { requests: 5, period: 'day' } }, 'quota');
  });

  it('a quota of 5 a day: 5 × 200, then 429 quota_exceeded with Retry-After and RateLimit headers; usage shows exactly 5', async () => {
    const answers: JsonResponse[] = [];
    for (let i = 0; i < 7; i++) answers.push(await rates(quota.key));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(answers[0]?.headers.get('ratelimit-policy')).toBe('"quota";q=5;w=86400');
    expect(answers.slice(0, 5).map((a) => a.headers.get('ratelimit')?.split(';')[1])).toEqual([
      'r=4',
      'r=3',
      'r=2',
      'r=1',
      'r=0',
    ]);
    const refused = answers[5] as JsonResponse;
    expect(errorCode(refused)).toBe('quota_exceeded');
    const untilMidnight = (Date.parse(`${today()}T00:00:00Z`) + 86_400_000 - Date.now()) / 1000;
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(untilMidnight - 5);
    expect(retryAfter).toBeLessThanOrEqual(Math.ceil(untilMidnight) + 1);
    expect(refused.headers.get('ratelimit')).toMatch(/^"quota";r=0;t=\d+$/);

    const usage = async () =>
      (
        (await userApi(quota.owner.idToken, 'GET', `/usage?from=${today()}&to=${today()}`)).body as {
          total: number;
        }
      ).total;
    await eventually(async () => (await usage()) >= 5, 15_000, 200);
    await sleep(1500);
    expect(await usage()).toBe(5);
  });

  it('a rate limit refuses the excess of a burst with 429 rate_limited', async () => {
    const limited = await ownerOn(
      { name: 'Burst', rateLimit: { requests: 3, perSeconds: 60, scope: 'key' } },
      'burst',
    );
    // Sent together; one container counts them, so exactly the limit gets through.
    const burst = await Promise.all(Array.from({ length: 8 }, () => rates(limited.key)));
    const statuses = burst.map((a) => a.status).sort();
    expect(statuses).toEqual([200, 200, 200, 429, 429, 429, 429, 429]);
    const refused = burst.find((a) => a.status === 429) as JsonResponse;
    expect(errorCode(refused)).toBe('rate_limited');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('ratelimit-policy')).toBe('"rate";q=3;w=60');
  });

  it(`suspend: 403 account_suspended within the fresh window (${FRESH_MS / 1000} s), usage kept; resume: 200 again`, async () => {
    const suspended = await ownerOn({ name: 'Open' }, 'suspend');
    let accepted = 0;
    const call = async () => {
      const answer = await rates(suspended.key);
      if (answer.status === 200) accepted++;
      return answer;
    };
    expect((await call()).status).toBe(200);
    const store = planStore();
    expect(await store.setStatus(suspended.accountId, 'suspended', new Date())).toBe(true);
    const suspendedAt = Date.now();
    let lastAcceptedSentAfter = 0;
    await eventually(
      async () => {
        const sentAt = Date.now();
        const answer = await call();
        if (answer.status === 200) lastAcceptedSentAfter = sentAt - suspendedAt;
        return answer.status === 403;
      },
      FRESH_MS + 2000,
      100,
    );
    // The bound: no request sent from the fresh window's end on was let through.
    expect(lastAcceptedSentAfter).toBeLessThan(FRESH_MS);
    const refused = await call();
    expect(refused.status).toBe(403);
    expect(errorCode(refused)).toBe('account_suspended');

    // What was let through before the suspension took effect stays counted, and nothing after it.
    const usage = async () =>
      (
        (await userApi(suspended.owner.idToken, 'GET', `/usage?from=${today()}&to=${today()}`)).body as {
          total: number;
        }
      ).total;
    await eventually(async () => (await usage()) >= accepted, 15_000, 200);
    await sleep(1500);
    expect(await usage()).toBe(accepted);
    expect(await store.setStatus(suspended.accountId, 'active', new Date())).toBe(true);
    await eventually(async () => (await rates(suspended.key)).status === 200, FRESH_MS + 2000, 100);
  });

  it('emails the owner once at 80 % and once at 100 % of the quota, however many requests follow', async () => {
    const alerted = await ownerOn({ name: 'Alerted', quota: { requests: 10, period: 'day' } }, 'alerts');
    const alertsFor = async () =>
      (await readCapturedCodes(inject('dataDir'))).filter(
        (m) => m.kind === 'quota_alert' && m.destination === alerted.owner.email,
      );
    // 7 requests: below 80 %, nothing sent.
    for (let i = 0; i < 7; i++) expect((await rates(alerted.key)).status).toBe(200);
    await eventually(
      async () =>
        (
          (await userApi(alerted.owner.idToken, 'GET', `/usage?from=${today()}&to=${today()}`)).body as {
            total: number;
          }
        ).total === 7,
      15_000,
      200,
    );
    await sleep(1500);
    expect(await alertsFor()).toEqual([]);
    // The 8th crosses 80 %; one email, in its batch.
    expect((await rates(alerted.key)).status).toBe(200);
    await eventually(async () => (await alertsFor()).length === 1, 15_000, 200);
    // Past 100 %, refused requests included: one more email, and no third.
    for (let i = 0; i < 6; i++) await rates(alerted.key);
    await eventually(async () => (await alertsFor()).length === 2, 15_000, 200);
    await sleep(2500);
    const alerts = await alertsFor();
    expect(alerts.map((a) => a.subject)).toEqual([
      "You have used 80 % of your Alerted plan's requests today",
      'You have used all 10 requests of your Alerted plan today',
    ]);
    expect(alerts[1]?.message).toContain('Further requests are refused (429 quota_exceeded)');
  });
});
