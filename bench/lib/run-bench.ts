import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateStreamCommand, DescribeStreamSummaryCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { ENV } from '../../contracts/config';
import { usageQueue, usageStream } from '../../contracts/resources';
import { utcDay } from '../../contracts/usage-event';
import { findFreePorts } from '../../infra/local/ports';
import { generateApiKey } from '../../services/accounts/api-key';
import { documentClient } from '../../services/platform/aws-clients';
import { UsageReader } from '../../services/usage/usage-reader';
import { createBaselineTable, seedBaselineUsers, totalBaselineCount } from '../baseline/table';
import { type IssuedKey, type Owner, UserApi } from './accounts';
import { type ExactTiming, type Scope, UsageLedger } from './exact';
import { type Child, startChild } from './ipc';
import { runLoad } from './load';
import { machineInfo } from './machine';
import type { PacedAnswer } from './paced-publisher';
import { type Counts, diffCounts, sumCounts } from './sdk-counter';
import { median, type Summary, summarize } from './stats';
import {
  type BenchResults,
  type BenchSettings,
  type ConsumerSnapshot,
  type CpuResults,
  type ExactCheck,
  type FreshnessResult,
  type HttpTargetResult,
  type LagSplit,
  type LoadResult,
  type PacedRun,
  type PublishCheck,
  type ServerSnapshot,
  type StackInfo,
  type SustainedRun,
  TARGETS,
  type Target,
  TRANSPORTS,
  type Transport,
  type TransportExact,
  type WriteRun,
} from './types';
import { runWrk } from './wrk';

export const PROFILES = {
  /** `npm run bench`. */
  full: {
    profile: 'full',
    keys: 100,
    accounts: 10,
    zipfS: 1,
    connections: 16,
    durationSec: 6,
    warmupSec: 2,
    rounds: 3,
    sequentialRequests: 200,
    writeEvents: 20_000,
    baselineWriteEvents: 2_000,
    freshnessSamples: 20,
    pollIntervalMs: 20,
    cpuRoundMs: 300,
    cpuMinIterations: 10_000,
    cpuRounds: 7,
    // 32 connections, as issue 12 asks: wrk is closed-loop, so this is as fast as the local key API
    // answers with 32 requests in flight (more connections add queueing, not throughput, on 2 cores).
    sustained: {
      durationSec: 60,
      connections: 32,
      threads: 2,
      keys: 24,
      accounts: 3,
      bogusKeys: 4,
      bogusShare: 0.05,
      timeoutSec: 30,
    },
    paced: {
      keys: 100,
      accounts: 10,
      zipfS: 1,
      runs: [
        { rate: 10, durationSec: 20 },
        { rate: 100, durationSec: 20 },
        { rate: 1_000, durationSec: 20 },
      ],
    },
    publishCheckSec: 15,
  },
  /** CI's smoke test: does every part run, and is every count exact. No timing means anything. */
  smoke: {
    profile: 'smoke',
    keys: 20,
    accounts: 2,
    zipfS: 1,
    connections: 4,
    durationSec: 2,
    warmupSec: 1,
    rounds: 1,
    sequentialRequests: 20,
    writeEvents: 2_000,
    baselineWriteEvents: 500,
    freshnessSamples: 3,
    pollIntervalMs: 20,
    cpuRoundMs: 10,
    cpuMinIterations: 1_000,
    cpuRounds: 2,
    sustained: {
      durationSec: 5,
      connections: 32,
      threads: 2,
      keys: 24,
      accounts: 3,
      bogusKeys: 4,
      bogusShare: 0.05,
      timeoutSec: 30,
    },
    paced: {
      keys: 100,
      accounts: 10,
      zipfS: 1,
      runs: [
        { rate: 10, durationSec: 2 },
        { rate: 100, durationSec: 2 },
        { rate: 1_000, durationSec: 3 },
      ],
    },
    publishCheckSec: 2,
  },
} as const satisfies Record<string, BenchSettings>;

export interface RunBenchOptions {
  readonly settings: BenchSettings;
  /** A running local stack to use, or undefined to start one (in a child process) after the CPU part. */
  readonly stack?: StackInfo;
  readonly log?: (line: string) => void;
}

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const SCRIPTS = {
  stack: here('../proc/stack.ts'),
  server: here('../proc/server.ts'),
  metering: here('../proc/metering.ts'),
  producer: here('../proc/producer.ts'),
  cpu: here('../proc/cpu.ts'),
};
const CHILD_ENV = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
/** A pipeline that counted nothing new for this long while behind is stuck: the check fails. */
const STALL_TIMEOUT_MS = 30_000;
const SETTLE_TIMEOUT_MS = 900_000;
const HOLD_MS = 1_500;
const EXACT_TIMING: ExactTiming = {
  stallMs: STALL_TIMEOUT_MS,
  settleTimeoutMs: SETTLE_TIMEOUT_MS,
  holdMs: HOLD_MS,
  pollMs: 250,
};
/** How often the drain after a sustained or paced load is sampled. */
const DRAIN_POLL_MS = 100;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs every benchmark in one process tree and returns the results (bench/run.ts prints and saves
 * them). Each part gets a process of its own: the CPU measurement (first, alone), the local stack,
 * key-api with SQS, key-api with Kinesis, the baseline, and a metering consumer per transport; the
 * load comes from this process.
 */
