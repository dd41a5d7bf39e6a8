import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Rejected } from './batch';

/** Where refused records go, with the reason, so no input is ever silently dropped. */
export interface DeadLetterSink {
  /** @returns the record ids that could not be dead-lettered (to be reported as failures). */
  send(rejected: readonly Rejected[]): Promise<string[]>;
}

const MAX_DETAIL = 1000;

export class SqsDeadLetterSink implements DeadLetterSink {
  readonly #sqs: SQSClient;
  readonly #queueUrl: string;
  readonly #transport: string;

  constructor(options: { sqs: SQSClient; queueUrl: string; transport: string }) {
    this.#sqs = options.sqs;
    this.#queueUrl = options.queueUrl;
    this.#transport = options.transport;
  }

  async send(rejected: readonly Rejected[]): Promise<string[]> {
    const failed: string[] = [];
    for (let i = 0; i < rejected.length; i += 10) {
      const chunk = rejected.slice(i, i + 10);
      try {
        const out = await this.#sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: this.#queueUrl,
            Entries: chunk.map((r, n) => ({
              Id: `r${n}`,
              // The original body, untouched, so a fixed consumer can take it back as it was.
              MessageBody: r.record.body.length > 0 ? r.record.body : '(empty)',
              MessageAttributes: {
                reason: { DataType: 'String', StringValue: r.reason },
                detail: { DataType: 'String', StringValue: r.detail.slice(0, MAX_DETAIL) || r.reason },
                sourceRecordId: { DataType: 'String', StringValue: r.record.recordId },
                transport: { DataType: 'String', StringValue: this.#transport },
              },
            })),
          }),
        );
        for (const f of out.Failed ?? []) {
          const index = Number(f.Id?.slice(1));
          const record = chunk[index];
          if (record) failed.push(record.record.recordId);
        }
      } catch {
        failed.push(...chunk.map((r) => r.record.recordId));
      }
    }
    return failed;
  }
}
