import { Logger } from '@aws-lambda-powertools/logger';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  ADMIN_GROUP,
  DEFAULT_PLAN_ID,
  DEFAULT_PLAN_MAX_KEYS,
  type Plan,
  periodBounds,
  SHIPPED_DEFAULT_PLAN,
} from '../../contracts/plans';
import { utcDay } from '../../contracts/usage-event';
import type { AccountStanding } from '../../services/accounts/plan-store';
import type { AccountRecord, KeyRecord } from '../../services/accounts/records';
import { createApp } from '../../services/user-api/app';
import type { UserApiKeyStore, UserApiPlanStore, UserApiUsageReader } from '../../services/user-api/env';
import type { AuthenticatedUser, TokenVerifier } from '../../services/user-api/token-verifier';
import { requestApp } from '../support/app-request';

// The admin surface of user-api through createApp(deps).request(): who gets in (a verified token
// whose groups include `admins`), and what the routes answer. The verifier and the stores are
// in-memory fakes; no network. The same against the local stack: test/integ/admin.integ.test.ts.

const NOW = new Date('2026-11-21T12:00:00Z');
const ADMIN: AuthenticatedUser = {
  userId: 'acc_admin',
  email: 'admin@example.com',
  userName: 'admin',
  authTime: NOW,
  groups: [ADMIN_GROUP],
};
const OWNER: AuthenticatedUser = {
  userId: 'acc_owner',
  email: 'owner@example.com',
  userName: 'owner',
  authTime: NOW,
};
const OTHER_GROUPS: AuthenticatedUser = {
  userId: 'acc_other',
  email: 'other@example.com',
  userName: 'other',
  authTime: NOW,
  groups: ['admins-not', 'Admins', 'support'],
};
/** The admin, signed in longer ago than changes allow (15 minutes), and exactly that long ago. */
const STALE_ADMIN: AuthenticatedUser = { ...ADMIN, authTime: new Date(NOW.getTime() - 15 * 60_000 - 1000) };
const EDGE_ADMIN: AuthenticatedUser = { ...ADMIN, authTime: new Date(NOW.getTime() - 15 * 60_000) };
const TOKENS: Record<string, AuthenticatedUser> = {
  'token-admin': ADMIN,
  'token-admin-stale': STALE_ADMIN,
  'token-admin-edge': EDGE_ADMIN,
  'token-owner': OWNER,
  'token-other': OTHER_GROUPS,
};

const verifier: TokenVerifier = {
  async verify(token) {
    const user = TOKENS[token];
    if (!user) throw new Error('invalid signature');
    return user;
  },
};

/** PlanStore's answers, in memory (the default plan, never saved, is the shipped one, as there). */
function memoryPlans() {
  const accounts = new Map<string, AccountRecord & Partial<AccountStanding>>();
  const plans = new Map<string, Plan>();
  const standingOf = (a: AccountRecord & Partial<AccountStanding>): AccountStanding => ({
    accountId: a.accountId,
    planId: a.planId ?? DEFAULT_PLAN_ID,
    status: a.status ?? 'active',
  });
  const store: UserApiPlanStore = {
    getPlan: async (planId) =>
      plans.get(planId) ?? (planId === DEFAULT_PLAN_ID ? SHIPPED_DEFAULT_PLAN : undefined),
    listPlans: async () => [...plans.values()].sort((a, b) => a.planId.localeCompare(b.planId)),
    async putPlan(planId, body, now) {
      const created = !plans.has(planId);
      const plan: Plan = { ...body, planId, updatedAt: now.toISOString() };
      plans.set(planId, plan);
      return { created, plan };
    },
    standing: async (accountId) => {
      const account = accounts.get(accountId);
      return account ? standingOf(account) : undefined;
    },
    async accountPlan(accountId) {
      const account = accounts.get(accountId);
      if (!account) return undefined;
      const standing = standingOf(account);
      const plan =
        plans.get(standing.planId) ??
        (standing.planId === DEFAULT_PLAN_ID ? SHIPPED_DEFAULT_PLAN : undefined);
      return plan ? { standing, plan } : { standing };
    },
    async assignPlan(accountId, planId) {
      const account = accounts.get(accountId);
      if (!account) return false;
      if (planId === DEFAULT_PLAN_ID) delete account.planId;
      else account.planId = planId;
      return true;
    },
    async setStatus(accountId, status) {
      const account = accounts.get(accountId);
      if (!account) return false;
      account.status = status;
      return true;
    },
    async listAccounts({ limit, cursor }) {
      const all = [...accounts.values()].sort((a, b) => a.accountId.localeCompare(b.accountId));
      const from = cursor ? all.findIndex((a) => a.accountId === cursor) + 1 : 0;
      const page = all.slice(from, from + limit);
      const last = page.at(-1);
      const more = from + limit < all.length;
      return {
        accounts: page.map((a) => ({ ...a, ...standingOf(a) })),
        ...(more && last ? { next: last.accountId } : {}),
      };
    },
  };
  return { store, accounts, plans };
}

