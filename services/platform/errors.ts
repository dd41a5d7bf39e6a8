/**
 * A dependency (DynamoDB, a queue) could not answer now: throttled, a 5xx, a timeout, no
 * connection. Callers answer 503 with `retry-after`: retrying later is the right thing to do.
 * Only unavailability becomes this error; a request the dependency refused as wrong (a
 * ValidationException, a missing table) is a bug and stays what it is, so it is answered 500,
 * logged and alarmed instead of looking like an outage (services/platform/dynamodb.ts).
 */
export class DependencyError extends Error {
  override readonly name = 'DependencyError';
  constructor(
    readonly dependency: string,
    options?: { cause?: unknown },
  ) {
    super(`${dependency} is unavailable`, options);
  }
}

/**
 * A write lost to concurrent writes of the same items (DynamoDB TransactionConflict) on every one
 * of its retries. Nothing was written; callers answer 409 `conflict`.
 */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
  constructor(
    readonly dependency: string,
    options?: { cause?: unknown },
  ) {
    super(`${dependency} write kept conflicting with concurrent writes`, options);
  }
}

/** The environment a service started with is unusable; thrown at cold start. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** An inbound event (trigger, queue record) does not match its schema. */
export class InvalidEventError extends Error {
  override readonly name = 'InvalidEventError';
}
