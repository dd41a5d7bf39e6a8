import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

export type SqsBatchHandler = (event: SQSEvent) => Promise<SQSBatchResponse | undefined>;

export interface SqsPollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  region: string;
  handler: SqsBatchHandler;
  /** Records per invocation, as the event source mapping's BatchSize. @default 100 */
  batchSize?: number;
  /** How long to gather a batch once the first message arrived (MaximumBatchingWindowInSeconds). @default 200 */
  batchingWindowMs?: number;
  onError?: (error: unknown) => void;
}

function toRecord(message: Message, options: SqsPollerOptions): SQSRecord {
  const attributes = message.Attributes ?? {};
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? `${Date.now()}`,
      SenderId: attributes.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? `${Date.now()}`,
    },
    messageAttributes: {},
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: options.queueArn,
    awsRegion: options.region,
  };
}

/**
 * Feeds an SQS queue to a handler the way Lambda's event source mapping does: long-polls, gathers
 * up to `batchSize` records within the batching window, invokes, then deletes every record except
 * the reported `batchItemFailures`. A thrown error deletes nothing. What is not deleted becomes
 * visible again after the queue's visibility timeout, and the queue's redrive policy moves it to
 * the dead-letter queue after maxReceiveCount receives: the engine does that, not this poller.
 */
export class SqsPoller {
  readonly #options: SqsPollerOptions;
  #running = false;
  #loop: Promise<void> | undefined;
  #abort = new AbortController();

  constructor(options: SqsPollerOptions) {
    this.#options = options;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#abort = new AbortController();
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#abort.abort();
    await this.#loop;
  }

  async #receive(max: number, waitSeconds: number): Promise<Message[]> {
    const out = await this.#options.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.#options.queueUrl,
        MaxNumberOfMessages: Math.min(10, max),
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ['All'],
      }),
      { abortSignal: this.#abort.signal },
    );
    return out.Messages ?? [];
  }

  async #run(): Promise<void> {
    const batchSize = this.#options.batchSize ?? 100;
    const windowMs = this.#options.batchingWindowMs ?? 200;
    while (this.#running) {
      try {
        const messages = await this.#receive(batchSize, 1);
        if (messages.length === 0) continue;
        const deadline = Date.now() + windowMs;
        while (messages.length < batchSize && Date.now() < deadline && this.#running) {
          const more = await this.#receive(batchSize - messages.length, 0);
          if (more.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
          messages.push(...more);
        }
        await this.#invoke(messages);
      } catch (error) {
        if (!this.#running) return;
        this.#options.onError?.(error);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  async #invoke(messages: Message[]): Promise<void> {
    const records = messages.map((m) => toRecord(m, this.#options));
    let failed: Set<string>;
    try {
      const response = await this.#options.handler({ Records: records });
      failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (error) {
      this.#options.onError?.(error);
      return;
    }
    const done = records.filter((r) => !failed.has(r.messageId));
    for (let i = 0; i < done.length; i += 10) {
      await this.#options.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.#options.queueUrl,
          Entries: done.slice(i, i + 10).map((r, n) => ({ Id: `d${n}`, ReceiptHandle: r.receiptHandle })),
        }),
      );
    }
  }
}
