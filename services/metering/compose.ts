import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { CognitoIdentityProviderClient } from '@aws-sdk/client-cognito-identity-provider';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { SQSBatchResponse } from 'aws-lambda';
import { ENV } from '../../contracts/config';
import { METRICS_NAMESPACE, MeteringMetric, SERVICE_NAMES } from '../../contracts/metric-names';
import {
  isLedgerBackstopEvent,
  ledgerTickBody,
  parseLedgerTick,
  SQS_MAX_DELAY_SECONDS,
} from '../../contracts/resources';
import { PlanStore } from '../accounts/plan-store';
import { type AwsOptions, documentClient, kinesisClient, sqsClient } from '../platform/aws-clients';
import { type Clock, systemClock } from '../platform/clock';
import { type InvocationMetrics, perInvocationMetrics } from '../platform/metrics';
import type { OutboxTiming } from '../usage/alert-items';
import { DynamoLedgerStore, SQS_LEDGER_NAME } from '../usage/ledger-store';
import { UsageReader } from '../usage/usage-reader';
import { UsageStore } from '../usage/usage-store';
import { isAlertsEvent, parseAlertsEvent } from './alert-events';
import type { AcceptanceWindow, InboundRecord } from './batch';
import type { MeteringConfig } from './config';
import { type BatchOutcome, type ConsumerDeps, consumeBatch } from './consumer';
import { SqsDeadLetterSink } from './dead-letter';
import { Ledger } from './ledger/ledger';
import { KinesisLookBack, type LookBack } from './look-back';
import { CognitoOwnerAddresses } from './owner-address';
import { KeyProvenance, type ProvenanceCheck } from './provenance';
import { type AlertSender, QuotaAlerts, type ScheduleRun } from './quota-alerts';
import { inboundRecords } from './records';
import { SesAlertSender } from './ses-sender';

/** What a caller's alert sender implements (the local stack's captured outbox). */
export type { AlertMessage, AlertSender, AlertSent } from './alert-sender';

/** Quota alerts when the tables they read and a way to send them are configured. */
function quotaAlerts(
  config: MeteringConfig,
  dynamo: DynamoDBDocumentClient,
  logger: Logger,
  overrides: MeteringOverrides,
): QuotaAlerts | undefined {
  const accountsTable = config[ENV.accountsTable];
  const plansTable = config[ENV.plansTable];
  const from = config[ENV.alertFromAddress];
  const configurationSet = config[ENV.alertConfigurationSet];
  const delivery =
    overrides.alerts ??
    (from ? new SesAlertSender({ from, ...(configurationSet ? { configurationSet } : {}) }) : undefined);
  if (!accountsTable || !plansTable || !delivery) return undefined;
  const userPoolId = config[ENV.alertUserPoolId];
  const cognito = overrides.clients?.cognito;
  return new QuotaAlerts({
    client: dynamo,
    usageTable: config[ENV.usageTable],
    plans: new PlanStore({ client: dynamo, plansTable, accountsTable }),
    reader: new UsageReader({ client: dynamo, table: config[ENV.usageTable] }),
    sender: delivery,
    ...(userPoolId
      ? { addresses: new CognitoOwnerAddresses({ userPoolId, ...(cognito ? { client: cognito } : {}) }) }
      : {}),
    logger,
    ...(overrides.clock ? { clock: overrides.clock } : {}),
    ...(overrides.alertTiming ? { timing: overrides.alertTiming } : {}),
  });
}

/** What a caller may provide instead of what metering builds from its configuration. */
export interface MeteringOverrides {
  /** Where the clients built here point; ignored for clients given in `clients`. */
  readonly aws?: AwsOptions;
  readonly clients?: {
    /** Counter writes, and the provenance check's reads of the keys table unless `keys` is given. */
    readonly dynamo?: DynamoDBDocumentClient;
    /** The provenance check's reads of the keys table. @default `dynamo` */
    readonly keys?: DynamoDBDocumentClient;
    /** Dead letters. */
    readonly sqs?: SQSClient;
    /** The Kinesis look-back's reads of a shard. */
    readonly kinesis?: KinesisClient;
    /** Quota alerts' reads of the owner's current address (AdminGetUser). */
    readonly cognito?: CognitoIdentityProviderClient;
  };
  readonly logger?: Logger;
  /** @default one EMF line per invocation (Powertools) */
  readonly metrics?: InvocationMetrics;
  readonly clock?: Clock;
  readonly lookBack?: LookBack;
  /** @default KeyProvenance over the keys table, through `clients.keys` */
  readonly provenance?: ProvenanceCheck;
  /** Counter writes in flight at once. */
  readonly concurrency?: number;
  /**
   * Delivers quota alerts (the local stack's captured outbox).
   * @default Amazon SES from TOLLGATE_ALERT_FROM_ADDRESS, when it is set
   */
  readonly alerts?: AlertSender;
  /** @default DEFAULT_OUTBOX_TIMING (alert-outbox.ts) */
  readonly alertTiming?: Partial<OutboxTiming>;
}