/** The key store, for the key limit: it records the limit the route passes and applies it. */
function memoryKeys() {
  const keys: KeyRecord[] = [];
  const limits: (number | undefined)[] = [];
  const none = async () => ({ ok: false as const, reason: 'not_found' as const });
  const store: UserApiKeyStore = {
    getAccount: async () => undefined,
    provisionAccount: async () => {
      throw new Error('not used here');
    },
    listKeys: async (accountId) => keys.filter((k) => k.accountId === accountId),
    getKey: async () => undefined,
    async createKey(input) {
      limits.push(input.maxKeys);
      const live = keys.filter((k) => k.accountId === input.accountId && k.status !== 'revoked').length;
      if (input.maxKeys !== undefined && live + 1 > input.maxKeys) {
        return { ok: false, reason: 'key_limit', limit: input.maxKeys, live };
      }
      const record: KeyRecord = {
        accountId: input.accountId,
        keyId: `key_${keys.length}`,
        name: input.name,
        start: 'tg_abcd',
        status: 'active',
        createdAt: input.now.toISOString(),
      };
      keys.push(record);
      return { ok: true, value: { record, secret: { key: 'tg_secret', keyHash: 'h', start: 'tg_abcd' } } };
    },
    revealKey: none,
    rollKey: none,
    revokeKey: none,
    setTimeZone: async () => true,
  };
  return { store, keys, limits };
}

/** Counted requests per account and day. */
function memoryUsage() {
  const days = new Map<string, Map<string, number>>();
  const asked: { accountId: string; from: string; to: string }[] = [];
  const usage: UserApiUsageReader = {
    async total(scope, from, to) {
      asked.push({ accountId: scope.accountId, from, to });
      let sum = 0;
      for (const [day, count] of days.get(scope.accountId) ?? []) if (day >= from && day <= to) sum += count;
      return sum;
    },
    dailyCounts: async () => [],
    routeDailyCounts: async () => [],
    hourlyCounts: async () => [],
    keyTotals: async () => new Map(),
    // The reader's one definition of a period, over this fake's days (UsageReader.usedInPeriod).
    async usedInPeriod(accountId, period, at) {
      const { start, end } = periodBounds(period, at);
      return usage.total({ accountId }, utcDay(start.getTime()), utcDay(end.getTime() - 1));
    },
  };
  const add = (accountId: string, day: string, count: number) => {
    const byDay = days.get(accountId) ?? new Map<string, number>();
    byDay.set(day, (byDay.get(day) ?? 0) + count);
    days.set(accountId, byDay);
  };
  return { usage, add, asked };
}

let plans: ReturnType<typeof memoryPlans>;
let keys: ReturnType<typeof memoryKeys>;
let counters: ReturnType<typeof memoryUsage>;
let app: ReturnType<typeof createApp>;

const account = (accountId: string, email: string): AccountRecord => ({
  accountId,
  email,
  userName: accountId,
  createdAt: '2026-11-01T00:00:00.000Z',
  firstKeyId: `key_first_${accountId}`,
});

