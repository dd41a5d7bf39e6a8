import { Logger } from '@aws-lambda-powertools/logger';
import { describe, expect, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { KeyApiMetric } from '../../contracts/metric-names';
import type { Plan } from '../../contracts/plans';
import type { UsageEvent } from '../../contracts/usage-event';
import { generateApiKey } from '../../services/accounts/api-key';
import type { KeyLookupRecord } from '../../services/accounts/records';
import { composeGate, loadGateConfig } from '../../services/gate/index';
import type { AccountTerms } from '../../services/gate/limits';
import { DependencyError } from '../../services/platform/errors';
import { albEvent, resultJson } from '../support/alb';

// Plans enforced by the gate (services/gate/limits.ts), composed as an owner composes it, over
// in-memory keys, terms and counters and a clock the test moves. Nothing reaches AWS.

const CONFIG = loadGateConfig({
  [ENV.accountsTable]: 'tollgate-test-accounts',
  [ENV.keysTable]: 'tollgate-test-keys',
  [ENV.usageTable]: 'tollgate-test-usage',
  [ENV.plansTable]: 'tollgate-test-plans',
  [ENV.usageQueueUrl]: 'https://sqs.us-east-1.amazonaws.com/000000000000/tollgate-test-usage',
});

const plan = (body: Omit<Plan, 'planId' | 'updatedAt'>): Plan => ({
  planId: 'test',
  updatedAt: '2026-12-01T00:00:00.000Z',
  ...body,
});

/** The period an `at` falls in, as the counters key it: `2026-12` for a month, `2026-12-02` for a day. */
const periodKey = (period: 'day' | 'month', at: Date) => at.toISOString().slice(0, period === 'day' ? 10 : 7);

function limited(terms: AccountTerms, options: { status?: number } = {}) {
  let now = Date.parse('2026-12-02T10:00:00.400Z');
  // The counters, per period: what other containers' events added, and this container's events
  // once "metering" counts them (countPublished), kept apart as the producer items keep them.
  const counted = {
    others: new Map<string, number>(),
    own: new Map<string, number>(),
    reads: 0,
    failing: false,
    asked: [] as string[],
  };
  const published: UsageEvent[] = [];
  const recorded: string[] = [];
  const byHash = new Map<string, KeyLookupRecord>();
  const key = generateApiKey('tg');
  byHash.set(key.keyHash, { accountId: 'acc_1', keyId: 'key_1', status: 'active' });
  const account = { terms };
  let countedUpTo = 0;
  const tollgate = composeGate(
    { ...CONFIG, [ENV.keyCacheFreshMs]: 10_000 },
    {
      clock: { now: () => new Date(now) },
      lookup: async (hash) => {
        const record = byHash.get(hash);
        return record ? { found: true, record } : { found: false };
      },
      terms: async () => ({ found: true, record: account.terms }),
      producerId: 'producer-under-test-0001',
      // Refusals per key have their own test (refusal-tally.test.ts); none is written to AWS from here.
      refusals: { refused: () => undefined },
      readUsage: async (_accountId, period, at) => {
        counted.reads++;
        if (counted.failing) throw new DependencyError('DynamoDB');
        const id = periodKey(period, at);
        counted.asked.push(`${period} ${id}`);
        const own = counted.own.get(id) ?? 0;
        return { used: (counted.others.get(id) ?? 0) + own, byProducer: own };
      },
      publisher: {
        publish: async (event) => {
          published.push(event);
        },
      },
      logger: new Logger({ serviceName: 'gate-test', logLevel: 'SILENT' }),
      metrics: { addMetric: (name) => recorded.push(name), endInvocation: () => undefined },
    },
  );
  const handler = tollgate.albHandler(async () => ({ statusCode: options.status ?? 200, body: 'ok' }), {
    routes: ['GET /v1/things'],
  });
  const call = () =>
    handler(albEvent({ method: 'GET', path: '/v1/things', headers: { 'x-api-key': key.key } }));
  return {
    call,
    counted,
    published,
    recorded,
    account,
    /** Metering catches up: every event published so far is in the counters of its own period. */
    countPublished: (period: 'day' | 'month') => {
      for (const event of published.slice(countedUpTo)) {
        expect(event.pid).toBe('producer-under-test-0001');
        const id = periodKey(period, new Date(event.ts));
        counted.own.set(id, (counted.own.get(id) ?? 0) + 1);
      }
      countedUpTo = published.length;
    },
    advance: (ms: number) => {
      now += ms;
    },
    cache: tollgate.cache,
  };
}

describe('plans in the gate', () => {
  it('a quota of 5 a day: 5 answers, then 429 quota_exceeded with Retry-After and RateLimit headers', async () => {
    const g = limited({
      status: 'active',
      plan: plan({ name: 'Free', quota: { requests: 5, period: 'day' } }),
    });
    const answers = [];
    for (let i = 0; i < 7; i++) answers.push(await g.call());
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200, 200, 200, 429, 429]);
    expect(answers[0]?.headers).toMatchObject({
      'ratelimit-policy': '"quota";q=5;w=86400',
      ratelimit: `"quota";r=4;t=${14 * 3600}`,
    });
    expect(answers[4]?.headers?.ratelimit).toMatch(/^"quota";r=0;/);
    const refused = answers[5];
    expect(resultJson(refused as NonNullable<typeof refused>).error).toEqual({
      code: 'quota_exceeded',
      message: "The plan's quota of 5 requests per day is used up",
    });
    // Until the next UTC midnight: 13 h 59 min 59.6 s, rounded up.
    expect(refused?.headers?.['retry-after']).toBe(String(14 * 3600));
    expect(refused?.headers?.['ratelimit-policy']).toBe('"quota";q=5;w=86400');
    expect(g.published).toHaveLength(5);
    expect(g.recorded.filter((n) => n === KeyApiMetric.checks.quotaExceeded)).toHaveLength(2);
  });

  it('counts what the counters say plus what this container published that they do not hold yet, never twice', async () => {
    const g = limited({
      status: 'active',
      plan: plan({ name: 'Free', quota: { requests: 10, period: 'month' } }),
    });
    g.counted.others.set('2026-12', 8);
    expect((await g.call()).statusCode).toBe(200); // 8 counted + 1
    expect((await g.call()).statusCode).toBe(200); // + 2 = 10
    expect((await g.call()).statusCode).toBe(429);
    expect(g.counted.reads).toBe(1);
    expect(g.counted.asked).toEqual(['month 2026-12']);
    // Metering counts this container's two: the next read sees 10, of which 2 are its own, and
    // takes them off what it published: 10 in all, not 12, so one freed request is let through.
    g.countPublished('month');
    g.counted.others.set('2026-12', 7);
    g.advance(1000);
    expect((await g.call()).statusCode).toBe(200);
    expect((await g.call()).statusCode).toBe(429);
    expect(g.counted.reads).toBe(2);
    // A new month: the reader is asked for the new month's counters, which start from 0.
    g.advance(30 * 86_400_000);
    expect((await g.call()).statusCode).toBe(200);
    expect(g.counted.asked.at(-1)).toBe('month 2027-01');
    expect(g.published.map((e) => new Date(e.ts).toISOString().slice(0, 7))).toEqual([
      '2026-12',
      '2026-12',
      '2026-12',
      '2027-01',
    ]);
  });

  it('one container sending one request at a time gets exactly the quota while metering counts nothing', async () => {
    const g = limited({
      status: 'active',
      plan: plan({ name: 'Free', quota: { requests: 5, period: 'day' } }),
    });
    const answers: number[] = [];
    // 12 requests 400 ms apart: a read every few requests, each seeing counters that never move.
    for (let i = 0; i < 12; i++) {
      answers.push((await g.call()).statusCode);
      g.advance(400);
    }
    expect(answers).toEqual([200, 200, 200, 200, 200, 429, 429, 429, 429, 429, 429, 429]);
    expect(g.counted.reads).toBeGreaterThan(3);
    // Metering catches up: still 5 used, still refused, nothing more let through.
    g.countPublished('day');
    g.advance(1000);
    expect((await g.call()).statusCode).toBe(429);
    expect(g.published).toHaveLength(5);
  });

  it('an answer the policy does not bill does not use the quota', async () => {
    const g = limited(
      { status: 'active', plan: plan({ name: 'Free', quota: { requests: 2, period: 'day' } }) },
      { status: 404 },
    );
    for (let i = 0; i < 5; i++) expect((await g.call()).statusCode).toBe(404);
    expect(g.published).toHaveLength(0);
  });

  it('keeps the last counted usage when the counters cannot be read, and 503s when there is none', async () => {
    const g = limited({
      status: 'active',
      plan: plan({ name: 'Free', quota: { requests: 3, period: 'day' } }),
    });
    g.counted.failing = true;
    const first = await g.call();
    expect(first.statusCode).toBe(503);
    g.counted.failing = false;
    g.counted.others.set('2026-12-02', 2);
    g.advance(1000);
    expect((await g.call()).statusCode).toBe(200);
    g.counted.failing = true;
    g.advance(1000);
    expect((await g.call()).statusCode).toBe(429);
  });

  it('a rate limit refuses the excess of a burst with 429 rate_limited, and the next window lets through again', async () => {
    const g = limited({
      status: 'active',
      plan: plan({ name: 'Pro', rateLimit: { requests: 3, perSeconds: 10, scope: 'key' } }),
    });
    const burst = [];
    for (let i = 0; i < 5; i++) burst.push(await g.call());
    expect(burst.map((a) => a.statusCode)).toEqual([200, 200, 200, 429, 429]);
    expect(burst[0]?.headers).toMatchObject({
      'ratelimit-policy': '"rate";q=3;w=10',
      ratelimit: '"rate";r=2;t=10',
    });
    const refused = burst[3];
    expect(resultJson(refused as NonNullable<typeof refused>).error?.code).toBe('rate_limited');
    expect(refused?.headers?.['retry-after']).toBe('10');
    g.advance(10_000);
    expect((await g.call()).statusCode).toBe(200);
    expect(g.published).toHaveLength(4);
  });

  it('reports both limits when a plan has both', async () => {
    const g = limited({
      status: 'active',
      plan: plan({
        name: 'Both',
        quota: { requests: 100, period: 'day' },
        rateLimit: { requests: 10, perSeconds: 1, scope: 'account' },
      }),
    });
    const answer = await g.call();
    expect(answer.headers?.['ratelimit-policy']).toBe('"quota";q=100;w=86400, "rate";q=10;w=1');
    expect(answer.headers?.ratelimit).toMatch(/^"quota";r=99;t=\d+, "rate";r=9;t=1$/);
  });

  it('a suspended account: 403 account_suspended, nothing billed; resumed: let through again', async () => {
    const g = limited({ status: 'suspended' });
    const answer = await g.call();
    expect(answer.statusCode).toBe(403);
    expect(resultJson(answer).error).toEqual({
      code: 'account_suspended',
      message: 'The account is suspended',
    });
    expect(g.published).toEqual([]);
    g.account.terms = { status: 'active' };
    // Cached like a key: still refused within the fresh window, let through after it.
    expect((await g.call()).statusCode).toBe(403);
    g.advance(10_000);
    expect((await g.call()).statusCode).toBe(200);
    expect(g.recorded).toContain(KeyApiMetric.checks.suspended);
  });

  it('an account without limits gets no RateLimit headers', async () => {
    const g = limited({ status: 'active' });
    const answer = await g.call();
    expect(answer.statusCode).toBe(200);
    expect(answer.headers?.['ratelimit-policy']).toBeUndefined();
  });
});
