import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import type { KinesisStreamEvent, SQSEvent } from 'aws-lambda';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { newUsageEvent, type UsageEvent, utcDay } from '../../contracts/usage-event';
import { KeyStore } from '../../services/accounts/key-store';
import { documentClient } from '../../services/platform/aws-clients';
import type { AggregateEvent } from '../../services/usage/counter-updates';
import { RefusalRecorder } from '../../services/usage/refusals';
import { UsageStore } from '../../services/usage/usage-store';
import { composeUserApi } from '../../services/user-api/compose';
import { loadUserApiConfig } from '../../services/user-api/config';
import type { UsageAnswer } from '../../services/user-api/usage-answer';
import { accountWithKeys } from '../support/accounts';
import { localClients } from '../support/local-stack';
import { meteringConsumer } from '../support/metering-consumer';

// Issue 24's analytics on DynamoDB Local: hours written by the real metering consumer on both
// transports, read back through the user-api app as the local stack composes it (only the token
// verifier replaced: the bearer token is the account id), in UTC and in other time zones.

const env = inject('env');
const aws = inject('aws');
const dynamo = documentClient(aws);
const keys = new KeyStore({
  client: dynamo,
  accountsTable: env[ENV.accountsTable] as string,
  keysTable: env[ENV.keysTable] as string,
  keyPrefix: env[ENV.keyPrefix] ?? 'tg',
});
const app = composeUserApi(loadUserApiConfig(env), {
  aws,
  verifier: { verify: async (token) => ({ userId: token, email: `${token}@example.com`, userName: token }) },
  logger: new Logger({ serviceName: 'user-api-test', logLevel: 'SILENT' }),
});

const HOUR = 3_600_000;

async function get(accountId: string, query: string, accept?: string) {
  const response = await app.request(`/usage?${query}`, {
    headers: { authorization: `Bearer ${accountId}`, ...(accept ? { accept } : {}) },
  });
  const text = await response.text();
  return { status: response.status, type: response.headers.get('content-type') ?? '', text };
}

async function usage(accountId: string, query: string): Promise<UsageAnswer> {
  const answer = await get(accountId, query);
  expect(answer.status, answer.text).toBe(200);
  return JSON.parse(answer.text) as UsageAnswer;
}

const account = (label: string, keyCount: number) => accountWithKeys(keys, `analytics-${label}`, keyCount);

const sum = (values: readonly number[]) => values.reduce((total, n) => total + n, 0);

/** The local day of `ts` at a fixed offset: the oracle, independent of the code under test. */
const dayAt = (ts: number, offsetHours: number) =>
  new Date(ts + offsetHours * HOUR).toISOString().slice(0, 10);

let sequence = 0;
const shardRun = `shardId-${String(Date.now() % 1e12).padStart(12, '0')}`;

function transportEvent(
  transport: 'sqs' | 'kinesis',
  events: readonly UsageEvent[],
): SQSEvent | KinesisStreamEvent {
  if (transport === 'sqs') {
    return {
      Records: events.map((e) => ({
        eventSource: 'aws:sqs',
        messageId: `m-${e.id}`,
        body: JSON.stringify(e),
      })),
    } as unknown as SQSEvent;
  }
  return {
    Records: events.map((e) => {
      const sequenceNumber = `4960${String(++sequence).padStart(30, '0')}`;
      return {
        eventSource: 'aws:kinesis',
        eventID: `${shardRun}:${sequenceNumber}`,
        eventSourceARN: 'arn:aws:kinesis:eu-west-1:000000000000:stream/analytics',
        kinesis: {
          sequenceNumber,
          partitionKey: e.keyId,
          data: Buffer.from(JSON.stringify(e)).toString('base64'),
        },
      };
    }),
  } as unknown as KinesisStreamEvent;
}

/**
 * Events in several hours of yesterday and today (never in the future), over the account's keys:
 * hour h gets 1 + (h mod 4) events of each key it picks.
 */
function eventsOverTwoDays(accountId: string, keyIds: readonly string[], now: number): UsageEvent[] {
  const yesterday = Date.parse(`${utcDay(now - 24 * HOUR)}T00:00:00Z`);
  const hours = [1, 5, 13, 14, 22].map((h) => yesterday + h * HOUR);
  const todayStart = yesterday + 24 * HOUR;
  for (const h of [0, 3, 7]) if (todayStart + h * HOUR + 60_000 < now) hours.push(todayStart + h * HOUR);
  const events: UsageEvent[] = [];
  hours.forEach((start, i) => {
    const count = 1 + (new Date(start).getUTCHours() % 4);
    for (const keyId of keyIds.slice(0, 1 + (i % keyIds.length))) {
      for (let n = 0; n < count; n++) {
        const event = newUsageEvent({ keyId, accountId, now: new Date(start + n * 60_000 + 1000) });
        events.push(event);
      }
    }
  });
  return events;
}

