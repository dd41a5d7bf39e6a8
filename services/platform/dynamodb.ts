import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
  QueryCommand,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { ConflictError, DependencyError } from './errors';

// --- errors by class -----------------------------------------------------------------------------

/**
 * What a failed DynamoDB call means, and so what its caller does:
 *  - unavailable: DynamoDB could not answer now (throttled, a 5xx, a timeout, no connection).
 *    Becomes a DependencyError: 503 with `retry-after`.
 *  - conflict: concurrent writes to the same items cancelled this one; nothing was written. Retried
 *    with jitter (callDynamo's `conflicts`), then a ConflictError: 409.
 *  - condition_failed: a condition the request carried was false. Not a failure of DynamoDB: the
 *    caller gives it its meaning (not found, already done, a duplicate).
 *  - internal: DynamoDB refused the request as wrong (ValidationException, a missing table or
 *    index, access denied) or the code failed. A bug or a bad deploy, never "retry shortly": the
 *    error travels on as it is and is answered 500, logged with its cause and alarmed.
 */
export type DynamoErrorClass = 'unavailable' | 'conflict' | 'condition_failed' | 'internal';

// Error names as the SDK v3 raises them (`error.name`); the lists follow the SDK's own retry
// classification (@smithy/core, service-error-classification), which this module cannot import.
const THROTTLING_NAMES = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'RequestThrottled',
  'RequestThrottledException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'SlowDown',
]);
const SERVER_NAMES = new Set(['InternalServerError', 'ServiceUnavailable', 'ServiceUnavailableException']);
const TIMEOUT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
/** Node's codes for a connection that failed, broke or timed out, or a name that did not resolve. */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const CONFLICT_NAMES = new Set([
  'TransactionConflictException',
  'TransactionInProgressException',
  'ReplicatedWriteConflictException',
]);
/** `CancellationReasons[].Code` of a TransactionCanceledException. */
const THROTTLED_REASONS = new Set(['ThrottlingError', 'ProvisionedThroughputExceeded']);
/** Reasons no retry can cure: the request itself is wrong. */
const INVALID_REASONS = new Set(['ValidationError', 'ItemCollectionSizeLimitExceeded']);

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  cause?: unknown;
  errors?: unknown;
  $metadata?: { httpStatusCode?: number };
  $retryable?: { throttling?: boolean };
  CancellationReasons?: Array<{ Code?: string }>;
}

/** A connection-level failure anywhere in the error, its cause chain or an AggregateError's errors. */
function hasNetworkCode(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  const e = error as SdkErrorShape;
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
  if (Array.isArray(e.errors) && e.errors.some((inner) => hasNetworkCode(inner, depth + 1))) return true;
  return e.cause !== undefined && hasNetworkCode(e.cause, depth + 1);
}

export function classifyDynamoError(error: unknown): DynamoErrorClass {
  // Already classified (by an inner callDynamo): keep its class.
  if (error instanceof DependencyError) return 'unavailable';
  if (error instanceof ConflictError) return 'conflict';
  if (typeof error !== 'object' || error === null) return 'internal';
  const e = error as SdkErrorShape;
  const name = typeof e.name === 'string' ? e.name : '';

  if (name === 'TransactionCanceledException') {
    const codes = new Set((e.CancellationReasons ?? []).map((reason) => reason.Code));
    if ([...codes].some((code) => INVALID_REASONS.has(code ?? ''))) return 'internal';
    if (codes.has('ConditionalCheckFailed')) return 'condition_failed';
    if ([...codes].some((code) => THROTTLED_REASONS.has(code ?? ''))) return 'unavailable';
    if (codes.has('TransactionConflict')) return 'conflict';
    return 'internal';
  }
  if (name === 'ConditionalCheckFailedException') return 'condition_failed';
  if (CONFLICT_NAMES.has(name)) return 'conflict';
  if (THROTTLING_NAMES.has(name) || SERVER_NAMES.has(name) || TIMEOUT_NAMES.has(name)) return 'unavailable';
  if (e.$retryable?.throttling === true) return 'unavailable';
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || status === 429)) return 'unavailable';
  if (hasNetworkCode(error)) return 'unavailable';
  return 'internal';
}

/** Errors that mean "DynamoDB could not answer now" rather than "the request was wrong". */
export function isUnavailable(error: unknown): boolean {
  return classifyDynamoError(error) === 'unavailable';
}

/** A condition of the request (or of one of a transaction's items) was false. */
export function isConditionFailure(error: unknown): boolean {
  return classifyDynamoError(error) === 'condition_failed';
}

/**
 * What a caller throws for a failed DynamoDB call: a DependencyError (unavailable), a ConflictError
 * (conflict), or the error itself (a failed condition, for the caller to interpret, or a bug).
 */