/** One batch's event-source answer and what the consumer did with it. */
export interface MeteringBatchResult {
  readonly response: SQSBatchResponse;
  readonly outcome: BatchOutcome;
}

export interface Metering {
  /**
   * The Lambda handler: an SQS or Kinesis event in, a partial batch response out; an EventBridge
   * event (the alerts schedule, SES's send events) goes to `alertsHandler`.
   */
  readonly handler: (event: unknown) => Promise<SQSBatchResponse>;
  /**
   * The quota alerts' second entry: the schedule's event (send what is due in the outbox) or an SES
   * send event (confirm a delivery). Undefined without alerts.
   */
  readonly alertsHandler?: (event: unknown) => Promise<ScheduleRun | { confirmed: boolean }>;
  /** The alerts themselves (the local stack's timer and mailbox call them). */
  readonly alerts?: QuotaAlerts;
  /** The same, with the consumer's outcome (for harnesses that tally it). */
  readonly handleBatch: (event: unknown) => Promise<MeteringBatchResult>;
  /**
   * The SQS ledger's backstop (its schedule's entry, also reached through `handler` with
   * LEDGER_BACKSTOP_EVENT): applies committed journals that no batch has flushed. Undefined
   * without a ledger (TOLLGATE_SQS_DEDUPE=marks).
   */
  readonly ledgerBackstop?: () => Promise<{ counted: number; accounts: string[]; flushedThrough?: number }>;
}

/** What every part of the consumer shares: its clients, logs, metrics, clock and window. */
interface MeteringContext {
  config: MeteringConfig;
  overrides: MeteringOverrides;
  aws: AwsOptions;
  logger: Logger;
  metrics: InvocationMetrics;
  clock: Clock;
  window: AcceptanceWindow;
  dynamo: DynamoDBDocumentClient;
  /** Dead letters, and the ledger's scheduled tails. */
  sqs: SQSClient;
}

function meteringContext(config: MeteringConfig, overrides: MeteringOverrides): MeteringContext {
  const aws = overrides.aws ?? {};
  return {
    config,
    overrides,
    aws,
    logger: overrides.logger ?? new Logger({ serviceName: SERVICE_NAMES.metering }),
    metrics:
      overrides.metrics ??
      perInvocationMetrics(
        new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAMES.metering }),
      ),
    clock: overrides.clock ?? systemClock,
    window: { lateMs: config[ENV.lateWindowMs], futureMs: config[ENV.futureWindowMs] },
    dynamo: overrides.clients?.dynamo ?? documentClient(aws),
    sqs: overrides.clients?.sqs ?? sqsClient(aws),
  };
}

/** What consumeBatch is given: the store, the dead-letter sink, the look-back and provenance. */
function consumerDeps(ctx: MeteringContext, alerts: QuotaAlerts | undefined) {
  const { config, overrides, aws, logger, metrics, window, dynamo } = ctx;
  const usage = new UsageStore({
    client: dynamo,
    table: config[ENV.usageTable],
    // A mark must outlive every copy of its event that could still be accepted: the late window,
    // plus a day of margin for clock skew and slow redrives.
    markTtlMs: window.lateMs + 24 * 3600_000,
  });
  const deadLetters = new SqsDeadLetterSink({
    sqs: ctx.sqs,
    queueUrl: config[ENV.usageDlqUrl],
    transport: config[ENV.transport],
  });
  // Built whatever the transport (it makes no call until a Kinesis batch has a resent copy): the
  // local stack feeds one consumer from both transports.
  const lookBack =
    overrides.lookBack ??
    new KinesisLookBack({
      kinesis: overrides.clients?.kinesis ?? kinesisClient(aws),
      onGiveUp: (query) =>
        logger.warn('first copy of a resent event not reached; counting the copy', { ...query }),
    });
  // One per container, so its cache of key → account answers lives as long as the container.
  const provenance =
    overrides.provenance ??
    new KeyProvenance({
      client: overrides.clients?.keys ?? dynamo,
      keysTable: config[ENV.keysTable],
      onRead: () => metrics.addMetric(MeteringMetric.provenanceReads, MetricUnit.Count, 1),
    });
  const ledger = config[ENV.sqsDedupe] === 'ledger' ? sqsLedger(ctx) : undefined;
  return {
    usage,
    ...(ledger ? { ledger } : {}),
    ...(alerts ? { alerts } : {}),
    deadLetters,
    clock: ctx.clock,
    logger,
    metrics,
    window,
    lookBack,
    provenance,
    ...(overrides.concurrency ? { concurrency: overrides.concurrency } : {}),
  };
}

