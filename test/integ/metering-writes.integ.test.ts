import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  PutRecordsCommand,
} from '@aws-sdk/client-kinesis';
import { CreateQueueCommand, GetQueueAttributesCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { KinesisStreamEvent, SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { newUsageEvent, type UsageEvent, utcDay } from '../../contracts/usage-event';
import { KinesisPoller } from '../../infra/local/pollers/kinesis-poller';
import { SqsPoller } from '../../infra/local/pollers/sqs-poller';
import { DEFAULT_WINDOW, prepareBatch } from '../../services/metering/batch';
import { inboundRecords } from '../../services/metering/records';
import { MAX_EVENTS_PER_TRANSACTION } from '../../services/metering/usage-store';
import { countRequests } from '../support/aws';
import { endpoints, stackEnv } from '../support/local-stack';
import { meteringConsumer } from '../support/metering-consumer';
import { eventually } from '../support/wait';

const EVENTS = 20_000;
const KEYS = 100;
const ACCOUNTS = 10;

/** Zipf(s=1) over KEYS keys: key 0 gets about a fifth of all traffic, the tail a trickle. */
function zipfSampler(n: number, random = Math.random): () => number {
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
  const sample = zipfSampler(KEYS);
  const perKey = new Map<string, number>();
  const events: UsageEvent[] = Array.from({ length: EVENTS }, () => {
    const i = sample();
    const keyId = keyIds[i] as string;
    perKey.set(keyId, (perKey.get(keyId) ?? 0) + 1);
    return newUsageEvent({ keyId, accountId: `acc_amp_${run}_${i % ACCOUNTS}`, now: new Date() });
  });
  return { run, events, perKey };
}

const consumerOnTheStackDlq = (transport: 'sqs' | 'kinesis') =>
  meteringConsumer(transport, stackEnv()[ENV.usageDlqUrl] ?? '');

describe('write amplification', () => {
  it(`${EVENTS} events over ${KEYS} keys cost one transaction per (key, day) per batch, counted at the client`, async () => {
    const { clients, usage, handler, countedSoFar } = consumerOnTheStackDlq('sqs');
    const writes = countRequests(clients.dynamo);
    const { run, events, perKey } = zipfEvents();
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

    let expectedTransactions = 0;
    const poller = new SqsPoller({
      sqs: clients.sqs,
      queueUrl,
      queueArn,
      region: endpoints().region,
      batchSize: 1000,
      // Long enough to fill a batch: what is measured is aggregation, not the poller's timing.
      batchingWindowMs: 3000,
      handler: async (event: SQSEvent) => {
        const records = inboundRecords(event);
        // What the batch should cost: one transaction per aggregate, per 97 of its events.
        for (const { aggregate } of prepareBatch(records, new Date(), DEFAULT_WINDOW).aggregates) {
          expectedTransactions += Math.ceil(aggregate.events.length / MAX_EVENTS_PER_TRANSACTION);
        }
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
    expect(transactions).toBe(expectedTransactions);
    // Aggregation is real: far fewer write requests than events.
    expect(transactions).toBeLessThan(EVENTS / 5);
    console.info(
      `write amplification: ${EVENTS} events -> ${transactions} TransactWriteItems (${(transactions / EVENTS).toFixed(3)} per event)`,
    );

    const day = utcDay(Date.now());
    for (const [keyId, count] of perKey) expect(await usage.keyDayCount(keyId, day), keyId).toBe(count);
  }, 300_000);

  it(`Kinesis: ${EVENTS} events cost one plain UpdateItem per counter per batch and no per-event write`, async () => {
    const { clients, usage, handler, countedSoFar } = consumerOnTheStackDlq('kinesis');
    const writes = countRequests(clients.dynamo);
    const { run, events, perKey } = zipfEvents();
    const streamName = `amp-${run}`;
    await clients.kinesis.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: 1 }));
    let streamArn = '';
    await eventually(async () => {
      const summary = await clients.kinesis.send(
        new DescribeStreamSummaryCommand({ StreamName: streamName }),
      );
      streamArn = summary.StreamDescriptionSummary?.StreamARN ?? '';
      return summary.StreamDescriptionSummary?.StreamStatus === 'ACTIVE';
    }, 10_000);
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
    let expectedUpdates = 0;
    const poller = new KinesisPoller({
      kinesis: clients.kinesis,
      streamName,
      streamArn,
      region: endpoints().region,
      batchSize: 1000,
      checkpointFile: join(await mkdtemp(join(tmpdir(), 'amp-')), 'checkpoints.json'),
      handler: async (event: KinesisStreamEvent) => {
        const records = inboundRecords(event);
        // What the batch should cost: one update per counter it touches (key day, key total, account day).
        const counters = new Set<string>();
        for (const { event: e } of prepareBatch(records, new Date(), DEFAULT_WINDOW).accepted) {
          const day = utcDay(e.ts);
          counters.add(`k${e.keyId}${day}`).add(`t${e.keyId}`).add(`a${e.accountId}${day}`);
        }
        expectedUpdates += counters.size;
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
    expect(updates).toBe(expectedUpdates);
    // A batch of 1,000 touches at most 2 × 100 key counters + 10 account counters: about 0.2
    // write units per event, where marks alone would cost 2 (and the article's design 2).
    expect(updates).toBeLessThan(EVENTS / 4);
    console.info(
      `write amplification (Kinesis): ${EVENTS} events -> ${updates} UpdateItem (${(updates / EVENTS).toFixed(3)} per event, 1 write unit each)`,
    );
    const day = utcDay(Date.now());
    for (const [keyId, count] of perKey) expect(await usage.keyDayCount(keyId, day), keyId).toBe(count);
  }, 300_000);
});
