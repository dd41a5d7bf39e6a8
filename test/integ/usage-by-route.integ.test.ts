import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { KeyStore } from '../../services/accounts/key-store';
import { documentClient } from '../../services/platform/aws-clients';
import { keyDayCounter } from '../../services/usage/counter-keys';
import {
  type AggregateEvent,
  routeIncrements,
  type TransactionPart,
} from '../../services/usage/counter-updates';
import { UsageStore } from '../../services/usage/usage-store';
import { composeUserApi } from '../../services/user-api/compose';
import { loadUserApiConfig } from '../../services/user-api/config';
import { accountWithKeys } from '../support/accounts';

// `GET /usage?groupBy=route` end to end on DynamoDB Local: counters written the way metering writes
// them (UsageStore.applyTransaction, events carrying route and method), read back through the
// user-api app composed as the local stack composes it, with only the token verifier replaced.

const env = inject('env');
const aws = inject('aws');
const dynamo = documentClient(aws);
const keys = new KeyStore({
  client: dynamo,
  accountsTable: env[ENV.accountsTable] as string,
  keysTable: env[ENV.keysTable] as string,
  keyPrefix: env[ENV.keyPrefix] ?? 'tg',
});
const counters = new UsageStore({ client: dynamo, table: env[ENV.usageTable] as string });

const app = composeUserApi(loadUserApiConfig(env), {
  aws,
  // The bearer token is the account id: what is under test is the read, not Cognito.
  verifier: { verify: async (token) => ({ userId: token, email: `${token}@example.com`, userName: token }) },
  logger: new Logger({ serviceName: 'user-api-test', logLevel: 'SILENT' }),
});

