import type { Logger } from '@aws-lambda-powertools/logger';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { DependencyError, type ErrorCode, errorBody } from '../shared/errors';
import { extractKey } from './extract-key';
import type { KeyCheck, KeyVerifier } from './key-verifier';

export interface KeyApiDeps {
  verifier: KeyVerifier;
  logger: Logger;
  /** Browser origins allowed to call the key API (the web page's "try your key"). */
  allowedOrigins: readonly string[];
}

export type KeyApiHandler = (event: ALBEvent) => Promise<ALBResult>;

const REFUSALS: Record<Exclude<KeyCheck['outcome'], 'accepted'>, { code: ErrorCode; message: string }> = {
  malformed: { code: 'malformed_key', message: 'The API key is not a well-formed Tollgate key' },
  unknown: { code: 'unknown_key', message: 'The API key does not exist' },
  revoked: { code: 'revoked_key', message: 'The API key has been revoked' },
  expired: { code: 'expired_key', message: 'The API key was rolled and its grace period has ended' },
};

const ALLOWED_HEADERS = 'authorization, content-type, x-api-key';

function corsHeaders(event: ALBEvent, allowedOrigins: readonly string[]): Record<string, string> {
  const origin = event.headers?.origin ?? event.multiValueHeaders?.origin?.[0];
  if (!origin || !allowedOrigins.includes(origin)) return {};
  return { 'access-control-allow-origin': origin, vary: 'origin' };
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): ALBResult {
  return {
    statusCode: status,
    statusDescription: `${status}`,
    isBase64Encoded: false,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
    body: JSON.stringify(body),
  };
}

/**
 * The key API as a function of an ALB event: pulls the key out, asks the verifier, maps the
 * outcome to HTTP. 401 bodies say which refusal it was; 503 means "try again", never "bad key".
 */
export function createKeyApiHandler(deps: KeyApiDeps): KeyApiHandler {
  return async (event) => {
    const cors = corsHeaders(event, deps.allowedOrigins);
    if (event.httpMethod === 'OPTIONS') {
      return {
        statusCode: 204,
        statusDescription: '204 No Content',
        isBase64Encoded: false,
        headers: {
          ...cors,
          'access-control-allow-methods': 'GET, POST, OPTIONS',
          'access-control-allow-headers': ALLOWED_HEADERS,
          'access-control-max-age': '600',
        },
        body: '',
      };
    }
    try {
      const extracted = extractKey(event);
      if (extracted.kind === 'invalid')
        return json(400, errorBody('invalid_request', extracted.message), cors);
      if (extracted.kind === 'missing') {
        return json(
          401,
          errorBody(
            'missing_key',
            'Send an API key in the x-api-key header, as a Bearer token, or as {"key": ...}',
          ),
          { ...cors, 'www-authenticate': 'Bearer realm="tollgate"' },
        );
      }
      const check = await deps.verifier.verify(extracted.key);
      if (check.outcome !== 'accepted') {
        const refusal = REFUSALS[check.outcome];
        return json(401, errorBody(refusal.code, refusal.message), {
          ...cors,
          'www-authenticate': `Bearer realm="tollgate", error="invalid_token"`,
        });
      }
      return json(200, { ok: true, keyId: check.keyId }, cors);
    } catch (error) {
      if (error instanceof DependencyError) {
        deps.logger.warn('key check unavailable', { error });
        return json(
          503,
          errorBody('service_unavailable', 'Key checks are briefly unavailable; retry shortly'),
          {
            ...cors,
            'retry-after': '1',
          },
        );
      }
      deps.logger.error('key check failed', { error });
      return json(500, errorBody('internal_error', 'The key API failed'), cors);
    }
  };
}
