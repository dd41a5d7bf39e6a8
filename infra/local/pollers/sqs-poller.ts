import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

/**
 * SQS batches the local stack keeps in flight at once: one fills (receives) while the other is
 * written. Measured with 20,000 queued events: 770 events/s counted with one, 1,050 with two, 1,150
 * with three. (On AWS the event source mapping scales its pollers itself.)
 */
export const LOCAL_SQS_BATCHES_IN_FLIGHT = 2;

export type SqsBatchHandler = (event: SQSEvent) => Promise<SQSBatchResponse | undefined>;

export interface SqsPollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  queueArn: string;
  region: string;
  handler: SqsBatchHandler;
  /** Most records per invocation, as the event source mapping's BatchSize (up to 10,000). @default 100 */
  batchSize?: number;
  /**
   * How long to gather a batch once the first message arrived (MaximumBatchingWindowInSeconds): a
   * batch is handed over when it is full or this has passed. @default 200
   */
  batchingWindowMs?: number;
  /**
   * ReceiveMessage calls in flight while a batch fills (each takes at most 10 messages), as the
   * event source mapping's pollers do: a batch of thousands is not gathered ten at a time. @default 8
   */
  parallelReceives?: number;
  /**
   * Batches in flight at once, as the event source mapping scales its pollers with the backlog:
   * while one batch is written the next one fills. @default 1
   */
  concurrency?: number;
  /** How long an empty queue is left before it is asked again. @default 50 */
  idleMs?: number;
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
 * Feeds an SQS queue to a handler the way Lambda's event source mapping does: polls, gathers up to
 * `batchSize` records within the batching window (several receives at once, so a large batch fills
 * under a backlog), invokes, then deletes every record except
 * the reported `batchItemFailures`. A thrown error deletes nothing. What is not deleted becomes
 * visible again after the queue's visibility timeout, and the queue's redrive policy moves it to
 * the dead-letter queue after maxReceiveCount receives: the engine does that, not this poller.
 */
export class SqsPoller {
  readonly #options: SqsPollerOptions;
  #batchingWindowMs: number;
  #running = false;
  #loops: Promise<void>[] = [];
  #abort = new AbortController();

  constructor(options: SqsPollerOptions) {
    this.#options = options;
    this.#batchingWindowMs = options.batchingWindowMs ?? 200;
  }

  /**
   * Another batching window from the next batch on, as UpdateEventSourceMapping changes a running
   * mapping's MaximumBatchingWindowInSeconds (the benchmark switches flush profiles this way).
   */
  setBatchingWindowMs(ms: number): void {
    this.#batchingWindowMs = ms;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#abort = new AbortController();
    this.#loops = Array.from({ length: this.#options.concurrency ?? 1 }, () => this.#run());
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#abort.abort();
    await Promise.all(this.#loops);
  }

  async #receive(max: number): Promise<Message[]> {
    // Short polls: the local emulator's long poll answers only once 10 messages are there or its
    // wait ends, which would hold a lone message for the whole wait. Lambda's pollers get a message
    // as soon as it is there; polling an empty queue every idleMs does the same here.
    const out = await this.#options.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.#options.queueUrl,
        MaxNumberOfMessages: Math.min(10, max),
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ['All'],
      }),
      { abortSignal: this.#abort.signal },
    );
    return out.Messages ?? [];
  }

  async #run(): Promise<void> {
    const batchSize = this.#options.batchSize ?? 100;
    const parallel = this.#options.parallelReceives ?? 8;
    const idleMs = this.#options.idleMs ?? 50;
    while (this.#running) {
      try {
        const messages = await this.#receive(batchSize);
        if (messages.length === 0) {
          await sleep(idleMs);
          continue;
        }
        const deadline = Date.now() + this.#batchingWindowMs;
        while (messages.length < batchSize && Date.now() < deadline && this.#running) {
          const wanted = batchSize - messages.length;
          const calls = Math.min(parallel, Math.ceil(wanted / 10));
          const rounds = await Promise.all(
            Array.from({ length: calls }, (_, i) => this.#receive(Math.min(10, wanted - i * 10))),
          );
          const more = rounds.flat();
          // More than asked for cannot come back (each call is capped), so the batch never overflows.
          messages.push(...more);
          if (more.length === 0) await sleep(Math.min(20, Math.max(0, deadline - Date.now())));
        }
        await this.#invoke(messages);
      } catch (error) {
        if (!this.#running) return;
        this.#options.onError?.(error);
        await sleep(500);
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
    const chunks: SQSRecord[][] = [];
    for (let i = 0; i < done.length; i += 10) chunks.push(done.slice(i, i + 10));
    const parallel = this.#options.parallelReceives ?? 8;
    for (let i = 0; i < chunks.length; i += parallel) {
      await Promise.all(
        chunks.slice(i, i + parallel).map((chunk) =>
          this.#options.sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: this.#options.queueUrl,
              Entries: chunk.map((r, n) => ({ Id: `d${n}`, ReceiptHandle: r.receiptHandle })),
            }),
          ),
        ),
      );
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
