import { Logger } from '@aws-lambda-powertools/logger';
import { Validator } from '@seriousme/openapi-schema-validator';
import { beforeEach, describe, expect, it } from 'vitest';
import type { KeyRecord } from '../../services/accounts/records';
import type { DayCount, RouteDayCount } from '../../services/usage/usage-reader';
import { createApp } from '../../services/user-api/app';
import type { UserApiKeyStore, UserApiPlanStore, UserApiUsageReader } from '../../services/user-api/env';
import type { AuthenticatedUser, TokenVerifier } from '../../services/user-api/token-verifier';
import { requestApp } from '../support/app-request';

// user-api's contract as a caller sees it, through createApp(deps).request(): the OpenAPI document
// it serves, and the answers of `GET /usage?groupBy=route`. The verifier and the stores are
// in-memory fakes; no network, no environment.

const NOW = new Date('2026-11-21T12:00:00Z');
const ALICE: AuthenticatedUser = {
  userId: 'acc_alice',
  email: 'alice@example.com',
  userName: 'alice',
  authTime: NOW,
};
const BOB: AuthenticatedUser = {
  userId: 'acc_bob',
  email: 'bob@example.com',
  userName: 'bob',
  authTime: NOW,
};
const TOKENS: Record<string, AuthenticatedUser> = { 'token-alice': ALICE, 'token-bob': BOB };

const verifier: TokenVerifier = {
  async verify(token) {
    const user = TOKENS[token];
    if (!user) throw new Error('invalid signature');
    return user;
  },
};

const key = (accountId: string, keyId: string): KeyRecord => ({
  accountId,
  keyId,
  name: keyId,
  start: 'tg_abcd',
  keyHash: `hash-${keyId}`,
  status: 'active',
  createdAt: '2026-01-01T00:00:00.000Z',
});

/** Two accounts, a key each; only what /usage and the validation cases touch answers. */
function memoryStore(keys: KeyRecord[]): UserApiKeyStore {
  const none = async () => ({ ok: false as const, reason: 'not_found' as const });
  return {
    getAccount: async () => undefined,
    provisionAccount: async () => {
      throw new Error('not used here');
    },
    listKeys: async (accountId) => keys.filter((k) => k.accountId === accountId),
    getKey: async (accountId, keyId) => keys.find((k) => k.accountId === accountId && k.keyId === keyId),
    createKey: none,
    revealKey: none,
    rollKey: none,
    revokeKey: none,
    setTimeZone: async () => true,
  };
}

/**
 * Metering's per-route counters in memory, answered as UsageReader.routeDailyCounts answers: only
 * the days and routes with usage in the range, for the account or one of its keys.
 */
function memoryUsage() {
  const counts: (RouteDayCount & { accountId: string; keyId: string })[] = [];
  const scopes: { accountId: string; keyId?: string }[] = [];
  const usage: UserApiUsageReader = {
    async routeDailyCounts(scope, from, to) {
      scopes.push(scope);
      const merged = new Map<string, RouteDayCount>();
      for (const c of counts) {
        if (c.accountId !== scope.accountId || (scope.keyId !== undefined && c.keyId !== scope.keyId))
          continue;
        if (c.date < from || c.date > to) continue;
        const id = `${c.method} ${c.route} ${c.date}`;
        const entry = merged.get(id) ?? { route: c.route, method: c.method, date: c.date, count: 0 };
        entry.count += c.count;
        merged.set(id, entry);
      }
      return [...merged.values()];
    },
    async dailyCounts(scope, from, to) {
      const byDay = new Map<string, number>();
      for (const c of counts) {
        if (c.accountId !== scope.accountId || (scope.keyId !== undefined && c.keyId !== scope.keyId))
          continue;
        if (c.date >= from && c.date <= to) byDay.set(c.date, (byDay.get(c.date) ?? 0) + c.count);
      }
      return [...byDay].map(([date, count]): DayCount => ({ date, count }));
    },
    keyTotals: async () => new Map(),
    total: async () => 0,
    hourlyCounts: async () => [],
    usedInPeriod: async () => 0,
  };
  return { usage, counts, scopes };
}

/** Only what the document and the validation cases touch: nothing reaches the plans here. */
const noPlans = new Proxy({} as UserApiPlanStore, {
  get: () => () => Promise.reject(new Error('not used here')),
});

let counters: ReturnType<typeof memoryUsage>;
let app: ReturnType<typeof createApp>;

