import { type DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { type AccountStatus, DEFAULT_PLAN_ID } from '../../contracts/plans';
import { ACCOUNT_DIRECTORY_INDEX, accountDirectoryAttributes } from '../../contracts/resources';
import { callDynamo } from '../platform/dynamodb';
import type { AccountRecord } from './records';

/**
 * The admin's list of accounts, over the accounts table's AccountDirectory index
 * (contracts/resources.ts): every account item carries `directory` (one value for all) and
 * `emailKey` (its address in lower case), written with the account (KeyStore.provisionAccount;
 * accounts older than the index are added by infra/local/resources/account-directory.ts locally).
 * A page is one Query of the index, O(page) entries, whatever the number of accounts.
 */

/** The attributes that put an account in the directory, written with its item. */
export const directoryAttributes = accountDirectoryAttributes;

/** The index's one partition: every account is in it. */
const DIRECTORY_PARTITION = accountDirectoryAttributes('').directory;

/** `email`: by address, A to Z; `-email`: Z to A (the index's sort key, read either way). */
export const ACCOUNT_SORTS = ['email', '-email'] as const;
export type AccountSort = (typeof ACCOUNT_SORTS)[number];

export interface AccountPageQuery {
  limit: number;
  /** A page's `next`, as accountCursor wrote it. */
  cursor?: string;
  sort?: AccountSort;
  /** An email address or its beginning (any case), or an account id (exact). */
  q?: string;
}

/** An account as the admin list shows it: what the index projects. */
export interface ListedAccount extends Pick<AccountRecord, 'accountId' | 'email' | 'createdAt'> {
  status: AccountStatus;
  /** The assigned plan, or DEFAULT_PLAN_ID when none is. */
  planId: string;
}

export interface AccountPage {
  accounts: ListedAccount[];
  next?: string;
}

/** A `cursor` that no page of this list gave: the caller's mistake (a 400), not a missing page. */
export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
}

/** Where a page ended in the index: the index's key of its last entry. */
interface DirectoryKey {
  emailKey: string;
  accountId: string;
}

/** The opaque `next` of a page: base64url of its last entry's index key. */
export function accountCursor(key: DirectoryKey): string {
  return Buffer.from(JSON.stringify([key.emailKey, key.accountId])).toString('base64url');
}

/** The index key a cursor names, or undefined when it is not one accountCursor wrote. */
export function parseAccountCursor(cursor: string): DirectoryKey | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!Array.isArray(value) || value.length !== 2) return undefined;
    const [emailKey, accountId] = value as unknown[];
    if (typeof emailKey !== 'string' || typeof accountId !== 'string' || accountId === '') return undefined;
    return { emailKey, accountId };
  } catch {
    return undefined;
  }
}

export class AccountDirectory {
  readonly #db: DynamoDBDocumentClient;
  readonly #accounts: string;

  constructor(options: { client: DynamoDBDocumentClient; accountsTable: string }) {
    this.#db = options.client;
    this.#accounts = options.accountsTable;
  }

  /**
   * One page of accounts by email (AccountSort), or of those whose address begins with `q` (case
   * does not matter) plus, on the first page, the account whose id is `q`. One Query of the index
   * (eventually consistent: a sign-up of the last moment may be missing), and with `q` one GetItem.
   */
  async page(query: AccountPageQuery): Promise<AccountPage> {
    const start = query.cursor === undefined ? undefined : parseAccountCursor(query.cursor);
    if (query.cursor !== undefined && !start) throw new InvalidCursorError('not a cursor of this list');
    const prefix = query.q?.trim().toLowerCase();
    const [byId, page] = await Promise.all([
      query.q && start === undefined ? this.#byId(query.q.trim()) : Promise.resolve(undefined),
      callDynamo(() =>
        this.#db.send(
          new QueryCommand({
            TableName: this.#accounts,
            IndexName: ACCOUNT_DIRECTORY_INDEX,
            KeyConditionExpression: prefix
              ? 'directory = :d AND begins_with(emailKey, :q)'
              : 'directory = :d',
            ExpressionAttributeValues: { ':d': DIRECTORY_PARTITION, ...(prefix ? { ':q': prefix } : {}) },
            ScanIndexForward: query.sort !== '-email',
            Limit: query.limit,
            ...(start ? { ExclusiveStartKey: { directory: DIRECTORY_PARTITION, ...start } } : {}),
          }),
        ),
      ),
    ]);
    const listed = (page.Items ?? []).map(listedAccountOf);
    const accounts = byId ? [byId, ...listed.filter((a) => a.accountId !== byId.accountId)] : listed;
    const last = page.LastEvaluatedKey;
    return typeof last?.emailKey === 'string' && typeof last.accountId === 'string'
      ? { accounts, next: accountCursor({ emailKey: last.emailKey, accountId: last.accountId }) }
      : { accounts };
  }

  /** Every account's id and email, a page of the index at a time (for reports over all accounts). */
  async *all(pageSize = 1000): AsyncGenerator<Array<{ accountId: string; email: string }>> {
    let start: Record<string, unknown> | undefined;
    do {
      const page = await callDynamo(() =>
        this.#db.send(
          new QueryCommand({
            TableName: this.#accounts,
            IndexName: ACCOUNT_DIRECTORY_INDEX,
            KeyConditionExpression: 'directory = :d',
            ExpressionAttributeValues: { ':d': DIRECTORY_PARTITION },
            ProjectionExpression: 'accountId, email',
            Limit: pageSize,
            ExclusiveStartKey: start,
          }),
        ),
      );
      yield (page.Items ?? []).map((item) => ({
        accountId: String(item.accountId),
        email: typeof item.email === 'string' ? item.email : '',
      }));
      start = page.LastEvaluatedKey;
    } while (start);
  }

  async #byId(accountId: string): Promise<ListedAccount | undefined> {
    if (accountId.length === 0 || accountId.length > 128) return undefined;
    const out = await callDynamo(() =>
      this.#db.send(new GetCommand({ TableName: this.#accounts, Key: { accountId } })),
    );
    return out.Item ? listedAccountOf(out.Item) : undefined;
  }
}

function listedAccountOf(item: Record<string, unknown>): ListedAccount {
  const text = (name: string) => (typeof item[name] === 'string' ? (item[name] as string) : '');
  return {
    accountId: text('accountId'),
    email: text('email'),
    createdAt: text('createdAt'),
    status: item.status === 'suspended' ? 'suspended' : 'active',
    planId: typeof item.planId === 'string' ? item.planId : DEFAULT_PLAN_ID,
  };
}
