import { Logger } from '@aws-lambda-powertools/logger';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ENV } from '../../contracts/config';
import { SERVICE_NAMES } from '../../contracts/metric-names';
import { KeyStore } from '../../services/accounts/key-store';
import type { KeyCacheWindows } from '../../services/gate/key-cache';
import type { UsagePublisher } from '../../services/gate/publisher';
import type { PublishFailureMode } from '../../services/key-api/app';
import { composeKeyApi, type KeyApi } from '../../services/key-api/compose';
import { loadKeyApiConfig } from '../../services/key-api/config';
import { documentClient } from './aws';
import { drainingMetrics, type MetricTotals } from './metrics';

export interface Tables {
  accounts: string;
  keys: string;
  usage: string;
  plans: string;
}

/** Table names from the settings the local stack's handlers are composed with. */
export function tablesFrom(env: Record<string, string | undefined>): Tables {
  const need = (name: string) => {
    const value = env[name];
    if (!value) throw new Error(`${name} is not set`);
    return value;
  };
  return {
    accounts: need(ENV.accountsTable),
    keys: need(ENV.keysTable),
    usage: need(ENV.usageTable),
    plans: need(ENV.plansTable),
  };
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
  handler: KeyApi['handler'];
  /** Every metric the handler emitted so far, summed by name (Powertools' own serialization). */
  metrics: MetricTotals;
  cache: KeyApi['cache'];
}

/**
 * The transport's setting the config schema requires. Never used: the test gives key-api its
 * publisher (over a client it owns, with faults or counters), so composeKeyApi builds none.
 */
const PUBLISHER_GIVEN_BY_THE_TEST = 'http://127.0.0.1:9/000000000000/publisher-given-by-the-test';

/**
 * One key-api "container", composed by composeKeyApi as services/key-api/handler.ts does it, over
 * a DynamoDB client the test owns (wrapped with faults or counters), its publisher, and windows the
 * test chooses; the configuration goes through key-api's own schema, by the variables' names.
 */
export function buildKeyApi(options: {
  dynamo: DynamoDBClient;
  tables: Tables;
  publisher: UsagePublisher;
  publishFailureMode?: PublishFailureMode;
  windows?: Partial<KeyCacheWindows>;
}): KeyApiUnderTest {
  const { windows = {} } = options;
  const setting = (name: string, value: number | undefined) =>
    value === undefined ? {} : { [name]: String(value) };
  const config = loadKeyApiConfig({
    [ENV.accountsTable]: options.tables.accounts,
    [ENV.keysTable]: options.tables.keys,
    [ENV.usageTable]: options.tables.usage,
    [ENV.plansTable]: options.tables.plans,
    [ENV.keyPrefix]: 'tg',
    [ENV.usageQueueUrl]: PUBLISHER_GIVEN_BY_THE_TEST,
    [ENV.publishFailureMode]: options.publishFailureMode ?? 'closed',
    ...setting(ENV.keyCacheFreshMs, windows.freshMs),
    ...setting(ENV.keyCacheStaleMs, windows.staleMs),
    ...setting(ENV.keyCacheNegativeMs, windows.negativeMs),
    ...setting(ENV.keyCacheMaxEntries, windows.maxEntries),
  });
  const totals: MetricTotals = new Map();
  const { handler, cache } = composeKeyApi(config, {
    clients: { dynamo: documentClient(options.dynamo) },
    publisher: options.publisher,
    logger: new Logger({ serviceName: SERVICE_NAMES.keyApi, logLevel: 'SILENT' }),
    metrics: drainingMetrics(SERVICE_NAMES.keyApi, totals),
  });
  return { handler, metrics: totals, cache };
}
