import { hashApiKey, isWellFormedApiKey } from '../accounts/api-key';
import { effectiveStatus } from '../accounts/records';
import type { Clock } from '../platform/clock';
import type { GuessThrottle, GuessTicket } from './guess-throttle';
import type { CacheOutcome, KeyCache } from './key-cache';

/** Every way a key check ends. Refusals are values, not errors: they are the normal business. */
export type KeyCheck =
  | { outcome: 'accepted'; keyId: string; accountId: string; cache: CacheOutcome['source'] }
  | { outcome: 'malformed' }
  /** The key would need a read and its client's guess budget is spent: no read was made. */
  | { outcome: 'throttled'; retryAfterSeconds: number }
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
 * miss, one index read — taken from the client's guess budget when the key is not known to exist,
 * and given back when it was found (guess-throttle.ts).
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

  /**
   * @param options.guesses the budgets a lookup of an unknown key is taken from (none: not throttled)
   * @param options.client the calling client's budget key, asked only for such a lookup
   * @throws DependencyError when the key is not cached usably and DynamoDB cannot answer.
   */
  async verify(
    key: string,
    options: { guesses?: GuessThrottle; client?: () => string | undefined } = {},
  ): Promise<KeyCheck> {
    if (!isWellFormedApiKey(key, this.#prefix)) return { outcome: 'malformed' };
    const keyHash = hashApiKey(key);
    let ticket: GuessTicket | undefined;
    if (options.guesses && options.client && this.#cache.wouldLookUpUnknown(keyHash)) {
      const client = options.client();
      const taken = client === undefined ? undefined : options.guesses.budgetOf(client)?.take();
      if (taken && !taken.taken) return { outcome: 'throttled', retryAfterSeconds: taken.retryAfterSeconds };
      if (taken?.taken) ticket = taken;
    }
    const { lookup, source } = await this.#cache.get(keyHash);
    if (!lookup.found) return { outcome: 'unknown', cache: source };
    // A real key: its lookup was no guess.
    ticket?.refund();
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
