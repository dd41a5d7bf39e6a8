import { LRUCache } from 'lru-cache';
import { DEFAULT_GUESS_THROTTLE } from '../../contracts/config';

export interface GuessThrottleSettings {
  /**
   * Lookups of unknown keys one client may cost per window, per container. 0 turns the throttle
   * off (every lookup allowed), e.g. behind a proxy whose address every client shares.
   */
  budget: number;
  /** The window's length; it opens at the client's first charged lookup. */
  windowMs: number;
  /** Clients remembered; the least recently seen go first, so a flood of addresses cannot grow memory. */
  maxClients: number;
}

/** A lookup taken from a client's budget: given back when the key turned out to exist. */
export interface GuessTicket {
  readonly taken: true;
  refund(): void;
}

export type GuessTake = GuessTicket | { readonly taken: false; readonly retryAfterSeconds: number };

/** One client's budget: what the key check takes a lookup from (KeyVerifier). */
export interface GuessBudget {
  take(): GuessTake;
}

interface Window {
  start: number;
  used: number;
}

/**
 * Per client (source address, as clientKey in client-ip.ts reads it: a port is no new client, and
 * every address it cannot read shares one budget), per container: a bounded budget of key lookups that come back
 * "no such key". The checksum is public CRC-32, so checksum-valid forgeries cost an attacker
 * nothing, while each costs the gate a `KeyLookup` read; the negative cache only stops a key being
 * read twice in its window, not a million different keys being read once.
 *
 * What is charged: a lookup is taken from the budget when it is sent (so concurrent guesses cannot
 * overdraw it: at most `budget` reads of unknown keys per window, however many are in flight) and
 * given back when it found the key. So a customer's real keys never drain the budget, and only
 * what proved to be a guess counts; when the budget is spent, a key that would need a read is
 * refused (429 `too_many_guesses`) without one, while a key whose answer is cached (known, or
 * known not to exist) is answered as usual. The price: while its address is over budget, a
 * customer sharing it (a NAT) cannot get a key this container has not seen checked for the rest of
 * the window; its cached keys keep working. A failed read (DynamoDB unavailable) is not given back:
 * it was not shown to be a real key, and a flood must not be free while the table is throttled.
 *
 * A fixed window per client, opened by its first charged lookup, like the plans' rate limit
 * (limits.ts): at most `budget` per window, `2 × budget` across a window's edge.
 */
export class GuessThrottle {
  readonly #settings: GuessThrottleSettings;
  readonly #clients: LRUCache<string, Window>;
  readonly #now: () => number;

  constructor(settings: Partial<GuessThrottleSettings> = {}, now: () => number = Date.now) {
    this.#settings = { ...DEFAULT_GUESS_THROTTLE, ...settings };
    this.#clients = new LRUCache({ max: this.#settings.maxClients });
    this.#now = now;
  }

  get settings(): Readonly<GuessThrottleSettings> {
    return this.#settings;
  }

  /** The budget of the client at `client` (clientKey's form); none when the throttle is off. */
  budgetOf(client: string): GuessBudget | undefined {
    if (this.#settings.budget === 0) return undefined;
    return { take: () => this.#take(client) };
  }

  #take(client: string): GuessTake {
    const { budget, windowMs } = this.#settings;
    const now = this.#now();
    let window = this.#clients.get(client);
    if (!window || now - window.start >= windowMs) {
      window = { start: now, used: 0 };
      this.#clients.set(client, window);
    }
    if (window.used >= budget) {
      return {
        taken: false,
        retryAfterSeconds: Math.max(1, Math.ceil((window.start + windowMs - now) / 1000)),
      };
    }
    window.used++;
    const charged = window;
    return {
      taken: true,
      // Into the window it was taken from: once that has closed, there is nothing to give back.
      refund: () => {
        if (charged.used > 0) charged.used--;
      },
    };
  }
}
