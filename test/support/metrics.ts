import { Metrics } from '@aws-lambda-powertools/metrics';
import { METRICS_NAMESPACE } from '../../contracts/metric-names';
import type { InvocationMetrics } from '../../services/platform/metrics';

/** Metric name → sum of every value stored, across drains. */
export type MetricTotals = Map<string, number>;

/**
 * Moves what a Powertools Metrics instance has stored (as it would emit it: `serializeMetrics()`)
 * into running totals and clears it. Draining after every invocation keeps each metric under
 * Powertools' 100-values auto-flush, so nothing is printed and nothing is lost.
 */
export function drainMetrics(metrics: Metrics, totals: MetricTotals): MetricTotals {
  if (!metrics.hasStoredMetrics()) return totals;
  const emf = metrics.serializeMetrics();
  for (const definition of emf._aws.CloudWatchMetrics[0]?.Metrics ?? []) {
    const value = emf[definition.Name];
    const values = Array.isArray(value) ? (value as number[]) : [Number(value)];
    totals.set(definition.Name, (totals.get(definition.Name) ?? 0) + values.reduce((a, b) => a + b, 0));
  }
  metrics.clearMetrics();
  return totals;
}

/**
 * A composed handler's metrics for a test: recorded by Powertools (the deployed namespace and
 * service), and at the end of every invocation drained into `totals`, which the test asserts on.
 */
export function drainingMetrics(serviceName: string, totals: MetricTotals): InvocationMetrics {
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName });
  return {
    addMetric: (name, unit, value) => metrics.addMetric(name, unit, value),
    endInvocation: () => {
      drainMetrics(metrics, totals);
    },
  };
}
