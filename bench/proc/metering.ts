import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { SQSClient } from '@aws-sdk/client-sqs';
import { ENV } from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import {
  LEDGER_BACKSTOP_INTERVAL_SECONDS,
  LEDGER_QUEUE_BATCHING_WINDOW_SECONDS,
  usageQueue,
  usageStream,
} from '../../contracts/resources';
import { KinesisPoller } from '../../infra/local/pollers/kinesis-poller';
import { LOCAL_SQS_BATCHES_IN_FLIGHT, SqsPoller } from '../../infra/local/pollers/sqs-poller';
import { composeMetering, type Metering } from '../../services/metering/compose';
import { loadMeteringConfig, type MeteringConfig } from '../../services/metering/config';
import { discardMetrics } from '../../services/platform/metrics';
import { installPreviousCounterLayout } from '../layout/previous-layout';
import { serveParent } from '../lib/ipc';
import { installSdkCounter, snapshotCounts } from '../lib/sdk-counter';
import { summarize } from '../lib/stats';
import type { ConsumerSnapshot, LagSplit, Transport } from '../lib/types';

/**
 * Child process: the metering function and its event source mapping for one transport, as the local
 * stack runs them (composed by composeMetering from this process's environment, quiet, no metrics
 * written; fed by the local SQS or Kinesis poller with the stack's settings: batch size and batching
 * window from contracts/resources.ts, SQS batches in flight as infra/local/stack.ts; the SDK's
 * AWS_* variables point its clients at the stack), on the benchmark's own queue or stream so nothing else competes for the
 * records. One process per transport, so each one's requests are counted apart even when both run
 * at once. Every AWS SDK request (the handler's DynamoDB transactions, the poller's receives and
 * deletes) is counted at the client; each invocation is timed, and each counted event's lag is kept
 * twice: to visible (its batch written or, on the SQS ledger, committed: usage reads add committed
 * journals, services/usage/pending-usage.ts) and to in the counters (on the ledger, its journal
 * flushed).
 *
 * argv: <sqs|kinesis>
 * env: BENCH_QUEUE_URL and BENCH_QUEUE_ARN, or BENCH_STREAM_NAME and BENCH_STREAM_ARN; the stack's.
 * BENCH_COUNTER_LAYOUT=previous: counter writes without their hour ADDs (bench/layout/previous-layout.ts).
 */
interface TransportStats {
  invocations: number;
  records: number;
  failed: number;
  counted: number;
  duplicates: number;
  durationsMs: number[];
  /** Event time to visible in usage reads, per counted event. */
  lagMs: number[];
  /** When each lag sample's events became visible (epoch ms), index for index. */
  lagAt: number[];
  /** Event time to in the counters themselves: on the SQS ledger, to its journal flushed. */
  counterLagMs: number[];
  /**
   * SQS ledger: event times of committed journals no flush has applied yet, by journal number, and
   * the last journal the counters are known to hold. A batch's events reach the counters when a
   * flush applies its journal — in its own invocation, or a later one's (another batch, a
   * scheduled tail, the backstop) — so their counter lag runs until then.
   */
  unflushed: Map<number, number[]>;
  flushedThrough: number;
}

/** Counter lag samples for the ledger's journals the counters now hold (through `flushedThrough`). */
function settleFlushed(s: TransportStats, flushedThrough: number | undefined, now: number): void {
  if (flushedThrough === undefined || flushedThrough <= s.flushedThrough) return;
  s.flushedThrough = flushedThrough;
  for (const [journal, times] of s.unflushed) {
    if (journal > flushedThrough) continue;
    for (const ts of times) s.counterLagMs.push(now - ts);
    s.unflushed.delete(journal);
  }
}

const transport = process.argv[2] as Transport;
const region = process.env.AWS_REGION ?? 'us-east-1';

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

type Item = { id: string; body: string };
const BENCH_BACKSTOP_MS = 20_000;
type Measured = ReturnType<typeof measured>;
const onError = (error: unknown) =>
  process.stderr.write(`[bench metering] ${transport} batch failed: ${String(error)}\n`);

