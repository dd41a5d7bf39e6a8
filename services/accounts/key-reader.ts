import { type DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { KEY_LOOKUP_INDEX } from '../../contracts/resources';
import { callDynamo, queryAll } from '../platform/dynamodb';
import type { AccountRecord, KeyLookupRecord, KeyRecord, StoredKeyStatus } from './records';

/**
 * The reads of the accounts and keys tables: the gate's key check (lookupByHash) and what the user
 * API shows. Strongly consistent where an owner reads after a write of theirs; KeyStore's writes
 * read through it.
 */
export class KeyReader {
  readonly #db: DynamoDBDocumentClient;
  readonly #accounts: string;
  readonly #keys: string;

  constructor(options: { client: DynamoDBDocumentClient; accountsTable: string; keysTable: string }) {
    this.#db = options.client;
    this.#accounts = options.accountsTable;
    this.#keys = options.keysTable;
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
  async keysVersion(accountId: string): Promise<number | undefined | null> {
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
}
