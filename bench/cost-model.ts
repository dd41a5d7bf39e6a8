import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { DEFAULT_METRICS_FLUSH_MS } from '../contracts/config';
import { METRICS_NAMESPACE, MeteringMetric, SERVICE_NAMES } from '../contracts/metric-names';
import { DEFAULT_WINDOW } from '../services/metering/batch';
import type { BenchResults, PacedRun, Target, Transport } from './lib/types';
import { PRICES, type Prices, type Tier } from './prices';

/**
 * Monthly AWS cost per component, from the operation counts the benchmark measured per request
 * (bench/results.json) and the price table (bench/prices.ts). Nothing here is a guess about
 * Tollgate's behaviour: per-request counts, sizes and durations all come from the run. What is
 * assumed is said in ASSUMPTIONS and printed with every table.
 */

/** How each design is deployed: Tollgate as infra/cdk builds it, the baseline as the article's template. */
export const DEPLOYMENT = {
  /**
   * infra/cdk/tollgate-stack.ts: key-api 512 MB; metering UsageTransport.CONSUMER_MEMORY_MB (1 GB,
   * infra/cdk/constructs/usage-transport.ts: sized for a batch of 10,000); arm64
   * (constructs/tollgate-function.ts). bench/ may not import infra/cdk: keep these equal by hand.
   */
  tollgate: {
    keyApi: { memoryMb: 512, arch: 'arm64' },
    metering: { memoryMb: 1024, arch: 'arm64' },
    /**
     * constructs/tollgate-function.ts: JSON logs, system log level WARN, so Lambda's START, END and
     * REPORT lines are not ingested (test/infra asserts it for every function).
     */
    platformLogLines: false,
  },
  /** The article's Test API: MemorySize 256, python3.8 (x86_64, the default architecture), text logs. */
  baseline: { memoryMb: 256, arch: 'x86_64', platformLogLines: true },
} as const;

/**
 * How bench/proc/cpu.ts measures key-api's EMF bytes per invocation: the real handler and its
 * buffered metrics at this steady rate per warm container, on a simulated clock, for this long
 * (several flush intervals). The count line is written once per flush interval whatever the rate,
 * so fewer requests per container mean more of its bytes per request; the publish latencies (one
 * value per accepted request, in lines of 100) cost the same per request at any rate.
 */
export const EMF_SIMULATION = {
  requestsPerSecondPerContainer: 10,
  seconds: 600,
  /** Publish latencies spread over this range (in-region SQS or Kinesis): their digits fill the lines. */
  publishMs: { min: 5, max: 30 },
} as const;

export const ASSUMPTIONS = {
  /** Keep-alive clients: requests per new connection (drives the ALB's new-connection LCUs). */
  requestsPerConnection: 100,
  /** Kinesis shards sized to this share of the 1,000 records/s per-shard write limit. */
  kinesisShardUtilisation: 0.8,
  /**
   * START, END and REPORT lines Lambda writes per invocation in text format at the default system
   * log level (about 270 bytes, the documented format): the baseline's. Tollgate filters them out.
   */
  lambdaPlatformLogBytes: 270,
  lambdaPlatformLogEvents: 3,
  /** Dedupe marks live the late window plus a day (services/metering/compose.ts), then TTL removes them. */
  markTtlHours: DEFAULT_WINDOW.lateMs / 3_600_000 + 24,
} as const;

export interface Assumptions {
  readonly requestsPerConnection: number;
  readonly kinesisShardUtilisation: number;
  readonly lambdaPlatformLogBytes: number;
  readonly lambdaPlatformLogEvents: number;
  readonly markTtlHours: number;
}

/** What the cost model takes from one benchmark run, per design. */
export interface MeasuredInputs {
  readonly target: Target;
  /** Average bytes through the load balancer per request (request plus response, on the wire). */
  readonly bytesPerRequest: number;
  /** Mean time in the key-check handler, one request at a time (what Lambda bills). */
  readonly handlerMs: number;
  readonly writeUnitsPerRequest: number;
  readonly readUnitsPerRequest: number;
  readonly sqsRequestsPerRequest: number;
  readonly kinesisPayloadUnitsPerRequest: number;
  readonly meteringInvocationsPerRequest: number;
  readonly meteringMs: number;
  readonly meteringBatch: number;
  readonly markItemBytes: number;
  /**
   * What key-api's EMF metrics cost in CloudWatch Logs per invocation on Lambda, in billed bytes
   * (lines plus per-event overhead), amortized over its buffered flushes (Tollgate only; measured
   * by bench/proc/cpu.ts, see EMF_SIMULATION).
   */
  readonly emfLineBytes: number;
  /** Billed bytes of the EMF line metering writes per batch (Tollgate only; see meteringEmfLineBytes). */
  readonly meteringEmfLineBytes: number;
}

