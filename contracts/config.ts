import { z } from 'zod';
import { DEFAULT_METER_EVENT_NAME, DEFAULT_PAST_DUE_GRACE_MS } from './billing';
import { SERVICE_NAMES } from './metric-names';
import { DEFAULT_TRANSPORT, TRANSPORTS } from './transport';

/**
 * The env contract: every variable a deployable reads, by name, with its schema. The services
 * parse their environment with these schemas at cold start; the CDK grant helpers set variables by
 * these names; the local stack builds its handlers' configuration from them; the infra tests derive
 * the environment each function must have from them. A variable is named here or nowhere.
 */
export const ENV = {
  accountsTable: 'TOLLGATE_ACCOUNTS_TABLE',
  keysTable: 'TOLLGATE_KEYS_TABLE',
  usageTable: 'TOLLGATE_USAGE_TABLE',
  plansTable: 'TOLLGATE_PLANS_TABLE',
  keyPrefix: 'TOLLGATE_KEY_PREFIX',
  transport: 'TOLLGATE_TRANSPORT',
  usageQueueUrl: 'TOLLGATE_USAGE_QUEUE_URL',
  usageStreamName: 'TOLLGATE_USAGE_STREAM_NAME',
  usageDlqUrl: 'TOLLGATE_USAGE_DLQ_URL',
  publishFailureMode: 'TOLLGATE_PUBLISH_FAILURE_MODE',
  allowedOrigins: 'TOLLGATE_ALLOWED_ORIGINS',
  keyCacheFreshMs: 'TOLLGATE_KEY_CACHE_FRESH_MS',
  keyCacheStaleMs: 'TOLLGATE_KEY_CACHE_STALE_MS',
  keyCacheNegativeMs: 'TOLLGATE_KEY_CACHE_NEGATIVE_MS',
  keyCacheMaxEntries: 'TOLLGATE_KEY_CACHE_MAX_ENTRIES',
  metricsFlushMs: 'TOLLGATE_METRICS_FLUSH_MS',
  refusalsFlushMs: 'TOLLGATE_REFUSALS_FLUSH_MS',
  quotaReadIntervalMs: 'TOLLGATE_QUOTA_READ_INTERVAL_MS',
  guessBudget: 'TOLLGATE_GUESS_BUDGET',
  guessWindowMs: 'TOLLGATE_GUESS_WINDOW_MS',
  guessMaxClients: 'TOLLGATE_GUESS_MAX_CLIENTS',
  lateWindowMs: 'TOLLGATE_LATE_WINDOW_MS',
  /** How metering tells a redelivered SQS event from a new one: `ledger` (default) or `marks`. */
  sqsDedupe: 'TOLLGATE_SQS_DEDUPE',
  /** When the SQS ledger applies its journals to the counters: `fresh`, `balanced` (default), `economy`. */
  ledgerFlush: 'TOLLGATE_LEDGER_FLUSH',
  futureWindowMs: 'TOLLGATE_FUTURE_WINDOW_MS',
  jwtIssuer: 'TOLLGATE_JWT_ISSUER',
  jwksUri: 'TOLLGATE_JWKS_URI',
  userPoolClientId: 'TOLLGATE_USER_POOL_CLIENT_ID',
  rollGraceMs: 'TOLLGATE_ROLL_GRACE_MS',
  /** The deployment's time zone for usage answers, an IANA name (`Europe/Paris`); an account may choose its own. */
  timeZone: 'TOLLGATE_TIMEZONE',
  signInMaxAgeMs: 'TOLLGATE_SIGN_IN_MAX_AGE_MS',
  alertFromAddress: 'TOLLGATE_ALERT_FROM_ADDRESS',
  alertConfigurationSet: 'TOLLGATE_ALERT_CONFIGURATION_SET',
  alertUserPoolId: 'TOLLGATE_ALERT_USER_POOL_ID',
  billingTable: 'TOLLGATE_BILLING_TABLE',
  /** Secrets Manager ARNs (or names): the values are read at cold start, never put in the environment. */
  stripeSecretKeyArn: 'TOLLGATE_STRIPE_SECRET_KEY_ARN',
  stripeWebhookSecretArn: 'TOLLGATE_STRIPE_WEBHOOK_SECRET_ARN',
  /** Where the Stripe SDK connects; unset: Stripe itself. The local stack points it at its stand-in. */
  stripeApiUrl: 'TOLLGATE_STRIPE_API_URL',
  billingMeterId: 'TOLLGATE_BILLING_METER_ID',
  billingMeterEvent: 'TOLLGATE_BILLING_METER_EVENT',
  /** Where Checkout and the customer portal send the customer back: the web page. */
  billingReturnUrl: 'TOLLGATE_BILLING_RETURN_URL',
  pastDueGraceMs: 'TOLLGATE_PAST_DUE_GRACE_MS',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];

