import { Duration } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import {
  type AwsMetricDef,
  type AwsResource,
  DASHBOARD_PERIOD_SECONDS,
  type DeploymentShape,
  type FunctionRole,
  type MetricDef,
  type SeriesDef,
} from '../../../../contracts/dashboard';
import type { DataTables } from '../data-tables';
import type { KeyApiEndpoint } from '../key-api-endpoint';
import type { TollgateFunction } from '../tollgate-function';
import type { UsageTransport } from '../usage-transport';

/** Every widget's and alarm's period (contracts/dashboard.ts). */
export const PERIOD = Duration.seconds(DASHBOARD_PERIOD_SECONDS);

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

/** The shape contracts/dashboard.ts defines the dashboard for, read off the resources. */
export function deploymentShapeOf(
  m: MonitoredResources,
  limits: DeploymentShape['limits'] = {},
): DeploymentShape {
  return {
    stage: m.stage,
    transport: m.usageTransport.transport,
    ownerApiService: m.ownerApi.service,
    ownerApiTargetGroup: m.endpoint.ownerApiTargetGroup !== undefined,
    billing: m.billing !== undefined,
    limits,
  };
}

const labelled = (label: string | undefined) => (label !== undefined ? { label } : {});

/** A series of the definition as CloudWatch takes it, on the stack's own resources. */
export function renderSeries(def: SeriesDef, m: MonitoredResources): cw.IMetric {
  if (def.kind === 'math') {
    return new cw.MathExpression({
      expression: def.expression,
      usingMetrics: Object.fromEntries(
        Object.entries(def.using).map(([name, metric]) => [name, renderMetric(metric, m)]),
      ),
      ...labelled(def.label),
      period: PERIOD,
    });
  }
  return renderMetric(def, m);
}

function renderMetric(def: MetricDef, m: MonitoredResources): cw.IMetric {
  if (def.kind === 'aws') return awsMetricOf(def, m);
  return new cw.Metric({
    namespace: def.namespace,
    metricName: def.name,
    dimensionsMap: { service: def.service },
    statistic: def.statistic,
    period: PERIOD,
    ...labelled(def.label),
  });
}

/** The resource's own metric method, which knows its dimensions (function name, queue name, ...). */
function awsMetricOf(def: AwsMetricDef, m: MonitoredResources): cw.IMetric {
  const options: cw.MetricOptions = { period: PERIOD, statistic: def.statistic, ...labelled(def.label) };
  const metric = metricSource(def.resource, m)(def.name, options);
  if (metric.namespace !== def.namespace) {
    throw new Error(
      `${def.name} of ${JSON.stringify(def.resource)} is in ${metric.namespace}, not ${def.namespace}`,
    );
  }
  return metric;
}

type MetricSource = (name: string, options: cw.MetricOptions) => cw.Metric;

function metricSource(resource: AwsResource, m: MonitoredResources): MetricSource {
  switch (resource.type) {
    case 'function': {
      const fn = functionOf(resource.role, m);
      return (name, options) => fn.function.metric(name, options);
    }
    case 'queue': {
      const queue =
        resource.role === 'deadLetter' ? m.usageTransport.deadLetterQueue : m.usageTransport.queue;
      if (!queue) throw new Error('the dashboard shows the usage queue, but this stage has none (Kinesis)');
      return (name, options) => queue.metric(name, options);
    }
    case 'stream': {
      const stream = m.usageTransport.stream;
      if (!stream) throw new Error('the dashboard shows the usage stream, but this stage has none (SQS)');
      return (name, options) => stream.metric(name, options);
    }
    case 'loadBalancer':
      return (name, options) => m.endpoint.loadBalancer.metrics.custom(name, options);
    case 'targetGroup': {
      const group = resource.role === 'keyApi' ? m.endpoint.targetGroup : m.endpoint.ownerApiTargetGroup;
      if (!group)
        throw new Error('the dashboard shows the owner API target group, but the endpoint has none');
      return (name, options) => group.metrics.custom(name, options);
    }
    case 'table': {
      const table = m.tables[resource.role];
      return (name, options) => table.metric(name, options);
    }
  }
}

function functionOf(role: FunctionRole, m: MonitoredResources): TollgateFunction {
  if (role === 'billingWebhook' || role === 'billingSchedule') {
    if (!m.billing) throw new Error(`the dashboard shows ${role}, but billing is not deployed`);
    return role === 'billingWebhook' ? m.billing.webhook : m.billing.schedule;
  }
  return m[role];
}