/**
 * The EMF line metering writes after every batch, in billed bytes (the line plus CloudWatch's
 * per-event overhead). Metering publishes per invocation: it runs once per batch, and its UsageLag
 * feeds an alarm, so buffering would save little and delay the alarm. The line is rebuilt with
 * Powertools from the metrics consumeBatch records for a batch without failures, each with a value
 * of the batch's size (the digits are what vary).
 */
export function meteringEmfLineBytes(batch: number, prices: Prices = PRICES): number {
  const value = Math.max(1, Math.round(batch));
  const key = `${value}:${prices.cloudWatchLogs.eventOverheadBytes}`;
  const known = emfLineBytesCache.get(key);
  if (known !== undefined) return known;
  const bytes = buildMeteringEmfLineBytes(value, prices);
  emfLineBytesCache.set(key, bytes);
  return bytes;
}
const emfLineBytesCache = new Map<string, number>();

function buildMeteringEmfLineBytes(value: number, prices: Prices): number {
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAMES.metering });
  for (const name of Object.values(MeteringMetric)) {
    if (name === MeteringMetric.aggregatesFailed) continue;
    const unit = name === MeteringMetric.usageLag ? MetricUnit.Milliseconds : MetricUnit.Count;
    metrics.addMetric(name, unit, value);
  }
  const line = JSON.stringify(metrics.serializeMetrics());
  metrics.clearMetrics();
  return Buffer.byteLength(line) + prices.cloudWatchLogs.eventOverheadBytes;
}

/**
 * Metering's per-event figures measured at one steady rate (the benchmark's paced runs: events
 * straight to the transport, the local stack's event source settings, the real handler).
 */
export interface MeteringPoint {
  readonly rate: number;
  readonly writeUnitsPerEvent: number;
  readonly writeRequestsPerEvent: number;
  /** SQS: the consumer's billed receives and deletes per event; Kinesis: 0 (reads are in shard-hours). */
  readonly consumerSqsRequestsPerEvent: number;
  readonly invocationsPerEvent: number;
  /** Mean handler time per batch. */
  readonly meteringMs: number;
  readonly batch: number;
}

function pointOf(run: PacedRun): MeteringPoint {
  return {
    rate: run.rate,
    writeUnitsPerEvent: run.perEvent.writeUnits,
    writeRequestsPerEvent: run.perEvent.writeRequests,
    consumerSqsRequestsPerEvent: run.perEvent.consumerTransportRequests,
    invocationsPerEvent: run.perEvent.meteringInvocations,
    meteringMs: run.metering.durationMs.mean,
    batch: run.metering.avgBatch,
  };
}

/** The paced runs of one transport as cost inputs, lowest rate first (empty for results without them). */
export function meteringPoints(results: BenchResults, transport: Transport): MeteringPoint[] {
  return (results.paced?.[transport] ?? [])
    .filter((run) => run.events > 0)
    .map(pointOf)
    .sort((a, b) => a.rate - b.rate);
}

/**
 * Metering's figures at `rps`: the paced run at that rate, or between the two nearest rates
 * interpolated on a log scale of the rate; outside the measured rates, the nearest one (below the
 * lowest rate batches are smaller still, so this is a floor there).
 */
export function meteringAt(
  points: readonly MeteringPoint[],
  rps: number,
): (MeteringPoint & { readonly interpolated: boolean }) | undefined {
  const first = points[0];
  const last = points.at(-1);
  if (!first || !last) return undefined;
  if (rps <= first.rate) return { ...first, interpolated: rps !== first.rate };
  if (rps >= last.rate) return { ...last, interpolated: rps !== last.rate };
  const hi = points.findIndex((p) => p.rate >= rps);
  const b = points[hi] as MeteringPoint;
  const a = points[hi - 1] as MeteringPoint;
  if (b.rate === rps) return { ...b, interpolated: false };
  const f = Math.log(rps / a.rate) / Math.log(b.rate / a.rate);
  const mix = (x: number, y: number) => x + (y - x) * f;
  return {
    rate: rps,
    writeUnitsPerEvent: mix(a.writeUnitsPerEvent, b.writeUnitsPerEvent),
    writeRequestsPerEvent: mix(a.writeRequestsPerEvent, b.writeRequestsPerEvent),
    consumerSqsRequestsPerEvent: mix(a.consumerSqsRequestsPerEvent, b.consumerSqsRequestsPerEvent),
    invocationsPerEvent: mix(a.invocationsPerEvent, b.invocationsPerEvent),
    meteringMs: mix(a.meteringMs, b.meteringMs),
    batch: mix(a.batch, b.batch),
    interpolated: true,
  };
}

