import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type UsageEvent, utcDay } from '../../contracts/usage-event';
import { type KinesisBatchHandler, KinesisPoller } from '../../infra/local/pollers/kinesis-poller';
import { KinesisUsagePublisher } from '../../services/gate/publisher';
import type { UsageReader } from '../../services/usage/usage-reader';
import { awsError, countRequests, injectFaults, LOCAL_CREDENTIALS } from '../support/aws';
import { recordFigures } from '../support/figures';
import { endpoints, localClients } from '../support/local-stack';
import { accountOf, meteringConsumer, testEvents, totalsOf } from '../support/metering-consumer';
import { createTestStream } from '../support/queues';
import { eventually } from '../support/wait';

// Exactness on the Kinesis path, where counters are guarded by sequence numbers instead of
// per-event marks: every way the event source or key-api can deliver an event again, on the real
// Kinesis emulator and DynamoDB Local, with faults injected into real clients.

const pollers: KinesisPoller[] = [];

afterEach(async () => {
  await Promise.all(pollers.splice(0).map((p) => p.stop()));
});

/** What each case measured, for RELIABILITY.md (`npm run reliability:report`); all cases or none. */
const figures: Record<string, unknown> = {};
const CASES = 6;
afterAll(async () => {
  if (Object.keys(figures).length >= CASES) await recordFigures('metering-kinesis-faults', figures);
});

async function testStream() {
  const { kinesis, sqs } = localClients();
  return createTestStream(kinesis, sqs, 'kfault');
}

const consumer = (dlqUrl: string, lookBackKinesis?: KinesisClient) =>
  meteringConsumer('kinesis', dlqUrl, lookBackKinesis);

async function poll(stream: { name: string; arn: string }, handler: KinesisBatchHandler, batchSize = 25) {
  const poller = new KinesisPoller({
    kinesis: localClients().kinesis,
    streamName: stream.name,
    streamArn: stream.arn,
    region: endpoints().region,
    handler,
    // A fresh file: the poller starts at the stream's beginning, as a new event source mapping does.
    checkpointFile: join(await mkdtemp(join(tmpdir(), 'kpoll-')), 'checkpoints.json'),
    batchSize,
    idleMs: 50,
  });
  pollers.push(poller);
  await poller.start();
  return poller;
}

async function put(streamName: string, events: readonly UsageEvent[]) {
  const { kinesis } = localClients();
  for (const event of events) {
    await kinesis.send(
      new PutRecordCommand({
        StreamName: streamName,
        PartitionKey: event.keyId,
        Data: Buffer.from(JSON.stringify(event)),
      }),
    );
  }
}

const events = testEvents;

const today = () => utcDay(Date.now());

/** Waits for `expected`, then a while longer, so a late double count would show. */
async function settled(usage: UsageReader, keyId: string, expected: number) {
  await eventually(
    async () => (await usage.keyDayCount(accountOf(keyId), keyId, today())) >= expected,
    20_000,
    100,
  );
  await new Promise((resolve) => setTimeout(resolve, 1500));
  return usage.keyDayCount(accountOf(keyId), keyId, today());
}

async function accountCount(usage: UsageReader, accountId: string) {
  const days = await usage.dailyCounts({ accountId }, today(), today());
  return days[0]?.count ?? 0;
}

