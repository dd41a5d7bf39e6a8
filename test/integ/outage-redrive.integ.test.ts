import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { type UsageEvent, utcDay } from '../../contracts/usage-event';
import { KinesisPoller } from '../../infra/local/pollers/kinesis-poller';
import { type SqsBatchHandler, SqsPoller } from '../../infra/local/pollers/sqs-poller';
import { runRedrive } from '../../infra/ops/usage-redrive';
import { KinesisUsagePublisher, SqsUsagePublisher, type UsagePublisher } from '../../services/gate/publisher';
import { UsageReader } from '../../services/usage/usage-reader';
import { albEvent } from '../support/alb';
import { awsError, engineClients, injectFaults, LOCAL_CREDENTIALS } from '../support/aws';
import { recordFigures } from '../support/figures';
import { buildKeyApi, keyStore, tablesFrom } from '../support/key-api';
import { meteringConsumer } from '../support/metering-consumer';
import { createTestQueue, createTestStream, queueCounts, queueDepth, receiveAll } from '../support/queues';
import { eventually, sleep } from '../support/wait';

// Issue 21, "nothing lost in an outage of any length within the late window": DynamoDB is
// unavailable to metering (every call of its own real client fails) for longer than the queue's
// redelivery and the Kinesis retries wait (both shortened here: 3 receives a second apart, records
// given up on after 3 s), so the usage reaches the dead-letter queue. After DynamoDB is back, and
// traffic has gone on, the shipped redrive (npm run usage:redrive's runRedrive) sends it back:
// every 200 key-api answered is counted exactly once, on both transports.

const endpoints = inject('endpoints');
const tables = tablesFrom(inject('env'));
const admin = engineClients(endpoints);
const store = keyStore(admin.dynamo, tables);
const usage = new UsageReader({ client: admin.doc, table: tables.usage });
const local = {
  region: endpoints.region,
  credentials: LOCAL_CREDENTIALS,
  endpoints: { dynamodb: endpoints.dynamodb, sqs: endpoints.sqs, kinesis: endpoints.kinesis },
};

/** The shortened redelivery: SQS gives a message up after 3 receives, 1 s apart. */
const VISIBILITY_SECONDS = 1;
const MAX_RECEIVES = 3;
/** The shortened Kinesis retries: records older than this are given up on (MaximumRecordAge). */
const MAX_RECORD_AGE_MS = 3000;
/** Requests during the outage and after it, per key. */
const DURING = 40;
const AFTER = 10;

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(stops.splice(0).map((stop) => stop()));
});

const figures: Record<string, unknown> = {};
afterAll(async () => {
  if (Object.keys(figures).length === 2) await recordFigures('outage-redrive', figures);
  admin.dynamo.destroy();
  admin.sqs.destroy();
  admin.kinesis.destroy();
});

let accounts = 0;
async function newKey(): Promise<{ keyId: string; accountId: string; key: string }> {
  const accountId = `outage_${process.pid}_${Date.now()}_${accounts++}`;
  await store.provisionAccount({
    accountId,
    email: `${accountId}@example.com`,
    userName: accountId,
    now: new Date(),
  });
  const created = await store.createKey({ accountId, name: 'outage', now: new Date() });
  if (!created.ok) throw new Error('no key');
  return { keyId: created.value.record.keyId, accountId, key: created.value.secret.key };
}

/** `count` requests to key-api with each key; every answer must be a 200 (that is what is billed). */
async function requests(publisher: UsagePublisher, keys: readonly { key: string }[], count: number) {
  const api = buildKeyApi({ dynamo: admin.dynamo, tables, publisher });
  let ok = 0;
  for (let i = 0; i < count; i++) {
    for (const { key } of keys) {
      const result = await api.handler(albEvent({ method: 'GET', headers: { 'x-api-key': key } }));
      expect(result.statusCode).toBe(200);
      ok++;
    }
  }
  return ok;
}

/** Metering's own DynamoDB client, failing every call while `down.value` (as in an outage). */
function meteringDuringOutage(transport: 'sqs' | 'kinesis', dlqUrl: string) {
  const own = engineClients(endpoints);
  const down = { value: true, refused: 0 };
  injectFaults(own.dynamo, () => {
    if (!down.value) return undefined;
    down.refused++;
    return awsError('ServiceUnavailable', 'DynamoDB is unavailable');
  });
  const consumer = meteringConsumer(transport, dlqUrl, admin.kinesis, {
    dynamo: own.doc,
    keys: own.doc,
    seedTestKeys: false,
  });
  stops.push(async () => own.dynamo.destroy());
  return { consumer, down };
}