/** key-api's own SQS requests per accepted request (one SendMessage, billed per 64 KB), from the write run. */
function producerSqsRequestsPerRequest(results: BenchResults): number {
  const w = results.writes.sqs;
  return w.events > 0 ? (w.transport['SQS.SendMessage.billedRequests'] ?? 0) / w.events : 0;
}

/**
 * What the cost model takes from one run for one design. Without `rps`, every figure is the write
 * run's (§3: a backlog, so full batches). With `rps`, metering's figures (its write units,
 * the consumer's SQS requests, invocations, handler time and batch size) are those measured at that
 * rate by the paced runs (meteringAt), since they depend on how full the batches are; the key check's
 * figures do not depend on the rate.
 */
export function measuredInputs(results: BenchResults, target: Target, rps?: number): MeasuredInputs {
  const base = writeRunInputs(results, target);
  if (rps === undefined || target === 'baseline') return base;
  const at = meteringAt(meteringPoints(results, target), rps);
  if (!at) return base;
  return {
    ...base,
    writeUnitsPerRequest: at.writeUnitsPerEvent,
    sqsRequestsPerRequest:
      target === 'sqs' ? producerSqsRequestsPerRequest(results) + at.consumerSqsRequestsPerEvent : 0,
    meteringInvocationsPerRequest: at.invocationsPerEvent,
    meteringMs: at.meteringMs,
    meteringBatch: at.batch,
    meteringEmfLineBytes: meteringEmfLineBytes(at.batch),
  };
}

/** Every design's inputs at `rps` (see measuredInputs). */
export function inputsAt(results: BenchResults, rps: number): Record<Target, MeasuredInputs> {
  return Object.fromEntries(TARGETS.map((t) => [t, measuredInputs(results, t, rps)])) as Record<
    Target,
    MeasuredInputs
  >;
}

function writeRunInputs(results: BenchResults, target: Target): MeasuredInputs {
  const http = results.http[target];
  const writes = results.writes[target];
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  return {
    target,
    bytesPerRequest: mean(http.runs.map((r) => r.requestBytes + r.responseBytes)),
    handlerMs: http.sequential.handlerMs.mean,
    writeUnitsPerRequest: writes.perEvent.writeUnits,
    readUnitsPerRequest: writes.perEvent.readUnits,
    sqsRequestsPerRequest: writes.perEvent.transportRequests,
    kinesisPayloadUnitsPerRequest: writes.perEvent.payloadUnits,
    meteringInvocationsPerRequest: writes.perEvent.meteringInvocations,
    meteringMs: writes.metering?.durationMs.mean ?? 0,
    meteringBatch: writes.metering?.avgBatch ?? 0,
    markItemBytes: writes.metering?.markItemBytes ?? 0,
    emfLineBytes: target === 'baseline' ? 0 : results.cpu.emfLineBytes,
    meteringEmfLineBytes:
      target === 'baseline' || !writes.metering ? 0 : meteringEmfLineBytes(writes.metering.avgBatch),
  };
}

export interface CostRow {
  readonly component: string;
  /** Monthly USD per design; undefined where the component is not part of that design. */
  readonly cost: Partial<Record<Target, number>>;
}

export interface CostTable {
  readonly rps: number;
  readonly requestsPerMonth: number;
  readonly rows: CostRow[];
  readonly total: Record<Target, number>;
  /** The same totals with API Gateway in front instead of the ALB. */
  readonly totalWithApiGatewayRest: Record<Target, number>;
  readonly totalWithApiGatewayHttp: Record<Target, number>;
  readonly kinesisShards: number;
}

function tiered(tiers: readonly Tier[], requests: number): number {
  let cost = 0;
  let from = 0;
  for (const tier of tiers) {
    const inTier = Math.max(0, Math.min(requests, tier.upTo) - from);
    cost += (inTier / 1e6) * tier.perMillion;
    from = tier.upTo;
    if (requests <= tier.upTo) break;
  }
  return cost;
}

const TARGETS: readonly Target[] = ['baseline', 'sqs', 'kinesis'];

export function kinesisShards(rps: number, prices: Prices = PRICES, assumptions: Assumptions = ASSUMPTIONS) {
  const perShard = prices.kinesis.shardRecordsPerSecond * assumptions.kinesisShardUtilisation;
  return Math.max(1, Math.ceil(rps / perShard));
}

