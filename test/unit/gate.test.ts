import { Logger } from '@aws-lambda-powertools/logger';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { KeyApiMetric } from '../../contracts/metric-names';
import { MAX_ROUTE_TEMPLATES, type UsageEvent, usageEventSchema } from '../../contracts/usage-event';
import { generateApiKey } from '../../services/accounts/api-key';
import type { KeyLookupRecord } from '../../services/accounts/records';
import { composeGate, type GateEnv, loadGateConfig } from '../../services/gate/index';
import type { AccountTerms } from '../../services/gate/limits';
import { albEvent, resultJson } from '../support/alb';

// The gate as an owner composes it (composeGate over a literal configuration), around a trivial ALB
// handler and a trivial Hono app, with in-memory stand-ins for the key table and the transport.
// Nothing here reads or sets process.env.

const CONFIG = loadGateConfig({
  [ENV.accountsTable]: 'tollgate-test-accounts',
  [ENV.keysTable]: 'tollgate-test-keys',
  [ENV.usageTable]: 'tollgate-test-usage',
  [ENV.plansTable]: 'tollgate-test-plans',
  [ENV.usageQueueUrl]: 'https://sqs.us-east-1.amazonaws.com/000000000000/tollgate-test-usage',
});

function gated(
  settings: { publishFails?: boolean; mode?: 'open' | 'closed'; terms?: Map<string, AccountTerms> } = {},
) {
  const byHash = new Map<string, KeyLookupRecord>();
  const published: UsageEvent[] = [];
  const recorded: string[] = [];
  let invocations = 0;
  const tollgate = composeGate(
    { ...CONFIG, [ENV.publishFailureMode]: settings.mode ?? 'closed' },
    {
      lookup: async (keyHash) => {
        const record = byHash.get(keyHash);
        return record ? { found: true, record } : { found: false };
      },
      terms: async (accountId) => {
        const record = settings.terms?.get(accountId);
        return record ? { found: true, record } : { found: false };
      },
      publisher: {
        publish: async (event) => {
          if (settings.publishFails) throw new Error('queue down');
          published.push(event);
        },
      },
      logger: new Logger({ serviceName: 'gate-test', logLevel: 'SILENT' }),
      metrics: {
        addMetric: (name) => {
          recorded.push(name);
        },
        endInvocation: () => {
          invocations++;
        },
      },
    },
  );
  const addKey = (record: Omit<KeyLookupRecord, 'status'>, status: KeyLookupRecord['status'] = 'active') => {
    const key = generateApiKey('tg');
    byHash.set(key.keyHash, { ...record, status });
    return key.key;
  };
  return { tollgate, addKey, published, recorded, invocations: () => invocations };
}

