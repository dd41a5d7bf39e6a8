import { GetRecordsCommand, GetShardIteratorCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { usageEventSchema, utcDay } from '../../contracts/usage-event';
import { keyDayCounter } from '../usage/counter-keys';
import { sequenceOrderKey } from '../usage/counter-updates';
import type { LookBack } from './look-back';
import { streamNameOf } from './look-back';

/**
 * The redrive: after a long outage (DynamoDB unavailable to metering for longer than the queue's
 * redelivery or the Kinesis retries wait, contracts/redelivery.ts), sends what reached the usage
 * dead-letter queue back to metering, counted exactly once. `npm run usage:redrive` runs it, locally
 * and on AWS (through the stack's redrive role).
 *
 * What the dead-letter queue holds, and what becomes of each:
 *  - a usage event SQS moved there after maxReceiveCount receives (no `reason` attribute): sent back
 *    to the usage queue as it is. Its id is its dedupe mark: if metering had counted it before
 *    (a batch that committed but was not deleted), the mark makes the copy a duplicate.
 *  - a record metering refused itself (a `reason` attribute: invalid, too old, unknown key…): left
 *    where it is. Sending it again would only have it refused again; it is reported by reason.
 *  - a Kinesis failure description (`KinesisBatchInfo`: shard and sequence range, no records): the
 *    records are read back from the stream, which keeps them a day past the late window, and each
 *    event not yet counted is sent to the SQS path (the usage queue locally, the redrive queue on a
 *    Kinesis stack), never back onto the stream.
 *
 * Why the SQS path and not the stream: Kinesis counters dedupe by the shard's sequence-number
 * watermark, and a record put on the stream again gets a new, higher sequence number, so it would
 * be counted whether or not its first copy was; marking it `resent` would be worse, since the
 * consumer's look-back (look-back.ts) would find the first copy in the shard and drop the redriven
 * one as its duplicate, though the first copy was given up on, not counted. On the SQS path each
 * event is guarded by its own mark, so a redrive run twice (or stopped between sending and
 * deleting) counts nothing twice.
 *
 * Which records of a described range were already counted: a given-up batch may still hold records
 * whose counter took them (failures are reported per counter; the range runs from the first failed
 * record to the end of the batch). The counter's watermark for the shard tells: a record at or below
 * it was counted, above it was not, as long as the counter took nothing from the shard after the
 * range. If it did (traffic went on after the give-up), a record below the watermark may have been
 * counted before the give-up or skipped by it; it is then sent (assumed not counted) and reported
 * as `assumedUncounted`. That is exact for a range given up on while DynamoDB was unavailable
 * throughout, the case this tool is for; a counter that succeeded inside such a range before the
 * outage took hold is the one case it can count twice (docs/metering.md, runbook).
 */

/** What Lambda's event source mapping sends to a Kinesis on-failure destination (the parts read here). */
export const kinesisFailureSchema = z.looseObject({
  KinesisBatchInfo: z.looseObject({
    shardId: z.string().min(1),
    startSequenceNumber: z.string().regex(/^\d+$/),
    endSequenceNumber: z.string().regex(/^\d+$/),
    streamArn: z.string().min(1),
    batchSize: z.number().int().nonnegative().optional(),
  }),
});
export type KinesisFailure = z.infer<typeof kinesisFailureSchema>;

/** The counter watermarks a Kinesis redrive consults (the usage table, read-only: UsageStore.watermark). */
export interface CounterWatermarks {
  /** The highest sequence order key (usage-store's sequenceOrderKey) the counter took from the shard. */
  watermark(counter: { pk: string; sk: string }, shardId: string): Promise<string | undefined>;
}

export interface RedriveOptions {
  sqs: SQSClient;
  /** The usage dead-letter queue. */
  deadLetterQueueUrl: string;
  /** Where usage goes back to metering: the usage queue, or on a Kinesis stack the redrive queue. */
  targetQueueUrl: string;
  /** Needed only when the dead-letter queue holds Kinesis failure descriptions. */
  kinesis?: KinesisClient;
  watermarks?: CounterWatermarks;
  /** Finds a resent event's first copy before a described range (as the consumer does). */
  lookBack?: LookBack;
  /** Report only: send and delete nothing. @default false */
  dryRun?: boolean;
  /** How long a received dead letter stays hidden while it is worked on. @default 120 s */
  visibilityTimeoutSeconds?: number;
  /** Stop after this many dead letters. @default no limit */
  maxMessages?: number;
}

export interface RedriveReport {
  /** SQS usage events sent back to the queue. */
  eventsSentBack: number;
  /** Kinesis failure descriptions whose records were read back (and deleted once sent). */
  kinesisBatches: number;
  /** Records those ranges held. */
  kinesisRecords: number;
  /** Of those, sent to the SQS path. */
  kinesisSent: number;
  /** Of those, left out: their counter's watermark shows they were counted before the give-up. */
  kinesisAlreadyCounted: number;
  /** Of those, left out: resent copies whose first copy came before the range. */
  kinesisResentCopies: number;
  /** Sent though their counter took later records of the shard (see the file's comment). */
  assumedUncounted: number;
  /** Dead letters metering refused with a reason, left in the queue, by reason. */
  refusedLeft: Record<string, number>;
  /** Dead letters that could not be redriven now (e.g. the stream no longer holds the range): left. */
  failed: { messageId: string; error: string }[];
}

const emptyReport = (): RedriveReport => ({
  eventsSentBack: 0,
  kinesisBatches: 0,
  kinesisRecords: 0,
  kinesisSent: 0,
  kinesisAlreadyCounted: 0,
  kinesisResentCopies: 0,
  assumedUncounted: 0,
  refusedLeft: {},
  failed: [],
});

/** Moves the usage dead-letter queue's messages back to metering (see the file's comment). */
export async function redriveUsage(options: RedriveOptions): Promise<RedriveReport> {
  const report = emptyReport();
  const seen = new Set<string>();
  let handled = 0;
  const limit = options.maxMessages ?? Number.POSITIVE_INFINITY;
  for (let empty = 0; empty < 2 && handled < limit; ) {
    const out = await options.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: options.deadLetterQueueUrl,
        MaxNumberOfMessages: Math.min(10, limit - handled),
        WaitTimeSeconds: 0,
        VisibilityTimeout: options.visibilityTimeoutSeconds ?? 120,
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) {
      empty++;
      continue;
    }
    empty = 0;
    for (const message of messages) {
      // A message left in the queue (refused, failed) comes back after its visibility timeout;
      // one pass looks at each once.
      if (seen.has(message.MessageId ?? '')) {
        handled = limit;
        break;
      }
      seen.add(message.MessageId ?? '');
      handled++;
      await redriveOne(message, options, report);
    }
  }
  return report;
}

