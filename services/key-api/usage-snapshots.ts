import { LRUCache } from 'lru-cache';
import { utcDay } from '../../contracts/usage-event';

export interface UsageSnapshot {
  /** The key's counted requests today (UTC), as of `asOf`. */
  today: number;
  asOf: string;
}

/**
 * The "usage so far" figure key-api adds to its answers. It is informative, not a quota check, so
 * it is read at most once per `maxAgeMs` per key and may lag behind by the pipeline; when the read
 * fails, the last figure (or none) is given rather than failing the request.
 */
export class UsageSnapshots {
  readonly #cache: LRUCache<string, UsageSnapshot>;
  readonly #read: (accountId: string, keyId: string, day: string) => Promise<number>;
  readonly #now: () => Date;

  constructor(options: {
    read: (accountId: string, keyId: string, day: string) => Promise<number>;
    now: () => Date;
    maxAgeMs?: number;
    maxEntries?: number;
  }) {
    this.#read = options.read;
    this.#now = options.now;
    this.#cache = new LRUCache({
      max: options.maxEntries ?? 50_000,
      ttl: options.maxAgeMs ?? 1000,
      // Keep expired figures: they are the fallback when a read fails.
      noDeleteOnStaleGet: true,
    });
  }

  /**
   * @param options.cachedOnly DynamoDB was already found unavailable for this request: the last
   *   figure (or none) without a read, whose timeout would only be added to the answer's
   */
  async get(
    accountId: string,
    keyId: string,
    options: { cachedOnly?: boolean } = {},
  ): Promise<UsageSnapshot | null> {
    const cached = this.#cache.get(keyId, { allowStale: false });
    if (cached) return cached;
    if (options.cachedOnly) return this.#cache.get(keyId, { allowStale: true }) ?? null;
    const now = this.#now();
    try {
      const snapshot = {
        today: await this.#read(accountId, keyId, utcDay(now.getTime())),
        asOf: now.toISOString(),
      };
      this.#cache.set(keyId, snapshot);
      return snapshot;
    } catch {
      return this.#cache.get(keyId, { allowStale: true }) ?? null;
    }
  }
}
