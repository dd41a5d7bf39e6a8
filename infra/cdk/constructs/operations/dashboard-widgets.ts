import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import {
  BillingMetric,
  KeyApiMetric,
  MeteringMetric,
  MeteringRefusedMetric,
  UserApiMetric,
} from '../../../../contracts/metric-names';
import {
  type BilledResources,
  billingMetric,
  deadLetterDepth,
  keyApiMetric,
  type MetricSpec,
  type MonitoredResources,
  meteringMetric,
  ownerApiMetricOf,
  PERIOD,
  renderMetric,
  type ServiceMetric,
  type ServiceMetricOptions,
  usageEventAge,
  usageLag,
  userApiMetric,
} from './metrics';

/** A graph: metrics on the left axis and, optionally, on the right. Six units high. */
export interface GraphSpec {
  readonly title: string;
  readonly left: readonly MetricSpec[];
  /** @default - none */
  readonly right?: readonly MetricSpec[];
  /** Of the dashboard's 24 columns. @default 8 */
  readonly width?: number;
  /** @default false */
  readonly stacked?: boolean;
}

export interface TextSpec {
  readonly markdown: string;
  readonly width: number;
  readonly height: number;
}

export type WidgetSpec = GraphSpec | TextSpec;

/** Widgets side by side, from left to right. */
export type DashboardRow = readonly WidgetSpec[];

/**
 * The operator's dashboard, top to bottom: key checks → usage events → counted usage, then the
 * functions, the load balancer and the failures. Custom metric names come from
 * contracts/metric-names.ts, the module the services publish with, so a renamed metric cannot leave
 * a widget silently empty.
 */
export function dashboardRows(m: MonitoredResources): DashboardRow[] {
  return [
    [
      {
        markdown: `# Tollgate ${m.stage} (${m.usageTransport.transport})\nKey checks → usage events → counted usage. See docs/metering.md.`,
        width: 24,
        height: 2,
      },
    ],
    gateRow(m),
    planRefusalRow(m),
    publishingRow(m),
    meteringRow(),
    ...(m.billing ? [billingRow(m.billing)] : []),
    functionsRow(m),
    failuresRow(m),
  ];
}

/**
 * Billing with Stripe (docs/billing.md, "The dashboard"): billed = metered (drift), how far the
 * invoice's usage trails the counters (export lag), the pushes, and the webhook's deliveries.
 */
function billingRow(billing: BilledResources): DashboardRow {
  return [
    {
      title: 'Billing: drift (billed vs metered) and export lag',
      left: [
        billingMetric(BillingMetric.drift, { statistic: cw.Stats.MAXIMUM, label: 'drift (units, max)' }),
      ],
      right: [
        billingMetric(BillingMetric.exportLag, { statistic: cw.Stats.MAXIMUM, label: 'export lag (s, max)' }),
      ],
    },
    {
      title: 'Billing: usage pushed to Stripe',
      left: [
        billingMetric(BillingMetric.pushes, { label: 'account-days pushed' }),
        billingMetric(BillingMetric.pushFailures, { label: 'push failures (retried)' }),
        billingMetric(BillingMetric.meterErrors, { label: 'meter error reports' }),
      ],
    },
    {
      title: 'Billing: Stripe webhook',
      left: [
        billingMetric(BillingMetric.webhookApplied, { label: 'events applied' }),
        billingMetric(BillingMetric.webhookRejected, { label: 'deliveries refused (bad signature)' }),
      ],
      right: [
        billing.webhook.function.metricErrors({ period: PERIOD, label: 'webhook errors' }),
        billing.schedule.function.metricErrors({ period: PERIOD, label: 'export/reconcile errors' }),
      ],
    },
  ];
}

export function renderWidget(spec: WidgetSpec): cw.IWidget {
  if ('markdown' in spec) return new cw.TextWidget({ ...spec });
  return new cw.GraphWidget({
    title: spec.title,
    left: spec.left.map(renderMetric),
    right: (spec.right ?? []).map(renderMetric),
    ...(spec.stacked ? { stacked: true } : {}),
    width: spec.width ?? 8,
    height: 6,
  });
}

