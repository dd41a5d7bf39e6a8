import { Duration, Validations } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as sns from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import {
  KeyApiMetric,
  METRICS_NAMESPACE,
  MeteringMetric,
  MeteringRefusedMetric,
  SERVICE_NAMES,
  UserApiMetric,
} from '../../../contracts/metric-names';
import type { DataTables } from './data-tables';
import type { KeyApiEndpoint } from './key-api-endpoint';
import type { TollgateFunction } from './tollgate-function';
import type { UsageTransport } from './usage-transport';

export interface OperationsDashboardProps {
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
  /**
   * Subscribed to the alarm topic (the address must confirm the subscription).
   * @default - no subscription; subscribe to the topic yourself
   */
  readonly alarmEmail?: string;
  /**
   * Oldest usage event still waiting (SQS message age or Kinesis iterator age) before alarming.
   * @default Duration.minutes(5)
   */
  readonly maxEventAge?: Duration;
  /**
   * Share of a target group's answers that are 5xx (key-api's, and the owner API's: the function's
   * own or the load balancer's for a failed invocation) before alarming.
   * @default 1 (percent)
   */
  readonly max5xxPercent?: number;
  /**
   * p99 of event time → counted before alarming.
   * @default Duration.minutes(2)
   */
  readonly maxUsageLag?: Duration;
}

const PERIOD = Duration.minutes(5);

/** A custom metric as Powertools publishes it: namespace, name and the `service` dimension. */
function tollgateMetric(service: string, metricName: string, options: cw.MetricOptions = {}): cw.Metric {
  return new cw.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service },
    statistic: cw.Stats.SUM,
    period: PERIOD,
    ...options,
  });
}

const keyApiMetric = (name: string, options?: cw.MetricOptions) =>
  tollgateMetric(SERVICE_NAMES.keyApi, name, options);
const meteringMetric = (name: string, options?: cw.MetricOptions) =>
  tollgateMetric(SERVICE_NAMES.metering, name, options);
const userApiMetric = (name: string, options?: cw.MetricOptions) =>
  tollgateMetric(SERVICE_NAMES.userApi, name, options);

/**
 * The operator's view: one dashboard from key checks to counted usage, and the alarms that say
 * usage is not being counted (dead letters, a backlog, a failing consumer, lag), clients are
 * failed (5xx), or the code is failing (internal errors: bugs, not outages). Custom metric names
 * come from contracts/metric-names.ts, the module the services publish with, so a renamed metric
 * cannot leave a widget silently empty.
 */
export class OperationsDashboard extends Construct {
  readonly dashboard: cw.Dashboard;
  readonly alarmTopic: sns.Topic;
  readonly alarms: {
    readonly deadLetters: cw.Alarm;
    readonly eventAge: cw.Alarm;
    readonly consumerErrors: cw.Alarm;
    readonly keyApi5xx: cw.Alarm;
    /** When the endpoint routes paths to the owner API. */
    readonly ownerApi5xx?: cw.Alarm;
    readonly usageLag: cw.Alarm;
    readonly publishFailures: cw.Alarm;
    readonly ownerApiPublishFailures: cw.Alarm;
    readonly ownerApiUnmetered: cw.Alarm;
    readonly keyApiInternalErrors: cw.Alarm;
    readonly userApiInternalErrors: cw.Alarm;
    readonly ownerApiInternalErrors: cw.Alarm;
    /** Events whose key is unknown or belongs to another account: forged or replayed usage. */
    readonly provenanceRefusals: cw.Alarm;
  };

