import { Logger } from '@aws-lambda-powertools/logger';
import { beforeEach, describe, expect, it } from 'vitest';
import { ENV, MAX_ROLL_GRACE_MS } from '../../contracts/config';
import { type AccountStatus, type Plan, periodBounds } from '../../contracts/plans';
import { utcDay } from '../../contracts/usage-event';
import { generateApiKey, isWellFormedApiKey } from '../../services/accounts/api-key';
import type { AccountRecord, KeyRecord } from '../../services/accounts/records';
import type { DayCount, KeyTotals } from '../../services/usage/usage-reader';
import { createApp } from '../../services/user-api/app';
import { loadUserApiConfig } from '../../services/user-api/config';
import type { UserApiKeyStore, UserApiPlanStore, UserApiUsageReader } from '../../services/user-api/env';
import type { AuthenticatedUser, TokenVerifier } from '../../services/user-api/token-verifier';
import { requestApp } from '../support/app-request';

// user-api as a caller sees it, through createApp(deps).request(): no network, no environment. The
// token verifier and the stores are in-memory fakes; what is asserted is what an owner would get.

const NOW = new Date('2026-11-21T12:00:00Z');
const ALICE: AuthenticatedUser = {
  userId: 'acc_alice',
  email: 'alice@example.com',
  userName: 'alice',
  authTime: NOW,
};
const NEWCOMER: AuthenticatedUser = {
  userId: 'acc_new',
  email: 'new@example.com',
  userName: 'new',
  authTime: NOW,
};
const OWNER_ADMIN: AuthenticatedUser = {
  userId: 'acc_admin',
  email: 'admin@example.com',
  userName: 'admin',
  authTime: NOW,
  groups: ['admins'],
};
/** Alice, signed in a second longer ago than the 15 minutes minting allows. */
const ALICE_STALE: AuthenticatedUser = { ...ALICE, authTime: new Date(NOW.getTime() - 15 * 60_000 - 1000) };
const TOKENS: Record<string, AuthenticatedUser> = {
  'token-alice': ALICE,
  'token-alice-stale': ALICE_STALE,
  'token-alice-edge': { ...ALICE, authTime: new Date(NOW.getTime() - 15 * 60_000) },
  'token-newcomer': NEWCOMER,
  'token-admin': OWNER_ADMIN,
};

const verifier: TokenVerifier = {
  async verify(token) {
    const user = TOKENS[token];
    if (!user) throw new Error('invalid signature');
    return user;
  },
};

/** Accounts and keys in memory, with KeyStore's answers for the operations the routes use. */
function memoryStore() {
  const accounts = new Map<string, AccountRecord>();
  const keys: KeyRecord[] = [];
  let ids = 0;
  const store: UserApiKeyStore = {
    async getAccount(accountId) {
      return accounts.get(accountId);
    },
    async provisionAccount(input) {
      const existing = accounts.get(input.accountId);
      if (existing) return { created: false, account: existing };
      const account: AccountRecord = {
        accountId: input.accountId,
        email: input.email,
        userName: input.userName,
        createdAt: input.now.toISOString(),
        firstKeyId: `key_first_${input.accountId}`,
      };
      accounts.set(account.accountId, account);
      return { created: true, account };
    },
    async listKeys(accountId) {
      return keys.filter((k) => k.accountId === accountId);
    },
    async getKey(accountId, keyId) {
      return keys.find((k) => k.accountId === accountId && k.keyId === keyId);
    },
    async createKey(input) {
      if (!accounts.has(input.accountId)) return { ok: false, reason: 'not_found' };
      const secret = generateApiKey('tg');
      const record: KeyRecord = {
        accountId: input.accountId,
        keyId: `key_${ids++}`,
        name: input.name,
        start: secret.start,
        keyHash: secret.keyHash,
        status: 'active',
        createdAt: input.now.toISOString(),
      };
      keys.push(record);
      return { ok: true, value: { record, secret } };
    },
    async revealKey() {
      return { ok: false, reason: 'not_found' };
    },
    async rollKey() {
      return { ok: false, reason: 'not_found' };
    },
    async revokeKey() {
      return { ok: false, reason: 'not_found' };
    },
    async setTimeZone() {
      return true;
    },
  };
  return { store, accounts, keys };
}

