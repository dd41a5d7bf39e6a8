import type { CounterKey } from './counter-keys';

/**
 * The SQS ledger's state and the writes it is made of (docs/metering.md, "The SQS ledger"): what
 * the protocol in services/metering/ledger/ needs from a store, as single-item conditional writes
 * and reads, no transactions. Two stores implement it: ledger-store.ts on DynamoDB, and an
 * in-memory one in test/support/ that the property test runs the same protocol against.
 */

/** A producer's claimed sequence numbers, encoded by services/metering/ledger/range-set.ts. */
export type EncodedRange = string;

/** A flush in progress: journals (frm, to] are being applied to the counters. */
export interface FlushClaim {
  frm: number;
  to: number;
  /** When it was started or last taken over, epoch ms: a flush older than the lease may be taken over. */
  at: number;
  /** Who started it (an invocation's random id), for logs and takeover. */
  owner: string;
}

/**
 * The head: the only item every commit writes. `ver` orders commits (each one is conditional on
 * the version it read); the rest is the ledger's whole claim state.
 */
export interface LedgerHead {
  /** 0 when the head does not exist yet. */
  ver: number;
  /** The last committed journal's number (0: none yet). */
  seq: number;
  /**
   * Journal number → the journal's entry, for every journal above the last flush's start: an
   * opaque string to the store (the protocol writes `<journal id>~<events>~<at>`, policy.ts, so the
   * flush policy can read the pending events and their age from the head alone).
   */
  pend: Record<number, string>;
  fl?: FlushClaim;
  /** Active producers' claimed sequence numbers: pid → encoded range. */
  prod: Record<string, EncodedRange>;
}

/**
 * What separates a `pend` entry's journal id from the counts the flush policy adds after it
 * (services/metering/ledger/policy.ts writes them): a reader that wants only the journal splits here.
 */
export const PEND_ENTRY_SEPARATOR = '~';

/** The journal id a `pend` entry names. */
export const pendJournalId = (entry: string): string => entry.split(PEND_ENTRY_SEPARATOR)[0] ?? entry;

/** A producer moved out of the head when idle (its range, and the head version that moved it). */
export interface ArchivedRange {
  range: EncodedRange;
  ver: number;
}

/**
 * What one journal (or one flush, several journals merged) adds to one counter item: amounts to ADD
 * per attribute (`requests`, `units`, route attributes, hour attributes, day attributes), and values
 * to SET. `lastUsedAt` and `expiresAt` merge by maximum; other sets are the same in every delta of
 * one counter (`keyId`).
 */
export interface CounterDelta {
  counter: CounterKey;
  /**
   * key-day counters and account-period items are applied first, producer shares after: a
   * producer item must never be ahead of its period item (services/gate/limits.ts reads both).
   */
  kind: 'keyDay' | 'period' | 'producer';
  adds: Record<string, number>;
  sets: Record<string, string | number>;
}

export type ApplyOutcome = 'applied' | 'skipped';

/** The store a ledger runs on; every method is one request (or one batch read) to it. */
export interface LedgerStore {
  /** The head, read consistently; `{ ver: 0, seq: 0, pend: {}, prod: {} }` when there is none. */
  readHead(): Promise<LedgerHead>;
  /** How many journals have been applied to the counters (DONE.through), read consistently; 0 if none. */
  readDone(): Promise<number>;
  /**
   * Replaces the head with `next` (whose `ver` is `expectedVer + 1`) if the stored one is still at
   * `expectedVer` (absent counts as 0). `false` when it is not (someone else committed first).
   * Throws when the outcome is unknown (a timeout, a 5xx): the caller re-reads the head.
   */
  commitHead(expectedVer: number, next: LedgerHead): Promise<boolean>;
  /** Writes a journal under a fresh id (never overwritten: the id is new per attempt). */
  putJournal(id: string, deltas: readonly CounterDelta[]): Promise<void>;
  /** The journals asked for, read consistently; a missing one is absent from the map. */
  getJournals(ids: readonly string[]): Promise<Map<string, CounterDelta[]>>;
  /** Archived ranges of these producers, read consistently (pid → archive). */
  getArchives(pids: readonly string[]): Promise<Map<string, ArchivedRange>>;
  /**
   * Archives a producer's range, if there is no archive of it yet or the stored one was written at
   * a lower head version; otherwise does nothing (a newer archive is kept).
   */
  putArchive(pid: string, archive: ArchivedRange): Promise<void>;
  /**
   * Adds a flush's delta to its counter unless the counter has taken this flush already: the
   * ledger's watermark on the counter is below `through` (then set to it), else 'skipped'.
   */
  applyCounter(delta: CounterDelta, through: number): Promise<ApplyOutcome>;
  /** Sets DONE.through to `to` if it is below; does nothing if it is already there or past. */
  advanceDone(to: number): Promise<void>;
}

/** The merge of several deltas of the same counters: one delta per counter. */
export function mergeDeltas(groups: Iterable<readonly CounterDelta[]>): CounterDelta[] {
  const byCounter = new Map<string, CounterDelta>();
  for (const deltas of groups) {
    for (const delta of deltas) {
      const id = `${delta.counter.pk}\u0000${delta.counter.sk}`;
      const into = byCounter.get(id);
      if (!into) {
        byCounter.set(id, {
          counter: delta.counter,
          kind: delta.kind,
          adds: { ...delta.adds },
          sets: { ...delta.sets },
        });
        continue;
      }
      for (const [name, amount] of Object.entries(delta.adds))
        into.adds[name] = (into.adds[name] ?? 0) + amount;
      for (const [name, value] of Object.entries(delta.sets)) {
        const was = into.sets[name];
        into.sets[name] = MAX_MERGED.has(name) && was !== undefined && was > value ? was : value;
      }
    }
  }
  return [...byCounter.values()];
}

/** Sets that merge by maximum: ISO times and epoch seconds both order correctly as compared. */
const MAX_MERGED: ReadonlySet<string> = new Set(['lastUsedAt', 'expiresAt']);
