import type { KinesisStreamEvent, SQSEvent } from 'aws-lambda';
import { z } from 'zod';
import { InvalidEventError } from '../platform/errors';
import type { InboundRecord } from './batch';

const sqsEventSchema = z.object({
  Records: z.array(
    z.looseObject({ eventSource: z.literal('aws:sqs'), messageId: z.string(), body: z.string() }),
  ),
});
const kinesisEventSchema = z.object({
  Records: z.array(
    z.looseObject({
      eventSource: z.literal('aws:kinesis'),
      // `shardId-000000000000:<sequence number>`, as the event source mapping writes it.
      eventID: z.string().regex(/^[^:]+:\d+$/),
      eventSourceARN: z.string().min(1),
      kinesis: z.looseObject({ sequenceNumber: z.string().regex(/^\d{1,128}$/), data: z.string() }),
    }),
  ),
});

export type TransportEvent = SQSEvent | KinesisStreamEvent;

/**
 * The records of an SQS or Kinesis event, whichever the transport; the record id is what each
 * event source expects back in `batchItemFailures`.
 */
export function inboundRecords(event: unknown): InboundRecord[] {
  const sqs = sqsEventSchema.safeParse(event);
  if (sqs.success) return sqs.data.Records.map((r) => ({ recordId: r.messageId, body: r.body }));
  const kinesis = kinesisEventSchema.safeParse(event);
  if (kinesis.success) {
    return kinesis.data.Records.map((r) => ({
      recordId: r.kinesis.sequenceNumber,
      body: Buffer.from(r.kinesis.data, 'base64').toString('utf8'),
      position: {
        streamArn: r.eventSourceARN,
        shardId: r.eventID.slice(0, r.eventID.lastIndexOf(':')),
        sequenceNumber: r.kinesis.sequenceNumber,
      },
    }));
  }
  throw new InvalidEventError('neither an SQS nor a Kinesis event');
}
