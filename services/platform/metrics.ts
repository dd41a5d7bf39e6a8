import type { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/** A unit Powertools accepts, e.g. `MetricUnit.Count`. */
export type MetricUnitName = (typeof MetricUnit)[keyof typeof MetricUnit];

/** What services record metrics through; Powertools `Metrics` has this method as well. */
export interface MetricsRecorder {
  addMetric(name: string, unit: MetricUnitName, value: number): unknown;
}

/**
 * Metrics as a handler uses them: recorded during an invocation, handed on at its end. Lambda's
 * composition writes EMF lines (Powertools); a test drains them into totals it asserts on; the
 * local stack, which has no CloudWatch, discards them.
 */
export interface InvocationMetrics extends MetricsRecorder {
  /** Called once at the end of every invocation. */
  endInvocation(): void;
}

/** Powertools' own habit: one EMF line at the end of every invocation. */
export function perInvocationMetrics(metrics: Metrics): InvocationMetrics {
  return {
    addMetric: (name, unit, value) => metrics.addMetric(name, unit, value),
    endInvocation: () => metrics.publishStoredMetrics(),
  };
}

/** For runs without CloudWatch (the local stack): nothing is written. */
export const discardMetrics: InvocationMetrics = {
  addMetric: () => undefined,
  endInvocation: () => undefined,
};

/**
 * For services that record few metrics and rarely (user-api's failures, billing's jobs): each is
 * written as its own EMF line the moment it is counted, so nothing waits for a flush, nothing is lost
 * if the container is shut down, and an alarm on it is never a flush behind.
 */
export function writeAtOnce(metrics: Metrics): MetricsRecorder {
  return {
    addMetric(name, unit, value) {
      metrics.addMetric(name, unit, value);
      metrics.publishStoredMetrics();
    },
  };
}
