import { KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { UsageEvent } from '../shared/usage-event';

/** Hands a usage event to the transport. Resolves only once the transport has stored it durably. */
export interface UsagePublisher {
  publish(event: UsageEvent): Promise<void>;
}

export type Transport = 'sqs' | 'kinesis';

// Short timeouts: a caller is waiting. The SDK retries (3 attempts); a retry after a timeout may
// store a second copy, which the consumer drops by event id.
const clientConfig = { requestHandler: { connectionTimeout: 1000, requestTimeout: 2000 }, maxAttempts: 3 };

export class SqsUsagePublisher implements UsagePublisher {
  readonly #sqs: SQSClient;
  readonly #queueUrl: string;

  constructor(options: { queueUrl: string; client?: SQSClient }) {
    this.#sqs = options.client ?? new SQSClient(clientConfig);
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
    this.#kinesis = options.client ?? new KinesisClient(clientConfig);
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
