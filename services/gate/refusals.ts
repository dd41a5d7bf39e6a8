import { type ErrorBody, type ErrorCode, errorBody } from '../../contracts/errors';
import { KeyApiMetric } from '../../contracts/metric-names';
import type { KeyCheck } from './key-verifier';

/** An answer of the gate itself, in the one error shape; adapters render it. */
export interface Refusal {
  readonly status: 400 | 401 | 403 | 429 | 500 | 503;
  readonly body: ErrorBody;
  readonly headers: Readonly<Record<string, string>>;
}

/** The plan's refusals (limits.ts LimitDecision reasons): their status and the check they count as. */
export const LIMIT_REFUSALS = {
  account_suspended: { status: 403, metric: KeyApiMetric.checks.suspended },
  rate_limited: { status: 429, metric: KeyApiMetric.checks.rateLimited },
  quota_exceeded: { status: 429, metric: KeyApiMetric.checks.quotaExceeded },
} as const;

/** The key check's refusals of a key that was presented: each a 401. */
export const KEY_REFUSALS: Record<
  Exclude<KeyCheck['outcome'], 'accepted' | 'throttled'>,
  { code: ErrorCode; message: string }
> = {
  malformed: { code: 'malformed_key', message: 'The API key is not a well-formed Tollgate key' },
  unknown: { code: 'unknown_key', message: 'The API key does not exist' },
  revoked: { code: 'revoked_key', message: 'The API key has been revoked' },
  expired: { code: 'expired_key', message: 'The API key was rolled and its grace period has ended' },
};

const NO_STORE = { 'cache-control': 'no-store' } as const;

/** A refusal in the one error shape; no cache may keep it. */
export const refusal = (
  status: Refusal['status'],
  code: ErrorCode,
  message: string,
  headers: Record<string, string> = {},
): Refusal => ({ status, body: errorBody(code, message), headers: { ...NO_STORE, ...headers } });

/** A 503 a client should retry after a second. */
export const unavailable = (message: string) =>
  refusal(503, 'service_unavailable', message, { 'retry-after': '1' });