/** Metering's counters in memory: day counts per key and per account, totals per key. */
function memoryUsage() {
  const byScope = new Map<string, DayCount[]>();
  const totals = new Map<string, KeyTotals>();
  const totalCalls: { scope: { accountId: string; keyId?: string }; from: string; to: string }[] = [];
  const usage: UserApiUsageReader = {
    async dailyCounts(scope, from, to) {
      const id = scope.keyId !== undefined ? `key:${scope.keyId}` : `account:${scope.accountId}`;
      return (byScope.get(id) ?? []).filter((d) => d.date >= from && d.date <= to);
    },
    async keyTotals() {
      return new Map(totals);
    },
    // Per-route usage has its own tests (user-api-openapi.test.ts); here no counter has routes.
    async routeDailyCounts() {
      return [];
    },
    // Hours and time zones have their own tests (usage-analytics.integ.test.ts); here every answer is in UTC days.
    async hourlyCounts() {
      return [];
    },
    async total(scope, from, to) {
      totalCalls.push({ scope, from, to });
      const days = await usage.dailyCounts(scope, from, to);
      return days.reduce((sum, d) => sum + d.count, 0);
    },
    // The reader's one definition of a period, over this fake's days (UsageReader.usedInPeriod).
    async usedInPeriod(accountId, period, at) {
      const { start, end } = periodBounds(period, at);
      return usage.total({ accountId }, utcDay(start.getTime()), utcDay(end.getTime() - 1));
    },
  };
  return { usage, byScope, totals, totalCalls };
}

/**
 * Each account's plan and status, as PlanStore.accountPlan answers them: on the default plan, never
 * saved (no limits), unless a test assigns one (the admin routes have their own tests).
 */
function memoryPlans(accounts: ReadonlyMap<string, AccountRecord>) {
  const plans = new Map<string, Plan>();
  const assigned = new Map<string, { planId: string; status: AccountStatus }>();
  const unused = async (): Promise<never> => {
    throw new Error('not used here');
  };
  const store: UserApiPlanStore = {
    accountPlan: async (accountId) => {
      if (!accounts.has(accountId)) return undefined;
      const { planId, status } = assigned.get(accountId) ?? { planId: 'default', status: 'active' };
      const plan = plans.get(planId);
      return plan
        ? { standing: { accountId, planId, status }, plan }
        : { standing: { accountId, planId, status } };
    },
    standing: unused,
    getPlan: unused,
    listPlans: unused,
    putPlan: unused,
    assignPlan: unused,
    setStatus: unused,
    listAccounts: unused,
  };
  return { store, plans, assigned };
}

let memory: ReturnType<typeof memoryStore>;
let counters: ReturnType<typeof memoryUsage>;
let terms: ReturnType<typeof memoryPlans>;
let app: ReturnType<typeof createApp>;

beforeEach(async () => {
  memory = memoryStore();
  counters = memoryUsage();
  terms = memoryPlans(memory.accounts);
  await memory.store.provisionAccount({ ...ALICE, accountId: ALICE.userId, now: new Date('2026-11-01') });
  app = createApp({
    store: memory.store,
    usage: counters.usage,
    plans: terms.store,
    verifier,
    clock: { now: () => NOW },
    logger: new Logger({ serviceName: 'user-api-test', logLevel: 'SILENT' }),
    allowedOrigins: [],
    rollGraceMs: 24 * 3600_000,
    signInMaxAgeMs: 15 * 60_000,
  });
});

const call = (path: string, init: { token?: string; method?: string; body?: unknown } = {}) =>
  requestApp(app, path, init);

const ROUTES = [
  ['GET', '/me'],
  ['GET', '/me/plan'],
  ['GET', '/keys'],
  ['POST', '/keys'],
  ['GET', '/usage'],
  ['DELETE', '/keys/key_0'],
] as const;

describe('user-api: authentication', () => {
  it.each(ROUTES)('%s %s without a token: 401 in the one error shape', async (method, path) => {
    const response = await call(path, { method });
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({
      error: { code: 'unauthorized', message: expect.stringContaining('Authorization: Bearer') },
    });
  });

  it('answers every bad token on every route with the same 401 and the same body', async () => {
    const bodies = new Set<string>();
    for (const [method, path] of ROUTES) {
      for (const authorization of ['Bearer not-a-token', 'Bearer token-mallory', 'bearer  x.y.z ']) {
        const response = await app.request(path, { method, headers: { authorization } });
        expect(response.status, `${method} ${path} ${authorization}`).toBe(401);
        bodies.add(await response.text());
      }
    }
    expect([...bodies].map((b) => JSON.parse(b))).toEqual([
      { error: { code: 'unauthorized', message: 'The token is invalid or has expired; sign in again' } },
    ]);
  });

  it('a malformed Authorization header counts as no token', async () => {
    for (const authorization of ['token-alice', 'Basic dG9rZW4tYWxpY2U=', 'Bearer']) {
      const response = await app.request('/me', { headers: { authorization } });
      expect(response.status, authorization).toBe(401);
      expect(((await response.json()) as { error: { message: string } }).error.message).toContain(
        'Sign in first',
      );
    }
  });
});