describe('the ALB wrapper (composeGate().albHandler)', () => {
  function wrapped(settings?: Parameters<typeof gated>[0]) {
    const g = gated(settings);
    const calls: string[] = [];
    const handler = g.tollgate.albHandler(
      async (event, caller) => {
        calls.push(`${event.httpMethod} ${event.path} ${caller.accountId}/${caller.keyId}`);
        if (event.path === '/v1/boom') throw new Error('owner bug');
        const status = event.path.startsWith('/v1/items/') ? 200 : 404;
        return {
          statusCode: status,
          headers: { 'content-type': 'text/plain' },
          body: `hello ${caller.keyId}`,
        };
      },
      { routes: ['GET /v1/items/:id', 'POST /v1/items'] },
    );
    return { ...g, handler, calls };
  }

  it('refuses a missing or unknown key with the 401 shape; the handler never runs, nothing is billed', async () => {
    const w = wrapped();
    const missing = await w.handler(albEvent({ method: 'GET', path: '/v1/items/1' }));
    expect(missing.statusCode).toBe(401);
    expect(resultJson(missing).error).toEqual({
      code: 'missing_key',
      message: 'Send an API key in the x-api-key header or as a Bearer token',
    });
    const unknown = await w.handler(
      albEvent({ method: 'GET', path: '/v1/items/1', headers: { 'x-api-key': generateApiKey('tg').key } }),
    );
    expect(unknown.statusCode).toBe(401);
    expect(resultJson(unknown).error?.code).toBe('unknown_key');
    const revoked = w.addKey({ keyId: 'key_old', accountId: 'acc_1' }, 'revoked');
    const refused = await w.handler(
      albEvent({ method: 'GET', path: '/v1/items/1', headers: { 'x-api-key': revoked } }),
    );
    expect(resultJson(refused).error?.code).toBe('revoked_key');
    expect(w.calls).toEqual([]);
    expect(w.published).toEqual([]);
    expect(w.invocations()).toBe(3);
  });

  it("runs the owner's handler with the caller and bills its answer under the declared route template", async () => {
    const w = wrapped();
    const key = w.addKey({ keyId: 'key_a', accountId: 'acc_1' });
    const result = await w.handler(
      albEvent({ method: 'GET', path: '/v1/items/42', headers: { authorization: `Bearer ${key}` } }),
    );
    expect(result).toMatchObject({ statusCode: 200, body: 'hello key_a' });
    expect(w.calls).toEqual(['GET /v1/items/42 acc_1/key_a']);
    expect(w.published).toHaveLength(1);
    const [event] = w.published;
    expect(usageEventSchema.parse(event)).toMatchObject({
      keyId: 'key_a',
      accountId: 'acc_1',
      route: '/v1/items/:id',
      method: 'GET',
      status: '2xx',
      units: 1,
    });
  });

  it('does not bill what the policy does not (a 404, a handler that throws: 500)', async () => {
    const w = wrapped();
    const key = w.addKey({ keyId: 'key_a', accountId: 'acc_1' });
    const notFound = await w.handler(
      albEvent({ method: 'GET', path: '/v1/nothing', headers: { 'x-api-key': key } }),
    );
    expect(notFound.statusCode).toBe(404);
    const boom = await w.handler(
      albEvent({ method: 'GET', path: '/v1/boom', headers: { 'x-api-key': key } }),
    );
    expect(boom.statusCode).toBe(500);
    expect(resultJson(boom).error).toEqual({ code: 'internal_error', message: 'The request failed' });
    expect(w.published).toEqual([]);
    expect(w.recorded.filter((name) => name === KeyApiMetric.internalErrors)).toHaveLength(1);
    expect(w.recorded.filter((name) => name === KeyApiMetric.notBilled)).toHaveLength(2);
  });

  it('withholds a billable answer whose usage cannot be recorded (closed: 503), delivers it when open', async () => {
    const closed = wrapped({ publishFails: true });
    const key = closed.addKey({ keyId: 'key_a', accountId: 'acc_1' });
    const withheld = await closed.handler(
      albEvent({ method: 'GET', path: '/v1/items/1', headers: { 'x-api-key': key } }),
    );
    expect(withheld.statusCode).toBe(503);
    expect(withheld.headers?.['retry-after']).toBe('1');
    expect(resultJson(withheld).error?.code).toBe('service_unavailable');
    expect(withheld.body).not.toContain('hello');

    const open = wrapped({ publishFails: true, mode: 'open' });
    const openKey = open.addKey({ keyId: 'key_b', accountId: 'acc_1' });
    const delivered = await open.handler(
      albEvent({ method: 'GET', path: '/v1/items/1', headers: { 'x-api-key': openKey } }),
    );
    expect(delivered).toMatchObject({ statusCode: 200, body: 'hello key_b' });
    expect(open.recorded).toContain(KeyApiMetric.unmetered);
  });

  it('refuses a route list it cannot use', () => {
    expect(() =>
      gated().tollgate.albHandler(async () => ({ statusCode: 200 }), { routes: ['/v1/no-method'] }),
    ).toThrow(/a route is "<METHOD> <template>"/);
    // A template the event schema refuses would make every answer on it unbillable: at cold start.
    expect(() =>
      gated().tollgate.albHandler(async () => ({ statusCode: 200 }), { routes: ['GET /v1/prix/€'] }),
    ).toThrow(/printable path/);
    const many = Array.from({ length: MAX_ROUTE_TEMPLATES + 1 }, (_, i) => `GET /v1/r${i}`);
    expect(() => gated().tollgate.albHandler(async () => ({ statusCode: 200 }), { routes: many })).toThrow(
      /at most 64 routes/,
    );
  });

  it('bills any method a client sends, folded into the closed set, each event valid for the consumer', async () => {
    const g = gated();
    const handler = g.tollgate.albHandler(async () => ({ statusCode: 200, body: 'ok' }), {
      routes: ['ALL /v1/items/:id'],
    });
    const key = g.addKey({ keyId: 'key_m', accountId: 'acc_m' });
    const methods = ['GET', 'DELETE', 'M-SEARCH', 'PROPFIND', 'ABCDEFGHIJKLMNOPQRST', 'get'];
    for (const method of methods) {
      const answer = await handler(albEvent({ method, path: '/v1/items/1', headers: { 'x-api-key': key } }));
      expect(answer.statusCode, method).toBe(200);
    }
    expect(g.published.map((e) => e.method)).toEqual(['GET', 'DELETE', 'OTHER', 'OTHER', 'OTHER', 'OTHER']);
    for (const event of g.published)
      expect(usageEventSchema.parse(JSON.parse(JSON.stringify(event)))).toEqual(event);
  });
});

