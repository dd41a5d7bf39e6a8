import { utcDay } from '../../contracts/usage-event';
import { eachWithConcurrency } from '../platform/concurrency';
import { keyDayCounter, monthOf, periodCounter, producerCounter } from '../usage/counter-keys';
import type { OrderedIncrement, OrderedPeriodIncrement } from '../usage/counter-updates';
import { periodId, producerId } from '../usage/period-counters';
import type { UsageStore } from '../usage/usage-store';
import type { AcceptedRecord, StreamPosition } from './batch';
import type { LookBack } from './look-back';

export interface OrderedDeps {
  usage: UsageStore;
  lookBack: LookBack;
  now: Date;
  /** Counter updates in flight at once. */
  concurrency: number;
  onCounterFailed: (error: unknown, increment: OrderedIncrement) => void;
  onPeriodFailed: (error: unknown, increment: OrderedPeriodIncrement) => void;
  onLookBackFailed: (error: unknown, record: AcceptedRecord) => void;
}

export interface OrderedOutcome {
  counted: number;
  duplicates: number;
  writeRequests: number;
  failedRecordIds: string[];
}

const byShard = (position: StreamPosition) => `${position.streamArn}\u0000${position.shardId}`;

/**
 * Counts a Kinesis batch exactly with one conditional UpdateItem per counter touched, and no
 * per-event state: every counter remembers the last sequence number it took from the shard
 * (UsageStore.applyInOrder), so whatever the event source delivers again is skipped.
 *
 * Copies with new sequence numbers come only from key-api sending an event again; those carry
 * `resent`. A copy whose twin is in the same batch is dropped here; otherwise the shard is read
 * back for the twin (LookBack). If that read fails, the batch is cut short before the copy: the
 * records from it on are reported failed and come again, and nothing after it is written, so no
 * counter's watermark can pass it.
 */
export async function applyOrdered(
  accepted: readonly AcceptedRecord[],
  deps: OrderedDeps,
): Promise<OrderedOutcome> {
  const outcome: OrderedOutcome = { counted: 0, duplicates: 0, writeRequests: 0, failedRecordIds: [] };
  const increments: CounterTask[] = [];
  const periods: PeriodTask[] = [];
  const producers: PeriodTask[] = [];
  for (const records of byShards(accepted)) {
    const kept = await keepFirstCopies(records, deps, outcome);
    const shardId = records[0]?.record.position?.shardId ?? '';
    increments.push(...counterTasks(kept));
    periods.push(...periodsOf(kept, shardId, false));
    producers.push(...periodsOf(kept, shardId, true));
  }
  const failed = new Set(outcome.failedRecordIds);
  // Key-day counters and account-period items first, at once; then the producers' shares, and only
  // of periods that took their entries: a producer item must never be ahead of its period item, or
  // a gate would take what it admitted as counted before the quota's total holds it.
  const periodFailed = await writeCountersAndPeriods([...increments, ...periods], deps, outcome, failed);
  for (const task of producers)
    if (periodFailed.has(task.periodKey)) for (const id of task.recordIds) failed.add(id);
  const ready = producers.filter((task) => !periodFailed.has(task.periodKey));
  await eachWithConcurrency(ready, deps.concurrency, async (task) => {
    try {
      const result = await deps.usage.applyPeriodInOrder(task.period, deps.now);
      outcome.writeRequests += result.writeRequests;
    } catch (error) {
      deps.onPeriodFailed(error, task.period);
      for (const id of task.recordIds) failed.add(id);
    }
  });
  outcome.failedRecordIds = [...failed];
  return outcome;
}

/** The batch's records per shard, each shard's in ascending sequence order. */
function byShards(accepted: readonly AcceptedRecord[]): AcceptedRecord[][] {
  const shards = new Map<string, AcceptedRecord[]>();
  for (const item of accepted) {
    const position = item.record.position;
    if (!position) throw new Error('applyOrdered needs records with a stream position');
    const list = shards.get(byShard(position)) ?? [];
    list.push(item);
    shards.set(byShard(position), list);
  }
  return [...shards.values()].map((records) =>
    [...records].sort((a, b) => {
      const x = BigInt(a.record.position?.sequenceNumber ?? 0);
      const y = BigInt(b.record.position?.sequenceNumber ?? 0);
      return x < y ? -1 : x > y ? 1 : 0;
    }),
  );
}

/** One key-day counter's increment from one shard's batch, and the records it is made of. */
interface CounterTask {
  increment: OrderedIncrement;
  recordIds: string[];
}

/**
 * One counter per (key, day) of a shard's kept records: each event adds to exactly one, so every
 * counter write counts its entries as events.
 */
