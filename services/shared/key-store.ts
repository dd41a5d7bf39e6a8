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
  isConditionFailure,
  queryAll,
} from './dynamodb';

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
}

export interface AccountRecord {
  accountId: string;
  email: string;
  userName: string;
  createdAt: string;
  firstKeyId: string;
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

export type KeyMutationResult<T> =
  | { ok: true; value: T }
  | { ok: false; reason: 'not_found' }
  | { ok: false; reason: 'conflict'; status: KeyStatus };

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

/** First key of an account: derived from the account so a replayed sign-up trigger finds it. */
export function firstKeyId(accountId: string): string {
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
   * an account that exists changes nothing and reports `created: false`.
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
      firstKeyId: firstKeyId(input.accountId),
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
      // The first key exists without its account: no code path writes one without the other.
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

  async createKey(input: {
    accountId: string;
    name: string;
    now: Date;
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
    try {
      await this.#write(() =>
        this.#db.send(
          new TransactWriteCommand({
            TransactItems: [
              // The account must exist: a token for a user whose sign-up trigger never ran gets 404.
              {
                ConditionCheck: {
                  TableName: this.#accounts,
                  Key: { accountId: input.accountId },
                  ConditionExpression: 'attribute_exists(accountId)',
                },
              },
              {
                Put: {
                  TableName: this.#keys,
                  Item: record,
                  ConditionExpression: 'attribute_not_exists(keyId)',
                },
              },
            ],
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return { ok: false, reason: 'not_found' };
    }
    return { ok: true, value: { record, secret } };
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
   * Both writes commit together, so there is never a moment with neither key or with two
   * replacements for one key.
   */
  async rollKey(input: {
    accountId: string;
    keyId: string;
    graceMs: number;
    now: Date;
  }): Promise<KeyMutationResult<{ record: KeyRecord; secret: NewApiKey; previous: KeyRecord }>> {
    const old = await this.getKey(input.accountId, input.keyId);
    if (!old) return { ok: false, reason: 'not_found' };
    if (old.status !== 'active') {
      return { ok: false, reason: 'conflict', status: effectiveStatus(old, input.now) };
    }
    const secret = generateApiKey(this.#prefix);
    const expiresAt = new Date(input.now.getTime() + input.graceMs).toISOString();
    const record: KeyRecord = {
      accountId: input.accountId,
      keyId: this.#newId(),
      name: old.name,
      start: secret.start,
      keyHash: secret.keyHash,
      status: 'active',
      createdAt: input.now.toISOString(),
    };
    try {
      await this.#write(() =>
        this.#db.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Update: {
                  TableName: this.#keys,
                  Key: { accountId: input.accountId, keyId: input.keyId },
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
            ],
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      return this.#explainConflict(input.accountId, input.keyId, input.now);
    }
    return {
      ok: true,
      value: {
        record,
        secret,
        previous: { ...old, status: 'expiring', expiresAt, replacedBy: record.keyId },
      },
    };
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

  async #explainConflict(accountId: string, keyId: string, now: Date): Promise<KeyMutationResult<never>> {
    const current = await this.getKey(accountId, keyId);
    if (!current) return { ok: false, reason: 'not_found' };
    return { ok: false, reason: 'conflict', status: effectiveStatus(current, now) };
  }
}
