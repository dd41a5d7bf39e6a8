import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import type { MiddlewareHandler } from 'hono';
import { ENV, type GateConfig } from '../../contracts/config';
import { KEY_API_FAILURE_METRICS, METRICS_NAMESPACE } from '../../contracts/metric-names';
import { newProducerId } from '../../contracts/usage-event';
import { KeyStore } from '../accounts/key-store';
import { PlanStore } from '../accounts/plan-store';
import { type AwsOptions, documentClient, kinesisClient, sqsClient } from '../platform/aws-clients';
import { type Clock, systemClock } from '../platform/clock';
import type { InvocationMetrics } from '../platform/metrics';
import { RefusalRecorder } from '../usage/refusals';
import { UsageReader } from '../usage/usage-reader';
import { type AlbGateOptions, type GatedAlbHandler, gateAlbHandler } from './alb';
import { BufferedMetrics } from './buffered-metrics';
import { guessThrottleSettings } from './config';
import { Gate, type GateDeps } from './gate';
import { GuessThrottle } from './guess-throttle';
import { type GateEnv, type GateMiddlewareOptions, gateMiddleware } from './hono';
import { type CachedLookup, KeyCache, type KeyCacheWindows } from './key-cache';
import { KeyVerifier } from './key-verifier';
import { type AccountTerms, PlanLimits, type PlanLimitsOptions } from './limits';
import {
  callerWaitingClientConfig,
  KinesisUsagePublisher,
  SqsUsagePublisher,
  type UsagePublisher,
} from './publisher';
import { type RefusalSink, RefusalTally } from './refusal-tally';

/** What a caller may provide instead of what the gate builds from its configuration. */
export interface GateOverrides {
  /** Where the clients built here point; ignored for clients given in `clients`. */
  readonly aws?: AwsOptions;
  /**
   * Clients to use as they are. The gate's own are bounded (callerWaitingClientConfig) because a
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
  /**
   * Replaces the read of an account's terms (standing and plan: accounts and plans tables) behind
   * their cache; `() => ({ found: false })` enforces no plan at all.
   */
  readonly terms?: (accountId: string) => Promise<CachedLookup<AccountTerms>>;
  /** Replaces the read of an account's counted requests for its quota (UsageReader.periodUsage). */
  readonly readUsage?: PlanLimitsOptions['readUsage'];
  /**
   * Where the plan's refusals per key go.
   * @default a RefusalTally writing the usage table's refusal items every TOLLGATE_REFUSALS_FLUSH_MS
   */
  readonly refusals?: RefusalSink;
  /** This container's producer id on its usage events. @default newProducerId(): one per composition */
  readonly producerId?: string;
  readonly logger?: Logger;
  /** @default BufferedMetrics over Powertools, flushed per TOLLGATE_METRICS_FLUSH_MS */
  readonly metrics?: InvocationMetrics;
  readonly clock?: Clock;
  /**
   * The `service` dimension of metrics and logs.
   * @default Powertools' own: POWERTOOLS_SERVICE_NAME, which CDK sets to each function's service
   */
  readonly serviceName?: string;
}

export interface ComposedGate {
  readonly gate: Gate;
  /** The parts the gate was built from (key-api builds its app around the same ones). */
  readonly deps: GateDeps;
  /** This container's key cache (tests read its windows and evict from it). */
  readonly cache: KeyCache;
  /** This container's budgets of lookups of unknown keys, per client address. */
  readonly guesses: GuessThrottle;
  /** The DynamoDB client the key lookups use. */
  readonly dynamo: DynamoDBDocumentClient;
  /** Where the plan's refusals per key go (the RefusalTally unless overridden; tests flush it). */
  readonly refusals: RefusalSink;
  /** Called at the end of every invocation: buffered metrics are written when due. */
  endInvocation(): void;
  /** Wraps an ALB-event Lambda handler: the key check before it, its answer billed after it. */
  albHandler(handler: GatedAlbHandler, options?: AlbGateOptions): (event: ALBEvent) => Promise<ALBResult>;
  /** Hono middleware doing the same for the routes it is used on; `c.get('caller')` in handlers. */
  middleware(options?: GateMiddlewareOptions): MiddlewareHandler<GateEnv>;
}

/**
 * A gate: its configuration and clients → the key check (checksum → cache → KeyLookup) and the
 * usage publisher, ready to wrap an owner's ALB handler or to guard a Hono app. Built once per
 * container (at cold start, like every handler here) and reused by warm invocations.
 *
 * ```ts
 * const tollgate = composeGate(loadGateConfig(process.env));
 * export const handler = tollgate.albHandler(async (event, caller) => ({ statusCode: 200, body: caller.keyId }));
 * ```
 */
