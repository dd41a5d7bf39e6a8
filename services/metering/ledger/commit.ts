import { ConflictError, DependencyError } from '../../platform/errors';
import { journalDeltas } from '../../usage/ledger-deltas';
import type { ArchivedRange, LedgerHead } from '../../usage/ledger-port';
import {
  flushBusy,
  type LedgerContext,
  type LedgerEvent,
  type LedgerView,
  leaseExpired,
  nowMs,
  pendingJournals,
  prunePend,
  readView,
} from './context';
import { type FlushReport, takeOver } from './flush';
import { flushDue, pendingEntry } from './policy';
import { RangeSet } from './range-set';

/** What one commit of a chunk of a batch did. */
export interface ChunkOutcome {
  /** Events this commit claimed (their deltas are in its journal). */
  committed: LedgerEvent[];
  /** Events claimed before (by an earlier delivery, or a concurrent one that won). */
  duplicates: LedgerEvent[];
  /** The committed journal's number and the ledger as this commit left it (absent: nothing new). */
  journal?: number;
  view?: LedgerView;
  /** The flush this commit claimed, to run now. */
  flush?: { frm: number; to: number };
  /** What a stalled flush this commit took over first applied. */
  takenOver?: FlushReport;
}

interface Journal {
  entry: string;
  /** The events it holds, as `pid seq` pairs: reusable while they are still all unclaimed. */
  pairs: string;
}

const pairOf = (e: LedgerEvent) => `${e.pid} ${e.seq}`;

/**
 * Claims a chunk of distinct (pid, seq) events with one conditional write of the head (§5.3 steps
 * 2–8): drop what is claimed already, write the rest's deltas to a journal under a fresh id, and
 * commit the head naming it, conditional on the version read. A lost race re-reads and re-dedupes;
 * an unknown outcome is settled by whether the head names this journal. Throws when the store is
 * unavailable (DependencyError) or the head kept changing (ConflictError): nothing of the chunk may
 * then be acknowledged.
 */
export async function commitChunk(ctx: LedgerContext, events: readonly LedgerEvent[]): Promise<ChunkOutcome> {
  let journal: Journal | undefined;
  let takenOver: FlushReport | undefined;
  let tookOver = false;
  for (let attempt = 0; attempt < ctx.maxCommitAttempts; attempt++) {
    const view = await readView(ctx);
    if (!tookOver && flushBusy(view) && leaseExpired(ctx, view)) {
      // A stalled flush blocks every later one: finish it first (a failure here is the next one's to retry).
      tookOver = true;
      takenOver = await takeOver(ctx, view).catch(ignoreUnavailable);
      continue;
    }
    const archives = await fetchArchives(ctx, view.head, events);
    const { fresh, duplicates } = dedupe(view.head, archives, events);
    if (fresh.length === 0) {
      return { committed: [], duplicates, ...ownFlush(ctx, view), ...(takenOver ? { takenOver } : {}) };
    }
    const j = view.head.seq + 1;
    const pairs = fresh.map(pairOf).join(',');
    if (journal?.pairs !== pairs) journal = await writeJournal(ctx, fresh, j, pairs);
    const { next, flush } = await prepareHead(ctx, view, archives, fresh, journal.entry);
    if (await landed(ctx, view.head.ver, next, journal.entry)) {
      const after = { head: next, done: view.done };
      return {
        committed: fresh,
        duplicates,
        journal: j,
        view: after,
        ...flush,
        ...(takenOver ? { takenOver } : {}),
      };
    }
  }
  throw new ConflictError('ledger head');
}

/**
 * A flush this invocation claimed and has not run: its commit timed out, the re-read did not see
 * it, and it landed before the retry (which then finds its own events claimed). Left alone it
 * would wait for the lease and a takeover.
 */
function ownFlush(ctx: LedgerContext, view: LedgerView): { flush?: { frm: number; to: number } } {
  const fl = view.head.fl;
  return fl && fl.owner === ctx.owner && flushBusy(view) ? { flush: { frm: fl.frm, to: fl.to } } : {};
}

const ignoreUnavailable = (error: unknown): undefined => {
  if (!(error instanceof DependencyError)) throw error;
  return undefined;
};

/** Archives of the chunk's producers that are not in the head (read consistently). */
async function fetchArchives(ctx: LedgerContext, head: LedgerHead, events: readonly LedgerEvent[]) {
  const absent = [...new Set(events.map((e) => e.pid))].filter((pid) => head.prod[pid] === undefined);
  return absent.length === 0 ? new Map<string, ArchivedRange>() : ctx.store.getArchives(absent);
}

