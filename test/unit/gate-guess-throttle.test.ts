import { Logger } from '@aws-lambda-powertools/logger';
import type { ALBEvent } from 'aws-lambda';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { DEFAULT_GUESS_THROTTLE, ENV } from '../../contracts/config';
import { KeyApiMetric } from '../../contracts/metric-names';
import { generateApiKey } from '../../services/accounts/api-key';
import type { KeyLookupRecord } from '../../services/accounts/records';
import {
  AMBIGUOUS_FORWARDED_FOR,
  albClientIp,
  clientKey,
  rightmostForwardedFor,
  UNATTRIBUTED_CLIENT,
} from '../../services/gate/client-ip';
import { GuessThrottle } from '../../services/gate/guess-throttle';
import { composeGate, type GateEnv, loadGateConfig } from '../../services/gate/index';
import { composeKeyApi } from '../../services/key-api/compose';
import { loadKeyApiConfig } from '../../services/key-api/config';
import { albEvent, resultJson } from '../support/alb';

// The guess throttle as an owner's gate and key-api compose it, over an in-memory key table that
// counts its lookups (each one a KeyLookup read on AWS) and a clock the test moves.

const SETTINGS = {
  [ENV.accountsTable]: 'tollgate-test-accounts',
  [ENV.keysTable]: 'tollgate-test-keys',
  [ENV.usageTable]: 'tollgate-test-usage',
  [ENV.plansTable]: 'tollgate-test-plans',
  [ENV.usageQueueUrl]: 'https://sqs.us-east-1.amazonaws.com/000000000000/tollgate-test-usage',
};