function sqsPoller(queue: { queueUrl: string; queueArn: string }, handler: SqsBatchHandler) {
  const poller = new SqsPoller({
    sqs: admin.sqs,
    queueUrl: queue.queueUrl,
    queueArn: queue.queueArn,
    region: endpoints.region,
    handler,
    batchSize: 50,
    batchingWindowMs: 100,
    idleMs: 50,
  });
  poller.start();
  stops.push(() => poller.stop());
}

const today = () => utcDay(Date.now());
const countOf = (k: { accountId: string; keyId: string }) => usage.keyDayCount(k.accountId, k.keyId, today());

/** Waits until each key's count reaches what it was answered 200 for, then a while longer. */
async function countedExactly(keys: readonly { accountId: string; keyId: string }[], expected: number) {
  await eventually(async () => {
    for (const k of keys) if ((await countOf(k)) < expected) return false;
    return true;
  }, 30_000);
  // Long enough for another redelivery round: a double count would show by now.
  await sleep(2500);
  return Promise.all(keys.map(countOf));
}

describe('a DynamoDB outage longer than the redelivery, then the shipped redrive', () => {
  it('SQS: the dead-lettered usage is sent back and every 200 is counted exactly once', async () => {
    const queue = await createTestQueue(admin.sqs, 'outage', {
      visibilityTimeoutSeconds: VISIBILITY_SECONDS,
      maxReceiveCount: MAX_RECEIVES,
    });
    const { consumer, down } = meteringDuringOutage('sqs', queue.dlqUrl);
    sqsPoller(queue, consumer.handler);
    const keys = [await newKey(), await newKey()];
    const { publisher, published } = recording(
      new SqsUsagePublisher({ queueUrl: queue.queueUrl, client: admin.sqs }),
    );

    const outageStarted = Date.now();
    const during = await requests(publisher, keys, DURING);
    // The outage outlasts the redelivery: every event is in the dead-letter queue, none counted.
    await eventually(async () => (await queueDepth(admin.sqs, queue.dlqUrl)) === during, 30_000);
    expect(await queueDepth(admin.sqs, queue.queueUrl)).toBe(0);
    const outageMs = Date.now() - outageStarted;
    expect(outageMs).toBeGreaterThan(VISIBILITY_SECONDS * 1000 * (MAX_RECEIVES - 1));
    for (const k of keys) expect(await countOf(k)).toBe(0);

    down.value = false;
    const after = await requests(publisher, keys, AFTER);
    await countedExactly(keys, AFTER);

    const report = await runRedrive({
      aws: local,
      deadLetterQueueUrl: queue.dlqUrl,
      targetQueueUrl: queue.queueUrl,
      usageTable: tables.usage,
    });
    expect(report).toMatchObject({ eventsSentBack: during, kinesisBatches: 0, failed: [] });
    const counts = await countedExactly(keys, DURING + AFTER);
    expect(counts).toEqual(keys.map(() => DURING + AFTER));
    expect(await queueDepth(admin.sqs, queue.dlqUrl)).toBe(0);

    // Run again (an operator's second try): nothing left, nothing counted twice.
    const again = await runRedrive({
      aws: local,
      deadLetterQueueUrl: queue.dlqUrl,
      targetQueueUrl: queue.queueUrl,
      usageTable: tables.usage,
    });
    expect(again.eventsSentBack).toBe(0);

    // A redrive stopped between sending and deleting sends a copy again: its mark makes it a duplicate.
    const anEvent = published[0];
    await admin.sqs.send(
      new SendMessageCommand({ QueueUrl: queue.dlqUrl, MessageBody: JSON.stringify(anEvent) }),
    );
    const repeat = await runRedrive({
      aws: local,
      deadLetterQueueUrl: queue.dlqUrl,
      targetQueueUrl: queue.queueUrl,
      usageTable: tables.usage,
    });
    expect(repeat.eventsSentBack).toBe(1);
    await sleep(2000);
    expect(await Promise.all(keys.map(countOf))).toEqual(keys.map(() => DURING + AFTER));

    const counted = counts.reduce((a, b) => a + b, 0);
    figures.sqs = {
      answered200: during + after,
      counted,
      lost: Math.max(0, during + after - counted),
      doubled: Math.max(0, counted - (during + after)),
      deadLettered: during,
      redriven: report.eventsSentBack,
      outageMs,
      redeliveryMs: VISIBILITY_SECONDS * 1000 * MAX_RECEIVES,
      refusedDynamoCalls: down.refused,
    };
  });

  it('Kinesis: the given-up batches are read back from the stream, sent to the SQS path, and every 200 is counted exactly once', async () => {
    const stream = await createTestStream(admin.kinesis, admin.sqs, 'koutage');
    // What a Kinesis stack's redrive queue is: metering counts it with marks, like the SQS transport.
    const redriveQueue = await createTestQueue(admin.sqs, 'koutage-redrive', {
      visibilityTimeoutSeconds: VISIBILITY_SECONDS,
      maxReceiveCount: MAX_RECEIVES,
    });
    const { consumer, down } = meteringDuringOutage('kinesis', stream.dlqUrl);
    let givenUp = 0;
    const poller = new KinesisPoller({
      kinesis: admin.kinesis,
      streamName: stream.name,
      streamArn: stream.arn,
      region: endpoints.region,
      handler: consumer.handler,
      checkpointFile: join(await mkdtemp(join(tmpdir(), 'koutage-')), 'checkpoints.json'),
      batchSize: 25,
      idleMs: 50,
      maxRecordAgeMs: MAX_RECORD_AGE_MS,
      maxRetryAttempts: -1,
      bisectBatchOnError: true,
      onFailure: async (description) => {
        givenUp += description.KinesisBatchInfo.batchSize;
        await admin.sqs.send(
          new SendMessageCommand({ QueueUrl: stream.dlqUrl, MessageBody: JSON.stringify(description) }),
        );
      },
    });
    await poller.start();
    stops.push(() => poller.stop());
    sqsPoller(redriveQueue, consumer.handler);
    const keys = [await newKey(), await newKey()];
    const publisher = new KinesisUsagePublisher({
      streamName: stream.name,
      client: engineClients(endpoints, { maxAttempts: 1 }).kinesis,
    });

    const outageStarted = Date.now();
    const during = await requests(publisher, keys, DURING);
    // Retried (not skipped) until the records were MAX_RECORD_AGE_MS old, then described.
    await eventually(async () => givenUp >= during, 30_000);
    const outageMs = Date.now() - outageStarted;
    expect(outageMs).toBeGreaterThan(MAX_RECORD_AGE_MS);
    expect(givenUp).toBe(during);
    for (const k of keys) expect(await countOf(k)).toBe(0);
    const descriptions = (await queueCounts(admin.sqs, stream.dlqUrl)).visible;
    expect(descriptions).toBeGreaterThan(0);

    down.value = false;
    const after = await requests(publisher, keys, AFTER);
    await countedExactly(keys, AFTER);

    // Kept to replay below, as a redrive stopped before deleting them would leave them.
    const described = (
      await receiveAll(admin.sqs, stream.dlqUrl, { remove: false, visibilityTimeout: 1 })
    ).map((m) => m.Body ?? '');
    expect(described).toHaveLength(descriptions);
    await sleep(1500);

    const target = {
      aws: local,
      deadLetterQueueUrl: stream.dlqUrl,
      targetQueueUrl: redriveQueue.queueUrl,
      usageTable: tables.usage,
    };
    const report = await runRedrive(target);
    expect(report).toMatchObject({
      kinesisBatches: descriptions,
      kinesisRecords: during,
      kinesisSent: during,
      kinesisAlreadyCounted: 0,
      failed: [],
    });
    const counts = await countedExactly(keys, DURING + AFTER);
    expect(counts).toEqual(keys.map(() => DURING + AFTER));
    expect(await queueDepth(admin.sqs, stream.dlqUrl)).toBe(0);

    // The same descriptions once more: every record is sent again, and the marks of the SQS path
    // make each copy a duplicate, though the counters' watermarks have moved on past the range.
    for (const body of described) {
      await admin.sqs.send(new SendMessageCommand({ QueueUrl: stream.dlqUrl, MessageBody: body }));
    }
    const repeat = await runRedrive(target);
    expect(repeat.kinesisSent).toBe(during);
    await sleep(2500);
    expect(await Promise.all(keys.map(countOf))).toEqual(keys.map(() => DURING + AFTER));
    expect(await queueDepth(admin.sqs, redriveQueue.dlqUrl)).toBe(0);
    const counted = counts.reduce((a, b) => a + b, 0);
    figures.kinesis = {
      answered200: during + after,
      counted,
      lost: Math.max(0, during + after - counted),
      doubled: Math.max(0, counted - (during + after)),
      givenUpRecords: givenUp,
      descriptions: report.kinesisBatches,
      redriven: report.kinesisSent,
      assumedUncounted: report.assumedUncounted,
      outageMs,
      maxRecordAgeMs: MAX_RECORD_AGE_MS,
      refusedDynamoCalls: down.refused,
    };
  });
});

/** The gate's publisher, keeping what it published (to replay a copy as a stopped redrive would). */
function recording(publisher: UsagePublisher): { publisher: UsagePublisher; published: UsageEvent[] } {
  const published: UsageEvent[] = [];
  return {
    published,
    publisher: {
      publish: async (event) => {
        await publisher.publish(event);
        published.push(event);
      },
    },
  };
}