describe('the Hono middleware (composeGate().middleware)', () => {
  function app(settings?: Parameters<typeof gated>[0]) {
    const g = gated(settings);
    const hono = new Hono<GateEnv>();
    hono.use('/v1/*', g.tollgate.middleware({ bill: (a) => a.route !== '/v1/free' && a.status < 400 }));
    hono.get('/v1/items/:id', (c) => c.json({ id: c.req.param('id'), caller: c.get('caller') }));
    hono.post('/v1/items', (c) => c.json({ created: true }, 201));
    hono.get('/v1/free', (c) => c.json({ free: true }));
    hono.get('/v1/boom', () => {
      throw new Error('owner bug');
    });
    hono.get('/open', (c) => c.text('no key needed'));
    return { ...g, hono };
  }

  it('refuses without a key in the one error shape, and the route never runs', async () => {
    const a = app();
    const response = await a.hono.request('/v1/items/7');
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="tollgate"');
    expect(await response.json()).toEqual({
      error: { code: 'missing_key', message: 'Send an API key in the x-api-key header or as a Bearer token' },
    });
    expect(a.published).toEqual([]);
    expect(await (await a.hono.request('/open')).text()).toBe('no key needed');
  });

  it('gives handlers the caller and bills each answer under the template Hono matched', async () => {
    const a = app();
    const key = a.addKey({ keyId: 'key_h', accountId: 'acc_2' });
    const read = await a.hono.request('/v1/items/7', { headers: { 'x-api-key': key } });
    expect(read.status).toBe(200);
    expect(await read.json()).toEqual({ id: '7', caller: { accountId: 'acc_2', keyId: 'key_h' } });
    const created = await a.hono.request('/v1/items', {
      method: 'POST',
      headers: { authorization: `Bearer ${key}` },
    });
    expect(created.status).toBe(201);
    const free = await a.hono.request('/v1/free', { headers: { 'x-api-key': key } });
    expect(free.status).toBe(200);
    const missing = await a.hono.request('/v1/missing', { headers: { 'x-api-key': key } });
    expect(missing.status).toBe(404);
    expect(a.published.map((e) => `${e.method} ${e.route} ${e.status}`)).toEqual([
      'GET /v1/items/:id 2xx',
      'POST /v1/items 2xx',
    ]);
    expect(a.invocations()).toBe(4);
  });

  it('counts a handler that throws as an internal error and does not bill its 500', async () => {
    const a = app();
    const key = a.addKey({ keyId: 'key_h', accountId: 'acc_2' });
    const response = await a.hono.request('/v1/boom', { headers: { 'x-api-key': key } });
    expect(response.status).toBe(500);
    expect(a.published).toEqual([]);
    expect(a.recorded.filter((name) => name === KeyApiMetric.internalErrors)).toHaveLength(1);
  });

  it('records at most MAX_ROUTE_TEMPLATES templates per container, the rest under *', async () => {
    const g = gated();
    const hono = new Hono<GateEnv>();
    hono.use('/v1/*', g.tollgate.middleware());
    for (let i = 0; i < MAX_ROUTE_TEMPLATES + 6; i++) hono.get(`/v1/r${i}`, (c) => c.text('ok'));
    const key = g.addKey({ keyId: 'key_r', accountId: 'acc_r' });
    for (let i = 0; i < MAX_ROUTE_TEMPLATES + 6; i++) {
      expect((await hono.request(`/v1/r${i}`, { headers: { 'x-api-key': key } })).status).toBe(200);
    }
    // Seen again, a recorded template keeps its name.
    await hono.request('/v1/r0', { headers: { 'x-api-key': key } });
    const routes = g.published.map((e) => e.route);
    expect(new Set(routes).size).toBe(MAX_ROUTE_TEMPLATES + 1);
    expect(routes.filter((r) => r === '*')).toHaveLength(6);
    expect(routes.at(-1)).toBe('/v1/r0');
  });

  it('answers 503 instead of a billable answer whose usage cannot be recorded, without its headers', async () => {
    const a = app({ publishFails: true });
    const key = a.addKey({ keyId: 'key_h', accountId: 'acc_2' });
    const response = await a.hono.request('/v1/items/7', { headers: { 'x-api-key': key } });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('service_unavailable');
    // A free route publishes nothing, so it cannot fail for that.
    expect((await a.hono.request('/v1/free', { headers: { 'x-api-key': key } })).status).toBe(200);
  });
});