describe('GET /usage by hour and time zone, from counters the consumer wrote (DynamoDB Local)', () => {
  const dlq = `analytics-dlq-${process.pid}`;
  let dlqUrl = '';
  beforeAll(async () => {
    const { CreateQueueCommand } = await import('@aws-sdk/client-sqs');
    const created = await localClients().sqs.send(
      new CreateQueueCommand({ QueueName: `${dlq}-${Date.now()}` }),
    );
    dlqUrl = created.QueueUrl as string;
  });

  for (const transport of ['sqs', 'kinesis'] as const) {
    it(`${transport}: hour cells sum to the day, days to the total; Tokyo and New York days are the right UTC hours`, async () => {
      const { accountId, keyIds } = await account(transport, 3);
      const now = Date.now();
      const events = eventsOverTwoDays(accountId, keyIds, now);
      const consumer = meteringConsumer(transport, dlqUrl);
      for (let i = 0; i < events.length; i += 7) {
        const response = await consumer.handler(transportEvent(transport, events.slice(i, i + 7)));
        expect(response.batchItemFailures).toEqual([]);
      }
      const from = utcDay(now - 24 * HOUR);
      const to = utcDay(now);

      const hours = await usage(accountId, `from=${from}&to=${to}&granularity=hour&tz=UTC`);
      expect(hours.series).toHaveLength(48);
      for (const cell of hours.series) {
        const start = Date.parse(cell.start);
        expect(cell.count, cell.start).toBe(
          events.filter((e) => e.ts >= start && e.ts < start + HOUR).length,
        );
      }
      const days = await usage(accountId, `from=${from}&to=${to}&granularity=day&tz=UTC`);
      expect(days.days?.map((d) => d.date)).toEqual([from, to]);
      for (const [i, day] of (days.days ?? []).entries())
        expect(day.count).toBe(sum(hours.series.slice(i * 24, i * 24 + 24).map((c) => c.count)));
      expect(days.total).toBe(events.length);
      expect(hours.total).toBe(events.length);

      // Tokyo is UTC+9 all year; New York is UTC−5 in winter and UTC−4 in summer.
      const newYork = new Date(now).getUTCMonth() >= 3 && new Date(now).getUTCMonth() <= 9 ? -4 : -5;
      for (const [tz, offset] of [
        ['Asia/Tokyo', 9],
        ['America/New_York', newYork],
      ] as const) {
        const localFrom = dayAt(now - 24 * HOUR, offset);
        const localTo = dayAt(now, offset);
        const local = await usage(accountId, `from=${localFrom}&to=${localTo}&tz=${tz}`);
        expect(local.tz).toBe(tz);
        expect(local.rounded).toBeUndefined();
        for (const day of local.days ?? []) {
          const expected = events.filter((e) => dayAt(e.ts, offset) === day.date).length;
          expect(day.count, `${tz} ${day.date}`).toBe(expected);
        }
        const sign = offset < 0 ? '-' : '+';
        expect(local.series[0]?.start).toBe(
          `${localFrom}T00:00:00${sign}${String(Math.abs(offset)).padStart(2, '0')}:00`,
        );
      }

      const byKey = await usage(accountId, `from=${from}&to=${to}&granularity=hour&tz=UTC&groupBy=key`);
      // Every key of the account, the first key it was opened with (never used here) included.
      const accountKeys = (await keys.listKeys(accountId)).map((k) => k.keyId);
      expect(accountKeys).toEqual(expect.arrayContaining(keyIds));
      expect(byKey.keys?.map((k) => k.keyId).sort()).toEqual([...accountKeys].sort());
      for (const key of byKey.keys ?? [])
        expect(key.total, key.keyId).toBe(events.filter((e) => e.keyId === key.keyId).length);
    });
  }
});

