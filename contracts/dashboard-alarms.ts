import { DEFAULT_EXPORT_INTERVAL_MS } from './billing';
import {
  type AlarmLimits,
  billingMetric,
  DEFAULT_ALARM_LIMITS,
  type DeploymentShape,
  deadLetterDepth,
  fiveXxRate,
  functionMetric,
  keyApiMetric,
  math,
  meteringMetric,
  ownerApiServiceOf,
  type SeriesDef,
  serviceMetric,
  usageEventAge,
  userApiMetric,
} from './dashboard-metrics';
import {
  BillingMetric,
  KeyApiMetric,
  MeteringMetric,
  MeteringRefusedMetric,
  UserApiMetric,
} from './metric-names';

/** How an alarm compares its metric with the threshold, as CloudWatch names it. */
export type ComparisonOperator = 'GreaterThanThreshold' | 'GreaterThanOrEqualToThreshold';

/**
 * One alarm, as data. Every alarm treats missing data as fine (not breaching) and notifies on alarm
 * and on OK; it is in ALARM when the last `evaluationPeriods` periods all breach.
 */
export interface AlarmDef {
  /** Construct id: part of the alarm's logical id, so renaming it replaces the alarm on deploy. */
  readonly id: string;
  /** The alarm's name after `tollgate-<stage>-`. */
  readonly name: string;
  readonly description: string;
  readonly metric: SeriesDef;
  readonly threshold: number;
  readonly comparisonOperator: ComparisonOperator;
  readonly evaluationPeriods: number;
}

/** Every alarm of the stage, by what it says. */
export interface OperationsAlarms<T> {
  readonly deadLetters: T;
  readonly eventAge: T;
  readonly consumerErrors: T;
  readonly keyApi5xx: T;
  /** When the endpoint routes paths to the owner API. */
  readonly ownerApi5xx?: T;
  readonly usageLag: T;
  readonly publishFailures: T;
  readonly ownerApiPublishFailures: T;
  readonly ownerApiUnmetered: T;
  readonly keyApiInternalErrors: T;
  readonly userApiInternalErrors: T;
  readonly ownerApiInternalErrors: T;
  /** Events whose key is unknown or belongs to another account: forged or replayed usage. */
  readonly provenanceRefusals: T;
  /** With billing: Stripe's totals differ from the counters after the reconciliation's repairs. */
  readonly billingDrift?: T;
  /** With billing: metered usage has waited too long to reach Stripe. */
  readonly billingExportLag?: T;
}

type Section<K extends keyof OperationsAlarms<AlarmDef>> = Pick<OperationsAlarms<AlarmDef>, K>;

/** Alarms on a single occurrence: each of these is worth a look. */
const ANY_ONE = {
  threshold: 1,
  comparisonOperator: 'GreaterThanOrEqualToThreshold',
  evaluationPeriods: 1,
} as const;

/**
 * The alarms that say usage is not being counted (dead letters, a backlog, a failing consumer, lag,
 * forged events), clients are failed (5xx), billing is lost, or the code is failing (internal
 * errors: bugs, not outages).
 */
export function operationsAlarms(shape: DeploymentShape): OperationsAlarms<AlarmDef> {
  const limits: AlarmLimits = { ...DEFAULT_ALARM_LIMITS, ...shape.limits };
  return {
    ...usageAlarms(shape, limits),
    ...answerAlarms(shape, limits),
    ...gateAlarms(shape),
    ...internalErrorAlarms(shape),
    ...(shape.billing ? billingAlarms() : {}),
  };
}

/** The same alarms, each turned into something else (e.g. the CloudWatch alarm), in the same order. */
export function mapAlarms<A, B>(alarms: OperationsAlarms<A>, f: (alarm: A) => B): OperationsAlarms<B> {
  const entries = Object.entries(alarms) as Array<[keyof OperationsAlarms<A>, A]>;
  // Object.fromEntries types its keys as string; they are the keys given.
  return Object.fromEntries(entries.map(([key, alarm]) => [key, f(alarm)])) as unknown as OperationsAlarms<B>;
}

