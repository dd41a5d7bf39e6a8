/**
 * Every custom metric Tollgate emits, in one place: the services' Powertools metrics and the CDK
 * dashboard both read these names, so renaming one cannot silently empty a widget.
 */
export const METRICS_NAMESPACE = 'Tollgate';

export const KeyApiMetric = {
  /** One per key check, named by outcome. */
  checks: {
    accepted: 'KeyChecksAccepted',
    missing: 'KeyChecksMissing',
    malformed: 'KeyChecksMalformed',
    unknown: 'KeyChecksUnknown',
    revoked: 'KeyChecksRevoked',
    expired: 'KeyChecksExpired',
    invalid: 'KeyChecksInvalid',
    unavailable: 'KeyChecksUnavailable',
    /** Refused by the plan (services/gate/limits.ts): never billed. */
    suspended: 'RequestsRefusedSuspended',
    rateLimited: 'RequestsRateLimited',
    quotaExceeded: 'RequestsQuotaExceeded',
  },
  /**
   * Key checks refused (429 `too_many_guesses`) without a lookup: their client's budget of lookups
   * of unknown keys was spent (services/gate/guess-throttle.ts).
   */
  guessesThrottled: 'KeyGuessesThrottled',
  cacheHits: 'KeyCacheHits',
  cacheMisses: 'KeyCacheMisses',
  cacheStaleServed: 'KeyCacheStaleServed',
  publishLatency: 'UsagePublishLatency',
  publishFailures: 'UsagePublishFailures',
  /** Admitted requests whose answer the owner's billing policy does not bill (the gate). */
  notBilled: 'ResponsesNotBilled',
  /** Requests let through without a usage event because publishing failed in fail-open mode. */
  unmetered: 'UnmeteredRequests',
  /** 500 answers: a bug or a bad deploy (e.g. a DynamoDB ValidationException), never an outage. */
  internalErrors: 'InternalErrors',
} as const;

/**
 * key-api metrics that say something is failing. key-api buffers its routine metrics across
 * invocations (services/gate/buffered-metrics.ts); these are written at the end of the invocation
 * that recorded them, so a dashboard or alarm reading them is never a flush interval behind.
 */
export const KEY_API_FAILURE_METRICS: readonly string[] = [
  KeyApiMetric.publishFailures,
  KeyApiMetric.unmetered,
  KeyApiMetric.checks.unavailable,
  KeyApiMetric.internalErrors,
];

/** user-api records failures only, each written as it happens (services/user-api/compose.ts). */
export const UserApiMetric = {
  /** 500 answers: a bug or a bad deploy, never an outage (those are 503s). */
  internalErrors: 'InternalErrors',
} as const;

export const MeteringMetric = {
  batchSize: 'ConsumerBatchSize',
  eventsCounted: 'EventsCounted',
  eventsDuplicate: 'EventsDuplicate',
  eventsDeadLettered: 'EventsDeadLettered',
  aggregatesFailed: 'AggregatesFailed',
  counterWriteRequests: 'CounterWriteRequests',
  eventsPerWrite: 'EventsPerWrite',
  /** Emails sent to owners whose account crossed 80 % or 100 % of its quota. */
  quotaAlertsSent: 'QuotaAlertsSent',
  /** Event time → counted, milliseconds: how far usage lags behind traffic. */
  usageLag: 'UsageLag',
  /** BatchGetItem requests of the keys table made by the provenance check (its read cost). */
  provenanceReads: 'ProvenanceReadRequests',
  /** Batches whose provenance could not be checked (keys table unavailable): retried, not counted. */
  provenanceCheckFailures: 'ProvenanceCheckFailures',
  /** Events the SQS ledger's backstop applied to the counters: pending when traffic stopped, or a flush it took over. */
  ledgerBackstopEvents: 'LedgerBackstopEvents',
} as const;

/**
 * Metering's records dead-lettered, one metric per reason (services/metering/batch.ts
 * RejectReason; kept apart from MeteringMetric, whose values are flat names). The provenance ones
 * (`unknown_key`, `account_mismatch`) mean something other than the gate wrote to the queue or
 * stream, or a redrive replayed foreign records: worth an alarm at any value.
 */
export const MeteringRefusedMetric = {
  invalid_json: 'EventsRefusedInvalidJson',
  invalid_event: 'EventsRefusedInvalidEvent',
  too_old: 'EventsRefusedTooOld',
  future: 'EventsRefusedFuture',
  unknown_key: 'EventsRefusedUnknownKey',
  account_mismatch: 'EventsRefusedAccountMismatch',
} as const;

export const SERVICE_NAMES = {
  keyApi: 'key-api',
  metering: 'metering',
  userApi: 'user-api',
  authTriggers: 'auth-triggers',
  /** The example owner API behind the gate (examples/rates-api). */
  exampleApi: 'example-api',
  /** The Stripe webhook and the scheduled export / reconciliation (services/billing-jobs). */
  billing: 'billing',
} as const;

/** Billing (services/billing, services/billing-jobs): docs/billing.md says what each one means. */
export const BillingMetric = {
  /**
   * Per reconciliation: the units by which the billing provider's totals differ from Tollgate's
   * counters over the days it compared, after re-pushing the short ones (0 when billed = metered).
   */
  drift: 'BillingDrift',
  /**
   * Seconds since the oldest metered usage not yet reported to the provider (0 when every
   * account-day is reported): how far the invoice's usage trails the counters.
   */
  exportLag: 'BillingExportLag',
  /** Account-day totals pushed (accepted, or refused as a duplicate identifier: already there). */
  pushes: 'BillingPushes',
  /** Pushes that failed (5xx, timeout, 429 after retries): retried by the next run. */
  pushFailures: 'BillingPushFailures',
  /** Samples of the provider's meter error reports (an event it accepted and then refused). */
  meterErrors: 'BillingMeterErrors',
  /** Webhook deliveries refused for a bad or missing signature (400, nothing changed). */
  webhookRejected: 'BillingWebhookRejected',
  /** Webhook events applied (a plan or standing changed). */
  webhookApplied: 'BillingWebhookApplied',
} as const;
