import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { usageQueue, usageStream } from '../../contracts/resources';
import { KinesisPoller } from '../../infra/local/pollers/kinesis-poller';
import { SqsPoller } from '../../infra/local/pollers/sqs-poller';
import { composeMetering } from '../../services/metering/compose';
import { loadMeteringConfig } from '../../services/metering/config';
import { discardMetrics } from '../../services/shared/metrics';
import { serveParent } from '../lib/ipc';
import { installSdkCounter, snapshotCounts } from '../lib/sdk-counter';
import { summarize } from '../lib/stats';
import type { ConsumerSnapshot, Transport } from '../lib/types';

/**
 * Child process: the metering function and its event source mapping for one transport, as the local
 * stack runs them (composed by composeMetering from this process's environment, quiet, no metrics
 * written; fed by the local SQS or Kinesis poller with the stack's default settings; the SDK's
 * AWS_* variables point its clients at the stack), on the benchmark's own queue or stream so nothing else competes for the
 * records. One process per transport, so each one's requests are counted apart even when both run
 * at once. Every AWS SDK request (the handler's DynamoDB transactions, the poller's receives and
 * deletes) is counted at the client; each invocation is timed, and each counted event's lag (event
 * time to committed) is kept.
 *
 * argv: <sqs|kinesis>
 * env: BENCH_QUEUE_URL and BENCH_QUEUE_ARN, or BENCH_STREAM_NAME and BENCH_STREAM_ARN; the stack's.
 */
interface TransportStats {
  invocations: number;
  records: number;
  failed: number;
  durationsMs: number[];
  lagMs: number[];
}

const transport = process.argv[2] as Transport;

serveParent(async () => {
  if (transport !== 'sqs' && transport !== 'kinesis') throw new Error(`unknown transport ${transport}`);
  installSdkCounter();
  const env = (name: string) => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set`);
    return value;
  };
  const { handler } = composeMetering(loadMeteringConfig(process.env), {
    logger: new Logger({ serviceName: SERVICE_NAMES.metering, logLevel: 'WARN' }),
    metrics: discardMetrics,
  });

  const s: TransportStats = { invocations: 0, records: 0, failed: 0, durationsMs: [], lagMs: [] };
  type Item = { id: string; body: string };
  const measured =
    <E>(items: (event: E) => Item[]) =>
    async (event: E) => {
      const started = process.hrtime.bigint();
      const response = await handler(event);
      const done = Date.now();
      s.durationsMs.push(Number(process.hrtime.bigint() - started) / 1e6);
      s.invocations++;
      const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
      for (const item of items(event)) {
        s.records++;
        if (failed.has(item.id)) {
          s.failed++;
          continue;
        }
        try {
          const ts = (JSON.parse(item.body) as { ts?: unknown }).ts;
          if (typeof ts === 'number') s.lagMs.push(done - ts);
        } catch {
          // Not an event (a benchmark never sends one): the consumer dead-letters it.
        }
      }
      return response;
    };

  const region = process.env.AWS_REGION ?? 'us-east-1';
  const workDir = await mkdtemp(join(tmpdir(), 'tollgate-bench-metering-'));
  const onError = (error: unknown) =>
    process.stderr.write(`[bench metering] ${transport} batch failed: ${String(error)}\n`);
  // The event source settings infra/local/stack.ts runs with (contracts/resources.ts).
  let stopPoller: () => Promise<void>;
  if (transport === 'sqs') {
    const sqs = new SQSClient({});
    const poller = new SqsPoller({
      sqs,
      queueUrl: env('BENCH_QUEUE_URL'),
      queueArn: env('BENCH_QUEUE_ARN'),
      region,
      handler: measured((event: { Records: Array<{ messageId: string; body: string }> }) =>
        event.Records.map((r) => ({ id: r.messageId, body: r.body })),
      ),
      batchSize: usageQueue.eventSource.batchSize,
      batchingWindowMs: usageQueue.eventSource.maxBatchingWindowSeconds * 1000,
      concurrency: 2,
      onError,
    });
    poller.start();
    stopPoller = async () => {
      await poller.stop();
      sqs.destroy();
    };
  } else {
    const kinesis = new KinesisClient({});
    const poller = new KinesisPoller({
      kinesis,
      streamName: env('BENCH_STREAM_NAME'),
      streamArn: env('BENCH_STREAM_ARN'),
      region,
      checkpointFile: join(workDir, 'kinesis-checkpoints.json'),
      batchSize: usageStream.eventSource.batchSize,
      batchingWindowMs: usageStream.eventSource.maxBatchingWindowSeconds * 1000,
      handler: measured((event: { Records: Array<{ kinesis: { sequenceNumber: string; data: string } }> }) =>
        event.Records.map((r) => ({
          id: r.kinesis.sequenceNumber,
          body: Buffer.from(r.kinesis.data, 'base64').toString('utf8'),
        })),
      ),
      onError,
    });
    await poller.start();
    stopPoller = async () => {
      await poller.stop();
      kinesis.destroy();
    };
  }

  return {
    ready: {},
    handlers: {
      snapshot: (): ConsumerSnapshot => ({
        sdk: snapshotCounts(),
        invocations: s.invocations,
        records: s.records,
        failed: s.failed,
        durationMs: summarize(s.durationsMs),
        lagMs: summarize(s.lagMs),
      }),
      /** Forgets durations and lags so far (counts keep running; the parent subtracts snapshots). */
      resetSamples: () => {
        s.durationsMs = [];
        s.lagMs = [];
      },
    },
    cleanUp: async () => {
      await stopPoller();
      await rm(workDir, { recursive: true, force: true });
    },
  };
});
