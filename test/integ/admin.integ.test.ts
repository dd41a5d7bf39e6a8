import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_GROUP } from '../../contracts/plans';
import {
  errorCode,
  keyApi,
  localAdmin,
  signInAdmin,
  signUpAndSignIn,
  type TestUser,
  userApi,
} from '../support/local-stack';
import { eventually } from '../support/wait';

// The SaaS owner's admin surface and the key limits of plans, end to end on the shared local
// stack: the admin bootstrap made (group `admins` in cognito-local, its ID tokens carrying
// `cognito:groups`), owners signed up as a person would, the real user-api, key-api and metering.
// Plans made here have ids of their own: the shared stack's `default` plan is left alone.

interface AdminAccount {
  accountId: string;
  email: string;
  createdAt: string;
  planId: string;
  status: string;
  usage: { period: string; used: number; limit?: number; periodStart: string; periodEnd: string };
}
interface KeyView {
  id: string;
  status: string;
  expiresAt?: string;
  replacedBy?: string;
}
interface Issued {
  id: string;
  key: string;
  previous?: { id: string; status: string; expiresAt: string };
}

const planId = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

async function accountIdOf(user: TestUser): Promise<string> {
  const me = await userApi(user.idToken, 'GET', '/me');
  expect(me.status).toBe(200);
  return (me.body as { userId: string }).userId;
}

