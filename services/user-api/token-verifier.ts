import { JwtVerifier } from 'aws-jwt-verify';

export interface AuthenticatedUser {
  /** Cognito `sub`: the account id. */
  userId: string;
  email: string;
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
 * Verifies Cognito ID tokens (signature against the pool's JWKS, issuer, audience, expiry,
 * `token_use: id`). aws-jwt-verify's generic JwtVerifier is used rather than CognitoJwtVerifier
 * because the latter derives the issuer from the pool id's region, which cognito-local's pools do
 * not have; with issuer and JWKS from config the same code runs against both.
 */
export function createCognitoIdTokenVerifier(options: CognitoIdTokenVerifierOptions): TokenVerifier {
  const verifier = JwtVerifier.create({
    issuer: options.issuer,
    jwksUri: options.jwksUri,
    audience: options.clientId,
    customJwtCheck: ({ payload }) => {
      if (payload.token_use !== 'id') throw new Error('not an ID token');
    },
  });
  return {
    async verify(token) {
      const payload = await verifier.verify(token);
      if (typeof payload.sub !== 'string' || typeof payload.email !== 'string') {
        throw new Error('ID token lacks sub or email');
      }
      return { userId: payload.sub, email: payload.email };
    },
  };
}
