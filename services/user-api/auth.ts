import { createMiddleware } from 'hono/factory';
import type { UserApiEnv } from './env';
import { ApiError } from './errors';
import type { TokenVerifier } from './token-verifier';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * Requires a valid Cognito ID token (`Authorization: Bearer <id token>`). Why it failed is logged
 * by nobody and told to nobody: every bad token gets the same 401.
 */
export function requireUser(verifier: TokenVerifier) {
  return createMiddleware<UserApiEnv>(async (c, next) => {
    const token = BEARER.exec(c.req.header('authorization') ?? '')?.[1];
    if (!token) {
      throw new ApiError(
        401,
        'unauthorized',
        'Sign in first: send your ID token as "Authorization: Bearer <token>"',
      );
    }
    try {
      c.set('user', await verifier.verify(token));
    } catch {
      throw new ApiError(401, 'unauthorized', 'The token is invalid or has expired; sign in again');
    }
    await next();
  });
}
