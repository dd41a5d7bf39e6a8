import { randomBytes } from 'node:crypto';
import { type Clock, systemClock } from '../../platform/clock';
import { ConflictError, DependencyError } from '../../platform/errors';
import { journalBytes, journalDeltas } from '../../usage/ledger-deltas';
import type { LedgerStore } from '../../usage/ledger-port';
import { commitChunk } from './commit';
import {
  claimedThrough,
  type LedgerContext,
  type LedgerEvent,
  type LedgerTimers,
  type LedgerView,
  nowMs,
  readView,
  unclaimedJournals,
} from './context';
import { addReport, backstopFlush, emptyReport, type FlushReport, flushThrough, runFlush } from './flush';
import { FLUSH_PROFILES, type FlushPolicy, type FlushProfile, flushDue } from './policy';

export type { LedgerEvent, LedgerTimers } from './context';
export { FLUSH_PROFILES, type FlushPolicy, type FlushProfile } from './policy';

export interface LedgerOptions {
  store: LedgerStore;
  /** @default systemClock */
  clock?: Clock;
  /** A profile's name or a policy of its own. @default 'balanced' */
  policy?: FlushProfile | FlushPolicy;
  /** `lateMs` is the consumer's late window; the others default to the design note's. */
  timers: Partial<LedgerTimers> & Pick<LedgerTimers, 'lateMs'>;
  /** How long a producer item outlives its month (ledger-deltas.ts). */
  producerTtlMs: number;
  /** @default 128 random bits, base64url (journal ids, flush owners); `journal`: the number a journal id is drawn for */
  newId?: (journal?: number) => string;
  /** A batch whose journal would be larger is committed in several chunks. @default 300_000 */
  maxJournalBytes?: number;
  /** @default 25 */
  maxArchivesPerCommit?: number;
  /** Commits lost to concurrent ones before the batch is given back for redelivery. @default 20 */
  maxCommitAttempts?: number;
  /**
   * A commit whose journals are not yet due waits until they are and flushes them, unless a later
   * commit came meanwhile (tailFlush): usage reaches the counters within the policy's delay even
   * when traffic stops. Off, the tail waits for the next batch or the backstop. @default true
   */
  tailFlush?: boolean;
  /**
   * Instead of waiting in the invocation for its tail to fall due, the first commit of journals no
   * flush has claimed asks for a `flushPending()` call `delayMs` from now (the SQS consumer sends
   * itself a delayed message, compose.ts) and returns at once: the event source's pollers stay free
   * for the next batches, which group into the same flush. If the call throws, the commit waits as
   * without it. @default none: the commit waits (tailFlush)
   */
  scheduleTail?: (delayMs: number, journal: number) => Promise<void>;
  /** How often a group flush polls the flush it waits for. @default 25 */
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /**
   * TEST ONLY, breaks exactness: claim a flush even while one is incomplete. It exists so the
   * model test (test/unit/ledger-model.test.ts) can show that the busy check is needed.
   */
  unsafe?: { claimFlushWhileBusy?: boolean };
}

/**
 * What became of a batch's records. `committed` and `duplicates` may be acknowledged (deleted);
 * `failed` must be redelivered (reported as batchItemFailures): their commit did not land because
 * the store was unavailable or the head kept changing. Any other error is thrown, and then the
 * whole batch is to be redelivered (its committed part comes back as duplicates).
 */
export interface LedgerBatchResult {
  /** Records whose events this invocation claimed and journaled. */
  committed: string[];
  /** Records whose events were claimed already (earlier deliveries, copies, repeats in the batch). */
  duplicates: string[];
  failed: string[];
  /** Events in the journals of the flushes this invocation completed. */
  counted: number;
  /** Accounts with a counter those flushes moved (quota alerts). */
  accounts: string[];
  /** The number of the last journal this batch committed (absent: none). */
  journal?: number;
  /** The counters hold every journal through this one: what this invocation's flushes completed. */
  flushedThrough?: number;
  /** Why a commit failed (then `failed` is not empty), or a flush stopped: the store was unavailable. */
  error?: unknown;
}