/** Monthly cost of each component at `rps` key checks a second, for the three designs. */
export function costAt(
  inputs: Record<Target, MeasuredInputs>,
  rps: number,
  prices: Prices = PRICES,
  assumptions: Assumptions = ASSUMPTIONS,
): CostTable {
  const hours = prices.hoursPerMonth;
  const seconds = hours * 3600;
  const requests = rps * seconds;
  const per = <T>(f: (m: MeasuredInputs) => T) =>
    Object.fromEntries(TARGETS.map((t) => [t, f(inputs[t])])) as Record<Target, T>;
  const lambdaCost = (invocations: number, ms: number, memoryMb: number, arch: 'arm64' | 'x86_64') =>
    (invocations / 1e6) * prices.lambda.perMillionRequests +
    invocations * (Math.max(1, Math.ceil(ms)) / 1000) * (memoryMb / 1024) * prices.lambda.perGbSecond[arch];
  const lcu = prices.alb.lcu;
  const shards = kinesisShards(rps, prices, assumptions);
  /** Billed bytes per invocation: Lambda's platform lines where they are ingested, plus the EMF bytes. */
  const logBytes = (invocations: number, platformLogLines: boolean, emfBilledBytes: number) =>
    invocations *
    ((platformLogLines
      ? assumptions.lambdaPlatformLogBytes +
        assumptions.lambdaPlatformLogEvents * prices.cloudWatchLogs.eventOverheadBytes
      : 0) +
      emfBilledBytes);

  const rows: CostRow[] = [
    {
      component: 'ALB: hours + LCUs',
      cost: per((m) => {
        const gbPerHour = (rps * m.bytesPerRequest * 3600) / 1e9;
        const lcus = Math.max(
          rps / assumptions.requestsPerConnection / lcu.newConnectionsPerSecond,
          gbPerHour / lcu.lambdaProcessedGbPerHour,
          // One listener rule (the default action): within the free rules.
          0,
        );
        return hours * prices.alb.perHour + lcus * hours * prices.alb.perLcuHour;
      }),
    },
    {
      component: 'key check Lambda: requests + GB-s',
      cost: per((m) => {
        const fn = m.target === 'baseline' ? DEPLOYMENT.baseline : DEPLOYMENT.tollgate.keyApi;
        return lambdaCost(requests, m.handlerMs, fn.memoryMb, fn.arch);
      }),
    },
    {
      component: 'metering Lambda: requests + GB-s',
      cost: {
        sqs: lambdaCost(
          requests * inputs.sqs.meteringInvocationsPerRequest,
          inputs.sqs.meteringMs,
          DEPLOYMENT.tollgate.metering.memoryMb,
          DEPLOYMENT.tollgate.metering.arch,
        ),
        kinesis: lambdaCost(
          requests * inputs.kinesis.meteringInvocationsPerRequest,
          inputs.kinesis.meteringMs,
          DEPLOYMENT.tollgate.metering.memoryMb,
          DEPLOYMENT.tollgate.metering.arch,
        ),
      },
    },
    {
      component: 'SQS: requests',
      cost: { sqs: ((requests * inputs.sqs.sqsRequestsPerRequest) / 1e6) * prices.sqs.perMillionRequests },
    },
    {
      component: `Kinesis: ${shards} shard(s) + PUT units`,
      cost: {
        kinesis:
          shards * hours * prices.kinesis.perShardHour +
          ((requests * inputs.kinesis.kinesisPayloadUnitsPerRequest) / 1e6) *
            prices.kinesis.perMillionPutPayloadUnits,
      },
    },
    {
      component: 'DynamoDB: write units',
      cost: per((m) => ((requests * m.writeUnitsPerRequest) / 1e6) * prices.dynamodb.perMillionWriteUnits),
    },
    {
      component: 'DynamoDB: read units',
      cost: per((m) => ((requests * m.readUnitsPerRequest) / 1e6) * prices.dynamodb.perMillionReadUnits),
    },
    {
      component: 'DynamoDB: dedupe marks stored (+ PITR)',
      cost: per((m) => {
        if (m.markItemBytes === 0) return 0;
        const marks = rps * assumptions.markTtlHours * 3600;
        const gb = (marks * (m.markItemBytes + prices.dynamodb.itemOverheadBytes)) / 1e9;
        return gb * (prices.dynamodb.perGbMonthStorage + prices.dynamodb.perGbMonthPitr);
      }),
    },
    {
      component: 'CloudWatch Logs: Lambda lines + EMF',
      cost: per((m) => {
        const { platformLogLines } = m.target === 'baseline' ? DEPLOYMENT.baseline : DEPLOYMENT.tollgate;
        const keyCheck = logBytes(requests, platformLogLines, m.emfLineBytes);
        const metering = logBytes(
          requests * m.meteringInvocationsPerRequest,
          platformLogLines,
          m.meteringEmfLineBytes,
        );
        return ((keyCheck + metering) / 1e9) * prices.cloudWatchLogs.perGbIngested;
      }),
    },
  ];
  const total = per((m) => rows.reduce((sum, row) => sum + (row.cost[m.target] ?? 0), 0));
  const alb = rows[0]?.cost as Record<Target, number>;
  const rest = tiered(prices.apiGateway.rest, requests);
  const http = tiered(prices.apiGateway.http, requests);
  return {
    rps,
    requestsPerMonth: requests,
    rows,
    total,
    totalWithApiGatewayRest: per((m) => total[m.target] - alb[m.target] + rest),
    totalWithApiGatewayHttp: per((m) => total[m.target] - alb[m.target] + http),
    kinesisShards: shards,
  };
}

