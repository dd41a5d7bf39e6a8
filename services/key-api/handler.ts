import { Logger } from '@aws-lambda-powertools/logger';
import { z } from 'zod';
import { systemClock } from '../shared/clock';
import { keyDataEnv, loadConfig } from '../shared/config';
import { createDocumentClient } from '../shared/dynamodb';
import { originListSchema } from '../shared/http';
import { KeyStore } from '../shared/key-store';
import { createKeyApiHandler } from './app';
import { DEFAULT_WINDOWS, KeyCache } from './key-cache';
import { KeyVerifier } from './key-verifier';

// Composition root: built once per container and reused by every warm invocation.
const config = loadConfig(
  'key-api',
  keyDataEnv.extend({
    TOLLGATE_ALLOWED_ORIGINS: originListSchema,
    TOLLGATE_KEY_CACHE_FRESH_MS: z.coerce.number().int().positive().default(DEFAULT_WINDOWS.freshMs),
    TOLLGATE_KEY_CACHE_STALE_MS: z.coerce.number().int().nonnegative().default(DEFAULT_WINDOWS.staleMs),
    TOLLGATE_KEY_CACHE_NEGATIVE_MS: z.coerce.number().int().nonnegative().default(DEFAULT_WINDOWS.negativeMs),
    TOLLGATE_KEY_CACHE_MAX_ENTRIES: z.coerce.number().int().positive().default(DEFAULT_WINDOWS.maxEntries),
  }),
);

const logger = new Logger({ serviceName: 'key-api' });
const store = new KeyStore({
  client: createDocumentClient(),
  accountsTable: config.TOLLGATE_ACCOUNTS_TABLE,
  keysTable: config.TOLLGATE_KEYS_TABLE,
  keyPrefix: config.TOLLGATE_KEY_PREFIX,
});
const cache = new KeyCache({
  load: async (keyHash) => {
    const record = await store.lookupByHash(keyHash);
    return record ? { found: true, record } : { found: false };
  },
  windows: {
    freshMs: config.TOLLGATE_KEY_CACHE_FRESH_MS,
    staleMs: config.TOLLGATE_KEY_CACHE_STALE_MS,
    negativeMs: config.TOLLGATE_KEY_CACHE_NEGATIVE_MS,
    maxEntries: config.TOLLGATE_KEY_CACHE_MAX_ENTRIES,
  },
});

export const handler = createKeyApiHandler({
  verifier: new KeyVerifier({ cache, keyPrefix: config.TOLLGATE_KEY_PREFIX, clock: systemClock }),
  logger,
  allowedOrigins: config.TOLLGATE_ALLOWED_ORIGINS,
});