/** What a flush outside a batch's commit (the backstop, a scheduled tail) did. */
export type LedgerFlushResult = Pick<LedgerBatchResult, 'counted' | 'accounts' | 'error' | 'flushedThrough'>;

const reportFields = (report: FlushReport) => ({
  counted: report.events,
  accounts: [...report.accounts],
  ...(report.through > 0 ? { flushedThrough: report.through } : {}),
});

const DEFAULT_TIMERS = { leaseMs: 10_000, archiveIdleMs: 10 * 60_000, reorderHorizonMs: 20 * 60_000 };

/** Errors that mean "not now": the batch (or the flush) is retried later, nothing is lost. */
const unavailable = (error: unknown) => error instanceof DependencyError || error instanceof ConflictError;

/**
 * The SQS ledger's consumer side (docs/metering.md, "The SQS ledger"): claims batches of sequenced
 * events with one conditional head write each, and applies committed journals to the counters in
 * flushes. Pure protocol over a LedgerStore; one instance per container, reused across invocations.
 */
export class Ledger {
  readonly #base: Omit<LedgerContext, 'owner'>;
  readonly #tailFlush: boolean;
  readonly #scheduleTail: LedgerOptions['scheduleTail'];

  constructor(options: LedgerOptions) {
    const policy =
      typeof options.policy === 'object' ? options.policy : FLUSH_PROFILES[options.policy ?? 'balanced'];
    this.#tailFlush = options.tailFlush ?? true;
    this.#scheduleTail = options.scheduleTail;
    this.#base = {
      store: options.store,
      clock: options.clock ?? systemClock,
      // 128 random bits in 22 characters: an id is in every pending entry of the head, whose size is
      // what every commit pays (a UUID's 36 would be 14 bytes more per journal pending).
      newId: options.newId ?? (() => randomBytes(16).toString('base64url')),
      policy,
      timers: { ...DEFAULT_TIMERS, ...options.timers },
      producerTtlMs: options.producerTtlMs,
      maxJournalBytes: options.maxJournalBytes ?? 300_000,
      maxArchivesPerCommit: options.maxArchivesPerCommit ?? 25,
      maxCommitAttempts: options.maxCommitAttempts ?? 20,
      pollMs: options.pollMs ?? 25,
      sleep: options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
      unsafe: { claimFlushWhileBusy: options.unsafe?.claimFlushWhileBusy ?? false },
    };
  }

  /**
   * Claims a batch (§5.3): repeats within it and pairs claimed before are duplicates, the rest is
   * committed in one or more chunks (a journal stays under maxJournalBytes), then flushed as the
   * policy says. A chunk that cannot commit fails with every chunk after it.
   *
   * The events must have passed the consumer's validation, the age check (`too_old`) first: a gap
   * in a producer's seqs is forgotten once past the late window, and only that check keeps a late
   * copy of a seq in it from being counted then.
   */
  async commit(events: readonly LedgerEvent[]): Promise<LedgerBatchResult> {
    const ctx = this.#context();
    const result: LedgerBatchResult = { committed: [], duplicates: [], failed: [], counted: 0, accounts: [] };
    const records = recordsByPair(events);
    const report = emptyReport();
    let last: { journal: number; view: LedgerView; flushed: boolean } | undefined;
    let first: number | undefined;
    let failing = false;
    for (const chunk of splitChunks(
      ctx,
      [...records.values()].map((r) => r.event),
    )) {
      const ids = (list: readonly LedgerEvent[]) => list.flatMap((e) => records.get(pairOf(e))?.ids ?? []);
      if (failing) {
        result.failed.push(...ids(chunk));
        continue;
      }
      try {
        const outcome = await commitChunk(ctx, chunk);
        addReport(report, outcome.takenOver);
        for (const event of outcome.committed) {
          const [first = event.recordId, ...repeats] = records.get(pairOf(event))?.ids ?? [];
          result.committed.push(first);
          result.duplicates.push(...repeats);
        }
        result.duplicates.push(...ids(outcome.duplicates));
        if (outcome.journal !== undefined && outcome.view) {
          first ??= outcome.journal;
          last = { journal: outcome.journal, view: outcome.view, flushed: outcome.flush !== undefined };
        }
        const claimed = outcome.flush;
        if (claimed) await this.#flushing(result, report, () => runFlush(ctx, claimed.frm, claimed.to));
      } catch (error) {
        if (!unavailable(error)) throw error;
        failing = true;
        result.error = error;
        result.failed.push(...ids(chunk));
      }
    }
    if (last && !last.flushed) {
      const through = last.journal;
      const pending = unclaimedJournals(ctx, last.view);
      if (flushDue(ctx.policy, pending, ctx.clock.now().getTime())) {
        await this.#flushing(result, report, () => flushThrough(ctx, through));
      } else if (this.#tailFlush && ctx.policy.maxDelayMs <= TAIL_WAIT_MAX_MS) {
        const schedule = this.#scheduleTail;
        // One scheduled tail per run of unclaimed journals: the first one's committer asks for it,
        // and it flushes them all (a later commit that finds them due flushes them sooner).
        const runStart = first ?? through;
        if (!schedule) {
          await this.#flushing(result, report, () => tailFlush(ctx, through, pending));
        } else if (runStart <= claimedThrough(last.view) + 1) {
          const scheduled = await schedule(tailCheckIn(ctx, pending), runStart).then(
            () => true,
            () => false,
          );
          // Could not schedule it: wait here instead, and flush everything pending then.
          if (!scheduled) {
            await this.#flushing(result, report, async () => {
              const wait = dueIn(ctx, pending);
              if (wait > 0) await ctx.sleep(wait);
              return flushPendingNow(ctx);
            });
          }
        }
      }
    }
    return {
      ...result,
      ...(last ? { journal: last.journal } : {}),
      ...reportFields(report),
    };
  }

  /**
   * The scheduled tail (scheduleTail's call, for `journal`, the first of a run of unclaimed
   * journals): flushes every journal committed and not yet applied once they are due or traffic has
   * gone quiet (no batch committed for TAIL_QUIET_MS), waiting a second for a flush in progress
   * first; one that stays busy (its owner died within the lease) leaves them to the next commit or
   * the backstop. Otherwise it asks to be called again when one of the two will be true. Nothing if
   * `journal` is in a flush already: every claim covers each journal committed before it, and a
   * journal committed after a claim is the first of a new run, whose committer asked for its own.
   */
  async flushPending(journal?: number): Promise<LedgerFlushResult> {
    return this.#flushOutside(async (ctx) => {
      const view = await readView(ctx);
      const claimed = claimedThrough(view);
      if (view.head.seq <= claimed) return undefined;
      if (journal !== undefined && journal <= claimed) return undefined;
      const wait = tailCheckIn(ctx, unclaimedJournals(ctx, view));
      if (journal === undefined || wait === 0) return flushPendingNow(ctx);
      // If asking fails, the next commit or the backstop flushes them.
      await this.#scheduleTail?.(wait, journal).catch(() => undefined);
      return undefined;
    });
  }

  /**
   * The scheduled backstop: with no batch, flushes the journals committed and not yet applied (and
   * takes over a flush stalled past its lease), so counters catch up when traffic stops.
   */
  async backstop(): Promise<LedgerFlushResult> {
    return this.#flushOutside(backstopFlush);
  }

  /** A flush with no batch of its own (the backstop, a scheduled tail), in a context of its own. */
  async #flushOutside(
    flush: (ctx: LedgerContext) => Promise<FlushReport | undefined>,
  ): Promise<LedgerFlushResult> {
    const result: LedgerBatchResult = { committed: [], duplicates: [], failed: [], counted: 0, accounts: [] };
    const report = emptyReport();
    const ctx = this.#context();
    await this.#flushing(result, report, () => flush(ctx));
    return { ...reportFields(report), ...(result.error ? { error: result.error } : {}) };
  }

  #context(): LedgerContext {
    return { ...this.#base, owner: this.#base.newId() };
  }

  /** A flush that stops on unavailability is left for a takeover: the commits it follows stand. */
  async #flushing(
    result: LedgerBatchResult,
    report: FlushReport,
    flush: () => Promise<FlushReport | undefined>,
  ): Promise<void> {
    try {
      addReport(report, await flush());
    } catch (error) {
      if (!unavailable(error)) throw error;
      result.error ??= error;
    }
  }
}

