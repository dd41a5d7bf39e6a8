import { StripeApiError } from './errors';

/** "Keys are eligible to be removed from the system automatically after they're at least 24 hours old." */
const KEY_LIFETIME_MS = 24 * 3600 * 1000;

export interface SavedAnswer {
  readonly status: number;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

interface Entry {
  readonly fingerprint: string;
  readonly answer: SavedAnswer;
  readonly savedAt: number;
}

/**
 * Stripe's idempotent requests: the first answer to a key (success or failure once the operation
 * ran) is saved and replayed for the same key and the same parameters; the same key with other
 * parameters is refused with `idempotency_error`. Requests refused before the operation ran
 * (bad parameters, injected faults) save nothing.
 */
export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  /** The saved answer to replay, undefined to run the request, or throws on a reused key. */
  replay(key: string, fingerprint: string, nowMs: number): SavedAnswer | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined || nowMs - entry.savedAt >= KEY_LIFETIME_MS) return undefined;
    if (entry.fingerprint !== fingerprint) {
      throw new StripeApiError(400, {
        type: 'idempotency_error',
        message:
          `Keys for idempotent requests can only be used with the same parameters they were first used with. ` +
          `Try using a key other than '${key}' if you meant to execute a different request.`,
      });
    }
    return entry.answer;
  }

  save(key: string, fingerprint: string, answer: SavedAnswer, nowMs: number): void {
    this.entries.set(key, { fingerprint, answer, savedAt: nowMs });
  }
}
