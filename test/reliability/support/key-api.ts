import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { type AlbAdapter, startAlbAdapter } from '../../../infra/local/alb-adapter';
import {
  createKeyApiHandler,
  type KeyApiHandler,
  type PublishFailureMode,
} from '../../../services/key-api/app';
import { DEFAULT_WINDOWS, KeyCache, type KeyCacheWindows } from '../../../services/key-api/key-cache';
import { KeyVerifier } from '../../../services/key-api/key-verifier';
import type { UsagePublisher } from '../../../services/key-api/publisher';
import { UsageSnapshots } from '../../../services/key-api/usage-snapshots';
import { systemClock } from '../../../services/shared/clock';
import { KeyStore } from '../../../services/shared/key-store';
import { METRICS_NAMESPACE, SERVICE_NAMES } from '../../../services/shared/metric-names';
import { UsageStore } from '../../../services/shared/usage-store';
import { drainMetrics, freePort, type MetricTotals } from './engines';

export interface Tables {
  accounts: string;
  keys: string;
  usage: string;
}

/** Table names from the variables the local stack's handlers run with. */
export function tablesFrom(env: Record<string, string | undefined>): Tables {
  const need = (name: string) => {
    const value = env[name];
    if (!value) throw new Error(`${name} is not set`);
    return value;
  };
  return {
    accounts: need('TOLLGATE_ACCOUNTS_TABLE'),
    keys: need('TOLLGATE_KEYS_TABLE'),
    usage: need('TOLLGATE_USAGE_TABLE'),
  };
}

export function documentClient(dynamo: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } });
}

export function keyStore(dynamo: DynamoDBClient, tables: Tables): KeyStore {
  return new KeyStore({
    client: documentClient(dynamo),
    accountsTable: tables.accounts,
    keysTable: tables.keys,
    keyPrefix: 'tg',
  });
}

export interface KeyApiUnderTest {
  /** The handler; after every invocation its metrics are drained into `metrics`. */
  handler: KeyApiHandler;
  /** Every metric the handler emitted so far, summed by name (Powertools' own serialization). */
  metrics: MetricTotals;
  cache: KeyCache;
}

/**
 * One key-api "container", composed like services/key-api/handler.ts does it, but over clients
 * the test owns (wrapped with faults or counters) and with windows the test chooses.
 */
export function buildKeyApi(options: {
  dynamo: DynamoDBClient;
  tables: Tables;
  publisher: UsagePublisher;
  publishFailureMode?: PublishFailureMode;
  windows?: Partial<KeyCacheWindows>;
}): KeyApiUnderTest {
  const store = keyStore(options.dynamo, options.tables);
  const usageStore = new UsageStore({ client: documentClient(options.dynamo), table: options.tables.usage });
  const cache = new KeyCache({
    load: async (keyHash) => {
      const record = await store.lookupByHash(keyHash);
      return record ? { found: true, record } : { found: false };
    },
    windows: { ...DEFAULT_WINDOWS, ...options.windows },
  });
  const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAMES.keyApi });
  const totals: MetricTotals = new Map();
  const handle = createKeyApiHandler({
    verifier: new KeyVerifier({ cache, keyPrefix: 'tg', clock: systemClock }),
    publisher: options.publisher,
    usage: new UsageSnapshots({
      read: (keyId, day) => usageStore.keyDayCount(keyId, day),
      now: systemClock.now,
    }),
    clock: systemClock,
    logger: new Logger({ serviceName: SERVICE_NAMES.keyApi, logLevel: 'SILENT' }),
    metrics,
    publishFailureMode: options.publishFailureMode ?? 'closed',
    allowedOrigins: [],
  });
  return {
    handler: async (event) => {
      try {
        return await handle(event);
      } finally {
        drainMetrics(metrics, totals);
      }
    },
    metrics: totals,
    cache,
  };
}

/** The ALB event the local adapter would build for a simple request. */
export function albEvent(init: {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
}): ALBEvent {
  return {
    requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:0:targetgroup/t/0' } },
    httpMethod: init.method ?? 'POST',
    path: init.path ?? '/',
    queryStringParameters: {},
    headers: { 'x-forwarded-for': '127.0.0.1', ...init.headers },
    body: init.body ?? '',
    isBase64Encoded: init.isBase64Encoded ?? false,
  };
}

/** A local ALB (infra/local/alb-adapter.ts) in front of a handler, on a free port. */
export async function behindAlb(handler: (event: ALBEvent) => Promise<ALBResult>): Promise<AlbAdapter> {
  return startAlbAdapter({
    port: await freePort(),
    handler,
    targetGroupArn: 'arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/reliability/0',
  });
}

/** JSON body of an ALB result (the handler's own answer, before any HTTP). */
export function resultJson(
  result: ALBResult,
): { error?: { code?: string; message?: string } } & Record<string, unknown> {
  return JSON.parse(result.body ?? 'null');
}
