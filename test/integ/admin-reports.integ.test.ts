import { randomUUID } from 'node:crypto';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { utcDay } from '../../contracts/usage-event';
import { backfillAccountDirectory } from '../../infra/local/resources/account-directory';
import { KeyStore } from '../../services/accounts/key-store';
import { documentClient, dynamoDbClient } from '../../services/platform/aws-clients';
import type { AggregateEvent, TransactionPart } from '../../services/usage/counter-updates';
import { UsageStore } from '../../services/usage/usage-store';
import { errorCode, signInAdmin, signUpAndSignIn, type TestUser, userApi } from '../support/local-stack';
import { eventually } from '../support/wait';

// The admin's account list (paged, sorted, searched over the AccountDirectory index) and its month
// reports (top accounts and keys, every account's days as JSON and CSV), end to end on the shared
// local stack: accounts provisioned as sign-up provisions them (KeyStore.provisionAccount), usage
// counted as metering counts it (UsageStore.applyTransaction), read through the running user-api
// with the local admin's Cognito token. The month counted is one no other test uses (2023-07), so
// its top is exactly this file's accounts.

const env = inject('env');
const dynamo = documentClient(inject('aws'));
const store = new KeyStore({
  client: dynamo,
  accountsTable: env[ENV.accountsTable] as string,
  keysTable: env[ENV.keysTable] as string,
  keyPrefix: env[ENV.keyPrefix] ?? 'tg',
});
const counters = new UsageStore({ client: dynamo, table: env[ENV.usageTable] as string });

const RUN = randomUUID().slice(0, 8);
const MONTH = '2023-07';

interface Listed {
  accountId: string;
  email: string;
  planId: string;
  status: string;
  usage: { period: string; used: number };
}
interface ListPage {
  accounts: Listed[];
  next?: string;
}
interface AccountDays {
  accountId: string;
  email: string;
  total: number;
  days: { date: string; count: number }[];
}
interface ReportPage {
  month: string;
  accounts: AccountDays[];
  next?: string;
}
interface Top {
  month: string;
  accounts: { accountId: string; email: string; requests: number }[];
  keys: { accountId: string; email: string; keyId: string; name?: string; requests: number }[];
}

interface Made {
  accountId: string;
  email: string;
  keyIds: string[];
}

/** An account as sign-up makes it (email in mixed case: the search ignores case), with `keys` more keys. */
async function account(label: string, keys: number): Promise<Made> {
  const accountId = `adminrep-${RUN}-${label}-${randomUUID().slice(0, 6)}`;
  const email = `AdminRep-${RUN}-${label}@Example.com`;
  const { account: provisioned } = await store.provisionAccount({
    accountId,
    email,
    userName: accountId,
    now: new Date(),
  });
  // The first key (`default`, pending) counts like any other: usage is counted per key id.
  const keyIds: string[] = [provisioned.firstKeyId];
  for (let i = 0; i < keys; i++) {
    const created = await store.createKey({ accountId, name: `${label}-key${i}`, now: new Date() });
    if (!created.ok) throw new Error('createKey failed');
    keyIds.push(created.value.record.keyId);
  }
  return { accountId, email, keyIds };
}

/** `n` events of one key on one UTC day, counted as metering counts a batch. */
async function count(accountId: string, keyId: string, day: string, n: number): Promise<void> {
  const events: AggregateEvent[] = Array.from({ length: n }, (_, i) => ({
    id: randomUUID(),
    ts: Date.parse(`${day}T12:00:00Z`) + i,
    units: 1,
  }));
  const part: TransactionPart = {
    owner: { accountId, keyId, day },
    events,
    recordIds: events.map((e) => e.id),
  };
  await counters.applyTransaction([part], new Date());
}

/** One CSV line's fields (RFC 4180: a quoted field may hold commas and doubled quotes). */
function csvFields(line: string): string[] {
  const fields: string[] = [];
  for (const match of line.matchAll(/(?:^|,)(?:"((?:[^"]|"")*)"|([^,]*))/g)) {
    fields.push(match[1] !== undefined ? match[1].replaceAll('""', '"') : (match[2] ?? ''));
  }
  return fields;
}

