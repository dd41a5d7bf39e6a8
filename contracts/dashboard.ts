import { operationsAlarms } from './dashboard-alarms';
import {
  awsMetric,
  billingMetric,
  DASHBOARD_PERIOD_SECONDS,
  type DeploymentShape,
  deadLetterDepth,
  type FunctionRole,
  functionMetric,
  keyApiMetric,
  type MetricOptions,
  math,
  meteringMetric,
  ownerApiServiceOf,
  type SeriesDef,
  type ServiceMetricDef,
  type Statistic,
  serviceMetric,
  type TableRole,
  usageEventAge,
  userApiMetric,
} from './dashboard-metrics';
import {
  BillingMetric,
  KeyApiMetric,
  MeteringMetric,
  MeteringRefusedMetric,
  SERVICE_NAMES,
  UserApiMetric,
} from './metric-names';

export * from './dashboard-alarms';
export * from './dashboard-metrics';

/**
 * The operations dashboard, defined once as data: its rows of widgets, each widget's metrics
 * (namespace, name, dimensions by resource, statistic, period) and the alarms with their
 * thresholds. The CDK construct (infra/cdk/constructs/operations-dashboard.ts) renders it as the
 * CloudWatch dashboard and alarms; the local ops page (infra/local/ops/) renders the same
 * definition from the metrics the local stack's functions emit. Neither can show a widget the
 * other lacks. Custom metric names come from contracts/metric-names.ts, the module the services
 * publish with, so a renamed metric cannot leave a widget silently empty.
 */

/** A graph: series on the left axis and, optionally, on the right. Six units high. */
export interface GraphDef {
  readonly type: 'graph';
  /** Stable and unique on the dashboard: the local page's `data-widget`. */
  readonly id: string;
  readonly title: string;
  readonly left: readonly SeriesDef[];
  readonly right: readonly SeriesDef[];
  /** Of the dashboard's 24 columns. */
  readonly width: number;
  readonly stacked: boolean;
}

export interface TextDef {
  readonly type: 'text';
  readonly id: string;
  readonly markdown: string;
  readonly width: number;
  readonly height: number;
}

export type WidgetDef = GraphDef | TextDef;

/** Widgets side by side, from left to right. */
export type DashboardRow = readonly WidgetDef[];

export interface OperationsDefinition {
  /** The CloudWatch dashboard's name. */
  readonly name: string;
  readonly periodSeconds: number;
  /** Top to bottom. */
  readonly rows: readonly DashboardRow[];
  readonly alarms: ReturnType<typeof operationsAlarms>;
}

/** The definition for a deployment of this shape: what both renderers draw. */
export function operationsDefinition(shape: DeploymentShape): OperationsDefinition {
  return {
    name: `tollgate-${shape.stage}-operations`,
    periodSeconds: DASHBOARD_PERIOD_SECONDS,
    rows: dashboardRows(shape),
    alarms: operationsAlarms(shape),
  };
}

/** Every widget of the definition, row by row. */
export const widgetsOf = (definition: OperationsDefinition): WidgetDef[] => definition.rows.flat();

interface GraphOptions {
  readonly right?: readonly SeriesDef[];
  /** @default 8 */
  readonly width?: number;
  /** @default false */
  readonly stacked?: boolean;
}

function graph(id: string, title: string, left: readonly SeriesDef[], options: GraphOptions = {}): GraphDef {
  return {
    type: 'graph',
    id,
    title,
    left,
    right: options.right ?? [],
    width: options.width ?? 8,
    stacked: options.stacked ?? false,
  };
}

/**
 * Top to bottom: key checks → usage events → counted usage, then the functions, the load balancer
 * and the failures.
 */
function dashboardRows(shape: DeploymentShape): DashboardRow[] {
  return [
    [
      {
        type: 'text',
        id: 'title',
        markdown: `# Tollgate ${shape.stage} (${shape.transport})\nKey checks → usage events → counted usage. See docs/metering.md.`,
        width: 24,
        height: 2,
      },
    ],
    gateRow(shape),
    planRefusalRow(shape),
    publishingRow(shape),
    meteringRow(),
    ...(shape.billing ? [billingRow()] : []),
    functionsRow(shape),
    failuresRow(shape),
  ];
}

