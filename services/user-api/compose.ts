import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ENV } from '../../contracts/config';
import { METRICS_NAMESPACE, SERVICE_NAMES } from '../../contracts/metric-names';
import { KeyStore } from '../accounts/key-store';
import { PlanStore } from '../accounts/plan-store';
import { type AwsOptions, documentClient, userApiClientConfig } from '../platform/aws-clients';
import { type Clock, systemClock } from '../platform/clock';
import type { MetricsRecorder } from '../platform/metrics';
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
}

/**
 * user-api records only failures, so each is written as its own EMF line the moment it is counted:
 * nothing to flush per request on the routine path, nothing lost if the container is shut down,
 * and an alarm on it is never a flush behind.
 */
export function writeAtOnce(metrics: Metrics): MetricsRecorder {
  return {
    addMetric(name, unit, value) {
      metrics.addMetric(name, unit, value);
      metrics.publishStoredMetrics();
    },
  };
}

/**
 * user-api: its configuration and clients → the Hono app. Lambda (`handle`), the local server
 * (`serve`) and tests (`app.request`) run the app this returns.
 */
export function composeUserApi(config: UserApiConfig, overrides: UserApiOverrides = {}) {
  // Bounded (userApiClientConfig): a hung DynamoDB is a 503 with `retry-after` inside the
  // function's timeout, not API Gateway's 504.
  const dynamo = overrides.clients?.dynamo ?? documentClient(overrides.aws ?? {}, userApiClientConfig);
  return createApp({
    usage: new UsageReader({ client: dynamo, table: config[ENV.usageTable] }),
    store: new KeyStore({
      client: dynamo,
      accountsTable: config[ENV.accountsTable],
      keysTable: config[ENV.keysTable],
      keyPrefix: config[ENV.keyPrefix],
    }),
    plans: new PlanStore({
      client: dynamo,
      plansTable: config[ENV.plansTable],
      accountsTable: config[ENV.accountsTable],
    }),
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
    signInMaxAgeMs: config[ENV.signInMaxAgeMs],
  });
}