describe('exactly once on Kinesis (sequence-number watermarks; real Kinesis emulator and DynamoDB Local)', () => {
  it('a consumer crash after the counter writes and before the checkpoint counts nothing twice', async () => {
    const stream = await testStream();
    const c = consumer(stream.dlqUrl);
    let crashes = 0;
    await poll(stream, async (event) => {
      const response = await c.handler(event);
      if (crashes++ < 2) throw new Error('simulated crash'); // written, never acknowledged
      return response;
    });
    const batch = events(40);
    await put(stream.name, batch);
    const keyId = batch[0]?.keyId ?? '';
    const counted = await settled(c.usage, keyId, 40);
    const accountCounted = await accountCount(c.usage, `acc_${keyId}`);
    expect(counted).toBe(40);
    expect(accountCounted).toBe(40);
    expect(c.batches.flat().length).toBeGreaterThan(40); // records really came again
    figures.crashBeforeCheckpoint = {
      parameters: { events: batch.length },
      crashes: Math.min(crashes, 2),
      recordsDelivered: c.batches.flat().length,
      counted,
      accountCounted,
    };
  });

  it('a new event source reading the whole stream again from its start adds nothing', async () => {
    const stream = await testStream();
    const first = consumer(stream.dlqUrl);
    const a = events(30);
    const b = events(20);
    await put(
      stream.name,
      a.flatMap((e, i) => (b[i] ? [e, b[i]] : [e])),
    );
    const poller = await poll(stream, first.handler);
    expect(await settled(first.usage, a[0]?.keyId ?? '', 30)).toBe(30);
    await poller.stop();

    const again = consumer(stream.dlqUrl);
    await poll(stream, again.handler, 7); // other batch boundaries, same records
    await eventually(async () => again.batches.flat().length >= 50, 20_000);
    expect(await settled(again.usage, a[0]?.keyId ?? '', 30)).toBe(30);
    expect(await again.usage.keyDayCount(accountOf(b[0]?.keyId ?? ''), b[0]?.keyId ?? '', today())).toBe(20);
    const totals = await totalsOf(again.usage, [a[0]?.keyId ?? '', b[0]?.keyId ?? '']);
    expect(totals.get(a[0]?.keyId ?? '')?.count).toBe(30);
    expect(totals.get(b[0]?.keyId ?? '')?.count).toBe(20);
    figures.readAgain = {
      parameters: { events: { a: a.length, b: b.length }, batchSize: 7 },
      recordsReread: again.batches.flat().length,
      dayCounted: {
        a: await again.usage.keyDayCount(accountOf(a[0]?.keyId ?? ''), a[0]?.keyId ?? '', today()),
        b: await again.usage.keyDayCount(accountOf(b[0]?.keyId ?? ''), b[0]?.keyId ?? '', today()),
      },
      allTimeCounted: {
        a: totals.get(a[0]?.keyId ?? '')?.count,
        b: totals.get(b[0]?.keyId ?? '')?.count,
      },
    };
  });

  it('DynamoDB throttling one counter fails only its records; the retried batch adds each event once', async () => {
    const stream = await testStream();
    const c = consumer(stream.dlqUrl);
    const throttled = events(15);
    const calm = events(15);
    let throttles = 0;
    injectFaults(c.clients.dynamo, (command, input) => {
      if (
        command === 'UpdateItemCommand' &&
        JSON.stringify(input).includes(`KEY#${throttled[0]?.keyId}`) &&
        JSON.stringify(input).includes('DAY#') &&
        throttles < 3
      ) {
        throttles++;
        return awsError(
          'ProvisionedThroughputExceededException',
          'Rate of requests exceeds the allowed throughput',
        );
      }
      return undefined;
    });
    await put(
      stream.name,
      calm.flatMap((e, i) => [e, throttled[i] as UsageEvent]),
    );
    await poll(stream, c.handler);
    expect(await settled(c.usage, throttled[0]?.keyId ?? '', 15)).toBe(15);
    expect(await settled(c.usage, calm[0]?.keyId ?? '', 15)).toBe(15);
    const totals = await totalsOf(c.usage, [throttled[0]?.keyId ?? '', calm[0]?.keyId ?? '']);
    expect(totals.get(throttled[0]?.keyId ?? '')?.count).toBe(15);
    expect(totals.get(calm[0]?.keyId ?? '')?.count).toBe(15);
    expect(throttles).toBe(3);
    figures.throttledCounter = {
      parameters: { events: { throttled: throttled.length, calm: calm.length } },
      throttles,
      throttledCounted: totals.get(throttled[0]?.keyId ?? '')?.count,
      calmCounted: totals.get(calm[0]?.keyId ?? '')?.count,
    };
  });

  it('key-api resending an event whose first attempt was stored (its answer lost) counts once, even batches apart', async () => {
    const stream = await testStream();
    const c = consumer(stream.dlqUrl);
    // One record a batch: the first copy is counted in a batch of its own before the resent copy
    // arrives, so only the look-back into the shard can recognise it.
    await poll(stream, c.handler, 1);
    const kinesis = new KinesisClient({ ...clientBase(), maxAttempts: 1 });
    let lost = 0;
    kinesis.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        // Stored, but the answer never arrives: no HTTP status, as with a socket timeout.
        if (lost++ === 0) throw Object.assign(new Error('socket timed out'), { name: 'TimeoutError' });
        return result;
      },
      { step: 'deserialize', name: 'loseFirstAnswer' },
    );
    const publisher = new KinesisUsagePublisher({ streamName: stream.name, client: kinesis });
    const [event, ...others] = events(4);
    if (!event) throw new Error('no event');
    await publisher.publish(event);
    const attempts = lost;
    expect(attempts).toBe(2); // sent twice
    lost = 1; // the later publishes get their answers
    for (const other of others) await publisher.publish({ ...other, keyId: event.keyId });
    const counted = await settled(c.usage, event.keyId, 4);
    expect(counted).toBe(4);
    expect(c.batches.length).toBeGreaterThanOrEqual(5); // both copies came, each on its own
    figures.resentAnswerLost = {
      parameters: { events: others.length + 1 },
      attempts,
      recordsDelivered: c.batches.flat().length,
      counted,
    };
  });

  it('a resent event whose first attempt was not stored is counted', async () => {
    const stream = await testStream();
    const c = consumer(stream.dlqUrl);
    await poll(stream, c.handler, 1);
    const kinesis = new KinesisClient({ ...clientBase(), maxAttempts: 1 });
    let failures = 0;
    injectFaults(kinesis, (command) =>
      command === 'PutRecordCommand' && failures++ === 0
        ? Object.assign(new Error('connection reset'), { name: 'ECONNRESET' })
        : undefined,
    );
    const publisher = new KinesisUsagePublisher({ streamName: stream.name, client: kinesis });
    const [event] = events(1);
    if (!event) throw new Error('no event');
    await publisher.publish(event);
    const counted = await settled(c.usage, event.keyId, 1);
    expect(counted).toBe(1);
    figures.resentNotStored = { attempts: failures, counted };
  });

  it('when the look-back cannot read the shard, the batch stops before the resent copy and it comes again', async () => {
    const stream = await testStream();
    const lookBackKinesis = localClients().kinesis;
    const reads = countRequests(lookBackKinesis);
    let refusals = 0;
    injectFaults(lookBackKinesis, (command) =>
      command === 'GetShardIteratorCommand' && refusals++ < 2
        ? awsError('LimitExceededException', 'Rate exceeded for stream')
        : undefined,
    );
    const c = consumer(stream.dlqUrl, lookBackKinesis);
    const batch = events(6);
    const [first] = batch;
    if (!first) throw new Error('no event');
    // The first copy, then a resent copy of it among others: one batch, the twin in it, is the easy
    // case; putting the copy behind a batch boundary of 3 makes the look-back necessary.
    await put(stream.name, [first, ...batch.slice(1, 3)]);
    await put(stream.name, [{ ...first, resent: first.ts }, ...batch.slice(3)]);
    await poll(stream, c.handler, 3);
    const counted = await settled(c.usage, first.keyId, 6);
    expect(counted).toBe(6);
    expect(refusals).toBeGreaterThan(2);
    expect(reads.get('GetRecordsCommand')).toBeGreaterThan(0);
    figures.lookBackRefused = {
      parameters: { events: batch.length, refusedReads: 2 },
      refusals: Math.min(refusals, 2),
      lookBackReads: reads.get('GetRecordsCommand'),
      counted,
    };
  });
});

function clientBase() {
  const e = endpoints();
  return {
    region: e.region,
    endpoint: e.kinesis,
    credentials: LOCAL_CREDENTIALS,
  };
}
