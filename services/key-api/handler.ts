import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { z } from 'zod';
import { BufferedMetrics, DEFAULT_METRICS_FLUSH_MS } from '../shared/buffered-metrics';
import { systemClock } from '../shared/clock';
import { keyDataEnv, loadConfig } from '../shared/config';
import { createDocumentClient } from '../shared/dynamodb';
import { originListSchema } from '../shared/http';
import { KeyStore } from '../shared/key-store';
import { KEY_API_FAILURE_METRICS, METRICS_NAMESPACE, SERVICE_NAMES } from '../shared/metric-names';
import { UsageStore } from '../shared/usage-store';
import { createKeyApiHandler } from './app';
import { DEFAULT_WINDOWS, KeyCache } from './key-cache';
import { KeyVerifier } from './key-verifier';
import {
  callerWaitingClientConfig,
  KinesisUsagePublisher,
  SqsUsagePublisher,
  type UsagePublisher,
} from './publisher';
import { UsageSnapshots } from './usage-snapshots';

// Composition root: built once per container and reused by every warm invocation.
const config = loadConfig(
  SERVICE_NAMES.keyApi,
  keyDataEnv
    .extend({
      TOLLGATE_USAGE_TABLE: z.string().min(3),
      TOLLGATE_TRANSPORT: z.enum(['sqs', 'kinesis']).default('sqs'),
      TOLLGATE_USAGE_QUEUE_URL: z.url().optional(),
      TOLLGATE_USAGE_STREAM_NAME: z.string().min(1).optional(),
      TOLLGATE_PUBLISH_FAILURE_MODE: z.enum(['closed', 'open']).default('closed'),
      TOLLGATE_ALLOWED_ORIGINS: originListSchema,
      TOLLGATE_KEY_CACHE_FRESH_MS: z.coerce.number().int().positive().default(DEFAULT_WINDOWS.freshMs),
      TOLLGATE_KEY_CACHE_STALE_MS: z.coerce.number().int().nonnegative().default(DEFAULT_WINDOWS.staleMs),
      TOLLGATE_KEY_CACHE_NEGATIVE_MS: z.coerce
        .number()
        .int()
        .nonnegative()
        .default(DEFAULT_WINDOWS.negativeMs),
      TOLLGATE_KEY_CACHE_MAX_ENTRIES: z.coerce.number().int().positive().default(DEFAULT_WINDOWS.maxEntries),
      TOLLGATE_METRICS_FLUSH_MS: z.coerce.number().int().nonnegative().default(DEFAULT_METRICS_FLUSH_MS),
    })
    .refine(
      (c) => (c.TOLLGATE_TRANSPORT === 'sqs' ? !!c.TOLLGATE_USAGE_QUEUE_URL : !!c.TOLLGATE_USAGE_STREAM_NAME),
      {
        message:
          'TOLLGATE_USAGE_QUEUE_URL (sqs) or TOLLGATE_USAGE_STREAM_NAME (kinesis) is required for the transport',
      },
    ),
);

const logger = new Logger({ serviceName: SERVICE_NAMES.keyApi });
// Routine counts are summed across warm invocations and written at most once per flush interval;
// failures are written at the end of their invocation (see BufferedMetrics for the trade-off).
const metrics = new BufferedMetrics({
  metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAMES.keyApi }),
  flushIntervalMs: config.TOLLGATE_METRICS_FLUSH_MS,
  flushAtOnce: KEY_API_FAILURE_METRICS,
  clock: systemClock,
});
// Bounded like the publisher's: a hung DynamoDB must end in a stale answer or a 503, not a hang.
const dynamo = createDocumentClient(callerWaitingClientConfig);
const store = new KeyStore({
  client: dynamo,
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
const usageStore = new UsageStore({ client: dynamo, table: config.TOLLGATE_USAGE_TABLE });
const publisher: UsagePublisher =
  config.TOLLGATE_TRANSPORT === 'kinesis'
    ? new KinesisUsagePublisher({ streamName: config.TOLLGATE_USAGE_STREAM_NAME as string })
    : new SqsUsagePublisher({ queueUrl: config.TOLLGATE_USAGE_QUEUE_URL as string });

const handleEvent = createKeyApiHandler({
  verifier: new KeyVerifier({ cache, keyPrefix: config.TOLLGATE_KEY_PREFIX, clock: systemClock }),
  publisher,
  usage: new UsageSnapshots({
    read: (keyId, day) => usageStore.keyDayCount(keyId, day),
    now: systemClock.now,
  }),
  clock: systemClock,
  logger,
  metrics,
  publishFailureMode: config.TOLLGATE_PUBLISH_FAILURE_MODE,
  allowedOrigins: config.TOLLGATE_ALLOWED_ORIGINS,
});

export async function handler(event: ALBEvent): Promise<ALBResult> {
  try {
    return await handleEvent(event);
  } finally {
    metrics.publishIfDue();
  }
}
