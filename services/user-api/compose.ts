import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ENV } from '../../contracts/config';
import { METRICS_NAMESPACE, SERVICE_NAMES } from '../../contracts/metric-names';
import { AccountDirectory } from '../accounts/account-directory';
import { KeyStore } from '../accounts/key-store';
import { PlanStore } from '../accounts/plan-store';
import type { BillingApi } from '../billing/api';
import { BillingAccounts } from '../billing/billing-accounts';
import { BillingSummary } from '../billing/billing-summary';
import { ExportLedger } from '../billing/export-ledger';
import { type BillingSecrets, secretsManagerSecrets } from '../billing/secrets';
import { BillingSessions } from '../billing/sessions';
import { stripeClient } from '../billing/stripe-client';
import { type AwsOptions, documentClient, userApiClientConfig } from '../platform/aws-clients';
import { type Clock, systemClock } from '../platform/clock';
import { type MetricsRecorder, writeAtOnce } from '../platform/metrics';
import { MonthReport } from '../usage/month-report';
import { sqsPendingUsage } from '../usage/pending-usage';
import { RefusalReader } from '../usage/refusals';
import { UsageReader } from '../usage/usage-reader';
import { createApp } from './app';
import type { UserApiConfig } from './config';
import { createCognitoIdTokenVerifier, type TokenVerifier } from './token-verifier';

/** What a caller may provide instead of what user-api builds from its configuration. */
export interface UserApiOverrides {
  /** Where the DynamoDB client built here points; ignored when `clients.dynamo` is given. */
  readonly aws?: AwsOptions;
  /** Used as it is: a client given here should be bounded too (userApiClientConfig). */
  readonly clients?: { readonly dynamo?: DynamoDBDocumentClient };
  /** Replaces the Cognito ID-token verifier built from the issuer and JWKS of the config. */
  readonly verifier?: TokenVerifier;
  readonly logger?: Logger;
  /**
   * Where failures (UserApiMetric) are counted.
   * @default Powertools Metrics (namespace METRICS_NAMESPACE, service user-api), each written at once
   */
  readonly metrics?: MetricsRecorder;
  readonly clock?: Clock;
  /** Replaces the BillingApi built from the config's billing settings (the local stack, tests). */
  readonly billing?: BillingApi;
  /**
   * Where the Stripe secret key comes from when the config has billing settings.
   * @default Secrets Manager, by the config's ARN
   */
  readonly billingSecrets?: BillingSecrets;
}

/**
 * user-api: its configuration and clients → the Hono app. Lambda (`handle`), the local server
 * (`serve`) and tests (`app.request`) run the app this returns.
 */
export function composeUserApi(config: UserApiConfig, overrides: UserApiOverrides = {}) {
  // Bounded (userApiClientConfig): a hung DynamoDB is a 503 with `retry-after` inside the
  // function's timeout, not API Gateway's 504.
  const dynamo = overrides.clients?.dynamo ?? documentClient(overrides.aws ?? {}, userApiClientConfig);
  const usage = new UsageReader({
    client: dynamo,
    table: config[ENV.usageTable],
    pending: sqsPendingUsage({ client: dynamo, table: config[ENV.usageTable] }),
  });
  const plans = new PlanStore({
    client: dynamo,
    plansTable: config[ENV.plansTable],
    accountsTable: config[ENV.accountsTable],
  });
  const billing =
    overrides.billing ?? composeBilling(config, { dynamo, usage, plans }, overrides.billingSecrets);
  const adminReports = {
    directory: new AccountDirectory({ client: dynamo, accountsTable: config[ENV.accountsTable] }),
    months: new MonthReport({ client: dynamo, table: config[ENV.usageTable] }),
  };
  return createApp({
    usage,
    refusals: new RefusalReader({ client: dynamo, table: config[ENV.usageTable] }),
    adminReports,
    store: new KeyStore({
      client: dynamo,
      accountsTable: config[ENV.accountsTable],
      keysTable: config[ENV.keysTable],
      keyPrefix: config[ENV.keyPrefix],
    }),
    plans,
    ...(billing ? { billing } : {}),
    verifier:
      overrides.verifier ??
      createCognitoIdTokenVerifier({
        issuer: config[ENV.jwtIssuer],
        jwksUri: config[ENV.jwksUri],
        clientId: config[ENV.userPoolClientId],
      }),
    clock: overrides.clock ?? systemClock,
    logger: overrides.logger ?? new Logger({ serviceName: SERVICE_NAMES.userApi }),
    metrics:
      overrides.metrics ??
      writeAtOnce(new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAMES.userApi })),
    allowedOrigins: config[ENV.allowedOrigins],
    rollGraceMs: config[ENV.rollGraceMs],
    defaultTimeZone: config[ENV.timeZone],
    signInMaxAgeMs: config[ENV.signInMaxAgeMs],
  });
}

/**
 * Inside user-api's 10 s function timeout: a hung Stripe call, tried twice, is a 503 with
 * `retry-after` in about 6 s, not API Gateway's 504. Stripe answers a Checkout Session in well under that.
 */
const STRIPE_TIMEOUT_MS = 3000;
const STRIPE_RETRIES = 1;

/**
 * Billing from the config's billing settings (all of them, or none: contracts/config.ts); without
 * them, none, and the billing routes answer 404. The Stripe key is read from Secrets Manager on
 * the first checkout or portal request, not at cold start (the summary never needs it), and read
 * again after a failure.
 */
function composeBilling(
  config: UserApiConfig,
  parts: { dynamo: DynamoDBDocumentClient; usage: UsageReader; plans: PlanStore },
  secretsOverride: BillingSecrets | undefined,
): BillingApi | undefined {
  const table = config[ENV.billingTable];
  const secretKeyArn = config[ENV.stripeSecretKeyArn];
  const returnUrl = config[ENV.billingReturnUrl];
  if (!table || !secretKeyArn || !returnUrl) return undefined;
  const secrets = secretsOverride ?? secretsManagerSecrets({ stripeSecretKey: secretKeyArn });
  const accounts = new BillingAccounts({ client: parts.dynamo, table });
  const summary = new BillingSummary({
    accounts,
    usage: parts.usage,
    ledger: new ExportLedger({ client: parts.dynamo, table }),
  });
  const apiUrl = config[ENV.stripeApiUrl];
  let sessions: Promise<BillingSessions> | undefined;
  const ready = (): Promise<BillingSessions> => {
    sessions ??= secrets.stripeSecretKey().then(
      (secretKey) =>
        new BillingSessions({
          stripe: stripeClient(secretKey, {
            ...(apiUrl ? { apiUrl } : {}),
            timeoutMs: STRIPE_TIMEOUT_MS,
            maxNetworkRetries: STRIPE_RETRIES,
          }),
          accounts,
          plans: parts.plans,
          returnUrl,
        }),
      (error: unknown) => {
        sessions = undefined;
        throw error;
      },
    );
    return sessions;
  };
  return {
    checkout: async (account, planId) => (await ready()).checkout(account, planId),
    portal: async (accountId) => (await ready()).portal(accountId),
    summary: (accountId, now) => summary.summary(accountId, now),
  };
}