async function redriveOne(message: Message, options: RedriveOptions, report: RedriveReport): Promise<void> {
  const reason = message.MessageAttributes?.reason?.StringValue;
  if (reason !== undefined) {
    report.refusedLeft[reason] = (report.refusedLeft[reason] ?? 0) + 1;
    return release(message, options);
  }
  const failure = kinesisFailureOf(message.Body);
  try {
    if (failure) {
      const bodies = await kinesisBodies(failure, options, report);
      await send(options, bodies);
      report.kinesisBatches++;
      report.kinesisSent += bodies.length;
    } else {
      await send(options, [message.Body ?? '']);
      report.eventsSentBack++;
    }
  } catch (error) {
    report.failed.push({
      messageId: message.MessageId ?? '',
      error: String((error as Error)?.message ?? error),
    });
    return release(message, options);
  }
  // Deleted only once everything it held was sent: stopped before, the next run sends it again,
  // and the marks make the second copy a duplicate.
  if (!options.dryRun) {
    await options.sqs.send(
      new DeleteMessageCommand({
        QueueUrl: options.deadLetterQueueUrl,
        ReceiptHandle: message.ReceiptHandle,
      }),
    );
  }
}

/** Makes a message left in the queue visible again at once (for the operator, or the next run). */
async function release(message: Message, options: RedriveOptions): Promise<void> {
  await options.sqs.send(
    new ChangeMessageVisibilityCommand({
      QueueUrl: options.deadLetterQueueUrl,
      ReceiptHandle: message.ReceiptHandle,
      VisibilityTimeout: 0,
    }),
  );
}