/**
 * The SQS ledger (docs/metering.md, "The SQS ledger"), one per container: its producers' archives
 * and journals in the usage table, its gaps closed with the late window.
 */
function sqsLedger(ctx: MeteringContext): Ledger {
  const { config, window, dynamo, clock, sqs } = ctx;
  const queueUrl = config[ENV.usageQueueUrl];
  // Past the late window and the clock-skew allowance no copy of an event can be accepted, so
  // neither its archived claim nor its producer's share of a month is needed after that (plus a
  // day of margin for slow redrives, as the marks keep).
  const keptMs = window.lateMs + window.futureMs + 24 * 3600_000;
  return new Ledger({
    store: new DynamoLedgerStore({
      client: dynamo,
      table: config[ENV.usageTable],
      name: SQS_LEDGER_NAME,
      archiveTtlMs: keptMs,
      now: () => clock.now().getTime(),
    }),
    clock,
    policy: config[ENV.ledgerFlush],
    timers: { lateMs: window.lateMs },
    producerTtlMs: window.lateMs + 24 * 3600_000,
    ...(queueUrl
      ? {
          scheduleTail: async (delayMs: number, journal: number) => {
            await sqs.send(
              new SendMessageCommand({
                QueueUrl: queueUrl,
                MessageBody: ledgerTickBody(journal),
                // Whole seconds, rounded down: a tail flushed up to a second early costs a few more
                // writes at a burst's end; one a second late adds to every burst's lag.
                DelaySeconds: Math.min(SQS_MAX_DELAY_SECONDS, Math.floor(delayMs / 1000)),
              }),
            );
          },
        }
      : {}),
  });
}

/**
 * The batch handler. Throwing would fail the whole batch; only a batch that is not an SQS or
 * Kinesis event at all does that. (The event source mapping must have ReportBatchItemFailures.)
 */
function batchHandler(
  ctx: MeteringContext,
  deps: ConsumerDeps,
  flushPending: ((journal: number) => Promise<LedgerRun>) | undefined,
): Metering['handleBatch'] {
  return async (event) => {
    try {
      const records = inboundRecords(event);
      // The ledger's scheduled tails (its own delayed messages): acknowledged, and one flush of
      // what is pending after the batch's own commit, however many of them the batch holds (none
      // without a ledger: ticks sent before a switch to marks are only acknowledged).
      const ticks: number[] = [];
      const usage: InboundRecord[] = [];
      for (const record of records) {
        const journal = record.position ? undefined : parseLedgerTick(record.body);
        if (journal === undefined) usage.push(record);
        else ticks.push(journal);
      }
      const outcome = await consumeBatch(usage, deps);
      // (outcome.counted stays what the batch claimed: the flush applies what earlier ones did.)
      if (flushPending && ticks.length > 0) {
        const run = await flushPending(Math.max(...ticks));
        if (run.flushedThrough !== undefined) {
          const through = Math.max(run.flushedThrough, outcome.ledger?.flushedThrough ?? 0);
          outcome.ledger = { ...outcome.ledger, flushedThrough: through };
        }
      }
      ctx.logger.debug('batch consumed', { ...outcome, failed: outcome.failedRecordIds.length });
      return {
        outcome,
        response: {
          batchItemFailures: outcome.failedRecordIds.map((itemIdentifier) => ({ itemIdentifier })),
        },
      };
    } finally {
      ctx.metrics.endInvocation();
    }
  };
}

