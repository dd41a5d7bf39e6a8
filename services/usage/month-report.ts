import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { BATCH_GET_MAX, batchGetAll, queryAll } from '../platform/dynamodb';
import { accountPartition, dayAttribute, dayRange, parseCounterSortKey, periodCounter } from './counter-keys';

/**
 * The admin's reports over a UTC month (the quota's month, counter-keys.ts periodCounter): each
 * account's requests and its days, from its account-period item, and its keys' totals, from its
 * key-day counters. Read strongly consistent, as everything an owner or admin is shown.
 *
 * What it costs: an account's month is one item of a BatchGetItem (100 accounts a request), under
 * 4 KB, so 1 read unit per account whatever its keys and days: a report over every account is about
 * one read unit per account (10,000 accounts: 10,000 units, a fraction of a cent on demand), never
 * a Scan of the usage table (every key-day counter and dedupe mark). A key's month is the Query of
 * its account's day counters for the month: read units per account ≈ its key-days × item size / 4 KB.
 */

/** An account's requests in one month and on each of its UTC days (`yyyy-mm-dd` → requests). */
export interface AccountMonth {
  accountId: string;
  requests: number;
  days: Map<string, number>;
}

/** One key's requests in a month. */
export interface KeyMonth {
  accountId: string;
  keyId: string;
  requests: number;
}

/** Accounts whose day counters are queried at once for the top keys. */
const KEY_QUERY_CONCURRENCY = 8;

/** Every UTC day (`yyyy-mm-dd`) of a month (`yyyy-mm`). */
export function daysOfMonth(month: string): string[] {
  const [year, m] = month.split('-').map(Number) as [number, number];
  const count = new Date(Date.UTC(year, m, 0)).getUTCDate();
  return Array.from({ length: count }, (_, i) => `${month}-${String(i + 1).padStart(2, '0')}`);
}

export class MonthReport {
  readonly #db: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(options: { client: DynamoDBDocumentClient; table: string }) {
    this.#db = options.client;
    this.#table = options.table;
  }

  /**
   * The month of each account (zeros for one without usage): one BatchGetItem of their
   * account-period items per 100 accounts, `UnprocessedKeys` retried with backoff.
   * @param options.days read only these days' attributes (the admin list reads today's); default all
   */
  async accountMonths(
    accountIds: readonly string[],
    month: string,
    options: { days?: readonly string[] } = {},
  ): Promise<Map<string, AccountMonth>> {
    const days = options.days ?? daysOfMonth(month);
    const names: Record<string, string> = { '#r': 'requests' };
    days.forEach((day, i) => {
      names[`#d${i}`] = dayAttribute(day);
    });
    const projection = ['pk', ...Object.keys(names)].join(', ');
    const months = new Map<string, AccountMonth>();
    for (const accountId of accountIds) months.set(accountId, { accountId, requests: 0, days: new Map() });
    const unique = [...months.keys()];
    for (let i = 0; i < unique.length; i += BATCH_GET_MAX) {
      const keys = unique.slice(i, i + BATCH_GET_MAX).map((accountId) => periodCounter(accountId, month));
      for (const item of await batchGetAll(this.#db, this.#table, keys, { projection, names })) {
        const entry = months.get(String(item.pk).slice(accountPartition('').length));
        if (!entry) continue;
        entry.requests = numberOf(item.requests);
        for (const day of days) {
          const count = numberOf(item[dayAttribute(day)]);
          if (count > 0) entry.days.set(day, count);
        }
      }
    }
    return months;
  }

  /** Each key's requests in the month in one account: one Query of its day counters of the month. */
  async keyMonths(accountId: string, month: string): Promise<KeyMonth[]> {
    const days = daysOfMonth(month);
    const range = dayRange(days[0] as string, days.at(-1) as string);
    const items = await queryAll(this.#db, {
      TableName: this.#table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: { ':pk': accountPartition(accountId), ':from': range.from, ':to': range.to },
      ProjectionExpression: 'sk, requests',
      ConsistentRead: true,
    });
    const byKey = new Map<string, number>();
    for (const item of items) {
      const { keyId } = parseCounterSortKey(item.sk as string);
      byKey.set(keyId, (byKey.get(keyId) ?? 0) + numberOf(item.requests));
    }
    return [...byKey].map(([keyId, requests]) => ({ accountId, keyId, requests }));
  }

  /**
   * The `limit` keys with the most requests in the month, largest first (ties by account, then key
   * id), given every account's month. Exact without reading every account's counters: a key holds
   * at most its account's requests, so accounts are read largest first and the reading stops once
   * the `limit`-th key found has more requests than the next account has in all.
   */
  async topKeys(accounts: readonly AccountMonth[], month: string, limit: number): Promise<KeyMonth[]> {
    const queue = accounts.filter((a) => a.requests > 0).sort(byRequests);
    let top: KeyMonth[] = [];
    for (let i = 0; i < queue.length; i += KEY_QUERY_CONCURRENCY) {
      const next = queue[i] as AccountMonth;
      const floor = top.length >= limit ? (top[limit - 1] as KeyMonth).requests : -1;
      if (floor > next.requests) break;
      const batch = queue.slice(i, i + KEY_QUERY_CONCURRENCY);
      const found = await Promise.all(batch.map((a) => this.keyMonths(a.accountId, month)));
      top = [...top, ...found.flat().filter((k) => k.requests > 0)].sort(byKeyRequests).slice(0, limit);
    }
    return top;
  }
}

const numberOf = (value: unknown): number => (typeof value === 'number' ? value : 0);

const byRequests = (a: AccountMonth, b: AccountMonth) =>
  b.requests - a.requests || (a.accountId < b.accountId ? -1 : a.accountId > b.accountId ? 1 : 0);

const byKeyRequests = (a: KeyMonth, b: KeyMonth) =>
  b.requests - a.requests ||
  (a.accountId < b.accountId ? -1 : a.accountId > b.accountId ? 1 : 0) ||
  (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0);