function world(settings: Record<string, string> = {}) {
  const byHash = new Map<string, KeyLookupRecord>();
  const lookups: string[] = [];
  const recorded: string[] = [];
  let now = Date.UTC(2026, 0, 5, 12);
  const overrides = {
    lookup: async (keyHash: string) => {
      lookups.push(keyHash);
      const record = byHash.get(keyHash);
      return record ? { found: true as const, record } : { found: false as const };
    },
    terms: async () => ({ found: false as const }),
    publisher: { publish: async () => {} },
    logger: new Logger({ serviceName: 'guess-test', logLevel: 'SILENT' }),
    metrics: { addMetric: (name: string) => void recorded.push(name), endInvocation: () => {} },
    clock: { now: () => new Date(now) },
  };
  const addKey = () => {
    const key = generateApiKey('tg');
    byHash.set(key.keyHash, { keyId: `key_${byHash.size}`, accountId: 'acc_1', status: 'active' });
    return key.key;
  };
  return {
    overrides,
    settings: { ...SETTINGS, ...settings },
    addKey,
    lookups,
    recorded,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const unknownKey = () => generateApiKey('tg').key;
const fromIp = (key: string, xff: string) =>
  albEvent({ method: 'GET', path: '/v1/x', headers: { 'x-api-key': key, 'x-forwarded-for': xff } });
const answer = (result: { statusCode: number; body?: string }) =>
  `${result.statusCode} ${resultJson(result as never).error?.code ?? 'ok'}`;

describe('GuessThrottle: a budget of lookups that find nothing, per client and window', () => {
  it('takes up to the budget, refuses with the seconds left, opens again after the window', () => {
    let now = 1_000_000;
    const throttle = new GuessThrottle({ budget: 3, windowMs: 60_000, maxClients: 10 }, () => now);
    const budget = throttle.budgetOf('198.51.100.7');
    expect([1, 2, 3].map(() => budget?.take().taken)).toEqual([true, true, true]);
    now += 15_000;
    expect(budget?.take()).toEqual({ taken: false, retryAfterSeconds: 45 });
    // Another client has its own.
    expect(throttle.budgetOf('198.51.100.8')?.take().taken).toBe(true);
    now += 45_000;
    expect(budget?.take().taken).toBe(true);
  });

  it('gives back a lookup that found its key: real keys never drain the budget', () => {
    const throttle = new GuessThrottle({ budget: 2, windowMs: 60_000, maxClients: 10 }, () => 0);
    const budget = throttle.budgetOf('a');
    for (let i = 0; i < 100; i++) {
      const ticket = budget?.take();
      if (ticket?.taken) ticket.refund();
    }
    expect([budget?.take().taken, budget?.take().taken, budget?.take().taken]).toEqual([true, true, false]);
  });

  it('is off with a budget of 0, and remembers at most maxClients clients', () => {
    expect(new GuessThrottle({ budget: 0 }).budgetOf('a')).toBeUndefined();
    const throttle = new GuessThrottle({ budget: 1, windowMs: 60_000, maxClients: 2 }, () => 0);
    expect(throttle.budgetOf('a')?.take().taken).toBe(true);
    expect(throttle.budgetOf('a')?.take().taken).toBe(false);
    throttle.budgetOf('b')?.take();
    throttle.budgetOf('c')?.take(); // 'a' is evicted: memory stays bounded by maxClients
    expect(throttle.budgetOf('a')?.take().taken).toBe(true);
  });
});

describe('the client address', () => {
  it("is the right-most x-forwarded-for entry (the ALB's), never a client-written one", () => {
    expect(rightmostForwardedFor(['203.0.113.9, 198.51.100.7'])).toBe('198.51.100.7');
    expect(rightmostForwardedFor(['1.1.1.1', '9.9.9.9, 198.51.100.7 '])).toBe('198.51.100.7');
    expect(rightmostForwardedFor([])).toBeUndefined();
    expect(rightmostForwardedFor([''])).toBeUndefined();
  });

  it('is kept by IPv4 address and by IPv6 /64; anything else shares one budget; none is no address', () => {
    expect(clientKey('198.51.100.7')).toBe('198.51.100.7');
    expect(clientKey('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:0db8:0001:0002:ffff:0:0:9')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientKey('64:ff9b::192.0.2.33')).toBe('64:ff9b:0:0::/64');
    for (const bad of ['', 'unknown', '1.2.3', '<script>', '[::1]x', AMBIGUOUS_FORWARDED_FOR]) {
      expect(clientKey(bad), bad).toBe(UNATTRIBUTED_CLIENT);
    }
    expect(clientKey(undefined)).toBeUndefined();
  });

  it('takes the port off, as an ALB that keeps the client port appends it (a new port per connection)', () => {
    expect(clientKey('198.51.100.7:443')).toBe('198.51.100.7');
    expect(clientKey('198.51.100.7:61234')).toBe('198.51.100.7');
    expect(clientKey('[2001:db8:1:2::9]:443')).toBe('2001:db8:1:2::/64');
    expect(clientKey('[2001:db8:1:2::9]')).toBe('2001:db8:1:2::/64');
    expect(clientKey('[::ffff:198.51.100.7]:80')).toBe('198.51.100.7');
    expect(clientKey(' 198.51.100.7:1 ')).toBe('198.51.100.7');
  });

  it('of an ALB event with x-forwarded-for twice is none of its entries: the ambiguous marker', () => {
    const event = (multi: Record<string, string[]>, single: Record<string, string> = {}): ALBEvent => ({
      ...albEvent({}),
      headers: single,
      multiValueHeaders: multi,
    });
    expect(albClientIp(event({ 'x-forwarded-for': ['203.0.113.9, 198.51.100.7'] }))).toBe('198.51.100.7');
    expect(albClientIp(event({ 'X-Forwarded-For': ['198.51.100.7', '10.0.0.1'] }))).toBe(
      AMBIGUOUS_FORWARDED_FOR,
    );
    expect(
      albClientIp(event({ 'x-forwarded-for': ['198.51.100.7'] }, { 'x-forwarded-for': '10.0.0.1' })),
    ).toBe(AMBIGUOUS_FORWARDED_FOR);
    expect(albClientIp(event({}, { 'x-forwarded-for': '10.0.0.1, 198.51.100.7:5000' }))).toBe(
      '198.51.100.7:5000',
    );
    expect(albClientIp(event({}))).toBeUndefined();
  });
});

describe('the gate throttles guessing per client (ALB wrapper)', () => {
  const GUESSER = '198.51.100.7';
  const NEIGHBOUR = '198.51.100.8';

  function wrapped(settings: Record<string, string> = {}) {
    const w = world({ [ENV.guessBudget]: '5', ...settings });
    const tollgate = composeGate(loadGateConfig(w.settings), w.overrides);
    const handler = tollgate.albHandler(async () => ({ statusCode: 200, body: '{}' }));
    return { ...w, tollgate, handler };
  }

  it('reads up to the budget of unknown keys, then answers 429 too_many_guesses without reading', async () => {
    const w = wrapped();
    const realBefore = w.addKey();
    expect(answer(await w.handler(fromIp(realBefore, GUESSER)))).toBe('200 ok'); // cached before the flood
    const knownUnknown = unknownKey();
    expect(answer(await w.handler(fromIp(knownUnknown, GUESSER)))).toBe('401 unknown_key');
    const answers = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const label = answer(await w.handler(fromIp(unknownKey(), GUESSER)));
      answers.set(label, (answers.get(label) ?? 0) + 1);
    }
    // One of the budget went to the known-unknown key above.
    expect(Object.fromEntries(answers)).toEqual({ '401 unknown_key': 4, '429 too_many_guesses': 996 });
    expect(w.lookups).toHaveLength(2 + 4);

    const refused = await w.handler(fromIp(unknownKey(), GUESSER));
    expect(refused.statusCode).toBe(429);
    expect(refused.headers?.['retry-after']).toBe('60');
    expect(refused.headers?.['cache-control']).toBe('no-store');
    expect(resultJson(refused)).toEqual({
      error: {
        code: 'too_many_guesses',
        message: 'Too many unknown API keys from this address; retry later',
      },
    });
    expect(w.recorded.filter((name) => name === KeyApiMetric.guessesThrottled)).toHaveLength(997);

    // Cached answers are still given to the guesser's address: its real key, its known-unknown one.
    expect(answer(await w.handler(fromIp(realBefore, GUESSER)))).toBe('200 ok');
    expect(answer(await w.handler(fromIp(knownUnknown, GUESSER)))).toBe('401 unknown_key');
    // A known key past its fresh window is refreshed: a known key's read is not a guess.
    w.advance(10_000);
    expect(answer(await w.handler(fromIp(realBefore, GUESSER)))).toBe('200 ok');
    // Another address reads as usual, a new real key included.
    expect(answer(await w.handler(fromIp(w.addKey(), NEIGHBOUR)))).toBe('200 ok');
    expect(answer(await w.handler(fromIp(unknownKey(), NEIGHBOUR)))).toBe('401 unknown_key');
    // What the price is: a real key this container has not seen, from the spent address, waits.
    expect(answer(await w.handler(fromIp(w.addKey(), GUESSER)))).toBe('429 too_many_guesses');

    // After the window the address gets lookups again.
    w.advance(50_000);
    expect(answer(await w.handler(fromIp(unknownKey(), GUESSER)))).toBe('401 unknown_key');
  });

  it('does not charge real keys, nor keys answered from the negative cache', async () => {
    const w = wrapped();
    const keys = Array.from({ length: 50 }, () => w.addKey());
    for (const key of keys) expect(answer(await w.handler(fromIp(key, GUESSER)))).toBe('200 ok');
    const guesses = Array.from({ length: 5 }, unknownKey);
    for (let round = 0; round < 10; round++) {
      for (const key of guesses)
        expect(answer(await w.handler(fromIp(key, GUESSER)))).toBe('401 unknown_key');
    }
    expect(answer(await w.handler(fromIp(unknownKey(), GUESSER)))).toBe('429 too_many_guesses');
    // A negative entry that expired needs a read again: that one is charged.
    w.advance(3_000);
    expect(answer(await w.handler(fromIp(guesses[0] as string, GUESSER)))).toBe('429 too_many_guesses');
  });

  it('cannot be overdrawn by concurrent guesses, and one key in flight is one charge', async () => {
    const w = wrapped();
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => w.handler(fromIp(unknownKey(), GUESSER)).then(answer)),
    );
    expect(answers.filter((a) => a === '401 unknown_key')).toHaveLength(5);
    expect(w.lookups).toHaveLength(5);

    const v = wrapped();
    const same = unknownKey();
    await Promise.all(Array.from({ length: 50 }, () => v.handler(fromIp(same, GUESSER))));
    expect(v.lookups).toHaveLength(1);
    for (let i = 0; i < 4; i++)
      expect(answer(await v.handler(fromIp(unknownKey(), GUESSER)))).toBe('401 unknown_key');
  });

  it('is not fooled by client-written x-forwarded-for entries', async () => {
    const w = wrapped();
    const answers = new Set<string>();
    for (let i = 0; i < 50; i++) {
      answers.add(answer(await w.handler(fromIp(unknownKey(), `10.0.${i}.1, ${GUESSER}`))));
    }
    expect(w.lookups).toHaveLength(5);
    expect(answers).toEqual(new Set(['401 unknown_key', '429 too_many_guesses']));
  });

  it('is not turned off by an ip:port entry: the ALB keeping the client port gives a new port per connection', async () => {
    const w = wrapped();
    const labels: string[] = [];
    for (let i = 0; i < 50; i++) {
      labels.push(answer(await w.handler(fromIp(unknownKey(), `10.0.${i}.1, ${GUESSER}:${40_000 + i}`))));
    }
    expect(w.lookups).toHaveLength(5);
    expect(labels.slice(5)).toEqual(Array(45).fill('429 too_many_guesses'));
    // The same address without a port is the same client; another address is not.
    expect(answer(await w.handler(fromIp(unknownKey(), GUESSER)))).toBe('429 too_many_guesses');
    expect(answer(await w.handler(fromIp(unknownKey(), `${NEIGHBOUR}:443`)))).toBe('401 unknown_key');
    // IPv6 with a port: by its /64, as without one.
    const v6 = Array.from({ length: 7 }, (_, i) => `[2001:db8:5:6::${i + 1}]:${50_000 + i}`);
    const v6Labels: string[] = [];
    for (const entry of v6) v6Labels.push(answer(await w.handler(fromIp(unknownKey(), entry))));
    expect(v6Labels).toEqual([...Array(5).fill('401 unknown_key'), ...Array(2).fill('429 too_many_guesses')]);
  });

  it('does not trust either of two x-forwarded-for headers (multi-value ALB events): they share one budget', async () => {
    const w = wrapped();
    const twice = (key: string, first: string, second: string): ALBEvent => ({
      ...albEvent({ method: 'GET', path: '/v1/x', headers: {} }),
      headers: undefined,
      multiValueHeaders: { 'x-api-key': [key], 'x-forwarded-for': [first, second] },
    });
    const labels: string[] = [];
    // The guesser writes a new address in the last header each time, and one in the first.
    for (let i = 0; i < 50; i++) {
      const spoof = `10.1.${i}.1`;
      labels.push(
        answer(await w.handler(twice(unknownKey(), i % 2 ? `${spoof}, ${GUESSER}` : spoof, `10.2.${i}.1`))),
      );
    }
    expect(w.lookups).toHaveLength(5);
    expect(labels.slice(5)).toEqual(Array(45).fill('429 too_many_guesses'));
    // Clients that send the header once keep budgets of their own.
    expect(answer(await w.handler(fromIp(unknownKey(), GUESSER)))).toBe('401 unknown_key');
    expect(answer(await w.handler(fromIp(unknownKey(), NEIGHBOUR)))).toBe('401 unknown_key');
    // The price, as for any spent budget: a real key not yet seen by this container, sent with two
    // headers, waits; sent with one, it has its client's own budget.
    const real = w.addKey();
    expect(answer(await w.handler(twice(real, '10.9.9.9', GUESSER)))).toBe('429 too_many_guesses');
    expect(answer(await w.handler(fromIp(real, '10.9.9.9')))).toBe('200 ok');
    expect(answer(await w.handler(twice(real, '10.9.9.9', GUESSER)))).toBe('200 ok'); // cached now
  });

  it('takes the address from the clientIp option; none means not throttled', async () => {
    const w = world({ [ENV.guessBudget]: '2' });
    const tollgate = composeGate(loadGateConfig(w.settings), w.overrides);
    const handler = tollgate.albHandler(async () => ({ statusCode: 200, body: '{}' }), {
      clientIp: (event) => event.headers?.['x-client'],
    });
    const from = (client?: string) =>
      albEvent({ headers: { 'x-api-key': unknownKey(), ...(client ? { 'x-client': client } : {}) } });
    const labels: string[] = [];
    for (let i = 0; i < 3; i++) labels.push(answer(await handler(from('2001:db8::1'))));
    // The same /64: the same budget.
    labels.push(answer(await handler(from('2001:db8::ffff:2'))));
    for (let i = 0; i < 10; i++) labels.push(answer(await handler(from())));
    expect(labels).toEqual([
      '401 unknown_key',
      '401 unknown_key',
      '429 too_many_guesses',
      '429 too_many_guesses',
      ...Array(10).fill('401 unknown_key'),
    ]);
  });

  it('is off with TOLLGATE_GUESS_BUDGET=0', async () => {
    const w = wrapped({ [ENV.guessBudget]: '0' });
    for (let i = 0; i < 100; i++) await w.handler(fromIp(unknownKey(), GUESSER));
    expect(w.lookups).toHaveLength(100);
  });
});