const get = async <T>(token: string, path: string): Promise<T> => {
  const response = await userApi(token, 'GET', path);
  expect(response.status, `${path}: ${response.text}`).toBe(200);
  return response.body as T;
};

/** Every page of a listing query, following `next`. */
async function allPages(token: string, query: string): Promise<Listed[][]> {
  const pages: Listed[][] = [];
  let cursor: string | undefined;
  do {
    const page = await get<ListPage>(
      token,
      `/admin/accounts?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    pages.push(page.accounts);
    cursor = page.next;
  } while (cursor);
  return pages;
}

let admin: TestUser;
let owner: TestUser;
let made: Made[];
let byLabel: Record<string, Made>;

beforeAll(async () => {
  [admin, owner] = await Promise.all([signInAdmin(), signUpAndSignIn('adminrep-owner')]);
  const labels = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
  made = await Promise.all(labels.map((label) => account(label, label === 'a' ? 1 : 0)));
  byLabel = Object.fromEntries(labels.map((label, i) => [label, made[i] as Made]));
  const key = (label: string, i = 0) => byLabel[label]?.keyIds[i] as string;
  // In MONTH: a 10 + 4 over two keys, d 12, b 7 (on the month's last day); c, e, f, g nothing.
  const a = byLabel.a as Made;
  await count(a.accountId, key('a', 0), `${MONTH}-03`, 10);
  await count(a.accountId, key('a', 1), `${MONTH}-15`, 4);
  await count(byLabel.d?.accountId as string, key('d'), `${MONTH}-01`, 12);
  await count(byLabel.b?.accountId as string, key('b'), `${MONTH}-31`, 7);
  // Today, for the list's usage this period: e 3.
  await count(byLabel.e?.accountId as string, key('e'), utcDay(Date.now()), 3);
});

describe('GET /admin/accounts: paged, sorted and searched by the index', () => {
  it('pages a search by email prefix (any case) in email order, each account exactly once', async () => {
    const pages = await allPages(admin.idToken, `q=${encodeURIComponent(`ADMINREP-${RUN}-`)}&limit=3`);
    expect(pages.map((page) => page.length)).toEqual([3, 3, 1]);
    const emails = pages.flat().map((a) => a.email);
    expect(emails).toEqual(
      made.map((m) => m.email).sort((x, y) => x.toLowerCase().localeCompare(y.toLowerCase())),
    );
    const reversed = await allPages(admin.idToken, `q=adminrep-${RUN}-&limit=4&sort=-email`);
    expect(reversed.flat().map((a) => a.email)).toEqual([...emails].reverse());
  });

  it('pages every account exactly once, sign-ups included, without a search', async () => {
    const pages = await allPages(admin.idToken, 'limit=100');
    const ids = pages.flat().map((a) => a.accountId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const m of made) expect(ids).toContain(m.accountId);
    const me = await get<{ userId: string }>(owner.idToken, '/me');
    expect(ids).toContain(me.userId);
    const keys = pages.flat().map((a) => a.email.toLowerCase());
    expect(keys).toEqual([...keys].sort());
  });

  it("finds an account by its id and by its whole address, with this period's usage of the page", async () => {
    const e = byLabel.e as Made;
    const byId = await get<ListPage>(admin.idToken, `/admin/accounts?q=${encodeURIComponent(e.accountId)}`);
    expect(byId.accounts[0]).toMatchObject({
      accountId: e.accountId,
      email: e.email,
      planId: 'default',
      status: 'active',
      usage: { period: 'month', used: 3 },
    });
    const byEmail = await get<ListPage>(
      admin.idToken,
      `/admin/accounts?q=${encodeURIComponent(e.email.toLowerCase())}`,
    );
    expect(byEmail.accounts.map((a) => a.accountId)).toEqual([e.accountId]);
    expect(byEmail.next).toBeUndefined();
    const none = await get<ListPage>(admin.idToken, `/admin/accounts?q=nobody-${RUN}`);
    expect(none.accounts).toEqual([]);
  });

  it('refuses a cursor it did not give and an unknown sort, naming the parameter', async () => {
    for (const [query, parameter] of [
      ['cursor=not-a-cursor', 'cursor'],
      ['sort=createdAt', 'sort'],
    ] as const) {
      const response = await userApi(admin.idToken, 'GET', `/admin/accounts?${query}`);
      expect(response.status, query).toBe(400);
      expect(errorCode(response)).toBe('invalid_request');
      expect(response.text).toContain(parameter);
    }
  });
});

describe('GET /admin/usage/top and /admin/usage/accounts: a month over every account', () => {
  it("ranks the month's accounts and keys by requests, as counted", async () => {
    const [a, b, d] = [byLabel.a, byLabel.b, byLabel.d] as Made[];
    const top = await get<Top>(admin.idToken, `/admin/usage/top?month=${MONTH}`);
    expect(top.month).toBe(MONTH);
    expect(top.accounts).toEqual([
      { accountId: a?.accountId, email: a?.email, requests: 14 },
      { accountId: d?.accountId, email: d?.email, requests: 12 },
      { accountId: b?.accountId, email: b?.email, requests: 7 },
    ]);
    expect(top.keys).toEqual([
      { accountId: d?.accountId, email: d?.email, keyId: d?.keyIds[0], name: 'default', requests: 12 },
      { accountId: a?.accountId, email: a?.email, keyId: a?.keyIds[0], name: 'default', requests: 10 },
      { accountId: b?.accountId, email: b?.email, keyId: b?.keyIds[0], name: 'default', requests: 7 },
      { accountId: a?.accountId, email: a?.email, keyId: a?.keyIds[1], name: 'a-key0', requests: 4 },
    ]);
    // A smaller top is the head of the larger one, keys included (a key of a cannot be read past d's).
    const two = await get<Top>(admin.idToken, `/admin/usage/top?month=${MONTH}&limit=2`);
    expect(two.accounts).toEqual(top.accounts.slice(0, 2));
    expect(two.keys).toEqual(top.keys.slice(0, 2));
  });

  it("answers every account's days, zeros included, and the CSV holds the JSON's numbers row for row", async () => {
    const json: AccountDays[] = [];
    const csv: string[][] = [];
    let cursor: string | undefined;
    do {
      const suffix = `month=${MONTH}&limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = await get<ReportPage>(admin.idToken, `/admin/usage/accounts?${suffix}`);
      json.push(...page.accounts);
      const text = await userApi(admin.idToken, 'GET', `/admin/usage/accounts?${suffix}&format=csv`);
      expect(text.status).toBe(200);
      expect(text.headers.get('content-type')).toMatch(/^text\/csv/);
      expect(text.headers.get('x-next-cursor') ?? undefined).toBe(page.next);
      const [header, ...rows] = text.text.split('\r\n').filter((line) => line !== '');
      expect(header).toBe('accountId,email,date,requests');
      csv.push(...rows.map(csvFields));
      cursor = page.next;
    } while (cursor);

    const ids = json.map((a) => a.accountId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const entry of json) {
      expect(entry.days).toHaveLength(31);
      expect(entry.days.reduce((sum, day) => sum + day.count, 0)).toBe(entry.total);
    }
    const a = json.find((entry) => entry.accountId === byLabel.a?.accountId);
    expect(a?.total).toBe(14);
    expect(a?.days.filter((day) => day.count > 0)).toEqual([
      { date: `${MONTH}-03`, count: 10 },
      { date: `${MONTH}-15`, count: 4 },
    ]);
    expect(json.find((entry) => entry.accountId === byLabel.b?.accountId)?.days.at(-1)).toEqual({
      date: `${MONTH}-31`,
      count: 7,
    });
    expect(json.find((entry) => entry.accountId === byLabel.c?.accountId)?.total).toBe(0);
    // Every account's every day as a row, in the same order, with the same numbers.
    expect(csv).toEqual(
      json.flatMap((entry) =>
        entry.days.map((day) => [entry.accountId, entry.email, day.date, String(day.count)]),
      ),
    );
    // The top's figures are the report's.
    const top = await get<Top>(admin.idToken, `/admin/usage/top?month=${MONTH}&limit=100`);
    const expected = json
      .filter((entry) => entry.total > 0)
      .sort((x, y) => y.total - x.total || (x.accountId < y.accountId ? -1 : 1))
      .map((entry) => ({ accountId: entry.accountId, email: entry.email, requests: entry.total }));
    expect(top.accounts).toEqual(expected);
  });

  it('says which parameter is wrong: a month that is not YYYY-MM, a foreign cursor, an unknown parameter', async () => {
    for (const [path, parameter] of [
      ['/admin/usage/top?month=2023-13', 'month'],
      ['/admin/usage/accounts?month=July', 'month'],
      ['/admin/usage/accounts?cursor=abc', 'cursor'],
      ['/admin/usage/top?limit=101', 'limit'],
      ['/admin/usage/top?from=2023-07-01', 'from'],
    ] as const) {
      const response = await userApi(admin.idToken, 'GET', path);
      expect(response.status, path).toBe(400);
      expect(errorCode(response), path).toBe('invalid_request');
      expect((response.body as { error: { details: { path: string }[] } }).error.details[0]?.path, path).toBe(
        parameter,
      );
    }
  });

  it('answers only admins: 403 for an owner, 401 without a token', async () => {
    for (const path of [
      `/admin/usage/top?month=${MONTH}`,
      `/admin/usage/accounts?month=${MONTH}`,
      `/admin/usage/accounts?month=${MONTH}&format=csv`,
      `/admin/accounts?q=adminrep-${RUN}`,
    ]) {
      const refused = await userApi(owner.idToken, 'GET', path);
      expect(refused.status, path).toBe(403);
      expect(errorCode(refused)).toBe('forbidden');
      expect(refused.text).not.toContain(RUN);
      expect((await userApi(undefined, 'GET', path)).status, path).toBe(401);
    }
  });
});

