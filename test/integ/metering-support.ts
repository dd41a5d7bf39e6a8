import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { KinesisStreamEvent, SQSEvent } from 'aws-lambda';
import { inject } from 'vitest';
import { DEFAULT_WINDOW } from '../../services/metering/batch';
import { consumeBatch } from '../../services/metering/consumer';
import { SqsDeadLetterSink } from '../../services/metering/dead-letter';
import { KinesisLookBack } from '../../services/metering/look-back';
import { inboundRecords } from '../../services/metering/records';
import { systemClock } from '../../services/shared/clock';
import { newUsageEvent, type UsageEvent } from '../../services/shared/usage-event';
import { UsageStore } from '../../services/shared/usage-store';
import { localClients } from './aws-clients';

const logger = new Logger({ serviceName: 'metering-test', logLevel: 'SILENT' });
const metrics = new Metrics({ namespace: 'test', serviceName: 'metering-test' });

/**
 * The metering consumer over real DynamoDB Local, on clients the test may inject faults into, with
 * the record ids of every batch it was handed and how many events it counted. `lookBackKinesis` is the client its Kinesis
 * look-back reads the shard with.
 */
export function meteringConsumer(
  transport: 'sqs' | 'kinesis',
  dlqUrl: string,
  lookBackKinesis: KinesisClient = localClients().kinesis,
) {
  const clients = localClients();
  const usage = new UsageStore({ client: clients.doc, table: inject('env').TOLLGATE_USAGE_TABLE ?? '' });
  const deps = {
    usage,
    deadLetters: new SqsDeadLetterSink({ sqs: clients.sqs, queueUrl: dlqUrl, transport }),
    clock: systemClock,
    logger,
    metrics,
    window: DEFAULT_WINDOW,
    lookBack: new KinesisLookBack({ kinesis: lookBackKinesis }),
  };
  const batches: string[][] = [];
  let counted = 0;
  const handler = async (event: SQSEvent | KinesisStreamEvent) => {
    const records = inboundRecords(event);
    batches.push(records.map((r) => r.recordId));
    const outcome = await consumeBatch(records, deps);
    counted += outcome.counted;
    return { batchItemFailures: outcome.failedRecordIds.map((itemIdentifier) => ({ itemIdentifier })) };
  };
  /** Events counted so far, duplicates not included. */
  const countedSoFar = () => counted;
  return { clients, usage, handler, batches, countedSoFar };
}

let keys = 0;
/** `count` new usage events of one key (a fresh one unless given), its account `acc_<keyId>`. */
export function testEvents(
  count: number,
  keyId = `key_fault_${process.pid}_${Date.now()}_${keys++}`,
): UsageEvent[] {
  return Array.from({ length: count }, () =>
    newUsageEvent({ keyId, accountId: `acc_${keyId}`, now: new Date() }),
  );
}