export function composeGate(config: GateConfig, overrides: GateOverrides = {}): ComposedGate {
  const aws = overrides.aws ?? {};
  const clock = overrides.clock ?? systemClock;
  const logger = overrides.logger ?? new Logger({ serviceName: overrides.serviceName });
  const metrics = overrides.metrics ?? bufferedMetrics(config, clock, overrides.serviceName);
  // Bounded like the publisher's: a hung DynamoDB must end in a stale answer or a 503, not a hang.
  const dynamo = overrides.clients?.dynamo ?? documentClient(aws, callerWaitingClientConfig);
  const cacheNow = () => clock.now().getTime();
  const windows = cacheWindows(config);
  const cache = new KeyCache({ now: cacheNow, load: overrides.lookup ?? keyLookup(config, dynamo), windows });
  // One per container (each composition is one): the quota check's own share of the counters.
  const producerId = overrides.producerId ?? newProducerId();
  const limits = planLimits(config, { dynamo, windows, clock, producerId, overrides });
  const guesses = new GuessThrottle(guessThrottleSettings(config), cacheNow);
  const refusals = overrides.refusals ?? refusalTally(config, dynamo, logger);
  const deps: GateDeps = {
    verifier: new KeyVerifier({ cache, keyPrefix: config[ENV.keyPrefix], clock }),
    publisher: overrides.publisher ?? publisherFor(config, aws, overrides.clients),
    clock,
    logger,
    metrics,
    publishFailureMode: config[ENV.publishFailureMode],
    limits,
    guesses,
    producerId,
    refusals,
  };
  const gate = new Gate(deps);
  const endInvocation = () => metrics.endInvocation();
  return {
    gate,
    deps,
    cache,
    guesses,
    dynamo,
    refusals,
    endInvocation,
    albHandler: (handler, options) => gateAlbHandler(gate, handler, { ...options, endInvocation }),
    middleware: (options) => gateMiddleware(gate, { ...options, endInvocation }),
  };
}

/**
 * Routine counts are summed across warm invocations and written at most once per flush interval;
 * failures are written at the end of their invocation (see BufferedMetrics for the trade-off).
 */
function bufferedMetrics(config: GateConfig, clock: Clock, serviceName: string | undefined): BufferedMetrics {
  return new BufferedMetrics({
    metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName }),
    flushIntervalMs: config[ENV.metricsFlushMs],
    flushAtOnce: KEY_API_FAILURE_METRICS,
    clock,
  });
}

/**
 * The plan's refusals per key, summed in this container and written to the usage table once per
 * interval (refusal-tally.ts says what a crash loses: refusals only, never billed usage).
 */
function refusalTally(config: GateConfig, dynamo: DynamoDBDocumentClient, logger: Logger): RefusalTally {
  const recorder = new RefusalRecorder({ client: dynamo, table: config[ENV.usageTable] });
  return new RefusalTally({
    write: (counts) => recorder.record(counts),
    flushIntervalMs: config[ENV.refusalsFlushMs],
    logger,
  });
}

/** The key cache's windows, which the account terms' cache shares. */
function cacheWindows(config: GateConfig): KeyCacheWindows {
  return {
    freshMs: config[ENV.keyCacheFreshMs],
    staleMs: config[ENV.keyCacheStaleMs],
    negativeMs: config[ENV.keyCacheNegativeMs],
    maxEntries: config[ENV.keyCacheMaxEntries],
  };
}

/** The KeyLookup read behind the key cache: a key's record by the hash of its secret. */
function keyLookup(config: GateConfig, dynamo: DynamoDBDocumentClient) {
  const store = new KeyStore({
    client: dynamo,
    accountsTable: config[ENV.accountsTable],
    keysTable: config[ENV.keysTable],
    keyPrefix: config[ENV.keyPrefix],
  });
  return async (keyHash: string): Promise<CachedLookup> => {
    const record = await store.lookupByHash(keyHash);
    return record ? { found: true, record } : { found: false };
  };
}

/** The plans' limits: accounts' terms (cached like keys) and their usage this quota period. */
function planLimits(
  config: GateConfig,
  parts: {
    dynamo: DynamoDBDocumentClient;
    windows: KeyCacheWindows;
    clock: Clock;
    producerId: string;
    overrides: GateOverrides;
  },
): PlanLimits {
  const { dynamo, windows, clock, producerId, overrides } = parts;
  const plans = new PlanStore({
    client: dynamo,
    plansTable: config[ENV.plansTable],
    accountsTable: config[ENV.accountsTable],
  });
  const usage = new UsageReader({ client: dynamo, table: config[ENV.usageTable] });
  return new PlanLimits({
    // A suspension or a plan change takes effect within the fresh window, like a revocation.
    terms: new KeyCache<AccountTerms>({
      load: overrides.terms ?? ((id) => loadTerms(plans, id)),
      windows,
      now: () => clock.now().getTime(),
    }),
    readUsage:
      overrides.readUsage ??
      ((accountId, period, at) => usage.periodUsage(accountId, period, at, producerId)),
    usageReadIntervalMs: config[ENV.quotaReadIntervalMs],
    now: () => clock.now().getTime(),
  });
}

/** An account's terms: its standing, and its plan (the default plan's item, if the owner made one). */
async function loadTerms(plans: PlanStore, accountId: string): Promise<CachedLookup<AccountTerms>> {
  const standing = await plans.standing(accountId);
  if (!standing) return { found: false };
  const plan = await plans.getPlan(standing.planId);
  return { found: true, record: { status: standing.status, ...(plan ? { plan } : {}) } };
}

function publisherFor(
  config: GateConfig,
  aws: AwsOptions,
  clients: GateOverrides['clients'],
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
