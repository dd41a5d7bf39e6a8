import { beforeAll, describe, expect, it } from 'vitest';
import { utcDay } from '../../contracts/usage-event';
import { generateApiKey } from '../../services/accounts/api-key';
import { errorCode, exampleApi, signUpAndSignIn, type TestUser, userApi } from '../support/local-stack';
import { eventually, sleep } from '../support/wait';

// The example owner API (examples/rates-api) as `npm start` serves it: behind the gate, through its
// ALB stand-in, its usage counted by the real pipeline and read back through user-api.

interface RouteUsage {
  route: string;
  method: string;
  total: number;
  days: { date: string; count: number }[];
}
interface UsageByRoute {
  from: string;
  to: string;
  total: number;
  asOf: string;
  routes: RouteUsage[];
}

const example = exampleApi;

async function newKey(owner: TestUser, name: string): Promise<{ id: string; key: string }> {
  const created = await userApi(owner.idToken, 'POST', '/keys', { name });
  expect(created.status).toBe(201);
  return created.body as { id: string; key: string };
}

const today = () => utcDay(Date.now());
const byRoute = async (owner: TestUser, keyId?: string) => {
  const query = `from=${today()}&to=${today()}&groupBy=route${keyId ? `&keyId=${keyId}` : ''}`;
  const answer = await userApi(owner.idToken, 'GET', `/usage?${query}`);
  expect(answer.status).toBe(200);
  return answer.body as UsageByRoute;
};

describe('the example API behind the gate, against the local stack', () => {
  let owner: TestUser;
  let first: { id: string; key: string };
  let second: { id: string; key: string };

  beforeAll(async () => {
    owner = await signUpAndSignIn('example-owner');
    first = await newKey(owner, 'server');
    second = await newKey(owner, 'batch-jobs');
  });

  it('refuses a missing, malformed or unknown key with the 401 shape, and counts nothing', async () => {
    const missing = await example('/v1/currencies');
    expect(missing.status).toBe(401);
    expect(missing.body).toEqual({
      error: { code: 'missing_key', message: 'Send an API key in the x-api-key header or as a Bearer token' },
    });
    const malformed = await example('/v1/rates/EUR', { key: 'tg_not-a-key' });
    expect(malformed.status).toBe(401);
    expect(errorCode(malformed)).toBe('malformed_key');
    const unknown = await example('/v1/convert', {
      key: generateApiKey('tg').key,
      method: 'POST',
      body: { from: 'EUR', to: 'USD', amount: 10 },
    });
    expect(unknown.status).toBe(401);
    expect(errorCode(unknown)).toBe('unknown_key');
    // Refusals never reach the pipeline: nothing to wait for, but give a stray event time to land.
    await sleep(1500);
    expect((await byRoute(owner)).total).toBe(0);
  });

  it("answers the owner's bodies, counts exactly the billed calls, split by route; free and failed calls are not counted", async () => {
    const billed = { rates: 0, convert: 0 };
    const ratesOf = (base: string, key: string) => example(`/v1/rates/${base}`, { key });
    for (const [base, key] of [
      ['EUR', first.key],
      ['USD', first.key],
      ['GBP', first.key],
      ['USD', second.key],
      ['JPY', second.key],
    ] as const) {
      const answer = await ratesOf(base, key);
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ base, asOf: expect.any(String), rates: expect.any(Object) });
      expect((answer.body as { rates: Record<string, number> }).rates[base]).toBeUndefined();
      billed.rates++;
    }
    for (const [amount, result] of [
      [10, 9.2],
      [250, 230],
    ] as const) {
      const answer = await example('/v1/convert', {
        key: first.key,
        method: 'POST',
        body: { from: 'USD', to: 'EUR', amount },
      });
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({
        from: 'USD',
        to: 'EUR',
        amount,
        rate: 0.92,
        result,
      });
      billed.convert++;
    }
    // Answered, never billed: the free status check (the owner's policy), a 404 and a 400.
    for (let i = 0; i < 3; i++) {
      const status = await example('/v1/status', { key: second.key });
      expect(status.status).toBe(200);
      expect(status.body).toEqual({ ok: true, accountId: expect.any(String), keyId: second.id });
    }
    expect((await ratesOf('XXX', first.key)).status).toBe(404);
    const invalid = await example('/v1/convert', { key: first.key, method: 'POST', body: { from: 'USD' } });
    expect(invalid.status).toBe(400);
    expect(errorCode(invalid)).toBe('invalid_request');

    const expected = billed.rates + billed.convert;
    await eventually(async () => (await byRoute(owner)).total >= expected, 15_000, 200);
    // Exactly: nothing more arrives after the pipeline settled.
    await sleep(1500);
    const usage = await byRoute(owner);
    expect(usage.total).toBe(expected);
    expect(usage.routes.map(({ route, method, total }) => ({ route, method, total }))).toEqual([
      { route: '/v1/rates/:base', method: 'GET', total: billed.rates },
      { route: '/v1/convert', method: 'POST', total: billed.convert },
    ]);
    for (const route of usage.routes) expect(route.days).toEqual([{ date: today(), count: route.total }]);

    // The same totals without the split, and per key.
    const plain = await userApi(owner.idToken, 'GET', `/usage?from=${today()}&to=${today()}`);
    expect((plain.body as { total: number }).total).toBe(expected);
    const ofSecond = await byRoute(owner, second.id);
    expect(ofSecond.total).toBe(2);
    expect(ofSecond.routes.map((r) => [r.route, r.total])).toEqual([['/v1/rates/:base', 2]]);
  });

  it('serves its own OpenAPI document without a key', async () => {
    const doc = await example('/openapi.json');
    expect(doc.status).toBe(200);
    const body = doc.body as { openapi: string; paths: Record<string, unknown> };
    expect(body.openapi).toMatch(/^3\./);
    expect(Object.keys(body.paths).sort()).toEqual([
      '/v1/convert',
      '/v1/currencies',
      '/v1/rates/{base}',
      '/v1/status',
    ]);
  });
});