function counterTasks(kept: readonly AcceptedRecord[]): CounterTask[] {
  const byCounter = new Map<string, CounterTask>();
  for (const item of kept) {
    const counter = keyDayCounter(item.event.accountId, item.event.keyId, utcDay(item.event.ts));
    const id = `${counter.pk}\u0000${counter.sk}`;
    let entry = byCounter.get(id);
    if (!entry) {
      entry = {
        increment: {
          counter,
          keyId: item.event.keyId,
          shardId: item.record.position?.shardId ?? '',
          entries: [],
        },
        recordIds: [],
      };
      byCounter.set(id, entry);
    }
    entry.increment.entries.push({
      sequenceNumber: item.record.position?.sequenceNumber ?? '',
      units: item.event.units,
      ts: item.event.ts,
      ...(item.event.route === undefined ? {} : { route: item.event.route }),
      ...(item.event.method === undefined ? {} : { method: item.event.method }),
    });
    entry.recordIds.push(item.record.recordId);
  }
  return [...byCounter.values()];
}

/**
 * Writes the key-day counters and account-period items at once; a failed one fails its records.
 * @returns the periods whose item took nothing (their producers' shares must wait)
 */
async function writeCountersAndPeriods(
  tasks: readonly (CounterTask | PeriodTask)[],
  deps: OrderedDeps,
  outcome: OrderedOutcome,
  failed: Set<string>,
): Promise<Set<string>> {
  const periodFailed = new Set<string>();
  await eachWithConcurrency(tasks, deps.concurrency, async (task) => {
    try {
      if ('period' in task) {
        const result = await deps.usage.applyPeriodInOrder(task.period, deps.now);
        outcome.writeRequests += result.writeRequests;
      } else {
        const result = await deps.usage.applyInOrder(task.increment, deps.now);
        outcome.writeRequests += result.writeRequests;
        outcome.counted += result.applied;
        outcome.duplicates += result.skipped;
      }
    } catch (error) {
      if ('period' in task) {
        deps.onPeriodFailed(error, task.period);
        periodFailed.add(task.periodKey);
      } else deps.onCounterFailed(error, task.increment);
      for (const id of task.recordIds) failed.add(id);
    }
  });
  return periodFailed;
}

interface PeriodTask {
  period: OrderedPeriodIncrement;
  /** The shard and account-period item it belongs to (a producer's share: its period's). */
  periodKey: string;
  recordIds: string[];
}

/** One shard's kept records as increments of their account-period items, or of their producers' shares. */
function periodsOf(kept: readonly AcceptedRecord[], shardId: string, producer: boolean): PeriodTask[] {
  const tasks = new Map<string, PeriodTask>();
  for (const item of kept) {
    const { event, record } = item;
    if (producer && event.pid === undefined) continue;
    const month = monthOf(utcDay(event.ts));
    const periodKey = `${shardId}\u0000${periodId(event.accountId, month)}`;
    const id = producer
      ? `${shardId}\u0000${producerId(event.accountId, month, event.pid ?? '')}`
      : periodKey;
    let task = tasks.get(id);
    if (!task) {
      const counter =
        producer && event.pid !== undefined
          ? producerCounter(event.accountId, month, event.pid)
          : periodCounter(event.accountId, month);
      task = { period: { counter, shardId, producer, entries: [] }, periodKey, recordIds: [] };
      tasks.set(id, task);
    }
    task.period.entries.push({
      sequenceNumber: record.position?.sequenceNumber ?? '',
      accountId: event.accountId,
      units: event.units,
      ts: event.ts,
      ...(event.pid === undefined ? {} : { pid: event.pid }),
    });
    task.recordIds.push(record.recordId);
  }
  return [...tasks.values()];
}

/** Drops second copies of an event; stops at a resent copy it cannot check (see applyOrdered). */
async function keepFirstCopies(
  ordered: readonly AcceptedRecord[],
  deps: OrderedDeps,
  outcome: OrderedOutcome,
): Promise<AcceptedRecord[]> {
  const seen = new Set<string>();
  const kept: AcceptedRecord[] = [];
  for (const [index, item] of ordered.entries()) {
    if (seen.has(item.event.id)) {
      outcome.duplicates++;
      continue;
    }
    seen.add(item.event.id);
    if (item.event.resent !== undefined && item.record.position) {
      try {
        const twin = await deps.lookBack.earlierCopyExists({
          position: item.record.position,
          eventId: item.event.id,
          since: item.event.resent,
        });
        if (twin) {
          outcome.duplicates++;
          continue;
        }
      } catch (error) {
        deps.onLookBackFailed(error, item);
        outcome.failedRecordIds.push(...ordered.slice(index).map((r) => r.record.recordId));
        return kept;
      }
    }
    kept.push(item);
  }
  return kept;
}
