import { createHash } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { Hono, type MiddlewareHandler } from 'hono';
import { DEFAULT_METRICS_FLUSH_MS, ENV } from '../../contracts/config';
import { KEY_API_FAILURE_METRICS, METRICS_NAMESPACE, SERVICE_NAMES } from '../../contracts/metric-names';
import { BufferedMetrics } from '../../services/gate/buffered-metrics';
import { composeGate, type GateEnv, loadGateConfig } from '../../services/gate/index';
import type { CachedLookup } from '../../services/gate/key-cache';
import { KeyVerifier } from '../../services/gate/key-verifier';
import type { AccountTerms } from '../../services/gate/limits';
import type { UsagePublisher } from '../../services/gate/publisher';
import { composeKeyApi } from '../../services/key-api/compose';
import { loadKeyApiConfig } from '../../services/key-api/config';
import { generateApiKey, isWellFormedApiKey } from '../../services/shared/api-key';
import { type Clock, systemClock } from '../../services/shared/clock';
import { EMF_SIMULATION } from '../cost-model';
import { serveParent } from '../lib/ipc';
import { median } from '../lib/stats';
import {
  type CpuResults,
  type CpuRow,
  GATE_CPU_TARGET,
  type GateCpuCheck,
  PLAN_CPU_TARGET,
} from '../lib/types';
import { PRICES } from '../prices';

/**
 * Child process: what one key check costs in CPU, in process, with a warm cache and a publisher that
 * does nothing: key-api composed by composeKeyApi (the real app, KeyVerifier and KeyCache), no network. Next to it, one
 * SHA-256 of a key, the floor (a check cannot do less than hash the key it looks up), and the gate
 * an owner composes (composeGate) around a trivial owner handler, as an ALB handler and as Hono
 * middleware, held against the key-api check (GATE_CPU_TARGET).
 *
 * Each row first runs `minIterations` operations unmeasured (the JIT settles, and the time per
 * operation is estimated), then `rounds` rounds of as many operations as fill `roundMs` (at least
 * `minIterations`), each timed with process.hrtime.bigint(); the row reports the median round. The
 * process's CPU time per operation (process.cpuUsage, all its threads, GC included) is kept next to
 * it: on a shared machine, wall time also counts the moments another process had the core. Rows
 * that answer HTTP count the status of every answer, the unmeasured round's included, and fail
 * unless all are 200.
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
const COMMON_HEADERS: Readonly<Record<string, string>> = {
  host: '127.0.0.1:3000',
  connection: 'keep-alive',
  'user-agent': 'bench',
  accept: '*/*',
  'x-forwarded-for': '127.0.0.1',
  'x-forwarded-proto': 'http',
  'x-forwarded-port': '3000',
  'x-amzn-trace-id': 'Root=1-00000000-000000000000000000000000',
};
const albEvent = (
  headers: Record<string, string>,
  body = '',
  request: { method: string; path: string } = { method: 'POST', path: '/' },
): ALBEvent => ({
  requestContext: {
    elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:0:targetgroup/key-api/0' },
  },
  httpMethod: request.method,
  path: request.path,
  queryStringParameters: {},
  headers: { ...COMMON_HEADERS, ...headers },
  body,
  isBase64Encoded: false,
});

/** The owner's routes, as the example API (examples/rates-api) declares them; the gated request. */
const OWNER_ROUTES = ['GET /v1/currencies', 'GET /v1/rates/:base', 'POST /v1/convert', 'GET /v1/status'];
const OWNER_REQUEST = { method: 'GET', path: '/v1/rates/EUR' };
/** What the trivial owner handler answers: the gate's cost is the row's, not the owner's work. */
const OWNER_BODY = '{"base":"EUR","asOf":"2025-01-01","rates":{"USD":1.08,"GBP":0.83,"JPY":162.5}}';

let sink = 0;

/**
 * What a row's operation is: a plain function, an async one, or one answering HTTP (an ALB result,
 * or a fetch Response) whose every answer's status is counted: the same comparison in each such
 * row, so ratios between them hold.
 */
type Operation =
  | { readonly kind: 'sync'; readonly run: () => unknown }
  | { readonly kind: 'async'; readonly run: () => Promise<unknown> }
  | { readonly kind: 'alb'; readonly run: () => Promise<ALBResult> }
  | { readonly kind: 'fetch'; readonly run: () => Response | Promise<Response> };

