import type { Logger } from '@aws-lambda-powertools/logger';
import { DEFAULT_REFUSALS_FLUSH_MS } from '../../contracts/config';
import { hourStartOf, type RefusalCount, type RefusalReason } from '../usage/refusals';

/** Where the gate reports a plan's refusal of a valid key (GateDeps.refusals). */
export interface RefusalSink {
  refused(
    caller: { readonly accountId: string; readonly keyId: string },
    reason: RefusalReason,
    atMs: number,
  ): void;
}

/** Writes a summary; answers what it could not write (RefusalRecorder.record). */
export type RefusalWriter = (
  counts: readonly RefusalCount[],
) => Promise<{ unwritten: readonly RefusalCount[]; errors: readonly unknown[] }>;

/** Distinct (account, key, hour, reason) counts a container holds at most: a few hundred kB. */
export const DEFAULT_MAX_REFUSAL_ENTRIES = 5000;

export interface RefusalTallyOptions {
  readonly write: RefusalWriter;
  /** How long a refusal waits before its summary is written. @default DEFAULT_REFUSALS_FLUSH_MS */
  readonly flushIntervalMs?: number;
  /**
   * Distinct counts held, pending and kept from failed flushes alike; a refusal that would add one
   * more is dropped (and counted in `dropped`): a long DynamoDB outage, or refusals of very many
   * keys at once, must not grow the container without bound. @default DEFAULT_MAX_REFUSAL_ENTRIES
   */
  readonly maxEntries?: number;
  readonly logger?: Pick<Logger, 'warn'>;
}

/**
 * This container's refusals (429 rate_limited / quota_exceeded, 403 account_suspended), counted per
 * (account, key, UTC hour, reason) in memory and written as one summary per flush interval: a
 * refusal costs no write of its own, and a client hammering a 429 costs one update per key and
 * interval, not one per request.
 *
 * The flush runs on a timer armed by the first refusal after a flush and `unref()`ed, so it never
 * keeps a process alive (nor a test run). A flush that fails keeps its counts for the next one (up
 * to `maxEntries`). What a crash loses: the refusals of the last interval (and any kept from failed
 * flushes), never billed usage, which goes through the usage transport and is counted by metering.
 * On Lambda a frozen container's timer fires when it is next invoked; one that is never invoked
 * again takes its last interval's refusals with it.
 */
export class RefusalTally implements RefusalSink {
  readonly #write: RefusalWriter;
  readonly #intervalMs: number;
  readonly #maxEntries: number;
  readonly #logger: Pick<Logger, 'warn'> | undefined;
  readonly #pending = new Map<string, RefusalCount>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #flushing: Promise<void> | undefined;
  #dropped = 0;
  #stopped = false;

  constructor(options: RefusalTallyOptions) {
    const intervalMs = options.flushIntervalMs ?? DEFAULT_REFUSALS_FLUSH_MS;
    if (!Number.isFinite(intervalMs) || intervalMs < 1) {
      throw new RangeError(`flushIntervalMs must be a finite number ≥ 1, not ${intervalMs}`);
    }
    this.#write = options.write;
    this.#intervalMs = intervalMs;
    this.#maxEntries = options.maxEntries ?? DEFAULT_MAX_REFUSAL_ENTRIES;
    this.#logger = options.logger;
  }

  refused(
    caller: { readonly accountId: string; readonly keyId: string },
    reason: RefusalReason,
    atMs: number,
  ): void {
    const hourStart = hourStartOf(atMs);
    this.#add({ accountId: caller.accountId, keyId: caller.keyId, hourStart, reason, count: 1 });
    this.#arm();
  }

  /** Counts not written yet (pending and kept from failed flushes), summed. */
  get pending(): number {
    let sum = 0;
    for (const entry of this.#pending.values()) sum += entry.count;
    return sum;
  }

  /** Refusals dropped because `maxEntries` distinct counts were already held. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Writes everything held now (waits for a flush already running first). Never throws: what could
   * not be written is kept for the next flush.
   */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.#pending.size === 0) return;
    this.#flushing = this.#flushOnce().finally(() => {
      this.#flushing = undefined;
    });
    await this.#flushing;
  }

  /** No more timed flushes (what is held stays, for a last `flush()`). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #flushOnce(): Promise<void> {
    const counts = [...this.#pending.values()];
    this.#pending.clear();
    let unwritten: readonly RefusalCount[];
    let errors: readonly unknown[];
    try {
      ({ unwritten, errors } = await this.#write(counts));
    } catch (error) {
      ({ unwritten, errors } = { unwritten: counts, errors: [error] });
    }
    for (const count of unwritten) this.#add(count);
    if (errors.length > 0 || this.#dropped > 0) {
      this.#logger?.warn('refusal summary not written in full; kept for the next flush', {
        error: errors[0],
        failedWrites: errors.length,
        kept: unwritten.length,
        droppedSinceStart: this.#dropped,
      });
    }
    if (this.#pending.size > 0) this.#arm();
  }

  #add(count: RefusalCount): void {
    const id = `${count.accountId}\n${count.keyId}\n${count.hourStart}\n${count.reason}`;
    const held = this.#pending.get(id);
    if (held) {
      this.#pending.set(id, { ...held, count: held.count + count.count });
    } else if (this.#pending.size < this.#maxEntries) {
      this.#pending.set(id, count);
    } else {
      this.#dropped += count.count;
    }
  }

  #arm(): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.#intervalMs);
    this.#timer.unref?.();
  }
}
