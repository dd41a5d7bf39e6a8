import type { Logger } from '@aws-lambda-powertools/logger';
import type { Clock } from '../shared/clock';
import type { KeyStore } from '../shared/key-store';
import type { UsageStore } from '../shared/usage-store';
import type { AuthenticatedUser, TokenVerifier } from './token-verifier';

export interface UserApiDeps {
  store: KeyStore;
  usage: UsageStore;
  verifier: TokenVerifier;
  clock: Clock;
  logger: Logger;
  /** Browser origins allowed by CORS; any other origin gets no CORS headers. */
  allowedOrigins: readonly string[];
  /** How long a rolled key keeps working unless the request asks for less. */
  rollGraceMs: number;
}

export interface UserApiEnv {
  Variables: { user: AuthenticatedUser };
}