/**
 * The handler wrapped for a poller: each invocation timed, its outcome tallied, and each counted
 * event's lags (event time to visible, to in the counters) kept; `items` reads the records' ids and
 * bodies.
 */
function measured(handleBatch: Metering['handleBatch'], s: TransportStats) {
  return <E>(items: (event: E) => Item[]) =>
    async (event: E) => {
      const started = process.hrtime.bigint();
      const { response, outcome } = await handleBatch(event);
      const done = Date.now();
      s.durationsMs.push(Number(process.hrtime.bigint() - started) / 1e6);
      s.invocations++;
      s.counted += outcome.counted;
      s.duplicates += outcome.duplicates;
      const failed = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
      const journal = outcome.ledger?.journal;
      const waiting =
        journal !== undefined && journal > s.flushedThrough ? (s.unflushed.get(journal) ?? []) : undefined;
      for (const item of items(event)) {
        s.records++;
        if (failed.has(item.id)) {
          s.failed++;
          continue;
        }
        try {
          const ts = (JSON.parse(item.body) as { ts?: unknown }).ts;
          if (typeof ts !== 'number') continue;
          s.lagMs.push(done - ts);
          s.lagAt.push(done);
          if (waiting) waiting.push(ts);
          else s.counterLagMs.push(done - ts);
        } catch {
          // Not an event (a benchmark never sends one): the consumer dead-letters it.
        }
      }
      if (waiting && journal !== undefined) s.unflushed.set(journal, waiting);
      settleFlushed(s, outcome.ledger?.flushedThrough, done);
      return response;
    };
}

// The event source settings infra/local/stack.ts runs with (contracts/resources.ts).

/** The SQS poller on the benchmark's queue, with the batching window of `profile`'s. */
function startSqsPoller(
  measure: Measured,
  profile: MeteringConfig[typeof ENV.ledgerFlush],
): { poller: SqsPoller; stop(): Promise<void> } {
  const sqs = new SQSClient({});
  const poller = new SqsPoller({
    sqs,
    queueUrl: env('BENCH_QUEUE_URL'),
    queueArn: env('BENCH_QUEUE_ARN'),
    region,
    batchSize: usageQueue.eventSource.batchSize,
    batchingWindowMs: LEDGER_QUEUE_BATCHING_WINDOW_SECONDS[profile] * 1000,
    // As infra/local/stack.ts runs it; the Kinesis poller has one batch per shard at a time.
    concurrency: LOCAL_SQS_BATCHES_IN_FLIGHT,
    handler: measure((event: { Records: Array<{ messageId: string; body: string }> }) =>
      event.Records.map((r) => ({ id: r.messageId, body: r.body })),
    ),
    onError,
  });
  poller.start();
  return {
    poller,
    stop: async () => {
      await poller.stop();
      sqs.destroy();
    },
  };
}

/** The Kinesis poller on the benchmark's stream, checkpointing in `workDir`; answers how to stop it. */
async function startKinesisPoller(measure: Measured, workDir: string): Promise<() => Promise<void>> {
  const kinesis = new KinesisClient({});
  const poller = new KinesisPoller({
    kinesis,
    streamName: env('BENCH_STREAM_NAME'),
    streamArn: env('BENCH_STREAM_ARN'),
    region,
    checkpointFile: join(workDir, 'kinesis-checkpoints.json'),
    batchSize: usageStream.eventSource.batchSize,
    batchingWindowMs: usageStream.eventSource.maxBatchingWindowSeconds * 1000,
    handler: measure((event: { Records: Array<{ kinesis: { sequenceNumber: string; data: string } }> }) =>
      event.Records.map((r) => ({
        id: r.kinesis.sequenceNumber,
        body: Buffer.from(r.kinesis.data, 'base64').toString('utf8'),
      })),
    ),
    onError,
  });
  await poller.start();
  return async () => {
    await poller.stop();
    kinesis.destroy();
  };
}

