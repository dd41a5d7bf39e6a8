import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { LRUCache } from 'lru-cache';
import { callDynamo } from '../shared/dynamodb';
import { DependencyError } from '../shared/errors';
import { legacyFirstKeyId } from '../shared/key-store';

/** The (key, account) pair an event names. */
export interface KeyClaim {
  readonly keyId: string;
  readonly accountId: string;
}

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

/** The map key of a claim in {@link ProvenanceCheck.verify}'s answer. */
export const claimId = (claim: KeyClaim): string => `${claim.accountId}\u0000${claim.keyId}`;

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

/** BatchGetItem takes at most 100 keys per request. */
const BATCH_GET_MAX = 100;
/** Rounds of UnprocessedKeys (throttling) before the check gives up as unavailable. */
const UNPROCESSED_ROUNDS = 4;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

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
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;
  readonly #positiveTtlMs: number;
  readonly #negativeTtlMs: number;
  readonly #onRead: ((keys: number, consistent: boolean) => void) | undefined;
  /** claimId → does the account hold the key. */
  readonly #claims: LRUCache<string, boolean>;
  /** keyId → its account, from every key found: what names a mismatch. */
  readonly #owners: LRUCache<string, string>;

  constructor(options: KeyProvenanceOptions) {
    this.#db = options.client;
    this.#table = options.keysTable;
    this.#positiveTtlMs = options.positiveTtlMs ?? 3600_000;
    this.#negativeTtlMs = options.negativeTtlMs ?? 10_000;
    this.#onRead = options.onRead;
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
      const found = await this.#read(unknown, false);
      const missed = unknown.filter((claim) => !found.has(claimId(claim)));
      const foundLate = missed.length > 0 ? await this.#read(missed, true) : new Set<string>();
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

  /** The claims the keys table holds, by claimId; DependencyError when it cannot say. */
  async #read(claims: readonly KeyClaim[], consistent: boolean): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < claims.length; i += BATCH_GET_MAX) {
      let keys: Record<string, unknown>[] | undefined = claims
        .slice(i, i + BATCH_GET_MAX)
        .map((c) => ({ accountId: c.accountId, keyId: c.keyId }));
      for (let round = 0; keys && keys.length > 0; round++) {
        if (round > UNPROCESSED_ROUNDS) {
          // Throttled through every round: the same as DynamoDB unavailable, never "not found".
          throw new DependencyError('DynamoDB', {
            cause: new Error(`${keys.length} keys left unprocessed by BatchGetItem`),
          });
        }
        if (round > 0) await sleep(25 * 2 ** round * (0.5 + Math.random() / 2));
        const request: Record<string, unknown>[] = keys;
        this.#onRead?.(request.length, consistent);
        const out: BatchGetCommandOutput = await callDynamo(() =>
          this.#db.send(
            new BatchGetCommand({
              RequestItems: {
                [this.#table]: {
                  Keys: request,
                  ProjectionExpression: 'accountId, keyId',
                  ConsistentRead: consistent,
                },
              },
            }),
          ),
        );
        for (const item of out.Responses?.[this.#table] ?? []) {
          found.add(claimId({ accountId: String(item.accountId), keyId: String(item.keyId) }));
        }
        keys = out.UnprocessedKeys?.[this.#table]?.Keys;
      }
    }
    return found;
  }
}

const FIRST_KEY_PREFIX = legacyFirstKeyId('');
