import { existsSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { RemovalPolicy } from 'aws-cdk-lib';
import { ApplicationLogLevel } from 'aws-cdk-lib/aws-lambda';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Node } from 'constructs';
import { z } from 'zod';
import {
  commaListSchema,
  DEFAULT_ACCEPTANCE_WINDOW,
  ENV,
  LEDGER_FLUSH_PROFILES,
  originListSchema,
} from '../../contracts/config';
import { MAX_LATE_WINDOW_MS } from '../../contracts/redelivery';
import { usageStream } from '../../contracts/resources';
import { DEFAULT_TRANSPORT, TRANSPORTS } from '../../contracts/transport';
import { EXAMPLE_API_ENTRY, EXAMPLE_API_PATHS, REPO_ROOT, WEB_DIST } from './paths';
import { DEFAULT_KEY_API_RESERVED_CONCURRENCY, type TollgateStackProps } from './stack-props';

/** Region used when neither context, the CDK CLI nor the AWS environment names one. */
export const FALLBACK_REGION = 'us-east-1';

/** Listener rules (one per pattern) the owner API may take of the 100 an ALB holds. */
const MAX_OWNER_API_PATHS = 50;

/** A file inside the repository (esbuild bundles from its root), given from that root. */
const isRepositoryFile = (path: string): boolean => {
  const absolute = resolve(REPO_ROOT, path);
  const fromRoot = relative(REPO_ROOT, absolute);
  if (fromRoot === '' || fromRoot === '..' || fromRoot.startsWith(`..${sep}`) || isAbsolute(fromRoot))
    return false;
  return existsSync(absolute) && statSync(absolute).isFile();
};

/**
 * An ALB path pattern: up to 128 characters of those ALB accepts, `*` and `?` as wildcards,
 * matched case-sensitively against the path alone (no query string).
 */