/**
 * The longest a commit waits for its journals to fall due (tailFlush): the balanced profile's 5 s
 * fits any invocation's timeout; economy's 30 s does not, and leaves its tail to the backstop.
 */
const TAIL_WAIT_MAX_MS = 5_000;
/**
 * The tail of a burst: journals committed but not yet due would wait for the next batch, and when
 * traffic stops there is none (only the backstop, a minute later). So the commit that is not due
 * waits until its pending journals are, then flushes them — unless a later commit came meanwhile:
 * that one is the tail now and does the same. What a crash in the wait leaves is the backstop's.
 */
async function tailFlush(
  ctx: LedgerContext,
  through: number,
  pending: readonly { at: number }[],
): Promise<FlushReport | undefined> {
  const wait = dueIn(ctx, pending);
  if (wait > 0) await ctx.sleep(wait);
  const view = await readView(ctx);
  if (view.done >= through || view.head.seq > through) return undefined;
  return flushThrough(ctx, through);
}

/**
 * A run of unclaimed journals whose newest batch's oldest event is this old has seen no commit for
 * longer than a batch takes to gather (the 1 s batching window) and commit, with margin: traffic
 * has stopped, and waiting out the rest of the delay would only add to its tail's lag.
 */
export const TAIL_QUIET_MS = 2_500;