/** Wall time (hrtime) and this process's CPU time (user + system) per operation, in ns. */
async function timeRound(op: Operation, iterations: number, statuses: Record<string, number>) {
  let ok = 0;
  const other = (status: number) => {
    statuses[status] = (statuses[status] ?? 0) + 1;
  };
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  if (op.kind === 'sync') for (let i = 0; i < iterations; i++) sink += op.run() ? 1 : 0;
  else if (op.kind === 'async') for (let i = 0; i < iterations; i++) await op.run();
  else if (op.kind === 'alb') {
    for (let i = 0; i < iterations; i++) {
      const status = (await op.run()).statusCode;
      if (status === 200) ok++;
      else other(status);
    }
  } else {
    for (let i = 0; i < iterations; i++) {
      const status = (await op.run()).status;
      if (status === 200) ok++;
      else other(status);
    }
  }
  const wall = Number(process.hrtime.bigint() - started) / iterations;
  const used = process.cpuUsage(cpu);
  if (ok > 0) statuses[200] = (statuses[200] ?? 0) + ok;
  return { wall, cpu: ((used.user + used.system) * 1000) / iterations };
}

async function time(op: Operation) {
  const statuses: Record<string, number> = {};
  const estimate = await timeRound(op, MIN_ITERATIONS, statuses);
  const iterations = Math.max(MIN_ITERATIONS, Math.ceil((ROUND_MS * 1e6) / estimate.wall));
  const rounds: Array<{ wall: number; cpu: number }> = [];
  for (let round = 0; round < ROUNDS; round++) rounds.push(await timeRound(op, iterations, statuses));
  return {
    iterations,
    nsPerOp: median(rounds.map((r) => r.wall)),
    minNsPerOp: Math.min(...rounds.map((r) => r.wall)),
    cpuNsPerOp: median(rounds.map((r) => r.cpu)),
    // Every answer, the unmeasured round's included.
    ...(op.kind === 'alb' || op.kind === 'fetch' ? { statuses } : {}),
  };
}

/**
 * key-api's configuration as a deployment would set it; the tables and the queue are never reached
 * (the lookup, the usage figure and the publisher below replace everything that would).
 */
const CONFIG_ENV = {
  [ENV.accountsTable]: 'bench-accounts',
  [ENV.keysTable]: 'bench-keys',
  [ENV.usageTable]: 'bench-usage',
  [ENV.plansTable]: 'bench-plans',
  [ENV.keyPrefix]: PREFIX,
  [ENV.usageQueueUrl]: 'http://127.0.0.1:9/000000000000/bench-never-sent',
};
const CONFIG = loadKeyApiConfig(CONFIG_ENV);
/** The gate's configuration, from the same variables (an owner's function sets these too). */
const GATE_CONFIG = loadGateConfig(CONFIG_ENV);

/** The key every row checks, as KeyLookup would find it: an active key. */
const RECORD = { accountId: 'acc_bench', keyId: 'key_bench', status: 'active' as const };
const lookup = async (): Promise<CachedLookup> => ({ found: true, record: RECORD });
/**
 * Its account's terms, in memory too: in good standing, on no plan (nothing to rate-limit or count
 * against a quota), so no usage is ever read. Every row that checks a key checks these the same way.
 */
const accountReads = {
  terms: async (): Promise<CachedLookup<AccountTerms>> => ({ found: true, record: { status: 'active' } }),
  readUsage: async () => ({ used: 0, byProducer: 0 }),
} as const;
/**
 * The same account on a plan with both limits enforced on every request (a quota read from the
 * counters once per read interval, counted locally between reads, and a rate limit), set high
 * enough that no request is refused.
 */
const onAPlan = async (): Promise<CachedLookup<AccountTerms>> => ({
  found: true,
  record: {
    status: 'active',
    plan: {
      planId: 'bench',
      name: 'Bench',
      updatedAt: '2026-12-01T00:00:00.000Z',
      quota: { requests: 1_000_000_000, period: 'month' },
      rateLimit: { requests: 1_000_000_000, perSeconds: 1, scope: 'key' },
    },
  },
});
const silentLogger = () => new Logger({ serviceName: 'bench', logLevel: 'SILENT' });

/** Metrics as handler.ts and composeGate buffer them (the default flush interval, failures at once). */
function bufferedMetrics(powertools: Metrics, clock: Clock = systemClock): BufferedMetrics {
  return new BufferedMetrics({
    metrics: powertools,
    flushIntervalMs: DEFAULT_METRICS_FLUSH_MS,
    flushAtOnce: KEY_API_FAILURE_METRICS,
    clock,
  });
}

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
  const metrics = bufferedMetrics(powertools, clock);
  const { handler, cache } = composeKeyApi(CONFIG, {
    lookup,
    ...accountReads,
    publisher: { publish },
    // The key's "usage today" figure, read at most once a second per key (as in production).
    readKeyDayCount: async () => 0,
    logger: silentLogger(),
    metrics,
  });
  // The verifier alone (its own row), over the container's cache, as the handler holds it.
  const verifier = new KeyVerifier({ cache, keyPrefix: CONFIG[ENV.keyPrefix], clock: systemClock });
  return { handler, verifier, metrics };
}