const pathPatternSchema = z
  .string()
  .max(128)
  .regex(/^\/[A-Za-z0-9_\-.$/~"'@:+&*?]*$/, 'a path pattern such as /v1/* (starts with /)');

/** The stage that refuses plain HTTP unless told otherwise: the default one. */
export const PROD_STAGE = 'prod';

/**
 * Why a `prod` stage without a certificate does not synthesize: one line, naming both ways out.
 * Exported for the tests and docs/deploy.md, which quote it.
 */
export const INSECURE_HTTP_REFUSAL =
  `stage ${PROD_STAGE} would serve the key API over plain HTTP (API keys in clear text): ` +
  "deploy with -c certificateArn=arn:aws:acm:... (an ACM certificate in the stack's region), " +
  'or accept plain HTTP explicitly with -c allowInsecureHttp=true';

/** `-c flag=true|false` arrives as a string, cdk.json may hold a boolean. */
const booleanSchema = z.union([
  z.boolean(),
  z.enum(['true', 'false']).transform((value) => value === 'true'),
]);

const retentionDays = new Set<number>(
  Object.values(RetentionDays).filter((value): value is number => typeof value === 'number'),
);

/**
 * Every knob of a deployment, as it arrives from `-c key=value` (always strings) or cdk.json
 * (strings or JSON values). Validated once, before any construct is built, so a typo stops
 * `cdk synth` with one message instead of producing a half-configured stack.
 */
const contextSchema = z
  .object({
    stage: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,19}$/, 'lowercase letters, digits and dashes, starting with a letter')
      .default('prod'),
    transport: z.enum(TRANSPORTS).default(DEFAULT_TRANSPORT),
    // Kinesis only: a number of provisioned shards, or `on-demand` (the stream scales itself and
    // bills per GB instead of per shard-hour).
    kinesisShards: z
      .union([z.literal('on-demand'), z.coerce.number().int().min(1).max(500)])
      .default(usageStream.shardCount),
    // SQS only: the ledger's flush profile (unset: DEFAULT_LEDGER_FLUSH, in the stack).
    ledgerFlush: z.enum(LEDGER_FLUSH_PROFILES).optional(),
    // Metering's late window in hours (-c lateWindowHours=72): redelivery and retention follow it.
    lateWindowHours: z.coerce
      .number()
      .positive()
      .max(
        MAX_LATE_WINDOW_MS / 3_600_000,
        'at most 168 hours (7 days, the longest a Kinesis event source retries)',
      )
      .refine((hours) => hours * 3_600_000 >= 120_000, 'at least 2 minutes')
      .default(DEFAULT_ACCEPTANCE_WINDOW.lateMs / 3_600_000),
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'an AWS region such as eu-west-1')
      .optional(),
    certificateArn: z.string().startsWith('arn:').optional(),
    // Plain HTTP on a prod stage only when asked for by name (see INSECURE_HTTP_REFUSAL).
    allowInsecureHttp: booleanSchema.default(false),
    // `none` for an account whose concurrency limit is too low to reserve any (new accounts may
    // start at 10: Lambda refuses a reservation that leaves fewer than 100 unreserved).
    keyApiReservedConcurrency: z
      .union([z.literal('none'), z.coerce.number().int().min(1).max(10_000)])
      .default(DEFAULT_KEY_API_RESERVED_CONCURRENCY),
    keyApiDomainName: z.string().min(3).optional(),
    webDomainNames: commaListSchema,
    webCertificateArn: z.string().startsWith('arn:').optional(),
    allowedOrigins: originListSchema,
    logRetentionDays: z.coerce
      .number()
      .int()
      .refine((days) => retentionDays.has(days), 'one of the retention periods CloudWatch Logs offers')
      .default(RetentionDays.ONE_MONTH),
    // Not WARN or above: the functions' metrics are log lines Lambda files as INFO
    // (constructs/tollgate-function.ts, FunctionLogLevel).
    logLevel: z
      .string()
      .toUpperCase()
      .pipe(
        z.enum([ApplicationLogLevel.TRACE, ApplicationLogLevel.DEBUG, ApplicationLogLevel.INFO], {
          error: 'TRACE, DEBUG or INFO (a higher level would also drop the metrics, which are INFO lines)',
        }),
      )
      .default(ApplicationLogLevel.INFO),
    retainData: booleanSchema.default(true),
    alarmEmail: z.email().optional(),
    // Sender of the quota alerts metering emails through SES: an identity verified in the stack's
    // region. Unset, metering is given neither the permissions nor the variables and sends none.
    alertFromAddress: z.email().optional(),
    // Billing with Stripe (docs/billing.md): the meter's id (`mtr_…`) deploys it; its event name
    // only when not the default `tollgate_requests`.
    billingMeterId: z
      .string()
      .regex(/^mtr_[A-Za-z0-9_]+$/, 'a Stripe meter id such as mtr_61…')
      .optional(),
    billingMeterEvent: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'a meter event name')
      .optional(),
    // The owner API behind the gate: its handler file and the paths the ALB sends it.
    ownerApiEntry: z
      .string()
      .default(EXAMPLE_API_ENTRY)
      .refine(isRepositoryFile, 'a handler file inside the repository, as a path from its root'),
    ownerApiPaths: commaListSchema
      .transform((patterns) => (patterns.length > 0 ? patterns : [...EXAMPLE_API_PATHS]))
      .pipe(
        z
          .array(pathPatternSchema)
          .max(MAX_OWNER_API_PATHS, `at most ${MAX_OWNER_API_PATHS} path patterns (one listener rule each)`),
      ),
  })
  .refine((c) => c.ledgerFlush === undefined || c.transport === 'sqs', {
    message: "ledgerFlush is the SQS ledger's flush profile: the kinesis transport has no ledger",
    path: ['ledgerFlush'],
  })
  .refine((c) => c.billingMeterEvent === undefined || c.billingMeterId !== undefined, {
    message: 'billingMeterEvent needs billingMeterId (the Stripe meter that takes the events)',
    path: ['billingMeterId'],
  })
  .refine((c) => c.webDomainNames.length === 0 || c.webCertificateArn !== undefined, {
    message: 'webDomainNames needs webCertificateArn (an ACM certificate in us-east-1)',
    path: ['webCertificateArn'],
  })
  .refine((c) => c.stage !== PROD_STAGE || c.certificateArn !== undefined || c.allowInsecureHttp, {
    message: INSECURE_HTTP_REFUSAL,
    path: ['certificateArn'],
  });

