import { beforeAll, describe, expect, inject, it } from 'vitest';
import { ENV } from '../../contracts/config';
import type { PlanBody } from '../../contracts/plans';
import { utcDay } from '../../contracts/usage-event';
import { PlanStore } from '../../services/accounts/plan-store';
import { loadGateConfig } from '../../services/gate/index';
import { documentClient } from '../../services/platform/aws-clients';
import { hourStartOf, type RefusalCount, RefusalReader } from '../../services/usage/refusals';
import { UsageReader } from '../../services/usage/usage-reader';
import {
  errorCode,
  exampleApi,
  keyApi,
  signUpAndSignIn,
  type TestUser,
  userApi,
} from '../support/local-stack';
import { eventually, sleep } from '../support/wait';

// Refusals per key (issue 24) on `npm start`'s stack: the gates of the example API and of key-api
// tally their plan's refusals per container and publish a summary every TOLLGATE_REFUSALS_FLUSH_MS;
// an owner reads them per key, hour and reason; billed usage holds only the accepted answers.

const env = inject('env');
const gateConfig = loadGateConfig(env);
const FLUSH_MS = gateConfig[ENV.refusalsFlushMs];
const FRESH_MS = gateConfig[ENV.keyCacheFreshMs];
/** "Within a few seconds of a 429": one flush interval, plus the write and this test's polling. */
const VISIBLE_WITHIN_MS = FLUSH_MS + 3000;
const HOUR_MS = 3_600_000;

const dynamo = () => documentClient(inject('aws'));
const usageTable = env[ENV.usageTable] as string;
const refusalReader = () => new RefusalReader({ client: dynamo(), table: usageTable });
const planStore = () =>
  new PlanStore({
    client: dynamo(),
    plansTable: env[ENV.plansTable] as string,
    accountsTable: env[ENV.accountsTable] as string,
  });

interface Owner {
  user: TestUser;
  accountId: string;
  keys: { id: string; key: string }[];
}

/** A new owner on a plan of its own, with `keyCount` keys. */
async function ownerOn(plan: PlanBody, label: string, keyCount: number): Promise<Owner> {
  const user = await signUpAndSignIn(label);
  const accountId = ((await userApi(user.idToken, 'GET', '/me')).body as { userId: string }).userId;
  const planId = `${label}-${Date.now()}`;
  const store = planStore();
  await store.putPlan(planId, plan, new Date());
  expect(await store.assignPlan(accountId, planId)).toBe(true);
  const keys: Owner['keys'] = [];
  for (let i = 0; i < keyCount; i++) {
    const created = await userApi(user.idToken, 'POST', '/keys', { name: `k${i}` });
    expect(created.status).toBe(201);
    keys.push(created.body as { id: string; key: string });
  }
  return { user, accountId, keys };
}

const rates = (key: string) => exampleApi('/v1/rates/EUR', { key });
const today = () => utcDay(Date.now());
const dayStart = () => Date.parse(`${today()}T00:00:00Z`);

/** The refusals of an account today, summed by `keyId reason`. */
async function refusedToday(accountId: string, keyId?: string): Promise<Map<string, number>> {
  const counts = await refusalReader().refusals(
    { accountId, ...(keyId ? { keyId } : {}) },
    dayStart(),
    dayStart() + 24 * HOUR_MS,
  );
  return summed(counts);
}

const summed = (counts: readonly RefusalCount[]) => {
  const sums = new Map<string, number>();
  for (const c of counts)
    sums.set(`${c.keyId} ${c.reason}`, (sums.get(`${c.keyId} ${c.reason}`) ?? 0) + c.count);
  return sums;
};

/** Waits until every expected sum is there, and returns how long after `since` that was. */
async function visible(accountId: string, expected: Map<string, number>, since: number): Promise<number> {
  let last = new Map<string, number>();
  try {
    await eventually(
      async () => {
        last = await refusedToday(accountId);
        return [...expected].every(([id, n]) => (last.get(id) ?? 0) >= n);
      },
      VISIBLE_WITHIN_MS,
      200,
    );
  } catch {
    throw new Error(`refusals not visible within ${VISIBLE_WITHIN_MS} ms: ${JSON.stringify([...last])}`);
  }
  return Date.now() - since;
}

