import { DependencyError } from '../../platform/errors';
import { accountPartition } from '../../usage/counter-keys';
import { type CounterDelta, type FlushClaim, mergeDeltas } from '../../usage/ledger-port';
import {
  flushBusy,
  type LedgerContext,
  type LedgerView,
  leaseExpired,
  nowMs,
  prunePend,
  readView,
} from './context';
import { parsePendingEntry } from './policy';

/** What the flushes of one invocation applied. */
export interface FlushReport {
  /** Events in the journals of the flush ranges this invocation completed. */
  events: number;
  /** Accounts with a counter these flushes moved (for quota alerts). */
  accounts: Set<string>;
  /** The last journal these flushes applied (the counters hold every one through it); 0: none. */
  through: number;
}

export const emptyReport = (): FlushReport => ({ events: 0, accounts: new Set(), through: 0 });

export function addReport(into: FlushReport, from: FlushReport | undefined): void {
  if (!from) return;
  into.events += from.events;
  into.through = Math.max(into.through, from.through);
  for (const account of from.accounts) into.accounts.add(account);
}

const COUNTER_CONCURRENCY = 8;
const COUNTER_ATTEMPTS = 3;
const ACCOUNT_PREFIX = accountPartition('');

/**
 * Applies journals (frm, to] to the counters: their deltas merged, key-day and period items first,
 * producer shares after (a share must never be ahead of its period item), each guarded by the
 * counter's watermark so a re-run or a racing taker changes nothing twice; then DONE. Undefined if
 * the head no longer claims this range, or it was flushed already (its journals left `pend`).
 */
export async function runFlush(
  ctx: LedgerContext,
  frm: number,
  to: number,
): Promise<FlushReport | undefined> {
  const head = await ctx.store.readHead();
  // Only the head's current claim runs: a range it no longer names was finished (a later claim
  // needs DONE past it) or never claimed, and running it beside the claimed one could apply twice.
  if (head.fl?.frm !== frm || head.fl.to !== to) return undefined;
  const now = nowMs(ctx);
  const entries = [];
  for (let j = frm + 1; j <= to; j++) {
    const entry = head.pend[j];
    if (entry === undefined) {
      if ((await ctx.store.readDone()) >= to) return undefined;
      throw new Error(`ledger: journal ${j} of the incomplete flush (${frm}, ${to}] is not in the head`);
    }
    entries.push(parsePendingEntry(entry, now));
  }
  const journals = await ctx.store.getJournals(entries.map((e) => e.id));
  const deltas = entries.map((e) => {
    const journal = journals.get(e.id);
    if (!journal) throw new Error(`ledger: journal ${e.id} of the flush (${frm}, ${to}] is missing`);
    return journal;
  });
  const merged = mergeDeltas(deltas);
  const report: FlushReport = {
    events: entries.reduce((n, e) => n + e.events, 0),
    accounts: new Set(),
    through: to,
  };
  await applyCounters(ctx, merged, to, report.accounts, (d) => d.kind !== 'producer');
  await applyCounters(ctx, merged, to, report.accounts, (d) => d.kind === 'producer');
  await ctx.store.advanceDone(to);
  return report;
}

async function applyCounters(
  ctx: LedgerContext,
  deltas: readonly CounterDelta[],
  through: number,
  accounts: Set<string>,
  which: (delta: CounterDelta) => boolean,
): Promise<void> {
  const queue = deltas.filter(which);
  let next = 0;
  const worker = async () => {
    for (let delta = queue[next++]; delta; delta = queue[next++]) {
      if (
        (await applyWithRetry(ctx, delta, through)) === 'applied' &&
        delta.counter.pk.startsWith(ACCOUNT_PREFIX)
      ) {
        accounts.add(delta.counter.pk.slice(ACCOUNT_PREFIX.length));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(COUNTER_CONCURRENCY, queue.length) }, worker));
}