export type DeploymentContext = z.infer<typeof contextSchema>;

export class DeploymentConfigError extends Error {
  override readonly name = 'DeploymentConfigError';
}

/**
 * Reads the deployment's settings from CDK context, with `TOLLGATE_TRANSPORT` from the
 * environment as a fallback for the transport (the same variable the handlers read).
 */
export function readDeploymentContext(
  node: Node,
  env: Record<string, string | undefined> = process.env,
): DeploymentContext {
  const raw = (key: string): unknown => {
    const value: unknown = node.tryGetContext(key);
    return value === '' ? undefined : value;
  };
  const input = {
    stage: raw('stage'),
    transport: raw('transport') ?? env[ENV.transport],
    kinesisShards: raw('kinesisShards'),
    ledgerFlush: raw('ledgerFlush'),
    lateWindowHours: raw('lateWindowHours'),
    region: raw('region') ?? env.CDK_DEFAULT_REGION ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION,
    certificateArn: raw('certificateArn'),
    allowInsecureHttp: raw('allowInsecureHttp'),
    keyApiReservedConcurrency: raw('keyApiReservedConcurrency'),
    keyApiDomainName: raw('keyApiDomainName'),
    webDomainNames: raw('webDomainNames'),
    webCertificateArn: raw('webCertificateArn'),
    allowedOrigins: raw('allowedOrigins'),
    logRetentionDays: raw('logRetentionDays'),
    logLevel: raw('logLevel'),
    retainData: raw('retainData'),
    alarmEmail: raw('alarmEmail'),
    alertFromAddress: raw('alertFromAddress'),
    billingMeterId: raw('billingMeterId'),
    billingMeterEvent: raw('billingMeterEvent'),
    ownerApiEntry: raw('ownerApiEntry'),
    ownerApiPaths: raw('ownerApiPaths'),
  };
  const parsed = contextSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(context)'}: ${i.message}`);
    throw new DeploymentConfigError(`invalid deployment context: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** The built web page, if there is one to deploy. */
export function builtWebAssets(): string | undefined {
  return existsSync(join(WEB_DIST, 'index.html')) ? WEB_DIST : undefined;
}

/** Turns the validated context into the stack's props. */
export function stackPropsFromContext(
  context: DeploymentContext,
  webAssetsPath: string | undefined,
): TollgateStackProps {
  return {
    // Region-bound but account-agnostic: ALB access logging needs the region's log-delivery
    // principal, while an unresolved account keeps synth free of lookups (and credentials).
    env: { region: context.region ?? FALLBACK_REGION },
    stackName: `tollgate-${context.stage}`,
    description: `Tollgate (${context.stage}): API keys and usage metering`,
    stage: context.stage,
    transport: context.transport,
    kinesisShards: context.kinesisShards,
    ...(context.ledgerFlush !== undefined ? { ledgerFlush: context.ledgerFlush } : {}),
    lateWindowMs: Math.round(context.lateWindowHours * 3_600_000),
    certificateArn: context.certificateArn,
    keyApiReservedConcurrency: context.keyApiReservedConcurrency,
    keyApiDomainName: context.keyApiDomainName,
    webDomainNames: context.webDomainNames,
    webCertificateArn: context.webCertificateArn,
    allowedOrigins: context.allowedOrigins,
    logRetention: context.logRetentionDays as RetentionDays,
    applicationLogLevel: context.logLevel,
    dataRemovalPolicy: context.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    alarmEmail: context.alarmEmail,
    alertFromAddress: context.alertFromAddress,
    billing: context.billingMeterId
      ? {
          meterId: context.billingMeterId,
          ...(context.billingMeterEvent ? { meterEventName: context.billingMeterEvent } : {}),
        }
      : undefined,
    ownerApiEntry: context.ownerApiEntry,
    ownerApiPaths: context.ownerApiPaths,
    webAssetsPath,
  };
}