const ownerApiMetric = (shape: DeploymentShape) => serviceMetric(ownerApiServiceOf(shape));

/** Key checks: outcomes, latency and the key cache. */
function gateRow(shape: DeploymentShape): DashboardRow {
  const latency = (percentile: 50 | 99) =>
    functionMetric('keyApi', 'Duration', {
      statistic: `p${percentile}`,
      label: `p${percentile}`,
    });
  return [
    graph(
      'key-checks',
      'Key checks by outcome',
      Object.entries(KeyApiMetric.checks).map(([outcome, name]) => keyApiMetric(name, { label: outcome })),
      { stacked: true },
    ),
    graph('key-api-latency', 'key-api latency (ms)', [latency(50), latency(99)]),
    graph(
      'key-cache',
      'Key cache',
      [
        // A stale entry served while it is refreshed is a hit too: no DynamoDB read on that request.
        math(
          '100 * (hits + stale) / (hits + stale + misses)',
          {
            hits: keyApiMetric(KeyApiMetric.cacheHits),
            stale: keyApiMetric(KeyApiMetric.cacheStaleServed),
            misses: keyApiMetric(KeyApiMetric.cacheMisses),
          },
          'cache hit rate (%)',
        ),
      ],
      {
        right: [
          keyApiMetric(KeyApiMetric.cacheHits, { label: 'hits' }),
          keyApiMetric(KeyApiMetric.cacheStaleServed, { label: 'stale served' }),
          keyApiMetric(KeyApiMetric.cacheMisses, { label: 'misses' }),
          // Unknown keys refused before a lookup: a client guessing keys past its budget.
          keyApiMetric(KeyApiMetric.guessesThrottled, { label: 'guesses throttled (429)' }),
          ownerApiMetric(shape)(KeyApiMetric.guessesThrottled, {
            label: `${ownerApiServiceOf(shape)} guesses throttled (429)`,
          }),
        ],
      },
    ),
  ];
}

/**
 * Requests a plan refused (403 suspended, 429 rate limited or over quota): never billed, and a
 * SaaS owner's signal that customers are at their limits, not a fault. One graph per gate.
 */
function planRefusalRow(shape: DeploymentShape): DashboardRow {
  const refusals = (
    id: string,
    metric: (name: string, o?: MetricOptions) => ServiceMetricDef,
    service: string,
  ) =>
    graph(
      id,
      `${service}: requests refused by plan (never billed)`,
      [
        metric(KeyApiMetric.checks.rateLimited, { label: 'rate limited (429)' }),
        metric(KeyApiMetric.checks.quotaExceeded, { label: 'quota exceeded (429)' }),
        metric(KeyApiMetric.checks.suspended, { label: 'account suspended (403)' }),
      ],
      { stacked: true, width: 12 },
    );
  return [
    refusals('key-api-refusals', keyApiMetric, SERVICE_NAMES.keyApi),
    refusals('owner-api-refusals', ownerApiMetric(shape), ownerApiServiceOf(shape)),
  ];
}

/** Usage events on their way: publishing by the gates, the queue or stream, the dead letters. */
function publishingRow(shape: DeploymentShape): DashboardRow {
  const owner = ownerApiServiceOf(shape);
  const ownerMetric = ownerApiMetric(shape);
  const backlog =
    shape.transport === 'sqs'
      ? awsMetric({ type: 'queue', role: 'usage' }, 'ApproximateNumberOfMessagesVisible', {
          statistic: 'Maximum',
          label: 'queue depth',
        })
      : awsMetric({ type: 'stream', role: 'usage' }, 'IncomingRecords', { label: 'records in' });
  const publishLatency = (statistic: Statistic) =>
    keyApiMetric(KeyApiMetric.publishLatency, { statistic, label: `publish ${statistic} (ms)` });
  return [
    graph(
      'usage-publishing',
      'Usage publishing',
      [
        keyApiMetric(KeyApiMetric.publishFailures, { label: 'publish failures' }),
        keyApiMetric(KeyApiMetric.unmetered, { label: 'unmetered requests (fail-open)' }),
        ownerMetric(KeyApiMetric.publishFailures, { label: `${owner} publish failures` }),
        ownerMetric(KeyApiMetric.unmetered, { label: `${owner} unmetered (fail-open)` }),
        // Gated answers the owner's billing policy leaves free (key-api bills every check).
        ownerMetric(KeyApiMetric.notBilled, { label: `${owner} not billed (policy)` }),
      ],
      { right: [publishLatency('p50'), publishLatency('p99')] },
    ),
    graph('usage-backlog', shape.transport === 'sqs' ? 'Usage queue' : 'Usage stream', [backlog], {
      right: [usageEventAge(shape)],
    }),
    graph('dead-letters', 'Dead letters', [deadLetterDepth()]),
  ];
}

