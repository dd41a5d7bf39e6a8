import { KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { UsageEvent } from '../shared/usage-event';

/** Hands a usage event to the transport. Resolves only once the transport has stored it durably. */
export interface UsagePublisher {
  publish(event: UsageEvent): Promise<void>;
}

export type Transport = 'sqs' | 'kinesis';

/**
 * For the AWS clients of key-api, where a caller is waiting: at most 2 attempts of at most 1 s each,
 * so a key lookup and a publish that both hang still answer (503) within the function's 5 s
 * timeout instead of ending in the ALB's 502. A retry after a timeout may store a second copy of an
 * event, which the consumer drops by event id. `throwOnRequestTimeout`: without it the SDK only
 * logs a warning when `requestTimeout` passes and keeps waiting for an answer that never comes.
 */
export const callerWaitingClientConfig = {
  requestHandler: { connectionTimeout: 1000, requestTimeout: 1000, throwOnRequestTimeout: true },
  maxAttempts: 2,
};

export class SqsUsagePublisher implements UsagePublisher {
  readonly #sqs: SQSClient;
  readonly #queueUrl: string;

  constructor(options: { queueUrl: string; client?: SQSClient }) {
    this.#sqs = options.client ?? new SQSClient(callerWaitingClientConfig);
    this.#queueUrl = options.queueUrl;
  }

  async publish(event: UsageEvent): Promise<void> {
    await this.#sqs.send(
      new SendMessageCommand({ QueueUrl: this.#queueUrl, MessageBody: JSON.stringify(event) }),
    );
  }
}

export class KinesisUsagePublisher implements UsagePublisher {
  readonly #kinesis: KinesisClient;
  readonly #streamName: string;

  constructor(options: { streamName: string; client?: KinesisClient }) {
    this.#kinesis = options.client ?? new KinesisClient(callerWaitingClientConfig);
    this.#streamName = options.streamName;
  }

  async publish(event: UsageEvent): Promise<void> {
    await this.#kinesis.send(
      new PutRecordCommand({
        StreamName: this.#streamName,
        // Per-key ordering: all of a key's events go to one shard, in order.
        PartitionKey: event.keyId,
        Data: Buffer.from(JSON.stringify(event)),
      }),
    );
  }
}