function kinesisFailureOf(body: string | undefined): KinesisFailure | undefined {
  try {
    const parsed = kinesisFailureSchema.safeParse(JSON.parse(body ?? ''));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

async function send(options: RedriveOptions, bodies: readonly string[]): Promise<void> {
  if (options.dryRun) return;
  for (let i = 0; i < bodies.length; i += 10) {
    const chunk = bodies.slice(i, i + 10);
    const out = await options.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: options.targetQueueUrl,
        Entries: chunk.map((MessageBody, n) => ({ Id: `r${n}`, MessageBody: MessageBody || '(empty)' })),
      }),
    );
    if ((out.Failed ?? []).length > 0) {
      throw new Error(`the queue refused ${out.Failed?.length} of ${chunk.length} redriven messages`);
    }
  }
}

/** The bodies of the described range's records metering has not counted (see the file's comment). */
async function kinesisBodies(
  failure: KinesisFailure,
  options: RedriveOptions,
  report: RedriveReport,
): Promise<string[]> {
  const { kinesis, watermarks } = options;
  if (!kinesis || !watermarks) {
    throw new Error('a Kinesis failure description needs a Kinesis client and the counter watermarks');
  }
  const info = failure.KinesisBatchInfo;
  const records = await readRange(kinesis, info);
  const end = sequenceOrderKey(info.endSequenceNumber);
  const bodies: string[] = [];
  const ids = new Set<string>();
  for (const record of records) {
    report.kinesisRecords++;
    const body = Buffer.from(record.data).toString('utf8');
    const event = eventOf(body);
    // Not an event metering would count: sent as it is, for metering to dead-letter with its reason.
    if (!event) {
      bodies.push(body);
      continue;
    }
    if (ids.has(event.id)) {
      report.kinesisResentCopies++;
      continue;
    }
    ids.add(event.id);
    if (event.resent !== undefined && options.lookBack) {
      const before = await options.lookBack.earlierCopyExists({
        position: {
          streamArn: info.streamArn,
          shardId: info.shardId,
          sequenceNumber: info.startSequenceNumber,
        },
        eventId: event.id,
        since: event.resent,
      });
      if (before) {
        report.kinesisResentCopies++;
        continue;
      }
    }
    const counter = keyDayCounter(event.accountId, event.keyId, utcDay(event.ts));
    const watermark = await watermarks.watermark(counter, info.shardId);
    const at = sequenceOrderKey(record.sequenceNumber);
    if (watermark !== undefined && at <= watermark) {
      if (watermark <= end) {
        report.kinesisAlreadyCounted++;
        continue;
      }
      report.assumedUncounted++;
    }
    bodies.push(body);
  }
  return bodies;
}

function eventOf(body: string) {
  try {
    const parsed = usageEventSchema.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The records of a shard from `startSequenceNumber` to `endSequenceNumber`, inclusive. */
async function readRange(
  kinesis: KinesisClient,
  info: KinesisFailure['KinesisBatchInfo'],
): Promise<{ sequenceNumber: string; data: Uint8Array }[]> {
  const last = BigInt(info.endSequenceNumber);
  const start = await kinesis.send(
    new GetShardIteratorCommand({
      StreamName: streamNameOf(info.streamArn),
      ShardId: info.shardId,
      ShardIteratorType: 'AT_SEQUENCE_NUMBER',
      StartingSequenceNumber: info.startSequenceNumber,
    }),
  );
  const records: { sequenceNumber: string; data: Uint8Array }[] = [];
  let iterator = start.ShardIterator;
  while (iterator) {
    const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
    for (const record of out.Records ?? []) {
      const sequenceNumber = record.SequenceNumber ?? '0';
      if (BigInt(sequenceNumber) > last) return records;
      records.push({ sequenceNumber, data: record.Data ?? new Uint8Array() });
    }
    if ((out.Records ?? []).length === 0 && out.MillisBehindLatest === 0) break;
    iterator = out.NextShardIterator;
  }
  if (records.length === 0) throw new Error(`shard ${info.shardId} holds no record of the described range`);
  return records;
}
