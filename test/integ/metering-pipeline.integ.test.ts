import { Logger } from '@aws-lambda-powertools/logger';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { utcDay } from '../../contracts/usage-event';
import { composeKeyApi } from '../../services/key-api/compose';
import { loadKeyApiConfig } from '../../services/key-api/config';
import { discardMetrics } from '../../services/platform/metrics';
import { keyApi, signUpAndSignIn, stackAws, stackEnv, type TestUser, userApi } from '../support/local-stack';
import { eventually } from '../support/wait';

interface Usage {
  from: string;
  to: string;
  days: Array<{ date: string; count: number }>;
  total: number;
  asOf: string;
}

const today = () => utcDay(Date.now());

async function usage(user: TestUser, query = '') {
  const response = await userApi(user.idToken, 'GET', `/usage${query}`);
  expect(response.status, response.text).toBe(200);
  return response.body as Usage;
}

async function newKey(user: TestUser, name: string) {
  const created = await userApi(user.idToken, 'POST', '/keys', { name });
  return created.body as { id: string; key: string };
}

/**
 * The freshness bound docs/metering.md states for the local stack: the pollers' 1 s batching window
 * (contracts/resources.ts), one commit, and the slack of a shared test machine. No flush delay on
 * the SQS ledger: GET /usage adds the journals committed and not flushed yet
 * (services/usage/pending-usage.ts), so what a profile holds back is not held back from the owner.
 */
const FRESHNESS_BOUND_MS = 3_000;

/** Waits until the count is `expected`, then makes sure it stays there (no late double count). */
async function expectSettledAt(read: () => Promise<number>, expected: number) {
  const tookMs = await eventually(async () => (await read()) >= expected, 10_000, 100);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  expect(await read()).toBe(expected);
  return tookMs;
}

describe('metering over SQS (the default transport), through the local ALB', () => {
  let user: TestUser;
  beforeAll(async () => {
    user = await signUpAndSignIn('meter');
  });

  it('N accepted requests show as exactly N in GET /usage within the freshness bound', async () => {
    const a = await newKey(user, 'a');
    const b = await newKey(user, 'b');
    const N = 37;
    const started = Date.now();
    const sends = [
      ...Array.from({ length: N }, () => keyApi({ headers: { 'x-api-key': a.key } })),
      ...Array.from({ length: 5 }, () => keyApi({ headers: { 'x-api-key': b.key } })),
      // Refused requests are not usage.
      ...Array.from({ length: 4 }, () => keyApi({ headers: { 'x-api-key': `${a.key.slice(0, -1)}x` } })),
    ];
    const statuses = (await Promise.all(sends)).map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(N + 5);

    const tookMs = await expectSettledAt(async () => (await usage(user, `?keyId=${a.id}`)).total, N);
    expect(Date.now() - started).toBeLessThan(15_000);
    // The wait above gives up only at 10 s, so this bound is the assertion.
    console.info(`visible in usage after ${tookMs} ms`);
    expect(tookMs).toBeLessThanOrEqual(FRESHNESS_BOUND_MS);

    const all = await usage(user);
    expect(all.total).toBe(N + 5);
    expect(all.days).toHaveLength(30);
    expect(all.days.at(-1)).toEqual({ date: today(), count: N + 5 });
    expect(all.days.slice(0, -1).every((d) => d.count === 0)).toBe(true);
    expect(Math.abs(Date.parse(all.asOf) - Date.now())).toBeLessThan(5000);

    const keys = (await userApi(user.idToken, 'GET', '/keys')).body as {
      keys: Array<{ id: string; count: number; lastUsedAt: string | null }>;
    };
    const viewA = keys.keys.find((k) => k.id === a.id);
    expect(viewA?.count).toBe(N);
    expect(Date.parse(viewA?.lastUsedAt ?? '')).toBeGreaterThanOrEqual(started - 1000);
    expect(keys.keys.find((k) => k.id === b.id)?.count).toBe(5);

    // The key API tells the caller its usage so far (as of its last read, at most a second old).
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const answer = await keyApi({ headers: { 'x-api-key': a.key } });
    const body = answer.body as { usage: { today: number; asOf: string } };
    expect(body.usage.today).toBeGreaterThanOrEqual(N);
    expect(Date.parse(body.usage.asOf)).not.toBeNaN();
  });

  it('answers a range with every day present, and refuses bad or too-large ranges', async () => {
    const range = await usage(user, '?from=2026-01-30&to=2026-02-02');
    expect(range.days.map((d) => d.date)).toEqual(['2026-01-30', '2026-01-31', '2026-02-01', '2026-02-02']);
    for (const query of [
      '?from=2026-02-30&to=2026-03-01',
      '?from=2026-03-02&to=2026-03-01',
      '?from=2024-01-01&to=2025-12-31',
      '?from=yesterday',
      '?keyId=',
      '?unknown=1',
    ]) {
      const response = await userApi(user.idToken, 'GET', `/usage${query}`);
      expect(response.status, query).toBe(400);
      expect((response.body as { error: { code: string } }).error.code).toBe('invalid_request');
    }
    expect((await userApi(user.idToken, 'GET', '/usage?keyId=key_not_mine')).status).toBe(404);
  });

  it('never shows one account the usage of another', async () => {
    const other = await signUpAndSignIn('other');
    const mine = await newKey(user, 'private');
    await keyApi({ headers: { 'x-api-key': mine.key } });
    expect((await userApi(other.idToken, 'GET', `/usage?keyId=${mine.id}`)).status).toBe(404);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect((await usage(other)).total).toBe(0);
  });
});

describe('metering over Kinesis', () => {
  it('N accepted requests show as exactly N with TOLLGATE_TRANSPORT=kinesis', async () => {
    const user = await signUpAndSignIn('kinesis');
    const key = await newKey(user, 'stream');
    // key-api composed in this process as the stack composes its own, with the Kinesis transport
    // selected: the stream it publishes to is the one the stack's metering consumer reads.
    const { handler } = composeKeyApi(loadKeyApiConfig({ ...stackEnv(), [ENV.transport]: 'kinesis' }), {
      aws: stackAws(),
      logger: new Logger({ serviceName: SERVICE_NAMES.keyApi, logLevel: 'WARN' }),
      metrics: discardMetrics,
    });
    const N = 41;
    const results = await Promise.all(
      Array.from({ length: N }, () =>
        handler({
          requestContext: {
            elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:local:0:targetgroup/key-api/0' },
          },
          httpMethod: 'GET',
          path: '/',
          headers: { 'x-api-key': key.key },
          body: null,
          isBase64Encoded: false,
        }),
      ),
    );
    expect(results.map((r) => r.statusCode)).toEqual(Array(N).fill(200));
    await expectSettledAt(async () => (await usage(user, `?keyId=${key.id}`)).total, N);
  });
});
