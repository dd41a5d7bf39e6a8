import type { Clock } from '../../platform/clock';
import type { LedgerHead, LedgerStore } from '../../usage/ledger-port';
import { type FlushPolicy, type PendingJournal, parsePendingEntry } from './policy';

/** One accepted SQS record's event, as the ledger claims and counts it. */
export interface LedgerEvent {
  /** The SQS record it came in (a result names records, not events). */
  recordId: string;
  pid: string;
  seq: number;
  /** When the producer assigned `seq` (epoch ms, never decreasing per pid, ≥ ts). */
  at: number;
  accountId: string;
  keyId: string;
  ts: number;
  units: number;
  route?: string;
  method?: string;
}

/** The timers of the design note (§5.6). */
export interface LedgerTimers {
  /** A flush claim older than this may be taken over (≥ the p99 flush time); default 10 s. */
  leaseMs: number;
  /** A producer with no claim for this long leaves the head for its archive; default 10 min. */
  archiveIdleMs: number;
  /** A hole in a producer's seqs older than this becomes a gap; default 20 min. */
  reorderHorizonMs: number;
  /** The late window: the age check refuses older events, so older gaps are closed; no default. */
  lateMs: number;
}

/** Everything a ledger step works with; built once per Ledger, plus the invocation's owner id. */
export interface LedgerContext {
  store: LedgerStore;
  clock: Clock;
  /** A fresh random id; `journal` is the number a journal id is drawn for. */
  newId: (journal?: number) => string;
  /** This invocation's id, written into the flush claims it makes. */
  owner: string;
  policy: FlushPolicy;
  timers: LedgerTimers;
  producerTtlMs: number;
  maxJournalBytes: number;
  maxArchivesPerCommit: number;
  maxCommitAttempts: number;
  pollMs: number;
  sleep: (ms: number) => Promise<void>;
  /** Test only (LedgerOptions.unsafe): breaks exactness on purpose, for the model test's mutants. */
  unsafe: { claimFlushWhileBusy: boolean };
}

/** The head and DONE, read in that order (a stale DONE can only make a flush look busy). */
export interface LedgerView {
  head: LedgerHead;
  done: number;
}

export async function readView(ctx: LedgerContext): Promise<LedgerView> {
  const head = await ctx.store.readHead();
  const done = await ctx.store.readDone();
  return { head, done };
}

export const nowMs = (ctx: LedgerContext): number => ctx.clock.now().getTime();

/** A flush is in progress: claimed in the head and not yet recorded in DONE. */
export const flushBusy = (view: LedgerView): boolean =>
  view.head.fl !== undefined && view.head.fl.to > view.done;

export const leaseExpired = (ctx: LedgerContext, view: LedgerView): boolean =>
  view.head.fl !== undefined && view.head.fl.at <= nowMs(ctx) - ctx.timers.leaseMs;

/** The journals committed after DONE.through. */
export function pendingJournals(ctx: LedgerContext, view: LedgerView): PendingJournal[] {
  const pending: PendingJournal[] = [];
  const now = nowMs(ctx);
  for (let j = view.done + 1; j <= view.head.seq; j++) {
    const entry = view.head.pend[j];
    if (entry !== undefined) pending.push(parsePendingEntry(entry, now));
  }
  return pending;
}

/** The last journal applied or in the flush claim in progress: every later one is unclaimed. */
export const claimedThrough = (view: LedgerView): number => Math.max(view.done, view.head.fl?.to ?? 0);

/**
 * The journals committed and not in a flush claim yet (after DONE and after the claim in progress):
 * what the flush policy weighs. Those a running flush covers are its owner's already.
 */
export function unclaimedJournals(ctx: LedgerContext, view: LedgerView): PendingJournal[] {
  return pendingJournals(ctx, { ...view, done: claimedThrough(view) });
}

/** `pend` without the journals a flush from `done` no longer needs. */
export function prunePend(pend: Record<number, string>, done: number): Record<number, string> {
  const kept: Record<number, string> = {};
  for (const [j, entry] of Object.entries(pend)) if (Number(j) > done) kept[Number(j)] = entry;
  return kept;
}