/** Pages through GET /admin/accounts until the account turns up. */
async function findAccount(admin: TestUser, accountId: string): Promise<AdminAccount | undefined> {
  let cursor: string | undefined;
  do {
    const page = await userApi(
      admin.idToken,
      'GET',
      `/admin/accounts?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    expect(page.status, page.text).toBe(200);
    const body = page.body as { accounts: AdminAccount[]; next?: string };
    const found = body.accounts.find((a) => a.accountId === accountId);
    if (found) return found;
    cursor = body.next;
  } while (cursor);
  return undefined;
}

const keys = async (user: TestUser) =>
  ((await userApi(user.idToken, 'GET', '/keys')).body as { keys: KeyView[] }).keys;

/** A fresh owner on a fresh plan with `maxKeys`, and the id of their first (pending) key. */
async function ownerWithMaxKeys(admin: TestUser, maxKeys: number) {
  const owner = await signUpAndSignIn('limited');
  const accountId = await accountIdOf(owner);
  const plan = planId(`max${maxKeys}`);
  expect((await userApi(admin.idToken, 'PUT', `/admin/plans/${plan}`, { name: plan, maxKeys })).status).toBe(
    201,
  );
  expect(
    (await userApi(admin.idToken, 'PUT', `/admin/accounts/${accountId}/plan`, { planId: plan })).status,
  ).toBe(200);
  const [first] = await keys(owner);
  if (!first) throw new Error('no first key');
  return { owner, accountId, firstKeyId: first.id };
}

let admin: TestUser;

beforeAll(async () => {
  admin = await signInAdmin();
});

describe('the local admin', () => {
  it('is bootstrapped in the group admins, its sign-in in <dataDir>/admin.json', async () => {
    const credentials = await localAdmin();
    expect(credentials).toEqual({ email: 'admin@tollgate.local', password: expect.any(String) });
    const payload = JSON.parse(
      Buffer.from(admin.idToken.split('.')[1] ?? '', 'base64url').toString(),
    ) as Record<string, unknown>;
    expect(payload['cognito:groups']).toEqual([ADMIN_GROUP]);
    expect((await userApi(admin.idToken, 'GET', '/admin/plans')).status).toBe(200);
  });
});

describe('admin routes, against the local stack', () => {
  let owner: TestUser;
  let ownerId: string;

  beforeAll(async () => {
    owner = await signUpAndSignIn('subject');
    ownerId = await accountIdOf(owner);
  });

  it("lists a fresh sign-up on the default plan, active, with this month's counted usage", async () => {
    const listed = await findAccount(admin, ownerId);
    expect(listed).toMatchObject({
      accountId: ownerId,
      email: owner.email,
      planId: 'default',
      status: 'active',
      usage: { used: 0 },
    });
    expect(Date.parse(listed?.createdAt ?? '')).not.toBeNaN();
    const { periodStart, periodEnd } = listed?.usage ?? {};
    expect(new Date(periodStart ?? '').getTime()).toBeLessThanOrEqual(Date.now());
    expect(new Date(periodEnd ?? '').getTime()).toBeGreaterThan(Date.now());

    // Two accepted requests: counted by metering, they are this period's usage.
    const [first] = await keys(owner);
    const { key } = (await userApi(owner.idToken, 'POST', `/keys/${first?.id}/reveal`)).body as Issued;
    for (let i = 0; i < 2; i++) expect((await keyApi({ headers: { 'x-api-key': key } })).status).toBe(200);
    await eventually(async () => (await findAccount(admin, ownerId))?.usage.used === 2, 10_000, 200);
  });

  it('creates a plan (201), replaces it (200), lists it, assigns it, and the listing shows its quota', async () => {
    const id = planId('pro');
    const created = await userApi(admin.idToken, 'PUT', `/admin/plans/${id}`, {
      name: 'Pro',
      quota: { requests: 1000, period: 'month' },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      planId: id,
      name: 'Pro',
      quota: { requests: 1000, period: 'month' },
    });

    const replaced = await userApi(admin.idToken, 'PUT', `/admin/plans/${id}`, {
      name: 'Pro, daily',
      quota: { requests: 50, period: 'day' },
      maxKeys: 10,
    });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toEqual({
      planId: id,
      name: 'Pro, daily',
      quota: { requests: 50, period: 'day' },
      maxKeys: 10,
      updatedAt: expect.any(String),
    });
    const plans = (await userApi(admin.idToken, 'GET', '/admin/plans')).body as {
      plans: { planId: string }[];
    };
    expect(plans.plans.map((p) => p.planId)).toEqual(expect.arrayContaining(['default', id]));

    const assigned = await userApi(admin.idToken, 'PUT', `/admin/accounts/${ownerId}/plan`, { planId: id });
    expect(assigned.status).toBe(200);
    expect(assigned.body).toEqual({ accountId: ownerId, planId: id, status: 'active' });
    const listed = await findAccount(admin, ownerId);
    expect(listed).toMatchObject({ planId: id, usage: { period: 'day', limit: 50 } });
    const today = new Date().toISOString().slice(0, 10);
    expect(listed?.usage.periodStart).toBe(`${today}T00:00:00.000Z`);

    expect(
      (await userApi(admin.idToken, 'PUT', `/admin/accounts/${ownerId}/plan`, { planId: 'default' })).body,
    ).toEqual({ accountId: ownerId, planId: 'default', status: 'active' });
  });

  it('suspends and resumes: the standing says so, and keys and usage are kept', async () => {
    const keysBefore = await keys(owner);
    const suspended = await userApi(admin.idToken, 'POST', `/admin/accounts/${ownerId}/suspend`);
    expect(suspended.status).toBe(200);
    expect(suspended.body).toMatchObject({ accountId: ownerId, status: 'suspended' });
    expect(await findAccount(admin, ownerId)).toMatchObject({ status: 'suspended' });

    const resumed = await userApi(admin.idToken, 'POST', `/admin/accounts/${ownerId}/resume`);
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ accountId: ownerId, status: 'active' });
    const listed = await findAccount(admin, ownerId);
    expect(listed?.status).toBe('active');
    expect(listed?.usage.used).toBeGreaterThanOrEqual(2);
    expect(await keys(owner)).toEqual(keysBefore);
  });

  it('answers 404 for an unknown account or plan, 400 for a plan id that cannot be one', async () => {
    const nobody = `nobody-${randomUUID()}`;
    for (const [method, path, body] of [
      ['PUT', `/admin/accounts/${nobody}/plan`, { planId: 'default' }],
      ['POST', `/admin/accounts/${nobody}/suspend`, undefined],
      ['POST', `/admin/accounts/${nobody}/resume`, undefined],
    ] as const) {
      const response = await userApi(admin.idToken, method, path, body);
      expect(response.status, path).toBe(404);
      expect(response.body).toEqual({ error: { code: 'not_found', message: 'No such account' } });
    }
    const noPlan = await userApi(admin.idToken, 'PUT', `/admin/accounts/${ownerId}/plan`, {
      planId: planId('never-saved'),
    });
    expect(noPlan.status).toBe(404);
    expect(noPlan.body).toEqual({ error: { code: 'not_found', message: 'No such plan' } });
    expect((await userApi(admin.idToken, 'PUT', '/admin/plans/Not_A_Plan', { name: 'x' })).status).toBe(400);
  });
});

describe('admin routes refuse everyone else', () => {
  it("answers a non-admin's valid token 403 on every admin route, and it reaches no account", async () => {
    const mallory = await signUpAndSignIn('mallory');
    const victim = await signUpAndSignIn('victim');
    const victimId = await accountIdOf(victim);
    const malloryId = await accountIdOf(mallory);
    const plan = planId('mallory');
    const routes: Array<[string, string, unknown?]> = [
      ['GET', '/admin/accounts'],
      ['GET', `/admin/accounts?limit=1`],
      ['GET', '/admin/plans'],
      ['PUT', `/admin/plans/${plan}`, { name: 'free for me', maxKeys: 10_000 }],
      ['PUT', '/admin/plans/default', { name: 'everyone limited', maxKeys: 1 }],
      ['PUT', `/admin/accounts/${victimId}/plan`, { planId: 'default' }],
      ['PUT', `/admin/accounts/${malloryId}/plan`, { planId: 'default' }],
      ['POST', `/admin/accounts/${victimId}/suspend`],
      ['POST', `/admin/accounts/${victimId}/resume`],
      ['POST', `/admin/accounts/${malloryId}/resume`],
      ['GET', '/admin/no-such-route'],
    ];
    for (const [method, path, body] of routes) {
      const response = await userApi(mallory.idToken, method, path, body);
      expect(response.status, `${method} ${path}`).toBe(403);
      expect(errorCode(response), `${method} ${path}`).toBe('forbidden');
      expect(response.text).not.toContain(victim.email);
      // Without a token, and with a forged one, it is the 401 of every route.
      expect((await userApi(undefined, method, path, body)).status).toBe(401);
      expect((await userApi(`${mallory.idToken}x`, method, path, body)).status).toBe(401);
    }

    expect(await findAccount(admin, victimId)).toMatchObject({ planId: 'default', status: 'active' });
    const plans = (await userApi(admin.idToken, 'GET', '/admin/plans')).body as {
      plans: { planId: string }[];
    };
    expect(plans.plans.map((p) => p.planId)).not.toContain(plan);
    // The owner routes still work for them, on their own account only.
    expect((await userApi(mallory.idToken, 'GET', '/me')).body).toMatchObject({ userId: malloryId });
  });
});

describe('keys under the plan', () => {
  it('refuses a key past maxKeys with 409 key_limit_reached; revoking one makes room again', async () => {
    const { owner } = await ownerWithMaxKeys(admin, 2);
    // The pending first key is live: one more makes 2.
    const second = await userApi(owner.idToken, 'POST', '/keys', { name: 'second' });
    expect(second.status).toBe(201);
    const third = await userApi(owner.idToken, 'POST', '/keys', { name: 'third' });
    expect(third.status).toBe(409);
    expect(errorCode(third)).toBe('key_limit_reached');
    expect((third.body as { error: { message: string } }).error.message).toContain('at most 2 live keys');
    expect(await keys(owner)).toHaveLength(2);

    expect((await userApi(owner.idToken, 'DELETE', `/keys/${(second.body as Issued).id}`)).status).toBe(200);
    expect((await userApi(owner.idToken, 'POST', '/keys', { name: 'third' })).status).toBe(201);
    expect(errorCode(await userApi(owner.idToken, 'POST', '/keys', {}))).toBe('key_limit_reached');
  });

  it('never exceeds maxKeys under concurrent creations', async () => {
    const { owner } = await ownerWithMaxKeys(admin, 3);
    const answers = await Promise.all(
      Array.from({ length: 5 }, (_, i) => userApi(owner.idToken, 'POST', '/keys', { name: `racer ${i}` })),
    );
    const statuses = answers.map((a) => a.status);
    // The pending first key and exactly two of the five: every refusal is the limit, none a lost race.
    expect(
      statuses.filter((s) => s === 201),
      statuses.join(),
    ).toHaveLength(2);
    expect(answers.filter((a) => a.status !== 201).map(errorCode)).toEqual(
      Array(3).fill('key_limit_reached'),
    );
    const live = (await keys(owner)).filter((k) => ['active', 'pending', 'expiring'].includes(k.status));
    expect(live).toHaveLength(3);
  });

  it("counts a roll's new key, and a roll that ends its predecessor's grace makes room for itself", async () => {
    const { owner, firstKeyId } = await ownerWithMaxKeys(admin, 2);
    const { key: k1 } = (await userApi(owner.idToken, 'POST', `/keys/${firstKeyId}/reveal`)).body as Issued;
    expect(k1).toBeDefined();
    // k1 expiring + k2 active = 2.
    const rolled = await userApi(owner.idToken, 'POST', `/keys/${firstKeyId}/roll`, {});
    expect(rolled.status).toBe(201);
    const k2 = rolled.body as Issued;
    expect(errorCode(await userApi(owner.idToken, 'POST', '/keys', {}))).toBe('key_limit_reached');
    // Rolling k2 ends k1's grace: k2 expiring + k3 active = 2 again.
    const again = await userApi(owner.idToken, 'POST', `/keys/${k2.id}/roll`, {});
    expect(again.status, again.text).toBe(201);
    expect((await keys(owner)).map((k) => k.status).sort()).toEqual(['active', 'expired', 'expiring']);
  });
});

describe('rolling keys', () => {
  it('keeps at most one expiring predecessor: rolling again ends the older grace at once', async () => {
    const owner = await signUpAndSignIn('roller');
    const [first] = await keys(owner);
    const { key: k1 } = (await userApi(owner.idToken, 'POST', `/keys/${first?.id}/reveal`)).body as Issued;

    const r1 = await userApi(owner.idToken, 'POST', `/keys/${first?.id}/roll`, { gracePeriodSeconds: 3600 });
    expect(r1.status).toBe(201);
    const k2 = r1.body as Issued;
    expect(k2.previous).toMatchObject({ id: first?.id, status: 'expiring' });
    const r2 = await userApi(owner.idToken, 'POST', `/keys/${k2.id}/roll`, { gracePeriodSeconds: 3600 });
    expect(r2.status).toBe(201);
    const k3 = r2.body as Issued;
    expect(k3.previous).toMatchObject({ id: k2.id, status: 'expiring' });

    const byId = new Map((await keys(owner)).map((k) => [k.id, k]));
    expect(byId.get(first?.id ?? '')).toMatchObject({ status: 'expired', replacedBy: k2.id });
    expect(Date.parse(byId.get(first?.id ?? '')?.expiresAt ?? '')).toBeLessThanOrEqual(Date.now());
    expect(byId.get(k2.id)).toMatchObject({ status: 'expiring', replacedBy: k3.id });
    expect(byId.get(k3.id)).toMatchObject({ status: 'active' });
    expect([...byId.values()].filter((k) => k.status === 'expiring')).toHaveLength(1);

    // The key check agrees: k1 (never cached) is expired now, k2 still works in its grace.
    const checkK1 = await keyApi({ headers: { 'x-api-key': k1 } });
    expect(checkK1.status).toBe(401);
    expect(errorCode(checkK1)).toBe('expired_key');
    expect((await keyApi({ headers: { 'x-api-key': k2.key } })).status).toBe(200);
  });

  it('allows grace periods up to 7 days, refuses longer ones with a 400', async () => {
    const owner = await signUpAndSignIn('grace');
    const created = (await userApi(owner.idToken, 'POST', '/keys', {})).body as Issued;
    const tooLong = await userApi(owner.idToken, 'POST', `/keys/${created.id}/roll`, {
      gracePeriodSeconds: 7 * 24 * 3600 + 1,
    });
    expect(tooLong.status).toBe(400);
    expect(errorCode(tooLong)).toBe('invalid_request');
    expect((await keys(owner)).find((k) => k.id === created.id)?.status).toBe('active');

    const week = await userApi(owner.idToken, 'POST', `/keys/${created.id}/roll`, {
      gracePeriodSeconds: 7 * 24 * 3600,
    });
    expect(week.status).toBe(201);
    const expiresAt = Date.parse((week.body as Issued).previous?.expiresAt ?? '');
    expect(expiresAt - Date.now()).toBeGreaterThan(7 * 24 * 3600_000 - 60_000);
  });
});
