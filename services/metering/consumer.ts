import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { MeteringMetric, MeteringRefusedMetric } from '../../contracts/metric-names';
import { claimId } from '../accounts/key-claims';
import type { Clock } from '../platform/clock';
import { DependencyError } from '../platform/errors';
import type { MetricsRecorder } from '../platform/metrics';
import type { TransactionPart } from '../usage/counter-updates';
import { type PreparedAggregate, planTransactions, runExclusive } from '../usage/transactions';
import type { UsageStore } from '../usage/usage-store';
import {
  type AcceptanceWindow,
  type AcceptedRecord,
  aggregateAccepted,
  type InboundRecord,
  type Rejected,
  type RejectReason,
  validateBatch,
} from './batch';
import type { DeadLetterSink } from './dead-letter';
import { splitForLedger } from './ledger/events';
import type { Ledger, LedgerEvent } from './ledger/ledger';
import type { LookBack } from './look-back';
import { applyOrdered } from './ordered';
import type { ProvenanceCheck } from './provenance';
import type { QuotaAlerts } from './quota-alerts';

/** Writes in flight at once within one batch. */
export const DEFAULT_CONCURRENCY = 8;

export interface ConsumerDeps {
  usage: UsageStore;
  deadLetters: DeadLetterSink;
  clock: Clock;
  logger: Logger;
  metrics: MetricsRecorder;
  window: AcceptanceWindow;
  /** Kinesis batches: finds the first copy of a resent event in its shard. */
  lookBack?: LookBack;
  /** Counter writes at once; more overlaps DynamoDB round trips, too many invites throttling. @default 8 */
  concurrency?: number;
  /** Quota alerts for the accounts a batch counted events for (none: no alerts). */
  alerts?: QuotaAlerts;
  /**
   * Key → account check of every valid event before it is counted (composeMetering always sets
   * it; unit tests of the counting alone may leave it out).
   */
  provenance?: ProvenanceCheck;
  /**
   * The SQS ledger: claims events that carry their producer's numbering (pid, seq, at) with one
   * conditional write per batch instead of a mark per event. Without it every SQS event takes the
   * marks (TOLLGATE_SQS_DEDUPE=marks, and unit tests of the mark path).
   */
  ledger?: Ledger;
}

export interface BatchOutcome {
  /** Records to report back as failed; the event source delivers them again. */
  failedRecordIds: string[];
  counted: number;
  duplicates: number;
  deadLettered: number;
  /** Records dead-lettered, by reason; absent when none were. */
  refused?: Partial<Record<RejectReason, number>>;
  /**
   * The SQS ledger's part: `counted` above is what the batch claimed; the counters show it once a
   * flush applied its journal (`journal`, the batch's last), maybe in a later invocation.
   * `flushedThrough`: the counters hold every journal through this one, by this invocation's flushes.
   */
  ledger?: { journal?: number; flushedThrough?: number };
}

/**
 * Counts one batch: validate, send refused records to the dead letter with a reason, and add the
 * rest to their counters exactly once. SQS batches (unordered, at-least-once) are aggregated per
 * (key, day) and guarded by per-event dedupe marks in the same transaction as the counter; Kinesis
 * batches (ordered per shard) by the shard's sequence numbers on each counter (ordered.ts), which
 * needs no per-event writes. A failed write fails only the records that fed it; the rest of the
 * batch is counted and acknowledged.
 */
export async function consumeBatch(
  records: readonly InboundRecord[],
  deps: ConsumerDeps,
): Promise<BatchOutcome> {
  const now = deps.clock.now();
  const prepared = validateBatch(records, now, deps.window);
  const rejected = [...prepared.rejected];
  const outcome: BatchOutcome = {
    failedRecordIds: [],
    counted: 0,
    duplicates: 0,
    deadLettered: 0,
  };
  const accepted = await checkProvenance(prepared.accepted, rejected, outcome, deps);
  if (rejected.length > 0) await deadLetter(rejected, outcome, deps);
  let writes: number;
  // Each event's own (account, period): a late event is checked against the period it counts in.
  const moved: { accountId: string; ts: number }[] = [];
  if (accepted.some((a) => a.record.position)) {
    writes = await applyOrderedBatch(accepted, deps, outcome, now);
    if (outcome.counted > 0)
      moved.push(...accepted.map((a) => ({ accountId: a.event.accountId, ts: a.event.ts })));
  } else {
    const { ledger: sequenced, marks: marked } = deps.ledger
      ? splitForLedger(accepted)
      : { ledger: [], marks: accepted };
    writes = await applyAggregates(aggregateAccepted(marked), deps, outcome, now);
    if (outcome.counted > 0)
      moved.push(...marked.map((a) => ({ accountId: a.event.accountId, ts: a.event.ts })));
    if (deps.ledger && sequenced.length > 0) {
      // A flush moves counters of events committed by this batch and earlier ones: each account's
      // current period is the one its alert checks (a late event's past month is not re-alerted).
      const accounts = await applyLedger(deps.ledger, sequenced, deps, outcome);
      moved.push(...accounts.map((accountId) => ({ accountId, ts: now.getTime() })));
    }
  }
  if (deps.alerts && moved.length > 0) {
    const alerted = await deps.alerts.afterBatch(moved, deps.clock.now());
    if (alerted > 0) deps.metrics.addMetric(MeteringMetric.quotaAlertsSent, MetricUnit.Count, alerted);
  }
  recordBatchMetrics(records.length, accepted, outcome, writes, deps);
  return outcome;
}

