import { JwtVerifier } from 'aws-jwt-verify';
import type { Fetcher } from 'aws-jwt-verify/https';
import { SimpleJwksCache } from 'aws-jwt-verify/jwk';

export interface AuthenticatedUser {
  /** Cognito `sub`: the account id. */
  userId: string;
  email: string;
  /** Cognito user name (`cognito:username`). */
  userName: string;
  /** The user's Cognito groups (`cognito:groups`); absent or empty for a user in none. */
  groups?: readonly string[];
  /**
   * When the user last signed in with their password (`auth_time`). Refreshing tokens keeps it on
   * Cognito, so it says how long ago the person was last asked for proof, not when this token was
   * issued; minting a secret requires it recent (services/user-api/auth.ts). The Cognito verifier
   * always sets it (it refuses an ID token without one); only a verifier that vouches for no
   * sign-in time, a test's stand-in for Cognito, leaves it out, and then no recency is checked.
   */
  authTime?: Date;
}

/** Turns a bearer token into the user it was issued to, or throws. */
export interface TokenVerifier {
  verify(token: string): Promise<AuthenticatedUser>;
}

export interface CognitoIdTokenVerifierOptions {
  /** `https://cognito-idp.<region>.amazonaws.com/<poolId>` on AWS; cognito-local's URL locally. */
  issuer: string;
  jwksUri: string;
  /** The app client id: an ID token's `aud`. */
  clientId: string;
}

/**
 * aws-jwt-verify's own fetcher speaks only https (Node's `https` module), and cognito-local serves
 * its JWKS over plain http. Node's global fetch speaks both; on AWS the URI is https either way.
 */
const jwksFetcher: Fetcher = {
  async fetch(uri) {
    const response = await fetch(uri, { signal: AbortSignal.timeout(3000) });
    if (!response.ok) throw new Error(`JWKS fetch failed: ${response.status}`);
    return response.arrayBuffer();
  },
};

/**
 * Verifies Cognito ID tokens (signature against the pool's JWKS, issuer, audience, expiry,
 * `token_use: id`). aws-jwt-verify's generic JwtVerifier is used rather than CognitoJwtVerifier
 * because the latter derives the issuer from the pool id's region, which cognito-local's pools do
 * not have; with issuer and JWKS from config the same code runs against both.
 */
export function createCognitoIdTokenVerifier(options: CognitoIdTokenVerifierOptions): TokenVerifier {
  const verifier = JwtVerifier.create(
    {
      issuer: options.issuer,
      jwksUri: options.jwksUri,
      audience: options.clientId,
      customJwtCheck: ({ payload }) => {
        if (payload.token_use !== 'id') throw new Error('not an ID token');
      },
    },
    { jwksCache: new SimpleJwksCache({ fetcher: jwksFetcher }) },
  );
  return {
    async verify(token) {
      const payload = await verifier.verify(token);
      if (typeof payload.sub !== 'string' || typeof payload.email !== 'string') {
        throw new Error('ID token lacks sub or email');
      }
      // Every Cognito ID token carries it; one without cannot say how fresh its sign-in is.
      const authTime = payload.auth_time;
      if (typeof authTime !== 'number' || !Number.isFinite(authTime)) {
        throw new Error('ID token lacks auth_time');
      }
      const userName = payload['cognito:username'];
      const groups = payload['cognito:groups'];
      return {
        userId: payload.sub,
        email: payload.email,
        userName: typeof userName === 'string' ? userName : payload.sub,
        groups: Array.isArray(groups) ? groups.filter((g): g is string => typeof g === 'string') : [],
        authTime: new Date(authTime * 1000),
      };
    },
  };
}