/** When a scheduled tail should look again: once the journals are due, or traffic went quiet (0: now). */
function tailCheckIn(ctx: LedgerContext, pending: readonly { at: number }[]): number {
  const newest = Math.max(...pending.map((p) => p.at));
  return Math.min(dueIn(ctx, pending), Math.max(0, newest + TAIL_QUIET_MS - nowMs(ctx)));
}

/** How long until pending journals fall due by the policy's delay (0: due now). */
function dueIn(ctx: LedgerContext, pending: readonly { at: number }[]): number {
  const oldest = Math.min(...pending.map((p) => p.at));
  const wait = Math.min(ctx.policy.maxDelayMs, oldest + ctx.policy.maxDelayMs - ctx.clock.now().getTime());
  return Math.max(0, wait);
}

/** Flushes through the head's last journal, if any is pending. */
async function flushPendingNow(ctx: LedgerContext): Promise<FlushReport | undefined> {
  const view = await readView(ctx);
  if (view.head.seq <= view.done) return undefined;
  return flushThrough(ctx, view.head.seq);
}

const pairOf = (e: LedgerEvent) => `${e.pid} ${e.seq}`;

/** Each distinct (pid, seq) of a batch with the records that carry it (the first one's event counts). */
function recordsByPair(events: readonly LedgerEvent[]) {
  const byPair = new Map<string, { event: LedgerEvent; ids: string[] }>();
  for (const event of events) {
    const pair = pairOf(event);
    const known = byPair.get(pair);
    if (known) known.ids.push(event.recordId);
    else byPair.set(pair, { event, ids: [event.recordId] });
  }
  return byPair;
}

/** Halves a batch until each part's journal fits maxJournalBytes (DynamoDB items stop at 400 KB). */
function splitChunks(ctx: LedgerContext, events: readonly LedgerEvent[]): LedgerEvent[][] {
  if (events.length <= 1 || journalBytes(journalDeltas(events, ctx.producerTtlMs)) <= ctx.maxJournalBytes) {
    return events.length === 0 ? [] : [[...events]];
  }
  const half = Math.ceil(events.length / 2);
  return [...splitChunks(ctx, events.slice(0, half)), ...splitChunks(ctx, events.slice(half))];
}
