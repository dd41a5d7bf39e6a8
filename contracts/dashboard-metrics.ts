import { METRICS_NAMESPACE, SERVICE_NAMES } from './metric-names';
import type { Transport } from './transport';

/**
 * The vocabulary of the operations dashboard's definition (contracts/dashboard.ts): metrics,
 * statistics and the stack's resources, as plain data. The CDK construct turns a metric into a
 * CloudWatch metric of the named resource; the local ops page reads the same metric from what the
 * local stack recorded. Nothing here knows CDK or Node.js.
 */

/** Every widget's and alarm's period: five minutes. */
export const DASHBOARD_PERIOD_SECONDS = 300;

/** The statistics the dashboard uses, spelled as CloudWatch spells them. */
export const STATISTICS = ['Sum', 'Average', 'Maximum', 'p50', 'p99'] as const;
export type Statistic = (typeof STATISTICS)[number];

/** The stack's functions, by what they do (the CDK construct maps each to its function). */
export type FunctionRole =
  | 'keyApi'
  | 'metering'
  | 'userApi'
  | 'authTriggers'
  | 'ownerApi'
  | 'billingWebhook'
  | 'billingSchedule';

export type TableRole = 'accounts' | 'keys' | 'usage' | 'plans';

/** A resource of the stack whose AWS metrics a widget shows; its dimensions are the resource's. */
export type AwsResource =
  | { readonly type: 'function'; readonly role: FunctionRole }
  | { readonly type: 'queue'; readonly role: 'usage' | 'deadLetter' }
  | { readonly type: 'stream'; readonly role: 'usage' }
  | { readonly type: 'loadBalancer' }
  | { readonly type: 'targetGroup'; readonly role: 'keyApi' | 'ownerApi' }
  | { readonly type: 'table'; readonly role: TableRole };

/** The CloudWatch namespace of each kind of resource. */
export const AWS_NAMESPACES: Readonly<Record<AwsResource['type'], string>> = {
  function: 'AWS/Lambda',
  queue: 'AWS/SQS',
  stream: 'AWS/Kinesis',
  loadBalancer: 'AWS/ApplicationELB',
  targetGroup: 'AWS/ApplicationELB',
  table: 'AWS/DynamoDB',
};

/** A metric a Tollgate service publishes (Powertools: namespace `Tollgate`, dimension `service`). */
export interface ServiceMetricDef {
  readonly kind: 'service';
  readonly namespace: typeof METRICS_NAMESPACE;
  /** The `service` dimension. */
  readonly service: string;
  /** From contracts/metric-names.ts. */
  readonly name: string;
  readonly statistic: Statistic;
  /** @default - none: CloudWatch names the line; an alarm on it stays a plain metric alarm */
  readonly label?: string;
}

/** An AWS metric of one of the stack's resources (Lambda, ALB, SQS, Kinesis, DynamoDB). */
export interface AwsMetricDef {
  readonly kind: 'aws';
  readonly namespace: string;
  readonly resource: AwsResource;
  readonly name: string;
  readonly statistic: Statistic;
  /** @default - none */
  readonly label?: string;
}

export type MetricDef = ServiceMetricDef | AwsMetricDef;

/**
 * Metric math (CloudWatch's syntax: + - * /, parentheses, comparisons and `IF(c, a, b)`) over
 * metrics named by `using`.
 */
export interface MathDef {
  readonly kind: 'math';
  readonly expression: string;
  readonly using: Readonly<Record<string, MetricDef>>;
  /** @default - none */
  readonly label?: string;
}

/** One line of a graph, or what an alarm watches. */
export type SeriesDef = MetricDef | MathDef;

/** What the definition depends on: the deployment's shape, never its resources. */
export interface DeploymentShape {
  /** Part of the dashboard, alarm and topic names. */
  readonly stage: string;
  readonly transport: Transport;
  /** The owner API's service name (its gate's `service` dimension). @default 'example-api' */
  readonly ownerApiService?: string;
  /** Whether the endpoint routes paths to the owner API through a target group of its own. */
  readonly ownerApiTargetGroup: boolean;
  /** Whether billing with Stripe is deployed (its row and alarms). */
  readonly billing: boolean;
  /** @default DEFAULT_ALARM_LIMITS */
  readonly limits?: Partial<AlarmLimits>;
}

