import {
  type Aggregate,
  type AggregateEvent,
  type CounterOwner,
  MAX_TRANSACTION_ITEMS,
  type TransactionPart,
} from './counter-updates';
import { periodIdsOf } from './period-counters';

/** One aggregate's counter writes and the queue or stream records it was made of. */
export interface PreparedAggregate {
  aggregate: Aggregate;
  recordIds: string[];
}

/** What one TransactWriteItems commits, all or nothing: every part's marks and counter increment. */
export interface PlannedTransaction {
  parts: TransactionPart[];
  /**
   * The items it adds to besides marks (key-day counters, account-period items, producers'
   * shares): two transactions sharing one must not run at the same time.
   */
  counters: string[];
}

/** How far from full an account's own transaction may be and still go out as it is (planTransactions). */
const FULL_SLACK = 20;

const counterId = (owner: CounterOwner) => `${owner.accountId}\u0000${owner.keyId}\u0000${owner.day}`;

/** The period items (period-counters.ts) a part's events add to: shared by every part of the account. */
function sharedItemsOf(part: TransactionPart): Set<string> {
  const ids = new Set<string>();
  for (const event of part.events) {
    for (const id of periodIdsOf({ ...event, accountId: part.owner.accountId })) ids.add(id);
  }
  return ids;
}

/** A transaction being filled: its parts and the items they write. */
interface Bin {
  parts: TransactionPart[];
  /** Marks and key-day counters. */
  own: number;
  shared: Set<string>;
}

const newItems = (bin: Bin, shared: ReadonlySet<string>) => {
  let count = 0;
  for (const id of shared) if (!bin.shared.has(id)) count++;
  return count;
};

/**
 * Packs a batch's aggregates into as few transactions as the 100-action limit allows, which is
 * what sets the write units of the SQS path: every event costs its mark, every transaction an
 * aggregate appears in costs one more counter write, and every account (and gate container) a
 * transaction holds events of costs one account-period item (and one producer item) — shared by
 * all of that account's parts in the transaction. An aggregate goes whole into one transaction
 * if it fits, next to others (first-fit decreasing); a larger one fills transactions and puts its
 * remainder with the others. Each transaction marks exactly the events whose counts it adds, so
 * any subset of them may commit (a crash mid-batch) and the rest come again.
 *
 * @returns the transactions, and how many records repeated an event already in the batch
 */
export function planTransactions(aggregates: readonly PreparedAggregate[]): {
  transactions: PlannedTransaction[];
  duplicates: number;
} {
  let duplicates = 0;
  const parts: SizedPart[] = [];
  for (const prepared of aggregates) {
    const { byId, repeated } = distinctEvents(prepared);
    duplicates += repeated;
    parts.push(...chunksOf(prepared.aggregate, byId.values()));
  }
  // Each account's parts first, into transactions of their own (first-fit decreasing), so a
  // transaction carries the account's period items once for many of its parts. Every account a
  // transaction holds costs its period items, so few accounts per transaction is fewer write units.
  const byAccount = new Map<string, SizedPart[]>();
  for (const entry of parts) {
    const list = byAccount.get(entry.part.owner.accountId) ?? [];
    list.push(entry);
    byAccount.set(entry.part.owner.accountId, list);
  }
  const own = [...byAccount.values()].flatMap((list) =>
    firstFit(list.sort((a, b) => sizeOf(b) - sizeOf(a)).map(binOf)),
  );
  // An account's transaction within FULL_SLACK items of full stays as it is; the others' parts are
  // packed together again, part by part, so the remainders of many accounts do not each cost a
  // transaction of their own.
  const bins = own.filter((b) => itemsOf(b) >= MAX_TRANSACTION_ITEMS - FULL_SLACK);
  const loose = own.filter((b) => itemsOf(b) < MAX_TRANSACTION_ITEMS - FULL_SLACK);
  const sharedOf = new Map(parts.map((p) => [p.part, p.shared]));
  bins.push(
    ...packMixed(
      loose.flatMap((b) =>
        b.parts.map((part) => ({ part, shared: sharedOf.get(part) ?? new Set<string>() })),
      ),
    ),
  );
  return {
    transactions: bins.map((bin) => ({
      parts: bin.parts,
      counters: [...bin.parts.map((p) => counterId(p.owner)), ...bin.shared],
    })),
    duplicates,
  };
}

