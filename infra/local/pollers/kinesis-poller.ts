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
  onError?: (error: unknown) => void;
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
 * order, one batch at a time. A thrown error retries the same batch; reported batchItemFailures
 * retry from the lowest failed sequence number (records after it come again, as on AWS). The
 * checkpoint only moves past records the handler finished with.
 */
export class KinesisPoller {
  readonly #options: KinesisPollerOptions;
  #running = false;
  #loops: Promise<void>[] = [];
  #checkpoints: Checkpoints = {};

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
        const batchSize = this.#options.batchSize ?? 100;
        let out = await this.#options.kinesis.send(
          new GetRecordsCommand({ ShardIterator: iterator, Limit: batchSize }),
        );
        const records = [...(out.Records ?? [])];
        if (records.length === 0) {
          iterator = out.NextShardIterator;
          await new Promise((resolve) => setTimeout(resolve, idleMs));
          continue;
        }
        const deadline = Date.now() + (this.#options.batchingWindowMs ?? 0);
        while (
          records.length < batchSize &&
          Date.now() < deadline &&
          out.NextShardIterator &&
          this.#running
        ) {
          await new Promise((resolve) =>
            setTimeout(resolve, Math.min(20, Math.max(0, deadline - Date.now()))),
          );
          out = await this.#options.kinesis.send(
            new GetRecordsCommand({
              ShardIterator: out.NextShardIterator,
              Limit: batchSize - records.length,
            }),
          );
          records.push(...(out.Records ?? []));
        }
        const retryFrom = await this.#invoke(shardId, records);
        if (retryFrom === undefined) {
          await this.#save(shardId, records[records.length - 1]?.SequenceNumber ?? '');
          iterator = out.NextShardIterator;
        } else {
          // Checkpoint what came before the first failure, then read again from it.
          const index = records.findIndex((r) => r.SequenceNumber === retryFrom);
          const before = records[index - 1]?.SequenceNumber;
          if (before) await this.#save(shardId, before);
          iterator = await this.#iterator(shardId, retryFrom);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      } catch (error) {
        if (!this.#running) return;
        this.#options.onError?.(error);
        iterator = undefined;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  /** @returns the sequence number to retry from, or undefined when the whole batch is done. */
  async #invoke(shardId: string, records: _Record[]): Promise<string | undefined> {
    const event = { Records: records.map((r) => toRecord(r, this.#options, shardId)) };
    try {
      const response = await this.#options.handler(event);
      const failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
      return records.find((r) => failed.has(r.SequenceNumber ?? ''))?.SequenceNumber;
    } catch (error) {
      this.#options.onError?.(error);
      return records[0]?.SequenceNumber;
    }
  }
}
