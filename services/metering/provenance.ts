import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { LRUCache } from 'lru-cache';
import { claimId, type KeyClaim, KeyClaims } from '../accounts/key-claims';
import { legacyFirstKeyId } from '../accounts/records';

/**
 * What the keys table says about a claim:
 *  - valid: the account holds a key by that id (whatever its status: a key revoked after the gate
 *    accepted a request still owns that request's event).
 *  - account_mismatch: no such key in that account, and the key id is known to belong to another
 *    account (a key this container has seen, or another account's first key).
 *  - unknown_key: no such key in that account, and nothing says whose it is.
 */
export type ProvenanceVerdict = 'valid' | 'unknown_key' | 'account_mismatch';

/** Checks the claims of a batch's events; throws a DependencyError when DynamoDB cannot answer. */
export interface ProvenanceCheck {
  verify(claims: readonly KeyClaim[]): Promise<Map<string, ProvenanceVerdict>>;
}

export interface KeyProvenanceOptions {
  client: DynamoDBDocumentClient;
  keysTable: string;
  /**
   * How long a key found in its account is trusted without a read. A key's account never changes
   * and keys are never deleted, so this only bounds memory churn. @default 1 hour
   */
  positiveTtlMs?: number;
  /**
   * How long "no such key in this account" is believed. Short, though the answer comes from a
   * strongly consistent read: a redrive of forged records costs a read per distinct claim per
   * window, never per record. @default 10 s
   */
  negativeTtlMs?: number;
  /** Claims remembered per container (each a few hundred bytes). @default 100,000 */
  maxEntries?: number;
  /** Called once per BatchGetItem request sent (the read cost, for metrics and tests). */
  onRead?: (keys: number, consistent: boolean) => void;
}

/**
 * key → account against metering's own read of the keys table: the primary key is (accountId,
 * keyId), so one BatchGetItem of a batch's distinct uncached claims answers "does this account hold
 * this key" exactly, 0.5 read units a claim (eventually consistent, projected to the key attributes).
 *
 * Misses are read again, strongly consistent, before they are believed: an eventually consistent
 * read can miss a key written a moment ago, and a key created just before its first event is the
 * normal case for a new customer. The gate only accepts a key it found through the KeyLookup index,
 * which is itself updated after the table write is acknowledged, so a consistent read made after
 * the event exists always sees the key. Misses are rare (forgeries, brand new keys), so the second
 * read costs nothing in steady state.
 */
export class KeyProvenance implements ProvenanceCheck {
  readonly #claimsTable: KeyClaims;
  readonly #positiveTtlMs: number;
  readonly #negativeTtlMs: number;
  /** claimId → does the account hold the key. */
  readonly #claims: LRUCache<string, boolean>;
  /** keyId → its account, from every key found: what names a mismatch. */
  readonly #owners: LRUCache<string, string>;

  constructor(options: KeyProvenanceOptions) {
    this.#positiveTtlMs = options.positiveTtlMs ?? 3600_000;
    this.#negativeTtlMs = options.negativeTtlMs ?? 10_000;
    this.#claimsTable = new KeyClaims({
      client: options.client,
      keysTable: options.keysTable,
      ...(options.onRead ? { onRead: options.onRead } : {}),
    });
    const max = options.maxEntries ?? 100_000;
    this.#claims = new LRUCache({ max, ttl: this.#positiveTtlMs });
    this.#owners = new LRUCache({ max, ttl: this.#positiveTtlMs });
  }

  async verify(claims: readonly KeyClaim[]): Promise<Map<string, ProvenanceVerdict>> {
    const distinct = new Map<string, KeyClaim>();
    for (const claim of claims) distinct.set(claimId(claim), claim);
    const held = new Map<string, boolean>();
    const unknown: KeyClaim[] = [];
    for (const [id, claim] of distinct) {
      const cached = this.#claims.get(id);
      if (cached === undefined) unknown.push(claim);
      else held.set(id, cached);
    }
    if (unknown.length > 0) {
      const found = await this.#claimsTable.held(unknown, false);
      const missed = unknown.filter((claim) => !found.has(claimId(claim)));
      const foundLate = missed.length > 0 ? await this.#claimsTable.held(missed, true) : new Set<string>();
      for (const claim of unknown) {
        const id = claimId(claim);
        const yes = found.has(id) || foundLate.has(id);
        held.set(id, yes);
        this.#claims.set(id, yes, { ttl: yes ? this.#positiveTtlMs : this.#negativeTtlMs });
        if (yes) this.#owners.set(claim.keyId, claim.accountId);
      }
    }
    const verdicts = new Map<string, ProvenanceVerdict>();
    for (const [id, claim] of distinct) {
      verdicts.set(id, held.get(id) ? 'valid' : this.#whyNot(claim));
    }
    return verdicts;
  }

  /** A claim the keys table refused: is the key known to be another account's? */
  #whyNot(claim: KeyClaim): ProvenanceVerdict {
    const owner = this.#owners.get(claim.keyId);
    if (owner !== undefined && owner !== claim.accountId) return 'account_mismatch';
    // First keys of accounts provisioned before issue 21 are named after their account
    // (legacyFirstKeyId): another account's is recognisable.
    if (claim.keyId.startsWith(FIRST_KEY_PREFIX) && claim.keyId !== legacyFirstKeyId(claim.accountId)) {
      return 'account_mismatch';
    }
    return 'unknown_key';
  }
}

const FIRST_KEY_PREFIX = legacyFirstKeyId('');
