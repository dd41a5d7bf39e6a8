import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { usageStream } from '../../contracts/resources';
import { UsageTransport } from '../../infra/cdk/constructs/usage-transport';

const streamOf = (kinesisShards?: number | 'on-demand') => {
  const stack = new Stack(new App(), 'T');
  new UsageTransport(stack, 'U', {
    stage: 'test',
    transport: 'kinesis',
    ...(kinesisShards !== undefined ? { kinesisShards } : {}),
  });
  const streams = Object.values(Template.fromStack(stack).findResources('AWS::Kinesis::Stream'));
  expect(streams).toHaveLength(1);
  return streams[0]?.Properties as Record<string, unknown>;
};

describe('the Kinesis usage stream', () => {
  it('is provisioned with the shards of contracts/resources.ts unless told otherwise', () => {
    expect(streamOf()).toMatchObject({
      ShardCount: usageStream.shardCount,
      StreamModeDetails: { StreamMode: 'PROVISIONED' },
    });
    expect(streamOf(4)).toMatchObject({ ShardCount: 4 });
  });

  it('can be on demand (no shard count to size)', () => {
    const stream = streamOf('on-demand');
    expect(stream.StreamModeDetails).toEqual({ StreamMode: 'ON_DEMAND' });
    expect(stream.ShardCount).toBeUndefined();
  });
});
