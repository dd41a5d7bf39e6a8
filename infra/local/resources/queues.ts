import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { UsageRedelivery } from '../../../contracts/redelivery';
import { queueName, usageQueue } from '../../../contracts/resources';

/**
 * The usage queue and its dead-letter queue, with the CDK stack's redelivery. The SQS emulator
 * keeps them in memory, so they are created on every start.
 */

export async function ensureUsageQueues(client: SQSClient, stage: string, redelivery: UsageRedelivery) {
  const usageDlqUrl = await ensureQueue(client, queueName(stage, usageQueue, true), {
    MessageRetentionPeriod: String(redelivery.deadLetter.retentionSeconds),
  });
  const deadLetterTargetArn = await queueArn(client, usageDlqUrl);
  const { queue } = redelivery;
  const usageQueueUrl = await ensureQueue(client, queueName(stage, usageQueue), {
    VisibilityTimeout: String(queue.visibilityTimeoutSeconds),
    MessageRetentionPeriod: String(queue.retentionSeconds),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn, maxReceiveCount: queue.maxReceiveCount }),
  });
  return { usageQueueUrl, usageQueueArn: await queueArn(client, usageQueueUrl), usageDlqUrl };
}

async function queueArn(client: SQSClient, queueUrl: string): Promise<string> {
  const { Attributes } = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  if (!Attributes?.QueueArn) throw new Error(`SQS returned no QueueArn for ${queueUrl}`);
  return Attributes.QueueArn;
}

async function ensureQueue(
  client: SQSClient,
  name: string,
  attributes: Record<string, string>,
): Promise<string> {
  try {
    const created = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    if (!created.QueueUrl) throw new Error(`SQS returned no QueueUrl for ${name}`);
    return created.QueueUrl;
  } catch (error) {
    // CreateQueue is idempotent only with identical attributes: bring an existing queue in line.
    if (!['QueueAlreadyExists', 'QueueNameExists'].includes((error as Error).name)) throw error;
    const { QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: name }));
    if (!QueueUrl) throw new Error(`SQS returned no QueueUrl for ${name}`);
    await client.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: attributes }));
    return QueueUrl;
  }
}