/** Puts an account of the fake on a plan, as PlanStore.assignPlan does. */
const onPlan = (accountId: string, planId: string) => {
  const found = plans.accounts.get(accountId);
  if (!found) throw new Error(`no account ${accountId}`);
  found.planId = planId;
};

beforeEach(() => {
  plans = memoryPlans();
  keys = memoryKeys();
  counters = memoryUsage();
  for (const a of [account(OWNER.userId, OWNER.email), account('acc_b', 'b@example.com')]) {
    plans.accounts.set(a.accountId, a);
  }
  app = createApp({
    store: keys.store,
    usage: counters.usage,
    plans: plans.store,
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

const ADMIN_ROUTES: Array<[string, string, unknown?]> = [
  ['GET', '/admin/accounts'],
  ['GET', '/admin/plans'],
  ['PUT', '/admin/plans/pro', { name: 'Pro' }],
  ['PUT', `/admin/accounts/${OWNER.userId}/plan`, { planId: 'default' }],
  ['POST', `/admin/accounts/${OWNER.userId}/suspend`],
  ['POST', `/admin/accounts/${OWNER.userId}/resume`],
  ['GET', '/admin/no-such-route'],
];

describe('user-api admin: who gets in', () => {
  it.each(ADMIN_ROUTES)('%s %s: 401 without a token or with a bad one', async (method, path, body) => {
    for (const token of [undefined, 'token-mallory']) {
      const response = await call(path, { method, body, ...(token ? { token } : {}) });
      expect(response.status, `${token}`).toBe(401);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    }
  });

  it.each(ADMIN_ROUTES)(
    "%s %s: 403 forbidden for a valid token that is not an admin's, changing nothing",
    async (method, path, body) => {
      for (const token of ['token-owner', 'token-other']) {
        const response = await call(path, { method, body, token });
        expect(response.status, token).toBe(403);
        expect(await response.json()).toEqual({
          error: { code: 'forbidden', message: expect.stringContaining('admins') },
        });
      }
      expect(plans.plans.size).toBe(0);
      expect(plans.accounts.get(OWNER.userId)?.status).toBeUndefined();
    },
  );

  it('an admin gets in; an unknown admin route is then a 404', async () => {
    expect((await call('/admin/plans', { token: 'token-admin' })).status).toBe(200);
    expect((await call('/admin/no-such-route', { token: 'token-admin' })).status).toBe(404);
  });

  it('the owner routes stay open to every signed-in user, admins included', async () => {
    expect((await call('/keys', { token: 'token-owner' })).status).toBe(200);
    expect((await call('/keys', { token: 'token-admin' })).status).toBe(200);
  });
});

describe('user-api admin: changes need a recent sign-in, as minting a key does', () => {
  const CHANGES = ADMIN_ROUTES.filter(([method]) => method !== 'GET');

  it('the changes are every admin route but the reads', () => {
    expect(CHANGES.map(([method, path]) => `${method} ${path}`)).toEqual([
      'PUT /admin/plans/pro',
      `PUT /admin/accounts/${OWNER.userId}/plan`,
      `POST /admin/accounts/${OWNER.userId}/suspend`,
      `POST /admin/accounts/${OWNER.userId}/resume`,
    ]);
  });

  it.each(CHANGES)(
    '%s %s with a sign-in older than 15 minutes: 401 reauthentication_required, nothing changed',
    async (method, path, body) => {
      plans.plans.set('pro', { planId: 'pro', name: 'Pro', updatedAt: '' });
      plans.accounts.set(OWNER.userId, { ...account(OWNER.userId, OWNER.email), status: 'suspended' });
      const before = JSON.stringify([...plans.plans, ...plans.accounts]);
      const response = await call(path, { token: 'token-admin-stale', method, body });
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe(
        'Bearer error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age="900"',
      );
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(await response.json()).toEqual({
        error: {
          code: 'reauthentication_required',
          message:
            'Changing plans or accounts needs a sign-in within the last 15 minutes: sign in again, then retry',
        },
      });
      expect(JSON.stringify([...plans.plans, ...plans.accounts])).toBe(before);
    },
  );

  it('a bad body from a stale sign-in is refused for the sign-in, before the body is read', async () => {
    const response = await call('/admin/plans/pro', {
      token: 'token-admin-stale',
      method: 'PUT',
      body: { name: '' },
    });
    expect(response.status).toBe(401);
    expect(plans.plans.size).toBe(0);
  });

  it('the same token still reads; a non-admin is still a 403; a sign-in exactly 15 minutes old still changes', async () => {
    expect((await call('/admin/accounts', { token: 'token-admin-stale' })).status).toBe(200);
    expect((await call('/admin/plans', { token: 'token-admin-stale' })).status).toBe(200);
    expect(
      (await call('/admin/plans/pro', { token: 'token-owner', method: 'PUT', body: { name: 'Pro' } })).status,
    ).toBe(403);
    const edge = await call('/admin/plans/pro', {
      token: 'token-admin-edge',
      method: 'PUT',
      body: { name: 'Pro' },
    });
    expect(edge.status).toBe(201);
    const suspended = await call(`/admin/accounts/${OWNER.userId}/suspend`, {
      token: 'token-admin-edge',
      method: 'POST',
    });
    expect(suspended.status).toBe(200);
    expect(plans.accounts.get(OWNER.userId)?.status).toBe('suspended');
  });

  it("the OpenAPI document says so on each change's 401", async () => {
    const document = (await (await app.request('/openapi.json')).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>>;
    };
    const said = (path: string, method: string) =>
      document.paths[path]?.[method]?.responses['401']?.description ?? '';
    for (const [path, method] of [
      ['/admin/plans/{planId}', 'put'],
      ['/admin/accounts/{accountId}/plan', 'put'],
      ['/admin/accounts/{accountId}/suspend', 'post'],
      ['/admin/accounts/{accountId}/resume', 'post'],
    ] as const) {
      expect(said(path, method), `${method} ${path}`).toContain('reauthentication_required');
    }
    expect(said('/admin/accounts', 'get')).not.toContain('reauthentication_required');
  });
});

describe('user-api admin: plans', () => {
  it('PUT creates (201) then replaces (200) a plan as a whole; GET lists it beside the shipped default', async () => {
    const body = {
      name: 'Pro',
      rateLimit: { requests: 10, perSeconds: 1 },
      quota: { requests: 1000, period: 'month' },
      maxKeys: 5,
    };
    const created = await call('/admin/plans/pro', { token: 'token-admin', method: 'PUT', body });
    expect(created.status).toBe(201);
    expect(await created.json()).toEqual({
      ...body,
      // Scoped to the account unless the plan says otherwise.
      rateLimit: { requests: 10, perSeconds: 1, scope: 'account' },
      planId: 'pro',
      updatedAt: NOW.toISOString(),
    });
    expect(created.headers.get('cache-control')).toBe('no-store');

    const replaced = await call('/admin/plans/pro', {
      token: 'token-admin',
      method: 'PUT',
      body: { name: 'Pro 2' },
    });
    expect(replaced.status).toBe(200);
    expect(await replaced.json()).toEqual({ name: 'Pro 2', planId: 'pro', updatedAt: NOW.toISOString() });

    const listed = await call('/admin/plans', { token: 'token-admin' });
    expect(await listed.json()).toEqual({
      plans: [
        { planId: 'default', name: 'Default', maxKeys: DEFAULT_PLAN_MAX_KEYS },
        { name: 'Pro 2', planId: 'pro', updatedAt: NOW.toISOString() },
      ],
    });
  });

  it('refuses a bad plan id or body with a 400 naming the field', async () => {
    const cases: Array<[string, unknown, string]> = [
      ['/admin/plans/Pro', { name: 'x' }, 'planId'],
      ['/admin/plans/pro', { name: '' }, 'name'],
      ['/admin/plans/pro', { name: 'x', quota: { requests: 5, period: 'week' } }, 'quota.period'],
      ['/admin/plans/pro', { name: 'x', maxKeys: 0 }, 'maxKeys'],
      ['/admin/plans/pro', { name: 'x', credits: 5 }, '(body)'],
    ];
    for (const [path, body, field] of cases) {
      const response = await call(path, { token: 'token-admin', method: 'PUT', body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      const answer = (await response.json()) as { error: { code: string; details: { path: string }[] } };
      expect(answer.error.code).toBe('invalid_request');
      expect(answer.error.details.map((d) => d.path)).toContain(field);
    }
    expect(plans.plans.size).toBe(0);
  });
});

describe('user-api admin: accounts', () => {
  it("lists accounts with plan, status and this period's usage: the quota's period, else the month", async () => {
    plans.plans.set('daily', {
      planId: 'daily',
      name: 'Daily',
      quota: { requests: 100, period: 'day' },
      updatedAt: '',
    });
    onPlan('acc_b', 'daily');
    counters.add(OWNER.userId, '2026-10-31', 1000); // last month
    counters.add(OWNER.userId, '2026-11-01', 3);
    counters.add(OWNER.userId, '2026-11-21', 4);
    counters.add('acc_b', '2026-11-20', 50); // yesterday
    counters.add('acc_b', '2026-11-21', 7);

    const response = await call('/admin/accounts', { token: 'token-admin' });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      accounts: [
        {
          accountId: 'acc_b',
          email: 'b@example.com',
          createdAt: '2026-11-01T00:00:00.000Z',
          planId: 'daily',
          status: 'active',
          usage: {
            period: 'day',
            used: 7,
            limit: 100,
            periodStart: '2026-11-21T00:00:00.000Z',
            periodEnd: '2026-11-22T00:00:00.000Z',
          },
        },
        {
          accountId: OWNER.userId,
          email: OWNER.email,
          createdAt: '2026-11-01T00:00:00.000Z',
          planId: 'default',
          status: 'active',
          usage: {
            period: 'month',
            used: 7,
            periodStart: '2026-11-01T00:00:00.000Z',
            periodEnd: '2026-12-01T00:00:00.000Z',
          },
        },
      ],
      asOf: NOW.toISOString(),
    });
    expect(counters.asked).toEqual(
      expect.arrayContaining([
        { accountId: 'acc_b', from: '2026-11-21', to: '2026-11-21' },
        { accountId: OWNER.userId, from: '2026-11-01', to: '2026-11-30' },
      ]),
    );
  });

  it('pages with limit and cursor; a bad limit is a 400', async () => {
    const first = (await (await call('/admin/accounts?limit=1', { token: 'token-admin' })).json()) as {
      accounts: { accountId: string }[];
      next?: string;
    };
    expect(first.accounts.map((a) => a.accountId)).toEqual(['acc_b']);
    expect(first.next).toBe('acc_b');
    const second = (await (
      await call(`/admin/accounts?limit=1&cursor=${first.next}`, { token: 'token-admin' })
    ).json()) as { accounts: { accountId: string }[]; next?: string };
    expect(second.accounts.map((a) => a.accountId)).toEqual([OWNER.userId]);
    expect(second.next).toBeUndefined();
    for (const query of ['limit=0', 'limit=101', 'limit=x', 'other=1']) {
      expect((await call(`/admin/accounts?${query}`, { token: 'token-admin' })).status, query).toBe(400);
    }
  });

  it('assigns a saved plan or the default; an unknown plan or account is a 404', async () => {
    plans.plans.set('pro', { planId: 'pro', name: 'Pro', updatedAt: '' });
    const assign = (accountId: string, planId: string) =>
      call(`/admin/accounts/${accountId}/plan`, { token: 'token-admin', method: 'PUT', body: { planId } });

    const assigned = await assign(OWNER.userId, 'pro');
    expect(assigned.status).toBe(200);
    expect(await assigned.json()).toEqual({ accountId: OWNER.userId, planId: 'pro', status: 'active' });
    expect(await (await assign(OWNER.userId, 'default')).json()).toEqual({
      accountId: OWNER.userId,
      planId: 'default',
      status: 'active',
    });

    const noPlan = await assign(OWNER.userId, 'gold');
    expect(noPlan.status).toBe(404);
    expect(await noPlan.json()).toEqual({ error: { code: 'not_found', message: 'No such plan' } });
    const noAccount = await assign('acc_nobody', 'pro');
    expect(await noAccount.json()).toEqual({ error: { code: 'not_found', message: 'No such account' } });
    expect((await assign(OWNER.userId, 'Not A Plan')).status).toBe(400);
  });

  it('suspends and resumes, answering the standing; an unknown account is a 404', async () => {
    const suspended = await call(`/admin/accounts/${OWNER.userId}/suspend`, {
      token: 'token-admin',
      method: 'POST',
    });
    expect(suspended.status).toBe(200);
    expect(await suspended.json()).toEqual({
      accountId: OWNER.userId,
      planId: 'default',
      status: 'suspended',
    });
    const resumed = await call(`/admin/accounts/${OWNER.userId}/resume`, {
      token: 'token-admin',
      method: 'POST',
    });
    expect(await resumed.json()).toEqual({ accountId: OWNER.userId, planId: 'default', status: 'active' });

    for (const id of ['acc_nobody', 'x'.repeat(129)]) {
      const response = await call(`/admin/accounts/${id}/suspend`, { token: 'token-admin', method: 'POST' });
      expect(response.status, id).toBe(404);
      expect(await response.json()).toEqual({ error: { code: 'not_found', message: 'No such account' } });
    }
  });

  it("acts on the account in the path, never on the admin's own", async () => {
    plans.accounts.set(ADMIN.userId, account(ADMIN.userId, ADMIN.email));
    await call('/admin/accounts/acc_b/suspend', { token: 'token-admin', method: 'POST' });
    expect(plans.accounts.get('acc_b')?.status).toBe('suspended');
    expect(plans.accounts.get(ADMIN.userId)?.status).toBeUndefined();
  });
});

describe('user-api: POST /keys under the plan', () => {
  it("passes the plan's maxKeys to the store and answers its refusal 409 key_limit_reached, naming the limit", async () => {
    plans.plans.set('two', { planId: 'two', name: 'Two', maxKeys: 2, updatedAt: '' });
    onPlan(OWNER.userId, 'two');
    expect((await call('/keys', { token: 'token-owner', method: 'POST', body: {} })).status).toBe(201);
    expect((await call('/keys', { token: 'token-owner', method: 'POST', body: {} })).status).toBe(201);
    const refused = await call('/keys', { token: 'token-owner', method: 'POST', body: {} });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toEqual({
      error: {
        code: 'key_limit_reached',
        message: expect.stringContaining('at most 2 live keys'),
        details: { limit: 2, live: 2 },
      },
    });
    expect(keys.limits).toEqual([2, 2, 2]);
  });

  it('the default plan, never saved, caps keys at 25; saved without a cap, it sets none', async () => {
    expect((await call('/keys', { token: 'token-owner', method: 'POST', body: {} })).status).toBe(201);
    expect(keys.limits).toEqual([25]);
    for (let i = 1; i < DEFAULT_PLAN_MAX_KEYS; i++) {
      expect((await call('/keys', { token: 'token-owner', method: 'POST', body: {} })).status).toBe(201);
    }
    const refused = await call('/keys', { token: 'token-owner', method: 'POST', body: {} });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: { details: unknown } }).error.details).toEqual({
      limit: 25,
      live: 25,
    });
    // The owner configures it by saving the default plan.
    await call('/admin/plans/default', { token: 'token-admin', method: 'PUT', body: { name: 'Free' } });
    expect((await call('/keys', { token: 'token-owner', method: 'POST', body: {} })).status).toBe(201);
    expect(keys.limits.at(-1)).toBeUndefined();
  });

  it('an account that does not exist yet is a 404', async () => {
    const nobody = await call('/keys', { token: 'token-admin', method: 'POST', body: {} });
    expect(nobody.status).toBe(404);
  });
});
