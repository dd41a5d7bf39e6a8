import type { PreparedAggregate } from './batch';
import {
  type AggregateEvent,
  type CounterOwner,
  MAX_EVENTS_PER_PART,
  MAX_TRANSACTION_ITEMS,
  type TransactionPart,
} from './usage-store';

/** What one TransactWriteItems commits, all or nothing: every part's marks and counter increment. */
export interface PlannedTransaction {
  parts: TransactionPart[];
  /** The counters it adds to: two transactions sharing one must not run at the same time. */
  counters: string[];
}

const itemsOf = (part: TransactionPart) => part.events.length + 1;
const counterId = (owner: CounterOwner) => `${owner.accountId}\u0000${owner.keyId}\u0000${owner.day}`;

/**
 * Packs a batch's aggregates into as few transactions as the 100-action limit allows, which is
 * what sets the write units of the SQS path: every event costs its mark, and every transaction an
 * aggregate appears in costs one more counter write. An aggregate of up to 99 events goes whole
 * into one transaction, next to others (first-fit decreasing); a larger one fills transactions of
 * 99 events and puts its remainder with the others. Each transaction marks exactly the events whose
 * counts it adds, so any subset of them may commit (a crash mid-batch) and the rest come again.
 *
 * @returns the transactions, and how many records repeated an event already in the batch
 */
export function planTransactions(aggregates: readonly PreparedAggregate[]): {
  transactions: PlannedTransaction[];
  duplicates: number;
} {
  let duplicates = 0;
  const whole: TransactionPart[] = [];
  const rest: TransactionPart[] = [];
  for (const { aggregate, recordIds } of aggregates) {
    const owner: CounterOwner = {
      keyId: aggregate.keyId,
      accountId: aggregate.accountId,
      day: aggregate.day,
    };
    const byId = new Map<string, { event: AggregateEvent; recordIds: string[] }>();
    aggregate.events.forEach((event, i) => {
      const recordId = recordIds[i] as string;
      const seen = byId.get(event.id);
      if (seen) {
        duplicates++;
        seen.recordIds.push(recordId);
      } else byId.set(event.id, { event, recordIds: [recordId] });
    });
    const unique = [...byId.values()];
    for (let start = 0; start < unique.length; start += MAX_EVENTS_PER_PART) {
      const chunk = unique.slice(start, start + MAX_EVENTS_PER_PART);
      const part = { owner, events: chunk.map((c) => c.event), recordIds: chunk.flatMap((c) => c.recordIds) };
      (chunk.length === MAX_EVENTS_PER_PART ? whole : rest).push(part);
    }
  }
  const bins: TransactionPart[][] = whole.map((part) => [part]);
  const room: number[] = [];
  const shared: TransactionPart[][] = [];
  for (const part of rest.sort((a, b) => itemsOf(b) - itemsOf(a))) {
    const at = room.findIndex((free) => free >= itemsOf(part));
    if (at >= 0) {
      shared[at]?.push(part);
      room[at] = (room[at] as number) - itemsOf(part);
    } else {
      shared.push([part]);
      room.push(MAX_TRANSACTION_ITEMS - itemsOf(part));
    }
  }
  bins.push(...shared);
  return {
    transactions: bins.map((parts) => ({ parts, counters: parts.map((p) => counterId(p.owner)) })),
    duplicates,
  };
}

/**
 * Runs `work` over `tasks`, at most `limit` at once, never two at once that share a key (here: a
 * counter, which two transactions in flight would fight over: TransactionConflict). Tasks start in
 * order, except that one whose keys are busy is passed over until they are free. `work` must not
 * reject.
 */
export async function runExclusive<T>(
  tasks: readonly T[],
  keysOf: (task: T) => readonly string[],
  limit: number,
  work: (task: T) => Promise<void>,
): Promise<void> {
  const pending = [...tasks];
  const busy = new Set<string>();
  let running = 0;
  await new Promise<void>((resolve) => {
    const pump = () => {
      if (pending.length === 0 && running === 0) {
        resolve();
        return;
      }
      for (let i = 0; i < pending.length && running < limit; ) {
        const task = pending[i] as T;
        const keys = keysOf(task);
        if (keys.some((key) => busy.has(key))) {
          i++;
          continue;
        }
        pending.splice(i, 1);
        for (const key of keys) busy.add(key);
        running++;
        const done = () => {
          for (const key of keys) busy.delete(key);
          running--;
          pump();
        };
        work(task).then(done, done);
      }
    };
    pump();
  });
}
