import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { PutRecordCommand } from '@aws-sdk/client-kinesis';
import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { MeteringMetric, SERVICE_NAMES } from '../../contracts/metric-names';
import { utcDay } from '../../contracts/usage-event';
import { KinesisPoller } from '../../infra/local/pollers/kinesis-poller';
import { METERING_CONFLICT_RETRY } from '../../services/usage/usage-store';
import { aroundRequests, documentClient, engineClients } from '../support/aws';
import { endpoints, localClients } from '../support/local-stack';
import { accountOf, meteringConsumer, testEvents } from '../support/metering-consumer';
import { drainingMetrics, type MetricTotals } from '../support/metrics';
import { createTestStream } from '../support/queues';
import { eventually } from '../support/wait';

// Documented mechanisms of the metering consumer, asserted on the mechanism itself (the write
// attempts, the duplicate it dropped, the look-backs it did not make), not only on the totals.

let dlqs = 0;
async function testDlq(): Promise<string> {
  const dlq = await localClients().sqs.send(
    new CreateQueueCommand({ QueueName: `mech-${process.pid}-${Date.now()}-${dlqs++}-dlq` }),
  );
  return dlq.QueueUrl as string;
}

/** An SQS event as the event source mapping hands it over, one record per body. */
const sqsEvent = (bodies: string[]): SQSEvent =>
  ({
    Records: bodies.map((body, i) => ({ eventSource: 'aws:sqs', messageId: `m-${i}-${Date.now()}`, body })),
  }) as unknown as SQSEvent;

/**
 * A real DynamoDB Local client whose first `conflicts` TransactWriteItems calls are cancelled the
 * way DynamoDB cancels a transaction that met a concurrent one (DynamoDB Local serializes them, so
 * a real conflict cannot be provoked): TransactionConflict on the counter item, None elsewhere.
 */
function conflictingDynamo(conflicts: number) {
  const dynamo = engineClients(endpoints()).dynamo;
  const counts = { transactWrites: 0, injected: 0 };
  aroundRequests(dynamo, async (command, send) => {
    if (command !== 'TransactWriteItemsCommand') return send();
    counts.transactWrites++;
    if (counts.injected >= conflicts) return send();
    counts.injected++;
    throw new TransactionCanceledException({
      message:
        'Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]',
      $metadata: { httpStatusCode: 400, requestId: 'injected', attempts: 1, totalRetryDelay: 0 },
      CancellationReasons: [{ Code: 'TransactionConflict', Message: 'Transaction is ongoing for the item' }],
    });
  });
  return { doc: documentClient(dynamo), counts };
}

describe('metering: TransactionConflict on a counter write is retried (UsageStore, DynamoDB Local)', () => {
  const today = () => utcDay(Date.now());
  // Transactions are the mark path's (events without their producer's numbering); the ledger
  // writes none, and its races are single-item conditions (ledger-faults.integ.test.ts).
  const markPathEvents = (count: number) => testEvents(count, undefined, { numbered: false });

  it('retries the cancelled transaction and counts the batch exactly once', async () => {
    const N = 3;
    expect(N).toBeLessThanOrEqual(METERING_CONFLICT_RETRY.retries);
    const { doc, counts } = conflictingDynamo(N);
    const metrics: MetricTotals = new Map();
    const c = meteringConsumer('sqs', await testDlq(), undefined, {
      dynamo: doc,
      metrics: drainingMetrics(SERVICE_NAMES.metering, metrics),
    });
    const events = markPathEvents(12);
    const keyId = events[0]?.keyId ?? '';

    await c.handler(sqsEvent(events.map((e) => JSON.stringify(e))));

    // One transaction for the batch (one key, one day): N cancelled attempts, then the one that committed.
    expect(counts).toEqual({ transactWrites: N + 1, injected: N });
    expect(metrics.get(MeteringMetric.counterWriteRequests)).toBe(N + 1);
    expect(metrics.get(MeteringMetric.aggregatesFailed) ?? 0).toBe(0);
    expect(c.outcomes).toEqual([{ failedRecordIds: [], counted: 12, duplicates: 0, deadLettered: 0 }]);
    expect(await c.usage.keyDayCount(accountOf(keyId), keyId, today())).toBe(12);
  });

  it('fails the records (to be delivered again), counting nothing, when the conflicts outlast the retries', async () => {
    const { doc, counts } = conflictingDynamo(Number.POSITIVE_INFINITY);
    const metrics: MetricTotals = new Map();
    const c = meteringConsumer('sqs', await testDlq(), undefined, {
      dynamo: doc,
      metrics: drainingMetrics(SERVICE_NAMES.metering, metrics),
    });
    const events = markPathEvents(5);
    const keyId = events[0]?.keyId ?? '';
    const event = sqsEvent(events.map((e) => JSON.stringify(e)));

    const response = await c.handler(event);

    expect(counts.transactWrites).toBe(METERING_CONFLICT_RETRY.retries + 1);
    expect(metrics.get(MeteringMetric.aggregatesFailed)).toBe(1);
    expect(response.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
      event.Records.map((r) => r.messageId).sort(),
    );
    expect(c.outcomes[0]?.counted).toBe(0);
    expect(await c.usage.keyDayCount(accountOf(keyId), keyId, today())).toBe(0);
  });
});

describe('metering over Kinesis: a resent copy whose twin is in the same batch', () => {
  const pollers: KinesisPoller[] = [];
  afterEach(async () => {
    await Promise.all(pollers.splice(0).map((p) => p.stop()));
  });

  it('is dropped as a duplicate within the batch, without reading the shard back', async () => {
    const { kinesis, sqs } = localClients();
    const { name, arn } = await createTestStream(kinesis, sqs, 'mech');
    const c = meteringConsumer('kinesis', await testDlq());
    const events = testEvents(5);
    const [first] = events;
    if (!first) throw new Error('no event');
    // The first copy, two others, the resent copy (key-api's second attempt), two more: all put
    // before the consumer starts, so they come in one batch.
    for (const event of [first, events[1], events[2], { ...first, resent: first.ts }, events[3], events[4]]) {
      await kinesis.send(
        new PutRecordCommand({
          StreamName: name,
          PartitionKey: first.keyId,
          Data: Buffer.from(JSON.stringify(event)),
        }),
      );
    }
    const poller = new KinesisPoller({
      kinesis,
      streamName: name,
      streamArn: arn,
      region: endpoints().region,
      handler: c.handler,
      checkpointFile: join(await mkdtemp(join(tmpdir(), 'kpoll-')), 'checkpoints.json'),
      batchSize: 100,
      idleMs: 50,
    });
    pollers.push(poller);
    await poller.start();
    await eventually(async () => c.outcomes.length > 0, 10_000, 50);

    expect(c.batches.map((b) => b.length)).toEqual([6]); // both copies in the one batch
    expect(c.outcomes[0]).toEqual({ failedRecordIds: [], counted: 5, duplicates: 1, deadLettered: 0 });
    expect(c.lookBackQueries).toEqual([]); // the twin was found in the batch: no shard read
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await c.usage.keyDayCount(accountOf(first.keyId), first.keyId, utcDay(Date.now()))).toBe(5);
  });
});
