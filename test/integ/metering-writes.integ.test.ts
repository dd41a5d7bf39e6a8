import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { KinesisStreamEvent, SQSEvent } from 'aws-lambda';
import { afterAll, describe, expect, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { newUsageEvent, type UsageEvent, utcDay } from '../../contracts/usage-event';
import { KinesisPoller } from '../../infra/local/pollers/kinesis-poller';
import { SqsPoller } from '../../infra/local/pollers/sqs-poller';
import { countRequests } from '../support/aws';
import { recordFigures } from '../support/figures';
import { endpoints, stackEnv } from '../support/local-stack';
import { meteringConsumer } from '../support/metering-consumer';
import { createTestStream } from '../support/queues';
import { eventually } from '../support/wait';

const EVENTS = 20_000;
const KEYS = 100;
const ACCOUNTS = 10;
/**
 * The Zipf draw's seed: the same keys get the same traffic on every run, so docs/metering.md's
 * figures (rendered from this test's artifact) change only with the code, or the poller's batching.
 */
const SEED = 20_261_202;
const BATCH_SIZE = 1000;
const PRODUCER_ID = 'write-amplification-gate-0';

/** Seeded PRNG (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Zipf(s=1) over KEYS keys: key 0 gets about a fifth of all traffic, the tail a trickle. */
function zipfSampler(n: number, random: () => number): () => number {
  const weights = Array.from({ length: n }, (_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const cumulative: number[] = [];
  weights.reduce((sum, w, i) => (cumulative[i] = sum + w / total), 0);
  return () => {
    const r = random();
    const index = cumulative.findIndex((c) => r <= c);
    return index === -1 ? n - 1 : index;
  };
}

/** EVENTS usage events over KEYS keys (Zipf) in ACCOUNTS accounts, and how many each key got. */
function zipfEvents() {
  const run = `${process.pid}_${Date.now()}`;
  const keyIds = Array.from({ length: KEYS }, (_, i) => `key_amp_${run}_${i}`);
  const sample = zipfSampler(KEYS, seeded(SEED));
  const perKey = new Map<string, number>();
  const accountOfKey = new Map<string, string>();
  const events: UsageEvent[] = Array.from({ length: EVENTS }, () => {
    const i = sample();
    const keyId = keyIds[i] as string;
    perKey.set(keyId, (perKey.get(keyId) ?? 0) + 1);
    accountOfKey.set(keyId, `acc_amp_${run}_${i % ACCOUNTS}`);
    // One gate container published them all, as one key-api container does in the bench.
    return newUsageEvent({
      keyId,
      accountId: accountOfKey.get(keyId) as string,
      now: new Date(),
      producerId: PRODUCER_ID,
    });
  });
  return { run, events, perKey, accountOfKey };
}

interface ItemTally {
  count: number;
  /** By what the item is: an event's mark, a key-day counter, an account-period or producer item. */
  marks: number;
  counters: number;
  periods: number;
  /** The most account-period and producer items one transaction held. */
  mostPeriodsInOne: number;
}

/** What a written item's key says it is (counter-keys.ts), read from the request itself. */
function kindOf(item: { Put?: { Item?: { sk?: string } }; Update?: { Key?: { sk?: string } } }): string {
  const sk = item.Put?.Item?.sk ?? item.Update?.Key?.sk ?? '';
  return sk === 'EVENT'
    ? 'mark'
    : sk.startsWith('DAY#')
      ? 'counter'
      : sk.startsWith('PERIOD#')
        ? 'period'
        : sk;
}

/** Items of the TransactWriteItems requests a client sends (each billed 2 write units on AWS). */
function transactionItems(client: DynamoDBClient): ItemTally {
  const tally = { count: 0, marks: 0, counters: 0, periods: 0, mostPeriodsInOne: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'TransactWriteItemsCommand') {
        const items = (args.input as { TransactItems?: Parameters<typeof kindOf>[0][] }).TransactItems ?? [];
        tally.count += items.length;
        let periods = 0;
        for (const item of items) {
          const kind = kindOf(item);
          if (kind === 'mark') tally.marks++;
          else if (kind === 'counter') tally.counters++;
          else if (kind === 'period') periods++;
          else throw new Error(`an unexpected item in a metering transaction: ${kind}`);
        }
        tally.periods += periods;
        tally.mostPeriodsInOne = Math.max(tally.mostPeriodsInOne, periods);
      }
      return next(args);
    },
    { step: 'initialize', name: 'transactionItems' },
  );
  return tally;
}

const consumerOnTheStackDlq = (transport: 'sqs' | 'kinesis') =>
  meteringConsumer(transport, stackEnv()[ENV.usageDlqUrl] ?? '');

/**
 * The (key, day) aggregates of a batch and their event ids, read from the raw Lambda event (not with
 * the consumer's own parsing): the expectation is worked out apart from the code it checks.
 */
function aggregatesOf(bodies: readonly string[]): Map<string, Set<string>> {
  const ids = new Map<string, Set<string>>();
  for (const body of bodies) {
    const e = JSON.parse(body) as { id: string; keyId: string; accountId: string; ts: number };
    const aggregate = `${e.accountId}/${e.keyId}/${new Date(e.ts).toISOString().slice(0, 10)}`;
    ids.set(aggregate, (ids.get(aggregate) ?? new Set()).add(e.id));
  }
  return ids;
}

/** What the two tests measured, for docs/metering.md (rendered by `npm run reliability:report`). */
const figures: Record<string, unknown> = {
  parameters: {
    events: EVENTS,
    keys: KEYS,
    accounts: ACCOUNTS,
    zipfExponent: 1,
    seed: SEED,
    batchSize: BATCH_SIZE,
  },
};
afterAll(async () => {
  if (figures.sqs && figures.kinesis) await recordFigures('metering-writes', figures);
});

describe('write amplification', () => {
  it(`${EVENTS} events over ${KEYS} keys cost one mark each and one counter write per (key, day) per batch, packed into full transactions, counted at the client`, async () => {
    const { clients, usage, handler, countedSoFar } = consumerOnTheStackDlq('sqs');
    const writes = countRequests(clients.dynamo);
    const items = transactionItems(clients.dynamo);
    const { run, events, perKey, accountOfKey } = zipfEvents();
    const bodies = events.map((e) => JSON.stringify(e));

    const queueName = `amp-${run}`;
    const queue = await clients.sqs.send(
      new CreateQueueCommand({ QueueName: queueName, Attributes: { VisibilityTimeout: '120' } }),
    );
    const queueUrl = queue.QueueUrl as string;
    const queueArn = (
      await clients.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
      )
    ).Attributes?.QueueArn as string;
    for (let i = 0; i < bodies.length; i += 10) {
      await clients.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: bodies.slice(i, i + 10).map((MessageBody, n) => ({ Id: `m${n}`, MessageBody })),
        }),
      );
    }

    // Counter writes the batches should cost, worked out from the records alone: one per (key, day)
    // per batch, and one more per 97 further events of it (a transaction holds 100 items, and a
    // part's own counter, its account's period item and the container's share of it come along).
    let expectedCounterItems = 0;
    let aggregates = 0;
    let batches = 0;
    const poller = new SqsPoller({
      sqs: clients.sqs,
      queueUrl,
      queueArn,
      region: endpoints().region,
      batchSize: BATCH_SIZE,
      // Long enough to fill a batch: what is measured is aggregation, not the poller's timing.
      batchingWindowMs: 3000,
      handler: async (event: SQSEvent) => {
        const idsByKeyDay = aggregatesOf(event.Records.map((r) => r.body));
        batches++;
        aggregates += idsByKeyDay.size;
        for (const ids of idsByKeyDay.values()) expectedCounterItems += Math.ceil(ids.size / 97);
        return handler(event);
      },
    });
    poller.start();
    try {
      await eventually(async () => countedSoFar() >= EVENTS, 240_000, 200);
    } finally {
      await poller.stop();
    }

    const transactions = writes.get('TransactWriteItemsCommand') ?? 0;
    const otherWrites = [...writes.entries()].filter(
      ([name]) => /Put|Update|Delete|BatchWrite/.test(name) && name !== 'TransactWriteItemsCommand',
    );
    expect(countedSoFar()).toBe(EVENTS);
    expect(otherWrites).toEqual([]);
    // Every event's mark, the counter writes, and in each transaction the period item of each
    // account it holds events of and the one gate container's share of it: nothing else.
    expect(items.marks).toBe(EVENTS);
    expect(items.counters).toBe(expectedCounterItems);
    expect(items.count).toBe(EVENTS + expectedCounterItems + items.periods);
    expect(items.periods).toBeGreaterThanOrEqual(2 * transactions);
    expect(items.mostPeriodsInOne).toBeLessThanOrEqual(2 * ACCOUNTS);
    // Packed: the transactions are (nearly) full, not one per aggregate.
    expect(transactions).toBeLessThanOrEqual(Math.ceil(items.count / 90));
    const units = (2 * items.count) / EVENTS;
    console.info(
      `write amplification: ${EVENTS} events -> ${transactions} TransactWriteItems, ${items.count} items (${units.toFixed(3)} write units per event)`,
    );

    const day = utcDay(Date.now());
    for (const [keyId, count] of perKey)
      expect(await usage.keyDayCount(accountOfKey.get(keyId) as string, keyId, day), keyId).toBe(count);
    figures.sqs = {
      batches,
      aggregates,
      transactions,
      transactionItems: items.count,
      periodItems: items.periods,
      counted: countedSoFar(),
    };
  }, 300_000);

  it(`Kinesis: ${EVENTS} events cost one plain UpdateItem per (key, day) per batch and no per-event write`, async () => {
    const { clients, usage, handler, countedSoFar } = consumerOnTheStackDlq('kinesis');
    const writes = countRequests(clients.dynamo);
    const { run, events, perKey, accountOfKey } = zipfEvents();
    const { name: streamName, arn: streamArn } = await createTestStream(
      clients.kinesis,
      clients.sqs,
      `amp-${run}`,
    );
    for (let i = 0; i < events.length; i += 500) {
      await clients.kinesis.send(
        new PutRecordsCommand({
          StreamName: streamName,
          Records: events.slice(i, i + 500).map((e) => ({
            PartitionKey: e.keyId,
            Data: Buffer.from(JSON.stringify(e)),
          })),
        }),
      );
    }
    let counterUpdates = 0;
    let periodUpdates = 0;
    let batches = 0;
    const poller = new KinesisPoller({
      kinesis: clients.kinesis,
      streamName,
      streamArn,
      region: endpoints().region,
      batchSize: BATCH_SIZE,
      checkpointFile: join(await mkdtemp(join(tmpdir(), 'amp-')), 'checkpoints.json'),
      handler: async (event: KinesisStreamEvent) => {
        // What the batch should cost, from the records alone: one update per (key, day) in it.
        const bodies = event.Records.map((r) => Buffer.from(r.kinesis.data, 'base64').toString('utf8'));
        batches++;
        counterUpdates += aggregatesOf(bodies).size;
        // And one update of each account's period item and of the container's share of it.
        periodUpdates +=
          2 * new Set(bodies.map((b) => (JSON.parse(b) as { accountId: string }).accountId)).size;
        return handler(event);
      },
    });
    await poller.start();
    try {
      await eventually(async () => countedSoFar() >= EVENTS, 240_000, 200);
    } finally {
      await poller.stop();
    }

    const updates = writes.get('UpdateItemCommand') ?? 0;
    const otherWrites = [...writes.entries()].filter(
      ([name]) => /Put|Update|Delete|BatchWrite|Transact/.test(name) && name !== 'UpdateItemCommand',
    );
    expect(countedSoFar()).toBe(EVENTS);
    expect(otherWrites).toEqual([]);
    expect(updates).toBe(counterUpdates + periodUpdates);
    // A batch of 1,000 touches at most its 100 keys' day counters and its 10 accounts' period items
    // (and their shares): about 0.12 write units per event or less, where marks alone would cost 2
    // (and the article's design 2).
    expect(updates).toBeLessThan(EVENTS / 8);
    console.info(
      `write amplification (Kinesis): ${EVENTS} events -> ${updates} UpdateItem (${(updates / EVENTS).toFixed(3)} per event, 1 write unit each)`,
    );
    const day = utcDay(Date.now());
    for (const [keyId, count] of perKey)
      expect(await usage.keyDayCount(accountOfKey.get(keyId) as string, keyId, day), keyId).toBe(count);
    figures.kinesis = {
      batches,
      aggregates: counterUpdates,
      periodUpdates,
      updates,
      counted: countedSoFar(),
    };
  }, 300_000);
});
