import type { RemovalPolicy, StackProps } from 'aws-cdk-lib';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Transport } from '../../contracts/transport';
import type { FunctionLogLevel } from './constructs/tollgate-function';

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
   * ACM certificate for the key API's HTTPS listener.
   * @default - plain HTTP on port 80
   */
  readonly certificateArn?: string;
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
