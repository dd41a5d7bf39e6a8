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

/** "15 minutes", "90 seconds": a window as the refusal's message names it. */
function describeWindow(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds % 60 !== 0) return `${seconds} ${seconds === 1 ? 'second' : 'seconds'}`;
  const minutes = seconds / 60;
  return `${minutes} ${minutes === 1 ? 'minute' : 'minutes'}`;
}

/**
 * Minting a secret (create, reveal, roll) and every admin change (a plan, an account's plan or
 * status: routes/admin.ts) require a recent sign-in: the verified ID token's `auth_time` at most
 * `maxAgeMs` before `now`. Otherwise a 401 `reauthentication_required`, not a
 * 403: the token is genuine, but signing in again is exactly what makes the request succeed, which
 * is what a 401 asks for (RFC 9470, OAuth step-up: 401 with `WWW-Authenticate: Bearer
 * error="insufficient_user_authentication", max_age=…`). Its code tells the page apart from the
 * 401 `unauthorized` of a bad or expired token, which ends the session instead. A sign-in dated
 * ahead of `now` (clocks a little apart) counts as recent; the check happens before anything is
 * read or written, so a refused request mints or changes nothing. An admin's ID token is worth more
 * than an owner's (it reprices and suspends every account), so a stolen one gets no more time to
 * change things than one that mints keys.
 */
export function requireRecentSignIn(
  c: Context<UserApiEnv>,
  maxAgeMs: number,
  now: Date,
  /** What needs it, as the refusal's message names it. */
  action = 'Creating, revealing or rolling a key',
): void {
  const { authTime } = c.get('user');
  // Only a test's stand-in verifier vouches for no sign-in time (AuthenticatedUser.authTime).
  if (authTime === undefined || now.getTime() - authTime.getTime() <= maxAgeMs) return;
  c.header(
    'www-authenticate',
    `Bearer error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age="${Math.floor(maxAgeMs / 1000)}"`,
  );
  throw new ApiError(
    401,
    'reauthentication_required',
    `${action} needs a sign-in within the last ${describeWindow(maxAgeMs)}: sign in again, then retry`,
  );
}