export async function runBench(options: RunBenchOptions): Promise<BenchResults> {
  const settings = options.settings;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const started = Date.now();
  const machine = machineInfo();
  const children: Array<Child<unknown>> = [];
  const cleanups: Array<() => Promise<void> | void> = [];
  const stopAll = async () => {
    for (const child of children.splice(0).reverse()) await child.stop().catch(() => {});
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  };

  try {
    // --- CPU per check, first: nothing else of the benchmark runs yet ---------------------
    log(`cpu: ${settings.cpuRounds} rounds of ${settings.cpuRoundMs} ms per row`);
    const cpuChild = await startChild<unknown>(SCRIPTS.cpu, {
      args: [String(settings.cpuRoundMs), String(settings.cpuRounds), String(settings.cpuMinIterations)],
      env: CHILD_ENV,
    });
    children.push(cpuChild);
    const cpu = await cpuChild.call<CpuResults>('run');
    await cpuChild.stop();
    children.splice(children.indexOf(cpuChild), 1);

    // --- the local stack -------------------------------------------------------------------
    let stack = options.stack;
    if (!stack) {
      log('stack: starting the local stack (temp data dir, free ports)');
      const stackChild = await startChild<StackInfo>(SCRIPTS.stack, { env: CHILD_ENV });
      children.push(stackChild);
      stack = stackChild.ready;
    }
    const bench = await setUp(stack, settings, log, children, cleanups);
    const exactChecks: ExactCheck[] = [];
    const check = async (phase: string) => {
      const result = await bench.waitExact(phase);
      exactChecks.push(result);
      const part = (t: Transport) => {
        const e = result.transports[t];
        return e
          ? `${t} ${e.counted}/${e.answered}${e.ok ? '' : ` MISMATCH (${e.mismatches.join('; ')})`}`
          : '';
      };
      log(
        `  exact (${phase}): ${TRANSPORTS.map(part).join(', ')}, baseline ${result.baseline?.counted}/${result.baseline?.answered}${result.ok ? '' : '  <-- MISMATCH'}`,
      );
      return result;
    };

    // --- key checks over HTTP: throughput and latency ----------------------------------------
    for (const target of TARGETS) {
      await bench.warm(target);
      log(`warm-up ${target}: ${settings.warmupSec} s`);
      await bench.load(target, { durationSec: settings.warmupSec });
    }
    await check('warm-up');

    const sequential = {} as Record<Target, HttpTargetResult['sequential']>;
    for (const target of TARGETS) {
      log(`sequential ${target}: ${settings.sequentialRequests} requests, 1 connection`);
      await bench.server(target).call('startDurations');
      const load = await bench.load(target, { amount: settings.sequentialRequests, connections: 1 });
      const handlerMs = await bench
        .server(target)
        .call<HttpTargetResult['sequential']['handlerMs']>('stopDurations');
      sequential[target] = { latencyMs: load.latencyMs, handlerMs };
    }
    await check('sequential');

    const runs: Record<Target, LoadResult[]> = { baseline: [], sqs: [], kinesis: [] };
    for (let round = 0; round < settings.rounds; round++) {
      // Rotate the order (ABC, BCA, CAB, ...), so no target always runs in the same slot.
      const order = TARGETS.map((_, i) => TARGETS[(i + round) % TARGETS.length] as Target);
      for (const target of order) {
        const load = await bench.load(target, { durationSec: settings.durationSec });
        runs[target].push(withoutPerKey(load));
        log(
          `throughput ${target} (round ${round + 1}): ${load.reqPerSec.toFixed(0)} req/s, p50 ${load.latencyMs.p50.toFixed(2)} ms, p99 ${load.latencyMs.p99.toFixed(2)} ms, non-200 ${load.requests - load.ok200}`,
        );
        await check(`throughput ${target} round ${round + 1}`);
      }
    }
    const http = {} as Record<Target, HttpTargetResult>;
    const medianOf = (target: Target, pick: (l: LoadResult) => number) => median(runs[target].map(pick));
    for (const target of TARGETS) {
      const reqPerSec = medianOf(target, (l) => l.reqPerSec);
      const p50Ms = medianOf(target, (l) => l.latencyMs.p50);
      const p99Ms = medianOf(target, (l) => l.latencyMs.p99);
      http[target] = {
        runs: runs[target],
        reqPerSec,
        p50Ms,
        p99Ms,
        ratioToBaseline: {
          reqPerSec: reqPerSec / medianOf('baseline', (l) => l.reqPerSec),
          p50: p50Ms / medianOf('baseline', (l) => l.latencyMs.p50),
          p99: p99Ms / medianOf('baseline', (l) => l.latencyMs.p99),
        },
        sequential: sequential[target],
      };
    }

    // --- write amplification -----------------------------------------------------------------
    // The baseline alone, then both Tollgate pipelines at once: they share no queue, stream, key
    // API or consumer process (only DynamoDB Local), and the consumers, not the load, set the pace.
    log(`writes baseline: ${eventsFor(settings, 'baseline')} requests over ${settings.keys} keys`);
    const baselineWrites = await bench.baselineWriteRun(check);
    log(
      `writes sqs + kinesis at once: ${settings.writeEvents} requests each over ${settings.keys} keys (Zipf ${settings.zipfS})`,
    );
    const writes: Record<Target, WriteRun> = {
      baseline: baselineWrites,
      ...(await bench.tollgateWriteRuns(check)),
    };
    for (const target of TARGETS) {
      const w = writes[target];
      log(
        `  ${target}: ${w.events} events, ${w.perEvent.writeRequests.toFixed(3)} write requests and ${w.perEvent.writeUnits.toFixed(2)} write units per event`,
      );
    }

    // --- freshness -----------------------------------------------------------------------------
    log(`freshness: ${settings.freshnessSamples} samples per transport, both at once`);
    const [sqsFreshness, kinesisFreshness] = await Promise.all(TRANSPORTS.map((t) => bench.freshness(t)));
    const freshness = { sqs: sqsFreshness, kinesis: kinesisFreshness } as Record<Transport, FreshnessResult>;
    for (const transport of TRANSPORTS) {
      log(
        `  ${transport}: p50 ${freshness[transport].visibleMs.p50.toFixed(0)} ms, p95 ${freshness[transport].visibleMs.p95.toFixed(0)} ms`,
      );
    }
    await check('freshness');

    // --- sustained load, one transport after the other; the publish path check after Kinesis ----
    const ss = settings.sustained;
    const sustained = {} as Record<Transport, SustainedRun>;
    let publishCheck: PublishCheck | undefined;
    for (const transport of TRANSPORTS) {
      log(
        `sustained ${transport}: wrk ${ss.durationSec} s, ${ss.connections} connections, ${ss.keys} keys in ${ss.accounts} accounts, ${Math.round(ss.bogusShare * 100)}% bogus keys`,
      );
      const run = await bench.sustained(transport);
      sustained[transport] = run;
      log(
        `  ${transport}: ${run.acceptedPerSec.toFixed(0)} accepted/s (${run.reqPerSec.toFixed(0)} req/s), lag p50/p95 during ${run.lagDuringMs.p50.toFixed(0)}/${run.lagDuringMs.p95.toFixed(0)} ms, backlog at end ${run.backlogAtEnd}, drained in ${run.drainMs.toFixed(0)} ms, exact ${run.exact.ok ? 'yes' : `NO (${run.exact.mismatches.join('; ')})`}`,
      );
      if (transport === 'kinesis') {
        log(`publish check: bare PutRecord, ${ss.connections} in flight, ${settings.publishCheckSec} s`);
        publishCheck = await bench.publishCheck(run);
        log(
          `  bare PutRecord ${publishCheck.bare.reqPerSec.toFixed(0)}/s against key-api ${publishCheck.keyApi.acceptedPerSec.toFixed(0)}/s (${publishCheck.ratio.toFixed(2)}×)`,
        );
      }
    }
    await check('sustained');

    // --- events straight to each transport at steady rates ----------------------------------------
    const paced: Record<Transport, PacedRun[]> = { sqs: [], kinesis: [] };
    for (const transport of TRANSPORTS) {
      for (const { rate, durationSec } of settings.paced.runs) {
        log(
          `paced ${transport}: ${rate} events/s for ${durationSec} s over ${settings.paced.keys} keys (Zipf ${settings.paced.zipfS})`,
        );
        const run = await bench.paced(transport, rate, durationSec);
        paced[transport].push(run);
        log(
          `  ${transport} @ ${rate}/s: ${run.achievedPerSec.toFixed(0)} events/s, ${run.perEvent.writeUnits.toFixed(3)} write units and ${run.perEvent.writeRequests.toFixed(3)} write requests per event, batches of ${run.metering.avgBatch.toFixed(1)}, exact ${run.exact.ok ? 'yes' : `NO (${run.exact.mismatches.join('; ')})`}`,
        );
      }
    }
    await check('paced');
    if (!publishCheck) throw new Error('the publish check did not run');

    const exactByTransport = Object.fromEntries(
      TRANSPORTS.map((t) => [
        t,
        exactChecks.every((c) => c.transports[t]?.ok === true) &&
          sustained[t].exact.ok &&
          paced[t].every((p) => p.exact.ok),
      ]),
    ) as Record<Transport, boolean>;
    const finished = Date.now();
    return {
      version: 2,
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date(finished).toISOString(),
      durationSec: Math.round((finished - started) / 100) / 10,
      machine,
      settings,
      cpu,
      http,
      writes,
      freshness,
      sustained,
      paced,
      publishCheck,
      exactChecks,
      exact: exactChecks.every((c) => c.ok) && TRANSPORTS.every((t) => exactByTransport[t]),
      exactByTransport,
      loadAverageAtEnd: loadavg().map((l) => Math.round(l * 100) / 100),
    };
  } finally {
    await stopAll();
  }
}