export const usageLag = (statistic: Statistic): ServiceMetricDef =>
  meteringMetric(MeteringMetric.usageLag, { statistic, label: `usage lag ${statistic} (ms)` });

/** The metering consumer: batches, events counted or refused, and how far counting trails. */
function meteringRow(): DashboardRow {
  return [
    graph(
      'consumer-batches',
      'Consumer batches',
      [
        meteringMetric(MeteringMetric.batchSize, { statistic: 'Average', label: 'batch size (avg)' }),
        meteringMetric(MeteringMetric.batchSize, { statistic: 'Maximum', label: 'batch size (max)' }),
      ],
      {
        right: [
          meteringMetric(MeteringMetric.eventsPerWrite, {
            statistic: 'Average',
            label: 'events per counter write',
          }),
        ],
      },
    ),
    graph(
      'events',
      'Events',
      [
        meteringMetric(MeteringMetric.eventsCounted, { label: 'counted' }),
        meteringMetric(MeteringMetric.eventsDuplicate, { label: 'duplicates dropped' }),
        meteringMetric(MeteringMetric.eventsDeadLettered, { label: 'dead-lettered' }),
      ],
      {
        right: [
          meteringMetric(MeteringMetric.counterWriteRequests, { label: 'counter write requests' }),
          meteringMetric(MeteringMetric.aggregatesFailed, { label: 'aggregates failed' }),
          // Owners told they crossed 80 % or 100 % of their quota (only where alerts are configured).
          meteringMetric(MeteringMetric.quotaAlertsSent, { label: 'quota alerts sent' }),
          // Committed usage no batch flushed, applied by the SQS ledger's schedule (SQS only).
          meteringMetric(MeteringMetric.ledgerBackstopEvents, { label: 'counted by the ledger backstop' }),
        ],
      },
    ),
    graph(
      'metering-refusals',
      'Usage refused by metering (dead-lettered, by reason) and the provenance check',
      Object.entries(MeteringRefusedMetric).map(([reason, name]) => meteringMetric(name, { label: reason })),
      {
        right: [
          meteringMetric(MeteringMetric.provenanceReads, { label: 'provenance reads (BatchGetItem)' }),
          meteringMetric(MeteringMetric.provenanceCheckFailures, {
            label: 'provenance checks failed (retried)',
          }),
        ],
      },
    ),
    graph('usage-lag', 'Usage lag (event time → counted)', [
      usageLag('p50'),
      usageLag('p99'),
      usageLag('Maximum'),
    ]),
  ];
}

/**
 * Billing with Stripe (docs/billing.md, "The dashboard"): billed = metered (drift), how far the
 * invoice's usage trails the counters (export lag), the pushes, and the webhook's deliveries.
 */
function billingRow(): DashboardRow {
  return [
    graph(
      'billing-drift',
      'Billing: drift (billed vs metered) and export lag',
      [billingMetric(BillingMetric.drift, { statistic: 'Maximum', label: 'drift (units, max)' })],
      {
        right: [
          billingMetric(BillingMetric.exportLag, { statistic: 'Maximum', label: 'export lag (s, max)' }),
        ],
      },
    ),
    graph('billing-pushes', 'Billing: usage pushed to Stripe', [
      billingMetric(BillingMetric.pushes, { label: 'account-days pushed' }),
      billingMetric(BillingMetric.pushFailures, { label: 'push failures (retried)' }),
      billingMetric(BillingMetric.meterErrors, { label: 'meter error reports' }),
    ]),
    graph(
      'billing-webhook',
      'Billing: Stripe webhook',
      [
        billingMetric(BillingMetric.webhookApplied, { label: 'events applied' }),
        billingMetric(BillingMetric.webhookRejected, { label: 'deliveries refused (bad signature)' }),
      ],
      {
        right: [
          functionMetric('billingWebhook', 'Errors', { label: 'webhook errors' }),
          functionMetric('billingSchedule', 'Errors', { label: 'export/reconcile errors' }),
        ],
      },
    ),
  ];
}

