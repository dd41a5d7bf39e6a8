import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { LRUCache } from 'lru-cache';
import { accountPartition, type CounterKey } from './counter-keys';
import { type CounterDelta, type LedgerStore, pendJournalId } from './ledger-port';
import { DynamoLedgerStore, SQS_LEDGER_NAME } from './ledger-store';

/**
 * What the SQS ledger has committed and not yet flushed to the counters, added to what a usage
 * read finds in them (docs/metering.md, "Reads see commits, not flushes"). A commit is what makes
 * an event counted: once its journal is in the head, no copy of the event will ever be counted
 * again, and the flush that writes it to the counters only moves it. So a read that adds the
 * pending journals shows usage as soon as it is committed, and the flush policy is free to gather
 * several batches into one flush (fewer writes) without the owner's usage page lagging for it.
 *
 * Exact, never ahead: a counter that took journal j carries the ledger's watermark ≥ j (a flush
 * of (frm, to] sets it to `to`, and flush ranges are contiguous, disjoint and run in order), so a
 * journal's delta is added to a counter only while its watermark is below j. The head and the
 * journals are read before the counters: a flush that lands in between raises the watermark the
 * counter read then sees, and the delta is not added twice; a commit that lands in between is
 * simply not seen yet. A delta wider than one update (services/usage/ledger-store.ts chunksOf) is
 * judged by its first chunk's watermark, which its flush writes first: while the flush writes the
 * other chunks, the attributes they hold read low for that moment — late, never twice.
 */

/** One ledger whose pending journals a read adds: its store, and its watermark on the counters. */
export interface PendingSource {
  readonly store: Pick<LedgerStore, 'readHead' | 'getJournals'>;
  readonly watermark: string;
}

interface PendingDelta {
  journal: number;
  watermark: string;
  delta: CounterDelta;
}

/** A journal's deltas by counter partition (an account's counters share one). */
type JournalByPartition = Map<string, CounterDelta[]>;

/**
 * Journals are immutable once written, so each is read once per container and kept: a usage read
 * then costs the head alone. A balanced flush leaves a handful of journals pending at a time;
 * this holds far more than that.
 */
const CACHED_JOURNALS = 512;

export class PendingUsage {
  readonly #sources: readonly PendingSource[];
  readonly #journals = new LRUCache<string, JournalByPartition>({ max: CACHED_JOURNALS });

  constructor(sources: readonly PendingSource[]) {
    this.#sources = sources;
  }

  /** The watermark attributes a read of counters must project, so pending deltas are judged right. */
  get watermarks(): string[] {
    return this.#sources.map((s) => s.watermark);
  }

  /**
   * What is committed and not flushed in one account: read before the counters it is added to.
   * One strongly consistent read of each ledger's head, and a BatchGetItem of journals not read
   * before.
   */
  async read(accountId: string): Promise<AccountPending> {
    const partition = accountPartition(accountId);
    const perSource = await Promise.all(
      this.#sources.map(async (source) => {
        const head = await source.store.readHead();
        const named = Object.entries(head.pend).map(([j, entry]) => ({
          journal: Number(j),
          id: pendJournalId(entry),
        }));
        const missing = named.filter((n) => !this.#journals.has(n.id)).map((n) => n.id);
        if (missing.length > 0) {
          for (const [id, deltas] of await source.store.getJournals(missing)) {
            this.#journals.set(id, byPartition(deltas));
          }
        }
        const found: PendingDelta[] = [];
        for (const { journal, id } of named) {
          const deltas = this.#journals.get(id);
          // Written before the head that names it and kept for days (ledger-store.ts): a pending
          // journal that is gone is a broken ledger, which the flush would stop at too.
          if (!deltas) throw new Error(`ledger: pending journal ${id} (${journal}) is missing`);
          for (const delta of deltas.get(partition) ?? []) {
            found.push({ journal, watermark: source.watermark, delta });
          }
        }
        return found;
      }),
    );
    return new AccountPending(perSource.flat());
  }
}