/** Requests of a write run: the baseline's counts per request do not depend on the volume. */
export function eventsFor(settings: BenchSettings, target: Target): number {
  return target === 'baseline' ? settings.baselineWriteEvents : settings.writeEvents;
}

function pick(counts: Counts, prefix: string): Counts {
  return Object.fromEntries(Object.entries(counts).filter(([key]) => key.startsWith(prefix)));
}

/** DynamoDB figures of a set of requests (sdk-counter keys), as AWS bills them. */
function dynamoFigures(dynamodb: Counts) {
  const n = (key: string) => dynamodb[key] ?? 0;
  const otherWrites = ['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem'];
  const otherWriteUnits = otherWrites.reduce((sum, op) => sum + n(`DynamoDB.${op}.capacityUnits`), 0);
  const readOps = ['GetItem', 'Query', 'BatchGetItem', 'Scan'];
  return {
    writeRequests:
      n('DynamoDB.TransactWriteItems') + otherWrites.reduce((sum, op) => sum + n(`DynamoDB.${op}`), 0),
    // AWS bills 2 units per transactional item (all of them are under 1 KB); the rest as DynamoDB reports.
    writeUnits: 2 * n('DynamoDB.TransactWriteItems.items') + otherWriteUnits,
    engineWriteUnits: n('DynamoDB.TransactWriteItems.capacityUnits') + otherWriteUnits,
    readRequests: readOps.reduce((sum, op) => sum + n(`DynamoDB.${op}`), 0),
    readUnits: readOps.reduce((sum, op) => sum + n(`DynamoDB.${op}.capacityUnits`), 0),
  };
}

/**
 * What a metering consumer's own SQS requests bill: receives that returned messages, deletes, and
 * dead-letter sends. Empty receives are left out: the local poller short-polls an empty queue every
 * 50 ms, where Lambda's pollers long-poll (a few requests a minute per poller, whatever the traffic).
 */
function consumerSqsBilled(transport: Counts): number {
  const n = (key: string) => transport[key] ?? 0;
  return (
    n('SQS.ReceiveMessage') -
    n('SQS.ReceiveMessage.empty') +
    n('SQS.DeleteMessageBatch') +
    n('SQS.SendMessage.billedRequests') +
    n('SQS.SendMessageBatch.billedRequests')
  );
}

