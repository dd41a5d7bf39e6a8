import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { Hono, type MiddlewareHandler } from 'hono';
import { DEFAULT_METRICS_FLUSH_MS, ENV } from '../../../contracts/config';
import { KEY_API_FAILURE_METRICS, METRICS_NAMESPACE, SERVICE_NAMES } from '../../../contracts/metric-names';
import { BufferedMetrics } from '../../../services/gate/buffered-metrics';
import { composeGate, type GateEnv, loadGateConfig } from '../../../services/gate/index';
import type { CachedLookup } from '../../../services/gate/key-cache';
import { KeyVerifier } from '../../../services/gate/key-verifier';
import type { AccountTerms } from '../../../services/gate/limits';
import type { UsagePublisher } from '../../../services/gate/publisher';
import { composeKeyApi } from '../../../services/key-api/compose';
import { loadKeyApiConfig } from '../../../services/key-api/config';
import { type Clock, systemClock } from '../../../services/platform/clock';

/**
 * What bench/proc/cpu.ts's rows run, composed in process with no network: key-api as handler.ts
 * composes it, the gate an owner composes around a trivial owner handler, the ALB events they are
 * called with, and their metrics (disabled, or on and buffered as on Lambda).
 */
export const PREFIX = 'tg';
// What the local ALB adapter hands key-api for `curl -H "x-api-key: ..."`, give or take the values.
export const COMMON_HEADERS: Readonly<Record<string, string>> = {
  host: '127.0.0.1:3000',
  connection: 'keep-alive',
  'user-agent': 'bench',
  accept: '*/*',
  'x-forwarded-for': '127.0.0.1',
  'x-forwarded-proto': 'http',
  'x-forwarded-port': '3000',
  'x-amzn-trace-id': 'Root=1-00000000-000000000000000000000000',
};
export const albEvent = (
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
export const OWNER_ROUTES = [
  'GET /v1/currencies',
  'GET /v1/rates/:base',
  'POST /v1/convert',
  'GET /v1/status',
];
export const OWNER_REQUEST = { method: 'GET', path: '/v1/rates/EUR' };
/** What the trivial owner handler answers: the gate's cost is the row's, not the owner's work. */
const OWNER_BODY = '{"base":"EUR","asOf":"2025-01-01","rates":{"USD":1.08,"GBP":0.83,"JPY":162.5}}';

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
export const onAPlan = async (): Promise<CachedLookup<AccountTerms>> => ({
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
export function handlerWith(
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
export function gateWith(powertools: Metrics, terms: typeof accountReads.terms = accountReads.terms) {
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
export function emfMetrics(onLine: (line: string) => void): Metrics {
  const metrics = metricsWith(false);
  (metrics as unknown as { console: { log: (line: string) => void } }).console = { log: onLine };
  return metrics;
}

export function metricsWith(disabled: boolean): Metrics {
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