/** Usage on its way to the counters. */
function usageAlarms(
  shape: DeploymentShape,
  limits: AlarmLimits,
): Section<'deadLetters' | 'eventAge' | 'consumerErrors' | 'usageLag' | 'provenanceRefusals'> {
  return {
    deadLetters: {
      id: 'DeadLettersAlarm',
      name: 'usage-dead-letters',
      description:
        'Usage records are in the dead-letter queue: refused by metering (see the reason attribute) or, ' +
        'for SQS, failed maxReceiveCount times. They are not counted until redriven.',
      metric: deadLetterDepth(),
      ...ANY_ONE,
    },
    eventAge: {
      id: 'EventAgeAlarm',
      name: 'usage-backlog-age',
      description: 'Usage events wait too long before metering reads them: the consumer is behind or stuck.',
      metric: usageEventAge(shape),
      // SQS reports the age in seconds, Lambda's IteratorAge in milliseconds.
      threshold: shape.transport === 'sqs' ? limits.maxEventAgeMs / 1000 : limits.maxEventAgeMs,
      comparisonOperator: 'GreaterThanThreshold',
      evaluationPeriods: 2,
    },
    consumerErrors: {
      id: 'ConsumerErrorsAlarm',
      name: 'metering-errors',
      description:
        'The metering consumer failed whole invocations (crash, timeout, a batch that is no SQS or Kinesis ' +
        'event): their records are retried and may reach the dead-letter queue.',
      metric: functionMetric('metering', 'Errors'),
      ...ANY_ONE,
    },
    usageLag: {
      id: 'UsageLagAlarm',
      name: 'usage-lag',
      description:
        'Usage shown to account owners trails traffic by more than the allowed lag (p99). Quotas loosen with it: C gate containers on one account can admit up to (C - 1) x rate x (read interval + this lag) past a quota (docs/gate.md).',
      metric: meteringMetric(MeteringMetric.usageLag, { statistic: 'p99', label: 'usage lag p99 (ms)' }),
      threshold: limits.maxUsageLagMs,
      comparisonOperator: 'GreaterThanThreshold',
      evaluationPeriods: 3,
    },
    // Only something other than a gate writing to the queue or stream (or a redrive replaying
    // foreign records) produces these: one is worth a look.
    provenanceRefusals: {
      id: 'ProvenanceRefusalsAlarm',
      name: 'usage-provenance-refusals',
      description:
        'Metering refused usage events whose key is unknown or belongs to another account than the one ' +
        'billed: forged or replayed usage reached the transport. See the dead-letter queue for the records.',
      metric: math('unknownKey + accountMismatch', {
        unknownKey: meteringMetric(MeteringRefusedMetric.unknown_key),
        accountMismatch: meteringMetric(MeteringRefusedMetric.account_mismatch),
      }),
      ...ANY_ONE,
    },
  };
}

/** 5xx answers as a share of each front door's requests. */
function answerAlarms(shape: DeploymentShape, limits: AlarmLimits): Section<'keyApi5xx' | 'ownerApi5xx'> {
  const owner = ownerApiServiceOf(shape);
  const tooMany5xx = {
    threshold: limits.max5xxPercent,
    comparisonOperator: 'GreaterThanThreshold',
    evaluationPeriods: 2,
  } as const;
  return {
    keyApi5xx: {
      id: 'KeyApi5xxAlarm',
      name: 'key-api-5xx',
      description:
        "API clients get 5xx answers from key-api (its own, or the load balancer's for a failed " +
        "invocation), as a share of the requests key-api's target group received.",
      metric: fiveXxRate('keyApi', 'key-api'),
      ...tooMany5xx,
    },
    ...(shape.ownerApiTargetGroup
      ? {
          ownerApi5xx: {
            id: 'OwnerApi5xxAlarm',
            name: `${owner}-5xx`,
            description:
              `API clients get 5xx answers from ${owner} (the owner API: its handler's, its ` +
              "gate's, or the load balancer's for a failed invocation), as a share of the requests its " +
              'target group received.',
            metric: fiveXxRate('ownerApi', owner),
            ...tooMany5xx,
          },
        }
      : {}),
  };
}

/**
 * The gates' usage publishing. key-api writes these metrics at the end of the failing invocation,
 * never buffered, so the alarms are as prompt as the others; the owner API's gate writes the same,
 * as promptly, under its own service. In fail-open mode they are the only sign of lost billing.
 */
function gateAlarms(
  shape: DeploymentShape,
): Section<'publishFailures' | 'ownerApiPublishFailures' | 'ownerApiUnmetered'> {
  const owner = ownerApiServiceOf(shape);
  const ownerApiMetric = serviceMetric(owner);
  return {
    publishFailures: {
      id: 'PublishFailuresAlarm',
      name: 'usage-publish-failures',
      description:
        'key-api could not hand usage events to the transport: callers got 503 (fail closed) or the ' +
        'requests went through unmetered (fail open, see UnmeteredRequests).',
      metric: keyApiMetric(KeyApiMetric.publishFailures),
      ...ANY_ONE,
    },
    ownerApiPublishFailures: {
      id: 'OwnerApiPublishFailuresAlarm',
      name: `${owner}-usage-publish-failures`,
      description:
        `The gate in ${owner} (the owner API) could not hand usage events to the transport: ` +
        'callers got 503 (fail closed) or the requests went through unmetered (fail open, see ' +
        'UnmeteredRequests).',
      metric: ownerApiMetric(KeyApiMetric.publishFailures),
      ...ANY_ONE,
    },
    // Fail open only, and always with a publish failure: this one says the answers were delivered
    // and billing lost, not refused.
    ownerApiUnmetered: {
      id: 'OwnerApiUnmeteredAlarm',
      name: `${owner}-unmetered-requests`,
      description:
        `${owner} (the owner API, in fail-open mode) delivered billable answers without a usage ` +
        'event: that usage is lost to billing. Its log lines "usage event not published" carry the cause.',
      metric: ownerApiMetric(KeyApiMetric.unmetered),
      ...ANY_ONE,
    },
  };
}

