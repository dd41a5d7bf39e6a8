import {
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { KEY_LOOKUP_INDEX } from '../../contracts/resources';
import { generateApiKey, type NewApiKey } from './api-key';
import {
  CONFLICT_RETRY,
  type ConflictRetryPolicy,
  callDynamo,
  conflictBackoffMs,
  isConditionFailure,
  queryAll,
} from './dynamodb';
import { ConflictError } from './errors';

/**
 * Stored status of a key.
 *  - pending: provisioned at sign-up; its secret is minted the first time its owner reveals it,
 *    so no secret exists anywhere before it reaches its owner.
 *  - active: works.
 *  - expiring: rolled; works until `expiresAt` (the grace period), then counts as expired.
 *  - revoked: refused.
 */
export type StoredKeyStatus = 'pending' | 'active' | 'expiring' | 'revoked';
/** What owners and key-api see: an expiring key past its grace period is `expired`. */
export type KeyStatus = StoredKeyStatus | 'expired';

export interface KeyRecord {
  accountId: string;
  keyId: string;
  name: string;
  /** The first characters of the key, for display; absent until a pending key is revealed. */
  start?: string;
  keyHash?: string;
  status: StoredKeyStatus;
  createdAt: string;
  expiresAt?: string;
  revokedAt?: string;
  /** Set on a rolled key: the key that replaced it. */
  replacedBy?: string;
  /** Set on a key made by a roll: the key it replaced (whose grace a further roll ends). */
  replaces?: string;
}

export interface AccountRecord {
  accountId: string;
  email: string;
  userName: string;
  createdAt: string;
  firstKeyId: string;
  /**
   * Bumped by every write that adds a live key (a creation, a roll), under a condition on its
   * previous value when the account's plan limits its keys: the optimistic lock that makes the
   * limit exact under concurrent writes. Absent until the first such write.
   */
  keysVersion?: number;
}

/** The part of a key record key-api needs, as the KeyLookup index projects it. */
export interface KeyLookupRecord {
  accountId: string;
  keyId: string;
  status: StoredKeyStatus;
  expiresAt?: string;
}

export function effectiveStatus(key: Pick<KeyRecord, 'status' | 'expiresAt'>, now: Date): KeyStatus {
  if (
    key.status === 'expiring' &&
    key.expiresAt !== undefined &&
    Date.parse(key.expiresAt) <= now.getTime()
  ) {
    return 'expired';
  }
  return key.status;
}

/**
 * Live keys are the ones that work or will: active, pending, and expiring within their grace.
 * What a plan's `maxKeys` counts.
 */
export function isLiveKey(key: Pick<KeyRecord, 'status' | 'expiresAt'>, now: Date): boolean {
  const status = effectiveStatus(key, now);
  return status === 'active' || status === 'pending' || status === 'expiring';
}

export type KeyMutationResult<T> =
  | { ok: true; value: T }
  | { ok: false; reason: 'not_found' }
  | { ok: false; reason: 'conflict'; status: KeyStatus }
  /** The write would take the account past `limit` live keys; it holds `live` now. */
  | { ok: false; reason: 'key_limit'; limit: number; live: number };

/** What an optimistic attempt answers when a concurrent write moved the account's keysVersion. */
const LOST_RACE = Symbol('lost race');

export interface KeyStoreOptions {
  client: DynamoDBDocumentClient;
  accountsTable: string;
  keysTable: string;
  keyPrefix: string;
  newId?: () => string;
  /**
   * How writes that lose to concurrent writes of the same items (TransactionConflict) are retried
   * before they fail with a ConflictError (409).
   * @default CONFLICT_RETRY
   */
  conflictRetry?: ConflictRetryPolicy;
}

export const FIRST_KEY_NAME = 'default';

function randomId(): string {
  return `key_${crypto.randomUUID().replaceAll('-', '')}`;
}

/**
 * The id first keys had before issue 21: derived from the account, so anyone who knew an account
 * id could name a key it holds (and forge usage that passes metering's provenance check). First
 * keys are now random like every other; accounts provisioned before keep theirs, and metering still
 * recognises another account's one by this form.
 */
export function legacyFirstKeyId(accountId: string): string {
  return `key_first_${accountId.replaceAll(/[^A-Za-z0-9]/g, '')}`;
}

/**
 * Accounts and keys in DynamoDB. Every owner-facing operation is keyed by (accountId, keyId), so a
 * caller can never reach another account's key: a foreign id simply does not exist for them.
 *
 * Failures come by class (services/shared/dynamodb.ts): DynamoDB unavailable → DependencyError;
 * a write that keeps losing to concurrent writes (retried first, under `conflictRetry`) →
 * ConflictError; a failed condition → the operation's own result (`not_found`, `conflict`);
 * anything else (a bug) → the error itself.
 */
export class KeyStore {
  readonly #db: DynamoDBDocumentClient;
  readonly #accounts: string;
  readonly #keys: string;
  readonly #prefix: string;
  readonly #newId: () => string;
  readonly #conflictRetry: ConflictRetryPolicy;

  constructor(options: KeyStoreOptions) {
    this.#db = options.client;
    this.#accounts = options.accountsTable;
    this.#keys = options.keysTable;
    this.#prefix = options.keyPrefix;
    this.#newId = options.newId ?? randomId;
    this.#conflictRetry = options.conflictRetry ?? CONFLICT_RETRY;
  }

  /**
   * Sends one write, retrying it while concurrent writes cancel it. Safe to send again as it is: a
   * cancelled transaction (or a write refused for a transaction in progress) wrote nothing.
   */
  #write<T>(send: () => Promise<T>): Promise<T> {
    return callDynamo(send, { conflicts: this.#conflictRetry });
  }

  /**
   * Creates the account and its first (pending) key in one transaction. Idempotent: a replay for
   * an account that exists changes nothing and reports `created: false`. What makes it so is the
   * account's condition (`attribute_not_exists(accountId)`) in the same transaction as the key:
   * a replay, a retry after a lost answer, or a concurrent second trigger is cancelled as a whole,
   * its own key (a new random id) with it, so exactly one key is ever written, the one the account
   * names as `firstKeyId`.
   */
  async provisionAccount(input: {
    accountId: string;
    email: string;
    userName: string;
    now: Date;
  }): Promise<{ created: boolean; account: AccountRecord }> {
    const createdAt = input.now.toISOString();
    const account: AccountRecord = {
      accountId: input.accountId,
      email: input.email,
      userName: input.userName,
      createdAt,
      // Random like every key id: one derived from the account could be named by anyone.
      firstKeyId: this.#newId(),
    };
    const key: KeyRecord = {
      accountId: input.accountId,
      keyId: account.firstKeyId,
      name: FIRST_KEY_NAME,
      status: 'pending',
      createdAt,
    };
    try {
      await this.#write(() =>
        this.#db.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Put: {
                  TableName: this.#accounts,
                  Item: account,
                  ConditionExpression: 'attribute_not_exists(accountId)',
                },
              },
              {
                Put: {
                  TableName: this.#keys,
                  Item: key,
                  ConditionExpression: 'attribute_not_exists(keyId)',
                },
              },
            ],
          }),
        ),
      );
      return { created: true, account };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const existing = await this.getAccount(input.accountId);
      // Only the account's condition can fail (its key's id is new): no account means a bug.
      if (!existing) throw new Error(`account ${input.accountId} half provisioned`, { cause: error });
      return { created: false, account: existing };
    }
  }

  async getAccount(accountId: string): Promise<AccountRecord | undefined> {
    const out = await callDynamo(() =>
      this.#db.send(new GetCommand({ TableName: this.#accounts, Key: { accountId }, ConsistentRead: true })),
    );
    return out.Item as AccountRecord | undefined;
  }

  async listKeys(accountId: string): Promise<KeyRecord[]> {
    const keys = (await queryAll(this.#db, {
      TableName: this.#keys,
      KeyConditionExpression: 'accountId = :a',
      ExpressionAttributeValues: { ':a': accountId },
      ConsistentRead: true,
    })) as unknown as KeyRecord[];
    return keys.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.keyId.localeCompare(b.keyId));
  }

  async getKey(accountId: string, keyId: string): Promise<KeyRecord | undefined> {
    const out = await callDynamo(() =>
      this.#db.send(
        new GetCommand({ TableName: this.#keys, Key: { accountId, keyId }, ConsistentRead: true }),
      ),
    );
    return out.Item as KeyRecord | undefined;
  }

  /**
   * Creates an active key. With `maxKeys` (the account's plan limit) the account may hold at most
   * that many live keys afterwards, exactly, under any number of concurrent writers: the live keys
   * are counted at a read `keysVersion` of the account, and the creation commits only if that
   * version is still current (every creation and roll bumps it), else it is counted again.
   */
  async createKey(input: {
    accountId: string;
    name: string;
    now: Date;
    maxKeys?: number;
  }): Promise<KeyMutationResult<{ record: KeyRecord; secret: NewApiKey }>> {
    const secret = generateApiKey(this.#prefix);
    const record: KeyRecord = {
      accountId: input.accountId,
      keyId: this.#newId(),
      name: input.name,
      start: secret.start,
      keyHash: secret.keyHash,
      status: 'active',
      createdAt: input.now.toISOString(),
    };
    const put = {
      Put: { TableName: this.#keys, Item: record, ConditionExpression: 'attribute_not_exists(keyId)' },
    };
    const { maxKeys } = input;
    if (maxKeys === undefined) {
      try {
        // The account must exist: a token for a user whose sign-up trigger never ran gets 404.
        await this.#write(() =>
          this.#db.send(
            new TransactWriteCommand({ TransactItems: [this.#keysChanged(input.accountId, 'any'), put] }),
          ),
        );
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        return { ok: false, reason: 'not_found' };
      }
      return { ok: true, value: { record, secret } };
    }
    return this.#optimistic(async () => {
      const version = await this.#keysVersion(input.accountId);
      if (version === null) return { ok: false, reason: 'not_found' };
      const live = (await this.listKeys(input.accountId)).filter((key) => isLiveKey(key, input.now)).length;
      if (live + 1 > maxKeys) return { ok: false, reason: 'key_limit', limit: maxKeys, live };
      try {
        await this.#write(() =>
          this.#db.send(
            new TransactWriteCommand({ TransactItems: [this.#keysChanged(input.accountId, version), put] }),
          ),
        );
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        return LOST_RACE;
      }
      return { ok: true, value: { record, secret } };
    });
  }

  /**
   * Mints the secret of a pending key, once. The condition makes a second reveal (or a race of
   * two) fail instead of issuing a second secret.
   */
  async revealKey(input: {
    accountId: string;
    keyId: string;
    now: Date;
  }): Promise<KeyMutationResult<{ record: KeyRecord; secret: NewApiKey }>> {
    const secret = generateApiKey(this.#prefix);
    try {
      const out = await this.#write(() =>
        this.#db.send(
          new UpdateCommand({
            TableName: this.#keys,
            Key: { accountId: input.accountId, keyId: input.keyId },
            UpdateExpression: 'SET #status = :active, keyHash = :hash, #start = :start',
            ConditionExpression: '#status = :pending AND attribute_not_exists(keyHash)',
            ExpressionAttributeNames: { '#status': 'status', '#start': 'start' },
            ExpressionAttributeValues: {
              ':active': 'active',
              ':pending': 'pending',
              ':hash': secret.keyHash,
              ':start': secret.start,
            },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      return { ok: true, value: { record: out.Attributes as KeyRecord, secret } };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return this.#explainConflict(input.accountId, input.keyId, input.now);
    }
  }

  /**
   * Replaces an active key with a new one; the old key keeps working until `now + graceMs`.
   * All writes commit together, so there is never a moment with neither key or with two
   * replacements for one key. A key keeps at most one expiring predecessor: if the rolled key was
   * itself made by a roll and its predecessor is still in its grace, that grace ends now.
   * With `maxKeys` the new key counts against the limit as in createKey (the old key and a
   * predecessor whose grace ends here no longer count once they stop working at `now`).
   */
  async rollKey(input: {
    accountId: string;
    keyId: string;
    graceMs: number;
    now: Date;
    maxKeys?: number;
  }): Promise<KeyMutationResult<{ record: KeyRecord; secret: NewApiKey; previous: KeyRecord }>> {
    const { accountId, now, maxKeys } = input;
    const secret = generateApiKey(this.#prefix);
    const expiresAt = new Date(now.getTime() + input.graceMs).toISOString();
    return this.#optimistic(async () => {
      const old = await this.getKey(accountId, input.keyId);
      if (!old) return { ok: false, reason: 'not_found' };
      if (old.status !== 'active')
        return { ok: false, reason: 'conflict', status: effectiveStatus(old, now) };
      const predecessor = old.replaces ? await this.getKey(accountId, old.replaces) : undefined;
      const ending =
        predecessor && effectiveStatus(predecessor, now) === 'expiring' ? predecessor : undefined;
      const version = await this.#keysVersion(accountId);
      if (version === null) return { ok: false, reason: 'not_found' };
      if (maxKeys !== undefined) {
        const live = (await this.listKeys(accountId)).filter((key) => isLiveKey(key, now)).length;
        const after = live + 1 - (input.graceMs === 0 ? 1 : 0) - (ending ? 1 : 0);
        if (after > maxKeys) return { ok: false, reason: 'key_limit', limit: maxKeys, live };
      }
      const record: KeyRecord = {
        accountId,
        keyId: this.#newId(),
        name: old.name,
        start: secret.start,
        keyHash: secret.keyHash,
        status: 'active',
        createdAt: now.toISOString(),
        replaces: old.keyId,
      };
      try {
        await this.#write(() =>
          this.#db.send(
            new TransactWriteCommand({
              TransactItems: [
                {
                  Update: {
                    TableName: this.#keys,
                    Key: { accountId, keyId: old.keyId },
                    UpdateExpression: 'SET #status = :expiring, expiresAt = :expiresAt, replacedBy = :next',
                    ConditionExpression: '#status = :active',
                    ExpressionAttributeNames: { '#status': 'status' },
                    ExpressionAttributeValues: {
                      ':expiring': 'expiring',
                      ':active': 'active',
                      ':expiresAt': expiresAt,
                      ':next': record.keyId,
                    },
                  },
                },
                {
                  Put: {
                    TableName: this.#keys,
                    Item: record,
                    ConditionExpression: 'attribute_not_exists(keyId)',
                  },
                },
                ...(ending
                  ? [
                      {
                        // Its grace ends now (it reads as expired from here on), unless it was
                        // revoked or changed since it was read: then this attempt is retried.
                        Update: {
                          TableName: this.#keys,
                          Key: { accountId, keyId: ending.keyId },
                          UpdateExpression: 'SET expiresAt = :now',
                          ConditionExpression: '#status = :expiring AND expiresAt = :was',
                          ExpressionAttributeNames: { '#status': 'status' },
                          ExpressionAttributeValues: {
                            ':expiring': 'expiring',
                            ':was': ending.expiresAt,
                            ':now': now.toISOString(),
                          },
                        },
                      },
                    ]
                  : []),
                this.#keysChanged(accountId, version),
              ],
            }),
          ),
        );
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        // The next attempt reads the key afresh: revoked or rolled meanwhile is its answer.
        return LOST_RACE;
      }
      return {
        ok: true,
        value: {
          record,
          secret,
          previous: { ...old, status: 'expiring', expiresAt, replacedBy: record.keyId },
        },
      };
    });
  }

  /** Revokes a key. Revoking a revoked key is not an error and keeps the first `revokedAt`. */
  async revokeKey(input: {
    accountId: string;
    keyId: string;
    now: Date;
  }): Promise<KeyMutationResult<KeyRecord>> {
    try {
      const out = await this.#write(() =>
        this.#db.send(
          new UpdateCommand({
            TableName: this.#keys,
            Key: { accountId: input.accountId, keyId: input.keyId },
            UpdateExpression: 'SET #status = :revoked, revokedAt = if_not_exists(revokedAt, :now)',
            ConditionExpression: 'attribute_exists(keyId)',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':revoked': 'revoked', ':now': input.now.toISOString() },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      return { ok: true, value: out.Attributes as KeyRecord };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return { ok: false, reason: 'not_found' };
    }
  }

  /** The key check's only read: the KeyLookup index by SHA-256 of the presented key. */
  async lookupByHash(keyHash: string): Promise<KeyLookupRecord | undefined> {
    const out = await callDynamo(() =>
      this.#db.send(
        new QueryCommand({
          TableName: this.#keys,
          IndexName: KEY_LOOKUP_INDEX,
          KeyConditionExpression: 'keyHash = :h',
          ExpressionAttributeValues: { ':h': keyHash },
          Limit: 1,
        }),
      ),
    );
    const item = out.Items?.[0];
    if (!item) return undefined;
    return {
      accountId: item.accountId as string,
      keyId: item.keyId as string,
      status: item.status as StoredKeyStatus,
      ...(typeof item.expiresAt === 'string' ? { expiresAt: item.expiresAt } : {}),
    };
  }

  /** The account's keysVersion (undefined before the first write that bumps it); null: no such account. */
  async #keysVersion(accountId: string): Promise<number | undefined | null> {
    const out = await callDynamo(() =>
      this.#db.send(
        new GetCommand({
          TableName: this.#accounts,
          Key: { accountId },
          ProjectionExpression: 'accountId, keysVersion',
          ConsistentRead: true,
        }),
      ),
    );
    if (!out.Item) return null;
    return typeof out.Item.keysVersion === 'number' ? out.Item.keysVersion : undefined;
  }

  /**
   * The transaction item that bumps the account's keysVersion: on the condition that it is still
   * `version` (what the write's count was read at), or with 'any' only that the account exists.
   */
  #keysChanged(accountId: string, version: number | undefined | 'any') {
    const condition =
      version === 'any'
        ? { ConditionExpression: 'attribute_exists(accountId)' }
        : version === undefined
          ? { ConditionExpression: 'attribute_exists(accountId) AND attribute_not_exists(keysVersion)' }
          : {
              ConditionExpression: 'keysVersion = :version',
              ExpressionAttributeValues: { ':version': version },
            };
    return {
      Update: {
        TableName: this.#accounts,
        Key: { accountId },
        UpdateExpression: 'ADD keysVersion :one',
        ...condition,
        ExpressionAttributeValues: { ':one': 1, ...condition.ExpressionAttributeValues },
      },
    };
  }

  /**
   * Runs an optimistic attempt again while it loses its race (another write moved the account's
   * keysVersion between its read and its commit), with the jittered backoff of conflicts; one
   * that keeps losing is a ConflictError (409), as a write that keeps conflicting is.
   */
  async #optimistic<T>(attempt: () => Promise<T | typeof LOST_RACE>): Promise<T> {
    const policy = this.#conflictRetry;
    for (let retry = 0; ; retry++) {
      const result = await attempt();
      if (result !== LOST_RACE) return result;
      if (retry >= policy.retries) throw new ConflictError('DynamoDB');
      const wait = conflictBackoffMs(retry, policy);
      await (policy.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))))(wait);
    }
  }

  async #explainConflict(accountId: string, keyId: string, now: Date): Promise<KeyMutationResult<never>> {
    const current = await this.getKey(accountId, keyId);
    if (!current) return { ok: false, reason: 'not_found' };
    return { ok: false, reason: 'conflict', status: effectiveStatus(current, now) };
  }
}