/** Key checks: outcomes, latency and the key cache. */
function gateRow(m: MonitoredResources): DashboardRow {
  const ownerApiMetric = ownerApiMetricOf(m);
  const latency = (percentile: number) =>
    m.keyApi.function.metricDuration({
      statistic: cw.Stats.p(percentile),
      period: PERIOD,
      label: `p${percentile}`,
    });
  return [
    {
      title: 'Key checks by outcome',
      left: Object.entries(KeyApiMetric.checks).map(([outcome, name]) =>
        keyApiMetric(name, { label: outcome }),
      ),
      stacked: true,
    },
    { title: 'key-api latency (ms)', left: [latency(50), latency(99)] },
    {
      title: 'Key cache',
      left: [
        {
          // A stale entry served while it is refreshed is a hit too: no DynamoDB read on that request.
          expression: '100 * (hits + stale) / (hits + stale + misses)',
          using: {
            hits: keyApiMetric(KeyApiMetric.cacheHits),
            stale: keyApiMetric(KeyApiMetric.cacheStaleServed),
            misses: keyApiMetric(KeyApiMetric.cacheMisses),
          },
          label: 'cache hit rate (%)',
        },
      ],
      right: [
        keyApiMetric(KeyApiMetric.cacheHits, { label: 'hits' }),
        keyApiMetric(KeyApiMetric.cacheStaleServed, { label: 'stale served' }),
        keyApiMetric(KeyApiMetric.cacheMisses, { label: 'misses' }),
        // Unknown keys refused before a lookup: a client guessing keys past its budget.
        keyApiMetric(KeyApiMetric.guessesThrottled, { label: 'guesses throttled (429)' }),
        ownerApiMetric(KeyApiMetric.guessesThrottled, {
          label: `${m.ownerApi.service} guesses throttled (429)`,
        }),
      ],
    },
  ];
}

/**
 * Requests a plan refused (403 suspended, 429 rate limited or over quota): never billed, and a
 * SaaS owner's signal that customers are at their limits, not a fault. One graph per gate.
 */
function planRefusalRow(m: MonitoredResources): DashboardRow {
  const refusals = (
    metric: (name: string, options?: ServiceMetricOptions) => ServiceMetric,
    service: string,
  ) => ({
    title: `${service}: requests refused by plan (never billed)`,
    left: [
      metric(KeyApiMetric.checks.rateLimited, { label: 'rate limited (429)' }),
      metric(KeyApiMetric.checks.quotaExceeded, { label: 'quota exceeded (429)' }),
      metric(KeyApiMetric.checks.suspended, { label: 'account suspended (403)' }),
    ],
    stacked: true,
    width: 12,
  });
  return [refusals(keyApiMetric, m.keyApi.service), refusals(ownerApiMetricOf(m), m.ownerApi.service)];
}

/** Usage events on their way: publishing by the gates, the queue or stream, the dead letters. */
function publishingRow(m: MonitoredResources): DashboardRow {
  const ownerApiMetric = ownerApiMetricOf(m);
  const owner = m.ownerApi.service;
  const { queue, stream } = m.usageTransport;
  const backlog = queue
    ? queue.metricApproximateNumberOfMessagesVisible({
        period: PERIOD,
        statistic: cw.Stats.MAXIMUM,
        label: 'queue depth',
      })
    : stream?.metricIncomingRecords({ period: PERIOD, statistic: cw.Stats.SUM, label: 'records in' });
  return [
    {
      title: 'Usage publishing',
      left: [
        keyApiMetric(KeyApiMetric.publishFailures, { label: 'publish failures' }),
        keyApiMetric(KeyApiMetric.unmetered, { label: 'unmetered requests (fail-open)' }),
        ownerApiMetric(KeyApiMetric.publishFailures, { label: `${owner} publish failures` }),
        ownerApiMetric(KeyApiMetric.unmetered, { label: `${owner} unmetered (fail-open)` }),
        // Gated answers the owner's billing policy leaves free (key-api bills every check).
        ownerApiMetric(KeyApiMetric.notBilled, { label: `${owner} not billed (policy)` }),
      ],
      right: [
        keyApiMetric(KeyApiMetric.publishLatency, { statistic: cw.Stats.p(50), label: 'publish p50 (ms)' }),
        keyApiMetric(KeyApiMetric.publishLatency, { statistic: cw.Stats.p(99), label: 'publish p99 (ms)' }),
      ],
    },
    {
      title: queue ? 'Usage queue' : 'Usage stream',
      left: backlog ? [backlog] : [],
      right: [usageEventAge(m)],
    },
    { title: 'Dead letters', left: [deadLetterDepth(m)] },
  ];
}