/** What the parent asks of the consumer: its counts, its lags split at a moment, a reset. */
function handlersOver(s: TransportStats) {
  return {
    snapshot: (): ConsumerSnapshot => ({
      sdk: snapshotCounts(),
      invocations: s.invocations,
      records: s.records,
      failed: s.failed,
      durationMs: summarize(s.durationsMs),
      lagMs: summarize(s.lagMs),
      counterLagMs: summarize(s.counterLagMs),
      counted: s.counted,
      duplicates: s.duplicates,
    }),
    /** The lags since resetSamples of the events counted up to `splitAt` (epoch ms), and after. */
    lags: ({ splitAt }: { splitAt: number }): LagSplit => {
      const until: number[] = [];
      const after: number[] = [];
      s.lagMs.forEach((lag, i) => {
        ((s.lagAt[i] as number) <= splitAt ? until : after).push(lag);
      });
      return { until: summarize(until), after: summarize(after) };
    },
    /** Forgets durations and lags so far (counts keep running; the parent subtracts snapshots). */
    resetSamples: () => {
      s.durationsMs = [];
      s.lagMs = [];
      s.lagAt = [];
      s.counterLagMs = [];
      s.unflushed.clear();
    },
  };
}

serveParent(async () => {
  if (transport !== 'sqs' && transport !== 'kinesis') throw new Error(`unknown transport ${transport}`);
  installSdkCounter();
  // The layout bench's previous layout: the same handler, its counter writes without hours.
  if (process.env.BENCH_COUNTER_LAYOUT === 'previous') installPreviousCounterLayout();
  // Composed again when the parent asks for another ledger flush profile (useLedgerFlush): a new
  // container with that setting, on the same queue, its requests counted by the same counter.
  const compose = (config: MeteringConfig) =>
    composeMetering(config, {
      logger: new Logger({ serviceName: SERVICE_NAMES.metering, logLevel: 'WARN' }),
      metrics: discardMetrics,
    });
  const initial = loadMeteringConfig(process.env);
  let metering = compose(initial);
  const handleBatch: Metering['handleBatch'] = (event) => metering.handleBatch(event);
  // The ledger's backstop, as the local stack schedules it (EventBridge on AWS), but every 20 s:
  // under the bench's 30 s stall limit, so the economy profile's tail (held for the backstop when
  // traffic stops) drains within a check. Its drain time is this interval's, not AWS's minute.
  // The SQS consumer's only: the Kinesis one's would flush the SQS ledger's journals (one ledger on
  // the table) and its writes would be counted against Kinesis.
  const backstop = setInterval(
    () => {
      if (transport === 'sqs')
        metering
          .ledgerBackstop?.()
          .then((run) => settleFlushed(s, run.flushedThrough, Date.now()))
          .catch(onError);
    },
    Math.min(LEDGER_BACKSTOP_INTERVAL_SECONDS * 1000, BENCH_BACKSTOP_MS),
  );
  backstop.unref();
  const s: TransportStats = {
    invocations: 0,
    records: 0,
    failed: 0,
    counted: 0,
    duplicates: 0,
    durationsMs: [],
    lagMs: [],
    lagAt: [],
    counterLagMs: [],
    unflushed: new Map(),
    flushedThrough: 0,
  };
  const measure = measured(handleBatch, s);
  const workDir = await mkdtemp(join(tmpdir(), 'tollgate-bench-metering-'));
  const sqsPoller = transport === 'sqs' ? startSqsPoller(measure, initial[ENV.ledgerFlush]) : undefined;
  const stopPoller = sqsPoller?.stop ?? (await startKinesisPoller(measure, workDir));
  return {
    ready: {},
    handlers: {
      ...handlersOver(s),
      /** Metering with another TOLLGATE_LEDGER_FLUSH profile from the next batch on. */
      useLedgerFlush: ({ profile }: { profile: string }) => {
        const config = loadMeteringConfig({ ...process.env, [ENV.ledgerFlush]: profile });
        metering = compose(config);
        // The queue's batching window follows the profile, as infra/cdk sets the mapping's.
        sqsPoller?.poller.setBatchingWindowMs(
          LEDGER_QUEUE_BATCHING_WINDOW_SECONDS[config[ENV.ledgerFlush]] * 1000,
        );
      },
    },
    cleanUp: async () => {
      clearInterval(backstop);
      await stopPoller();
      await rm(workDir, { recursive: true, force: true });
    },
  };
});
