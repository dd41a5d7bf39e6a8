import { type BenchResults, TARGETS, type Target, type Transport } from '../lib/types';
import { PRICES, type Prices } from '../prices';
import { ASSUMPTIONS, type Assumptions, DEPLOYMENT } from './deployment';
import { inputsAt, type MeasuredInputs, type MeteringPoint, meteringAt, meteringPoints } from './inputs';
import { type CostRow, kinesisShards } from './monthly';

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