describe('user-api: GET /me', () => {
  it('answers the signed-in owner with their account', async () => {
    const response = await call('/me', { token: 'token-alice' });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      userId: ALICE.userId,
      email: ALICE.email,
      createdAt: '2026-11-01T00:00:00.000Z',
      isAdmin: false,
      // No zone chosen: the deployment's (UTC unless TOLLGATE_TIMEZONE says another).
      timeZone: 'UTC',
    });
  });

  it("says whether the user is one of the owner's admins, from the token's groups", async () => {
    const response = await call('/me', { token: 'token-admin' });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ userId: OWNER_ADMIN.userId, isAdmin: true });
    // The hint grants nothing: the admin routes decide from the token themselves.
    expect((await call('/admin/plans', { token: 'token-alice' })).status).toBe(403);
  });

  it('finishes the provisioning of a signed-in user whose sign-up trigger never ran', async () => {
    expect(memory.accounts.has(NEWCOMER.userId)).toBe(false);
    const response = await call('/me', { token: 'token-newcomer' });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      userId: NEWCOMER.userId,
      email: NEWCOMER.email,
      createdAt: NOW.toISOString(),
      isAdmin: false,
      timeZone: 'UTC',
    });
    expect(memory.accounts.get(NEWCOMER.userId)?.email).toBe(NEWCOMER.email);
  });
});

describe('user-api: GET /me/plan', () => {
  const savedPlan = (planId: string, body: Omit<Plan, 'planId' | 'updatedAt'>): Plan => {
    const plan = { ...body, planId, updatedAt: '2026-11-01T00:00:00.000Z' };
    terms.plans.set(planId, plan);
    return plan;
  };
  const keyWith = (keyId: string, status: KeyRecord['status'], expiresAt?: string): KeyRecord => ({
    accountId: ALICE.userId,
    keyId,
    name: keyId,
    start: 'tg_abcd',
    keyHash: `hash-${keyId}`,
    status,
    createdAt: '2026-11-01T00:00:00.000Z',
    ...(expiresAt ? { expiresAt } : {}),
  });

  it('an account without a plan is on the default plan, which has no limits while never saved', async () => {
    const response = await call('/me/plan', { token: 'token-alice' });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.json()).toEqual({
      planId: 'default',
      name: 'Default',
      status: 'active',
      asOf: NOW.toISOString(),
    });
    // Nothing to count against: no counter is read.
    expect(counters.totalCalls).toEqual([]);
  });

  it("answers each limit of the caller's plan with what is used and left, and when the quota resets", async () => {
    savedPlan('small', {
      name: 'Small',
      quota: { requests: 20, period: 'day' },
      rateLimit: { requests: 10, perSeconds: 1, scope: 'key' },
      maxKeys: 5,
    });
    terms.assigned.set(ALICE.userId, { planId: 'small', status: 'active' });
    counters.byScope.set(`account:${ALICE.userId}`, [
      { date: '2026-11-20', count: 50 }, // yesterday: another period
      { date: '2026-11-21', count: 13 },
    ]);
    memory.keys.push(
      keyWith('key_active', 'active'),
      keyWith('key_pending', 'pending'),
      keyWith('key_grace', 'expiring', '2026-11-21T13:00:00.000Z'),
      keyWith('key_ended', 'expiring', '2026-11-21T11:00:00.000Z'),
      keyWith('key_revoked', 'revoked'),
      { ...keyWith('key_bob', 'active'), accountId: 'acc_bob' },
    );

    const response = await call('/me/plan', { token: 'token-alice' });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      planId: 'small',
      name: 'Small',
      status: 'active',
      quota: { requests: 20, period: 'day', used: 13, remaining: 7, resetsAt: '2026-11-22T00:00:00.000Z' },
      rateLimit: { requests: 10, perSeconds: 1, scope: 'key' },
      // Active, pending and expiring within its grace; not the expired, the revoked or Bob's.
      maxKeys: { limit: 5, live: 3 },
      asOf: NOW.toISOString(),
    });
    // The account as a whole, over the quota's UTC day: what the gate counts.
    expect(counters.totalCalls).toEqual([
      { scope: { accountId: ALICE.userId }, from: '2026-11-21', to: '2026-11-21' },
    ]);
  });

  it('a monthly quota counts the UTC calendar month and resets on the first; nothing left is 0, never less', async () => {
    savedPlan('monthly', { name: 'Monthly', quota: { requests: 30, period: 'month' } });
    terms.assigned.set(ALICE.userId, { planId: 'monthly', status: 'active' });
    counters.byScope.set(`account:${ALICE.userId}`, [
      { date: '2026-10-31', count: 100 },
      { date: '2026-11-01', count: 30 },
      { date: '2026-11-21', count: 5 },
    ]);
    const answer = await (await call('/me/plan', { token: 'token-alice' })).json();
    expect(answer).toEqual({
      planId: 'monthly',
      name: 'Monthly',
      status: 'active',
      quota: { requests: 30, period: 'month', used: 35, remaining: 0, resetsAt: '2026-12-01T00:00:00.000Z' },
      asOf: NOW.toISOString(),
    });
    expect(counters.totalCalls.map(({ from, to }) => `${from}..${to}`)).toEqual(['2026-11-01..2026-11-30']);
  });

  it("shows a suspended account as such, under the default plan's saved name", async () => {
    savedPlan('default', { name: 'Free', rateLimit: { requests: 5, perSeconds: 60, scope: 'account' } });
    terms.assigned.set(ALICE.userId, { planId: 'default', status: 'suspended' });
    expect(await (await call('/me/plan', { token: 'token-alice' })).json()).toEqual({
      planId: 'default',
      name: 'Free',
      status: 'suspended',
      rateLimit: { requests: 5, perSeconds: 60, scope: 'account' },
      asOf: NOW.toISOString(),
    });
  });

  it('is a 404 for a user without an account yet, until GET /me provisions it', async () => {
    const before = await call('/me/plan', { token: 'token-newcomer' });
    expect(before.status).toBe(404);
    expect(await before.json()).toEqual({ error: { code: 'not_found', message: 'No such account' } });
    await call('/me', { token: 'token-newcomer' });
    const after = await call('/me/plan', { token: 'token-newcomer' });
    expect(after.status).toBe(200);
    expect(await after.json()).toMatchObject({ planId: 'default', name: 'Default', status: 'active' });
  });
});