export function classified(error: unknown): unknown {
  switch (classifyDynamoError(error)) {
    case 'unavailable':
      return error instanceof DependencyError ? error : new DependencyError('DynamoDB', { cause: error });
    case 'conflict':
      return error instanceof ConflictError ? error : new ConflictError('DynamoDB', { cause: error });
    default:
      return error;
  }
}

// --- conflict retries ----------------------------------------------------------------------------

export interface ConflictRetryPolicy {
  /** Retries after the first attempt. */
  readonly retries: number;
  /** The backoff ceiling of the first retry; it doubles per retry up to `maxDelayMs`. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** @default Math.random */
  readonly random?: () => number;
}

/**
 * Four retries, each after half to all of 25, 50, 100, 200 ms: at most 375 ms of waiting, a small
 * part of any Lambda timeout and of a person's patience, and enough for the transactions of a
 * burst of writers on one account to pass one another.
 */
export const CONFLICT_RETRY: ConflictRetryPolicy = { retries: 4, baseDelayMs: 25, maxDelayMs: 200 };

/**
 * The wait before retry `retry` (0-based): "equal jitter", half the exponential ceiling plus a
 * random part of the other half, so writers that collided do not collide again in step, and every
 * retry waits long enough for the transaction in the way to finish.
 */
export function conflictBackoffMs(retry: number, policy: ConflictRetryPolicy = CONFLICT_RETRY): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return ceiling / 2 + (policy.random ?? Math.random)() * (ceiling / 2);
}

/** The longest a policy can wait in total. */
export function maxConflictWaitMs(policy: ConflictRetryPolicy = CONFLICT_RETRY): number {
  let total = 0;
  for (let retry = 0; retry < policy.retries; retry++) {
    total += Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  }
  return total;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface CallDynamoOptions {
  /**
   * Retry conflicts under this policy before giving up with a ConflictError. Only for calls that
   * are safe to send again as they are: a cancelled transaction or refused write wrote nothing.
   * @default - no retry: a conflict is a ConflictError at once
   */
  readonly conflicts?: ConflictRetryPolicy;
}

/**
 * Runs one DynamoDB call and classifies its failure (classifyDynamoError): a DependencyError when
 * DynamoDB is unavailable, a ConflictError when concurrent writes won (after the retries asked
 * for), otherwise the error itself: a failed condition for the caller to give meaning, or a bug.
 */
export async function callDynamo<T>(send: () => Promise<T>, options: CallDynamoOptions = {}): Promise<T> {
  const policy = options.conflicts;
  for (let retry = 0; ; retry++) {
    try {
      return await send();
    } catch (error) {
      if (policy && retry < policy.retries && classifyDynamoError(error) === 'conflict') {
        await (policy.sleep ?? sleep)(conflictBackoffMs(retry, policy));
        continue;
      }
      throw classified(error);
    }
  }
}

/** Every item a query matches, following LastEvaluatedKey across pages. */
export async function queryAll(
  db: DynamoDBDocumentClient,
  input: Omit<QueryCommandInput, 'ExclusiveStartKey'>,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await callDynamo(() => db.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey })));
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

/** BatchGetItem takes at most 100 keys. */
export const BATCH_GET_MAX = 100;
/** Rounds of UnprocessedKeys before a throttled BatchGetItem is "DynamoDB unavailable". */
const UNPROCESSED_ROUNDS = 5;

/**
 * Every item of `keys` that exists (any number of keys: 100 a request), read consistently, following
 * UnprocessedKeys with jittered backoff; still throttled after five rounds is DynamoDB unavailable
 * (a DependencyError: 503, retry), never "not there".
 */
export async function batchGetAll(
  db: DynamoDBDocumentClient,
  table: string,
  keys: readonly Record<string, unknown>[],
  options: { projection?: string; names?: Record<string, string> } = {},
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < keys.length; i += BATCH_GET_MAX) {
    let pending: Record<string, unknown>[] | undefined = keys.slice(i, i + BATCH_GET_MAX);
    for (let round = 0; pending && pending.length > 0; round++) {
      if (round > UNPROCESSED_ROUNDS) {
        throw new DependencyError('DynamoDB', {
          cause: new Error(`${pending.length} items left unprocessed by BatchGetItem`),
        });
      }
      if (round > 0) await sleep(25 * 2 ** round * (0.5 + Math.random() / 2));
      const request = pending;
      const out: BatchGetCommandOutput = await callDynamo(() =>
        db.send(
          new BatchGetCommand({
            RequestItems: {
              [table]: {
                Keys: request,
                ConsistentRead: true,
                ...(options.projection === undefined ? {} : { ProjectionExpression: options.projection }),
                ...(options.names === undefined ? {} : { ExpressionAttributeNames: options.names }),
              },
            },
          }),
        ),
      );
      items.push(...(out.Responses?.[table] ?? []));
      pending = out.UnprocessedKeys?.[table]?.Keys;
    }
  }
  return items;
}