const usage = async (accountId: string, query: string) => {
  const response = await app.request(`/usage?${query}`, {
    headers: { authorization: `Bearer ${accountId}` },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

const account = (label: string, keyCount: number) => accountWithKeys(keys, `byroute-${label}`, keyCount);

/** `n` events of one route on `day` (no route: counted under `*` / `*`). */
const events = (n: number, day: string, call?: { method: string; route: string }): AggregateEvent[] =>
  Array.from({ length: n }, (_, i) => ({
    id: randomUUID(),
    ts: Date.parse(`${day}T10:00:00Z`) + i,
    units: 1,
    ...(call ?? {}),
  }));

const part = (accountId: string, keyId: string, day: string, list: AggregateEvent[]): TransactionPart => ({
  owner: { accountId, keyId, day },
  events: list,
  recordIds: list.map((e) => e.id),
});

const RATES = { method: 'GET', route: '/v1/rates/:currency' };
const CONVERT = { method: 'POST', route: '/v1/convert' };

describe('GET /usage?groupBy=route (DynamoDB Local)', () => {
  let alice: { accountId: string; keyIds: string[] };
  let bob: { accountId: string; keyIds: string[] };

  beforeAll(async () => {
    alice = await account('alice', 2);
    bob = await account('bob', 1);
    const [a1, a2] = alice.keyIds as [string, string];
    const [b1] = bob.keyIds as [string];
    const now = new Date();
    await counters.applyTransaction(
      [
        part(alice.accountId, a1, '2026-03-10', [
          ...events(3, '2026-03-10', RATES),
          ...events(1, '2026-03-10', CONVERT),
          ...events(2, '2026-03-10'),
        ]),
        part(alice.accountId, a2, '2026-03-12', events(2, '2026-03-12', RATES)),
        part(alice.accountId, a1, '2026-03-13', events(9, '2026-03-13', CONVERT)), // after the range
      ],
      now,
    );
    // A second batch adds to the same counter's route attributes.
    await counters.applyTransaction(
      [part(alice.accountId, a1, '2026-03-10', events(1, '2026-03-10', CONVERT))],
      now,
    );
    await counters.applyTransaction(
      [part(bob.accountId, b1, '2026-03-10', events(50, '2026-03-10', RATES))],
      now,
    );
  });

  const RANGE = 'from=2026-03-09&to=2026-03-12';
  const series = (counts: Record<string, number>) =>
    ['2026-03-09', '2026-03-10', '2026-03-11', '2026-03-12'].map((date) => ({
      date,
      count: counts[date] ?? 0,
    }));

  it("answers the account's routes, every day of the range, largest first; the routes add up to the daily total", async () => {
    const byRoute = await usage(alice.accountId, `${RANGE}&groupBy=route`);
    expect(byRoute.status).toBe(200);
    // Each route's days, and the same as cells (`series`, as every usage answer has them, UTC days here).
    const route = (
      call: { method: string; route: string },
      total: number,
      counts: Record<string, number>,
    ) => ({
      ...call,
      total,
      days: series(counts),
      series: series(counts).map(({ date, count }) => ({ start: `${date}T00:00:00Z`, count })),
    });
    expect(byRoute.body).toEqual({
      from: '2026-03-09',
      to: '2026-03-12',
      tz: 'UTC',
      granularity: 'day',
      asOf: expect.any(String),
      total: 9,
      series: series({ '2026-03-10': 7, '2026-03-12': 2 }).map(({ date, count }) => ({
        start: `${date}T00:00:00Z`,
        count,
      })),
      routes: [
        route(RATES, 5, { '2026-03-10': 3, '2026-03-12': 2 }),
        route({ method: '*', route: '*' }, 2, { '2026-03-10': 2 }),
        route(CONVERT, 2, { '2026-03-10': 2 }),
      ],
    });

    const daily = await usage(alice.accountId, RANGE);
    expect(daily.body).toMatchObject({ total: 9, days: series({ '2026-03-10': 6 + 1, '2026-03-12': 2 }) });
    expect(daily.body).not.toHaveProperty('routes');
  });

  it("narrows to one of the caller's keys; another account's key is a 404", async () => {
    const [, a2] = alice.keyIds as [string, string];
    const one = await usage(alice.accountId, `${RANGE}&groupBy=route&keyId=${a2}`);
    expect(one.body).toMatchObject({
      keyId: a2,
      total: 2,
      routes: [{ ...RATES, total: 2, days: series({ '2026-03-12': 2 }) }],
    });

    const theirs = await usage(alice.accountId, `${RANGE}&groupBy=route&keyId=${bob.keyIds[0]}`);
    expect(theirs).toEqual({ status: 404, body: { error: { code: 'not_found', message: 'No such key' } } });
  });
});

describe('a Kinesis batch calling many routes on one counter (DynamoDB Local)', () => {
  it('is added in several updates, each under the expression limit, every route counted once', async () => {
    const { accountId, keyIds } = await account('many-routes', 1);
    const [keyId] = keyIds as [string];
    const day = '2026-03-11';
    // 300 distinct routes × methods (what 64 templates × 8 methods can reach), one event each, in
    // sequence order, as one shard's batch hands them to one counter.
    const entries = Array.from({ length: 300 }, (_, i) => ({
      sequenceNumber: `4960${String(i).padStart(20, '0')}`,
      units: 1,
      ts: Date.parse(`${day}T10:00:00Z`) + i,
      method: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'][i % 5] as string,
      route: `/v1/resources-${Math.floor(i / 5)}/:id`,
    }));
    const increment = {
      counter: keyDayCounter(accountId, keyId, day),
      keyId,
      shardId: 'shardId-000000000000',
      entries,
    };
    // What one UpdateItem adding all of them would be refused for: an expression past 4 KB.
    const routes = routeIncrements(entries);
    const whole = `ADD requests :r, units :u${routes.adds}`;
    expect(whole.length).toBeGreaterThan(4096);
    const refused = await dynamo
      .send(
        new UpdateCommand({
          TableName: env[ENV.usageTable] as string,
          Key: keyDayCounter(accountId, keyId, day),
          UpdateExpression: whole,
          ExpressionAttributeNames: routes.names,
          ExpressionAttributeValues: { ...routes.values, ':r': 300, ':u': 300 },
        }),
      )
      .catch((error: unknown) => error);
    expect((refused as Error).name).toBe('ValidationException');

    const applied = await counters.applyInOrder(increment, new Date());
    expect(applied).toEqual({ applied: 300, skipped: 0, writeRequests: 3 });
    // Delivered again (a retried batch): the watermark skips every entry of every part.
    expect(await counters.applyInOrder(increment, new Date())).toMatchObject({ applied: 0, skipped: 300 });

    const byRoute = await usage(accountId, `from=${day}&to=${day}&groupBy=route`);
    expect(byRoute.status).toBe(200);
    expect(byRoute.body.total).toBe(300);
    const listed = byRoute.body.routes as { method: string; route: string; total: number }[];
    expect(listed).toHaveLength(300);
    expect(listed.every((r) => r.total === 1)).toBe(true);
  });
});
