import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { eventually, sleep } from './wait';

export interface TestQueue {
  queueUrl: string;
  queueArn: string;
  dlqUrl: string;
  dlqArn: string;
}

let queueCount = 0;

/** A queue and its dead-letter queue of one test's own: nothing else reads or writes them. */
export async function createTestQueue(
  sqs: SQSClient,
  label: string,
  options: { visibilityTimeoutSeconds: number; maxReceiveCount: number },
): Promise<TestQueue> {
  const name = `${label}-${process.pid}-${Date.now()}-${queueCount++}`;
  const arnOf = async (url: string) =>
    (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })))
      .Attributes?.QueueArn as string;
  const dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }))).QueueUrl as string;
  const dlqArn = await arnOf(dlqUrl);
  const queueUrl = (
    await sqs.send(
      new CreateQueueCommand({
        QueueName: name,
        Attributes: {
          VisibilityTimeout: String(options.visibilityTimeoutSeconds),
          RedrivePolicy: JSON.stringify({
            maxReceiveCount: options.maxReceiveCount,
            deadLetterTargetArn: dlqArn,
          }),
        },
      }),
    )
  ).QueueUrl as string;
  return { queueUrl, queueArn: await arnOf(queueUrl), dlqUrl, dlqArn };
}

/**
 * Messages in a queue (of the local-aws-sqs engine): visible, received but not deleted yet, and
 * delayed (just sent: the engine holds every new message as delayed until its next timer tick, even
 * with DelaySeconds 0, so a count read right after a send can miss it otherwise).
 */
export async function queueCounts(
  sqs: SQSClient,
  queueUrl: string,
): Promise<{ visible: number; inFlight: number; delayed: number }> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  // local-aws-sqs counts messages in flight in ApproximateNumberOfMessages too (SQS does not).
  const all = Number(out.Attributes?.ApproximateNumberOfMessages ?? 0);
  const inFlight = Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  const delayed = Number(out.Attributes?.ApproximateNumberOfMessagesDelayed ?? 0);
  return { visible: Math.max(0, all - inFlight), inFlight, delayed };
}

/** Messages in a queue, visible, in flight or just sent. */
export async function queueDepth(sqs: SQSClient, queueUrl: string): Promise<number> {
  const { visible, inFlight, delayed } = await queueCounts(sqs, queueUrl);
  return visible + inFlight + delayed;
}

/** Sends each body as one message, ten to a request. */
export async function sendBodies(sqs: SQSClient, queueUrl: string, bodies: readonly string[]): Promise<void> {
  for (let i = 0; i < bodies.length; i += 10) {
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: bodies.slice(i, i + 10).map((MessageBody, n) => ({ Id: `m${n}`, MessageBody })),
      }),
    );
  }
}

/**
 * Every message currently visible in a queue, with its attributes. `remove` deletes what was read;
 * otherwise the messages come back after `visibilityTimeout` seconds.
 */
export async function receiveAll(
  sqs: SQSClient,
  queueUrl: string,
  options: { remove: boolean; visibilityTimeout?: number },
): Promise<Message[]> {
  const all: Message[] = [];
  for (let empty = 0; empty < 2; ) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: options.visibilityTimeout ?? 30,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
        // local-aws-sqs reads only the older name for system attributes.
        AttributeNames: ['All'],
      }),
    );
    const messages = out.Messages ?? [];
    if (messages.length === 0) {
      empty++;
      await sleep(50);
      continue;
    }
    all.push(...messages);
    if (options.remove) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: messages.map((m, n) => ({ Id: `d${n}`, ReceiptHandle: m.ReceiptHandle })),
        }),
      );
    }
  }
  return all;
}

let streamCount = 0;

/** A one-shard Kinesis stream of one test's own, active, with an SQS queue for its dead letters. */
export async function createTestStream(
  kinesis: KinesisClient,
  sqs: SQSClient,
  label: string,
): Promise<{ name: string; arn: string; dlqUrl: string }> {
  const name = `${label}-${process.pid}-${Date.now()}-${streamCount++}`;
  await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: 1 }));
  let arn = '';
  await eventually(async () => {
    const summary = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }));
    arn = summary.StreamDescriptionSummary?.StreamARN ?? '';
    return summary.StreamDescriptionSummary?.StreamStatus === 'ACTIVE';
  }, 10_000);
  const dlqUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }))).QueueUrl as string;
  return { name, arn, dlqUrl };
}
