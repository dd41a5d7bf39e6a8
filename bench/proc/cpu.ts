import { createHash } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { ALBEvent } from 'aws-lambda';
import { DEFAULT_METRICS_FLUSH_MS, ENV } from '../../contracts/config';
import { KEY_API_FAILURE_METRICS, METRICS_NAMESPACE, SERVICE_NAMES } from '../../contracts/metric-names';
import { BufferedMetrics } from '../../services/key-api/buffered-metrics';
import { composeKeyApi } from '../../services/key-api/compose';
import { loadKeyApiConfig } from '../../services/key-api/config';
import { KeyVerifier } from '../../services/key-api/key-verifier';
import type { UsagePublisher } from '../../services/key-api/publisher';
import { generateApiKey, isWellFormedApiKey } from '../../services/shared/api-key';
import { type Clock, systemClock } from '../../services/shared/clock';
import { EMF_SIMULATION } from '../cost-model';
import { serveParent } from '../lib/ipc';
import { median } from '../lib/stats';
import type { CpuResults, CpuRow } from '../lib/types';
import { PRICES } from '../prices';

/**
 * Child process: what one key check costs in CPU, in process, with a warm cache and a publisher that
 * does nothing: key-api composed by composeKeyApi (the real app, KeyVerifier and KeyCache), no network. Next to it, one
 * SHA-256 of a key, the floor (a check cannot do less than hash the key it looks up).
 *
 * Each row first runs `minIterations` operations unmeasured (the JIT settles, and the time per
 * operation is estimated), then `rounds` rounds of as many operations as fill `roundMs` (at least
 * `minIterations`), each timed with process.hrtime.bigint(); the row reports the median round. The
 * process's CPU time per operation (process.cpuUsage, all its threads, GC included) is kept next to
 * it: on a shared machine, wall time also counts the moments another process had the core.
 *
 * It also measures what key-api's metrics cost in CloudWatch Logs per invocation, amortized over
 * its buffered flushes (`emfLineBytes`, see emfBytesPerInvocation).
 *
 * argv: <roundMs> <rounds> <minIterations>
 */
const [roundMsArg, roundsArg, minIterationsArg] = process.argv.slice(2);
const ROUND_MS = Number(roundMsArg ?? 300);
const ROUNDS = Number(roundsArg ?? 7);
const MIN_ITERATIONS = Number(minIterationsArg ?? 10_000);

const PREFIX = 'tg';
// What the local ALB adapter hands key-api for `curl -H "x-api-key: ..."`, give or take the values.
const albEvent = (headers: Record<string, string>, body = ''): ALBEvent => ({
  requestContext: {
    elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:0:targetgroup/key-api/0' },
  },
  httpMethod: 'POST',
  path: '/',
  queryStringParameters: {},
  headers: {
    host: '127.0.0.1:3000',
    connection: 'keep-alive',
    'user-agent': 'bench',
    accept: '*/*',
    'x-forwarded-for': '127.0.0.1',
    'x-forwarded-proto': 'http',
    'x-forwarded-port': '3000',
    'x-amzn-trace-id': 'Root=1-00000000-000000000000000000000000',
    ...headers,
  },
  body,
  isBase64Encoded: false,
});

let sink = 0;

/** Wall time (hrtime) and this process's CPU time (user + system) per operation, in ns. */
async function timeRound(run: () => unknown | Promise<unknown>, iterations: number, isAsync: boolean) {
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  if (isAsync) for (let i = 0; i < iterations; i++) await run();
  else for (let i = 0; i < iterations; i++) sink += run() ? 1 : 0;
  const wall = Number(process.hrtime.bigint() - started) / iterations;
  const used = process.cpuUsage(cpu);
  return { wall, cpu: ((used.user + used.system) * 1000) / iterations };
}