/** Sends refused records to the dead letter with their reason; one not sent is failed (redelivered). */
async function deadLetter(rejected: readonly Rejected[], outcome: BatchOutcome, deps: ConsumerDeps) {
  const notSent = await deps.deadLetters.send(rejected);
  outcome.failedRecordIds.push(...notSent);
  outcome.deadLettered = rejected.length - notSent.length;
  const unsent = new Set(notSent);
  for (const r of rejected) {
    if (!unsent.has(r.record.recordId)) {
      outcome.refused ??= {};
      outcome.refused[r.reason] = (outcome.refused[r.reason] ?? 0) + 1;
      deps.metrics.addMetric(MeteringRefusedMetric[r.reason], MetricUnit.Count, 1);
    }
    deps.logger.warn('usage record dead-lettered', {
      reason: r.reason,
      detail: r.detail,
      recordId: r.record.recordId,
    });
  }
}

/** A Kinesis batch: counted by sequence number per counter (ordered.ts). @returns write requests */
async function applyOrderedBatch(
  accepted: readonly AcceptedRecord[],
  deps: ConsumerDeps,
  outcome: BatchOutcome,
  now: Date,
): Promise<number> {
  if (!deps.lookBack) throw new Error('consumeBatch needs deps.lookBack for Kinesis batches');
  const failed = (message: string, details: Record<string, unknown>) => {
    deps.logger.error(message, details);
    deps.metrics.addMetric(MeteringMetric.aggregatesFailed, MetricUnit.Count, 1);
  };
  const ordered = await applyOrdered(accepted, {
    usage: deps.usage,
    lookBack: deps.lookBack,
    now,
    concurrency: deps.concurrency ?? DEFAULT_CONCURRENCY,
    onCounterFailed: (error, increment) =>
      failed('counter update failed; its records will be delivered again', {
        error,
        counter: increment.counter,
        events: increment.entries.length,
      }),
    onPeriodFailed: (error, increment) =>
      failed('account-period update failed; its records will be delivered again', {
        error,
        counter: increment.counter,
        events: increment.entries.length,
      }),
    onLookBackFailed: (error, item) =>
      failed('could not look for the first copy of a resent event; retrying from it', {
        error,
        eventId: item.event.id,
        recordId: item.record.recordId,
      }),
  });
  outcome.counted = ordered.counted;
  outcome.duplicates = ordered.duplicates;
  outcome.failedRecordIds.push(...ordered.failedRecordIds);
  return ordered.writeRequests;
}

function recordBatchMetrics(
  size: number,
  accepted: readonly AcceptedRecord[],
  outcome: BatchOutcome,
  writes: number,
  deps: ConsumerDeps,
) {
  const m = deps.metrics;
  m.addMetric(MeteringMetric.batchSize, MetricUnit.Count, size);
  m.addMetric(MeteringMetric.eventsCounted, MetricUnit.Count, outcome.counted);
  m.addMetric(MeteringMetric.eventsDuplicate, MetricUnit.Count, outcome.duplicates);
  m.addMetric(MeteringMetric.eventsDeadLettered, MetricUnit.Count, outcome.deadLettered);
  m.addMetric(MeteringMetric.counterWriteRequests, MetricUnit.Count, writes);
  if (writes > 0) m.addMetric(MeteringMetric.eventsPerWrite, MetricUnit.Count, outcome.counted / writes);
  if (accepted.length > 0) {
    const oldest = Math.min(...accepted.map((a) => a.event.ts));
    m.addMetric(
      MeteringMetric.usageLag,
      MetricUnit.Milliseconds,
      Math.max(0, deps.clock.now().getTime() - oldest),
    );
  }
}

/**
 * Keeps the records whose event names a key its account holds (provenance.ts); the others join
 * `rejected` with the reason. If the check cannot be made (DynamoDB unavailable, or a bug), no
 * record of the batch is counted unchecked, and none is dead-lettered for it either: all are
 * reported failed and come again.
 */
