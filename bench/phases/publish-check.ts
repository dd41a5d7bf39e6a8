import type { BenchContext } from '../lib/bench-context';
import type { PublishCheck, SustainedRun } from '../lib/types';

/**
 * Bare PutRecord calls from a process of their own, with key-api's Kinesis client settings and
 * as many in flight as the sustained phase had connections, to a stream no one reads.
 */
export async function publishCheck(ctx: BenchContext, kinesisRun: SustainedRun): Promise<PublishCheck> {
  const seconds = ctx.settings.publishCheckSec;
  const keys = ctx.sides.kinesis.sustainedKeys.map((k) => ({ keyId: k.id, accountId: k.accountId }));
  const bare = await ctx.producer.call<PublishCheck['bare']>('putLoop', {
    streamName: ctx.resources.checkStreamName,
    keys,
    connections: kinesisRun.connections,
    durationSec: seconds,
  });
  return {
    connections: kinesisRun.connections,
    durationSec: seconds,
    bare,
    keyApi: { acceptedPerSec: kinesisRun.acceptedPerSec, p50Ms: kinesisRun.wrk.latencyMs.p50 },
    ratio: kinesisRun.acceptedPerSec > 0 ? bare.reqPerSec / kinesisRun.acceptedPerSec : Number.NaN,
  };
}