/**
 * key-api's cache windows, documented in docs/keys.md ("The key cache"): a revoked key stops working at most `freshMs`
 * (10 s) after its revocation while DynamoDB answers; during a DynamoDB outage a known key keeps its
 * last answer for up to `freshMs + staleMs` (10 s + 60 s): long enough to ride out a brief outage,
 * short enough that a revoked key cannot outlive its revocation by more than a minute even when an
 * attacker's flood gets the table throttled.
 */
export const DEFAULT_KEY_CACHE_WINDOWS = {
  freshMs: 10_000,
  staleMs: 60_000,
  negativeMs: 3_000,
  maxEntries: 50_000,
} as const;

/**
 * The gate's guess throttle (services/gate/guess-throttle.ts): per client address and container, at
 * most `budget` lookups that find no key per `windowMs`. 20 a minute is what one client retrying a
 * single wrong key flat out costs against the 3 s negative window (one read per window), so such a
 * client is never refused with 429, and real keys are never charged; a guesser is held to one read
 * per 3 s per address per container instead of one per request (thousands a second). `maxClients`
 * bounds the memory (a few hundred bytes a client, some 10 MB at the bound): an address flood
 * evicts the least recently seen.
 */
export const DEFAULT_GUESS_THROTTLE = { budget: 20, windowMs: 60_000, maxClients: 50_000 } as const;

/**
 * Metering's acceptance window: events older than `lateMs` (their day is closed) or dated further
 * ahead than `futureMs` (clock skew allowance) are dead-lettered, never counted.
 */
export const DEFAULT_ACCEPTANCE_WINDOW = { lateMs: 48 * 3600_000, futureMs: 5 * 60_000 } as const;

/** How SQS redeliveries are told apart (metering's TOLLGATE_SQS_DEDUPE). */
export const SQS_DEDUPE_MODES = ['ledger', 'marks'] as const;

/**
 * The SQS ledger's flush profiles (services/metering/ledger/policy.ts has their figures): how long
 * committed usage may wait before it reaches the counters, against how many counter writes it saves.
 */
export const LEDGER_FLUSH_PROFILES = ['fresh', 'balanced', 'economy'] as const;
export const DEFAULT_LEDGER_FLUSH = 'balanced';

/** The gate re-reads an account's counted usage for its quota at most this often (per container). */
export const DEFAULT_QUOTA_READ_INTERVAL_MS = 1000;

/** How long routine metrics may wait before they are written, unless configured: one CloudWatch minute. */
export const DEFAULT_METRICS_FLUSH_MS = 60_000;

/** How long a gate container gathers refusals before it writes their summary (services/gate/refusal-tally.ts). */
export const DEFAULT_REFUSALS_FLUSH_MS = 5000;

/** How long a rolled key keeps working unless a roll asks for less. */
export const DEFAULT_ROLL_GRACE_MS = 24 * 3600_000;

/** The longest grace period a roll may give the old key, configured or asked for: 7 days. */
export const MAX_ROLL_GRACE_MS = 7 * 24 * 3600_000;

