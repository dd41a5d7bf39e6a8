import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { ENV } from '../../contracts/config';
import { KEY_API_FAILURE_METRICS, METRICS_NAMESPACE, SERVICE_NAMES } from '../../contracts/metric-names';
import { UsageReader } from '../metering/usage-reader';
import { type AwsOptions, documentClient, kinesisClient, sqsClient } from '../shared/aws-clients';
import { type Clock, systemClock } from '../shared/clock';
import { KeyStore } from '../shared/key-store';
import type { InvocationMetrics } from '../shared/metrics';
import { createKeyApiHandler } from './app';
import { BufferedMetrics } from './buffered-metrics';
import type { KeyApiConfig } from './config';
import { type CachedLookup, KeyCache } from './key-cache';
import { KeyVerifier } from './key-verifier';
import {
  callerWaitingClientConfig,
  KinesisUsagePublisher,
  SqsUsagePublisher,
  type UsagePublisher,
} from './publisher';
import { UsageSnapshots } from './usage-snapshots';

/** What a caller may provide instead of what key-api builds from its configuration. */
export interface KeyApiOverrides {
  /** Where the clients built here point; ignored for clients given in `clients`. */
  readonly aws?: AwsOptions;
  /**
   * Clients to use as they are. key-api's own are bounded (callerWaitingClientConfig) because a
   * caller is waiting; a client given here should be too. A Kinesis client must have `maxAttempts: 1`.
   */
  readonly clients?: {
    readonly dynamo?: DynamoDBDocumentClient;
    readonly sqs?: SQSClient;
    readonly kinesis?: KinesisClient;
  };
  /** Replaces the transport publisher (e.g. one that does nothing, for CPU measurements). */
  readonly publisher?: UsagePublisher;
  /** Replaces the KeyLookup read behind the cache (e.g. an in-memory table). */
  readonly lookup?: (keyHash: string) => Promise<CachedLookup>;
  /** Replaces the day-count read behind the usage figure. */
  readonly readKeyDayCount?: (accountId: string, keyId: string, day: string) => Promise<number>;
  readonly logger?: Logger;
  /** @default BufferedMetrics over Powertools, flushed per TOLLGATE_METRICS_FLUSH_MS */
  readonly metrics?: InvocationMetrics;
  readonly clock?: Clock;
}

export interface KeyApi {
  /** The ALB target's handler. */
  readonly handler: (event: ALBEvent) => Promise<ALBResult>;
  /** This container's key cache (tests read its windows and evict from it). */
  readonly cache: KeyCache;
}

/**
 * key-api: its configuration and clients → the ALB handler. Lambda's handler.ts, the local stack,
 * tests and bench all build it here; everything is built once and reused by warm invocations.
 */
export function composeKeyApi(config: KeyApiConfig, overrides: KeyApiOverrides = {}): KeyApi {
  const aws = overrides.aws ?? {};
  const clock = overrides.clock ?? systemClock;
  const logger = overrides.logger ?? new Logger({ serviceName: SERVICE_NAMES.keyApi });
  // Routine counts are summed across warm invocations and written at most once per flush interval;
  // failures are written at the end of their invocation (see BufferedMetrics for the trade-off).
  const metrics =
    overrides.metrics ??
    new BufferedMetrics({
      metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAMES.keyApi }),
      flushIntervalMs: config[ENV.metricsFlushMs],
      flushAtOnce: KEY_API_FAILURE_METRICS,
      clock,
    });
  // Bounded like the publisher's: a hung DynamoDB must end in a stale answer or a 503, not a hang.
  const dynamo = overrides.clients?.dynamo ?? documentClient(aws, callerWaitingClientConfig);
  const store = new KeyStore({
    client: dynamo,
    accountsTable: config[ENV.accountsTable],
    keysTable: config[ENV.keysTable],
    keyPrefix: config[ENV.keyPrefix],
  });
  const cache = new KeyCache({
    load:
      overrides.lookup ??
      (async (keyHash) => {
        const record = await store.lookupByHash(keyHash);
        return record ? { found: true, record } : { found: false };
      }),
    windows: {
      freshMs: config[ENV.keyCacheFreshMs],
      staleMs: config[ENV.keyCacheStaleMs],
      negativeMs: config[ENV.keyCacheNegativeMs],
      maxEntries: config[ENV.keyCacheMaxEntries],
    },
  });
  const reader = new UsageReader({ client: dynamo, table: config[ENV.usageTable] });
  const handleEvent = createKeyApiHandler({
    verifier: new KeyVerifier({ cache, keyPrefix: config[ENV.keyPrefix], clock }),
    publisher: overrides.publisher ?? publisherFor(config, aws, overrides.clients),
    usage: new UsageSnapshots({
      read:
        overrides.readKeyDayCount ?? ((accountId, keyId, day) => reader.keyDayCount(accountId, keyId, day)),
      now: () => clock.now(),
    }),
    clock,
    logger,
    metrics,
    publishFailureMode: config[ENV.publishFailureMode],
    allowedOrigins: config[ENV.allowedOrigins],
  });
  return {
    cache,
    handler: async (event) => {
      try {
        return await handleEvent(event);
      } finally {
        metrics.endInvocation();
      }
    },
  };
}

function publisherFor(
  config: KeyApiConfig,
  aws: AwsOptions,
  clients: KeyApiOverrides['clients'],
): UsagePublisher {
  if (config[ENV.transport] === 'kinesis') {
    return new KinesisUsagePublisher({
      streamName: config[ENV.usageStreamName] as string,
      client: clients?.kinesis ?? kinesisClient(aws, { ...callerWaitingClientConfig, maxAttempts: 1 }),
    });
  }
  return new SqsUsagePublisher({
    queueUrl: config[ENV.usageQueueUrl] as string,
    client: clients?.sqs ?? sqsClient(aws, callerWaitingClientConfig),
  });
}
