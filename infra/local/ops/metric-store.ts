import {
  AWS_NAMESPACES,
  type AwsResource,
  type MetricDef,
  type Statistic,
} from '../../../contracts/dashboard';
import { METRICS_NAMESPACE } from '../../../contracts/metric-names';
import type { InvocationMetrics } from '../../../services/platform/metrics';

/**
 * The local stack's CloudWatch: what its functions record (their Powertools metrics, handed to
 * each composition instead of EMF lines) and what its stand-ins measure of the AWS metrics (an
 * invocation's duration, a target group's answers, a queue's depth), kept in memory with their
 * time for a bounded while, and the statistics the dashboard's definition asks of them. Nothing
 * is written to disk: a restart starts empty, as a fresh CloudWatch would look to a new stage.
 */

/** How long points are kept: the ops page shows the latest periods, CloudWatch keeps more. */
export const DEFAULT_RETENTION_MS = 60 * 60_000;
/** Per metric, so a flood of one cannot grow the process without bound. */
export const DEFAULT_MAX_POINTS_PER_METRIC = 100_000;

export interface MetricStoreOptions {
  /** @default DEFAULT_RETENTION_MS */
  readonly retentionMs?: number;
  /** @default DEFAULT_MAX_POINTS_PER_METRIC */
  readonly maxPointsPerMetric?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** The identity of a metric: namespace, dimensions and name, as CloudWatch tells metrics apart. */
export type MetricKey = string;

export const serviceMetricKey = (service: string, name: string): MetricKey =>
  `${METRICS_NAMESPACE}|service=${service}|${name}`;

/** A resource's dimensions locally are its role: there is one of each per stack. */
export const awsMetricKey = (resource: AwsResource, name: string): MetricKey =>
  `${AWS_NAMESPACES[resource.type]}|${resource.type}=${'role' in resource ? resource.role : 'main'}|${name}`;

export const metricKeyOf = (def: MetricDef): MetricKey =>
  def.kind === 'service' ? serviceMetricKey(def.service, def.name) : awsMetricKey(def.resource, def.name);

/** One metric's points in time order, oldest dropped from the front without copying each time. */
class Series {
  times: number[] = [];
  values: number[] = [];
  head = 0;

  push(at: number, value: number): void {
    // Time order is what the window search relies on; a clock step back is clamped.
    const last = this.times[this.times.length - 1];
    this.times.push(last !== undefined && at < last ? last : at);
    this.values.push(value);
  }

  dropBefore(cutoff: number, maxPoints: number): void {
    const { times } = this;
    while (
      this.head < times.length &&
      ((times[this.head] ?? 0) < cutoff || times.length - this.head > maxPoints)
    ) {
      this.head += 1;
    }
    // Compact once the dropped part outweighs the kept part: amortised O(1) per point.
    if (this.head > 1024 && this.head * 2 > times.length) {
      this.times = times.slice(this.head);
      this.values = this.values.slice(this.head);
      this.head = 0;
    }
  }

  /** Values with `from <= time < to`. */
  between(from: number, to: number): number[] {
    const start = this.#firstAtOrAfter(from);
    const end = this.#firstAtOrAfter(to);
    return this.values.slice(start, end);
  }

  get size(): number {
    return this.times.length - this.head;
  }

  #firstAtOrAfter(time: number): number {
    let low = this.head;
    let high = this.times.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.times[mid] ?? 0) < time) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

export class MetricStore {
  readonly #series = new Map<MetricKey, Series>();
  readonly #retentionMs: number;
  readonly #maxPoints: number;
  readonly now: () => number;

  constructor(options: MetricStoreOptions = {}) {
    this.#retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    this.#maxPoints = options.maxPointsPerMetric ?? DEFAULT_MAX_POINTS_PER_METRIC;
    this.now = options.now ?? Date.now;
  }

  record(key: MetricKey, value: number, at: number = this.now()): void {
    if (!Number.isFinite(value)) return;
    let series = this.#series.get(key);
    if (!series) {
      series = new Series();
      this.#series.set(key, series);
    }
    series.push(at, value);
    series.dropBefore(at - this.#retentionMs, this.#maxPoints);
  }

  /**
   * What a composition gets instead of Powertools: every metric the service records, kept as it
   * is recorded (Lambda's EMF line per invocation is the same points, later).
   */
  forService(service: string): InvocationMetrics {
    return {
      addMetric: (name, _unit, value) => this.record(serviceMetricKey(service, name), value),
      endInvocation: () => undefined,
    };
  }

  /** The points of `from <= time < to`. */
  values(key: MetricKey, from: number, to: number): number[] {
    return this.#series.get(key)?.between(from, to) ?? [];
  }

  /** How many points are kept of the metric. */
  size(key: MetricKey): number {
    return this.#series.get(key)?.size ?? 0;
  }

  /** The statistic over `from <= time < to`, or undefined without data (CloudWatch draws nothing). */
  statistic(key: MetricKey, statistic: Statistic, from: number, to: number): number | undefined {
    return computeStatistic(this.values(key, from, to), statistic);
  }
}

/** CloudWatch's statistics over raw points; percentiles by nearest rank. */
export function computeStatistic(values: readonly number[], statistic: Statistic): number | undefined {
  if (values.length === 0) return undefined;
  switch (statistic) {
    case 'Sum':
      return values.reduce((sum, value) => sum + value, 0);
    case 'Average':
      return values.reduce((sum, value) => sum + value, 0) / values.length;
    case 'Maximum':
      return values.reduce((max, value) => Math.max(max, value), Number.NEGATIVE_INFINITY);
    case 'p50':
      return percentile(values, 50);
    case 'p99':
      return percentile(values, 99);
  }
}

function percentile(values: readonly number[], p: number): number | undefined {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}