/**
 * How recent a sign-in must be to mint a secret (create, reveal, roll): the ID token's `auth_time`
 * no older than this. A stolen ID token works for its whole lifetime (an hour on Cognito by
 * default) and refreshes keep their `auth_time`, so without this it could mint keys for that hour;
 * with it, for at most 15 minutes after its owner signed in. 15 minutes covers a sitting of key
 * management (sign in, create, copy, roll) without asking twice; past it the page asks the owner
 * to sign in again and then finishes what they asked for. Seconds are the resolution of `auth_time`,
 * so less than one is refused; more than a day (the longest ID token Cognito issues) would never
 * apply.
 */
export const DEFAULT_SIGN_IN_MAX_AGE_MS = 15 * 60_000;
export const MAX_SIGN_IN_MAX_AGE_MS = 24 * 3600_000;

export const DEFAULT_KEY_PREFIX = 'tg';

/** A comma-separated list, items trimmed, empty ones dropped; '' or unset is the empty list. */
export const commaListSchema = z
  .string()
  .default('')
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item.length > 0),
  );

/** Comma-separated origins, e.g. `https://app.example.com,http://localhost:5173`. */
export const originListSchema = commaListSchema.pipe(z.array(z.url({ protocol: /^https?$/ })));

const tableName = z.string().min(3);
const int = (min: 0 | 1, fallback: number) =>
  (min === 0 ? z.coerce.number().int().nonnegative() : z.coerce.number().int().positive()).default(fallback);

/** Variables every deployable that touches key data reads. */
const keyData = {
  [ENV.accountsTable]: tableName,
  [ENV.keysTable]: tableName,
  [ENV.keyPrefix]: z
    .string()
    .regex(/^[a-z][a-z0-9]{1,15}$/, 'lowercase letters and digits, 2-16 characters')
    .default(DEFAULT_KEY_PREFIX),
};

export const authTriggersConfigSchema = z.object(keyData);

/**
 * What every gate reads: key-api's own and the gate an owner's handler runs behind (services/gate):
 * where keys are looked up, where usage events go, the cache windows.
 */
const gateShape = {
  ...keyData,
  /** Plans and account standing (suspension) are enforced by the gate; quotas read the usage counters. */
  [ENV.plansTable]: tableName,
  [ENV.usageTable]: tableName,
  [ENV.transport]: z.enum(TRANSPORTS).default(DEFAULT_TRANSPORT),
  [ENV.usageQueueUrl]: z.url().optional(),
  [ENV.usageStreamName]: z.string().min(1).optional(),
  /** closed: answer 503 when usage cannot be recorded; open: let it through as unmetered. */
  [ENV.publishFailureMode]: z.enum(['closed', 'open']).default('closed'),
  [ENV.keyCacheFreshMs]: int(1, DEFAULT_KEY_CACHE_WINDOWS.freshMs),
  [ENV.keyCacheStaleMs]: int(0, DEFAULT_KEY_CACHE_WINDOWS.staleMs),
  [ENV.keyCacheNegativeMs]: int(0, DEFAULT_KEY_CACHE_WINDOWS.negativeMs),
  [ENV.keyCacheMaxEntries]: int(1, DEFAULT_KEY_CACHE_WINDOWS.maxEntries),
  [ENV.metricsFlushMs]: int(0, DEFAULT_METRICS_FLUSH_MS),
  /** Refusals per key are written as one summary per this interval and container (what a crash loses). */
  [ENV.refusalsFlushMs]: int(1, DEFAULT_REFUSALS_FLUSH_MS),
  /** How long a quota's counted usage is reused per account and container (the overshoot bound's I). */
  [ENV.quotaReadIntervalMs]: int(1, DEFAULT_QUOTA_READ_INTERVAL_MS),
  /** Lookups of unknown keys per client address per window and container; 0 turns the throttle off. */
  [ENV.guessBudget]: int(0, DEFAULT_GUESS_THROTTLE.budget),
  [ENV.guessWindowMs]: int(1, DEFAULT_GUESS_THROTTLE.windowMs),
  [ENV.guessMaxClients]: int(1, DEFAULT_GUESS_THROTTLE.maxClients),
};

