import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateStreamCommand, DescribeStreamSummaryCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { usageQueue, usageStream } from '../../contracts/resources';
import { utcDay } from '../../contracts/usage-event';
import { findFreePorts } from '../../infra/local/ports';
import { createBaselineTable, seedBaselineUsers, totalBaselineCount } from '../baseline/table';
import { type IssuedKey, type Owner, UserApi } from './accounts';
import { type Child, startChild } from './ipc';
import { runLoad } from './load';
import { machineInfo } from './machine';
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
  type LoadResult,
  type ServerSnapshot,
  type StackInfo,
  TARGETS,
  type Target,
  TRANSPORTS,
  type Transport,
  type WriteRun,
} from './types';

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
  cpu: here('../proc/cpu.ts'),
};
const CHILD_ENV = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
/** A pipeline that counted nothing new for this long while behind is stuck: the check fails. */
const STALL_TIMEOUT_MS = 30_000;
const SETTLE_TIMEOUT_MS = 900_000;
const HOLD_MS = 1_500;
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
      log(
        `  exact (${phase}): ${result.counted} counted / ${result.answered200} answered 200${result.ok ? '' : '  <-- MISMATCH'}`,
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

    const finished = Date.now();
    return {
      version: 1,
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date(finished).toISOString(),
      durationSec: Math.round((finished - started) / 100) / 10,
      machine,
      settings,
      cpu,
      http,
      writes,
      freshness,
      exactChecks,
      exact: exactChecks.every((c) => c.ok),
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
  const otherWrites = ['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem'];
  const otherWriteUnits = otherWrites.reduce((sum, op) => sum + n(`DynamoDB.${op}.capacityUnits`), 0);
  const writeRequests =
    n('DynamoDB.TransactWriteItems') + otherWrites.reduce((sum, op) => sum + n(`DynamoDB.${op}`), 0);
  // AWS bills 2 units per transactional item (all of them are under 1 KB); the rest as DynamoDB reports.
  const writeUnits = 2 * n('DynamoDB.TransactWriteItems.items') + otherWriteUnits;
  const engineWriteUnits = n('DynamoDB.TransactWriteItems.capacityUnits') + otherWriteUnits;
  const readOps = ['GetItem', 'Query', 'BatchGetItem', 'Scan'];
  const readRequests = readOps.reduce((sum, op) => sum + n(`DynamoDB.${op}`), 0);
  const readUnits = readOps.reduce((sum, op) => sum + n(`DynamoDB.${op}.capacityUnits`), 0);
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
      writeRequests: per(writeRequests),
      writeUnits: per(writeUnits),
      engineWriteUnits: per(engineWriteUnits),
      readRequests: per(readRequests),
      readUnits: per(readUnits),
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
  const users = new UserApi(stack);
  cleanups.push(() => {
    for (const client of [dynamo, sqs, kinesis]) client.destroy();
    users.close();
  });
  const run = `${Date.now().toString(36)}${process.pid.toString(36)}`;
  const firstDay = utcDay(Date.now());

  // The benchmark's own queue and stream, set up like the stack's (contracts/resources.ts), so that only
  // the benchmark's metering consumer reads them. Refused records go to the stack's dead-letter queue.
  log('setup: queue, stream, baseline table, accounts and keys');
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
  const streamName = `tollgate-bench-${run}-usage-stream`;
  await kinesis.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: usageStream.shardCount }));
  let streamArn = '';
  for (let attempt = 0; attempt < 200 && !streamArn; attempt++) {
    const summary = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
    if (summary.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') {
      streamArn = summary.StreamDescriptionSummary.StreamARN ?? '';
    } else await sleep(100);
  }
  if (!streamArn) throw new Error(`${streamName} did not become ACTIVE`);

  const baselineTable = `tollgate-bench-${run}-baseline-users`;
  await createBaselineTable(dynamo, baselineTable);
  const baselineUsers = await seedBaselineUsers(dynamo, baselineTable, settings.keys);

  // Owners and their keys: key i belongs to owner i % accounts, so hot keys spread over accounts.
  const owners: Owner[] = [];
  for (let i = 0; i < settings.accounts; i += 5) {
    const batch = Array.from({ length: Math.min(5, settings.accounts - i) }, (_, n) =>
      users.signUp(`owner${i + n}`),
    );
    owners.push(...(await Promise.all(batch)));
  }
  const probeOwner = await users.signUp('probe');
  const keys: IssuedKey[] = new Array(settings.keys);
  await Promise.all(
    owners.map(async (owner, o) => {
      for (let i = o; i < settings.keys; i += settings.accounts) {
        keys[i] = await users.createKey(owner, `bench-${i}`);
      }
    }),
  );
  // One probe key per transport, so both freshness probes can run at once.
  const probeKeys: Record<Transport, IssuedKey> = {
    sqs: await users.createKey(probeOwner, 'probe-sqs'),
    kinesis: await users.createKey(probeOwner, 'probe-kinesis'),
  };

  // --- the parts under test ------------------------------------------------------------------
  // Each child composes its handler from the stack's settings; its SDK clients find the stack's
  // engines through the AWS_* variables.
  const childEnv = { ...stack.env, ...stack.awsEnv, ...CHILD_ENV };
  const ports = await findFreePorts();
  const [sqsMetering, kinesisMetering, sqsServer, kinesisServer, baselineServer] = await Promise.all([
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
  ]);
  children.push(sqsMetering, kinesisMetering, sqsServer, kinesisServer, baselineServer);
  const metering: Record<Transport, Child<unknown>> = { sqs: sqsMetering, kinesis: kinesisMetering };
  const servers: Record<Target, Child<{ endpoint: string }>> = {
    baseline: baselineServer,
    sqs: sqsServer,
    kinesis: kinesisServer,
  };
  const keysOf = (target: Target) =>
    target === 'baseline' ? baselineUsers.map((u) => u.key) : keys.map((k) => k.key);

  const snapshot = (target: Target) => servers[target].call<ServerSnapshot>('snapshot');
  const tollgate200 = async () =>
    ((await snapshot('sqs')).statuses['200'] ?? 0) + ((await snapshot('kinesis')).statuses['200'] ?? 0);
  const countedTotal = async () =>
    (await Promise.all([...owners, probeOwner].map((o) => users.usageTotal(o, firstDay)))).reduce(
      (a, b) => a + b,
      0,
    );
  const allKeyCounts = async () => {
    const counts = new Map<string, number>();
    for (const map of await Promise.all(owners.map((o) => users.keyCounts(o)))) {
      for (const [id, count] of map) counts.set(id, count);
    }
    return counts;
  };

  const bench: Bench = {
    server: (target) => servers[target],

    // Every key once, one at a time: key-api's cache and the JIT see each key before any timing.
    async warm(target) {
      const url = servers[target].ready.endpoint;
      for (const key of keysOf(target)) {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ key }),
        });
        await response.arrayBuffer();
        if (response.status !== 200) throw new Error(`${target} answered ${response.status} to a warm-up`);
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
     * Both sides of "every 200 is counted once": the usage every owner sees in GET /usage against the
     * 200s both Tollgate key-apis answered since the start (so warm-ups and probes count too), once
     * the pipeline has drained; then held a moment to catch a late double count. The baseline counts
     * synchronously: its table's Count total against its 200s.
     */
    async waitExact(phase) {
      const begun = Date.now();
      // Requests in flight when the load stopped still finish: re-read both sides until they agree,
      // for as long as the consumers keep counting (a backlog can take minutes to drain locally).
      let answered = await tollgate200();
      let counted = await countedTotal();
      let progressAt = Date.now();
      while (counted !== answered && Date.now() - progressAt < STALL_TIMEOUT_MS) {
        if (Date.now() - begun > SETTLE_TIMEOUT_MS) break;
        await sleep(250);
        const before = counted;
        answered = await tollgate200();
        counted = await countedTotal();
        if (counted !== before) progressAt = Date.now();
      }
      const settledMs = Date.now() - begun;
      await sleep(HOLD_MS);
      answered = await tollgate200();
      counted = await countedTotal();
      const baselineAnswered = (await snapshot('baseline')).statuses['200'] ?? 0;
      const baselineCounted = await totalBaselineCount(dynamo, baselineTable);
      const ok = counted === answered && baselineCounted === baselineAnswered;
      return {
        phase,
        answered200: answered + baselineAnswered,
        counted: counted + baselineCounted,
        ok,
        settledMs,
      };
    },

    async baselineWriteRun(check) {
      const before = await snapshot('baseline');
      const load = await bench.load('baseline', { amount: eventsFor(settings, 'baseline') });
      const exact = await check('writes baseline');
      const producer = diffCounts((await snapshot('baseline')).sdk, before.sdk);
      return writeRunOf('baseline', load, exact, null, pick(producer, 'DynamoDB.'), {});
    },

    async tollgateWriteRuns(check) {
      const before = await Promise.all(
        TRANSPORTS.map(async (t) => ({
          server: await snapshot(t),
          consumer: await metering[t].call<ConsumerSnapshot>('snapshot'),
        })),
      );
      await Promise.all(TRANSPORTS.map((t) => metering[t].call('resetSamples')));
      const keyCountsBefore = await allKeyCounts();
      const loads = await Promise.all(TRANSPORTS.map((t) => bench.load(t, { amount: settings.writeEvents })));
      const exact = await check('writes sqs + kinesis');
      // Both runs drew from the same keys: each key must have moved by its 200s from both.
      const keyCountsAfter = await allKeyCounts();
      const perKeyExact = keys.every(
        (k, i) =>
          (keyCountsAfter.get(k.id) ?? 0) - (keyCountsBefore.get(k.id) ?? 0) ===
          loads.reduce((sum, load) => sum + (load.perKey200?.[i] ?? 0), 0),
      );
      const runs = {} as Record<Transport, WriteRun>;
      for (const [i, t] of TRANSPORTS.entries()) {
        const load = loads[i] as LoadResult;
        const was = before[i] as { server: ServerSnapshot; consumer: ConsumerSnapshot };
        const consumer = await metering[t].call<ConsumerSnapshot>('snapshot');
        const producerCounts = diffCounts((await snapshot(t)).sdk, was.server.sdk);
        const consumerCounts = diffCounts(consumer.sdk, was.consumer.sdk);
        const service = t === 'kinesis' ? 'Kinesis.' : 'SQS.';
        runs[t] = writeRunOf(
          t,
          load,
          exact,
          perKeyExact,
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
      const probeKey = probeKeys[transport];
      let expected = await users.usageTotal(probeOwner, firstDay, probeKey.id);
      const samples: number[] = [];
      for (let i = 0; i < settings.freshnessSamples; i++) {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ key: probeKey.key }),
        });
        await response.arrayBuffer();
        const answered = performance.now();
        if (response.status !== 200) throw new Error(`freshness probe answered ${response.status}`);
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
  };
  return bench;
}