beforeEach(() => {
  counters = memoryUsage();
  app = createApp({
    store: memoryStore([key(ALICE.userId, 'key_a1'), key(ALICE.userId, 'key_a2'), key(BOB.userId, 'key_b1')]),
    usage: counters.usage,
    plans: noPlans,
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

interface Operation {
  security?: Record<string, string[]>[];
  responses: Record<string, unknown>;
}
// A type, not an interface: the validator takes any JSON object (`Record<string, unknown>`).
type OpenApiDocument = {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, unknown>>;
  components: { securitySchemes: Record<string, Record<string, string>> };
};

describe('user-api: GET /openapi.json', () => {
  const fetchDocument = async () => {
    const response = await app.request('/openapi.json');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    return (await response.json()) as OpenApiDocument;
  };

  it('serves a valid OpenAPI 3 document, without a token, listing every route', async () => {
    const document = await fetchDocument();
    const validator = new Validator();
    expect(await validator.validate(document)).toEqual({ valid: true });
    expect(document.openapi).toMatch(/^3\./);
    expect(document.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/me', '/keys', '/usage']));
    expect(Object.keys(document.paths).sort()).toEqual([
      '/admin/accounts',
      '/admin/accounts/{accountId}/plan',
      '/admin/accounts/{accountId}/resume',
      '/admin/accounts/{accountId}/suspend',
      '/admin/accounts/{accountId}/usage',
      '/admin/plans',
      '/admin/plans/{planId}',
      '/admin/usage/accounts',
      '/admin/usage/top',
      '/billing/checkout',
      '/billing/plans',
      '/billing/portal',
      '/keys',
      '/keys/{id}',
      '/keys/{id}/reveal',
      '/keys/{id}/roll',
      '/me',
      '/me/billing',
      '/me/plan',
      '/usage',
    ]);
  });

  it("documents the admin operations, each with the 403 of a token that is not an admin's", async () => {
    const document = await fetchDocument();
    const admin = Object.entries(document.paths)
      .filter(([path]) => path.startsWith('/admin'))
      .flatMap(([path, methods]) =>
        Object.entries(methods).map(([method, op]) => [`${method} ${path}`, op] as const),
      );
    expect(admin.map(([at]) => at).sort()).toEqual([
      'get /admin/accounts',
      'get /admin/accounts/{accountId}/usage',
      'get /admin/plans',
      'get /admin/usage/accounts',
      'get /admin/usage/top',
      'post /admin/accounts/{accountId}/resume',
      'post /admin/accounts/{accountId}/suspend',
      'put /admin/accounts/{accountId}/plan',
      'put /admin/plans/{planId}',
    ]);
    for (const [at, operation] of admin) {
      expect((operation as Operation).responses['403'], at).toMatchObject({
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      });
    }
    const putPlan = document.paths['/admin/plans/{planId}']?.put as Operation;
    expect(Object.keys(putPlan.responses)).toEqual(expect.arrayContaining(['200', '201', '400']));
  });

  it("documents the owner's own plan (GET /me/plan), each limit optional, and isAdmin on GET /me", async () => {
    const document = (await fetchDocument()) as OpenApiDocument & {
      components: { schemas: Record<string, { required?: string[]; properties: Record<string, unknown> }> };
    };
    const getPlan = document.paths['/me/plan']?.get as Operation & { tags: string[] };
    expect(getPlan.tags).toEqual(['Account']);
    expect(Object.keys(getPlan.responses).sort()).toEqual(['200', '401', '404', '500', '503']);
    expect(getPlan.responses['200']).toMatchObject({
      content: { 'application/json': { schema: { $ref: '#/components/schemas/MyPlan' } } },
    });
    const myPlan = document.components.schemas.MyPlan;
    expect(Object.keys(myPlan?.properties ?? {}).sort()).toEqual([
      'asOf',
      'maxKeys',
      'name',
      'planId',
      'quota',
      'rateLimit',
      'status',
    ]);
    expect(myPlan?.required?.sort()).toEqual(['asOf', 'name', 'planId', 'status']);
    expect(document.components.schemas.QuotaStanding?.required?.sort()).toEqual([
      'period',
      'remaining',
      'requests',
      'resetsAt',
      'used',
    ]);
    expect(document.components.schemas.Account?.required).toContain('isAdmin');
  });

  it('the validator refuses a broken copy of it (so the check above is not vacuous)', async () => {
    const broken = structuredClone(await fetchDocument());
    broken.paths['/me'] = { get: { responses: 'none' } };
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it('every operation requires the Cognito ID token as a bearer JWT, and documents the error shape', async () => {
    const document = await fetchDocument();
    const schemes = document.components.securitySchemes;
    const [name, scheme] = Object.entries(schemes)[0] ?? [];
    expect(Object.keys(schemes)).toHaveLength(1);
    expect(scheme).toMatchObject({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({
        at: `${method} ${path}`,
        operation: operation as Operation,
      })),
    );
    expect(operations).toHaveLength(22);
    for (const { at, operation } of operations) {
      expect(operation.security, at).toEqual([{ [name as string]: [] }]);
      expect(operation.responses['401'], at).toMatchObject({
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      });
    }
  });
});

describe('user-api: validation answers (OpenAPIHono defaultHook = validationHook)', () => {
  it('a body that fails its schema: 400 naming the field, in the one error shape', async () => {
    const response = await call('/keys', { token: 'token-alice', method: 'POST', body: { name: '' } });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error: {
        code: 'invalid_request',
        message: 'Invalid request: name: must not be empty',
        details: [{ path: 'name', message: 'must not be empty' }],
      },
    });
  });

  it('a key id that cannot exist is an unknown key; a bad roll body for a possible id is a 400', async () => {
    const unknown = await call('/keys/not-a-key/roll', {
      token: 'token-alice',
      method: 'POST',
      body: { gracePeriodSeconds: -1 },
    });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: { code: 'not_found', message: 'No such key' } });

    const invalid = await call('/keys/key_a1/roll', {
      token: 'token-alice',
      method: 'POST',
      body: { gracePeriodSeconds: -1, extra: true },
    });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toEqual({
      error: {
        code: 'invalid_request',
        message:
          'Invalid request: gracePeriodSeconds: Too small: expected number to be >=0; (body): Unrecognized key: "extra"',
        details: [
          { path: 'gracePeriodSeconds', message: 'Too small: expected number to be >=0' },
          { path: '(body)', message: 'Unrecognized key: "extra"' },
        ],
      },
    });
  });
});

describe('user-api: GET /usage?groupBy=route', () => {
  interface RouteUsage {
    from: string;
    to: string;
    keyId?: string;
    asOf: string;
    total: number;
    series: { start: string; count: number }[];
    routes: { route: string; method: string; total: number; days: DayCount[] }[];
  }

  const add = (keyId: string, method: string, route: string, date: string, count: number) =>
    counters.counts.push({
      accountId: keyId.startsWith('key_b') ? BOB.userId : ALICE.userId,
      keyId,
      method,
      route,
      date,
      count,
    });

  const usage = async (query: string, token = 'token-alice') => {
    const response = await call(`/usage?${query}`, { token });
    expect(response.status, await response.clone().text()).toBe(200);
    return (await response.json()) as RouteUsage;
  };

  type Days = { date: string; count: number }[];
  const cells = (days: Days) => days.map(({ date, count }) => ({ start: `${date}T00:00:00Z`, count }));
  /**
   * A route answer as it was, with what every usage answer now also has: its zone and granularity
   * (UTC days by default), each route's days as cells, and the cells of all routes together.
   */
  function withCells<T extends { routes: { days: Days }[] }>(answer: T) {
    const days = answer.routes[0]?.days.map(({ date }, i) => ({
      date,
      count: answer.routes.reduce((sum, r) => sum + (r.days[i]?.count ?? 0), 0),
    }));
    return {
      tz: 'UTC',
      granularity: 'day',
      ...answer,
      series: cells(days ?? []),
      routes: answer.routes.map((r) => ({ ...r, series: cells(r.days) })),
    };
  }

  it('answers every day of the range for every route, zeros included; the total adds up the routes', async () => {
    add('key_a1', 'GET', '/v1/rates/:currency', '2026-01-30', 5);
    add('key_a2', 'GET', '/v1/rates/:currency', '2026-02-01', 2);
    add('key_a1', 'POST', '/v1/convert', '2026-02-02', 4);
    add('key_a1', '*', '*', '2026-01-31', 1);
    add('key_a1', 'POST', '/v1/convert', '2026-02-03', 100); // after the range
    add('key_b1', 'GET', '/v1/rates/:currency', '2026-01-30', 1000); // another account's

    const answer = await usage('from=2026-01-30&to=2026-02-02&groupBy=route');
    expect(answer).toEqual(
      withCells({
        from: '2026-01-30',
        to: '2026-02-02',
        asOf: NOW.toISOString(),
        total: 12,
        routes: [
          {
            route: '/v1/rates/:currency',
            method: 'GET',
            total: 7,
            days: [
              { date: '2026-01-30', count: 5 },
              { date: '2026-01-31', count: 0 },
              { date: '2026-02-01', count: 2 },
              { date: '2026-02-02', count: 0 },
            ],
          },
          {
            route: '/v1/convert',
            method: 'POST',
            total: 4,
            days: [
              { date: '2026-01-30', count: 0 },
              { date: '2026-01-31', count: 0 },
              { date: '2026-02-01', count: 0 },
              { date: '2026-02-02', count: 4 },
            ],
          },
          {
            route: '*',
            method: '*',
            total: 1,
            days: [
              { date: '2026-01-30', count: 0 },
              { date: '2026-01-31', count: 1 },
              { date: '2026-02-01', count: 0 },
              { date: '2026-02-02', count: 0 },
            ],
          },
        ],
      }),
    );
    expect(counters.scopes).toEqual([{ accountId: ALICE.userId }]);
  });

  it('sorts routes by total, largest first, then by method and route', async () => {
    for (const [method, route, count] of [
      ['POST', '/b', 3],
      ['GET', '/b', 3],
      ['GET', '/a', 3],
      ['DELETE', '/z', 9],
      ['*', '*', 1],
    ] as const) {
      add('key_a1', method, route, '2026-11-21', count);
    }
    const answer = await usage('groupBy=route&from=2026-11-21&to=2026-11-21');
    expect(answer.routes.map((r) => `${r.total} ${r.method} ${r.route}`)).toEqual([
      '9 DELETE /z',
      '3 GET /a',
      '3 GET /b',
      '3 POST /b',
      '1 * *',
    ]);
    expect(answer.total).toBe(19);
  });

  it('defaults to the last 30 days; no usage is no routes and a total of 0', async () => {
    const answer = await usage('groupBy=route');
    expect(answer).toMatchObject({ tz: 'UTC', granularity: 'day' });
    expect({ ...answer, series: undefined, tz: undefined, granularity: undefined }).toEqual({
      from: '2026-10-23',
      to: '2026-11-21',
      asOf: NOW.toISOString(),
      total: 0,
      routes: [],
    });
    // Every day of the 30 still has its cell, each 0.
    expect(answer.series).toHaveLength(30);
    expect(answer.series.every((c) => c.count === 0)).toBe(true);
  });

  it("a key of the caller narrows it to that key; another account's key is a 404", async () => {
    add('key_a1', 'GET', '/a', '2026-11-20', 2);
    add('key_a2', 'GET', '/a', '2026-11-20', 3);
    const answer = await usage('groupBy=route&keyId=key_a2&from=2026-11-20&to=2026-11-21');
    expect(answer).toMatchObject({ keyId: 'key_a2', total: 3 });
    expect(answer.routes).toEqual(
      withCells({
        routes: [
          {
            route: '/a',
            method: 'GET',
            total: 3,
            days: [
              { date: '2026-11-20', count: 3 },
              { date: '2026-11-21', count: 0 },
            ],
          },
        ],
      }).routes,
    );
    expect(counters.scopes).toEqual([{ accountId: ALICE.userId, keyId: 'key_a2' }]);

    const theirs = await call('/usage?groupBy=route&keyId=key_b1', { token: 'token-alice' });
    expect(theirs.status).toBe(404);
    expect(await theirs.json()).toEqual({ error: { code: 'not_found', message: 'No such key' } });
  });

  it('without groupBy the answer is the daily series, as it always was', async () => {
    add('key_a1', 'GET', '/a', '2026-11-20', 2);
    add('key_a1', 'POST', '/b', '2026-11-20', 3);
    const response = await call('/usage?from=2026-11-20&to=2026-11-21', { token: 'token-alice' });
    const days = [
      { date: '2026-11-20', count: 5 },
      { date: '2026-11-21', count: 0 },
    ];
    expect(await response.json()).toEqual({
      from: '2026-11-20',
      to: '2026-11-21',
      tz: 'UTC',
      granularity: 'day',
      days,
      series: cells(days),
      total: 5,
      asOf: NOW.toISOString(),
    });
  });

  // `key` is a grouping since issue 24 (usage-analytics.integ.test.ts).
  it.each([['day'], ['hour'], [''], ['ROUTE'], ['route&groupBy=route']])(
    'refuses groupBy=%s with the 400 validation answer',
    async (value) => {
      const response = await call(`/usage?groupBy=${value}`, { token: 'token-alice' });
      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: { code: string; details: { path: string }[] } };
      expect(body.error.code).toBe('invalid_request');
      expect(body.error.details.map((d) => d.path)).toEqual(['groupBy']);
    },
  );

  it('the range rules hold as without groupBy', async () => {
    for (const query of [
      'from=2026-03-02&to=2026-03-01',
      'from=2024-01-01&to=2025-12-31',
      'from=2026-02-30',
    ]) {
      const response = await call(`/usage?groupBy=route&${query}`, { token: 'token-alice' });
      expect(response.status, query).toBe(400);
    }
    expect(counters.scopes).toEqual([]);
  });
});