/** One account's pending deltas, read at one moment; adds them to counter items read after it. */
export class AccountPending {
  readonly #bySortKey = new Map<string, PendingDelta[]>();

  constructor(deltas: readonly PendingDelta[]) {
    for (const pending of deltas) {
      const list = this.#bySortKey.get(pending.delta.counter.sk) ?? [];
      list.push(pending);
      this.#bySortKey.set(pending.delta.counter.sk, list);
    }
  }

  /**
   * `items` (one account's counters, read after this) with the pending deltas of every counter
   * `covers` names added: to the item read, or as an item of its own when the counter does not
   * exist yet (a key's first use of the day). Items without pending deltas are returned as read.
   */
  overlay(
    items: readonly Record<string, unknown>[],
    covers: (sk: string) => boolean,
  ): Record<string, unknown>[] {
    const out = [...items];
    const index = new Map(out.map((item, i) => [String(item.sk), i]));
    for (const [sk, list] of this.#bySortKey) {
      if (!covers(sk)) continue;
      const at = index.get(sk);
      const base =
        at === undefined ? { pk: list[0]?.delta.counter.pk, sk } : (out[at] as Record<string, unknown>);
      const merged = withPending(base, list);
      if (merged === base) continue;
      if (at === undefined) {
        index.set(sk, out.length);
        out.push(merged);
      } else out[at] = merged;
    }
    return out;
  }

  /** One counter item (undefined: not there) with its pending deltas added; undefined if neither. */
  overlayOne(
    counter: CounterKey,
    item: Record<string, unknown> | undefined,
  ): Record<string, unknown> | undefined {
    const list = this.#bySortKey.get(counter.sk);
    if (!list || list[0]?.delta.counter.pk !== counter.pk) return item;
    const base = item ?? { ...counter };
    const merged = withPending(base, list);
    return merged === base ? item : merged;
  }
}

/** `item` plus each delta whose journal its watermark has not reached; `item` itself if none. */
function withPending(item: Record<string, unknown>, list: readonly PendingDelta[]): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const { journal, watermark, delta } of list) {
    const taken = typeof item[watermark] === 'number' ? (item[watermark] as number) : 0;
    if (journal <= taken) continue;
    out ??= { ...item };
    for (const [name, amount] of Object.entries(delta.adds)) {
      const was = out[name];
      out[name] = (typeof was === 'number' ? was : 0) + amount;
    }
    for (const [name, value] of Object.entries(delta.sets)) {
      const was = out[name];
      // lastUsedAt (ISO) and expiresAt (epoch s) merge by maximum, as the flush merges them; the
      // other sets (keyId) are the same in every delta of a counter.
      if (
        was === undefined ||
        ((name === 'lastUsedAt' || name === 'expiresAt') && value > (was as string | number))
      )
        out[name] = value;
    }
  }
  return out ?? item;
}

function byPartition(deltas: readonly CounterDelta[]): JournalByPartition {
  const map: JournalByPartition = new Map();
  for (const delta of deltas) {
    const list = map.get(delta.counter.pk) ?? [];
    list.push(delta);
    map.set(delta.counter.pk, list);
  }
  return map;
}

/**
 * The SQS ledger's pending usage on the usage table. Read by user-api's usage figures whatever the
 * transport (the gate's quota checks read the counters alone, so a head read is not on every
 * request): on Kinesis the head does not exist, and a read of an absent item is half a read unit,
 * cheaper than a setting that must match the metering function's.
 */
export function sqsPendingUsage(options: { client: DynamoDBDocumentClient; table: string }): PendingUsage {
  const store = new DynamoLedgerStore({
    client: options.client,
    table: options.table,
    name: SQS_LEDGER_NAME,
    // This store is only read (the head, journals): it never archives a producer.
    archiveTtlMs: 0,
  });
  return new PendingUsage([{ store, watermark: store.watermarkAttribute }]);
}
