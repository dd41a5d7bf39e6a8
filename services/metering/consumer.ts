import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Clock } from '../shared/clock';
import { MeteringMetric } from '../shared/metric-names';
import type { UsageStore } from '../shared/usage-store';
import { type AcceptanceWindow, type InboundRecord, type PreparedAggregate, prepareBatch } from './batch';
import type { DeadLetterSink } from './dead-letter';

export interface ConsumerDeps {
  usage: UsageStore;
  deadLetters: DeadLetterSink;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  window: AcceptanceWindow;
  /** Aggregates written at once; more overlaps DynamoDB round trips, too many invites throttling. */
  concurrency?: number;
}

export interface BatchOutcome {
  /** Records to report back as failed; the event source delivers them again. */
  failedRecordIds: string[];
  counted: number;
  duplicates: number;
  deadLettered: number;
}

async function eachWithConcurrency<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  });
  await Promise.all(workers);
}

/**
 * Counts one batch: validate, aggregate per (key, day), apply each aggregate exactly once, send
 * refused records to the dead letter with a reason. A failed aggregate fails only the records that
 * fed it; the rest of the batch is counted and acknowledged.
 */
export async function consumeBatch(
  records: readonly InboundRecord[],
  deps: ConsumerDeps,
): Promise<BatchOutcome> {
  const now = deps.clock.now();
  const { aggregates, rejected, events } = prepareBatch(records, now, deps.window);
  const outcome: BatchOutcome = { failedRecordIds: [], counted: 0, duplicates: 0, deadLettered: 0 };

  if (rejected.length > 0) {
    const notSent = await deps.deadLetters.send(rejected);
    outcome.failedRecordIds.push(...notSent);
    outcome.deadLettered = rejected.length - notSent.length;
    for (const r of rejected) {
      deps.logger.warn('usage record dead-lettered', {
        reason: r.reason,
        detail: r.detail,
        recordId: r.record.recordId,
      });
    }
  }

  let writes = 0;
  const apply = async ({ aggregate, recordIds }: PreparedAggregate) => {
    try {
      const applied = await deps.usage.applyAggregate(aggregate, now);
      outcome.counted += applied.counted;
      outcome.duplicates += applied.duplicates;
      writes += applied.writeRequests;
    } catch (error) {
      deps.logger.error('aggregate failed; its records will be delivered again', {
        error,
        keyId: aggregate.keyId,
        day: aggregate.day,
        events: aggregate.events.length,
      });
      deps.metrics.addMetric(MeteringMetric.aggregatesFailed, MetricUnit.Count, 1);
      outcome.failedRecordIds.push(...recordIds);
    }
  };
  // Every aggregate of an account also adds to the account's day counter; written concurrently
  // they would cancel each other's transactions (TransactionConflict). Accounts run in parallel,
  // each account's aggregates one after another.
  const byAccount = new Map<string, PreparedAggregate[]>();
  for (const prepared of aggregates) {
    const list = byAccount.get(prepared.aggregate.accountId) ?? [];
    list.push(prepared);
    byAccount.set(prepared.aggregate.accountId, list);
  }
  await eachWithConcurrency([...byAccount.values()], deps.concurrency ?? 4, async (list) => {
    for (const prepared of list) await apply(prepared);
  });

  const m = deps.metrics;
  m.addMetric(MeteringMetric.batchSize, MetricUnit.Count, records.length);
  m.addMetric(MeteringMetric.eventsCounted, MetricUnit.Count, outcome.counted);
  m.addMetric(MeteringMetric.eventsDuplicate, MetricUnit.Count, outcome.duplicates);
  m.addMetric(MeteringMetric.eventsDeadLettered, MetricUnit.Count, outcome.deadLettered);
  m.addMetric(MeteringMetric.counterWriteRequests, MetricUnit.Count, writes);
  if (writes > 0) m.addMetric(MeteringMetric.eventsPerWrite, MetricUnit.Count, outcome.counted / writes);
  if (events.length > 0) {
    const oldest = Math.min(...events.map((e) => e.ts));
    m.addMetric(
      MeteringMetric.usageLag,
      MetricUnit.Milliseconds,
      Math.max(0, deps.clock.now().getTime() - oldest),
    );
  }
  return outcome;
}
