import { beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey } from '../../services/accounts/api-key';
import {
  endpoints,
  type JsonResponse,
  keyApi,
  signUpAndSignIn,
  type TestUser,
  userApi,
} from '../support/local-stack';

const STACK_TRACE = /\n\s+at |node_modules|\.ts:\d+|TypeError|ReferenceError|SyntaxError|Exception|DynamoDB/;

/** Every refusal: not a 5xx, the one error shape, and nothing internal in it. */
function expectCleanRefusal(response: JsonResponse, label: string) {
  expect(response.status, label).toBeGreaterThanOrEqual(400);
  expect(response.status, label).toBeLessThan(500);
  expect(response.headers.get('content-type'), label).toMatch(/application\/json/);
  const body = response.body as { error?: { code?: unknown; message?: unknown } };
  expect(Object.keys(body ?? {}), label).toEqual(['error']);
  expect(typeof body.error?.code, label).toBe('string');
  expect(typeof body.error?.message, label).toBe('string');
  expect(response.text, label).not.toMatch(STACK_TRACE);
}

const ugly = [
  '',
  'null',
  '[]',
  '"key"',
  '{',
  '{"key":',
  '{"key":null}',
  '{"key":123}',
  '{"key":["tg_x"]}',
  '{"key":{"$ne":""}}',
  '{"name":"x".repeat(10)}',
  '\u0000\u0001\u0002',
  '💥'.repeat(100),
  'x'.repeat(100_000),
  JSON.stringify({ key: 'tg_'.padEnd(5000, 'A') }),
  JSON.stringify({ key: '../../etc/passwd' }),
];

describe('malformed input never breaks the key API', () => {
  it('refuses odd bodies, headers and methods cleanly', async () => {
    const headerValues = [
      '',
      ' ',
      'tg_',
      'Bearer',
      'Bearer ',
      'Bearer a b c',
      'tg_'.padEnd(8000, 'z'),
      'ключ',
      generateApiKey('other').key,
      `${generateApiKey('tg').key}\t`,
    ];
    const requests: Array<{ label: string; init: Parameters<typeof keyApi>[0] }> = [];
    for (const body of ugly) {
      requests.push({
        label: `body ${body.slice(0, 20)}`,
        init: { body, headers: { 'content-type': 'application/json' } },
      });
      requests.push({
        label: `octets ${body.slice(0, 20)}`,
        init: { body, headers: { 'content-type': 'application/octet-stream' } },
      });
    }
    for (const value of headerValues) {
      const safe = /^[\x20-\x7e\t]*$/.test(value);
      if (!safe) continue; // fetch itself refuses non-ASCII header values
      requests.push({ label: `x-api-key ${value.slice(0, 20)}`, init: { headers: { 'x-api-key': value } } });
      requests.push({
        label: `authorization ${value.slice(0, 20)}`,
        init: { headers: { authorization: value } },
      });
    }
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH'])
      requests.push({ label: method, init: { method } });
    requests.push({ label: 'too large', init: { body: 'x'.repeat(1_100_000) } });

    for (const { label, init } of requests) expectCleanRefusal(await keyApi(init), label);
  });
});

describe('malformed input never breaks the user API', () => {
  let user: TestUser;
  beforeAll(async () => {
    user = await signUpAndSignIn('sweep');
  });

  it('refuses bad tokens with a 401 in the one error shape', async () => {
    const tokens = [
      undefined,
      '',
      'x',
      'a.b.c',
      user.accessToken,
      `${user.idToken}x`,
      user.idToken.split('.').slice(0, 2).join('.'),
    ];
    for (const token of tokens) {
      for (const [method, path] of [
        ['GET', '/me'],
        ['GET', '/keys'],
        ['POST', '/keys'],
        ['DELETE', '/keys/key_x'],
      ] as const) {
        const response = await userApi(token, method, path);
        expect(response.status, `${method} ${path} ${String(token).slice(0, 10)}`).toBe(401);
        expectCleanRefusal(response, `${method} ${path}`);
      }
    }
  });

  it('refuses bad bodies with a 400 that says what is wrong', async () => {
    const bodies: unknown[] = [
      { name: '' },
      { name: '   ' },
      { name: 'x'.repeat(65) },
      { name: 42 },
      { name: null },
      { name: ['a'] },
      { nmae: 'typo' },
      [],
      'just a string',
      42,
    ];
    for (const body of bodies) {
      const response = await userApi(user.idToken, 'POST', '/keys', body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expectCleanRefusal(response, JSON.stringify(body));
    }
    const named = await userApi(user.idToken, 'POST', '/keys', { name: 'x'.repeat(65) });
    expect((named.body as { error: { message: string } }).error.message).toMatch(/name/);

    const raw = async (body: string, contentType = 'application/json') =>
      fetch(`${endpoints().userApi}/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${user.idToken}`, 'content-type': contentType },
        body,
      });
    for (const body of ['{', '{"name":', '\u0000', '💥']) {
      const response = await raw(body);
      const text = await response.text();
      expectCleanRefusal(
        { status: response.status, headers: response.headers, text, body: JSON.parse(text) },
        body,
      );
    }
    const huge = await raw(JSON.stringify({ name: 'x'.repeat(100_000) }));
    expect(huge.status).toBe(413);
  });

  it('refuses odd paths and methods without a 5xx', async () => {
    const paths = [
      '/keys/%00',
      '/keys/..%2f..%2fetc',
      `/keys/${'k'.repeat(5000)}`,
      '/keys/key_💥',
      '/keys/key_abc/roll/extra',
      '/keys/%E0%A4%A',
      '/nope',
      '/',
    ];
    for (const path of paths) {
      for (const method of ['GET', 'POST', 'DELETE', 'PUT', 'PATCH']) {
        const response = await userApi(user.idToken, method, path);
        expectCleanRefusal(response, `${method} ${path}`);
      }
    }
    const badRoll = await userApi(user.idToken, 'POST', '/keys/key_unknown/roll', { gracePeriodSeconds: -1 });
    expect(badRoll.status).toBe(400);
    const tooLong = await userApi(user.idToken, 'POST', '/keys/key_unknown/roll', {
      gracePeriodSeconds: 10 ** 9,
    });
    expect(tooLong.status).toBe(400);
  });
});
