import { Logger } from '@aws-lambda-powertools/logger';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { composeUserApi } from '../../services/user-api/compose';
import { loadUserApiConfig } from '../../services/user-api/config';
import { recordFigures } from '../support/figures';
import { decodeClaims } from '../support/jwt';
import {
  endpoints,
  signIn,
  signInAdmin,
  signUpAndSignIn,
  stackAws,
  stackEnv,
  type TestUser,
  userApi,
} from '../support/local-stack';
import { sleep } from '../support/wait';

// Secret hygiene of the user API against the shared local stack: no answer may be kept by a cache
// (every operation its OpenAPI document lists, 2xx and 4xx), and minting a secret (create, reveal,
// roll) needs a recent sign-in, checked on real cognito-local ID tokens and their `auth_time`.

interface KeyView {
  id: string;
  name: string;
  status: string;
  replacedBy?: string;
}
interface Issued {
  id: string;
  key: string;
}

const keys = async (user: TestUser) => {
  const answer = await userApi(user.idToken, 'GET', '/keys');
  expect(answer.status, answer.text).toBe(200);
  return (answer.body as { keys: KeyView[] }).keys;
};

async function mint(user: TestUser, name: string): Promise<Issued> {
  const created = await userApi(user.idToken, 'POST', '/keys', { name });
  expect(created.status, created.text).toBe(201);
  return created.body as Issued;
}

const figures: Record<string, unknown> = {};

