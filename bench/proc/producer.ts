import { type KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { newUsageEvent } from '../../contracts/usage-event';
import { callerWaitingClientConfig } from '../../services/gate/publisher';
import { kinesisClient, sqsClient } from '../../services/platform/aws-clients';
import { serveParent } from '../lib/ipc';
import { type PacedArgs, publishPaced } from '../lib/paced-publisher';
import { installSdkCounter, snapshotCounts } from '../lib/sdk-counter';
import { summarize } from '../lib/stats';

/**
 * Child process: writes usage events straight to a transport, with no key API in front.
 *
 * - `paced`: events at a steady rate to the benchmark's queue or stream (bench/lib/paced-publisher.ts).
 * - `putLoop`: bare PutRecord calls, `connections` in flight, with key-api's Kinesis client settings
 *   (callerWaitingClientConfig, maxAttempts 1, as services/key-api/compose.ts builds it), to a
 *   stream nobody reads: the emulator's ceiling for key-api's publish path, without HTTP or the handler.
 *
 * Its clients find the stack's engines through the AWS_* variables, as every child's do.
 */
interface PutLoopArgs {
  readonly streamName: string;
  readonly keys: ReadonlyArray<{ readonly keyId: string; readonly accountId: string }>;
  readonly connections: number;
  readonly durationSec: number;
}

async function putLoop(client: KinesisClient, args: PutLoopArgs) {
  const latencies: number[] = [];
  let requests = 0;
  let ok = 0;
  let errors = 0;
  const start = performance.now();
  const until = start + args.durationSec * 1000;
  const worker = async (w: number) => {
    for (let i = w; performance.now() < until; i += args.connections) {
      const key = args.keys[i % args.keys.length] as { keyId: string; accountId: string };
      const event = newUsageEvent({ keyId: key.keyId, accountId: key.accountId, now: new Date() });
      const began = performance.now();
      requests++;
      try {
        await client.send(
          new PutRecordCommand({
            StreamName: args.streamName,
            PartitionKey: event.keyId,
            Data: Buffer.from(JSON.stringify(event)),
          }),
        );
        ok++;
        latencies.push(performance.now() - began);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: args.connections }, (_, w) => worker(w)));
  const seconds = (performance.now() - start) / 1000;
  return { requests, ok, errors, reqPerSec: ok / seconds, latencyMs: summarize(latencies) };
}

serveParent(async () => {
  installSdkCounter();
  let sqs: SQSClient | undefined;
  let kinesis: KinesisClient | undefined;
  let keyApiKinesis: KinesisClient | undefined;
  const clients = {
    sqs: () => (sqs ??= sqsClient()),
    kinesis: () => (kinesis ??= kinesisClient({}, { maxAttempts: 1 })),
  };
  return {
    ready: {},
    handlers: {
      paced: (args: PacedArgs) => publishPaced(args, clients),
      putLoop: (args: PutLoopArgs) => {
        keyApiKinesis ??= kinesisClient({}, { ...callerWaitingClientConfig, maxAttempts: 1 });
        return putLoop(keyApiKinesis, args);
      },
      snapshot: () => ({ sdk: snapshotCounts() }),
    },
    cleanUp: async () => {
      for (const client of [sqs, kinesis, keyApiKinesis]) client?.destroy();
    },
  };
});
