import { type DynamoDBDocumentClient, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  CONFLICT_RETRY,
  type ConflictRetryPolicy,
  callDynamo,
  isConditionFailure,
} from '../platform/dynamodb';
import { directoryAttributes } from './account-directory';
import { generateApiKey, type NewApiKey } from './api-key';
import { KeyReader } from './key-reader';
import {
  endGraceItem,
  expireRolledKeyItem,
  keysChangedItem,
  LOST_RACE,
  optimistic,
  putNewKeyItem,
} from './key-writes';
import {
  type AccountRecord,
  effectiveStatus,
  FIRST_KEY_NAME,
  isLiveKey,
  type KeyMutationResult,
  type KeyRecord,
} from './records';

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

function randomId(): string {
  return `key_${crypto.randomUUID().replaceAll('-', '')}`;
}

/**
 * Accounts and keys in DynamoDB. Every owner-facing operation is keyed by (accountId, keyId), so a
 * caller can never reach another account's key: a foreign id simply does not exist for them.
 *
 * Failures come by class (services/platform/dynamodb.ts): DynamoDB unavailable → DependencyError;
 * a write that keeps losing to concurrent writes (retried first, under `conflictRetry`) →
 * ConflictError; a failed condition → the operation's own result (`not_found`, `conflict`);
 * anything else (a bug) → the error itself.
 */
export class KeyStore extends KeyReader {
  readonly #db: DynamoDBDocumentClient;
  readonly #accounts: string;
  readonly #keys: string;
  readonly #prefix: string;
  readonly #newId: () => string;
  readonly #conflictRetry: ConflictRetryPolicy;

  constructor(options: KeyStoreOptions) {
    super(options);
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
   * Sets the account's time zone (a name the caller has checked). One conditional update: an
   * account that does not exist is not created by it.
   * @returns false when there is no such account
   */
  async setTimeZone(accountId: string, timeZone: string): Promise<boolean> {
    try {
      await this.#write(() =>
        this.#db.send(
          new UpdateCommand({
            TableName: this.#accounts,
            Key: { accountId },
            // `timezone` is a DynamoDB reserved word, case ignored: named through a placeholder.
            UpdateExpression: 'SET #tz = :tz',
            ConditionExpression: 'attribute_exists(accountId)',
            ExpressionAttributeNames: { '#tz': 'timeZone' },
            ExpressionAttributeValues: { ':tz': timeZone },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
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
                  // In the admin's account list from the start (account-directory.ts).
                  Item: { ...account, ...directoryAttributes(account.email) },
                  ConditionExpression: 'attribute_not_exists(accountId)',
                },
              },
              putNewKeyItem(this.#keys, key),
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
    const put = putNewKeyItem(this.#keys, record);
    const { maxKeys } = input;
    if (maxKeys === undefined) {
      try {
        // The account must exist: a token for a user whose sign-up trigger never ran gets 404.
        await this.#write(() =>
          this.#db.send(
            new TransactWriteCommand({
              TransactItems: [keysChangedItem(this.#accounts, input.accountId, 'any'), put],
            }),
          ),
        );
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        return { ok: false, reason: 'not_found' };
      }
      return { ok: true, value: { record, secret } };
    }
    return optimistic(this.#conflictRetry, async () => {
      const version = await this.keysVersion(input.accountId);
      if (version === null) return { ok: false, reason: 'not_found' };
      const live = (await this.listKeys(input.accountId)).filter((key) => isLiveKey(key, input.now)).length;
      if (live + 1 > maxKeys) return { ok: false, reason: 'key_limit', limit: maxKeys, live };
      try {
        await this.#write(() =>
          this.#db.send(
            new TransactWriteCommand({
              TransactItems: [keysChangedItem(this.#accounts, input.accountId, version), put],
            }),
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
    return optimistic(this.#conflictRetry, async () => {
      const old = await this.getKey(accountId, input.keyId);
      if (!old) return { ok: false, reason: 'not_found' };
      if (old.status !== 'active')
        return { ok: false, reason: 'conflict', status: effectiveStatus(old, now) };
      const predecessor = old.replaces ? await this.getKey(accountId, old.replaces) : undefined;
      const ending =
        predecessor && effectiveStatus(predecessor, now) === 'expiring' ? predecessor : undefined;
      const version = await this.keysVersion(accountId);
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
                expireRolledKeyItem(this.#keys, old, expiresAt, record.keyId),
                putNewKeyItem(this.#keys, record),
                ...(ending ? [endGraceItem(this.#keys, ending, now)] : []),
                keysChangedItem(this.#accounts, accountId, version),
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

  async #explainConflict(accountId: string, keyId: string, now: Date): Promise<KeyMutationResult<never>> {
    const current = await this.getKey(accountId, keyId);
    if (!current) return { ok: false, reason: 'not_found' };
    return { ok: false, reason: 'conflict', status: effectiveStatus(current, now) };
  }
}
