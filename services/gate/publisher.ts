import { type KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { UsageEvent } from '../../contracts/usage-event';

/** Hands a usage event to the transport. Resolves only once the transport has stored it durably. */
export interface UsagePublisher {
  publish(event: UsageEvent): Promise<void>;
}

/**
 * The clients of key-api and every gate, where a caller is waiting: at most 2 attempts of at most
 * 1 s each (services/platform/aws-clients.ts, beside the other deployables' budgets). A retry after a
 * timeout may store a second copy of an event, which the consumer drops by event id (SQS: its
 * dedupe mark; Kinesis: see below).
 */
export { callerWaitingClientConfig } from '../platform/aws-clients';

export class SqsUsagePublisher implements UsagePublisher {
  readonly #sqs: SQSClient;
  readonly #queueUrl: string;

  constructor(options: { queueUrl: string; client: SQSClient }) {
    this.#sqs = options.client;
    this.#queueUrl = options.queueUrl;
  }

  async publish(event: UsageEvent): Promise<void> {
    await this.#sqs.send(
      new SendMessageCommand({ QueueUrl: this.#queueUrl, MessageBody: JSON.stringify(event) }),
    );
  }
}

/**
 * Whether a failed call may still have been carried out by the service: no answer came back (a
 * timeout, a reset connection) or the service failed (5xx) after maybe storing the record. A 4xx
 * answer, throttling included, means the request was refused as a whole.
 */
export function outcomeUnknown(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
    ?.httpStatusCode;
  return status === undefined || status >= 500;
}

/** Refusals worth one more attempt at once: the shard was busy, not the request wrong. */
const RETRYABLE_REFUSALS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'KMSThrottlingException',
]);

/**
 * Publishes to Kinesis with at most two attempts, made here rather than by the SDK: when the first
 * attempt's outcome is unknown, the second copy is marked `resent` (with the first attempt's time).
 * The consumer rules out redelivered records by sequence number, not per-event marks, so an
 * unmarked second copy of a stored record would be counted twice; a marked one is looked for in its
 * shard first (services/metering/look-back.ts). The client must therefore not retry by itself.
 */
export class KinesisUsagePublisher implements UsagePublisher {
  readonly #kinesis: KinesisClient;
  readonly #streamName: string;
  #singleAttemptChecked = false;

  /** `client` must be configured with `maxAttempts: 1` (checked on the first publish). */
  constructor(options: { streamName: string; client: KinesisClient }) {
    this.#kinesis = options.client;
    this.#streamName = options.streamName;
  }

  async publish(event: UsageEvent): Promise<void> {
    if (!this.#singleAttemptChecked) {
      if ((await this.#kinesis.config.maxAttempts()) !== 1)
        throw new Error('KinesisUsagePublisher needs a client with maxAttempts: 1: it retries by itself');
      this.#singleAttemptChecked = true;
    }
    const firstAttemptAt = Date.now();
    try {
      await this.#put(event);
    } catch (error) {
      if (outcomeUnknown(error)) await this.#put({ ...event, resent: firstAttemptAt });
      else if (RETRYABLE_REFUSALS.has((error as Error).name)) await this.#put(event);
      else throw error;
    }
  }

  async #put(event: UsageEvent): Promise<void> {
    await this.#kinesis.send(
      new PutRecordCommand({
        StreamName: this.#streamName,
        // Per-key ordering: all of a key's events go to one shard, in order, so a key's counters
        // can be guarded by the shard's sequence numbers (services/metering/ordered.ts).
        PartitionKey: event.keyId,
        Data: Buffer.from(JSON.stringify(event)),
      }),
    );
  }
}