/**
 * The lowest rate (req/s, between `from` and `to`) from which `cheaper` costs less than `other` at
 * every rate up to `to`, found on a fine log grid and refined by bisection; undefined if none.
 */
export function crossover(
  cost: (rps: number) => { cheaper: number; other: number },
  from = 0.01,
  to = 100_000,
): number | undefined {
  const steps = 3000;
  const grid = Array.from({ length: steps + 1 }, (_, i) => from * (to / from) ** (i / steps));
  const cheaperAt = (rps: number) => {
    const c = cost(rps);
    return c.cheaper < c.other;
  };
  let firstOfRun: number | undefined;
  for (let i = 0; i < grid.length; i++) {
    if (cheaperAt(grid[i] as number)) firstOfRun ??= i;
    else firstOfRun = undefined;
  }
  if (firstOfRun === undefined) return undefined;
  if (firstOfRun === 0) return from;
  let lo = grid[firstOfRun - 1] as number;
  let hi = grid[firstOfRun] as number;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (cheaperAt(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

export interface Crossovers {
  /** From this rate on, Tollgate on Kinesis costs less a month than on SQS. */
  readonly kinesisOverSqs: number | undefined;
  /** From this rate on, the ALB costs less than API Gateway in front of the baseline (the article's claim: ~2 req/s). */
  readonly albOverRestApi: number | undefined;
  readonly albOverHttpApi: number | undefined;
}

export function crossovers(
  inputs: (rps: number) => Record<Target, MeasuredInputs>,
  assumptions: Assumptions = ASSUMPTIONS,
): Crossovers {
  const at = (rps: number) => costAt(inputs(rps), rps, PRICES, assumptions);
  return {
    kinesisOverSqs: crossover((rps) => {
      const t = at(rps).total;
      return { cheaper: t.kinesis, other: t.sqs };
    }),
    albOverRestApi: crossover((rps) => {
      const c = at(rps);
      return { cheaper: c.total.baseline, other: c.totalWithApiGatewayRest.baseline };
    }),
    albOverHttpApi: crossover((rps) => {
      const c = at(rps);
      return { cheaper: c.total.baseline, other: c.totalWithApiGatewayHttp.baseline };
    }),
  };
}

// --- formatting --------------------------------------------------------------------------------

export function usd(value: number | undefined): string {
  if (value === undefined) return '—';
  if (value === 0) return '$0';
  if (value >= 100) return `$${Math.round(value).toLocaleString('en-US')}`;
  if (value >= 1) return `$${value.toFixed(2)}`;
  if (value >= 0.01) return `$${value.toFixed(3)}`;
  return '<$0.01';
}

export function rate(rps: number | undefined): string {
  if (rps === undefined) return 'never (0.01 to 100,000 req/s)';
  const rounded = rps >= 10 ? Math.round(rps) : Math.round(rps * 10) / 10;
  return `${rounded.toLocaleString('en-US')} req/s`;
}

/** A Markdown table of one rate's costs. */
export function costTableMarkdown(table: CostTable): string {
  const lines = [
    `**${table.rps.toLocaleString('en-US')} req/s** (${(table.requestsPerMonth / 1e6).toLocaleString('en-US', { maximumFractionDigits: 1 })} M requests a month)`,
    '',
    '| component | baseline (article) | Tollgate, SQS | Tollgate, Kinesis |',
    '| --- | ---: | ---: | ---: |',
    ...table.rows.map((row) => `| ${row.component} | ${TARGETS.map((t) => usd(row.cost[t])).join(' | ')} |`),
    `| **total a month (ALB)** | ${TARGETS.map((t) => `**${usd(table.total[t])}**`).join(' | ')} |`,
    `| total with API Gateway REST instead | ${TARGETS.map((t) => usd(table.totalWithApiGatewayRest[t])).join(' | ')} |`,
    `| total with API Gateway HTTP API instead | ${TARGETS.map((t) => usd(table.totalWithApiGatewayHttp[t])).join(' | ')} |`,
  ];
  return lines.join('\n');
}

/**
 * The measured inputs that do not depend on the rate (the key check's, and the write run's
 * figures for reference: metering's rows there are under a backlog, with full batches; the costs
 * take metering's figures at each rate from meteringPointsMarkdown's table).
 */
export function inputsMarkdown(inputs: Record<Target, MeasuredInputs>): string {
  const f = (v: number, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : '—');
  const rows: Array<[string, (m: MeasuredInputs) => string]> = [
    ['bytes through the ALB per request', (m) => f(m.bytesPerRequest, 0)],
    ['key check handler, mean ms (1 request at a time)', (m) => f(m.handlerMs, 2)],
    [
      'DynamoDB write units per request (write run: a backlog, full batches)',
      (m) => f(m.writeUnitsPerRequest),
    ],
    ['DynamoDB read units per request', (m) => f(m.readUnitsPerRequest)],
    [
      'SQS billed requests per request (write run)',
      (m) => (m.target === 'sqs' ? f(m.sqsRequestsPerRequest) : '—'),
    ],
    [
      'Kinesis PUT payload units per request',
      (m) => (m.target === 'kinesis' ? f(m.kinesisPayloadUnitsPerRequest) : '—'),
    ],
    [
      'metering invocations per request (avg batch; write run)',
      (m) =>
        m.target === 'baseline' ? '—' : `${f(m.meteringInvocationsPerRequest, 4)} (${f(m.meteringBatch, 1)})`,
    ],
    [
      'metering handler, mean ms per batch (write run)',
      (m) => (m.target === 'baseline' ? '—' : f(m.meteringMs, 1)),
    ],
    ['dedupe mark item, bytes', (m) => (m.target === 'baseline' ? '—' : f(m.markItemBytes, 0))],
    [
      'key check EMF metrics per invocation, billed bytes (amortized)',
      (m) => (m.target === 'baseline' ? '—' : f(m.emfLineBytes, 1)),
    ],
    [
      'metering EMF line per batch, billed bytes',
      (m) => (m.target === 'baseline' ? '—' : f(m.meteringEmfLineBytes, 0)),
    ],
  ];
  return [
    '| measured input | baseline (article) | Tollgate, SQS | Tollgate, Kinesis |',
    '| --- | ---: | ---: | ---: |',
    ...rows.map(([name, value]) => `| ${name} | ${TARGETS.map((t) => value(inputs[t])).join(' | ')} |`),
  ].join('\n');
}

export function assumptionsMarkdown(assumptions: Assumptions = ASSUMPTIONS, prices: Prices = PRICES): string {
  return [
    `- Prices: ${prices.asOf}, ${prices.region}, on-demand, no free tiers (bench/prices.ts names each page). Check them before use.`,
    `- Deployment: Tollgate as infra/cdk builds it (key-api ${DEPLOYMENT.tollgate.keyApi.memoryMb} MB and metering ${DEPLOYMENT.tollgate.metering.memoryMb} MB, ${DEPLOYMENT.tollgate.keyApi.arch}); the baseline as the article's template (${DEPLOYMENT.baseline.memoryMb} MB, ${DEPLOYMENT.baseline.arch}). One ALB (${prices.hoursPerMonth} h a month) either way.`,
    `- ALB LCUs: the larger of new connections (clients keep connections alive for ${assumptions.requestsPerConnection} requests) and processed bytes (measured bytes per request, Lambda targets: ${prices.alb.lcu.lambdaProcessedGbPerHour} GB per LCU-hour); one rule, within the free ones.`,
    `- Kinesis: provisioned shards sized to ${Math.round(assumptions.kinesisShardUtilisation * 100)}% of the 1,000 records/s write limit of a shard; reading (GetRecords) is included in shard-hours.`,
    `- Dedupe marks are stored ${assumptions.markTtlHours} h (late window + a day), priced with PITR; TTL deletion itself is free (and can lag, so this is a floor).`,
    `- CloudWatch Logs, ingestion only, every log event billed with ${prices.cloudWatchLogs.eventOverheadBytes} bytes of overhead. The baseline (text logs) pays ${assumptions.lambdaPlatformLogBytes} bytes of START/END/REPORT per invocation; Tollgate's functions log JSON at system log level WARN (infra/cdk), so Lambda does not send those lines. Tollgate's key checks add their EMF metrics, measured in bytes per invocation amortized over the flushes: the real handler with its buffered metrics (counts summed into one line per ${DEFAULT_METRICS_FLUSH_MS / 1000} s, publish latencies of ${EMF_SIMULATION.publishMs.min}-${EMF_SIMULATION.publishMs.max} ms in lines of 100, failures written at once), every request accepted, ${EMF_SIMULATION.requestsPerSecondPerContainer} req/s per warm container for ${EMF_SIMULATION.seconds} s of simulated time; fewer requests per container mean more count lines per request. Metering writes one EMF line per batch (rebuilt with Powertools from its metric names).`,
    "- Lambda durations are the handlers' own times measured by the benchmark (key check: one request at a time; metering: per batch under load) against the local engines on a shared machine; in-region AWS calls take a few milliseconds, so treat the GB-s part as indicative.",
    "- Metering's figures (its DynamoDB write units, the consumer's SQS requests, invocations, handler time, batch size) depend on how full the batches are, so each rate is priced with the figures measured at that rate by the paced runs (events straight to the transport at 10, 100 and 1,000 a second, the local stack's event source settings: batches of up to 10,000 within a 1 s window); between measured rates they are interpolated on a log scale, outside them the nearest rate's are used (below the lowest rate batches are smaller still, so the figure is a floor there). On AWS the event source mapping cuts batches the same way (same batch size and window, infra/cdk), though its pollers are not the local ones. The key check's figures (reads, bytes, handler time) come from the HTTP and write runs and do not depend on the rate.",
    "- Metering overhead per million requests counts what counting costs apart from checking keys: the article's counter update (its measured write units; it is written in the request, so it has no other part), and Tollgate's metering writes, transport (SQS: key-api's send plus the consumer's receives that returned messages and its deletes; Kinesis: PUT units plus the shards' hours spread over the month's requests), metering Lambda requests and GB-s, and its EMF line per batch. The local SQS poller's empty receives are left out: Lambda's pollers long-poll, a few requests a minute each whatever the traffic.",
  ].join('\n');
}

// --- metering overhead per million requests ---------------------------------------------------

export interface OverheadTable {
  readonly rps: number;
  /** USD per million accepted requests, per component and design (undefined: not part of it). */
  readonly rows: CostRow[];
  readonly perMillion: Record<Target, number>;
  /** The metering figures used, per transport: measured at this rate or interpolated (meteringAt). */
  readonly measured: Partial<Record<Transport, MeteringPoint & { readonly interpolated: boolean }>>;
}

/**
 * What counting the requests costs, per million requests at `rps`, apart from checking the keys:
 * for the article, its counter update in the request (the measured write units; it has no other
 * metering part); for Tollgate, metering's DynamoDB writes, the transport (SQS: key-api's send plus
 * the consumer's receives and deletes; Kinesis: PUT units plus the shards' hours spread over the
 * month's requests), the metering Lambda (invocations and GB-s) and its EMF log line per batch. The
 * metering figures are the paced runs' at this rate (measuredInputs with `rps`).
 */
export function meteringOverhead(
  results: BenchResults,
  rps: number,
  prices: Prices = PRICES,
  assumptions: Assumptions = ASSUMPTIONS,
): OverheadTable {
  const inputs = inputsAt(results, rps);
  const requestsPerMonth = rps * prices.hoursPerMonth * 3600;
  const million = 1e6;
  const fn = DEPLOYMENT.tollgate.metering;
  const tollgate = (f: (m: MeasuredInputs, t: Transport) => number) => ({
    sqs: f(inputs.sqs, 'sqs'),
    kinesis: f(inputs.kinesis, 'kinesis'),
  });
  const rows: CostRow[] = [
    {
      component: 'DynamoDB: write units',
      cost: {
        baseline: inputs.baseline.writeUnitsPerRequest * prices.dynamodb.perMillionWriteUnits,
        ...tollgate((m) => m.writeUnitsPerRequest * prices.dynamodb.perMillionWriteUnits),
      },
    },
    {
      component: 'transport: SQS requests / Kinesis PUT units + shard-hours',
      cost: {
        sqs: inputs.sqs.sqsRequestsPerRequest * prices.sqs.perMillionRequests,
        kinesis:
          inputs.kinesis.kinesisPayloadUnitsPerRequest * prices.kinesis.perMillionPutPayloadUnits +
          ((kinesisShards(rps, prices, assumptions) * prices.hoursPerMonth * prices.kinesis.perShardHour) /
            requestsPerMonth) *
            million,
      },
    },
    {
      component: 'metering Lambda: invocations + GB-s',
      cost: tollgate(
        (m) =>
          m.meteringInvocationsPerRequest *
          million *
          (prices.lambda.perMillionRequests / million +
            (Math.max(1, Math.ceil(m.meteringMs)) / 1000) *
              (fn.memoryMb / 1024) *
              prices.lambda.perGbSecond[fn.arch]),
      ),
    },
    {
      component: 'metering logs: one EMF line per batch',
      cost: tollgate(
        (m) =>
          ((m.meteringInvocationsPerRequest * million * m.meteringEmfLineBytes) / 1e9) *
          prices.cloudWatchLogs.perGbIngested,
      ),
    },
  ];
  const perMillion = Object.fromEntries(
    TARGETS.map((t) => [t, rows.reduce((sum, row) => sum + (row.cost[t] ?? 0), 0)]),
  ) as Record<Target, number>;
  const measured: OverheadTable['measured'] = {};
  for (const t of ['sqs', 'kinesis'] as const) {
    const at = meteringAt(meteringPoints(results, t), rps);
    if (at) measured[t] = at;
  }
  return { rps, rows, perMillion, measured };
}

/** Dollars per million requests: more digits than usd(), these are small. */
export function usdPerMillion(value: number | undefined): string {
  if (value === undefined) return '—';
  if (value === 0) return '$0';
  if (value >= 10) return `$${value.toFixed(2)}`;
  if (value >= 0.01) return `$${value.toFixed(3)}`;
  return `$${value.toFixed(4)}`;
}

/**
 * One table: the overhead per million requests at each rate, per component, the article's beside
 * Tollgate's on each transport.
 */
export function overheadMarkdown(tables: readonly OverheadTable[]): string {
  const header = ['per million requests', 'baseline (article)'];
  const align = ['---', '---:'];
  for (const t of ['sqs', 'kinesis'] as const) {
    for (const table of tables) {
      header.push(`${t === 'sqs' ? 'SQS' : 'Kinesis'} @ ${table.rps.toLocaleString('en-US')}/s`);
      align.push('---:');
    }
  }
  const baselineCell = (pick: (table: OverheadTable) => number | undefined) => {
    const values = [...new Set(tables.map((table) => usdPerMillion(pick(table))))];
    return values.join(' / ');
  };
  const cells = (pick: (table: OverheadTable, t: Transport) => string) =>
    (['sqs', 'kinesis'] as const).flatMap((t) => tables.map((table) => pick(table, t)));
  const rows: string[][] = [
    [
      'measured at (events/s; avg batch)',
      'in the request',
      ...cells((table, t) => {
        const m = table.measured[t];
        return m
          ? `${m.interpolated ? '≈ ' : ''}${Math.round(m.rate).toLocaleString('en-US')}; ${m.batch.toFixed(1)}`
          : '—';
      }),
    ],
    ...(tables[0]?.rows ?? []).map((row, i) => [
      row.component,
      row.cost.baseline === undefined ? '—' : baselineCell((table) => table.rows[i]?.cost.baseline),
      ...cells((table, t) => usdPerMillion(table.rows[i]?.cost[t])),
    ]),
    [
      '**metering overhead per million requests**',
      `**${baselineCell((table) => table.perMillion.baseline)}**`,
      ...cells((table, t) => `**${usdPerMillion(table.perMillion[t])}**`),
    ],
  ];
  return [
    `| ${header.join(' | ')} |`,
    `| ${align.join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** Metering's figures at each measured rate, per transport: what the costs at each rate use. */
export function meteringPointsMarkdown(results: BenchResults): string {
  const columns = (['sqs', 'kinesis'] as const).flatMap((t) =>
    meteringPoints(results, t).map((p) => ({ t, p })),
  );
  const f = (v: number, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : '—');
  const rows: Array<[string, (p: MeteringPoint, t: Transport) => string]> = [
    ['DynamoDB write units per event', (p) => f(p.writeUnitsPerEvent)],
    ['DynamoDB write requests per event', (p) => f(p.writeRequestsPerEvent)],
    [
      "consumer's billed SQS requests per event",
      (p, t) => (t === 'sqs' ? f(p.consumerSqsRequestsPerEvent) : '—'),
    ],
    [
      'metering invocations per event (avg batch)',
      (p) => `${f(p.invocationsPerEvent, 4)} (${f(p.batch, 1)})`,
    ],
    ['metering handler, mean ms per batch', (p) => f(p.meteringMs, 1)],
  ];
  return [
    `| metering at a steady rate (measured) | ${columns.map(({ t, p }) => `${t === 'sqs' ? 'SQS' : 'Kinesis'} @ ${p.rate.toLocaleString('en-US')}/s`).join(' | ')} |`,
    `| --- | ${columns.map(() => '---:').join(' | ')} |`,
    ...rows.map(([name, value]) => `| ${name} | ${columns.map(({ t, p }) => value(p, t)).join(' | ')} |`),
  ].join('\n');
}
