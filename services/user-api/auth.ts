import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { ADMIN_GROUP } from '../../contracts/plans';
import type { UserApiEnv } from './env';
import { ApiError } from './errors';
import type { AuthenticatedUser, TokenVerifier } from './token-verifier';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * The user a request's ID token was issued to, or the 401. Why a token failed is logged by nobody
 * and told to nobody: every bad token gets the same 401.
 */
async function authenticate(c: Context<UserApiEnv>, verifier: TokenVerifier): Promise<AuthenticatedUser> {
  const token = BEARER.exec(c.req.header('authorization') ?? '')?.[1];
  if (!token) {
    throw new ApiError(
      401,
      'unauthorized',
      'Sign in first: send your ID token as "Authorization: Bearer <token>"',
    );
  }
  try {
    return await verifier.verify(token);
  } catch {
    throw new ApiError(401, 'unauthorized', 'The token is invalid or has expired; sign in again');
  }
}

/** Requires a valid Cognito ID token (`Authorization: Bearer <id token>`). */
export function requireUser(verifier: TokenVerifier) {
  return createMiddleware<UserApiEnv>(async (c, next) => {
    c.set('user', await authenticate(c, verifier));
    await next();
  });
}

/**
 * Requires a valid Cognito ID token of a member of the owner's admins (the group ADMIN_GROUP,
 * `cognito:groups` of the verified token): no or a bad token is the 401 of requireUser, any other
 * user a 403. Groups come from the signed token, so a user can neither claim nor keep them: removed
 * from the group, they lose access when their ID token expires.
 */
export function requireAdmin(verifier: TokenVerifier) {
  return createMiddleware<UserApiEnv>(async (c, next) => {
    const user = await authenticate(c, verifier);
    if (!user.groups?.includes(ADMIN_GROUP)) {
      throw new ApiError(
        403,
        'forbidden',
        `Only the owner's admins (Cognito group "${ADMIN_GROUP}") may do this`,
      );
    }
    c.set('user', user);
    await next();
  });
}