async function time(run: () => unknown | Promise<unknown>, isAsync: boolean) {
  const estimate = await timeRound(run, MIN_ITERATIONS, isAsync);
  const iterations = Math.max(MIN_ITERATIONS, Math.ceil((ROUND_MS * 1e6) / estimate.wall));
  const rounds: Array<{ wall: number; cpu: number }> = [];
  for (let round = 0; round < ROUNDS; round++) rounds.push(await timeRound(run, iterations, isAsync));
  return {
    iterations,
    nsPerOp: median(rounds.map((r) => r.wall)),
    minNsPerOp: Math.min(...rounds.map((r) => r.wall)),
    cpuNsPerOp: median(rounds.map((r) => r.cpu)),
  };
}

/**
 * key-api's configuration as a deployment would set it; the tables and the queue are never reached
 * (the lookup, the usage figure and the publisher below replace everything that would).
 */
const CONFIG = loadKeyApiConfig({
  [ENV.accountsTable]: 'bench-accounts',
  [ENV.keysTable]: 'bench-keys',
  [ENV.usageTable]: 'bench-usage',
  [ENV.keyPrefix]: PREFIX,
  [ENV.usageQueueUrl]: 'http://127.0.0.1:9/000000000000/bench-never-sent',
});

/**
 * key-api as handler.ts composes it (composeKeyApi), minus the network: the real app, verifier and
 * cache over an in-memory lookup, a publisher that resolves at once, and the same buffered metrics
 * (BufferedMetrics over Powertools, the default flush interval, failures at once), asked after every
 * invocation whether to write. `clock` is the metrics' clock only (the simulation's).
 */
function handlerWith(
  powertools: Metrics,
  clock: Clock = systemClock,
  publish: UsagePublisher['publish'] = async () => {},
) {
  const metrics = new BufferedMetrics({
    metrics: powertools,
    flushIntervalMs: DEFAULT_METRICS_FLUSH_MS,
    flushAtOnce: KEY_API_FAILURE_METRICS,
    clock,
  });
  const record = { accountId: 'acc_bench', keyId: 'key_bench', status: 'active' as const };
  const { handler, cache } = composeKeyApi(CONFIG, {
    lookup: async () => ({ found: true, record }),
    publisher: { publish },
    // The key's "usage today" figure, read at most once a second per key (as in production).
    readKeyDayCount: async () => 0,
    logger: new Logger({ serviceName: 'bench', logLevel: 'SILENT' }),
    metrics,
  });
  // The verifier alone (its own row), over the container's cache, as the handler holds it.
  const verifier = new KeyVerifier({ cache, keyPrefix: CONFIG[ENV.keyPrefix], clock: systemClock });
  return { handler, verifier, metrics };
}

/** Metrics on, as on Lambda, with every EMF line handed to `onLine` instead of stdout. */
function emfMetrics(onLine: (line: string) => void): Metrics {
  const metrics = metricsWith(false);
  (metrics as unknown as { console: { log: (line: string) => void } }).console = { log: onLine };
  return metrics;
}

/**
 * What CloudWatch Logs bills for key-api's metrics, per invocation: the real handler and its
 * buffered metrics driven through EMF_SIMULATION (a steady rate per container, on a simulated
 * clock, for several flush intervals), every EMF line written counted with CloudWatch's per-event
 * overhead, the total divided by the invocations. Every request is accepted (a warm key, as in the
 * load runs): one count each of accepted and cache hits, one publish latency. The publisher takes
 * simulated time (EMF_SIMULATION.publishMs) so the latencies have the digits real ones have; a
 * no-op publisher would write zeros.
 */
async function emfBytesPerInvocation(event: ALBEvent): Promise<number> {
  const { requestsPerSecondPerContainer: rate, seconds, publishMs } = EMF_SIMULATION;
  // From now on: Powertools skips (and warns about) timestamps more than 14 days old.
  let now = Date.now();
  let elapsed = 0;
  let billed = 0;
  let publishes = 0;
  const { handler, metrics } = handlerWith(
    emfMetrics((line) => {
      billed += Buffer.byteLength(line) + PRICES.cloudWatchLogs.eventOverheadBytes;
    }),
    { now: () => new Date(now) },
    async () => {
      // Spread evenly over the range, in tenths of a millisecond, deterministically.
      const steps = (publishMs.max - publishMs.min) * 10;
      elapsed += publishMs.min + ((publishes++ * 7919) % steps) / 10;
    },
  );
  const realNow = performance.now;
  performance.now = () => elapsed;
  try {
    const invocations = Math.round(rate * seconds);
    for (let i = 0; i < invocations; i++) {
      const result = await handler(event);
      if (result.statusCode !== 200) throw new Error(`check answered ${result.statusCode}: ${result.body}`);
      now += 1000 / rate;
    }
    // The last, partial window is counted as written: a slight overestimate, not an omission.
    metrics.flush();
    return billed / invocations;
  } finally {
    performance.now = realNow;
  }
}