/** GET /usage's total for today once metering has caught up with `accepted` answers. */
async function billedToday(owner: Owner, accepted: number): Promise<number> {
  const total = async () =>
    (
      (await userApi(owner.user.idToken, 'GET', `/usage?from=${today()}&to=${today()}&tz=UTC`)).body as {
        total: number;
      }
    ).total;
  await eventually(async () => (await total()) >= accepted, 15_000, 200);
  // Longer than a flush interval: a refusal wrongly counted as usage would have shown by now.
  await sleep(Math.max(1500, FLUSH_MS));
  return total();
}

describe('refusals per key, gathered by the gates and read back per key and hour', () => {
  let limited: Owner;
  let quota: Owner;
  beforeAll(async () => {
    [limited, quota] = await Promise.all([
      ownerOn(
        { name: 'Burst', rateLimit: { requests: 3, perSeconds: 60, scope: 'key' } },
        'refusals-rate',
        2,
      ),
      ownerOn({ name: 'Tiny', quota: { requests: 2, period: 'day' } }, 'refusals-quota', 1),
    ]);
  });

  it('429 rate_limited and quota_exceeded appear per key, hour and reason within a few seconds; billed usage is only the accepted answers', async () => {
    const [a, b] = limited.keys as [Owner['keys'][number], Owner['keys'][number]];
    const [q] = quota.keys as [Owner['keys'][number]];
    const before = hourStartOf(Date.now());
    // Key a: a burst of 7 against 3 a minute. Key b: 2, within its own limit.
    const burst = await Promise.all(Array.from({ length: 7 }, () => rates(a.key)));
    const bAnswers = [await rates(b.key), await rates(b.key)];
    // The quota of 2 a day: two answers, then refusals.
    const quotaAnswers = [];
    for (let i = 0; i < 5; i++) quotaAnswers.push(await rates(q.key));
    const lastRefusalAt = Date.now();
    const after = hourStartOf(Date.now());

    expect(burst.map((r) => r.status).sort()).toEqual([200, 200, 200, 429, 429, 429, 429]);
    expect(new Set(burst.filter((r) => r.status === 429).map(errorCode))).toEqual(new Set(['rate_limited']));
    expect(bAnswers.map((r) => r.status)).toEqual([200, 200]);
    expect(quotaAnswers.map((r) => r.status)).toEqual([200, 200, 429, 429, 429]);
    expect(errorCode(quotaAnswers[4] as (typeof quotaAnswers)[number])).toBe('quota_exceeded');

    const tookMs = await visible(limited.accountId, new Map([[`${a.id} rate_limited`, 4]]), lastRefusalAt);
    await visible(quota.accountId, new Map([[`${q.id} quota_exceeded`, 3]]), lastRefusalAt);
    expect(tookMs).toBeLessThanOrEqual(VISIBLE_WITHIN_MS);

    // Exactly those, each in the UTC hour it happened in; key b refused nothing.
    const rows = await refusalReader().refusals(
      { accountId: limited.accountId },
      dayStart(),
      dayStart() + 24 * HOUR_MS,
    );
    expect(summed(rows)).toEqual(new Map([[`${a.id} rate_limited`, 4]]));
    for (const row of rows) {
      expect([before, after]).toContain(row.hourStart);
      expect(row.accountId).toBe(limited.accountId);
    }
    expect(await refusedToday(limited.accountId, b.id)).toEqual(new Map());
    expect(await refusedToday(quota.accountId)).toEqual(new Map([[`${q.id} quota_exceeded`, 3]]));
    // A window whose edges cut an hour (a :30/:45 zone's day) still gets that hour, whole.
    const first = rows[0] as RefusalCount;
    const cut = await refusalReader().refusals(
      { accountId: limited.accountId },
      first.hourStart + 30 * 60_000,
      first.hourStart + 31 * 60_000,
    );
    expect(cut).toEqual(rows.filter((row) => row.hourStart === first.hourStart));
    // A window that ends before the refusals' hour holds none of them.
    expect(await refusalReader().refusals({ accountId: limited.accountId }, dayStart(), before)).toEqual([]);

    // Billed: the accepted answers only, in GET /usage and in each key's counter.
    expect(await billedToday(limited, 5)).toBe(5);
    expect(await billedToday(quota, 2)).toBe(2);
    const counters = new UsageReader({ client: dynamo(), table: usageTable });
    expect(await counters.keyDayCount(limited.accountId, a.id, today())).toBe(3);
    expect(await counters.keyDayCount(limited.accountId, b.id, today())).toBe(2);
    expect(await counters.keyDayCount(quota.accountId, q.id, today())).toBe(2);
    // Refusals keep coming for the exhausted quota; the usage stays where it is.
    expect((await rates(q.key)).status).toBe(429);
    await visible(quota.accountId, new Map([[`${q.id} quota_exceeded`, 4]]), Date.now());
    expect(await billedToday(quota, 2)).toBe(2);
  }, 90_000);

  it('GET /usage?include=refusals answers them per hour cell and per key, beside a total that holds only the accepted answers', async () => {
    const [a, b] = limited.keys as [Owner['keys'][number], Owner['keys'][number]];
    const query = `from=${today()}&to=${today()}&tz=UTC&granularity=hour&groupBy=key&include=refusals`;
    const answer = await userApi(limited.user.idToken, 'GET', `/usage?${query}`);
    expect(answer.status).toBe(200);
    type Counts = { rate_limited: number; quota_exceeded: number; account_suspended: number };
    type Refused = { total: Counts; series: ({ start: string } & Counts)[] };
    const body = answer.body as {
      total: number;
      series: { start: string; count: number }[];
      refusals: Refused;
      keys: { keyId: string; total: number; refusals: Refused }[];
    };
    expect(body.total).toBe(5);
    expect(body.refusals.total).toEqual({ rate_limited: 4, quota_exceeded: 0, account_suspended: 0 });
    // The cells are the reader's hours: each refusal in the hour cell it happened in.
    const rows = await refusalReader().refusals(
      { accountId: limited.accountId },
      dayStart(),
      dayStart() + 24 * HOUR_MS,
    );
    const byHour = new Map<number, number>();
    for (const row of rows) byHour.set(row.hourStart, (byHour.get(row.hourStart) ?? 0) + row.count);
    expect(body.refusals.series).toHaveLength(24);
    for (const cell of body.refusals.series) {
      expect(cell.rate_limited).toBe(byHour.get(Date.parse(cell.start)) ?? 0);
    }
    const perKey = new Map(body.keys.map((k) => [k.keyId, k]));
    expect(perKey.get(a.id)?.total).toBe(3);
    expect(perKey.get(a.id)?.refusals.total).toEqual({
      rate_limited: 4,
      quota_exceeded: 0,
      account_suspended: 0,
    });
    expect(perKey.get(b.id)?.total).toBe(2);
    expect(perKey.get(b.id)?.refusals.total).toEqual({
      rate_limited: 0,
      quota_exceeded: 0,
      account_suspended: 0,
    });
    // Without include=refusals the answer has none, and the same total.
    const plain = await userApi(limited.user.idToken, 'GET', `/usage?from=${today()}&to=${today()}&tz=UTC`);
    expect((plain.body as { total: number; refusals?: unknown }).total).toBe(5);
    expect((plain.body as { refusals?: unknown }).refusals).toBeUndefined();
  });

  it(`403 account_suspended is recorded by key-api's gate and the example API's alike, none of it billed`, async () => {
    const owner = await ownerOn({ name: 'Open' }, 'refusals-suspend', 1);
    const [k] = owner.keys as [Owner['keys'][number]];
    const check = () => keyApi({ headers: { 'x-api-key': k.key } });
    expect((await check()).status).toBe(200);
    expect((await rates(k.key)).status).toBe(200);
    expect(await planStore().setStatus(owner.accountId, 'suspended', new Date())).toBe(true);
    // Each gate takes the suspension within its fresh window; until then its answers are billed.
    let accepted = 2;
    await eventually(
      async () => {
        const answer = await check();
        if (answer.status === 200) accepted++;
        return answer.status === 403;
      },
      FRESH_MS + 2000,
      100,
    );
    await eventually(
      async () => {
        const answer = await rates(k.key);
        if (answer.status === 200) accepted++;
        return answer.status === 403;
      },
      FRESH_MS + 2000,
      100,
    );
    const refusedKeyApi = await check();
    const refusedExample = await rates(k.key);
    expect([refusedKeyApi.status, refusedExample.status]).toEqual([403, 403]);
    expect(errorCode(refusedKeyApi)).toBe('account_suspended');
    // 2 from each gate: the one that showed the suspension, and one more.
    await visible(owner.accountId, new Map([[`${k.id} account_suspended`, 4]]), Date.now());
    await sleep(FLUSH_MS + 1000);
    expect(await refusedToday(owner.accountId)).toEqual(new Map([[`${k.id} account_suspended`, 4]]));
    expect(await billedToday(owner, accepted)).toBe(accepted);
  }, 90_000);
});
