import { TARGETS, type Target } from '../lib/types';
import { PRICES, type Prices, type Tier } from '../prices';
import { ASSUMPTIONS, type Assumptions, DEPLOYMENT } from './deployment';
import type { MeasuredInputs } from './inputs';

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

export function kinesisShards(rps: number, prices: Prices = PRICES, assumptions: Assumptions = ASSUMPTIONS) {
  const perShard = prices.kinesis.shardRecordsPerSecond * assumptions.kinesisShardUtilisation;
  return Math.max(1, Math.ceil(rps / perShard));
}

/** What every cost row of one rate is computed from. */
interface Month {
  readonly inputs: Record<Target, MeasuredInputs>;
  readonly rps: number;
  readonly prices: Prices;
  readonly assumptions: Assumptions;
  readonly hours: number;
  /** Requests a month at `rps`. */
  readonly requests: number;
}

const perTarget = <T>(month: Month, f: (m: MeasuredInputs) => T) =>
  Object.fromEntries(TARGETS.map((t) => [t, f(month.inputs[t])])) as Record<Target, T>;

function lambdaCost(
  prices: Prices,
  invocations: number,
  ms: number,
  memoryMb: number,
  arch: 'arm64' | 'x86_64',
) {
  return (
    (invocations / 1e6) * prices.lambda.perMillionRequests +
    invocations * (Math.max(1, Math.ceil(ms)) / 1000) * (memoryMb / 1024) * prices.lambda.perGbSecond[arch]
  );
}

function albRow(month: Month): CostRow {
  const { rps, prices, assumptions, hours } = month;
  const lcu = prices.alb.lcu;
  return {
    component: 'ALB: hours + LCUs',
    cost: perTarget(month, (m) => {
      const gbPerHour = (rps * m.bytesPerRequest * 3600) / 1e9;
      const lcus = Math.max(
        rps / assumptions.requestsPerConnection / lcu.newConnectionsPerSecond,
        gbPerHour / lcu.lambdaProcessedGbPerHour,
        // One listener rule (the default action): within the free rules.
        0,
      );
      return hours * prices.alb.perHour + lcus * hours * prices.alb.perLcuHour;
    }),
  };
}

function lambdaRows(month: Month): CostRow[] {
  const { inputs, prices, requests } = month;
  const metering = (t: 'sqs' | 'kinesis') =>
    lambdaCost(
      prices,
      requests * inputs[t].meteringInvocationsPerRequest,
      inputs[t].meteringMs,
      DEPLOYMENT.tollgate.metering.memoryMb,
      DEPLOYMENT.tollgate.metering.arch,
    );
  return [
    {
      component: 'key check Lambda: requests + GB-s',
      cost: perTarget(month, (m) => {
        const fn = m.target === 'baseline' ? DEPLOYMENT.baseline : DEPLOYMENT.tollgate.keyApi;
        return lambdaCost(prices, requests, m.handlerMs, fn.memoryMb, fn.arch);
      }),
    },
    {
      component: 'metering Lambda: requests + GB-s',
      cost: { sqs: metering('sqs'), kinesis: metering('kinesis') },
    },
  ];
}

function transportRows({ inputs, prices, hours, requests }: Month, shards: number): CostRow[] {
  return [
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
  ];
}

function dynamoRows(month: Month): CostRow[] {
  const { rps, prices, assumptions, requests } = month;
  return [
    {
      component: 'DynamoDB: write units',
      cost: perTarget(
        month,
        (m) => ((requests * m.writeUnitsPerRequest) / 1e6) * prices.dynamodb.perMillionWriteUnits,
      ),
    },
    {
      component: 'DynamoDB: read units',
      cost: perTarget(
        month,
        (m) => ((requests * m.readUnitsPerRequest) / 1e6) * prices.dynamodb.perMillionReadUnits,
      ),
    },
    {
      component: 'DynamoDB: dedupe marks stored (+ PITR)',
      cost: perTarget(month, (m) => {
        if (m.markItemBytes === 0) return 0;
        const marks = rps * assumptions.markTtlHours * 3600;
        const gb = (marks * (m.markItemBytes + prices.dynamodb.itemOverheadBytes)) / 1e9;
        return gb * (prices.dynamodb.perGbMonthStorage + prices.dynamodb.perGbMonthPitr);
      }),
    },
  ];
}

function logsRow(month: Month): CostRow {
  const { prices, assumptions, requests } = month;
  /** Billed bytes per invocation: Lambda's platform lines where they are ingested, plus the EMF bytes. */
  const logBytes = (invocations: number, platformLogLines: boolean, emfBilledBytes: number) =>
    invocations *
    ((platformLogLines
      ? assumptions.lambdaPlatformLogBytes +
        assumptions.lambdaPlatformLogEvents * prices.cloudWatchLogs.eventOverheadBytes
      : 0) +
      emfBilledBytes);
  return {
    component: 'CloudWatch Logs: Lambda lines + EMF',
    cost: perTarget(month, (m) => {
      const { platformLogLines } = m.target === 'baseline' ? DEPLOYMENT.baseline : DEPLOYMENT.tollgate;
      const keyCheck = logBytes(requests, platformLogLines, m.emfLineBytes);
      const metering = logBytes(
        requests * m.meteringInvocationsPerRequest,
        platformLogLines,
        m.meteringEmfLineBytes,
      );
      return ((keyCheck + metering) / 1e9) * prices.cloudWatchLogs.perGbIngested;
    }),
  };
}

/** Monthly cost of each component at `rps` key checks a second, for the three designs. */
export function costAt(
  inputs: Record<Target, MeasuredInputs>,
  rps: number,
  prices: Prices = PRICES,
  assumptions: Assumptions = ASSUMPTIONS,
): CostTable {
  const hours = prices.hoursPerMonth;
  const month: Month = { inputs, rps, prices, assumptions, hours, requests: rps * (hours * 3600) };
  const { requests } = month;
  const shards = kinesisShards(rps, prices, assumptions);
  const alb = albRow(month);
  const rows: CostRow[] = [
    alb,
    ...lambdaRows(month),
    ...transportRows(month, shards),
    ...dynamoRows(month),
    logsRow(month),
  ];
  const per = <T>(f: (m: MeasuredInputs) => T) => perTarget(month, f);
  const total = per((m) => rows.reduce((sum, row) => sum + (row.cost[m.target] ?? 0), 0));
  const albCost = alb.cost as Record<Target, number>;
  const rest = tiered(prices.apiGateway.rest, requests);
  const http = tiered(prices.apiGateway.http, requests);
  return {
    rps,
    requestsPerMonth: requests,
    rows,
    total,
    totalWithApiGatewayRest: per((m) => total[m.target] - albCost[m.target] + rest),
    totalWithApiGatewayHttp: per((m) => total[m.target] - albCost[m.target] + http),
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
