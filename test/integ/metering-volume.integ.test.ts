import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { afterEach, describe, expect, it } from 'vitest';
import { type UsageEvent, utcDay } from '../../contracts/usage-event';
import { type KinesisBatchHandler, KinesisPoller } from '../../infra/local/pollers/kinesis-poller';
import { type SqsBatchHandler, SqsPoller } from '../../infra/local/pollers/sqs-poller';
import { injectFaults } from '../support/aws';
import { endpoints, localClients } from '../support/local-stack';
import { accountOf, meteringConsumer, testEvents } from '../support/metering-consumer';
import { createTestQueue, createTestStream, sendBodies } from '../support/queues';
import { eventually } from '../support/wait';

/**
 * Metering at volume: batches of thousands written with several transactions in flight, crashed
 * in the middle or after their writes, and delivered again. Real engines; the crash is a client
 * that fails every call from some moment on, and a handler that never answers its event source.
 */
const pollers: Array<SqsPoller | KinesisPoller> = [];
afterEach(async () => {
  await Promise.all(pollers.splice(0).map((p) => p.stop()));
});

/** `perKey` events for each of `keys` keys (each in an account of its own); `numbered: false`: the mark path's. */
function manyKeys(keys: number, perKey: number, options: { numbered?: boolean } = {}): UsageEvent[] {
  return Array.from({ length: keys }, () => testEvents(perKey, undefined, options)).flat();
}

async function dayCounts(usage: ReturnType<typeof meteringConsumer>['usage'], events: readonly UsageEvent[]) {
  const keyIds = [...new Set(events.map((e) => e.keyId))];
  const day = utcDay(Date.now());
  return Promise.all(keyIds.map((keyId) => usage.keyDayCount(accountOf(keyId), keyId, day)));
}

function pollSqs(queue: { queueUrl: string; queueArn: string }, handler: SqsBatchHandler) {
  const poller = new SqsPoller({
    sqs: localClients().sqs,
    queueUrl: queue.queueUrl,
    queueArn: queue.queueArn,
    region: endpoints().region,
    handler,
    batchSize: 10_000,
    // Long enough for every message sent to land in the first batch.
    batchingWindowMs: 3_000,
  });
  pollers.push(poller);
  poller.start();
}

describe('metering at volume (real SQS and Kinesis emulators, DynamoDB Local)', () => {
  it('SQS: a crash in the middle of a batch’s concurrent writes counts every event once', async () => {
    const queue = await createTestQueue(localClients().sqs, 'midbatch', {
      visibilityTimeoutSeconds: 4,
      maxReceiveCount: 5,
    });
    const c = meteringConsumer('sqs', queue.dlqUrl);
    // 40 keys × 30 events: about 13 packed transactions, 8 in flight at once. Transactions are the
    // mark path's (events without their producer's numbering); the ledger's crash mid-flush is
    // ledger-faults.integ.test.ts's.
    const events = manyKeys(40, 30, { numbered: false });
    // The first batch's process dies after 5 transactions were sent: every later call fails, and it
    // never answers its event source, so the whole batch comes again after the visibility timeout.
    let dying = true;
    let sent = 0;
    injectFaults(c.clients.dynamo, (command) => {
      if (!dying || command !== 'TransactWriteItemsCommand') return undefined;
      return ++sent > 5 ? new Error('consumer process killed') : undefined;
    });
    pollSqs(queue, async (event) => {
      const response = await c.handler(event);
      if (dying) {
        dying = false;
        throw new Error('consumer died mid-batch');
      }
      return response;
    });
    await sendBodies(
      localClients().sqs,
      queue.queueUrl,
      events.map((e) => JSON.stringify(e)),
    );
    await eventually(async () => c.countedSoFar() >= events.length, 60_000, 200);
    await new Promise((resolve) => setTimeout(resolve, 5_000)); // past a visibility timeout

    const [crashed, ...after] = c.outcomes;
    expect(c.batches[0]).toHaveLength(events.length);
    // The crash really fell mid-batch: some transactions committed, the rest did not.
    expect(crashed?.counted).toBeGreaterThan(0);
    expect(crashed?.counted).toBeLessThan(events.length);
    expect(crashed?.failedRecordIds.length).toBe(events.length - (crashed?.counted ?? 0));
    // The redelivery met the committed events' marks and counted only the others.
    expect(after.reduce((n, o) => n + o.duplicates, 0)).toBe(crashed?.counted);
    expect(c.countedSoFar()).toBe(events.length);
    expect(await dayCounts(c.usage, events)).toEqual(Array(40).fill(30));
  }, 120_000);

  it('SQS: a full batch of 5,000 events delivered again after its writes counts once', async () => {
    const queue = await createTestQueue(localClients().sqs, 'fullbatch', {
      visibilityTimeoutSeconds: 12,
      maxReceiveCount: 5,
    });
    const c = meteringConsumer('sqs', queue.dlqUrl);
    const events = manyKeys(100, 50);
    let crashes = 0;
    pollSqs(queue, async (event) => {
      const response = await c.handler(event);
      // Every write committed; the process dies before the event source deletes anything.
      if (crashes++ === 0) throw new Error('consumer died after its writes');
      return response;
    });
    await sendBodies(
      localClients().sqs,
      queue.queueUrl,
      events.map((e) => JSON.stringify(e)),
    );
    await eventually(
      async () => c.outcomes.length >= 2 && c.batches.flat().length >= 2 * events.length,
      90_000,
      250,
    );

    expect(c.batches[0]).toHaveLength(events.length);
    expect(c.outcomes[0]?.counted).toBe(events.length);
    expect(c.outcomes.slice(1).reduce((n, o) => n + o.duplicates, 0)).toBe(events.length);
    expect(c.countedSoFar()).toBe(events.length);
    expect(await dayCounts(c.usage, events)).toEqual(Array(100).fill(50));
  }, 150_000);

  it('Kinesis: a full batch of 5,000 records read again after its writes adds nothing', async () => {
    const { kinesis, sqs } = localClients();
    const { name, arn, dlqUrl } = await createTestStream(kinesis, sqs, 'kvolume');
    const c = meteringConsumer('kinesis', dlqUrl);
    const events = manyKeys(100, 50);
    for (let i = 0; i < events.length; i += 500) {
      await kinesis.send(
        new PutRecordsCommand({
          StreamName: name,
          Records: events
            .slice(i, i + 500)
            .map((e) => ({ PartitionKey: e.keyId, Data: Buffer.from(JSON.stringify(e)) })),
        }),
      );
    }
    let crashes = 0;
    const handler: KinesisBatchHandler = async (event) => {
      const response = await c.handler(event);
      if (crashes++ === 0) throw new Error('consumer died before its checkpoint');
      return response;
    };
    const poller = new KinesisPoller({
      kinesis,
      streamName: name,
      streamArn: arn,
      region: endpoints().region,
      handler,
      checkpointFile: join(await mkdtemp(join(tmpdir(), 'kvolume-')), 'checkpoints.json'),
      batchSize: 10_000,
      idleMs: 50,
    });
    pollers.push(poller);
    await poller.start();
    await eventually(async () => c.outcomes.length >= 2, 60_000, 200);

    expect(c.batches[0]).toHaveLength(events.length);
    expect(c.outcomes[0]?.counted).toBe(events.length);
    expect(c.outcomes[1]?.duplicates).toBe(events.length);
    expect(c.outcomes[1]?.counted).toBe(0);
    expect(await dayCounts(c.usage, events)).toEqual(Array(100).fill(50));
  }, 120_000);
});