describe('the Hono middleware throttles guessing per client', () => {
  function app(clientIp?: Parameters<ReturnType<typeof composeGate>['middleware']>[0]) {
    const w = world({ [ENV.guessBudget]: '3' });
    const tollgate = composeGate(loadGateConfig(w.settings), w.overrides);
    const hono = new Hono<GateEnv>();
    hono.use('/v1/*', tollgate.middleware(clientIp));
    hono.get('/v1/x', (c) => c.json({ ok: true }));
    return { ...w, hono };
  }
  const codes = async (responses: Array<Response | Promise<Response>>) =>
    Promise.all(
      responses.map(async (r) => {
        const response = await r;
        const body = (await response.json()) as { error?: { code: string } };
        return `${response.status} ${body.error?.code ?? 'ok'}`;
      }),
    );

  it('behind an ALB (hono/aws-lambda): by the right-most x-forwarded-for entry', async () => {
    const a = app();
    const lambdaEnv = { requestContext: { elb: { targetGroupArn: 'arn:tg' } } };
    const request = (key: string, xff: string) =>
      a.hono.request('/v1/x', { headers: { 'x-api-key': key, 'x-forwarded-for': xff } }, lambdaEnv);
    const guesses: string[] = [];
    for (let i = 0; i < 5; i++)
      guesses.push(...(await codes([request(unknownKey(), `10.9.9.${i}, 192.0.2.1`)])));
    expect(guesses).toEqual([
      '401 unknown_key',
      '401 unknown_key',
      '401 unknown_key',
      '429 too_many_guesses',
      '429 too_many_guesses',
    ]);
    expect(await codes([request(a.addKey(), '192.0.2.2')])).toEqual(['200 ok']);
  });

  it('behind an ALB: by the event hono/aws-lambda passes, so two x-forwarded-for headers share one budget', async () => {
    const a = app();
    // hono/aws-lambda joins repeated headers into one for the Request; the event keeps them apart.
    const request = (key: string, values: string[]) =>
      a.hono.request(
        '/v1/x',
        { headers: { 'x-api-key': key, 'x-forwarded-for': values.join(', ') } },
        {
          requestContext: { elb: { targetGroupArn: 'arn:tg' } },
          event: { ...albEvent({}), headers: undefined, multiValueHeaders: { 'x-forwarded-for': values } },
        },
      );
    const labels: string[] = [];
    for (let i = 0; i < 6; i++)
      labels.push(...(await codes([request(unknownKey(), ['192.0.2.1', `10.3.${i}.1`])])));
    expect(labels).toEqual([...Array(3).fill('401 unknown_key'), ...Array(3).fill('429 too_many_guesses')]);
    // One header, with the ALB's port: the client's own budget.
    expect(await codes([request(unknownKey(), ['10.0.0.1, 192.0.2.1:1234'])])).toEqual(['401 unknown_key']);
  });

  it('on Node: by the connection address; with clientIp: by what it says', async () => {
    const a = app();
    const nodeEnv = (address: string) => ({ incoming: { socket: { remoteAddress: address } } });
    const onNode = (address: string) =>
      a.hono.request('/v1/x', { headers: { 'x-api-key': unknownKey() } }, nodeEnv(address));
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) seen.push(...(await codes([onNode('::ffff:192.0.2.5')])));
    expect(seen.at(-1)).toBe('429 too_many_guesses');
    expect(a.lookups).toHaveLength(3);

    const b = app({ clientIp: (c) => c.req.header('x-client') });
    const labels: string[] = [];
    for (let i = 0; i < 4; i++) {
      labels.push(
        ...(await codes([
          b.hono.request('/v1/x', { headers: { 'x-api-key': unknownKey(), 'x-client': '192.0.2.6' } }),
        ])),
      );
    }
    expect(labels.at(-1)).toBe('429 too_many_guesses');
    // app.request() without an address: not throttled.
    const c = app();
    await codes(
      Array.from({ length: 10 }, () => c.hono.request('/v1/x', { headers: { 'x-api-key': unknownKey() } })),
    );
    expect(c.lookups).toHaveLength(10);
  });
});

