import { Logger } from '@aws-lambda-powertools/logger';
import { z } from 'zod';
import { systemClock } from '../shared/clock';
import { keyDataEnv, loadConfig } from '../shared/config';
import { createDocumentClient } from '../shared/dynamodb';
import { originListSchema } from '../shared/http';
import { KeyStore } from '../shared/key-store';
import { UsageStore } from '../shared/usage-store';
import { createApp } from './app';
import { createCognitoIdTokenVerifier } from './token-verifier';

// Composition root, shared by the Lambda handler and the local server.
const config = loadConfig(
  'user-api',
  keyDataEnv.extend({
    TOLLGATE_USAGE_TABLE: z.string().min(3),
    TOLLGATE_JWT_ISSUER: z.url(),
    TOLLGATE_JWKS_URI: z.url(),
    TOLLGATE_USER_POOL_CLIENT_ID: z.string().min(1),
    TOLLGATE_ALLOWED_ORIGINS: originListSchema,
    TOLLGATE_ROLL_GRACE_MS: z.coerce
      .number()
      .int()
      .nonnegative()
      .default(24 * 3600 * 1000),
  }),
);

const dynamo = createDocumentClient();

export const app = createApp({
  usage: new UsageStore({ client: dynamo, table: config.TOLLGATE_USAGE_TABLE }),
  store: new KeyStore({
    client: dynamo,
    accountsTable: config.TOLLGATE_ACCOUNTS_TABLE,
    keysTable: config.TOLLGATE_KEYS_TABLE,
    keyPrefix: config.TOLLGATE_KEY_PREFIX,
  }),
  verifier: createCognitoIdTokenVerifier({
    issuer: config.TOLLGATE_JWT_ISSUER,
    jwksUri: config.TOLLGATE_JWKS_URI,
    clientId: config.TOLLGATE_USER_POOL_CLIENT_ID,
  }),
  clock: systemClock,
  logger: new Logger({ serviceName: 'user-api' }),
  allowedOrigins: config.TOLLGATE_ALLOWED_ORIGINS,
  rollGraceMs: config.TOLLGATE_ROLL_GRACE_MS,
});