describe('Cache-Control on every answer of the user API', () => {
  let owner: TestUser;
  let admin: TestUser;

  beforeAll(async () => {
    [owner, admin] = await Promise.all([signUpAndSignIn('hygiene'), signInAdmin()]);
  });

  it('every operation of the OpenAPI document answers no-store, its 2xx and its 4xx alike', async () => {
    const documentAnswer = await fetch(`${endpoints().userApi}/openapi.json`);
    expect(documentAnswer.status).toBe(200);
    // The public contract, the same for everyone: a cache may keep it if it asks each time.
    expect(documentAnswer.headers.get('cache-control')).toBe('no-cache');
    const document = (await documentAnswer.json()) as {
      paths: Record<string, Record<string, { security?: unknown[] }>>;
    };

    const accountId = ((await userApi(owner.idToken, 'GET', '/me')).body as { userId: string }).userId;
    const [pending] = await keys(owner);
    if (!pending) throw new Error('no first key');
    const toRoll = await mint(owner, 'to-roll');
    const toRevoke = await mint(owner, 'to-revoke');
    const planId = `hygiene-${Date.now()}`;

    // One request per operation that succeeds, by `METHOD path` as the document names it. An
    // operation the document lists and this table lacks fails the test: a new route is not missed.
    const ok: Record<string, { token: TestUser; path: string; body?: unknown }> = {
      'GET /me': { token: owner, path: '/me' },
      'GET /me/plan': { token: owner, path: '/me/plan' },
      'GET /keys': { token: owner, path: '/keys' },
      'POST /keys': { token: owner, path: '/keys', body: { name: 'hygiene' } },
      'POST /keys/{id}/reveal': { token: owner, path: `/keys/${pending.id}/reveal` },
      'POST /keys/{id}/roll': { token: owner, path: `/keys/${toRoll.id}/roll`, body: {} },
      'DELETE /keys/{id}': { token: owner, path: `/keys/${toRevoke.id}` },
      'PATCH /me': { token: owner, path: '/me', body: { timeZone: 'UTC' } },
      'GET /usage': { token: owner, path: '/usage' },
      'GET /billing/plans': { token: owner, path: '/billing/plans' },
      'POST /billing/checkout': { token: owner, path: '/billing/checkout', body: { planId: 'pro' } },
      'POST /billing/portal': { token: owner, path: '/billing/portal' },
      'GET /me/billing': { token: owner, path: '/me/billing' },
      'GET /admin/accounts/{accountId}/usage': { token: admin, path: `/admin/accounts/${accountId}/usage` },
      'GET /admin/usage/top': { token: admin, path: '/admin/usage/top' },
      'GET /admin/usage/accounts': { token: admin, path: '/admin/usage/accounts' },
      'GET /admin/accounts': { token: admin, path: '/admin/accounts' },
      'GET /admin/plans': { token: admin, path: '/admin/plans' },
      'PUT /admin/plans/{planId}': { token: admin, path: `/admin/plans/${planId}`, body: { name: planId } },
      'PUT /admin/accounts/{accountId}/plan': {
        token: admin,
        path: `/admin/accounts/${accountId}/plan`,
        body: { planId: 'default' },
      },
      'POST /admin/accounts/{accountId}/suspend': {
        token: admin,
        path: `/admin/accounts/${accountId}/suspend`,
      },
      'POST /admin/accounts/{accountId}/resume': {
        token: admin,
        path: `/admin/accounts/${accountId}/resume`,
      },
    };
    const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations.filter((operation) => !(operation in ok))).toEqual([]);

    // The portal is for an account with a Stripe customer: a first checkout makes one.
    expect((await userApi(owner.idToken, 'POST', '/billing/checkout', { planId: 'pro' })).status).toBe(201);

    const answers: Array<{ operation: string; status: number; cacheControl: string | null }> = [];
    const check = async (operation: string, token: TestUser | undefined, path: string, body?: unknown) => {
      const method = operation.split(' ')[0] ?? 'GET';
      const answer = await userApi(token?.idToken, method, path, body);
      answers.push({ operation, status: answer.status, cacheControl: answer.headers.get('cache-control') });
      return answer;
    };
    for (const operation of operations) {
      const request = ok[operation];
      if (!request) continue;
      // Without a token: the 401 of every authenticated operation.
      expect((await check(operation, undefined, request.path, request.body)).status, operation).toBe(401);
      // A 4xx with a valid token: an unknown id (404), a body that fails its schema (400), or, for
      // the admin operations, an owner's token (403); the rest have no 4xx of their own to ask for.
      const withId = request.path.replace(/key_[A-Za-z0-9_]+|hygiene-\d+|[0-9a-f-]{36}/, (id) =>
        id.startsWith('key_') ? 'key_nope' : id.startsWith('hygiene-') ? 'nope' : 'no-such-account',
      );
      if (operation.startsWith('GET /admin') || operation.includes('{planId}')) {
        expect((await check(operation, owner, request.path, request.body)).status, operation).toBe(403);
      } else if (withId !== request.path) {
        const answer = await check(operation, request.token, withId, request.body);
        expect(answer.status, `${operation} ${answer.text}`).toBe(404);
      } else if (operation === 'GET /usage') {
        expect((await check(operation, owner, '/usage?from=2026-13-01')).status).toBe(400);
      } else if (operation === 'POST /keys') {
        expect((await check(operation, owner, '/keys', { name: '' })).status).toBe(400);
      }
      const answer = await check(operation, request.token, request.path, request.body);
      expect(answer.status, `${operation} ${answer.text}`).toBeGreaterThanOrEqual(200);
      expect(answer.status, `${operation} ${answer.text}`).toBeLessThan(300);
    }
    // What no operation answers: an unknown route, a body over the limit, a CORS preflight.
    answers.push({ operation: 'unknown route', ...(await headOf(owner, 'GET', '/nope')) });
    answers.push({
      operation: 'body over 16 KiB',
      ...(await headOf(owner, 'POST', '/keys', JSON.stringify({ name: 'x'.repeat(20_000) }))),
    });
    const preflight = await fetch(`${endpoints().userApi}/keys`, {
      method: 'OPTIONS',
      headers: {
        origin: endpoints().web,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    answers.push({
      operation: 'CORS preflight',
      status: preflight.status,
      cacheControl: preflight.headers.get('cache-control'),
    });

    expect(answers.filter((a) => a.cacheControl !== 'no-store')).toEqual([]);
    expect(answers.find((a) => a.operation === 'unknown route')?.status).toBe(404);
    expect(answers.find((a) => a.operation === 'body over 16 KiB')?.status).toBe(413);
    const statuses: Record<string, number> = {};
    for (const { status } of answers) statuses[status] = (statuses[status] ?? 0) + 1;
    Object.assign(figures, {
      operationsInDocument: operations.length,
      answersChecked: answers.length,
      answersWithNoStore: answers.filter((a) => a.cacheControl === 'no-store').length,
      answersByStatus: statuses,
      secretAnswersWithNoStore: answers.filter(
        (a) =>
          a.status === 201 &&
          a.cacheControl === 'no-store' &&
          /^POST \/keys(\/\{id\}\/(reveal|roll))?$/.test(a.operation),
      ).length,
      openApiCacheControl: documentAnswer.headers.get('cache-control'),
    });
  });
});

async function headOf(user: TestUser, method: string, path: string, body?: string) {
  const response = await fetch(`${endpoints().userApi}${path}`, {
    method,
    headers: { authorization: `Bearer ${user.idToken}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body }),
  });
  await response.body?.cancel();
  return { status: response.status, cacheControl: response.headers.get('cache-control') };
}

describe('key names are printable text', () => {
  let owner: TestUser;

  beforeAll(async () => {
    owner = await signUpAndSignIn('key-names');
  });

  // What the review tried: names that would hide or reorder text where a name is shown (the web
  // page, an admin's list, a terminal): NUL and other controls, bidi overrides, lone surrogates.
  const refused: Record<string, string> = {
    NUL: 'ci\u0000server',
    'line feed': 'ci\nserver',
    escape: '\u001b[31mred',
    'right-to-left override': 'invoice\u202Etxt.exe',
    'left-to-right isolate': '\u2066ci\u2069',
    'lone high surrogate': 'ci\uD800',
    'lone low surrogate': '\uDC00ci',
  };
  const accepted: Record<string, string> = {
    ascii: 'ci-server',
    accents: 'serveur de compilation é',
    'CJK and emoji': '本番サーバー 🚀',
    'Arabic (right-to-left text, no override)': 'خادم',
  };

  it('refuses control, bidi-override and lone-surrogate names with 400, creating nothing; accepts other Unicode text', async () => {
    const before = await keys(owner);
    const refusals: Record<string, string> = {};
    for (const [label, name] of Object.entries(refused)) {
      const answer = await userApi(owner.idToken, 'POST', '/keys', { name });
      expect(answer.status, label).toBe(400);
      expect((answer.body as { error: { code: string } }).error.code, label).toBe('invalid_request');
      refusals[label] = `${answer.status} ${(answer.body as { error: { code: string } }).error.code}`;
    }
    const keysAddedByRefusedNames = (await keys(owner)).length - before.length;
    expect(keysAddedByRefusedNames).toBe(0);
    const acceptances: Record<string, number> = {};
    for (const [label, name] of Object.entries(accepted)) {
      const answer = await userApi(owner.idToken, 'POST', '/keys', { name });
      acceptances[label] = answer.status;
      if (answer.status === 409) continue; // the plan's key limit, not the name
      expect(answer.status, label).toBe(201);
      expect((answer.body as { name: string }).name, label).toBe(name);
    }
    figures.keyNames = {
      refused: refusals,
      accepted: acceptances,
      keysAddedByRefusedNames,
    };
  });
});

/** A short window for this test's own user-api, so a real sign-in gets old within seconds. */
const SHORT_MAX_AGE_MS = 5_000;

describe('minting needs a recent sign-in (the ID token’s auth_time)', () => {
  // The stack's own user-api has the default window (15 minutes); this one, composed by the same
  // function over the same tables and Cognito, has a short one, so real tokens age in seconds.
  const app = composeUserApi(
    loadUserApiConfig({ ...stackEnv(), [ENV.signInMaxAgeMs]: String(SHORT_MAX_AGE_MS) }),
    { aws: stackAws(), logger: new Logger({ serviceName: 'user-api-test', logLevel: 'SILENT' }) },
  );
  const call = async (user: TestUser, method: string, path: string, body?: unknown) => {
    const response = await app.request(path, {
      method,
      headers: {
        authorization: `Bearer ${user.idToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return {
      status: response.status,
      headers: response.headers,
      text,
      body: text ? JSON.parse(text) : undefined,
    };
  };

  it('cognito-local puts auth_time, the sign-in time, in its ID tokens', async () => {
    const before = Math.floor(Date.now() / 1000);
    const user = await signUpAndSignIn('auth-time');
    const claims = decodeClaims(user.idToken);
    expect(claims.auth_time).toEqual(expect.any(Number));
    expect(claims.auth_time as number).toBeGreaterThanOrEqual(before);
    expect(claims.auth_time as number).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
  });

  it('refuses an admin change with an old sign-in, changing nothing; the admin still reads', async () => {
    const admin = await signInAdmin();
    const target = await signUpAndSignIn('admin-target');
    const accountId = ((await userApi(target.idToken, 'GET', '/me')).body as { userId: string }).userId;
    const planId = `stale-admin-${Date.now()}`;
    const authTimeMs = (decodeClaims(admin.idToken).auth_time as number) * 1000;
    await sleep(Math.max(0, authTimeMs + SHORT_MAX_AGE_MS + 1500 - Date.now()));

    const refusals: Record<string, number> = {};
    for (const [operation, method, path, body] of [
      ['PUT /admin/plans/{planId}', 'PUT', `/admin/plans/${planId}`, { name: 'Too late' }],
      ['PUT /admin/accounts/{id}/plan', 'PUT', `/admin/accounts/${accountId}/plan`, { planId: 'default' }],
      ['POST /admin/accounts/{id}/suspend', 'POST', `/admin/accounts/${accountId}/suspend`, undefined],
    ] as const) {
      const refused = await call(admin, method, path, body);
      expect(refused.status, `${operation} ${refused.text}`).toBe(401);
      expect(refused.body.error.code).toBe('reauthentication_required');
      refusals[operation] = refused.status;
    }
    // Nothing changed: no such plan, the account still active; reads still work.
    const plans = await call(admin, 'GET', '/admin/plans');
    expect(plans.status).toBe(200);
    expect((plans.body.plans as { planId: string }[]).map((p) => p.planId)).not.toContain(planId);
    const standing = await call(target, 'GET', '/me/plan');
    expect(standing.body.status).toBe('active');
    const fresh = await signInAdmin();
    const saved = await call(fresh, 'PUT', `/admin/plans/${planId}`, { name: 'On time' });
    expect(saved.status, saved.text).toBe(201);
    figures.adminRefusals = refusals;
    figures.adminReadWithOldSignIn = plans.status;
    figures.adminFreshSignInSaves = saved.status;
  });

  it('refuses an old sign-in on create, reveal and roll, minting nothing; reading and revoking still work', async () => {
    const stale = await signUpAndSignIn('stale');
    // Set up through the stack's own user-api (15 minutes): an active key to roll, one to revoke.
    const toRoll = await mint(stale, 'to-roll');
    const toRevoke = await mint(stale, 'to-revoke');
    const before = await keys(stale);
    const pending = before.find((k) => k.status === 'pending');
    if (!pending) throw new Error('no pending first key');

    // Until the sign-in is older than the window (auth_time is whole seconds).
    const authTimeMs = (decodeClaims(stale.idToken).auth_time as number) * 1000;
    await sleep(Math.max(0, authTimeMs + SHORT_MAX_AGE_MS + 1500 - Date.now()));

    const refusals: Record<string, number> = {};
    for (const [operation, path, body] of [
      ['POST /keys', '/keys', { name: 'too-late' }],
      ['POST /keys/{id}/reveal', `/keys/${pending.id}/reveal`, undefined],
      ['POST /keys/{id}/roll', `/keys/${toRoll.id}/roll`, {}],
    ] as const) {
      const refused = await call(stale, 'POST', path, body);
      expect(refused.status, `${operation} ${refused.text}`).toBe(401);
      expect(refused.body.error.code).toBe('reauthentication_required');
      expect(refused.body.error.message).toMatch(/sign in again/);
      expect(refused.headers.get('www-authenticate')).toContain('error="insufficient_user_authentication"');
      expect(refused.headers.get('cache-control')).toBe('no-store');
      refusals[operation] = refused.status;
    }
    // Nothing was minted: the same keys in the same states.
    const shape = (list: KeyView[]) =>
      list.map(({ id, name, status, replacedBy }) => ({ id, name, status, replacedBy }));
    const afterRefusals = await keys(stale);
    expect(shape(afterRefusals)).toEqual(shape(before));

    // The old token still reads and revokes.
    const reads: Record<string, number> = {};
    for (const path of ['/keys', '/me', '/me/plan', '/usage']) {
      reads[`GET ${path}`] = (await call(stale, 'GET', path)).status;
    }
    expect(Object.values(reads)).toEqual([200, 200, 200, 200]);
    const revoked = await call(stale, 'DELETE', `/keys/${toRevoke.id}`);
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.body.status).toBe('revoked');

    // A fresh sign-in of the same user mints on all three.
    const fresh = await signIn(stale.email, stale.password);
    const created = await call(fresh, 'POST', '/keys', { name: 'on-time' });
    const revealed = await call(fresh, 'POST', `/keys/${pending.id}/reveal`);
    const rolled = await call(fresh, 'POST', `/keys/${toRoll.id}/roll`, {});
    expect(
      [created.status, revealed.status, rolled.status],
      `${created.text} ${revealed.text} ${rolled.text}`,
    ).toEqual([201, 201, 201]);

    figures.mintingRefusals = refusals;
    figures.keysAddedByRefusedRequests = afterRefusals.length - before.length;
    figures.keysChangedByRefusedRequests = shape(afterRefusals).filter(
      (key, i) => JSON.stringify(key) !== JSON.stringify(shape(before)[i]),
    ).length;
    figures.freshSignInMints = { create: created.status, reveal: revealed.status, roll: rolled.status };
    figures.readsWithOldSignIn = reads;
    figures.revokeWithOldSignIn = revoked.status;
    figures.parameters = {
      signInMaxAgeMs: SHORT_MAX_AGE_MS,
      defaultSignInMaxAgeMs: loadUserApiConfig(stackEnv())[ENV.signInMaxAgeMs],
    };
    await recordFigures('secret-hygiene', figures);
  });
});