  constructor(scope: Construct, id: string, props: OperationsDashboardProps) {
    super(scope, id);
    const prefix = `tollgate-${props.stage}`;
    const transport = props.usageTransport;
    const functions = [props.keyApi, props.metering, props.userApi, props.authTriggers, props.ownerApi];
    const alb = props.endpoint.loadBalancer;
    const targetGroup = props.endpoint.targetGroup;

    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      topicName: `${prefix}-alarms`,
      displayName: `Tollgate ${props.stage} alarms`,
      enforceSSL: true,
    });
    Validations.of(this.alarmTopic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'Alarm notifications carry alarm names and metric values, no customer data. CloudWatch cannot ' +
        'publish to a topic under the AWS-managed SNS key, and a customer key for this alone costs more ' +
        'than an idle stage.',
    });
    if (props.alarmEmail) this.alarmTopic.addSubscription(new EmailSubscription(props.alarmEmail));

    // --- metrics -------------------------------------------------------------------------------
    const checks = Object.entries(KeyApiMetric.checks).map(([outcome, name]) =>
      keyApiMetric(name, { label: outcome }),
    );
    const cacheHitRate = new cw.MathExpression({
      // A stale entry served while it is refreshed is a hit too: no DynamoDB read on that request.
      expression: '100 * (hits + stale) / (hits + stale + misses)',
      usingMetrics: {
        hits: keyApiMetric(KeyApiMetric.cacheHits),
        stale: keyApiMetric(KeyApiMetric.cacheStaleServed),
        misses: keyApiMetric(KeyApiMetric.cacheMisses),
      },
      label: 'cache hit rate (%)',
      period: PERIOD,
    });
    const requests = alb.metrics.requestCount({ period: PERIOD, statistic: cw.Stats.SUM });
    const elb5xx = alb.metrics.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, { period: PERIOD });
    const elb4xx = alb.metrics.httpCodeElb(elbv2.HttpCodeElb.ELB_4XX_COUNT, { period: PERIOD });
    const target5xx = targetGroup.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, {
      period: PERIOD,
    });
    const target4xx = targetGroup.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_4XX_COUNT, {
      period: PERIOD,
    });
    // Answers of the owner API's own handler too, which the gate does not see fail.
    const ownerTargetGroup = props.endpoint.ownerApiTargetGroup;
    const ownerTargetAnswers = ownerTargetGroup
      ? [
          ownerTargetGroup.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_4XX_COUNT, {
            period: PERIOD,
            label: `${props.ownerApi.service} 4xx`,
          }),
          ownerTargetGroup.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, {
            period: PERIOD,
            label: `${props.ownerApi.service} 5xx`,
          }),
        ]
      : [];
    // Per target group, so the owner API's traffic neither dilutes nor inflates key-api's rate. The
    // load balancer's own 5xx (HTTPCode_ELB_5XX_Count) exist only per load balancer; what of them a
    // Lambda target causes (a failed or malformed invocation: 502) is LambdaUserError or
    // LambdaInternalError, per target group.
    const fiveXxRate = (group: elbv2.ApplicationTargetGroup, service: string) =>
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
    const dlqDepth = transport.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: PERIOD,
      statistic: cw.Stats.MAXIMUM,
      label: 'dead letters',
    });
    const eventAge = transport.queue
      ? transport.queue.metricApproximateAgeOfOldestMessage({
          period: PERIOD,
          statistic: cw.Stats.MAXIMUM,
          label: 'age of oldest message (s)',
        })
      : props.metering.function.metric('IteratorAge', {
          period: PERIOD,
          statistic: cw.Stats.MAXIMUM,
          label: 'iterator age (ms)',
        });
    const backlog = transport.queue
      ? transport.queue.metricApproximateNumberOfMessagesVisible({
          period: PERIOD,
          statistic: cw.Stats.MAXIMUM,
          label: 'queue depth',
        })
      : transport.stream?.metricIncomingRecords({
          period: PERIOD,
          statistic: cw.Stats.SUM,
          label: 'records in',
        });
    const usageLag = (statistic: string) =>
      meteringMetric(MeteringMetric.usageLag, { statistic, label: `usage lag ${statistic} (ms)` });
    // Errors by class: 500s are bugs or a bad deploy (alarmed below); 503s are a dependency that
    // could not answer, which clients are told to retry.
    const keyApiInternalErrors = keyApiMetric(KeyApiMetric.internalErrors, { label: 'key-api 500' });
    const userApiInternalErrors = userApiMetric(UserApiMetric.internalErrors, { label: 'user-api 500' });
    // The gate counts under the service name of the function it runs in, with key-api's metric names.
    const ownerApiService = props.ownerApi.service;
    const ownerApiMetric = (name: string, options?: cw.MetricOptions) =>
      tollgateMetric(ownerApiService, name, options);

    // --- dashboard -----------------------------------------------------------------------------
    const graph = (title: string, left: cw.IMetric[], right: cw.IMetric[] = [], width = 8) =>
      new cw.GraphWidget({ title, left, right, width, height: 6 });

    this.dashboard = new cw.Dashboard(this, 'Dashboard', {
      dashboardName: `${prefix}-operations`,
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new cw.TextWidget({
        markdown: `# Tollgate ${props.stage} (${transport.transport})\nKey checks → usage events → counted usage. See docs/metering.md.`,
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Key checks by outcome',
        left: checks,
        stacked: true,
        width: 8,
        height: 6,
      }),
      graph('key-api latency (ms)', [
        props.keyApi.function.metricDuration({ statistic: cw.Stats.p(50), period: PERIOD, label: 'p50' }),
        props.keyApi.function.metricDuration({ statistic: cw.Stats.p(99), period: PERIOD, label: 'p99' }),
      ]),
      graph(
        'Key cache',
        [cacheHitRate],
        [
          keyApiMetric(KeyApiMetric.cacheHits, { label: 'hits' }),
          keyApiMetric(KeyApiMetric.cacheStaleServed, { label: 'stale served' }),
          keyApiMetric(KeyApiMetric.cacheMisses, { label: 'misses' }),
          // Unknown keys refused before a lookup: a client guessing keys past its budget.
          keyApiMetric(KeyApiMetric.guessesThrottled, { label: 'guesses throttled (429)' }),
          ownerApiMetric(KeyApiMetric.guessesThrottled, {
            label: `${ownerApiService} guesses throttled (429)`,
          }),
        ],
      ),
    );
    // Requests a plan refused (403 suspended, 429 rate limited or over quota): never billed, and a
    // SaaS owner's signal that customers are at their limits, not a fault.
    const planRefusals = (metric: (name: string, options?: cw.MetricOptions) => cw.Metric, service: string) =>
      new cw.GraphWidget({
        title: `${service}: requests refused by plan (never billed)`,
        left: [
          metric(KeyApiMetric.checks.rateLimited, { label: 'rate limited (429)' }),
          metric(KeyApiMetric.checks.quotaExceeded, { label: 'quota exceeded (429)' }),
          metric(KeyApiMetric.checks.suspended, { label: 'account suspended (403)' }),
        ],
        stacked: true,
        width: 12,
        height: 6,
      });
    this.dashboard.addWidgets(
      planRefusals(keyApiMetric, props.keyApi.service),
      planRefusals(ownerApiMetric, ownerApiService),
    );
    this.dashboard.addWidgets(
      graph(
        'Usage publishing',
        [
          keyApiMetric(KeyApiMetric.publishFailures, { label: 'publish failures' }),
          keyApiMetric(KeyApiMetric.unmetered, { label: 'unmetered requests (fail-open)' }),
          ownerApiMetric(KeyApiMetric.publishFailures, { label: `${ownerApiService} publish failures` }),
          ownerApiMetric(KeyApiMetric.unmetered, { label: `${ownerApiService} unmetered (fail-open)` }),
          // Gated answers the owner's billing policy leaves free (key-api bills every check).
          ownerApiMetric(KeyApiMetric.notBilled, { label: `${ownerApiService} not billed (policy)` }),
        ],
        [
          keyApiMetric(KeyApiMetric.publishLatency, { statistic: cw.Stats.p(50), label: 'publish p50 (ms)' }),
          keyApiMetric(KeyApiMetric.publishLatency, { statistic: cw.Stats.p(99), label: 'publish p99 (ms)' }),
        ],
      ),
      graph(transport.queue ? 'Usage queue' : 'Usage stream', backlog ? [backlog] : [], [eventAge]),
      graph('Dead letters', [dlqDepth]),
    );
    this.dashboard.addWidgets(
      graph(
        'Consumer batches',
        [
          meteringMetric(MeteringMetric.batchSize, {
            statistic: cw.Stats.AVERAGE,
            label: 'batch size (avg)',
          }),
          meteringMetric(MeteringMetric.batchSize, {
            statistic: cw.Stats.MAXIMUM,
            label: 'batch size (max)',
          }),
        ],
        [
          meteringMetric(MeteringMetric.eventsPerWrite, {
            statistic: cw.Stats.AVERAGE,
            label: 'events per counter write',
          }),
        ],
      ),
      graph(
        'Events',
        [
          meteringMetric(MeteringMetric.eventsCounted, { label: 'counted' }),
          meteringMetric(MeteringMetric.eventsDuplicate, { label: 'duplicates dropped' }),
          meteringMetric(MeteringMetric.eventsDeadLettered, { label: 'dead-lettered' }),
        ],
        [
          meteringMetric(MeteringMetric.counterWriteRequests, { label: 'counter write requests' }),
          meteringMetric(MeteringMetric.aggregatesFailed, { label: 'aggregates failed' }),
          // Owners told they crossed 80 % or 100 % of their quota (only where alerts are configured).
          meteringMetric(MeteringMetric.quotaAlertsSent, { label: 'quota alerts sent' }),
        ],
      ),
      graph(
        'Usage refused by metering (dead-lettered, by reason) and the provenance check',
        Object.entries(MeteringRefusedMetric).map(([reason, name]) =>
          meteringMetric(name, { label: reason }),
        ),
        [
          meteringMetric(MeteringMetric.provenanceReads, { label: 'provenance reads (BatchGetItem)' }),
          meteringMetric(MeteringMetric.provenanceCheckFailures, {
            label: 'provenance checks failed (retried)',
          }),
        ],
      ),
      graph('Usage lag (event time → counted)', [
        usageLag(cw.Stats.p(50)),
        usageLag(cw.Stats.p(99)),
        usageLag(cw.Stats.MAXIMUM),
      ]),
    );
    this.dashboard.addWidgets(
      graph(
        'Lambda errors',
        functions.map((fn) => fn.function.metricErrors({ period: PERIOD, label: fn.service })),
      ),
      graph(
        'Lambda throttles',
        functions.map((fn) => fn.function.metricThrottles({ period: PERIOD, label: fn.service })),
      ),
      graph(
        'Load balancer answers',
        [
          elb4xx.with({ label: 'ALB 4xx' }),
          elb5xx.with({ label: 'ALB 5xx' }),
          target4xx.with({ label: 'key-api 4xx' }),
          target5xx.with({ label: 'key-api 5xx' }),
          ...ownerTargetAnswers,
        ],
        [requests.with({ label: 'requests' })],
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'Internal errors (500: bugs, not outages) and key checks unavailable (503)',
        [
          keyApiInternalErrors,
          userApiInternalErrors,
          ownerApiMetric(KeyApiMetric.internalErrors, { label: `${ownerApiService} 500` }),
        ],
        [keyApiMetric(KeyApiMetric.checks.unavailable, { label: 'key-api 503 (dependency unavailable)' })],
        8,
      ),
      graph(
        'DynamoDB throttled requests',
        [props.tables.accounts, props.tables.keys, props.tables.usage, props.tables.plans].flatMap(
          (table) => [
            table.metric('ReadThrottleEvents', { period: PERIOD, statistic: cw.Stats.SUM }),
            table.metric('WriteThrottleEvents', { period: PERIOD, statistic: cw.Stats.SUM }),
          ],
        ),
        [],
        16,
      ),
    );

    // --- alarms --------------------------------------------------------------------------------
    const alarm = (alarmId: string, props: cw.AlarmProps): cw.Alarm => {
      const created = new cw.Alarm(this, alarmId, {
        treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        ...props,
      });
      created.addAlarmAction(new SnsAction(this.alarmTopic));
      created.addOkAction(new SnsAction(this.alarmTopic));
      return created;
    };
    const maxEventAge = props.maxEventAge ?? Duration.minutes(5);
    const maxUsageLag = props.maxUsageLag ?? Duration.minutes(2);
    const max5xxPercent = props.max5xxPercent ?? 1;

    this.alarms = {
      deadLetters: alarm('DeadLettersAlarm', {
        alarmName: `${prefix}-usage-dead-letters`,
        alarmDescription:
          'Usage records are in the dead-letter queue: refused by metering (see the reason attribute) or, ' +
          'for SQS, failed maxReceiveCount times. They are not counted until redriven.',
        metric: dlqDepth,
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
      eventAge: alarm('EventAgeAlarm', {
        alarmName: `${prefix}-usage-backlog-age`,
        alarmDescription:
          'Usage events wait too long before metering reads them: the consumer is behind or stuck.',
        metric: eventAge,
        // SQS reports the age in seconds, Lambda's IteratorAge in milliseconds.
        threshold: transport.queue ? maxEventAge.toSeconds() : maxEventAge.toMilliseconds(),
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 2,
      }),
      consumerErrors: alarm('ConsumerErrorsAlarm', {
        alarmName: `${prefix}-metering-errors`,
        alarmDescription:
          'The metering consumer failed whole invocations (crash, timeout, a batch that is no SQS or Kinesis ' +
          'event): their records are retried and may reach the dead-letter queue.',
        metric: props.metering.function.metricErrors({ period: PERIOD, statistic: cw.Stats.SUM }),
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
      keyApi5xx: alarm('KeyApi5xxAlarm', {
        alarmName: `${prefix}-key-api-5xx`,
        alarmDescription:
          "API clients get 5xx answers from key-api (its own, or the load balancer's for a failed " +
          "invocation), as a share of the requests key-api's target group received.",
        metric: fiveXxRate(targetGroup, props.keyApi.service),
        threshold: max5xxPercent,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 2,
      }),
      ...(ownerTargetGroup
        ? {
            ownerApi5xx: alarm('OwnerApi5xxAlarm', {
              alarmName: `${prefix}-${ownerApiService}-5xx`,
              alarmDescription:
                `API clients get 5xx answers from ${ownerApiService} (the owner API: its handler's, its ` +
                "gate's, or the load balancer's for a failed invocation), as a share of the requests its " +
                'target group received.',
              metric: fiveXxRate(ownerTargetGroup, ownerApiService),
              threshold: max5xxPercent,
              comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
              evaluationPeriods: 2,
            }),
          }
        : {}),
      usageLag: alarm('UsageLagAlarm', {
        alarmName: `${prefix}-usage-lag`,
        alarmDescription:
          'Usage shown to account owners trails traffic by more than the allowed lag (p99). Quotas loosen with it: C gate containers on one account can admit up to (C - 1) x rate x (read interval + this lag) past a quota (docs/gate.md).',
        metric: usageLag(cw.Stats.p(99)),
        threshold: maxUsageLag.toMilliseconds(),
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3,
      }),
      // key-api writes this metric at the end of the failing invocation, never buffered, so the
      // alarm is as prompt as the others. In fail-open mode it is the only sign of lost billing.
      publishFailures: alarm('PublishFailuresAlarm', {
        alarmName: `${prefix}-usage-publish-failures`,
        alarmDescription:
          'key-api could not hand usage events to the transport: callers got 503 (fail closed) or the ' +
          'requests went through unmetered (fail open, see UnmeteredRequests).',
        metric: keyApiMetric(KeyApiMetric.publishFailures, { period: PERIOD, statistic: cw.Stats.SUM }),
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
      // Only something other than a gate writing to the queue or stream (or a redrive replaying
      // foreign records) produces these: one is worth a look.
      provenanceRefusals: alarm('ProvenanceRefusalsAlarm', {
        alarmName: `${prefix}-usage-provenance-refusals`,
        alarmDescription:
          'Metering refused usage events whose key is unknown or belongs to another account than the one ' +
          'billed: forged or replayed usage reached the transport. See the dead-letter queue for the records.',
        metric: new cw.MathExpression({
          expression: 'unknownKey + accountMismatch',
          usingMetrics: {
            unknownKey: meteringMetric(MeteringRefusedMetric.unknown_key, { statistic: cw.Stats.SUM }),
            accountMismatch: meteringMetric(MeteringRefusedMetric.account_mismatch, {
              statistic: cw.Stats.SUM,
            }),
          },
          period: PERIOD,
        }),
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
      // The owner API's gate writes the same failure metrics, as promptly, under its own service.
      ownerApiPublishFailures: alarm('OwnerApiPublishFailuresAlarm', {
        alarmName: `${prefix}-${ownerApiService}-usage-publish-failures`,
        alarmDescription:
          `The gate in ${ownerApiService} (the owner API) could not hand usage events to the transport: ` +
          'callers got 503 (fail closed) or the requests went through unmetered (fail open, see ' +
          'UnmeteredRequests).',
        metric: ownerApiMetric(KeyApiMetric.publishFailures),
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
      // Fail open only, and always with a publish failure: this one says the answers were delivered
      // and billing lost, not refused.
      ownerApiUnmetered: alarm('OwnerApiUnmeteredAlarm', {
        alarmName: `${prefix}-${ownerApiService}-unmetered-requests`,
        alarmDescription:
          `${ownerApiService} (the owner API, in fail-open mode) delivered billable answers without a usage ` +
          'event: that usage is lost to billing. Its log lines "usage event not published" carry the cause.',
        metric: ownerApiMetric(KeyApiMetric.unmetered),
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
      // Any 500 at all: a DynamoDB ValidationException, a missing table or index, a thrown bug. It
      // is no outage and will not pass by itself. key-api writes the metric at the end of the
      // failing invocation (KEY_API_FAILURE_METRICS), user-api as it happens.
      keyApiInternalErrors: alarm('KeyApiInternalErrorsAlarm', {
        alarmName: `${prefix}-key-api-internal-errors`,
        alarmDescription:
          'key-api answered 500: a bug or a bad deploy (e.g. a DynamoDB ValidationException or a missing ' +
          'index), not an outage. Its log lines "key check failed" carry the cause.',
        // Unlabelled: a label would make CloudFormation's alarm a metric-math query.
        metric: keyApiMetric(KeyApiMetric.internalErrors),
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
      userApiInternalErrors: alarm('UserApiInternalErrorsAlarm', {
        alarmName: `${prefix}-user-api-internal-errors`,
        alarmDescription:
          'user-api answered 500: a bug or a bad deploy, not an outage. Its log lines "unhandled error" ' +
          'carry the cause.',
        metric: userApiMetric(UserApiMetric.internalErrors),
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
      ownerApiInternalErrors: alarm('OwnerApiInternalErrorsAlarm', {
        alarmName: `${prefix}-${ownerApiService}-internal-errors`,
        alarmDescription:
          `The gate in ${ownerApiService} (the owner API) answered 500: a bug or a bad deploy (e.g. a ` +
          'missing index), not an outage. Its log lines "key check failed" (or, behind the ALB wrapper, ' +
          '"gated handler failed") carry the cause.',
        // Unlabelled, as key-api's: a label would make it a metric-math query.
        metric: ownerApiMetric(KeyApiMetric.internalErrors),
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      }),
    };
  }
}
