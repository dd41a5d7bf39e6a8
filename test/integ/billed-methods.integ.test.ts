import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utcDay } from '../../contracts/usage-event';
import { recordFigures } from '../support/figures';
import { endpoints, signUpAndSignIn, type TestUser, userApi } from '../support/local-stack';
import { type RawResponse, rawExchange, requestBytes } from '../support/raw-http';
import { eventually, sleep } from '../support/wait';

// Every billable answer is counted whatever method the client sends: the gate folds the method
// into a closed set (GET … OPTIONS, else OTHER) and validates each event as it mints it, so no
// client-chosen token can earn a 200 the consumer then refuses, nor grow a counter's attributes.
// Sent over raw sockets through the local ALB, which, like ALB, passes any method token on.

const METHODS = ['GET', 'POST', 'PROPFIND', 'PURGE', 'M-SEARCH', 'ABCDEFGHIJKLMNOPQRST', 'get', 'OPTIONS'];

interface Usage {
  total: number;
  routes: { route: string; method: string; total: number }[];
}

async function send(endpoint: string, method: string, path: string, key: string): Promise<RawResponse> {
  const outcome = await rawExchange(
    endpoint,
    requestBytes(method, path, [
      ['host', Buffer.from('127.0.0.1')],
      ['x-api-key', Buffer.from(key)],
      ['connection', Buffer.from('close')],
    ]),
  );
  if (outcome.kind !== 'response') throw new Error(`no answer to ${method}: ${JSON.stringify(outcome)}`);
  return outcome.response;
}

const usageOf = async (owner: TestUser, keyId: string): Promise<Usage> => {
  const day = utcDay(Date.now());
  const answer = await userApi(
    owner.idToken,
    'GET',
    `/usage?from=${day}&to=${day}&groupBy=route&keyId=${keyId}`,
  );
  expect(answer.status).toBe(200);
  return answer.body as Usage;
};

describe('billable answers counted whatever the method', () => {
  let owner: TestUser;
  const figures: Record<string, unknown> = { parameters: { methods: METHODS } };

  beforeAll(async () => {
    owner = await signUpAndSignIn('methods');
  });
  afterAll(async () => {
    if (figures.keyApi && figures.exampleApi) await recordFigures('billed-methods', figures);
  });

  const newKey = async (name: string) => {
    const created = await userApi(owner.idToken, 'POST', '/keys', { name });
    expect(created.status).toBe(201);
    return created.body as { id: string; key: string };
  };

  it('key-api: every method is a 200, each counted, the others under OTHER', async () => {
    const { id, key } = await newKey('key-api-methods');
    const statuses: Record<string, number> = {};
    for (const method of METHODS) {
      const answer = await send(endpoints().keyApi, method, '/', key);
      statuses[method] = answer.status;
    }
    // OPTIONS is key-api's CORS preflight (204, not a key check); every other method is checked.
    const billed = METHODS.filter((m) => m !== 'OPTIONS');
    for (const method of billed) expect(statuses[method], method).toBe(200);
    await eventually(async () => (await usageOf(owner, id)).total >= billed.length, 10_000, 200);
    await sleep(1500);
    const usage = await usageOf(owner, id);
    expect(usage.total).toBe(billed.length);
    const byMethod = Object.fromEntries(usage.routes.map((r) => [r.method, r.total]));
    expect(byMethod).toEqual({ GET: 1, POST: 1, OTHER: billed.length - 2 });
    figures.keyApi = { statuses, twoHundreds: billed.length, counted: usage.total, byMethod };
  });

  it('the example API: counted usage equals its 2xx answers, whatever the method', async () => {
    const { id, key } = await newKey('example-methods');
    const statuses: Record<string, number> = {};
    for (const method of METHODS) {
      const answer = await send(endpoints().exampleApi, method, '/v1/currencies', key);
      statuses[method] = answer.status;
    }
    const twoHundreds = Object.values(statuses).filter((s) => s >= 200 && s < 300).length;
    expect(statuses.GET).toBe(200);
    // Whatever the owner's handler answered, nothing is a 5xx: the gate made a valid event of it.
    for (const [method, status] of Object.entries(statuses)) expect(status, method).toBeLessThan(500);
    await eventually(async () => (await usageOf(owner, id)).total >= twoHundreds, 10_000, 200);
    await sleep(1500);
    const usage = await usageOf(owner, id);
    expect(usage.total).toBe(twoHundreds);
    figures.exampleApi = { statuses, twoHundreds, counted: usage.total };
  });
});
