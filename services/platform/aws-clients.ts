import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { KinesisClient, type KinesisClientConfig } from '@aws-sdk/client-kinesis';
import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * Where a deployable's AWS clients point. On Lambda nothing is given: region and credentials come
 * from the function's environment, as the SDK reads them itself. The local stack, tests and bench
 * pass their emulators' endpoints here, so two stacks in one process each reach their own engines.
 */
export interface AwsOptions {
  readonly region?: string;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly endpoints?: { readonly dynamodb?: string; readonly sqs?: string; readonly kinesis?: string };
}

/**
 * How long a client may wait for AWS: per attempt, to connect and to be answered, and how many
 * attempts. The SDK's own default is no timeout at all: a dependency that accepts a connection and
 * never answers holds the call until the function times out, and its caller gets the platform's
 * error (the ALB's 502, API Gateway's 504, a Cognito trigger failure) instead of our 503.
 * `throwOnRequestTimeout`: without it the SDK only logs a warning when `requestTimeout` passes and
 * keeps waiting for an answer that never comes.
 *
 * A call's worst case is about `maxAttempts × max(connectionTimeout, requestTimeout)` plus the
 * retry backoff; each budget below says which function timeout that must fit in.
 */
export interface ClientBudget {
  requestHandler: { connectionTimeout: number; requestTimeout: number; throwOnRequestTimeout: true };
  maxAttempts: number;
}

/**
 * Where a caller is waiting on a short deadline, at most 2 attempts of at most 1 s each:
 *  - key-api and every gate: a key lookup and a publish that both hang still answer (503) within
 *    the function's 5 s timeout instead of ending in the ALB's 502. A retry after a timeout may
 *    store a second copy of an event, which the consumer drops by event id (services/gate/publisher.ts);
 *  - auth-triggers: Cognito waits 5 s for a trigger, which provisions with at most two calls (the
 *    transaction, and a read when the account exists), each within about 2 s.
 */
export const callerWaitingClientConfig = {
  requestHandler: { connectionTimeout: 1000, requestTimeout: 1000, throwOnRequestTimeout: true },
  maxAttempts: 2,
} satisfies ClientBudget;

/**
 * user-api, behind API Gateway (its function times out after 10 s): 2 attempts of at most 2 s. A
 * request stops at its first failed call (a 503 with `retry-after`), and the calls a route makes
 * at once fail together, so a hung DynamoDB is answered in about 4 s, well inside the timeout.
 */
export const userApiClientConfig = {
  requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
  maxAttempts: 2,
} satisfies ClientBudget;

/**
 * Where no caller waits (metering's batches, run for up to the consumer's timeout, 30 s on AWS):
 * the SDK's 3 attempts, each at most 5 s (a transaction of 100 items is answered in milliseconds
 * when DynamoDB is well). A hung dependency fails the batch in about 15 s, and its records are
 * delivered again, instead of holding it until the function times out. The default of every client
 * built here, so none is built without a timeout.
 */
export const backgroundClientConfig = {
  requestHandler: { connectionTimeout: 2000, requestTimeout: 5000, throwOnRequestTimeout: true },
  maxAttempts: 3,
} satisfies ClientBudget;

function common(options: AwsOptions, endpoint: string | undefined) {
  return {
    ...(options.region ? { region: options.region } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(endpoint ? { endpoint } : {}),
  };
}

/** The budget's timeouts and attempts unless `config` sets its own. */
function budgeted<T extends object>(config: T): T {
  return {
    requestHandler: backgroundClientConfig.requestHandler,
    maxAttempts: backgroundClientConfig.maxAttempts,
    ...config,
  };
}

/**
 * A document client that drops undefined attributes (optional fields of our records).
 * @param config e.g. one of the budgets above; what it leaves out is backgroundClientConfig's
 */
export function documentClient(
  options: AwsOptions = {},
  config: DynamoDBClientConfig = backgroundClientConfig,
) {
  return DynamoDBDocumentClient.from(dynamoDbClient(options, config), {
    marshallOptions: { removeUndefinedValues: true },
  });
}

/**
 * The plain client, for what a document client is not for: managing tables (the local stack's
 * bootstrap). Its destroy() closes its connections; a document client's destroy() does nothing.
 * @param config e.g. one of the budgets above; what it leaves out is backgroundClientConfig's
 */
export function dynamoDbClient(
  options: AwsOptions = {},
  config: DynamoDBClientConfig = backgroundClientConfig,
): DynamoDBClient {
  return new DynamoDBClient({ ...budgeted(config), ...common(options, options.endpoints?.dynamodb) });
}

/** @param config e.g. one of the budgets above; what it leaves out is backgroundClientConfig's */
export function sqsClient(
  options: AwsOptions = {},
  config: SQSClientConfig = backgroundClientConfig,
): SQSClient {
  return new SQSClient({ ...budgeted(config), ...common(options, options.endpoints?.sqs) });
}

/** @param config e.g. one of the budgets above; what it leaves out is backgroundClientConfig's */
export function kinesisClient(
  options: AwsOptions = {},
  config: KinesisClientConfig = backgroundClientConfig,
): KinesisClient {
  return new KinesisClient({ ...budgeted(config), ...common(options, options.endpoints?.kinesis) });
}