describe('GET /usage across DST changes and in :30 zones (events placed by their event time)', () => {
  const store = new UsageStore({ client: dynamo, table: env[ENV.usageTable] as string });

  /** `perHour` events of `keyId` in every UTC hour from `fromIso` for `hours` hours. */
  async function everyHour(accountId: string, keyId: string, fromIso: string, hours: number, perHour = 1) {
    for (let h = 0; h < hours; h++) {
      const start = Date.parse(fromIso) + h * HOUR;
      const events: AggregateEvent[] = Array.from({ length: perHour }, (_, n) => ({
        id: randomUUID(),
        ts: start + n * 1000 + 500,
        units: 1,
      }));
      await store.applyTransaction(
        [{ owner: { accountId, keyId, day: utcDay(start) }, events, recordIds: events.map((e) => e.id) }],
        new Date(),
      );
    }
  }

  it('a New York day is 25 hours when DST ends and 23 when it starts, each cell a UTC hour', async () => {
    const { accountId, keyIds } = await account('dst', 1);
    const keyId = keyIds[0] as string;
    await everyHour(accountId, keyId, '2026-10-31T12:00:00Z', 48);
    await everyHour(accountId, keyId, '2026-03-07T12:00:00Z', 48);

    const fallBack = await usage(
      accountId,
      'from=2026-11-01&to=2026-11-01&tz=America/New_York&granularity=hour',
    );
    expect(fallBack.series).toHaveLength(25);
    expect(fallBack.series[0]?.start).toBe('2026-11-01T00:00:00-04:00');
    expect(fallBack.series[2]?.start).toBe('2026-11-01T01:00:00-05:00');
    expect(fallBack.total).toBe(25);
    const fallDay = await usage(accountId, 'from=2026-11-01&to=2026-11-01&tz=America/New_York');
    expect(fallDay.days).toEqual([{ date: '2026-11-01', count: 25 }]);

    const springForward = await usage(
      accountId,
      'from=2026-03-08&to=2026-03-08&tz=America/New_York&granularity=hour',
    );
    expect(springForward.series).toHaveLength(23);
    expect(springForward.total).toBe(23);
    // The UTC days hold 24 each: the local day is the right 23 of them, not a UTC day shifted.
    const utc = await usage(accountId, 'from=2026-03-08&to=2026-03-08&tz=UTC');
    expect(utc.total).toBe(24);
  });

  it('Kolkata (UTC+5:30): days are marked rounded, and the window total is every hour it holds', async () => {
    const { accountId, keyIds } = await account('kolkata', 1);
    await everyHour(accountId, keyIds[0] as string, '2026-11-10T00:00:00Z', 72, 2);
    const answer = await usage(accountId, 'from=2026-11-11&to=2026-11-11&tz=Asia/Kolkata');
    expect(answer.rounded).toBe(true);
    expect(answer.total).toBe(48);
  });

  it('groupBy=key over 25 keys equals 25 single-key calls; CSV equals JSON cell for cell', async () => {
    const { accountId, keyIds } = await account('many', 25);
    for (const [i, keyId] of keyIds.entries())
      await everyHour(accountId, keyId, '2026-12-01T00:00:00Z', 3, 1 + (i % 5));
    const query = 'from=2026-11-30&to=2026-12-02&tz=Europe/Paris&granularity=hour';
    const grouped = await usage(accountId, `${query}&groupBy=key`);
    // The 25 used keys, largest first, then the account's first key, unused, with zeros.
    expect(grouped.keys).toHaveLength(26);
    expect(
      grouped.keys
        ?.slice(0, 25)
        .map((k) => k.keyId)
        .sort(),
    ).toEqual([...keyIds].sort());
    expect(grouped.keys?.[25]?.total).toBe(0);
    const totals = (grouped.keys ?? []).map((k) => k.total);
    expect(totals).toEqual([...totals].sort((a, b) => b - a));
    for (const key of grouped.keys ?? []) {
      const single = await usage(accountId, `${query}&keyId=${key.keyId}`);
      expect(single.series, key.keyId).toEqual(key.series);
      expect(single.total).toBe(key.total);
    }

    const csv = await get(accountId, `${query}&groupBy=key&format=csv`);
    expect(csv.status).toBe(200);
    expect(csv.type).toContain('text/csv');
    const [header, ...rows] = csv.text.trimEnd().split('\r\n');
    expect(header).toBe('keyId,name,start,count');
    const expected = (grouped.keys ?? []).flatMap((k) =>
      k.series.map((c) => `${k.keyId},${k.name},${c.start},${c.count}`),
    );
    expect(rows).toEqual(expected);
    const accepted = await get(accountId, query, 'text/csv');
    expect(accepted.type).toContain('text/csv');
    expect(accepted.text.trimEnd().split('\r\n').slice(1)).toEqual(
      (await usage(accountId, query)).series.map((c) => `${c.start},${c.count}`),
    );
  });

  it('include=refusals: per cell and per key, in JSON and CSV alike, never in the billed total', async () => {
    const { accountId, keyIds } = await account('refused', 2);
    const [busy, quiet] = keyIds as [string, string];
    await everyHour(accountId, busy, '2026-12-03T08:00:00Z', 2, 3);
    const recorder = new RefusalRecorder({ client: dynamo, table: env[ENV.usageTable] as string });
    const at = (iso: string) => Date.parse(iso);
    const { unwritten } = await recorder.record([
      { accountId, keyId: busy, hourStart: at('2026-12-03T08:00:00Z'), reason: 'rate_limited', count: 4 },
      { accountId, keyId: busy, hourStart: at('2026-12-03T09:00:00Z'), reason: 'quota_exceeded', count: 2 },
      {
        accountId,
        keyId: quiet,
        hourStart: at('2026-12-03T09:00:00Z'),
        reason: 'account_suspended',
        count: 1,
      },
    ]);
    expect(unwritten).toEqual([]);
    const query = 'from=2026-12-03&to=2026-12-03&tz=UTC&granularity=hour&include=refusals';
    const answer = await usage(accountId, query);
    expect(answer.total).toBe(6);
    expect(answer.refusals?.total).toEqual({ rate_limited: 4, quota_exceeded: 2, account_suspended: 1 });
    expect(answer.refusals?.series[8]).toEqual({
      start: '2026-12-03T08:00:00Z',
      rate_limited: 4,
      quota_exceeded: 0,
      account_suspended: 0,
    });
    const byKey = await usage(accountId, `${query}&groupBy=key`);
    const busyKey = byKey.keys?.find((k) => k.keyId === busy);
    expect(busyKey?.total).toBe(6);
    expect(busyKey?.refusals?.total).toEqual({ rate_limited: 4, quota_exceeded: 2, account_suspended: 0 });
    expect(byKey.keys?.find((k) => k.keyId === quiet)?.refusals?.total.account_suspended).toBe(1);

    const csv = await get(accountId, `${query}&format=csv`);
    const [header, ...rows] = csv.text.trimEnd().split('\r\n');
    expect(header).toBe('start,count,rate_limited,quota_exceeded,account_suspended');
    expect(rows[9]).toBe('2026-12-03T09:00:00Z,3,0,2,1');
    expect(rows).toHaveLength(24);
  });

  it('the account time zone is the default; a bad query names its parameter', async () => {
    const { accountId } = await account('settings', 1);
    const patched = await app.request('/me', {
      method: 'PATCH',
      headers: { authorization: `Bearer ${accountId}`, 'content-type': 'application/json' },
      body: JSON.stringify({ timeZone: 'Asia/Tokyo' }),
    });
    expect(patched.status).toBe(200);
    expect((await usage(accountId, 'from=2026-12-01&to=2026-12-01')).tz).toBe('Asia/Tokyo');
    const me = await app.request('/me', { headers: { authorization: `Bearer ${accountId}` } });
    expect(((await me.json()) as { timeZone: string }).timeZone).toBe('Asia/Tokyo');

    const badZone = await app.request('/me', {
      method: 'PATCH',
      headers: { authorization: `Bearer ${accountId}`, 'content-type': 'application/json' },
      body: JSON.stringify({ timeZone: 'Mars/Olympus' }),
    });
    expect(badZone.status).toBe(400);

    for (const [query, parameter] of [
      ['from=2026-01-01&to=2026-03-01&granularity=hour', 'from'],
      ['granularty=hour', 'granularty'],
      ['tz=Not/AZone', 'tz'],
      ['granularity=minute', 'granularity'],
      ['groupBy=route&granularity=hour', 'groupBy'],
    ] as const) {
      const answer = await get(accountId, query);
      expect(answer.status, query).toBe(400);
      const body = JSON.parse(answer.text) as {
        error: { code: string; message: string; details?: { path: string }[] };
      };
      expect(body.error.code).toBe('invalid_request');
      expect(
        body.error.details?.map((d) => d.path),
        query,
      ).toContain(parameter);
    }
  });
});