/** A throttled or timed-out counter update is retried: if it did land, the retry meets the watermark. */
async function applyWithRetry(ctx: LedgerContext, delta: CounterDelta, through: number) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await ctx.store.applyCounter(delta, through);
    } catch (error) {
      if (!(error instanceof DependencyError) || attempt >= COUNTER_ATTEMPTS) throw error;
      await ctx.sleep(ctx.pollMs * 2 ** attempt);
    }
  }
}

/** Claims a flush of every journal committed after DONE (conditional on the head's version). */
export async function claimFlush(ctx: LedgerContext, view: LedgerView): Promise<FlushClaim | undefined> {
  const { head, done } = view;
  const fl: FlushClaim = { frm: done, to: head.seq, at: nowMs(ctx), owner: ctx.owner };
  const next = { ...head, ver: head.ver + 1, fl, pend: prunePend(head.pend, done) };
  return (await ctx.store.commitHead(head.ver, next)) ? fl : undefined;
}

/**
 * Takes over a flush whose claim is older than the lease (its owner crashed or stalled): renews the
 * claim, then runs the same range, so flush ranges stay contiguous and disjoint.
 */
export async function takeOver(ctx: LedgerContext, view: LedgerView): Promise<FlushReport | undefined> {
  const { head } = view;
  if (!head.fl) return undefined;
  const fl: FlushClaim = { ...head.fl, at: nowMs(ctx), owner: ctx.owner };
  if (!(await ctx.store.commitHead(head.ver, { ...head, ver: head.ver + 1, fl }))) return undefined;
  return runFlush(ctx, fl.frm, fl.to);
}

/**
 * How long a group flush waits for a flush in progress before leaving its journals to the next
 * commit (or the backstop). A live flush ends in well under a second; a dead owner's claim holds for
 * the lease (10 s), which must not hold this invocation, its batch and its share of the event
 * source's concurrency too: commits go on meanwhile, and the first one past the lease takes the
 * flush over.
 */
const BUSY_WAIT_MS = 1_000;

/**
 * The group flush: until journal `j` is applied, wait for the flush in progress (taking it over
 * past its lease), then claim one that covers every journal committed so far and run it. Gives up
 * after BUSY_WAIT_MS of waiting: the next commit or the backstop flushes what is left.
 */
export async function flushThrough(ctx: LedgerContext, j: number): Promise<FlushReport> {
  const report = emptyReport();
  const deadline = nowMs(ctx) + BUSY_WAIT_MS;
  let waits = 0;
  for (let round = 0; round < 1_000; round++) {
    const view = await readView(ctx);
    if (view.done >= j) break;
    if (flushBusy(view)) {
      if (leaseExpired(ctx, view)) addReport(report, await takeOver(ctx, view));
      else if (nowMs(ctx) >= deadline) break;
      // pollMs, doubling up to 8 × pollMs: a flush usually ends within the first polls.
      else await ctx.sleep(ctx.pollMs * 2 ** Math.min(3, waits++));
      continue;
    }
    const claim = await claimFlush(ctx, view);
    if (claim) addReport(report, await runFlush(ctx, claim.frm, claim.to));
  }
  return report;
}

/**
 * The scheduled backstop: flushes whatever is committed and not yet applied, so journals do not
 * wait for traffic; takes over a stalled flush first. A flush still within its lease is left to
 * its owner (the next run of the schedule comes back to it).
 */
export async function backstopFlush(ctx: LedgerContext): Promise<FlushReport> {
  const report = emptyReport();
  for (let round = 0; round < 4; round++) {
    const view = await readView(ctx);
    if (flushBusy(view)) {
      if (!leaseExpired(ctx, view)) break;
      addReport(report, await takeOver(ctx, view));
      continue;
    }
    if (view.head.seq <= view.done) break;
    const claim = await claimFlush(ctx, view);
    if (claim) addReport(report, await runFlush(ctx, claim.frm, claim.to));
  }
  return report;
}
