import {
  CreateStreamCommand,
  DecreaseStreamRetentionPeriodCommand,
  DescribeStreamSummaryCommand,
  IncreaseStreamRetentionPeriodCommand,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import { streamName, usageStream } from '../../../contracts/resources';
import { poll } from '../poll';

/** The usage stream on kinesalite (kept across restarts), with the CDK stack's retention. */

export async function ensureUsageStream(
  client: KinesisClient,
  stage: string,
  retentionHours: number,
): Promise<{ usageStreamName: string; usageStreamArn: string }> {
  const name = streamName(stage, usageStream);
  let summary = await describeStream(client, name);
  if (!summary) {
    try {
      await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: usageStream.shardCount }));
    } catch (error) {
      if ((error as Error).name !== 'ResourceInUseException') throw error;
    }
    summary = await waitForStream(client, name);
  }
  const hours = summary.RetentionPeriodHours ?? 24;
  if (hours !== retentionHours) {
    const input = { StreamName: name, RetentionPeriodHours: retentionHours };
    await client.send(
      hours < retentionHours
        ? new IncreaseStreamRetentionPeriodCommand(input)
        : new DecreaseStreamRetentionPeriodCommand(input),
    );
    summary = await waitForStream(client, name);
  }
  if (!summary.StreamARN) throw new Error(`Kinesis returned no StreamARN for ${name}`);
  return { usageStreamName: name, usageStreamArn: summary.StreamARN };
}

async function describeStream(client: KinesisClient, name: string) {
  try {
    return (await client.send(new DescribeStreamSummaryCommand({ StreamName: name })))
      .StreamDescriptionSummary;
  } catch (error) {
    if ((error as Error).name === 'ResourceNotFoundException') return undefined;
    throw error;
  }
}

function waitForStream(client: KinesisClient, name: string) {
  return poll(`stream ${name} to become active`, async () => {
    const summary = await describeStream(client, name);
    return summary?.StreamStatus === 'ACTIVE' ? summary : undefined;
  });
}
