/**
 * The one error shape every Tollgate HTTP answer uses: `{ "error": { "code", "message", "details"? } }`.
 * `code` is stable and meant for programs; `message` is for people and never carries internals.
 */
export type ErrorCode =
  | 'invalid_request'
  | 'missing_key'
  | 'malformed_key'
  | 'unknown_key'
  | 'revoked_key'
  | 'expired_key'
  | 'unauthorized'
  | 'not_found'
  | 'conflict'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'service_unavailable'
  | 'internal_error';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

export function errorBody(code: ErrorCode, message: string, details?: unknown): ErrorBody {
  return details === undefined ? { error: { code, message } } : { error: { code, message, details } };
}

/** A dependency (DynamoDB, a queue) failed or timed out; callers answer 503, not 500. */
export class DependencyError extends Error {
  override readonly name = 'DependencyError';
  constructor(
    readonly dependency: string,
    options?: { cause?: unknown },
  ) {
    super(`${dependency} is unavailable`, options);
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