/** The alerts handler: a delivery event confirms an alert; the schedule sends what is due. */
function alertsHandlerOf(ctx: MeteringContext, alerts: QuotaAlerts) {
  const { clock, logger, metrics } = ctx;
  return async (event: unknown): Promise<ScheduleRun | { confirmed: boolean }> => {
    const parsed = parseAlertsEvent(event);
    if (parsed.kind === 'other') return { confirmed: false };
    if (parsed.kind === 'delivered') {
      return { confirmed: await alerts.confirmDelivered(parsed.alertId, parsed.messageId) };
    }
    try {
      const run = await alerts.runSchedule(clock.now());
      const sent = run.outcomes.sent ?? 0;
      if (sent > 0) metrics.addMetric(MeteringMetric.quotaAlertsSent, MetricUnit.Count, sent);
      if (run.unsettled > 0) logger.info('quota alert schedule ran', { ...run });
      return run;
    } finally {
      metrics.endInvocation();
    }
  };
}

type LedgerRun = { counted: number; accounts: string[]; flushedThrough?: number };

/**
 * A flush of the ledger outside a batch's own commit — the backstop's schedule, or a scheduled
 * tail — then the quota alerts of the accounts it moved. An unavailable store is logged and left to
 * the next run (nothing is lost: the journals stay committed); any other error is thrown, a bug to
 * see in the function's errors.
 */
function ledgerRunOf<A extends unknown[]>(
  ctx: MeteringContext,
  alerts: QuotaAlerts | undefined,
  what: string,
  flush: (...args: A) => Promise<LedgerRun & { error?: unknown }>,
) {
  return async (...args: A): Promise<LedgerRun> => {
    const run = await flush(...args);
    if (run.error !== undefined)
      ctx.logger.warn(`${what} stopped; the next run resumes`, { error: run.error });
    if (run.counted > 0) ctx.logger.debug(`${what} flushed pending journals`, { counted: run.counted });
    if (alerts && run.accounts.length > 0) {
      const now = ctx.clock.now();
      await alerts.afterBatch(
        run.accounts.map((accountId) => ({ accountId, ts: now.getTime() })),
        now,
      );
    }
    return {
      counted: run.counted,
      accounts: run.accounts,
      ...(run.flushedThrough !== undefined ? { flushedThrough: run.flushedThrough } : {}),
    };
  };
}

/** The backstop's own invocation: its run, its metric, one EMF line. */
function backstopOf(ctx: MeteringContext, ledger: Ledger, alerts: QuotaAlerts | undefined) {
  const run = ledgerRunOf(ctx, alerts, 'ledger backstop', () => ledger.backstop());
  return async (): Promise<LedgerRun> => {
    try {
      const done = await run();
      if (done.counted > 0) {
        ctx.logger.info('ledger backstop flushed pending journals', { counted: done.counted });
        ctx.metrics.addMetric(MeteringMetric.ledgerBackstopEvents, MetricUnit.Count, done.counted);
      }
      return done;
    } finally {
      ctx.metrics.endInvocation();
    }
  };
}

/**
 * The metering consumer: its configuration and clients → the handler the event source mappings
 * (or the local pollers) call. Lambda's handler.ts, the local stack, tests and bench all build it
 * here.
 */
export function composeMetering(config: MeteringConfig, overrides: MeteringOverrides = {}): Metering {
  const ctx = meteringContext(config, overrides);
  const alerts = quotaAlerts(config, ctx.dynamo, ctx.logger, overrides);
  const deps = consumerDeps(ctx, alerts);
  const ledger = deps.ledger;
  const flushPending = ledger
    ? ledgerRunOf(ctx, alerts, 'ledger tail', (journal: number) => ledger.flushPending(journal))
    : undefined;
  const handleBatch = batchHandler(ctx, deps, flushPending);
  const alertsHandler = alerts ? alertsHandlerOf(ctx, alerts) : undefined;
  const ledgerBackstop = ledger ? backstopOf(ctx, ledger, alerts) : undefined;
  return {
    handler: async (event) => {
      if (isLedgerBackstopEvent(event)) {
        if (!ledgerBackstop)
          throw new Error('a ledger backstop event reached a metering function without a ledger');
        await ledgerBackstop();
        return { batchItemFailures: [] };
      }
      if (isAlertsEvent(event)) {
        if (!alertsHandler) throw new Error('an alerts event reached a metering function without alerts');
        await alertsHandler(event);
        return { batchItemFailures: [] };
      }
      return (await handleBatch(event)).response;
    },
    handleBatch,
    ...(ledgerBackstop ? { ledgerBackstop } : {}),
    ...(alertsHandler ? { alertsHandler } : {}),
    ...(alerts ? { alerts } : {}),
  };
}
