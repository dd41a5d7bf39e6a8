import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  type _Record,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
  ListShardsCommand,
} from '@aws-sdk/client-kinesis';
import type { KinesisStreamBatchResponse, KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';

export type KinesisBatchHandler = (
  event: KinesisStreamEvent,
) => Promise<KinesisStreamBatchResponse | undefined>;

export interface KinesisPollerOptions {
  kinesis: KinesisClient;
  streamName: string;
  streamArn: string;
  region: string;
  handler: KinesisBatchHandler;
  /** Where each shard's last processed sequence number is kept, so a restart resumes there. */
  checkpointFile: string;
  /** Most records per invocation (BatchSize; GetRecords takes up to 10,000). @default 100 */
  batchSize?: number;
  /**
   * How long to keep reading the shard once records arrived, to fill the batch
   * (MaximumBatchingWindowInSeconds). 0 hands over whatever one read returned. @default 0
   */
  batchingWindowMs?: number;
  /** How long an empty shard is left before it is read again. @default 100 */
  idleMs?: number;
  /**
   * MaximumRecordAgeInSeconds, in ms: records that arrived longer ago are given up on (described to
   * `onFailure`) instead of handed over. Tests shorten it. @default no limit (-1)
   */
  maxRecordAgeMs?: number;
  /** MaximumRetryAttempts: retries of a failing batch before it is given up on. @default -1 (no limit) */
  maxRetryAttempts?: number;
  /** BisectBatchOnFunctionError: a batch whose invocation throws is halved for its retry. @default false */
  bisectBatchOnError?: boolean;
  /**
   * The on-failure destination: receives the description of each batch given up on, as Lambda
   * sends it (KinesisBatchInfo: shard and sequence range, not the records). Without it a batch is
   * never given up on, whatever the two limits say.
   */
  onFailure?: (description: KinesisFailureDescription) => Promise<void>;
  onError?: (error: unknown) => void;
}

/** What Lambda's event source mapping sends to a Kinesis stream's on-failure destination. */
export interface KinesisFailureDescription {
  requestContext: {
    condition: 'RecordAgeExceeded' | 'RetryAttemptsExhausted';
    approximateInvokeCount: number;
  };
  version: '1.0';
  timestamp: string;
  KinesisBatchInfo: {
    shardId: string;
    startSequenceNumber: string;
    endSequenceNumber: string;
    approximateArrivalOfFirstRecord: string;
    approximateArrivalOfLastRecord: string;
    batchSize: number;
    streamArn: string;
  };
}

type Checkpoints = Record<string, string>;

function toRecord(record: _Record, options: KinesisPollerOptions, shardId: string): KinesisStreamRecord {
  return {
    awsRegion: options.region,
    eventID: `${shardId}:${record.SequenceNumber}`,
    eventName: 'aws:kinesis:record',
    eventSource: 'aws:kinesis',
    eventSourceARN: options.streamArn,
    eventVersion: '1.0',
    invokeIdentityArn: 'arn:aws:iam::000000000000:role/local',
    kinesis: {
      kinesisSchemaVersion: '1.0',
      partitionKey: record.PartitionKey ?? '',
      sequenceNumber: record.SequenceNumber ?? '',
      data: Buffer.from(record.Data ?? new Uint8Array()).toString('base64'),
      approximateArrivalTimestamp: (record.ApproximateArrivalTimestamp ?? new Date()).getTime() / 1000,
    },
  };
}

/**
 * Feeds a Kinesis stream to a handler the way Lambda's event source mapping does: per shard, in
 * order, one batch at a time. A thrown error retries the same batch (halved with
 * bisectBatchOnError); reported batchItemFailures retry from the lowest failed sequence number
 * (records after it come again, as on AWS). The checkpoint only moves past records the handler
 * finished with, or that were given up on (maxRecordAgeMs, maxRetryAttempts) and described to
 * `onFailure`: the CDK stack's settings (contracts/redelivery.ts), as the local stack passes them.
 */
export class KinesisPoller {
  readonly #options: KinesisPollerOptions;
  #running = false;
  #loops: Promise<void>[] = [];
  #checkpoints: Checkpoints = {};
  /** Per shard: the sequence number a failing batch retries from, and how often it was tried. */
  readonly #attempts = new Map<string, { from: string; count: number }>();
  /** Per shard: the batch size after bisecting on thrown errors. */
  readonly #limits = new Map<string, number>();

  constructor(options: KinesisPollerOptions) {
    this.#options = options;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      this.#checkpoints = JSON.parse(await readFile(this.#options.checkpointFile, 'utf8')) as Checkpoints;
    } catch {
      this.#checkpoints = {};
    }
    const shards = await this.#options.kinesis.send(
      new ListShardsCommand({ StreamName: this.#options.streamName }),
    );
    this.#loops = (shards.Shards ?? []).map((shard) => this.#runShard(shard.ShardId ?? ''));
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  async #iterator(shardId: string, at?: string): Promise<string | undefined> {
    const after = this.#checkpoints[shardId];
    const out = await this.#options.kinesis.send(
      new GetShardIteratorCommand({
        StreamName: this.#options.streamName,
        ShardId: shardId,
        ...(at
          ? { ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: at }
          : after
            ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: after }
            : { ShardIteratorType: 'TRIM_HORIZON' }),
      }),
    );
    return out.ShardIterator;
  }

  async #save(shardId: string, sequenceNumber: string): Promise<void> {
    this.#checkpoints[shardId] = sequenceNumber;
    await mkdir(dirname(this.#options.checkpointFile), { recursive: true });
    await writeFile(this.#options.checkpointFile, JSON.stringify(this.#checkpoints));
  }

  async #runShard(shardId: string): Promise<void> {
    const idleMs = this.#options.idleMs ?? 100;
    let iterator: string | undefined;
    while (this.#running) {
      try {
        iterator ??= await this.#iterator(shardId);
        if (!iterator) return;
        const { records, next } = await this.#readBatch(shardId, iterator);
        if (records.length === 0) {
          iterator = next;
          await sleep(idleMs);
          continue;
        }
        iterator = await this.#handOver(shardId, records, next);
      } catch (error) {
        if (!this.#running) return;
        this.#options.onError?.(error);
        iterator = undefined;
        await sleep(500);
      }
    }
  }

  /**
   * Up to the batch size of records from `iterator`; once some arrived, the shard is read again
   * until the batch is full or the batching window has passed.
   */
  async #readBatch(shardId: string, iterator: string): Promise<{ records: _Record[]; next?: string }> {
    const batchSize = this.#limits.get(shardId) ?? this.#options.batchSize ?? 100;
    let out = await this.#options.kinesis.send(
      new GetRecordsCommand({ ShardIterator: iterator, Limit: batchSize }),
    );
    const records = [...(out.Records ?? [])];
    const deadline = Date.now() + (this.#options.batchingWindowMs ?? 0);
    while (
      records.length > 0 &&
      records.length < batchSize &&
      Date.now() < deadline &&
      out.NextShardIterator &&
      this.#running
    ) {
      await sleep(Math.min(20, Math.max(0, deadline - Date.now())));
      out = await this.#options.kinesis.send(
        new GetRecordsCommand({ ShardIterator: out.NextShardIterator, Limit: batchSize - records.length }),
      );
      records.push(...(out.Records ?? []));
    }
    return { records, ...(out.NextShardIterator ? { next: out.NextShardIterator } : {}) };
  }

  /**
   * Hands a batch to the handler, or gives up on it (expired, retries exhausted).
   * @returns the iterator to read on from: after the batch, or again from a failed record
   */
  async #handOver(
    shardId: string,
    records: _Record[],
    next: string | undefined,
  ): Promise<string | undefined> {
    const expired = this.#expired(records);
    if (expired > 0) {
      // Given up on unread, as Lambda discards records past MaximumRecordAgeInSeconds.
      return this.#giveUpAndSkip(shardId, records.slice(0, expired), 'RecordAgeExceeded');
    }
    const { retryFrom, threw } = await this.#invoke(shardId, records);
    if (threw && this.#options.bisectBatchOnError && records.length > 1) {
      this.#limits.set(shardId, Math.ceil(records.length / 2));
    } else if (!threw) {
      this.#limits.delete(shardId);
    }
    if (retryFrom === undefined) {
      this.#attempts.delete(shardId);
      await this.#save(shardId, records[records.length - 1]?.SequenceNumber ?? '');
      return next;
    }
    const index = records.findIndex((r) => r.SequenceNumber === retryFrom);
    if (this.#exhausted(shardId, retryFrom)) {
      return this.#giveUpAndSkip(shardId, records.slice(Math.max(0, index)), 'RetryAttemptsExhausted');
    }
    // Checkpoint what came before the first failure, then read again from it.
    const before = records[index - 1]?.SequenceNumber;
    if (before) await this.#save(shardId, before);
    const again = await this.#iterator(shardId, retryFrom);
    await sleep(200);
    return again;
  }

  /** Describes the records to `onFailure` and moves the checkpoint past them. */
  async #giveUpAndSkip(
    shardId: string,
    given: readonly _Record[],
    condition: KinesisFailureDescription['requestContext']['condition'],
  ): Promise<string | undefined> {
    await this.#giveUp(shardId, given, condition, this.#attempts.get(shardId)?.count ?? 0);
    this.#attempts.delete(shardId);
    await this.#save(shardId, given[given.length - 1]?.SequenceNumber ?? '');
    return this.#iterator(shardId);
  }

  /** @returns the sequence number to retry from (undefined: the whole batch is done), and whether it threw. */
  async #invoke(shardId: string, records: _Record[]): Promise<{ retryFrom?: string; threw: boolean }> {
    const event = { Records: records.map((r) => toRecord(r, this.#options, shardId)) };
    try {
      const response = await this.#options.handler(event);
      const failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
      const retryFrom = records.find((r) => failed.has(r.SequenceNumber ?? ''))?.SequenceNumber;
      return { ...(retryFrom === undefined ? {} : { retryFrom }), threw: false };
    } catch (error) {
      this.#options.onError?.(error);
      const retryFrom = records[0]?.SequenceNumber;
      return { ...(retryFrom === undefined ? {} : { retryFrom }), threw: true };
    }
  }

  /** How many records at the head of the batch are older than maxRecordAgeMs (0 without a destination). */
  #expired(records: readonly _Record[]): number {
    const maxAge = this.#options.maxRecordAgeMs;
    if (maxAge === undefined || maxAge < 0 || !this.#options.onFailure) return 0;
    const oldest = Date.now() - maxAge;
    const index = records.findIndex(
      (r) => (r.ApproximateArrivalTimestamp?.getTime() ?? Date.now()) >= oldest,
    );
    return index < 0 ? records.length : index;
  }

  /** Counts one more failed attempt from `from`; true once maxRetryAttempts retries have failed. */
  #exhausted(shardId: string, from: string): boolean {
    const previous = this.#attempts.get(shardId);
    const count = previous && previous.from === from ? previous.count + 1 : 1;
    this.#attempts.set(shardId, { from, count });
    const max = this.#options.maxRetryAttempts ?? -1;
    return max >= 0 && this.#options.onFailure !== undefined && count > max;
  }

  async #giveUp(
    shardId: string,
    records: readonly _Record[],
    condition: KinesisFailureDescription['requestContext']['condition'],
    attempts: number,
  ): Promise<void> {
    const first = records[0];
    const last = records[records.length - 1];
    if (!first || !last || !this.#options.onFailure) return;
    const at = (r: _Record) => (r.ApproximateArrivalTimestamp ?? new Date()).toISOString();
    await this.#options.onFailure({
      requestContext: { condition, approximateInvokeCount: attempts },
      version: '1.0',
      timestamp: new Date().toISOString(),
      KinesisBatchInfo: {
        shardId,
        startSequenceNumber: first.SequenceNumber ?? '',
        endSequenceNumber: last.SequenceNumber ?? '',
        approximateArrivalOfFirstRecord: at(first),
        approximateArrivalOfLastRecord: at(last),
        batchSize: records.length,
        streamArn: this.#options.streamArn,
      },
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