describe('user-api: keys', () => {
  it('POST /keys answers 201 with the secret, once; GET /keys lists the key without it', async () => {
    const response = await call('/keys', { token: 'token-alice', method: 'POST', body: { name: 'ci' } });
    expect(response.status).toBe(201);
    const issued = (await response.json()) as Record<string, string>;
    expect(Object.keys(issued).sort()).toEqual(['createdAt', 'id', 'key', 'name', 'start']);
    expect(issued).toMatchObject({ name: 'ci', createdAt: NOW.toISOString() });
    expect(isWellFormedApiKey(issued.key ?? '', 'tg')).toBe(true);
    expect(issued.key?.startsWith(issued.start ?? '-')).toBe(true);

    counters.totals.set(issued.id ?? '', { count: 12, lastUsedAt: '2026-11-21T11:59:00.000Z' });
    const listed = await call('/keys', { token: 'token-alice' });
    expect(listed.status).toBe(200);
    const text = await listed.text();
    expect(text).not.toContain(issued.key);
    expect(JSON.parse(text)).toEqual({
      keys: [
        {
          id: issued.id,
          name: 'ci',
          start: issued.start,
          status: 'active',
          createdAt: NOW.toISOString(),
          count: 12,
          lastUsedAt: '2026-11-21T11:59:00.000Z',
        },
      ],
    });
  });

  it('no answer of /keys, secrets included, may be stored by a cache', async () => {
    const created = await call('/keys', { token: 'token-alice', method: 'POST', body: { name: 'secret' } });
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    expect((await call('/keys', { token: 'token-alice' })).headers.get('cache-control')).toBe('no-store');
  });

  it('POST /keys without a name gets the default name; a bad body is a 400 naming the field', async () => {
    const unnamed = await call('/keys', { token: 'token-alice', method: 'POST', body: {} });
    expect(unnamed.status).toBe(201);
    expect(((await unnamed.json()) as { name: string }).name).toBe('API key');

    for (const body of [{ name: '' }, { name: 'x'.repeat(65) }, { name: 'ok', admin: true }]) {
      const response = await call('/keys', { token: 'token-alice', method: 'POST', body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      const answer = (await response.json()) as { error: { code: string; details: unknown[] } };
      expect(answer.error.code).toBe('invalid_request');
      expect(answer.error.details.length).toBeGreaterThan(0);
    }
  });

  it('a roll may give the old key at most 7 days of grace; a longer one is a 400', async () => {
    const tooLong = await call('/keys/key_0/roll', {
      token: 'token-alice',
      method: 'POST',
      body: { gracePeriodSeconds: 604_801 },
    });
    expect(tooLong.status).toBe(400);
    const answer = (await tooLong.json()) as { error: { code: string; details: { path: string }[] } };
    expect(answer.error.code).toBe('invalid_request');
    expect(answer.error.details.map((d) => d.path)).toEqual(['gracePeriodSeconds']);
    // A week passes validation (the fake store then knows no such key).
    const week = await call('/keys/key_0/roll', {
      token: 'token-alice',
      method: 'POST',
      body: { gracePeriodSeconds: 604_800 },
    });
    expect(week.status).toBe(404);
  });

  it('keys of other accounts do not exist for the caller', async () => {
    const created = await call('/keys', { token: 'token-alice', method: 'POST', body: { name: 'mine' } });
    const { id } = (await created.json()) as { id: string };
    await call('/me', { token: 'token-newcomer' });
    expect(await (await call('/keys', { token: 'token-newcomer' })).json()).toEqual({ keys: [] });
    expect((await call(`/usage?keyId=${id}`, { token: 'token-newcomer' })).status).toBe(404);
  });
});

describe('user-api: GET /usage', () => {
  interface Usage {
    from: string;
    to: string;
    keyId?: string;
    days: DayCount[];
    total: number;
    asOf: string;
  }

  it('answers every day of the range, zeros included, with the total and asOf', async () => {
    counters.byScope.set(`account:${ALICE.userId}`, [
      { date: '2026-01-31', count: 5 },
      { date: '2026-02-02', count: 7 },
      { date: '2026-02-03', count: 100 }, // outside the range
    ]);
    const response = await call('/usage?from=2026-01-30&to=2026-02-02', { token: 'token-alice' });
    expect(response.status).toBe(200);
    const days = [
      { date: '2026-01-30', count: 0 },
      { date: '2026-01-31', count: 5 },
      { date: '2026-02-01', count: 0 },
      { date: '2026-02-02', count: 7 },
    ];
    expect((await response.json()) as Usage).toEqual({
      from: '2026-01-30',
      to: '2026-02-02',
      tz: 'UTC',
      granularity: 'day',
      days,
      // The same days as cells, as every usage answer has them (an hour or month answer too).
      series: days.map(({ date, count }) => ({ start: `${date}T00:00:00Z`, count })),
      total: 12,
      asOf: NOW.toISOString(),
    });
  });

  it('defaults to the last 30 days, ending today (UTC); a key of the caller narrows it to that key', async () => {
    const created = await call('/keys', { token: 'token-alice', method: 'POST', body: { name: 'k' } });
    const { id } = (await created.json()) as { id: string };
    counters.byScope.set(`key:${id}`, [{ date: '2026-11-21', count: 3 }]);

    const all = (await (await call('/usage', { token: 'token-alice' })).json()) as Usage;
    expect(all.days).toHaveLength(30);
    expect(all.from).toBe('2026-10-23');
    expect(all.to).toBe('2026-11-21');
    expect(all.total).toBe(0);

    const one = (await (await call(`/usage?keyId=${id}`, { token: 'token-alice' })).json()) as Usage;
    expect(one.keyId).toBe(id);
    expect(one.days.at(-1)).toEqual({ date: '2026-11-21', count: 3 });
    expect(one.total).toBe(3);
    expect((await call('/usage?keyId=key_unknown', { token: 'token-alice' })).status).toBe(404);
  });

  it.each([
    ['a day that does not exist', '?from=2026-02-30&to=2026-03-01'],
    ['from after to', '?from=2026-03-02&to=2026-03-01'],
    ['more than 366 days', '?from=2024-01-01&to=2025-12-31'],
    ['not a date', '?from=yesterday'],
    ['an empty keyId', '?keyId='],
    ['an unknown parameter', '?unknown=1'],
  ])('refuses %s with 400 invalid_request', async (_, query) => {
    const response = await call(`/usage${query}`, { token: 'token-alice' });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('invalid_request');
  });
});

describe('user-api: configuration', () => {
  const env = {
    TOLLGATE_ACCOUNTS_TABLE: 'accounts',
    TOLLGATE_KEYS_TABLE: 'keys',
    TOLLGATE_USAGE_TABLE: 'usage',
    TOLLGATE_PLANS_TABLE: 'plans',
    TOLLGATE_JWT_ISSUER: 'http://127.0.0.1:9/pool',
    TOLLGATE_JWKS_URI: 'http://127.0.0.1:9/pool/.well-known/jwks.json',
    TOLLGATE_USER_POOL_CLIENT_ID: 'client',
  };

  it('defaults the recent sign-in of minting to 15 minutes; refuses less than a second or more than a day', () => {
    expect(loadUserApiConfig(env)[ENV.signInMaxAgeMs]).toBe(15 * 60_000);
    expect(loadUserApiConfig({ ...env, [ENV.signInMaxAgeMs]: '5000' })[ENV.signInMaxAgeMs]).toBe(5000);
    for (const bad of ['999', String(24 * 3600_000 + 1), 'soon']) {
      expect(() => loadUserApiConfig({ ...env, [ENV.signInMaxAgeMs]: bad }), bad).toThrow(ENV.signInMaxAgeMs);
    }
  });

  it('defaults the roll grace to 24 h and refuses more than 7 days at cold start', () => {
    expect(loadUserApiConfig(env)[ENV.rollGraceMs]).toBe(24 * 3600_000);
    expect(loadUserApiConfig({ ...env, [ENV.rollGraceMs]: String(MAX_ROLL_GRACE_MS) })[ENV.rollGraceMs]).toBe(
      7 * 24 * 3600_000,
    );
    expect(() => loadUserApiConfig({ ...env, [ENV.rollGraceMs]: String(MAX_ROLL_GRACE_MS + 1) })).toThrow(
      ENV.rollGraceMs,
    );
  });
});

describe('user-api: minting needs a recent sign-in', () => {
  it.each([
    ['POST', '/keys', { name: 'late' }],
    ['POST', '/keys/key_first_acc_alice/reveal', undefined],
    ['POST', '/keys/key_0/roll', {}],
  ] as const)(
    '%s %s with a sign-in older than 15 minutes: 401 reauthentication_required, nothing minted',
    async (method, path, body) => {
      const response = await call(path, { token: 'token-alice-stale', method, body });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe(
        'Bearer error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age="900"',
      );
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(await response.json()).toEqual({
        error: {
          code: 'reauthentication_required',
          message:
            'Creating, revealing or rolling a key needs a sign-in within the last 15 minutes: sign in again, then retry',
        },
      });
      expect(memory.keys).toEqual([]);
    },
  );

  it('the same token still reads and revokes; a sign-in exactly 15 minutes old still mints', async () => {
    expect((await call('/keys', { token: 'token-alice-stale' })).status).toBe(200);
    expect((await call('/me', { token: 'token-alice-stale' })).status).toBe(200);
    // The fake store knows no key to revoke: a 404, not a refusal for the sign-in's age.
    expect((await call('/keys/key_9', { token: 'token-alice-stale', method: 'DELETE' })).status).toBe(404);
    const edge = await call('/keys', { token: 'token-alice-edge', method: 'POST', body: {} });
    expect(edge.status).toBe(201);
  });
});

describe('user-api: caching', () => {
  it('no answer may be stored, errors and unknown routes included; the OpenAPI document is revalidated', async () => {
    for (const [path, token, status] of [
      ['/keys', undefined, 401],
      ['/keys', 'token-alice', 200],
      ['/usage?from=2026-13-01', 'token-alice', 400],
      ['/nope', undefined, 404],
    ] as const) {
      const response = await call(path, token ? { token } : {});
      expect(response.status, path).toBe(status);
      expect(response.headers.get('cache-control'), path).toBe('no-store');
    }
    const document = await app.request('/openapi.json');
    expect(document.status).toBe(200);
    expect(document.headers.get('cache-control')).toBe('no-cache');
  });
});

describe('user-api: routes', () => {
  it('an unknown route is a 404 in the one error shape', async () => {
    const response = await app.request('/nope');
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: 'not_found', message: 'No such route' } });
  });
});
