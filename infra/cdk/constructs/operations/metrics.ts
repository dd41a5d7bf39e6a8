import { Duration } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { METRICS_NAMESPACE, MeteringMetric, SERVICE_NAMES } from '../../../../contracts/metric-names';
import type { DataTables } from '../data-tables';
import type { KeyApiEndpoint } from '../key-api-endpoint';
import type { TollgateFunction } from '../tollgate-function';
import type { UsageTransport } from '../usage-transport';

/** Every widget's and alarm's period. */
export const PERIOD = Duration.minutes(5);

/** What the dashboard and the alarms watch. */
export interface MonitoredResources {
  /** Part of the dashboard, alarm and topic names. */
  readonly stage: string;
  readonly keyApi: TollgateFunction;
  readonly metering: TollgateFunction;
  readonly userApi: TollgateFunction;
  readonly authTriggers: TollgateFunction;
  /**
   * The owner API behind the gate: its Lambda errors and throttles are charted with the others, its
   * target group's 4xx/5xx with the load balancer's answers and its 5xx rate alarmed like key-api's,
   * and its gate's failure metrics (`InternalErrors`, `UsagePublishFailures`, `UnmeteredRequests`,
   * under its own service name) charted and alarmed, and the requests its plans refused charted.
   */
  readonly ownerApi: TollgateFunction;
  readonly usageTransport: UsageTransport;
  readonly endpoint: KeyApiEndpoint;
  readonly tables: DataTables;
  /** Billing with Stripe, when deployed (constructs/billing.ts): its figures charted and alarmed. */
  readonly billing?: BilledResources;
}

/** The billing jobs' two functions; both publish under the service `billing`. */
export interface BilledResources {
  readonly webhook: TollgateFunction;
  readonly schedule: TollgateFunction;
}

/**
 * A metric a Tollgate service publishes with Powertools (namespace METRICS_NAMESPACE, dimension
 * `service`), as plain data: the same description wherever the metric is shown.
 */
export interface ServiceMetric {
  readonly service: string;
  /** From contracts/metric-names.ts. */
  readonly name: string;
  /** @default cw.Stats.SUM */
  readonly statistic?: string;
  /** @default - none: an alarm on an unlabelled metric stays a plain metric alarm, not metric math */
  readonly label?: string;
}

/** Metric math over service metrics, e.g. the key cache's hit rate. */
export interface ServiceMetricMath {
  readonly expression: string;
  readonly using: Readonly<Record<string, ServiceMetric>>;
  /** @default - none */
  readonly label?: string;
}

/**
 * What a widget shows or an alarm watches: a service's own metric (or math over them), described
 * as data, or an AWS metric of one of the stack's resources (Lambda, ALB, SQS, Kinesis, DynamoDB).
 */
export type MetricSpec = ServiceMetric | ServiceMetricMath | cw.IMetric;

export type ServiceMetricOptions = Pick<ServiceMetric, 'statistic' | 'label'>;

/** A service's metrics by name, e.g. `keyApi(KeyApiMetric.cacheHits, { label: 'hits' })`. */
export const metricsOf =
  (service: string) =>
  (name: string, options: ServiceMetricOptions = {}): ServiceMetric => ({ service, name, ...options });

export const keyApiMetric = metricsOf(SERVICE_NAMES.keyApi);
export const meteringMetric = metricsOf(SERVICE_NAMES.metering);
export const userApiMetric = metricsOf(SERVICE_NAMES.userApi);
export const billingMetric = metricsOf(SERVICE_NAMES.billing);

const isAwsMetric = (spec: MetricSpec): spec is cw.IMetric => 'toMetricConfig' in spec;
const isMath = (spec: ServiceMetric | ServiceMetricMath): spec is ServiceMetricMath => 'expression' in spec;
const labelled = (label: string | undefined) => (label !== undefined ? { label } : {});

/** A metric description as CloudWatch takes it. */
export function renderMetric(spec: MetricSpec): cw.IMetric {
  if (isAwsMetric(spec)) return spec;
  if (isMath(spec)) {
    return new cw.MathExpression({
      expression: spec.expression,
      usingMetrics: Object.fromEntries(
        Object.entries(spec.using).map(([name, metric]) => [name, renderMetric(metric)]),
      ),
      ...labelled(spec.label),
      period: PERIOD,
    });
  }
  return new cw.Metric({
    namespace: METRICS_NAMESPACE,
    metricName: spec.name,
    dimensionsMap: { service: spec.service },
    statistic: spec.statistic ?? cw.Stats.SUM,
    period: PERIOD,
    ...labelled(spec.label),
  });
}

// --- metrics both the dashboard and the alarms show ----------------------------------------------

export const deadLetterDepth = ({ usageTransport }: MonitoredResources): cw.IMetric =>
  usageTransport.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
    period: PERIOD,
    statistic: cw.Stats.MAXIMUM,
    label: 'dead letters',
  });

/** Oldest usage event still waiting: seconds on SQS, milliseconds (IteratorAge) on Kinesis. */
export const usageEventAge = ({ usageTransport, metering }: MonitoredResources): cw.IMetric =>
  usageTransport.queue
    ? usageTransport.queue.metricApproximateAgeOfOldestMessage({
        period: PERIOD,
        statistic: cw.Stats.MAXIMUM,
        label: 'age of oldest message (s)',
      })
    : metering.function.metric('IteratorAge', {
        period: PERIOD,
        statistic: cw.Stats.MAXIMUM,
        label: 'iterator age (ms)',
      });

export const usageLag = (statistic: string): ServiceMetric =>
  meteringMetric(MeteringMetric.usageLag, { statistic, label: `usage lag ${statistic} (ms)` });

/** The gate counts under the service name of the function it runs in, with key-api's metric names. */
export const ownerApiMetricOf = ({ ownerApi }: MonitoredResources) => metricsOf(ownerApi.service);

/**
 * Per target group, so the owner API's traffic neither dilutes nor inflates key-api's rate. The
 * load balancer's own 5xx (HTTPCode_ELB_5XX_Count) exist only per load balancer; what of them a
 * Lambda target causes (a failed or malformed invocation: 502) is LambdaUserError or
 * LambdaInternalError, per target group.
 */
export const fiveXxRate = (group: elbv2.ApplicationTargetGroup, service: string): cw.IMetric =>
  new cw.MathExpression({
    expression: 'IF(requests > 0, 100 * (target5xx + userErrors + internalErrors) / requests, 0)',
    usingMetrics: {
      requests: group.metrics.requestCount({ period: PERIOD, statistic: cw.Stats.SUM }),
      target5xx: group.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, { period: PERIOD }),
      userErrors: group.metrics.custom('LambdaUserError', { period: PERIOD, statistic: cw.Stats.SUM }),
      internalErrors: group.metrics.custom('LambdaInternalError', {
        period: PERIOD,
        statistic: cw.Stats.SUM,
      }),
    },
    label: `${service} 5xx (%)`,
    period: PERIOD,
  });