async function checkProvenance(
  accepted: readonly AcceptedRecord[],
  rejected: Rejected[],
  outcome: BatchOutcome,
  deps: ConsumerDeps,
): Promise<readonly AcceptedRecord[]> {
  if (!deps.provenance || accepted.length === 0) return accepted;
  let verdicts: Awaited<ReturnType<ProvenanceCheck['verify']>>;
  try {
    verdicts = await deps.provenance.verify(accepted.map((a) => a.event));
  } catch (error) {
    const message =
      error instanceof DependencyError
        ? 'keys table unavailable for the provenance check; the records will be delivered again'
        : 'provenance check failed; the records will be delivered again';
    deps.logger.error(message, { error, records: accepted.length });
    deps.metrics.addMetric(MeteringMetric.provenanceCheckFailures, MetricUnit.Count, 1);
    outcome.failedRecordIds.push(...accepted.map((a) => a.record.recordId));
    return [];
  }
  const trusted: AcceptedRecord[] = [];
  for (const item of accepted) {
    const verdict = verdicts.get(claimId(item.event)) ?? 'unknown_key';
    if (verdict === 'valid') {
      trusted.push(item);
      continue;
    }
    rejected.push({
      record: item.record,
      reason: verdict,
      detail:
        verdict === 'account_mismatch'
          ? `key ${item.event.keyId} belongs to another account than ${item.event.accountId}`
          : `account ${item.event.accountId} has no key ${item.event.keyId}`,
    });
  }
  return trusted;
}

/**
 * The SQS path: the batch's aggregates packed into transactions (marks and counters together,
 * planTransactions), written concurrently — but never two at once that add to one counter, which
 * would only cancel each other (TransactionConflict) — and each failing alone: a transaction that
 * fails reports exactly the records whose events it marks.
 */
async function applyAggregates(
  aggregates: readonly PreparedAggregate[],
  deps: ConsumerDeps,
  outcome: BatchOutcome,
  now: Date,
): Promise<number> {
  let writes = 0;
  const { transactions, duplicates } = planTransactions(aggregates);
  outcome.duplicates += duplicates;
  await runExclusive(
    transactions,
    (transaction) => transaction.counters,
    deps.concurrency ?? DEFAULT_CONCURRENCY,
    async ({ parts }) => {
      const apply = async (some: readonly TransactionPart[]) => {
        const applied = await deps.usage.applyTransaction(some, now);
        outcome.counted += applied.counted;
        outcome.duplicates += applied.duplicates;
        writes += applied.writeRequests;
      };
      const failed = (error: unknown, some: readonly TransactionPart[]) => {
        deps.logger.error('transaction failed; its records will be delivered again', {
          error,
          counters: some.length,
          events: some.reduce((sum, part) => sum + part.events.length, 0),
        });
        deps.metrics.addMetric(MeteringMetric.aggregatesFailed, MetricUnit.Count, 1);
        for (const part of some) outcome.failedRecordIds.push(...part.recordIds);
      };
      try {
        await apply(parts);
      } catch (error) {
        // Unavailable (throttling, an outage): everything comes again later, and more requests
        // now would only add to the throttling. Anything else may be one aggregate's own problem
        // (a bug, an item DynamoDB refuses): each part alone, so it cannot hold the others back.
        if (error instanceof DependencyError || parts.length === 1) return failed(error, parts);
        for (const part of parts) await apply([part]).catch((alone: unknown) => failed(alone, [part]));
      }
    },
  );
  return writes;
}

/**
 * The ledger path: the batch's numbered events claimed in one conditional write of the ledger's
 * head (several for a very large batch), then flushed to the counters as its policy says. What it
 * could not commit (DynamoDB unavailable, the head contended past its retries) comes again; a bug
 * fails those records too, logged, and never acknowledges anything not committed.
 * @returns the accounts whose counters this invocation's flushes moved
 */
async function applyLedger(
  ledger: Ledger,
  events: readonly LedgerEvent[],
  deps: ConsumerDeps,
  outcome: BatchOutcome,
): Promise<string[]> {
  try {
    const result = await ledger.commit(events);
    outcome.counted += result.committed.length;
    outcome.ledger = {
      ...(result.journal !== undefined ? { journal: result.journal } : {}),
      ...(result.flushedThrough !== undefined ? { flushedThrough: result.flushedThrough } : {}),
    };
    outcome.duplicates += result.duplicates.length;
    outcome.failedRecordIds.push(...result.failed);
    if (result.error !== undefined) {
      deps.logger.error('ledger unavailable; uncommitted records will be delivered again', {
        error: result.error,
        failed: result.failed.length,
      });
      if (result.failed.length > 0)
        deps.metrics.addMetric(MeteringMetric.aggregatesFailed, MetricUnit.Count, 1);
    }
    return result.accounts;
  } catch (error) {
    deps.logger.error('ledger commit failed; its records will be delivered again', {
      error,
      events: events.length,
    });
    deps.metrics.addMetric(MeteringMetric.aggregatesFailed, MetricUnit.Count, 1);
    outcome.failedRecordIds.push(...events.map((e) => e.recordId));
    return [];
  }
}