describe('key-api throttles guessing too (it runs on the gate)', () => {
  it('by the right-most x-forwarded-for entry of its ALB event', async () => {
    const w = world();
    const { handler } = composeKeyApi(loadKeyApiConfig(w.settings), {
      ...w.overrides,
      readKeyDayCount: async () => 0,
    });
    const labels = new Map<string, number>();
    for (let i = 0; i < 100; i++) {
      const label = answer(await handler(fromIp(unknownKey(), `203.0.113.${i}, 198.51.100.9`)));
      labels.set(label, (labels.get(label) ?? 0) + 1);
    }
    expect(Object.fromEntries(labels)).toEqual({
      '401 unknown_key': DEFAULT_GUESS_THROTTLE.budget,
      '429 too_many_guesses': 100 - DEFAULT_GUESS_THROTTLE.budget,
    });
    expect(w.lookups).toHaveLength(DEFAULT_GUESS_THROTTLE.budget);
    expect(answer(await handler(fromIp(w.addKey(), '198.51.100.10')))).toBe('200 ok');
  });
});

describe('the throttle configuration', () => {
  it('has defaults, takes the TOLLGATE_GUESS_* variables, and refuses nonsense at cold start', () => {
    const defaults = loadGateConfig(SETTINGS);
    expect([defaults[ENV.guessBudget], defaults[ENV.guessWindowMs], defaults[ENV.guessMaxClients]]).toEqual([
      20, 60_000, 50_000,
    ]);
    const set = loadGateConfig({
      ...SETTINGS,
      [ENV.guessBudget]: '100',
      [ENV.guessWindowMs]: '30000',
      [ENV.guessMaxClients]: '1000',
    });
    expect(composeGate(set, world().overrides).guesses.settings).toEqual({
      budget: 100,
      windowMs: 30_000,
      maxClients: 1000,
    });
    for (const [name, value] of [
      [ENV.guessBudget, '-1'],
      [ENV.guessBudget, 'many'],
      [ENV.guessWindowMs, '0'],
      [ENV.guessMaxClients, '0'],
    ] as const) {
      expect(() => loadGateConfig({ ...SETTINGS, [name]: value }), `${name}=${value}`).toThrow(name);
    }
  });
});
