import { z } from 'zod';

/**
 * The one error shape every Tollgate HTTP answer uses: `{ "error": { "code", "message", "details"? } }`.
 * `code` is stable and meant for programs; `message` is for people and never carries internals.
 * Here, at the bottom layer, so the services that answer, the page that shows the answers and an
 * owner's example API that passes them on all name the same codes.
 */
export const ERROR_CODES = [
  'invalid_request',
  'missing_key',
  'malformed_key',
  'unknown_key',
  'revoked_key',
  'expired_key',
  'unauthorized',
  'reauthentication_required',
  'forbidden',
  'account_suspended',
  'rate_limited',
  'quota_exceeded',
  'too_many_guesses',
  'not_found',
  'conflict',
  'key_limit_reached',
  'method_not_allowed',
  'payload_too_large',
  'service_unavailable',
  'internal_error',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}

export function errorBody(code: ErrorCode, message: string, details?: unknown): ErrorBody {
  return details === undefined ? { error: { code, message } } : { error: { code, message, details } };
}

/**
 * Reads an answer's body as the error shape. A code this build does not know (a newer server)
 * is kept as a string, so a client still shows the message instead of failing to parse it.
 */
export const errorBodySchema = z.object({
  error: z.object({
    code: z.union([z.enum(ERROR_CODES), z.string()]),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
