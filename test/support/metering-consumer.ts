import { Logger } from '@aws-lambda-powertools/logger';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamEvent, SQSEvent } from 'aws-lambda';
import { ENV } from '../../contracts/config';
import { newProducerId, newUsageEvent, ProducerSequence, type UsageEvent } from '../../contracts/usage-event';
import { composeMetering } from '../../services/metering/compose';
import { loadMeteringConfig } from '../../services/metering/config';
import type { BatchOutcome } from '../../services/metering/consumer';
import type { FlushProfile } from '../../services/metering/ledger/ledger';
import { type EarlierCopyQuery, KinesisLookBack } from '../../services/metering/look-back';
import { inboundRecords } from '../../services/metering/records';
import type { Clock } from '../../services/platform/clock';
import { discardMetrics, type InvocationMetrics } from '../../services/platform/metrics';
import { type KeyTotals, UsageReader } from '../../services/usage/usage-reader';
import { localClients, stackEnv } from './local-stack';
import { keySeeder } from './seed-keys';

export interface MeteringConsumerOptions {
  /** The client its counter writes go through (e.g. one with faults injected). @default its own */
  dynamo?: DynamoDBDocumentClient;
  /** @default discarded */
  metrics?: InvocationMetrics;
  /** The client the provenance check reads the keys table with. @default its own, fault-free */
  keys?: DynamoDBDocumentClient;
  /**
   * Writes a key record for every (account, key) a batch's events name, where none is, before the
   * consumer sees the batch: as a producer guarantees (no event without its key), so the synthetic
   * events of the tests that predate the provenance check pass it. @default true
   */
  seedTestKeys?: boolean;
  /** The usage table it counts in (e.g. one of the test's own, so its SQS ledger is too). @default the stack's */
  usageTable?: string;
  /** TOLLGATE_LEDGER_FLUSH. @default the config's (balanced) */
  ledgerFlush?: FlushProfile;
  /** The consumer's clock (age checks, the ledger's lease, archive and gap timers). @default the system's */
  clock?: Clock;
  /** TOLLGATE_USAGE_QUEUE_URL: where the ledger schedules its tail flushes. @default none: it waits for them */
  usageQueueUrl?: string;
}

/**
 * The metering consumer, composed by composeMetering over the shared stack's usage table, on clients
 * the test may inject faults into; with a reader of its counters, the record ids of every batch it
 * was handed and how many events it counted. `lookBackKinesis` is the client its Kinesis look-back
 * (the real KinesisLookBack) reads the shard with; `lookBackQueries` records every question the
 * consumer asked it.
 */
export function meteringConsumer(
  transport: 'sqs' | 'kinesis',
  dlqUrl: string,
  lookBackKinesis: KinesisClient = localClients().kinesis,
  options: MeteringConsumerOptions = {},
) {
  const clients = localClients();
  const realLookBack = new KinesisLookBack({ kinesis: lookBackKinesis });
  const lookBackQueries: EarlierCopyQuery[] = [];
  const config = loadMeteringConfig({
    [ENV.usageTable]: options.usageTable ?? stackEnv()[ENV.usageTable],
    [ENV.keysTable]: stackEnv()[ENV.keysTable],
    [ENV.usageDlqUrl]: dlqUrl,
    [ENV.transport]: transport,
    ...(options.ledgerFlush ? { [ENV.ledgerFlush]: options.ledgerFlush } : {}),
    ...(options.usageQueueUrl ? { [ENV.usageQueueUrl]: options.usageQueueUrl } : {}),
  });
  const metering = composeMetering(config, {
    // The provenance check reads through a client of its own: faults a test injects into counter
    // writes stay where the test put them.
    clients: {
      dynamo: options.dynamo ?? clients.doc,
      keys: options.keys ?? clients.doc,
      sqs: clients.sqs,
      kinesis: lookBackKinesis,
    },
    logger: new Logger({ serviceName: 'metering-test', logLevel: 'SILENT' }),
    metrics: options.metrics ?? discardMetrics,
    ...(options.clock ? { clock: options.clock } : {}),
    lookBack: {
      earlierCopyExists: (query) => {
        lookBackQueries.push(query);
        return realLookBack.earlierCopyExists(query);
      },
    },
  });
  const usage = new UsageReader({ client: clients.doc, table: config[ENV.usageTable] });
  const batches: string[][] = [];
  /** What the consumer reported for each batch, in order. */
  const outcomes: BatchOutcome[] = [];
  let counted = 0;
  // Clients of its own: a test counting the consumer's requests does not see the seeding.
  const seed = keySeeder(localClients().doc, config[ENV.keysTable]);
  const handler = async (event: SQSEvent | KinesisStreamEvent) => {
    const records = inboundRecords(event);
    batches.push(records.map((r) => r.recordId));
    if (options.seedTestKeys ?? true) await seed(records.map((r) => r.body));
    const { response, outcome } = await metering.handleBatch(event);
    outcomes.push(outcome);
    counted += outcome.counted;
    return response;
  };
  /** Events counted so far, duplicates not included. */
  const countedSoFar = () => counted;
  return { clients, usage, handler, batches, outcomes, countedSoFar, lookBackQueries, metering };
}

let keys = 0;
/** This test process as one gate container: its producer id and numbering (what the SQS ledger claims). */
const testProducer = { id: newProducerId(), sequence: new ProducerSequence() };

/**
 * `count` new usage events of one key (a fresh one unless given), its account `acc_<keyId>`,
 * numbered by this process's producer as a gate numbers its events; `numbered: false` gives events
 * as a gate from before the numbering published them (the mark path).
 */
export function testEvents(
  count: number,
  keyId = `key_fault_${process.pid}_${Date.now()}_${keys++}`,
  options: { numbered?: boolean } = {},
): UsageEvent[] {
  return Array.from({ length: count }, () => {
    const now = new Date();
    return newUsageEvent({
      keyId,
      accountId: accountOf(keyId),
      now,
      ...(options.numbered === false
        ? {}
        : { producerId: testProducer.id, sequence: testProducer.sequence.next(now.getTime()) }),
    });
  });
}

/** The account testEvents puts a key's events in. */
export const accountOf = (keyId: string): string => `acc_${keyId}`;

/** All-time totals of keys made by testEvents (each in an account of its own), by key id. */
export async function totalsOf(
  usage: UsageReader,
  keyIds: readonly string[],
): Promise<Map<string, KeyTotals>> {
  const totals = new Map<string, KeyTotals>();
  for (const keyId of keyIds) {
    const total = (await usage.keyTotals(accountOf(keyId))).get(keyId);
    if (total) totals.set(keyId, total);
  }
  return totals;
}