describe('accounts older than the index', () => {
  it('are put into the list by the local bootstrap, once', async () => {
    const accountId = `adminrep-${RUN}-legacy`;
    const email = `Legacy-${RUN}@example.com`;
    // As provisioned before the index: the account's own attributes only.
    await dynamo.send(
      new PutCommand({
        TableName: env[ENV.accountsTable] as string,
        Item: { accountId, email, userName: accountId, createdAt: new Date().toISOString(), firstKeyId: 'k' },
      }),
    );
    const find = async () =>
      (await get<ListPage>(admin.idToken, `/admin/accounts?q=legacy-${RUN}`)).accounts.map(
        (a) => a.accountId,
      );
    expect(await find()).toEqual([]);
    const client = dynamoDbClient(inject('aws'));
    try {
      expect(await backfillAccountDirectory(client, env[ENV.accountsTable] as string)).toBeGreaterThanOrEqual(
        1,
      );
      expect(await find()).toEqual([accountId]);
      // Again (as on every start): the account is in the list once, as it was.
      await backfillAccountDirectory(client, env[ENV.accountsTable] as string);
      expect(await find()).toEqual([accountId]);
    } finally {
      client.destroy();
    }
  });
});

describe('a sign-up is in the account list', () => {
  it('within moments, found by its address', async () => {
    const fresh = await signUpAndSignIn('adminrep-fresh');
    await eventually(
      async () => {
        const page = await get<ListPage>(
          admin.idToken,
          `/admin/accounts?q=${encodeURIComponent(fresh.email)}`,
        );
        return page.accounts.some((a) => a.email === fresh.email);
      },
      10_000,
      200,
    );
  });
});
