import { hashApiKey, isWellFormedApiKey } from '../shared/api-key';
import type { Clock } from '../shared/clock';
import { effectiveStatus } from '../shared/key-store';
import type { CacheOutcome, KeyCache } from './key-cache';

/** Every way a key check ends. Refusals are values, not errors: they are the normal business. */
export type KeyCheck =
  | { outcome: 'accepted'; keyId: string; accountId: string; cache: CacheOutcome['source'] }
  | { outcome: 'malformed' }
  | { outcome: 'unknown'; cache: CacheOutcome['source'] }
  | { outcome: 'revoked'; cache: CacheOutcome['source'] }
  | { outcome: 'expired'; cache: CacheOutcome['source'] };

export interface KeyVerifierOptions {
  cache: KeyCache;
  keyPrefix: string;
  clock: Clock;
}

/**
 * Decides whether a presented key may pass. Cheap checks first: the checksum refuses typos and
 * guesses without hashing or reading anything; only a well-formed key costs a hash and, on a cache
 * miss, one index read.
 */
export class KeyVerifier {
  readonly #cache: KeyCache;
  readonly #prefix: string;
  readonly #clock: Clock;

  constructor(options: KeyVerifierOptions) {
    this.#cache = options.cache;
    this.#prefix = options.keyPrefix;
    this.#clock = options.clock;
  }

  /** @throws DependencyError when the key is not cached usably and DynamoDB cannot answer. */
  async verify(key: string): Promise<KeyCheck> {
    if (!isWellFormedApiKey(key, this.#prefix)) return { outcome: 'malformed' };
    const { lookup, source } = await this.#cache.get(hashApiKey(key));
    if (!lookup.found) return { outcome: 'unknown', cache: source };
    const status = effectiveStatus(lookup.record, this.#clock.now());
    switch (status) {
      case 'active':
      case 'expiring':
        return {
          outcome: 'accepted',
          keyId: lookup.record.keyId,
          accountId: lookup.record.accountId,
          cache: source,
        };
      case 'expired':
        return { outcome: 'expired', cache: source };
      case 'revoked':
        return { outcome: 'revoked', cache: source };
      case 'pending':
        // A pending key has no hash, so the index cannot return one; treat a surprise as unknown.
        return { outcome: 'unknown', cache: source };
    }
  }
}