/** The metering consumer: batches, events counted or refused, and how far counting trails. */
function meteringRow(): DashboardRow {
  return [
    {
      title: 'Consumer batches',
      left: [
        meteringMetric(MeteringMetric.batchSize, { statistic: cw.Stats.AVERAGE, label: 'batch size (avg)' }),
        meteringMetric(MeteringMetric.batchSize, { statistic: cw.Stats.MAXIMUM, label: 'batch size (max)' }),
      ],
      right: [
        meteringMetric(MeteringMetric.eventsPerWrite, {
          statistic: cw.Stats.AVERAGE,
          label: 'events per counter write',
        }),
      ],
    },
    {
      title: 'Events',
      left: [
        meteringMetric(MeteringMetric.eventsCounted, { label: 'counted' }),
        meteringMetric(MeteringMetric.eventsDuplicate, { label: 'duplicates dropped' }),
        meteringMetric(MeteringMetric.eventsDeadLettered, { label: 'dead-lettered' }),
      ],
      right: [
        meteringMetric(MeteringMetric.counterWriteRequests, { label: 'counter write requests' }),
        meteringMetric(MeteringMetric.aggregatesFailed, { label: 'aggregates failed' }),
        // Owners told they crossed 80 % or 100 % of their quota (only where alerts are configured).
        meteringMetric(MeteringMetric.quotaAlertsSent, { label: 'quota alerts sent' }),
      ],
    },
    {
      title: 'Usage refused by metering (dead-lettered, by reason) and the provenance check',
      left: Object.entries(MeteringRefusedMetric).map(([reason, name]) =>
        meteringMetric(name, { label: reason }),
      ),
      right: [
        meteringMetric(MeteringMetric.provenanceReads, { label: 'provenance reads (BatchGetItem)' }),
        meteringMetric(MeteringMetric.provenanceCheckFailures, {
          label: 'provenance checks failed (retried)',
        }),
      ],
    },
    {
      title: 'Usage lag (event time → counted)',
      left: [usageLag(cw.Stats.p(50)), usageLag(cw.Stats.p(99)), usageLag(cw.Stats.MAXIMUM)],
    },
  ];
}

/** Every function's errors and throttles, and what the load balancer answered. */
function functionsRow(m: MonitoredResources): DashboardRow {
  const functions = [m.keyApi, m.metering, m.userApi, m.authTriggers, m.ownerApi];
  const alb = m.endpoint.loadBalancer;
  const answers = (group: elbv2.ApplicationTargetGroup, code: elbv2.HttpCodeTarget, label: string) =>
    group.metrics.httpCodeTarget(code, { period: PERIOD }).with({ label });
  // Answers of the owner API's own handler too, which the gate does not see fail.
  const owner = m.endpoint.ownerApiTargetGroup;
  const ownerAnswers = owner
    ? [
        owner.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_4XX_COUNT, {
          period: PERIOD,
          label: `${m.ownerApi.service} 4xx`,
        }),
        owner.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, {
          period: PERIOD,
          label: `${m.ownerApi.service} 5xx`,
        }),
      ]
    : [];
  return [
    {
      title: 'Lambda errors',
      left: functions.map((fn) => fn.function.metricErrors({ period: PERIOD, label: fn.service })),
    },
    {
      title: 'Lambda throttles',
      left: functions.map((fn) => fn.function.metricThrottles({ period: PERIOD, label: fn.service })),
    },
    {
      title: 'Load balancer answers',
      left: [
        alb.metrics
          .httpCodeElb(elbv2.HttpCodeElb.ELB_4XX_COUNT, { period: PERIOD })
          .with({ label: 'ALB 4xx' }),
        alb.metrics
          .httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, { period: PERIOD })
          .with({ label: 'ALB 5xx' }),
        answers(m.endpoint.targetGroup, elbv2.HttpCodeTarget.TARGET_4XX_COUNT, 'key-api 4xx'),
        answers(m.endpoint.targetGroup, elbv2.HttpCodeTarget.TARGET_5XX_COUNT, 'key-api 5xx'),
        ...ownerAnswers,
      ],
      right: [
        alb.metrics.requestCount({ period: PERIOD, statistic: cw.Stats.SUM }).with({ label: 'requests' }),
      ],
    },
  ];
}

/**
 * Errors by class: 500s are bugs or a bad deploy (alarmed); 503s are a dependency that could not
 * answer, which clients are told to retry. And the tables' throttling.
 */
function failuresRow(m: MonitoredResources): DashboardRow {
  const { accounts, keys, usage, plans } = m.tables;
  return [
    {
      title: 'Internal errors (500: bugs, not outages) and key checks unavailable (503)',
      left: [
        keyApiMetric(KeyApiMetric.internalErrors, { label: 'key-api 500' }),
        userApiMetric(UserApiMetric.internalErrors, { label: 'user-api 500' }),
        ownerApiMetricOf(m)(KeyApiMetric.internalErrors, { label: `${m.ownerApi.service} 500` }),
      ],
      right: [
        keyApiMetric(KeyApiMetric.checks.unavailable, { label: 'key-api 503 (dependency unavailable)' }),
      ],
    },
    {
      title: 'DynamoDB throttled requests',
      left: [accounts, keys, usage, plans].flatMap((table) => [
        table.metric('ReadThrottleEvents', { period: PERIOD, statistic: cw.Stats.SUM }),
        table.metric('WriteThrottleEvents', { period: PERIOD, statistic: cw.Stats.SUM }),
      ]),
      width: 16,
    },
  ];
}