const transportTarget = <T extends z.ZodObject>(schema: T) =>
  schema.refine(
    (c: Record<string, unknown>) =>
      c[ENV.transport] === 'sqs' ? !!c[ENV.usageQueueUrl] : !!c[ENV.usageStreamName],
    {
      message: `${ENV.usageQueueUrl} (sqs) or ${ENV.usageStreamName} (kinesis) is required for the transport`,
    },
  );

/** A gate in an owner's function (the example API's, or yours): services/gate/compose.ts. */
export const gateConfigSchema = transportTarget(z.object(gateShape));

export const keyApiConfigSchema = transportTarget(
  z.object({ ...gateShape, [ENV.allowedOrigins]: originListSchema }),
);

export const meteringConfigSchema = z.object({
  [ENV.usageTable]: tableName,
  /**
   * Every event's key is checked against its account here before it is counted (provenance):
   * required, so a consumer that could not check never starts.
   */
  [ENV.keysTable]: tableName,
  /** Quota alerts read accounts and their plans; without both tables no alerts are sent. */
  [ENV.accountsTable]: tableName.optional(),
  [ENV.plansTable]: tableName.optional(),
  /** SES sender of quota alerts (a verified identity); unset on AWS: no alerts are emailed. */
  [ENV.alertFromAddress]: z.email().optional(),
  /** The SES configuration set whose send events confirm an alert's delivery (alert-events.ts). */
  [ENV.alertConfigurationSet]: z.string().min(1).optional(),
  /** Where an alert's address is read at send time (AdminGetUser); unset: the sign-up address. */
  [ENV.alertUserPoolId]: z.string().min(1).optional(),
  [ENV.usageDlqUrl]: z.url(),
  [ENV.transport]: z.enum(TRANSPORTS).default(DEFAULT_TRANSPORT),
  [ENV.lateWindowMs]: int(1, DEFAULT_ACCEPTANCE_WINDOW.lateMs),
  [ENV.futureWindowMs]: int(0, DEFAULT_ACCEPTANCE_WINDOW.futureMs),
  /**
   * SQS events that carry their producer's numbering (pid, seq, at) are claimed in a ledger, one
   * conditional write per batch (docs/metering.md, "The SQS ledger"); `marks` writes a dedupe mark
   * per event instead, as before the ledger. Events without a numbering always take the marks.
   */
  [ENV.sqsDedupe]: z.enum(SQS_DEDUPE_MODES).default('ledger'),
  [ENV.ledgerFlush]: z.enum(LEDGER_FLUSH_PROFILES).default(DEFAULT_LEDGER_FLUSH),
  /**
   * The usage queue itself: the ledger schedules its tail flush there as a delayed message. Unset,
   * the commit of a burst's tail waits in the invocation for it instead.
   */
  [ENV.usageQueueUrl]: z.url().optional(),
});

/** What every deployable that calls Stripe reads. */
const stripeAccess = {
  [ENV.stripeSecretKeyArn]: z.string().min(1),
  [ENV.stripeApiUrl]: z.url({ protocol: /^https?$/ }).optional(),
};

/**
 * The billing jobs (services/billing-jobs): the Stripe webhook, and the scheduled export and
 * reconciliation. They set plans and standing (accounts, plans), read the counters (usage), and
 * keep their own state (billing).
 */
