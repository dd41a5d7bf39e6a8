import type { RemovalPolicy, StackProps } from 'aws-cdk-lib';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Transport } from '../../contracts/transport';
import type { LedgerFlushProfile } from './constructs/sqs-ledger';
import type { FunctionLogLevel } from './constructs/tollgate-function';
import type { RateLimits } from './constructs/web-acls';

/**
 * Reserved concurrency of key-api, unless told otherwise. A cap and a guarantee at once: a flood of
 * requests (forged keys included) can hold at most 100 executions, so metering, user-api and the
 * owner API keep the rest of the account's pool (1,000 by default: 900 stay unreserved, far above
 * the 100 Lambda requires to remain unreserved), and key-api always has its 100, which at a few
 * milliseconds per cached check is thousands of requests per second.
 */
export const DEFAULT_KEY_API_RESERVED_CONCURRENCY = 100;

/**
 * What a Tollgate deployment can be told, in its own module: config.ts builds these props from
 * CDK context and tollgate-stack.ts consumes them, and neither imports the other.
 */
export interface TollgateStackProps extends StackProps {
  /**
   * Part of every resource name (`tollgate-<stage>-…`), like the local stack's `local`.
   * @default 'prod'
   */
  readonly stage?: string;
  /**
   * How usage events travel from key-api to metering.
   * @default DEFAULT_TRANSPORT ('sqs')
   */
  readonly transport?: Transport;
  /**
   * Kinesis only: provisioned shards, or `on-demand`. Each shard is read by one metering batch at
   * a time (ParallelizationFactor 1), so shards are how the Kinesis consumer scales.
   * @default usageStream.shardCount (1)
   */
  readonly kinesisShards?: number | 'on-demand';
  /**
   * Metering's late window (TOLLGATE_LATE_WINDOW_MS): events older than this are refused. The
   * queue's redelivery, the Kinesis retries and every retention are derived from it
   * (contracts/redelivery.ts), so usage waits out an outage until the window nears.
   * @default DEFAULT_ACCEPTANCE_WINDOW.lateMs (48 h)
   */
  readonly lateWindowMs?: number;
  /**
   * SQS only: when metering's ledger applies committed usage to the counters
   * (TOLLGATE_LEDGER_FLUSH): `fresh` at every batch (the counters trail least, the most counter
   * writes), `balanced` within 5 s or 2,000 events, `economy` within 30 s or 5,000 (the fewest
   * writes) with a 5 s batching window on the queue instead of 1 s. Usage reads show commits
   * whatever the profile; the gate's quota sees the counters.
   * Refused with the Kinesis transport, which has no ledger.
   * @default DEFAULT_LEDGER_FLUSH ('balanced')
   */
  readonly ledgerFlush?: LedgerFlushProfile;
  /**
   * ACM certificate for the key API's HTTPS listener (port 80 then only redirects to it). The
   * context reader (config.ts) refuses a `prod` stage without one unless `allowInsecureHttp`.
   * @default - plain HTTP on port 80
   */
  readonly certificateArn?: string;
  /**
   * Executions reserved for key-api (a guarantee and a cap: see
   * {@link DEFAULT_KEY_API_RESERVED_CONCURRENCY}), or `none` to leave it in the account's
   * unreserved pool (for accounts whose concurrency limit is too low to reserve any).
   * @default DEFAULT_KEY_API_RESERVED_CONCURRENCY (100)
   */
  readonly keyApiReservedConcurrency?: number | 'none';
  /**
   * Requests per source IP address per five minutes past which the WAF web ACLs block that
   * address (each ACL's rate-based rule), per front door.
   * @default DEFAULT_RATE_LIMITS (key API 30,000; user API 1,000; user pool 300)
   */
  readonly rateLimits?: Partial<RateLimits>;
  /**
   * The key API's DNS name (pointed at the ALB by you), for the reported URL.
   * @default - the ALB's DNS name
   */
  readonly keyApiDomainName?: string;
  /**
   * Custom domain names for the web page.
   * @default - the CloudFront domain only
   */
  readonly webDomainNames?: readonly string[];
  /**
   * ACM certificate in us-east-1 for `webDomainNames`.
   * @default - CloudFront's default certificate
   */
  readonly webCertificateArn?: string;
  /**
   * Browser origins allowed to call the APIs besides the web page's own (e.g. a local dev server).
   * @default - none
   */
  readonly allowedOrigins?: readonly string[];
  /**
   * Prefix of every minted API key.
   * @default DEFAULT_KEY_PREFIX ('tg')
   */
  readonly keyPrefix?: string;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
  /**
   * Lowest level of the functions' own logs sent to CloudWatch Logs (Lambda's platform lines are
   * always filtered to WARN).
   * @default ApplicationLogLevel.INFO
   */
  readonly applicationLogLevel?: FunctionLogLevel;
  /**
   * Fate of the tables and the user pool when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly dataRemovalPolicy?: RemovalPolicy;
  /**
   * Subscribed to the alarm topic.
   * @default - no subscription
   */
  readonly alarmEmail?: string;
  /**
   * Sender of the quota alerts (80 % and 100 % of a plan's quota) metering emails to account
   * owners through Amazon SES: an address whose identity (the address or its domain) is verified
   * in SES in the stack's region. Setting it gives metering the reads and the send the alerts need
   * and the variables that turn them on.
   * @default - no quota alerts: metering gets neither the permissions nor the variables
   */
  readonly alertFromAddress?: string;
  /**
   * Billing with Stripe (docs/billing.md, "Deploying billing"): the meter usage is reported to
   * (`mtr_…`, created in Stripe first) and, optionally, its event name. Setting it deploys the
   * Stripe secrets, the webhook and its HTTP API, the scheduled export and reconciliation, user-api's
   * billing routes and the billing alarms.
   * @default - no billing: user-api's billing routes answer 404, plans are assigned by the admins
   */
  readonly billing?: { readonly meterId: string; readonly meterEventName?: string };
  /**
   * The owner API behind the gate: its handler file (export `handler`, answering ALB events), as a
   * path from the repository root, inside it.
   * @default EXAMPLE_API_ENTRY ('examples/rates-api/handler.ts')
   */
  readonly ownerApiEntry?: string;
  /**
   * ALB path patterns the load balancer forwards to the owner API, first match first; key-api
   * answers every other request.
   * @default EXAMPLE_API_PATHS (['/v1/*', '/openapi.json'])
   */
  readonly ownerApiPaths?: readonly string[];
  /**
   * Built web page to upload (a directory with index.html).
   * @default - the bucket and distribution are created empty
   */
  readonly webAssetsPath?: string;
}
