import { LRUCache } from 'lru-cache';
import { DEFAULT_KEY_CACHE_WINDOWS } from '../../contracts/config';
import type { KeyLookupRecord } from '../accounts/records';
import { DependencyError } from '../platform/errors';

export interface KeyCacheWindows {
  /** A cached answer younger than this is used without reading DynamoDB. */
  freshMs: number;
  /**
   * When a refresh fails (DynamoDB down or throttled), a known key's answer may still be used until
   * it is this much older than its fresh window. Keeps paying clients served through a short outage.
   */
  staleMs: number;
  /** How long "no such key" is remembered, so guessed keys cost one read per window, not per request. */
  negativeMs: number;
  /**
   * Known keys kept; the least recently used go first. "No such key" answers are kept apart, in a
   * cache of their own of the same size, so a flood of forged keys can only evict other forgeries,
   * never a paying customer's entry (and with it its stale fallback).
   */
  maxEntries: number;
}

/** Defaults, documented in the README (contracts/config.ts). */
export const DEFAULT_WINDOWS: KeyCacheWindows = DEFAULT_KEY_CACHE_WINDOWS;

export type CachedLookup<R = KeyLookupRecord> = { found: true; record: R } | { found: false };

export interface CacheOutcome<R = KeyLookupRecord> {
  lookup: CachedLookup<R>;
  source: 'fresh' | 'loaded' | 'stale';
}

interface Entry<R> {
  lookup: CachedLookup<R>;
  loadedAt: number;
}

/**
 * Key-hash → lookup cache with named fresh, stale and negative windows. The gate keeps accounts'
 * terms (standing and plan) in one too (`KeyCache<AccountTerms>`, by account id), so a suspension
 * or a plan change takes effect within the same fresh window as a revocation.
 *
 * lru-cache's own `fetch` serves stale values while it revalidates in the background; that would
 * let a revoked key keep working for fresh + stale time. Here a stale entry is only used when the
 * reload itself fails, so revocation takes effect within the fresh window. lru-cache still bounds
 * the size; concurrent misses for one key share a single read.
 */
export class KeyCache<R = KeyLookupRecord> {
  readonly #entries: LRUCache<string, Entry<R>>;
  readonly #negatives: LRUCache<string, Entry<R>>;
  readonly #inFlight = new Map<string, Promise<CachedLookup<R>>>();
  readonly #windows: KeyCacheWindows;
  readonly #load: (keyHash: string) => Promise<CachedLookup<R>>;
  readonly #now: () => number;

  constructor(options: {
    // NoInfer: R is what the cache is declared with (KeyLookupRecord unless given), not guessed from load.
    load: (keyHash: string) => Promise<CachedLookup<NoInfer<R>>>;
    windows?: Partial<KeyCacheWindows>;
    now?: () => number;
  }) {
    this.#windows = { ...DEFAULT_WINDOWS, ...options.windows };
    this.#load = options.load;
    this.#now = options.now ?? Date.now;
    this.#entries = new LRUCache({ max: this.#windows.maxEntries });
    this.#negatives = new LRUCache({ max: this.#windows.maxEntries });
  }

  get windows(): Readonly<KeyCacheWindows> {
    return this.#windows;
  }

  /**
   * @param options.unavailable DynamoDB was just found unavailable (a read for the same request
   *   failed): a known entry within fresh + stale is used without trying a read that would fail too
   */
  async get(keyHash: string, options: { unavailable?: boolean } = {}): Promise<CacheOutcome<R>> {
    const entry = this.#entries.get(keyHash) ?? this.#negatives.get(keyHash);
    const now = this.#now();
    if (entry && now - entry.loadedAt < this.#ttl(entry)) return { lookup: entry.lookup, source: 'fresh' };
    if (
      options.unavailable &&
      entry?.lookup.found &&
      now - entry.loadedAt < this.#windows.freshMs + this.#windows.staleMs
    ) {
      return { lookup: entry.lookup, source: 'stale' };
    }
    try {
      return { lookup: await this.#reload(keyHash), source: 'loaded' };
    } catch (error) {
      // Only when DynamoDB cannot answer: a bug or a refused request must not keep a revoked key
      // working for the stale window.
      if (
        error instanceof DependencyError &&
        entry?.lookup.found &&
        now - entry.loadedAt < this.#windows.freshMs + this.#windows.staleMs
      ) {
        return { lookup: entry.lookup, source: 'stale' };
      }
      throw error;
    }
  }

  /**
   * Whether answering this key now would take a read of a key not known to exist: it has no fresh
   * answer, no entry as a known key (a known key's refresh is not a guess), and no read on its way
   * (which a request for it would share). What the guess throttle charges (guess-throttle.ts).
   */
  wouldLookUpUnknown(keyHash: string): boolean {
    if (this.#entries.has(keyHash) || this.#inFlight.has(keyHash)) return false;
    const negative = this.#negatives.peek(keyHash);
    return !negative || this.#now() - negative.loadedAt >= this.#windows.negativeMs;
  }

  /** Forgets one key, e.g. after this process saw it revoked. */
  delete(keyHash: string): void {
    this.#entries.delete(keyHash);
    this.#negatives.delete(keyHash);
  }

  #ttl(entry: Entry<R>): number {
    return entry.lookup.found ? this.#windows.freshMs : this.#windows.negativeMs;
  }

  #reload(keyHash: string): Promise<CachedLookup<R>> {
    const pending = this.#inFlight.get(keyHash);
    if (pending) return pending;
    // Age counts from when the read was sent: the answer is no newer than that.
    const sentAt = this.#now();
    const load = this.#load(keyHash)
      .then((lookup) => {
        const entry = { lookup, loadedAt: sentAt };
        if (lookup.found) {
          this.#entries.set(keyHash, entry);
          this.#negatives.delete(keyHash);
        } else {
          this.#negatives.set(keyHash, entry);
          this.#entries.delete(keyHash);
        }
        return lookup;
      })
      .finally(() => this.#inFlight.delete(keyHash));
    this.#inFlight.set(keyHash, load);
    return load;
  }
}
