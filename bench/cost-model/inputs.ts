import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRICS_NAMESPACE, MeteringMetric, SERVICE_NAMES } from '../../contracts/metric-names';
import { type BenchResults, type PacedRun, TARGETS, type Target, type Transport } from '../lib/types';
import { PRICES, type Prices } from '../prices';

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