/** Per-request figures of one write run, from the requests its processes sent (sdk-counter keys). */
function writeRunOf(
  target: Target,
  load: LoadResult,
  exact: ExactCheck,
  perKeyExact: boolean | null,
  dynamodb: Counts,
  transport: Counts,
  consumer?: { invocations: number; records: number; durationMs: Summary; lagMs: Summary },
): WriteRun {
  const n = (key: string, counts: Counts = dynamodb) => counts[key] ?? 0;
  const events = load.ok200;
  const per = (value: number) => (events > 0 ? value / events : 0);
  const d = dynamoFigures(dynamodb);
  const transportRequests =
    target === 'sqs'
      ? n('SQS.SendMessage.billedRequests', transport) +
        n('SQS.ReceiveMessage', transport) +
        n('SQS.DeleteMessageBatch', transport) +
        n('SQS.SendMessageBatch', transport)
      : 0;
  const marks = n('DynamoDB.TransactWriteItems.Put');
  return {
    target,
    events,
    durationSec: load.durationSec,
    reqPerSec: load.reqPerSec,
    dynamodb,
    transport,
    perEvent: {
      writeRequests: per(d.writeRequests),
      writeUnits: per(d.writeUnits),
      engineWriteUnits: per(d.engineWriteUnits),
      readRequests: per(d.readRequests),
      readUnits: per(d.readUnits),
      transportRequests: per(transportRequests),
      payloadUnits: per(target === 'kinesis' ? n('Kinesis.PutRecord.payloadUnits', transport) : 0),
      meteringInvocations: per(consumer?.invocations ?? 0),
    },
    ...(consumer
      ? {
          metering: {
            invocations: consumer.invocations,
            records: consumer.records,
            avgBatch: consumer.invocations > 0 ? consumer.records / consumer.invocations : 0,
            durationMs: consumer.durationMs,
            lagMs: consumer.lagMs,
            markItemBytes: marks > 0 ? n('DynamoDB.TransactWriteItems.Put.bytes') / marks : 0,
          },
        }
      : {}),
    exact,
    perKeyExact,
  };
}

function withoutPerKey(load: LoadResult): LoadResult {
  const { perKey200: _dropped, ...rest } = load;
  return rest;
}

interface Bench {
  server(target: Target): Child<{ endpoint: string }>;
  warm(target: Target): Promise<void>;
  load(
    target: Target,
    run: { durationSec?: number; amount?: number; connections?: number },
  ): Promise<LoadResult>;
  waitExact(phase: string): Promise<ExactCheck>;
  baselineWriteRun(check: (phase: string) => Promise<ExactCheck>): Promise<WriteRun>;
  tollgateWriteRuns(check: (phase: string) => Promise<ExactCheck>): Promise<Record<Transport, WriteRun>>;
  freshness(transport: Transport): Promise<FreshnessResult>;
  sustained(transport: Transport): Promise<SustainedRun>;
  publishCheck(kinesisRun: SustainedRun): Promise<PublishCheck>;
  paced(transport: Transport, rate: number, durationSec: number): Promise<PacedRun>;
}

/** A key issued through the user API, with its account. */
interface BenchKey extends IssuedKey {
  readonly accountId: string;
}

/**
 * One transport's accounts and keys; no other transport's load ever touches them, so each
 * transport's exactness is checked alone. `http` serves the key-check, write and freshness phases
 * (key i in account i % accounts; the probe key of the freshness phase is in the first account but
 * never drawn by a load), `sustained` the wrk phase.
 */
interface TransportSide {
  readonly transport: Transport;
  readonly httpOwners: ReadonlyArray<{ readonly owner: Owner; readonly accountId: string }>;
  readonly httpKeys: readonly BenchKey[];
  readonly probeKey: BenchKey;
  readonly sustainedAccounts: readonly string[];
  readonly sustainedKeys: readonly BenchKey[];
  /** Every key of this transport and its account. */
  readonly keyAccount: ReadonlyMap<string, string>;
  readonly accounts: readonly string[];
}