/**
 * The gate an owner composes (composeGate, services/gate/index.ts), the same way: the same
 * in-memory lookup, a publisher that resolves at once and metrics disabled, with its own container
 * cache. Two adapters over it, each around an owner whose handler answers a fixed small JSON 200 on
 * the example API's routes: the ALB handler wrapper, and the Hono middleware on a Hono app.
 */
function gateWith(powertools: Metrics, terms: typeof accountReads.terms = accountReads.terms) {
  const tollgate = composeGate(GATE_CONFIG, {
    lookup,
    ...accountReads,
    terms,
    publisher: { publish: async () => {} },
    logger: silentLogger(),
    metrics: bufferedMetrics(powertools),
  });
  const owner = async (): Promise<ALBResult> => ({
    statusCode: 200,
    statusDescription: '200 OK',
    isBase64Encoded: false,
    headers: { 'content-type': 'application/json' },
    body: OWNER_BODY,
  });
  const alb = tollgate.albHandler(owner, { routes: OWNER_ROUTES });
  return { alb, app: ownerApp(tollgate.middleware()), bareApp: ownerApp() };
}

/** The owner's Hono app on the example's routes, behind `gate` if given (without: Hono's own cost). */
function ownerApp(gate?: MiddlewareHandler<GateEnv>): Hono<GateEnv> {
  const app = new Hono<GateEnv>();
  if (gate) app.use('/v1/*', gate);
  for (const route of OWNER_ROUTES) {
    const [method = '', path = ''] = route.split(' ');
    app.on(method, path, (c) => c.body(OWNER_BODY, 200, { 'content-type': 'application/json' }));
  }
  return app;
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

/** Each gate row against the key-api check, by CPU time per operation (what the target is about). */
function gateCheck(rows: ReadonlyArray<Omit<CpuRow, 'ratioToSha256'>>): GateCpuCheck | undefined {
  const find = (name: string) => rows.find((r) => r.name === name);
  const handler = find('handler');
  const alb = find('gate-alb');
  const hono = find('gate-hono');
  const bare = find('hono-bare');
  if (!handler || !alb || !hono) return undefined;
  const against = (row: Omit<CpuRow, 'ratioToSha256'>) => {
    const cpuRatio = row.cpuNsPerOp / handler.cpuNsPerOp;
    return {
      cpuRatio,
      wallRatio: row.nsPerOp / handler.nsPerOp,
      met: Number.isFinite(cpuRatio) && cpuRatio <= GATE_CPU_TARGET,
    };
  };
  const albRatio = against(alb);
  const withPlan = find('gate-alb-plan');
  const planCpu = withPlan ? withPlan.cpuNsPerOp / alb.cpuNsPerOp : Number.NaN;
  return {
    target: GATE_CPU_TARGET,
    against: 'handler',
    alb: albRatio,
    hono: {
      ...against(hono),
      ...(bare ? { middlewareCpuRatio: (hono.cpuNsPerOp - bare.cpuNsPerOp) / handler.cpuNsPerOp } : {}),
    },
    met: albRatio.met,
    ...(withPlan
      ? {
          plan: {
            target: PLAN_CPU_TARGET,
            cpuRatio: planCpu,
            wallRatio: withPlan.nsPerOp / alb.nsPerOp,
            met: Number.isFinite(planCpu) && planCpu <= PLAN_CPU_TARGET,
          },
        }
      : {}),
  };
}

serveParent(async () => ({
  ready: {},
  handlers: {
    run: async (): Promise<CpuResults> => {
      const { key } = generateApiKey(PREFIX);
      const header = albEvent({ 'x-api-key': key });
      const body = albEvent({ 'content-type': 'application/json' }, JSON.stringify({ key }));
      const gated = albEvent({ 'x-api-key': key }, '', OWNER_REQUEST);
      const honoUrl = `http://${COMMON_HEADERS.host}${OWNER_REQUEST.path}`;
      const honoInit = { method: OWNER_REQUEST.method, headers: { ...COMMON_HEADERS, 'x-api-key': key } };

      const quiet = handlerWith(metricsWith(true));
      // As on Lambda: metrics on and buffered as handler.ts does it. Lines are built and serialised;
      // writing them to stdout is left out (console swapped for a sink).
      const emf = handlerWith(emfMetrics(() => {}));
      const gate = gateWith(metricsWith(true));
      const planned = gateWith(metricsWith(true), onAPlan);

      const check = async (what: string, answer: Promise<ALBResult | Response> | Response) => {
        const result = await answer;
        const code = 'statusCode' in result ? result.statusCode : result.status;
        if (code !== 200) throw new Error(`${what}: the check answered ${code}`);
      };
      // Warm: the key's cache entry and usage figure are loaded once, as after the first request.
      await check('handler', quiet.handler(header));
      await check('handler-emf', emf.handler(header));
      await check('gate-alb', gate.alb(gated));
      await check('gate-alb-plan', planned.alb(gated));
      await check('gate-hono', gate.app.request(honoUrl, honoInit));
      await check('hono-bare', gate.bareApp.request(honoUrl, honoInit));

      const rows: Array<Omit<CpuRow, 'ratioToSha256'>> = [];
      const add = async (name: string, what: string, op: Operation) => {
        const row = { name, what, rounds: ROUNDS, ...(await time(op)) };
        const other = Object.keys(row.statuses ?? {}).filter((code) => code !== '200');
        if (other.length > 0)
          throw new Error(`${name}: answers other than 200: ${JSON.stringify(row.statuses)}`);
        rows.push(row);
      };
      await add('sha256', 'SHA-256 of one key (node:crypto createHash): the floor', {
        kind: 'sync',
        run: () => createHash('sha256').update(key).digest('hex'),
      });
      await add('checksum', 'format + CRC-32 checksum of one key (isWellFormedApiKey)', {
        kind: 'sync',
        run: () => isWellFormedApiKey(key, PREFIX),
      });
      await add('verify', 'KeyVerifier.verify: checksum + SHA-256 + warm cache lookup', {
        kind: 'async',
        run: () => quiet.verifier.verify(key),
      });
      await add(
        'handler',
        'key-api handler, x-api-key header, no-op publisher, metrics disabled (as in the local stack)',
        { kind: 'alb', run: () => quiet.handler(header) },
      );
      await add('handler-body', 'the same, key in the JSON body {"key": ...} (the article style)', {
        kind: 'alb',
        run: () => quiet.handler(body),
      });
      await add(
        'handler-emf',
        `the same with metrics enabled and buffered as on Lambda (one EMF line per ${DEFAULT_METRICS_FLUSH_MS / 1000} s or 100 latencies; not written)`,
        { kind: 'alb', run: () => emf.handler(header) },
      );
      await add(
        'gate-alb',
        `gate: composeGate(...).albHandler around an owner handler answering a fixed small JSON 200, ${OWNER_ROUTES.length} routes, ${OWNER_REQUEST.method} ${OWNER_REQUEST.path}, x-api-key header, no-op publisher, metrics disabled`,
        { kind: 'alb', run: () => gate.alb(gated) },
      );
      await add(
        'gate-alb-plan',
        'the same gate with the account on a plan: a monthly quota (counters read once a second, counted locally between reads) and a rate limit, both checked on every request and never reached',
        { kind: 'alb', run: () => planned.alb(gated) },
      );
      await add(
        'gate-hono',
        `gate: composeGate(...).middleware() on a Hono app with the same routes and answer, app.request(${OWNER_REQUEST.method} ${OWNER_REQUEST.path}); includes Hono's Request/Response work`,
        { kind: 'fetch', run: () => gate.app.request(honoUrl, honoInit) },
      );
      await add(
        'hono-bare',
        "the same Hono app and request without the gate: Hono's own Request/Response and routing work, for reference",
        { kind: 'fetch', run: () => gate.bareApp.request(honoUrl, honoInit) },
      );
      if (sink < 0) process.stdout.write('');
      const sha = rows.find((r) => r.name === 'sha256')?.nsPerOp ?? Number.NaN;
      const gateCpu = gateCheck(rows);
      return {
        rows: rows.map((r) => ({ ...r, ratioToSha256: r.nsPerOp / sha })),
        ...(gateCpu ? { gate: gateCpu } : {}),
        // Per invocation, amortized over the flushes (see emfBytesPerInvocation); the field keeps
        // its name so results.json stays readable by every reader.
        emfLineBytes: await emfBytesPerInvocation(header),
      };
    },
  },
  cleanUp: async () => {},
}));