function metricsWith(disabled: boolean): Metrics {
  const previous = process.env.POWERTOOLS_METRICS_DISABLED;
  process.env.POWERTOOLS_METRICS_DISABLED = String(disabled);
  try {
    // The deployed namespace and service: both are in every line, so they count in its size.
    return new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAMES.keyApi });
  } finally {
    if (previous === undefined) delete process.env.POWERTOOLS_METRICS_DISABLED;
    else process.env.POWERTOOLS_METRICS_DISABLED = previous;
  }
}

serveParent(async () => ({
  ready: {},
  handlers: {
    run: async (): Promise<CpuResults> => {
      const { key } = generateApiKey(PREFIX);
      const header = albEvent({ 'x-api-key': key });
      const body = albEvent({ 'content-type': 'application/json' }, JSON.stringify({ key }));

      const quiet = handlerWith(metricsWith(true));
      // As on Lambda: metrics on and buffered as handler.ts does it. Lines are built and serialised;
      // writing them to stdout is left out (console swapped for a sink).
      const emf = handlerWith(emfMetrics(() => {}));

      const check = async (handler: typeof quiet.handler, event: ALBEvent) => {
        const result = await handler(event);
        if (result.statusCode !== 200) throw new Error(`check answered ${result.statusCode}: ${result.body}`);
      };
      // Warm: the key's cache entry and usage figure are loaded once, as after the first request.
      await check(quiet.handler, header);
      await check(emf.handler, header);

      const rows: Array<Omit<CpuRow, 'ratioToSha256'>> = [];
      const add = async (
        name: string,
        what: string,
        run: () => unknown | Promise<unknown>,
        isAsync: boolean,
      ) => {
        rows.push({ name, what, rounds: ROUNDS, ...(await time(run, isAsync)) });
      };
      await add(
        'sha256',
        'SHA-256 of one key (node:crypto createHash): the floor',
        () => createHash('sha256').update(key).digest('hex'),
        false,
      );
      await add(
        'checksum',
        'format + CRC-32 checksum of one key (isWellFormedApiKey)',
        () => isWellFormedApiKey(key, PREFIX),
        false,
      );
      await add(
        'verify',
        'KeyVerifier.verify: checksum + SHA-256 + warm cache lookup',
        () => quiet.verifier.verify(key),
        true,
      );
      await add(
        'handler',
        'key-api handler, x-api-key header, no-op publisher, metrics disabled (as in the local stack)',
        () => quiet.handler(header),
        true,
      );
      await add(
        'handler-body',
        'the same, key in the JSON body {"key": ...} (the article style)',
        () => quiet.handler(body),
        true,
      );
      await add(
        'handler-emf',
        `the same with metrics enabled and buffered as on Lambda (one EMF line per ${DEFAULT_METRICS_FLUSH_MS / 1000} s or 100 latencies; not written)`,
        () => emf.handler(header),
        true,
      );
      if (sink < 0) process.stdout.write('');
      const sha = rows.find((r) => r.name === 'sha256')?.nsPerOp ?? Number.NaN;
      return {
        rows: rows.map((r) => ({ ...r, ratioToSha256: r.nsPerOp / sha })),
        // Per invocation, amortized over the flushes (see emfBytesPerInvocation); the field keeps
        // its name so results.json stays readable by every reader.
        emfLineBytes: await emfBytesPerInvocation(header),
      };
    },
  },
  cleanUp: async () => {},
}));
