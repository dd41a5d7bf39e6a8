import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { DEFAULT_METRICS_FLUSH_MS } from '../../contracts/config';
import { type Clock, systemClock } from '../platform/clock';
import type { InvocationMetrics, MetricUnitName } from '../platform/metrics';

/** EMF takes at most 100 values of one metric in one line; Powertools starts a new line past that. */
const MAX_VALUES_PER_LINE = 100;

export interface BufferedMetricsOptions {
  /** Writes the EMF lines: its namespace and `service` dimension apply to everything buffered here. */
  readonly metrics: Metrics;
  /**
   * Longest time a routine metric waits in the buffer, counted from the first one recorded after a
   * flush. 0 writes at the end of every invocation that recorded anything (Powertools' own habit).
   * @default DEFAULT_METRICS_FLUSH_MS
   */
  readonly flushIntervalMs?: number;
  /**
   * Metrics written at the end of the invocation that recorded them, with everything buffered so
   * far: failures, which alarms and the on-call person must see without a wait.
   * @default - none
   */
  readonly flushAtOnce?: Iterable<string>;
  /** @default systemClock */
  readonly clock?: Clock;
}

/**
 * Metrics kept across warm invocations and written as one EMF line once per flush interval (sooner
 * for a failure or a full distribution, below), instead of one line per invocation.
 *
 * Why the buffer is ours and not Powertools': Powertools `Metrics` is built to flush once per
 * invocation (`publishStoredMetrics()` after each, or its middleware), and its store may even be
 * scoped to one invocation (when an environment runs several invocations at once). One line of
 * ~360 bytes per request made CloudWatch Logs ingestion grow with traffic like a per-request fee
 * (BENCHMARKS.md, cost model). So the buffer lives here, and Powertools is handed its contents only
 * at flush time, in one synchronous step, to write the EMF line as it always did.
 *
 * What is kept:
 * - `MetricUnit.Count` metrics are **summed**: one value per metric per line. Record only real counts
 *   with that unit: their Sum is unchanged, but SampleCount and Average now describe flushes, not
 *   requests.
 * - Any other unit (latencies) is a distribution: every value is kept, as CloudWatch needs them for
 *   percentiles. A distribution holding 100 values (a full EMF line) is written at the end of that
 *   invocation, which bounds memory and line size.
 *
 * The trade-off: a container that is shut down (Lambda sends no signal to a function without
 * extensions) takes its unwritten routine metrics with it: at most one flush interval of them.
 * Metrics named in `flushAtOnce` are never delayed. A line is stamped with the time of the first
 * metric it holds (so a window written late, after the container sat idle, still lands in its own
 * minute), or with the time of the failure when a failure metric forced it out.
 */
export class BufferedMetrics implements InvocationMetrics {
  readonly #metrics: Metrics;
  readonly #intervalMs: number;
  readonly #flushAtOnce: ReadonlySet<string>;
  readonly #clock: Clock;
  readonly #counts = new Map<string, number>();
  readonly #distributions = new Map<string, { unit: MetricUnitName; values: number[] }>();
  /** When the first metric since the last flush was recorded; undefined while the buffer is empty. */
  #windowStart: number | undefined;
  #failureAt: number | undefined;
  #full = false;

  constructor(options: BufferedMetricsOptions) {
    const intervalMs = options.flushIntervalMs ?? DEFAULT_METRICS_FLUSH_MS;
    if (!Number.isFinite(intervalMs) || intervalMs < 0) {
      throw new RangeError(`flushIntervalMs must be a finite number ≥ 0, not ${intervalMs}`);
    }
    this.#metrics = options.metrics;
    this.#intervalMs = intervalMs;
    this.#flushAtOnce = new Set(options.flushAtOnce ?? []);
    this.#clock = options.clock ?? systemClock;
  }

  /**
   * Buffers one value. Checked here, not at flush time, so a bad value fails the call that made it
   * rather than a later invocation.
   */
  addMetric(name: string, unit: MetricUnitName, value: number): this {
    if (name.length < 1 || name.length > 255) throw new RangeError(`invalid metric name "${name}"`);
    if (!Number.isFinite(value)) throw new RangeError(`metric ${name}: ${value} is not a finite number`);
    if (!VALID_UNITS.has(unit)) throw new RangeError(`metric ${name}: unknown unit ${unit}`);
    const now = this.#clock.now().getTime();
    this.#windowStart ??= now;
    if (unit === MetricUnit.Count) {
      if (this.#distributions.has(name)) throw unitClash(name, unit, this.#distributions.get(name)?.unit);
      this.#counts.set(name, (this.#counts.get(name) ?? 0) + value);
    } else {
      if (this.#counts.has(name)) throw unitClash(name, unit, MetricUnit.Count);
      const distribution = this.#distributions.get(name) ?? { unit, values: [] };
      if (distribution.unit !== unit) throw unitClash(name, unit, distribution.unit);
      distribution.values.push(value);
      this.#distributions.set(name, distribution);
      if (distribution.values.length >= MAX_VALUES_PER_LINE) this.#full = true;
    }
    if (this.#flushAtOnce.has(name)) this.#failureAt ??= now;
    return this;
  }

  endInvocation(): void {
    this.publishIfDue();
  }

  /**
   * Call at the end of every invocation: writes the buffer if it holds a failure metric or a full
   * distribution, or if its oldest metric has waited the flush interval.
   * @returns whether anything was written
   */
  publishIfDue(): boolean {
    if (this.#windowStart === undefined) return false;
    const due =
      this.#failureAt !== undefined ||
      this.#full ||
      this.#clock.now().getTime() - this.#windowStart >= this.#intervalMs;
    if (due) this.flush();
    return due;
  }

  /** Writes everything buffered now: one EMF line (another per 100 values of a distribution). */
  flush(): void {
    const windowStart = this.#windowStart;
    if (windowStart === undefined) return;
    const metrics = this.#metrics;
    const counts = [...this.#counts];
    const distributions = [...this.#distributions];
    const stamp = this.#failureAt ?? windowStart;
    this.#counts.clear();
    this.#distributions.clear();
    this.#windowStart = undefined;
    this.#failureAt = undefined;
    this.#full = false;

    metrics.setTimestamp(stamp);
    for (const [name, sum] of counts) metrics.addMetric(name, MetricUnit.Count, sum);
    for (const [name, { unit, values }] of distributions) {
      for (const value of values) metrics.addMetric(name, unit, value);
    }
    // Powertools writes a line by itself when a metric reaches 100 values; it warns when asked to
    // publish an empty store.
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
}

const VALID_UNITS: ReadonlySet<string> = new Set(Object.values(MetricUnit));

const unitClash = (name: string, unit: string, earlier: string | undefined) =>
  new Error(`metric ${name} recorded as ${unit}, but it was recorded as ${earlier} before`);