function dedupe(
  head: LedgerHead,
  archives: ReadonlyMap<string, ArchivedRange>,
  events: readonly LedgerEvent[],
) {
  const ranges = new Map<string, RangeSet | undefined>();
  const rangeOf = (pid: string) => {
    if (!ranges.has(pid)) {
      const encoded = head.prod[pid] ?? archives.get(pid)?.range;
      ranges.set(pid, encoded === undefined ? undefined : RangeSet.decode(encoded));
    }
    return ranges.get(pid);
  };
  const fresh: LedgerEvent[] = [];
  const duplicates: LedgerEvent[] = [];
  for (const event of events) (rangeOf(event.pid)?.contains(event.seq) ? duplicates : fresh).push(event);
  return { fresh, duplicates };
}

async function writeJournal(
  ctx: LedgerContext,
  fresh: readonly LedgerEvent[],
  j: number,
  pairs: string,
): Promise<Journal> {
  const id = ctx.newId(j);
  await ctx.store.putJournal(id, journalDeltas(fresh, ctx.producerTtlMs));
  const oldest = fresh.reduce((min, e) => Math.min(min, e.ts), Number.POSITIVE_INFINITY);
  return { entry: pendingEntry({ id, events: fresh.length, at: Math.min(oldest, nowMs(ctx)) }), pairs };
}

/**
 * The head this commit writes: the chunk's seqs added to their producers' ranges (an archived
 * producer comes back), idle producers moved to their archives, the journal named as entry j, and
 * a flush claimed if none is in progress and the policy says one is due.
 */
async function prepareHead(
  ctx: LedgerContext,
  view: LedgerView,
  archives: ReadonlyMap<string, ArchivedRange>,
  fresh: readonly LedgerEvent[],
  entry: string,
): Promise<{ next: LedgerHead; flush?: { flush: { frm: number; to: number } } }> {
  const { head, done } = view;
  const now = nowMs(ctx);
  const prod = { ...head.prod };
  const touched = new Map<string, RangeSet>();
  for (const event of fresh) {
    let range = touched.get(event.pid);
    if (!range) {
      const encoded = head.prod[event.pid] ?? archives.get(event.pid)?.range;
      range = encoded === undefined ? new RangeSet() : RangeSet.decode(encoded);
      touched.set(event.pid, range);
    }
    range.add(event.seq, event.at, now);
  }
  for (const [pid, range] of touched) {
    range.compact(now, ctx.timers);
    prod[pid] = range.encode();
  }
  for (const pid of await archiveIdle(ctx, head, touched)) delete prod[pid];
  const j = head.seq + 1;
  const oldest = fresh.reduce((min, e) => Math.min(min, e.ts), now);
  const pending = [...pendingJournals(ctx, view), { id: '', events: fresh.length, at: oldest }];
  if ((flushBusy(view) && !ctx.unsafe.claimFlushWhileBusy) || !flushDue(ctx.policy, pending, now)) {
    return { next: { ...head, ver: head.ver + 1, seq: j, pend: { ...head.pend, [j]: entry }, prod } };
  }
  const fl = { frm: done, to: j, at: now, owner: ctx.owner };
  const next = { ver: head.ver + 1, seq: j, pend: { ...prunePend(head.pend, done), [j]: entry }, fl, prod };
  return { next, flush: { flush: { frm: done, to: j } } };
}

/**
 * Archives producers of the head idle past `archiveIdleMs` (not in this chunk): the archive is
 * written first, conditional on being newer than any stored one, and only an archived producer
 * leaves the head. An archive write that fails keeps the producer in the head for a later commit.
 */
async function archiveIdle(ctx: LedgerContext, head: LedgerHead, touched: ReadonlyMap<string, RangeSet>) {
  const idleBefore = nowMs(ctx) - ctx.timers.archiveIdleMs;
  const idle = Object.entries(head.prod)
    .filter(([pid, encoded]) => !touched.has(pid) && RangeSet.decode(encoded).seenAt < idleBefore)
    .slice(0, ctx.maxArchivesPerCommit);
  const archived: string[] = [];
  for (const [pid, range] of idle) {
    try {
      await ctx.store.putArchive(pid, { range, ver: head.ver });
      archived.push(pid);
    } catch (error) {
      ignoreUnavailable(error);
    }
  }
  return archived;
}

/**
 * Whether the head commit landed. An unknown outcome (the store threw) is settled by re-reading
 * the head: it names this journal as entry j only if this commit landed (a delayed write that lands
 * later meets the version condition, or finds its events claimed on the retry).
 */
async function landed(ctx: LedgerContext, ver: number, next: LedgerHead, entry: string): Promise<boolean> {
  try {
    return await ctx.store.commitHead(ver, next);
  } catch (error) {
    const head = await ctx.store.readHead();
    if (head.pend[next.seq] === entry) return true;
    if (error instanceof DependencyError) return false;
    throw error;
  }
}
