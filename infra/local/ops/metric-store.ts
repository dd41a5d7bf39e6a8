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

/** How long figures are kept: the ops page shows the latest periods, CloudWatch keeps more. */
export const DEFAULT_RETENTION_MS = 60 * 60_000;
/**
 * Values kept per metric and second for the percentiles (a uniform sample beyond it); counts, sums
 * and maxima stay exact at any rate. Bounds the store under a benchmark's thousands a second.
 */
export const DEFAULT_SAMPLES_PER_SECOND = 64;

export interface MetricStoreOptions {
  /** @default DEFAULT_RETENTION_MS */
  readonly retentionMs?: number;
  /** @default DEFAULT_SAMPLES_PER_SECOND */
  readonly samplesPerSecond?: number;
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

/** One second of a metric: exact count, sum and maximum, and a uniform sample of its values. */
interface Second {
  readonly at: number;
  count: number;
  sum: number;
  max: number;
  readonly samples: number[];
}

/** What a window of a metric holds. */
export interface Aggregate {
  readonly count: number;
  readonly sum: number;
  readonly max: number;
  /** Every value, or a uniform sample of each second's beyond samplesPerSecond. */
  readonly samples: readonly number[];
}

/** One metric's seconds in time order, the oldest dropped from the front. */
class Series {
  seconds: Second[] = [];
  head = 0;

  constructor(readonly samplesPerSecond: number) {}

  add(at: number, value: number): void {
    const last = this.seconds[this.seconds.length - 1];
    // Time order is what the window search relies on; a clock step back joins the latest second.
    const second = Math.floor(at / 1000) * 1000;
    let bucket = last;
    if (!last || second > last.at) {
      bucket = { at: second, count: 0, sum: 0, max: Number.NEGATIVE_INFINITY, samples: [] };
      this.seconds.push(bucket);
    }
    const into = bucket as Second;
    into.count += 1;
    into.sum += value;
    into.max = Math.max(into.max, value);
    if (into.samples.length < this.samplesPerSecond) into.samples.push(value);
    else {
      // Reservoir sampling (Algorithm R): every value of the second equally likely to be kept.
      const slot = Math.floor(Math.random() * into.count);
      if (slot < this.samplesPerSecond) into.samples[slot] = value;
    }
  }

  dropBefore(cutoff: number): void {
    while (this.head < this.seconds.length && (this.seconds[this.head]?.at ?? 0) + 1000 <= cutoff)
      this.head += 1;
    // Compact once the dropped part outweighs the kept part: amortised O(1) per second.
    if (this.head > 256 && this.head * 2 > this.seconds.length) {
      this.seconds = this.seconds.slice(this.head);
      this.head = 0;
    }
  }

  /** The seconds that start in `from <= start < to`. */
  between(from: number, to: number): Aggregate {
    // Seconds are whole: one that straddles `from` belongs to the window before (alarm periods).
    const first = Math.ceil(from / 1000) * 1000;
    let count = 0;
    let sum = 0;
    let max = Number.NEGATIVE_INFINITY;
    const samples: number[] = [];
    for (let i = this.#firstAtOrAfter(first); i < this.seconds.length; i++) {
      const second = this.seconds[i] as Second;
      if (second.at >= to) break;
      count += second.count;
      sum += second.sum;
      max = Math.max(max, second.max);
      samples.push(...second.samples);
    }
    return { count, sum, max, samples };
  }

  get size(): number {
    let count = 0;
    for (let i = this.head; i < this.seconds.length; i++) count += this.seconds[i]?.count ?? 0;
    return count;
  }

  #firstAtOrAfter(time: number): number {
    let low = this.head;
    let high = this.seconds.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((this.seconds[mid]?.at ?? 0) < time) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}

export class MetricStore {
  readonly #series = new Map<MetricKey, Series>();
  readonly #retentionMs: number;
  readonly #samplesPerSecond: number;
  readonly now: () => number;

  constructor(options: MetricStoreOptions = {}) {
    this.#retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    this.#samplesPerSecond = options.samplesPerSecond ?? DEFAULT_SAMPLES_PER_SECOND;
    this.now = options.now ?? Date.now;
  }

  record(key: MetricKey, value: number, at: number = this.now()): void {
    if (!Number.isFinite(value)) return;
    let series = this.#series.get(key);
    if (!series) {
      series = new Series(this.#samplesPerSecond);
      this.#series.set(key, series);
    }
    series.add(at, value);
    series.dropBefore(at - this.#retentionMs);
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

  /** What was recorded in the seconds of `from <= time < to`. */
  window(key: MetricKey, from: number, to: number): Aggregate {
    return (
      this.#series.get(key)?.between(from, to) ?? {
        count: 0,
        sum: 0,
        max: Number.NEGATIVE_INFINITY,
        samples: [],
      }
    );
  }

  /** How many values are kept of the metric (counted, not necessarily sampled). */
  size(key: MetricKey): number {
    return this.#series.get(key)?.size ?? 0;
  }

  /** The statistic over `from <= time < to`, or undefined without data (CloudWatch draws nothing). */
  statistic(key: MetricKey, statistic: Statistic, from: number, to: number): number | undefined {
    return computeStatistic(this.window(key, from, to), statistic);
  }
}

/** CloudWatch's statistics: exact sums, averages and maxima; percentiles by nearest rank of the sample. */
export function computeStatistic(aggregate: Aggregate, statistic: Statistic): number | undefined {
  if (aggregate.count === 0) return undefined;
  switch (statistic) {
    case 'Sum':
      return aggregate.sum;
    case 'Average':
      return aggregate.sum / aggregate.count;
    case 'Maximum':
      return aggregate.max;
    case 'p50':
      return percentile(aggregate.samples, 50);
    case 'p99':
      return percentile(aggregate.samples, 99);
  }
}

function percentile(values: readonly number[], p: number): number | undefined {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}