/** A part and the period items it writes. */
interface SizedPart {
  part: TransactionPart;
  shared: Set<string>;
}

type EventRecords = { event: AggregateEvent; recordIds: string[] };

/** An aggregate's events once each, with every record that carried it; `repeated` counts the repeats. */
function distinctEvents({ aggregate, recordIds }: PreparedAggregate): {
  byId: Map<string, EventRecords>;
  repeated: number;
} {
  let repeated = 0;
  const byId = new Map<string, EventRecords>();
  aggregate.events.forEach((event, i) => {
    const recordId = recordIds[i] as string;
    const seen = byId.get(event.id);
    if (seen) {
      repeated++;
      seen.recordIds.push(recordId);
    } else byId.set(event.id, { event, recordIds: [recordId] });
  });
  return { byId, repeated };
}

/** Chunks of one aggregate that fit one transaction alone: events, their counter, their period items. */
function chunksOf(aggregate: Aggregate, events: Iterable<EventRecords>): SizedPart[] {
  const owner: CounterOwner = { keyId: aggregate.keyId, accountId: aggregate.accountId, day: aggregate.day };
  const parts: SizedPart[] = [];
  let chunk: EventRecords[] = [];
  let pids = new Set<string>();
  const close = () => {
    if (chunk.length === 0) return;
    const part = { owner, events: chunk.map((c) => c.event), recordIds: chunk.flatMap((c) => c.recordIds) };
    parts.push({ part, shared: sharedItemsOf(part) });
    chunk = [];
    pids = new Set();
  };
  for (const entry of events) {
    const pid = entry.event.pid;
    const morePids = pid !== undefined && !pids.has(pid) ? 1 : 0;
    // The chunk's items with this event: marks + its counter + the account-period item + producers.
    if (chunk.length + 1 + 1 + 1 + pids.size + morePids > MAX_TRANSACTION_ITEMS) close();
    chunk.push(entry);
    if (pid !== undefined) pids.add(pid);
  }
  close();
  return parts;
}

const sizeOf = (p: SizedPart) => p.part.events.length + 1 + p.shared.size;
const itemsOf = (b: Bin) => b.own + b.shared.size;
const binOf = (entry: SizedPart): Bin => ({
  parts: [entry.part],
  own: entry.part.events.length + 1,
  shared: entry.shared,
});

/** First-fit decreasing of whole units into transactions. */
function firstFit(units: readonly Bin[]): Bin[] {
  const packed: Bin[] = [];
  for (const unit of [...units].sort((a, b) => itemsOf(b) - itemsOf(a))) {
    const bin = packed.find((b) => itemsOf(b) + unit.own + newItems(b, unit.shared) <= MAX_TRANSACTION_ITEMS);
    if (bin) {
      bin.parts.push(...unit.parts);
      bin.own += unit.own;
      for (const id of unit.shared) bin.shared.add(id);
    } else packed.push({ parts: [...unit.parts], own: unit.own, shared: new Set(unit.shared) });
  }
  return packed;
}

/** Parts of many accounts, largest first, each into a transaction already holding its account if one fits. */
function packMixed(looseParts: SizedPart[]): Bin[] {
  const mixed: Bin[] = [];
  for (const entry of looseParts.sort((a, b) => sizeOf(b) - sizeOf(a))) {
    const units = entry.part.events.length + 1;
    const fits = (b: Bin) => itemsOf(b) + units + newItems(b, entry.shared) <= MAX_TRANSACTION_ITEMS;
    const bin = mixed.find((b) => newItems(b, entry.shared) === 0 && fits(b)) ?? mixed.find(fits);
    if (bin) {
      bin.parts.push(entry.part);
      bin.own += units;
      for (const id of entry.shared) bin.shared.add(id);
    } else mixed.push({ parts: [entry.part], own: units, shared: new Set(entry.shared) });
  }
  return mixed;
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