/** How much is too much (the CDK construct's props set them; DEFAULT_ALARM_LIMITS otherwise). */
export interface AlarmLimits {
  /** Oldest usage event still waiting (SQS message age or Kinesis iterator age), milliseconds. */
  readonly maxEventAgeMs: number;
  /** Share of a target group's answers that are 5xx, percent. */
  readonly max5xxPercent: number;
  /** p99 of event time → counted, milliseconds. */
  readonly maxUsageLagMs: number;
}

export const DEFAULT_ALARM_LIMITS: AlarmLimits = {
  maxEventAgeMs: 5 * 60_000,
  max5xxPercent: 1,
  maxUsageLagMs: 2 * 60_000,
};

export const ownerApiServiceOf = (shape: DeploymentShape): string =>
  shape.ownerApiService ?? SERVICE_NAMES.exampleApi;

export interface MetricOptions {
  /** @default 'Sum' */
  readonly statistic?: Statistic;
  readonly label?: string;
}

const labelled = (label: string | undefined) => (label !== undefined ? { label } : {});

/** A service's metrics by name, e.g. `keyApiMetric(KeyApiMetric.cacheHits, { label: 'hits' })`. */
export const serviceMetric =
  (service: string) =>
  (name: string, options: MetricOptions = {}): ServiceMetricDef => ({
    kind: 'service',
    namespace: METRICS_NAMESPACE,
    service,
    name,
    statistic: options.statistic ?? 'Sum',
    ...labelled(options.label),
  });

export const keyApiMetric = serviceMetric(SERVICE_NAMES.keyApi);
export const meteringMetric = serviceMetric(SERVICE_NAMES.metering);
export const userApiMetric = serviceMetric(SERVICE_NAMES.userApi);
export const billingMetric = serviceMetric(SERVICE_NAMES.billing);

/** An AWS metric of a resource, e.g. `awsMetric({ type: 'function', role: 'keyApi' }, 'Errors')`. */
export function awsMetric(resource: AwsResource, name: string, options: MetricOptions = {}): AwsMetricDef {
  return {
    kind: 'aws',
    namespace: AWS_NAMESPACES[resource.type],
    resource,
    name,
    statistic: options.statistic ?? 'Sum',
    ...labelled(options.label),
  };
}

export const functionMetric = (role: FunctionRole, name: string, options?: MetricOptions) =>
  awsMetric({ type: 'function', role }, name, options);

export function math(
  expression: string,
  using: Readonly<Record<string, MetricDef>>,
  label?: string,
): MathDef {
  return { kind: 'math', expression, using, ...labelled(label) };
}

// --- series both the dashboard and the alarms show --------------------------------------------

export const deadLetterDepth = (): AwsMetricDef =>
  awsMetric({ type: 'queue', role: 'deadLetter' }, 'ApproximateNumberOfMessagesVisible', {
    statistic: 'Maximum',
    label: 'dead letters',
  });

/** Oldest usage event still waiting: seconds on SQS, milliseconds (IteratorAge) on Kinesis. */
export const usageEventAge = (shape: DeploymentShape): AwsMetricDef =>
  shape.transport === 'sqs'
    ? awsMetric({ type: 'queue', role: 'usage' }, 'ApproximateAgeOfOldestMessage', {
        statistic: 'Maximum',
        label: 'age of oldest message (s)',
      })
    : functionMetric('metering', 'IteratorAge', { statistic: 'Maximum', label: 'iterator age (ms)' });

/**
 * Per target group, so the owner API's traffic neither dilutes nor inflates key-api's rate. The
 * load balancer's own 5xx (HTTPCode_ELB_5XX_Count) exist only per load balancer; what of them a
 * Lambda target causes (a failed or malformed invocation: 502) is LambdaUserError or
 * LambdaInternalError, per target group.
 */
export function fiveXxRate(role: 'keyApi' | 'ownerApi', service: string): MathDef {
  const group = { type: 'targetGroup', role } as const;
  return math(
    'IF(requests > 0, 100 * (target5xx + userErrors + internalErrors) / requests, 0)',
    {
      requests: awsMetric(group, 'RequestCount'),
      target5xx: awsMetric(group, 'HTTPCode_Target_5XX_Count'),
      userErrors: awsMetric(group, 'LambdaUserError'),
      internalErrors: awsMetric(group, 'LambdaInternalError'),
    },
    `${service} 5xx (%)`,
  );
}