/** The functions whose errors and throttles are charted, with the service name each is labelled by. */
function chartedFunctions(shape: DeploymentShape): Array<[FunctionRole, string]> {
  return [
    ['keyApi', SERVICE_NAMES.keyApi],
    ['metering', SERVICE_NAMES.metering],
    ['userApi', SERVICE_NAMES.userApi],
    ['authTriggers', SERVICE_NAMES.authTriggers],
    ['ownerApi', ownerApiServiceOf(shape)],
  ];
}

/** Every function's errors and throttles, and what the load balancer answered. */
function functionsRow(shape: DeploymentShape): DashboardRow {
  const functions = chartedFunctions(shape);
  const alb = { type: 'loadBalancer' } as const;
  const answers = (role: 'keyApi' | 'ownerApi', code: '4XX' | '5XX', label: string) =>
    awsMetric({ type: 'targetGroup', role }, `HTTPCode_Target_${code}_Count`, { label });
  const owner = ownerApiServiceOf(shape);
  // Answers of the owner API's own handler too, which the gate does not see fail.
  const ownerAnswers = shape.ownerApiTargetGroup
    ? [answers('ownerApi', '4XX', `${owner} 4xx`), answers('ownerApi', '5XX', `${owner} 5xx`)]
    : [];
  return [
    graph(
      'lambda-errors',
      'Lambda errors',
      functions.map(([role, label]) => functionMetric(role, 'Errors', { label })),
    ),
    graph(
      'lambda-throttles',
      'Lambda throttles',
      functions.map(([role, label]) => functionMetric(role, 'Throttles', { label })),
    ),
    graph(
      'load-balancer',
      'Load balancer answers',
      [
        awsMetric(alb, 'HTTPCode_ELB_4XX_Count', { label: 'ALB 4xx' }),
        awsMetric(alb, 'HTTPCode_ELB_5XX_Count', { label: 'ALB 5xx' }),
        answers('keyApi', '4XX', 'key-api 4xx'),
        answers('keyApi', '5XX', 'key-api 5xx'),
        ...ownerAnswers,
      ],
      { right: [awsMetric(alb, 'RequestCount', { label: 'requests' })] },
    ),
  ];
}

/**
 * Errors by class: 500s are bugs or a bad deploy (alarmed); 503s are a dependency that could not
 * answer, which clients are told to retry. And the tables' throttling.
 */
function failuresRow(shape: DeploymentShape): DashboardRow {
  const tables: TableRole[] = ['accounts', 'keys', 'usage', 'plans'];
  return [
    graph(
      'internal-errors',
      'Internal errors (500: bugs, not outages) and key checks unavailable (503)',
      [
        keyApiMetric(KeyApiMetric.internalErrors, { label: 'key-api 500' }),
        userApiMetric(UserApiMetric.internalErrors, { label: 'user-api 500' }),
        ownerApiMetric(shape)(KeyApiMetric.internalErrors, { label: `${ownerApiServiceOf(shape)} 500` }),
      ],
      {
        right: [
          keyApiMetric(KeyApiMetric.checks.unavailable, { label: 'key-api 503 (dependency unavailable)' }),
        ],
      },
    ),
    graph(
      'dynamodb-throttles',
      'DynamoDB throttled requests',
      tables.flatMap((role) => [
        awsMetric({ type: 'table', role }, 'ReadThrottleEvents'),
        awsMetric({ type: 'table', role }, 'WriteThrottleEvents'),
      ]),
      { width: 16 },
    ),
  ];
}