/**
 * Any 500 at all: a DynamoDB ValidationException, a missing table or index, a thrown bug. It is no
 * outage and will not pass by itself. key-api writes the metric at the end of the failing
 * invocation (KEY_API_FAILURE_METRICS), user-api as it happens. The metrics are unlabelled: a label
 * would make CloudFormation's alarm a metric-math query.
 */
function internalErrorAlarms(
  shape: DeploymentShape,
): Section<'keyApiInternalErrors' | 'userApiInternalErrors' | 'ownerApiInternalErrors'> {
  const owner = ownerApiServiceOf(shape);
  return {
    keyApiInternalErrors: {
      id: 'KeyApiInternalErrorsAlarm',
      name: 'key-api-internal-errors',
      description:
        'key-api answered 500: a bug or a bad deploy (e.g. a DynamoDB ValidationException or a missing ' +
        'index), not an outage. Its log lines "key check failed" carry the cause.',
      metric: keyApiMetric(KeyApiMetric.internalErrors),
      ...ANY_ONE,
    },
    userApiInternalErrors: {
      id: 'UserApiInternalErrorsAlarm',
      name: 'user-api-internal-errors',
      description:
        'user-api answered 500: a bug or a bad deploy, not an outage. Its log lines "unhandled error" ' +
        'carry the cause.',
      metric: userApiMetric(UserApiMetric.internalErrors),
      ...ANY_ONE,
    },
    ownerApiInternalErrors: {
      id: 'OwnerApiInternalErrorsAlarm',
      name: `${owner}-internal-errors`,
      description:
        `The gate in ${owner} (the owner API) answered 500: a bug or a bad deploy (e.g. a ` +
        'missing index), not an outage. Its log lines "key check failed" (or, behind the ALB wrapper, ' +
        '"gated handler failed") carry the cause.',
      metric: serviceMetric(owner)(KeyApiMetric.internalErrors),
      ...ANY_ONE,
    },
  };
}

/**
 * Export lag beyond two missed export runs and a run's own time: one failed run is retried by the
 * next, two in a row are not chance (Stripe down, the secret key wrong, a bug).
 */
export const MAX_BILLING_EXPORT_LAG_SECONDS = (2 * DEFAULT_EXPORT_INTERVAL_MS) / 1000 + 5 * 60;

/** Billing with Stripe: what was invoiced is not what was metered, or will not be in time. */
function billingAlarms(): Section<'billingDrift' | 'billingExportLag'> {
  return {
    billingDrift: {
      id: 'BillingDriftAlarm',
      name: 'billing-drift',
      description:
        "The daily reconciliation found Stripe's meter totals differing from Tollgate's counters after re-pushing " +
        'the short days: a day Stripe holds more of (it is never lowered automatically) or one that would not take. ' +
        'The schedule function\'s log lines "provider holds more usage than was metered" and "provider short of the ' +
        'counters" name the account and day (docs/billing.md).',
      metric: billingMetric(BillingMetric.drift, { statistic: 'Maximum' }),
      threshold: 0,
      comparisonOperator: 'GreaterThanThreshold',
      evaluationPeriods: 1,
    },
    billingExportLag: {
      id: 'BillingExportLagAlarm',
      name: 'billing-export-lag',
      description:
        `Metered usage has waited more than ${MAX_BILLING_EXPORT_LAG_SECONDS / 60} minutes (two export intervals and ` +
        "a margin) to reach Stripe: exports are failing (see BillingPushFailures and the schedule function's " +
        'errors). An invoice finalized now would miss that usage.',
      metric: billingMetric(BillingMetric.exportLag, { statistic: 'Maximum' }),
      threshold: MAX_BILLING_EXPORT_LAG_SECONDS,
      comparisonOperator: 'GreaterThanThreshold',
      evaluationPeriods: 1,
    },
  };
}