export const billingJobsConfigSchema = z.object({
  [ENV.accountsTable]: tableName,
  [ENV.plansTable]: tableName,
  [ENV.usageTable]: tableName,
  [ENV.billingTable]: tableName,
  ...stripeAccess,
  [ENV.stripeWebhookSecretArn]: z.string().min(1),
  /** The Stripe meter usage is reported to: its `event_name` for pushes, its id for summaries. */
  [ENV.billingMeterId]: z.string().min(1),
  [ENV.billingMeterEvent]: z.string().min(1).default(DEFAULT_METER_EVENT_NAME),
  [ENV.pastDueGraceMs]: int(0, DEFAULT_PAST_DUE_GRACE_MS),
  /** Days whose counters can still change (late events) are re-read by every export. */
  [ENV.lateWindowMs]: int(1, DEFAULT_ACCEPTANCE_WINDOW.lateMs),
});

/**
 * user-api's billing routes (`/billing/*`, `/me/billing`): all of these, or none (the routes then
 * answer 404 `not_found`, billing not configured).
 */
const userApiBilling = {
  [ENV.billingTable]: tableName.optional(),
  [ENV.stripeSecretKeyArn]: z.string().min(1).optional(),
  [ENV.stripeApiUrl]: z.url({ protocol: /^https?$/ }).optional(),
  [ENV.billingReturnUrl]: z.url({ protocol: /^https?$/ }).optional(),
};

/** An IANA time-zone name the runtime knows (Intl's database, the same on Node 20 and 22). */
export const timeZoneSchema = z
  .string()
  .min(1)
  .max(64)
  .refine((name) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: name });
      return true;
    } catch {
      return false;
    }
  }, 'an IANA time zone such as Europe/Paris or UTC');

export const userApiConfigSchema = z.object({
  ...keyData,
  ...userApiBilling,
  [ENV.usageTable]: tableName,
  [ENV.plansTable]: tableName,
  [ENV.jwtIssuer]: z.url(),
  [ENV.jwksUri]: z.url(),
  [ENV.userPoolClientId]: z.string().min(1),
  [ENV.allowedOrigins]: originListSchema,
  [ENV.rollGraceMs]: z.coerce
    .number()
    .int()
    .nonnegative()
    .max(MAX_ROLL_GRACE_MS)
    .default(DEFAULT_ROLL_GRACE_MS),
  /** Minting routes refuse tokens whose sign-in (`auth_time`) is older: 401 `reauthentication_required`. */
  [ENV.signInMaxAgeMs]: z.coerce
    .number()
    .int()
    .min(1000)
    .max(MAX_SIGN_IN_MAX_AGE_MS)
    .default(DEFAULT_SIGN_IN_MAX_AGE_MS),
  /** Usage answers are in the account's time zone, this one until the owner picks theirs. */
  [ENV.timeZone]: timeZoneSchema.default('UTC'),
});

export type AuthTriggersConfig = z.infer<typeof authTriggersConfigSchema>;
export type KeyApiConfig = z.infer<typeof keyApiConfigSchema>;
export type GateConfig = z.infer<typeof gateConfigSchema>;
export type MeteringConfig = z.infer<typeof meteringConfigSchema>;
export type UserApiConfig = z.infer<typeof userApiConfigSchema>;
export type BillingJobsConfig = z.infer<typeof billingJobsConfigSchema>;

/** Each deployable's schema, by the service name its functions and logs carry. */
export const CONFIG_SCHEMAS = {
  [SERVICE_NAMES.authTriggers]: authTriggersConfigSchema,
  [SERVICE_NAMES.keyApi]: keyApiConfigSchema,
  [SERVICE_NAMES.metering]: meteringConfigSchema,
  [SERVICE_NAMES.userApi]: userApiConfigSchema,
  [SERVICE_NAMES.exampleApi]: gateConfigSchema,
  [SERVICE_NAMES.billing]: billingJobsConfigSchema,
} as const;

/**
 * The variables a deployable's schema requires (no default, not optional): what its deployment
 * must set. The infra tests check every function's environment against this.
 */
export function requiredVariables(schema: z.ZodObject): string[] {
  return Object.entries(schema.shape)
    .filter(([, field]) => !(field as z.ZodType).safeParse(undefined).success)
    .map(([name]) => name);
}