async function setUp(
  stack: StackInfo,
  settings: BenchSettings,
  log: (line: string) => void,
  children: Array<Child<unknown>>,
  cleanups: Array<() => Promise<void> | void>,
): Promise<Bench> {
  const { endpoints } = stack;
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  const region = endpoints.region;
  const dynamo = new DynamoDBClient({ region, endpoint: endpoints.dynamodb, credentials });
  const sqs = new SQSClient({ region, endpoint: endpoints.sqs, credentials });
  const kinesis = new KinesisClient({ region, endpoint: endpoints.kinesis, credentials });
  const documents = documentClient({ region, credentials, endpoints: { dynamodb: endpoints.dynamodb } });
  const users = new UserApi(stack);
  cleanups.push(() => {
    for (const client of [dynamo, sqs, kinesis, documents]) client.destroy();
    users.close();
  });
  const run = `${Date.now().toString(36)}${process.pid.toString(36)}`;
  const firstDay = utcDay(Date.now());
  const usageTable = stack.env[ENV.usageTable];
  if (!usageTable) throw new Error(`the stack gave no ${ENV.usageTable}`);
  const keyPrefix = stack.env[ENV.keyPrefix] ?? 'tg';
  const keysTable = stack.env[ENV.keysTable];
  if (!keysTable) throw new Error(`the stack gave no ${ENV.keysTable}`);
  /**
   * Key records for the paced phase's made-up keys: metering counts only events whose key its
   * account holds (its provenance check), as a real producer guarantees. Written with the
   * orchestrator's client, so the metering process's request counts do not include them.
   */
  const writeKeyRecords = async (keys: ReadonlyArray<{ keyId: string; accountId: string }>) => {
    const createdAt = new Date().toISOString();
    for (let i = 0; i < keys.length; i += 25) {
      let items: Record<string, unknown>[] = keys
        .slice(i, i + 25)
        .map((k) => ({ PutRequest: { Item: { ...k, name: 'bench', status: 'active', createdAt } } }));
      while (items.length > 0) {
        const answer = await documents.send(new BatchWriteCommand({ RequestItems: { [keysTable]: items } }));
        items = (answer.UnprocessedItems?.[keysTable] ?? []) as Record<string, unknown>[];
      }
    }
  };
  const ledger = new UsageLedger({
    reader: new UsageReader({ client: documents, table: usageTable }),
    firstDay,
  });

  // The benchmark's own queue and stream, set up like the stack's (contracts/resources.ts), so that only
  // the benchmark's metering consumer reads them. Refused records go to the stack's dead-letter queue.
  log('setup: queue, streams, baseline table, accounts and keys');
  const dlqUrl = stack.env.TOLLGATE_USAGE_DLQ_URL as string;
  const dlqArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes?.QueueArn as string;
  const queueUrl = (
    await sqs.send(
      new CreateQueueCommand({
        QueueName: `tollgate-bench-${run}-usage`,
        Attributes: {
          VisibilityTimeout: String(usageQueue.visibilityTimeoutSeconds),
          MessageRetentionPeriod: String(usageQueue.retentionSeconds),
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: dlqArn,
            maxReceiveCount: usageQueue.maxReceiveCount,
          }),
        },
      }),
    )
  ).QueueUrl as string;
  const queueArn = (
    await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))
  ).Attributes?.QueueArn as string;
  const createStream = async (name: string) => {
    await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: usageStream.shardCount }));
    for (let attempt = 0; attempt < 200; attempt++) {
      const summary = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }));
      if (summary.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') {
        return summary.StreamDescriptionSummary.StreamARN ?? '';
      }
      await sleep(100);
    }
    throw new Error(`${name} did not become ACTIVE`);
  };
  const streamName = `tollgate-bench-${run}-usage-stream`;
  // The publish check's stream: shaped like the usage stream, read by no one (so its records are
  // counted nowhere).
  const checkStreamName = `tollgate-bench-${run}-publish-check`;
  const [streamArn] = await Promise.all([createStream(streamName), createStream(checkStreamName)]);

  const baselineTable = `tollgate-bench-${run}-baseline-users`;
  await createBaselineTable(dynamo, baselineTable);
  const baselineUsers = await seedBaselineUsers(dynamo, baselineTable, settings.keys);

  // Owners (signed up like people, five at a time) and their keys: key i in owner i % owners.
  const signUpOwners = async (label: string, count: number) => {
    const out: Array<{ owner: Owner; accountId: string }> = [];
    for (let i = 0; i < count; i += 5) {
      const batch = Array.from({ length: Math.min(5, count - i) }, async (_, n) => {
        const owner = await users.signUp(`${label}${i + n}`);
        return { owner, accountId: await users.accountId(owner) };
      });
      out.push(...(await Promise.all(batch)));
    }
    return out;
  };
  const issueKeys = async (
    owners: ReadonlyArray<{ owner: Owner; accountId: string }>,
    count: number,
    label: string,
  ) => {
    const keys: BenchKey[] = new Array(count);
    await Promise.all(
      owners.map(async ({ owner, accountId }, o) => {
        for (let i = o; i < count; i += owners.length) {
          keys[i] = { ...(await users.createKey(owner, `${label}-${i}`)), accountId };
        }
      }),
    );
    return keys;
  };
  const sides = {} as Record<Transport, TransportSide>;
  for (const transport of TRANSPORTS) {
    const httpOwners = await signUpOwners(`${transport}-owner`, settings.accounts);
    const sustainedOwners = await signUpOwners(`${transport}-sustained`, settings.sustained.accounts);
    const [httpKeys, sustainedKeys] = await Promise.all([
      issueKeys(httpOwners, settings.keys, `bench-${transport}`),
      issueKeys(sustainedOwners, settings.sustained.keys, `sustained-${transport}`),
    ]);
    const first = httpOwners[0] as { owner: Owner; accountId: string };
    const probeKey = {
      ...(await users.createKey(first.owner, `probe-${transport}`)),
      accountId: first.accountId,
    };
    const all = [...httpKeys, probeKey, ...sustainedKeys];
    sides[transport] = {
      transport,
      httpOwners,
      httpKeys,
      probeKey,
      sustainedAccounts: sustainedOwners.map((o) => o.accountId),
      sustainedKeys,
      keyAccount: new Map(all.map((k) => [k.id, k.accountId])),
      accounts: [...httpOwners, ...sustainedOwners].map((o) => o.accountId),
    };
  }

  // --- the parts under test ------------------------------------------------------------------
  // Each child composes its handler from the stack's settings; its SDK clients find the stack's
  // engines through the AWS_* variables.
  const childEnv = { ...stack.env, ...stack.awsEnv, ...CHILD_ENV };
  const ports = await findFreePorts();
  const [sqsMetering, kinesisMetering, sqsServer, kinesisServer, baselineServer, producer] =
    await Promise.all([
      startChild<unknown>(SCRIPTS.metering, {
        args: ['sqs'],
        env: { ...childEnv, TOLLGATE_TRANSPORT: 'sqs', BENCH_QUEUE_URL: queueUrl, BENCH_QUEUE_ARN: queueArn },
      }),
      startChild<unknown>(SCRIPTS.metering, {
        args: ['kinesis'],
        env: {
          ...childEnv,
          TOLLGATE_TRANSPORT: 'kinesis',
          BENCH_STREAM_NAME: streamName,
          BENCH_STREAM_ARN: streamArn,
        },
      }),
      startChild<{ endpoint: string }>(SCRIPTS.server, {
        args: ['tollgate', String(ports.keyApi)],
        env: { ...childEnv, TOLLGATE_TRANSPORT: 'sqs', TOLLGATE_USAGE_QUEUE_URL: queueUrl },
      }),
      startChild<{ endpoint: string }>(SCRIPTS.server, {
        args: ['tollgate', String(ports.userApi)],
        env: {
          ...childEnv,
          TOLLGATE_TRANSPORT: 'kinesis',
          TOLLGATE_USAGE_STREAM_NAME: streamName,
        },
      }),
      startChild<{ endpoint: string }>(SCRIPTS.server, {
        args: ['baseline', String(ports.web)],
        env: { ...childEnv, BENCH_BASELINE_TABLE: baselineTable },
      }),
      startChild<unknown>(SCRIPTS.producer, { env: childEnv }),
    ]);
  children.push(sqsMetering, kinesisMetering, sqsServer, kinesisServer, baselineServer, producer);
  const metering: Record<Transport, Child<unknown>> = { sqs: sqsMetering, kinesis: kinesisMetering };
  const servers: Record<Target, Child<{ endpoint: string }>> = {
    baseline: baselineServer,
    sqs: sqsServer,
    kinesis: kinesisServer,
  };
  const keysOf = (target: Target) =>
    target === 'baseline' ? baselineUsers.map((u) => u.key) : sides[target].httpKeys.map((k) => k.key);

  const snapshot = (target: Target) => servers[target].call<ServerSnapshot>('snapshot');
  const consumerSnapshot = (transport: Transport) => metering[transport].call<ConsumerSnapshot>('snapshot');
  /** key-api's 200s by key, limited to `keys` if given (else every key it ever accepted). */
  const answeredBy = (snap: ServerSnapshot, keys?: ReadonlyMap<string, string>) =>
    new Map(Object.entries(snap.ok200ByKey).filter(([id]) => !keys || keys.has(id)));
  /** Everything one transport's key API accepted, against all of that transport's accounts. */
  const transportScope = (transport: Transport): Scope => ({
    transport,
    accounts: sides[transport].accounts,
    keyAccount: sides[transport].keyAccount,
    answered: async () => answeredBy(await snapshot(transport)),
    answeredTotal: async () => (await snapshot(transport)).statuses['200'] ?? 0,
  });
  /** The sustained phase's accounts and keys of one transport alone. */
  const sustainedScope = (transport: Transport): Scope => {
    const keyAccount = new Map(sides[transport].sustainedKeys.map((k) => [k.id, k.accountId]));
    return {
      transport,
      accounts: sides[transport].sustainedAccounts,
      keyAccount,
      answered: async () => answeredBy(await snapshot(transport), keyAccount),
    };
  };
  const sumOf = (values: Iterable<number>) => {
    let total = 0;
    for (const v of values) total += v;
    return total;
  };
  /**
   * Samples until counted == accepted, every DRAIN_POLL_MS from `from`; gives the time from `from`
   * to the first sample that matched, or NaN if counting stalled first.
   */
  const drain = async (from: number, accepted: () => Promise<number>, counted: () => Promise<number>) => {
    let progressAt = Date.now();
    let last = -1;
    for (;;) {
      const [a, c] = await Promise.all([accepted(), counted()]);
      if (a === c) return Date.now() - from;
      if (c !== last) {
        last = c;
        progressAt = Date.now();
      } else if (Date.now() - progressAt > STALL_TIMEOUT_MS) return Number.NaN;
      await sleep(DRAIN_POLL_MS);
    }
  };
  const post = async (url: string, key: string) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key }),
    });
    await response.arrayBuffer();
    return response.status;
  };

  const bench: Bench = {
    server: (target) => servers[target],

    // Every key once, one at a time: key-api's cache and the JIT see each key before any timing.
    async warm(target) {
      const url = servers[target].ready.endpoint;
      for (const key of keysOf(target)) {
        const status = await post(url, key);
        if (status !== 200) throw new Error(`${target} answered ${status} to a warm-up`);
      }
    },

    load(target, spec) {
      return runLoad({
        url: servers[target].ready.endpoint,
        keys: keysOf(target),
        zipfS: settings.zipfS,
        seed: 42,
        connections: spec.connections ?? settings.connections,
        ...(spec.amount
          ? { amount: spec.amount }
          : { durationSec: spec.durationSec ?? settings.durationSec }),
      });
    },

    /**
     * "Every 200 is counted once", for each transport alone (its key API's 200s by key against its
     * own accounts' counters, per key, per account and in total, once its pipeline has drained;
     * then held a moment to catch a late double count), both transports at once; and the baseline,
     * which counts synchronously: its table's Count total against its 200s.
     */
    async waitExact(phase) {
      const begun = Date.now();
      const [sqsExact, kinesisExact] = await Promise.all(
        TRANSPORTS.map((t) => ledger.check(transportScope(t), EXACT_TIMING)),
      );
      const baselineAnswered = (await snapshot('baseline')).statuses['200'] ?? 0;
      const baselineCounted = await totalBaselineCount(dynamo, baselineTable);
      const transports = { sqs: sqsExact, kinesis: kinesisExact } as Record<Transport, TransportExact>;
      const baselineOk = baselineCounted === baselineAnswered;
      return {
        phase,
        answered200: sumOf(TRANSPORTS.map((t) => transports[t].answered)) + baselineAnswered,
        counted: sumOf(TRANSPORTS.map((t) => transports[t].counted)) + baselineCounted,
        ok: TRANSPORTS.every((t) => transports[t].ok) && baselineOk,
        settledMs: Math.max(...TRANSPORTS.map((t) => transports[t].settledMs), Date.now() - begun - HOLD_MS),
        transports,
        baseline: { answered: baselineAnswered, counted: baselineCounted, ok: baselineOk },
      };
    },

    async baselineWriteRun(check) {
      const before = await snapshot('baseline');
      const load = await bench.load('baseline', { amount: eventsFor(settings, 'baseline') });
      const exact = await check('writes baseline');
      const producerCounts = diffCounts((await snapshot('baseline')).sdk, before.sdk);
      return writeRunOf('baseline', load, exact, null, pick(producerCounts, 'DynamoDB.'), {});
    },

    async tollgateWriteRuns(check) {
      const before = await Promise.all(
        TRANSPORTS.map(async (t) => ({ server: await snapshot(t), consumer: await consumerSnapshot(t) })),
      );
      await Promise.all(TRANSPORTS.map((t) => metering[t].call('resetSamples')));
      const loads = await Promise.all(TRANSPORTS.map((t) => bench.load(t, { amount: settings.writeEvents })));
      const exact = await check('writes sqs + kinesis');
      const runs = {} as Record<Transport, WriteRun>;
      for (const [i, t] of TRANSPORTS.entries()) {
        const load = loads[i] as LoadResult;
        const was = before[i] as { server: ServerSnapshot; consumer: ConsumerSnapshot };
        const consumer = await consumerSnapshot(t);
        const producerCounts = diffCounts((await snapshot(t)).sdk, was.server.sdk);
        const consumerCounts = diffCounts(consumer.sdk, was.consumer.sdk);
        const service = t === 'kinesis' ? 'Kinesis.' : 'SQS.';
        const own = exact.transports[t];
        runs[t] = writeRunOf(
          t,
          load,
          exact,
          // Each transport's own keys and accounts: every one moved by exactly its 200s.
          own !== undefined && own.keysWrong === 0 && own.accountsWrong === 0,
          sumCounts(pick(producerCounts, 'DynamoDB.'), pick(consumerCounts, 'DynamoDB.')),
          sumCounts(pick(producerCounts, service), pick(consumerCounts, service)),
          {
            invocations: consumer.invocations - was.consumer.invocations,
            records: consumer.records - was.consumer.records,
            durationMs: consumer.durationMs,
            lagMs: consumer.lagMs,
          },
        );
      }
      return runs;
    },

    /**
     * One request at a time on the probe key: from its 200 to GET /usage (strongly consistent, as
     * the user API reads) showing it, polled every pollIntervalMs.
     */
    async freshness(transport) {
      const url = servers[transport].ready.endpoint;
      const { probeKey } = sides[transport];
      const probeOwner = (sides[transport].httpOwners[0] as { owner: Owner }).owner;
      let expected = await users.usageTotal(probeOwner, firstDay, probeKey.id);
      const samples: number[] = [];
      for (let i = 0; i < settings.freshnessSamples; i++) {
        const status = await post(url, probeKey.key);
        const answered = performance.now();
        if (status !== 200) throw new Error(`freshness probe answered ${status}`);
        expected++;
        for (;;) {
          const total = await users.usageTotal(probeOwner, firstDay, probeKey.id);
          if (total >= expected) break;
          if (performance.now() - answered > STALL_TIMEOUT_MS) throw new Error('probe was never counted');
          await sleep(settings.pollIntervalMs);
        }
        samples.push(performance.now() - answered);
        // A pause of varying length, so probes do not line up with the pollers' rhythm.
        await sleep(50 + ((i * 37) % 150));
      }
      return {
        transport,
        samples: samples.length,
        pollIntervalMs: settings.pollIntervalMs,
        visibleMs: summarize(samples),
      };
    },

    /**
     * wrk against one key API for the phase's length; then the backlog the moment it ended
     * (key-api's 200s − counters), the time until it drained, the lags counted during and after the
     * load, and the phase's keys and accounts checked alone.
     */
    async sustained(transport) {
      const s = settings.sustained;
      const side = sides[transport];
      const scope = sustainedScope(transport);
      const url = servers[transport].ready.endpoint;
      // Each key once (cache and JIT warm, as in the other phases), and those counted first.
      for (const key of side.sustainedKeys) {
        const status = await post(url, key.key);
        if (status !== 200) throw new Error(`${transport} answered ${status} to a warm-up`);
      }
      const warmed = await ledger.check(scope, { ...EXACT_TIMING, holdMs: 0 });
      if (!warmed.ok) throw new Error(`sustained ${transport}: warm-up not counted exactly`);
      // Well formed (prefix, length, checksum) and unknown: past the checksum, to the index, 401.
      const bogusKeys = Array.from({ length: s.bogusKeys }, () => generateApiKey(keyPrefix).key);

      const accepted = (snap: ServerSnapshot) => sumOf(answeredBy(snap, scope.keyAccount).values());
      const counted = () => ledger.total(side.sustainedAccounts);
      const before = await snapshot(transport);
      const consumerBefore = await consumerSnapshot(transport);
      const acceptedBefore = accepted(before);
      const countedBefore = await counted();
      await metering[transport].call('resetSamples');

      const { result: wrk, endedAt } = await runWrk({
        url,
        keys: side.sustainedKeys.map((k) => k.key),
        bogusKeys,
        bogusShare: s.bogusShare,
        connections: s.connections,
        threads: s.threads,
        durationSec: s.durationSec,
        timeoutSec: s.timeoutSec,
      });
      const [atEnd, countedAtEndTotal] = await Promise.all([snapshot(transport), counted()]);
      const acceptedAtEnd = accepted(atEnd) - acceptedBefore;
      const countedAtEnd = countedAtEndTotal - countedBefore;
      const drainMs = await drain(
        endedAt,
        async () => accepted(await snapshot(transport)),
        async () => (await counted()) - countedBefore + acceptedBefore,
      );
      const lags = await metering[transport].call<LagSplit>('lags', { splitAt: endedAt });
      const exact = await ledger.check(scope, EXACT_TIMING);
      const after = await snapshot(transport);
      const consumerAfter = await consumerSnapshot(transport);

      // wrk's own tally against key-api's: wrk stops with requests in flight, which key-api may
      // still answer 200; so no key above key-api's count, and the gap at most one per connection.
      const wrk200 = sumOf(Object.values(wrk.ok200ByKey));
      let agrees = wrk.unparsed200 === 0;
      for (const [keyId, n] of Object.entries(wrk.ok200ByKey)) {
        const served = (after.ok200ByKey[keyId] ?? 0) - (before.ok200ByKey[keyId] ?? 0);
        if (!scope.keyAccount.has(keyId) || n > served) agrees = false;
      }
      const acceptedAll = accepted(after) - acceptedBefore;
      const gap = acceptedAll - wrk200;
      if (gap < 0 || gap > s.connections) agrees = false;
      const invocations = consumerAfter.invocations - consumerBefore.invocations;
      const records = consumerAfter.records - consumerBefore.records;
      return {
        transport,
        connections: s.connections,
        threads: s.threads,
        durationSec: wrk.durationSec,
        keys: side.sustainedKeys.length,
        accounts: side.sustainedAccounts.length,
        bogusKeys: bogusKeys.length,
        bogusShare: s.bogusShare,
        wrk,
        reqPerSec: wrk.requests / wrk.durationSec,
        acceptedPerSec: wrk200 / wrk.durationSec,
        acceptedAtEnd,
        accepted: acceptedAll,
        countedAtEnd,
        backlogAtEnd: acceptedAtEnd - countedAtEnd,
        drainMs,
        lagDuringMs: lags.until,
        lagAfterMs: lags.after,
        consumer: {
          invocations,
          records,
          avgBatch: invocations > 0 ? records / invocations : 0,
          duplicates: consumerAfter.duplicates - consumerBefore.duplicates,
        },
        client: { ok200: wrk200, gap, agrees },
        exact,
      };
    },

    /**
     * Bare PutRecord calls from a process of their own, with key-api's Kinesis client settings and
     * as many in flight as the sustained phase had connections, to a stream no one reads.
     */
    async publishCheck(kinesisRun) {
      const keys = sides.kinesis.sustainedKeys.map((k) => ({ keyId: k.id, accountId: k.accountId }));
      const bare = await producer.call<PublishCheck['bare']>('putLoop', {
        streamName: checkStreamName,
        keys,
        connections: kinesisRun.connections,
        durationSec: settings.publishCheckSec,
      });
      return {
        connections: kinesisRun.connections,
        durationSec: settings.publishCheckSec,
        bare,
        keyApi: { acceptedPerSec: kinesisRun.acceptedPerSec, p50Ms: kinesisRun.wrk.latencyMs.p50 },
        ratio: kinesisRun.acceptedPerSec > 0 ? bare.reqPerSec / kinesisRun.acceptedPerSec : Number.NaN,
      };
    },

    /**
     * Events straight to the transport at `rate` a second (the producer process), for keys and
     * accounts of this run alone (made up, with key records written first: metering counts only
     * an event whose key its account holds); the metering process's requests counted from before
     * the first event until the last is counted.
     */
    async paced(transport, rate, durationSec) {
      const p = settings.paced;
      const tag = `${run}-${transport}-r${rate}`;
      const accounts = Array.from({ length: p.accounts }, (_, j) => `bench-${tag}-a${j}`);
      const keys = Array.from({ length: p.keys }, (_, i) => ({
        keyId: `bench-${tag}-k${i}`,
        accountId: accounts[i % p.accounts] as string,
      }));
      await writeKeyRecords(keys);
      const consumerBefore = await consumerSnapshot(transport);
      await metering[transport].call('resetSamples');
      const answer = await producer.call<PacedAnswer>('paced', {
        transport,
        target: transport === 'sqs' ? queueUrl : streamName,
        keys,
        zipfS: p.zipfS,
        seed: 7,
        rate,
        durationSec,
      });
      const stored = new Map(keys.map((k, i) => [k.keyId, answer.stored[i] ?? 0]));
      const events = sumOf(stored.values());
      const drainMs = await drain(
        answer.endedAt,
        async () => events,
        () => ledger.total(accounts),
      );
      const exact = await ledger.check(
        {
          transport,
          accounts,
          keyAccount: new Map(keys.map((k) => [k.keyId, k.accountId])),
          answered: async () => stored,
        },
        EXACT_TIMING,
      );
      const consumerAfter = await consumerSnapshot(transport);
      const counts = diffCounts(consumerAfter.sdk, consumerBefore.sdk);
      const dynamodb = pick(counts, 'DynamoDB.');
      const transportCounts = pick(counts, transport === 'sqs' ? 'SQS.' : 'Kinesis.');
      const d = dynamoFigures(dynamodb);
      const invocations = consumerAfter.invocations - consumerBefore.invocations;
      const records = consumerAfter.records - consumerBefore.records;
      const per = (value: number) => (events > 0 ? value / events : 0);
      const seconds = (answer.endedAt - answer.startedAt) / 1000;
      return {
        transport,
        rate,
        achievedPerSec: seconds > 0 ? events / seconds : 0,
        durationSec,
        events,
        keys: p.keys,
        accounts: p.accounts,
        zipfS: p.zipfS,
        producer: answer.stats,
        dynamodb,
        transportCounts,
        perEvent: {
          writeRequests: per(d.writeRequests),
          writeUnits: per(d.writeUnits),
          engineWriteUnits: per(d.engineWriteUnits),
          consumerTransportRequests: per(transport === 'sqs' ? consumerSqsBilled(transportCounts) : 0),
          meteringInvocations: per(invocations),
        },
        metering: {
          invocations,
          records,
          avgBatch: invocations > 0 ? records / invocations : 0,
          durationMs: consumerAfter.durationMs,
          lagMs: consumerAfter.lagMs,
          duplicates: consumerAfter.duplicates - consumerBefore.duplicates,
        },
        drainMs,
        exact,
      };
    },
  };
  return bench;
}
