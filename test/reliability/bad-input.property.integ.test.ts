import type { ALBEvent } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SqsUsagePublisher } from '../../services/gate/publisher';
import { engineClients } from '../support/aws';
import { recordFigures } from '../support/figures';
import { buildKeyApi, type KeyApiUnderTest, tablesFrom } from '../support/key-api';
import { endpoints, signUpAndSignIn, type TestUser } from '../support/local-stack';
import { createTestQueue } from '../support/queues';

// Bounded so the suite fits CI: each property runs this many random cases, from a seed drawn anew
// every run and printed, so each CI run explores other inputs (FC_SEED and FC_RUNS replay or widen
// a run). A failure is shrunk, and fast-check prints the seed, path and shrunk input to reproduce.
const RUNS = runCount(process.env.FC_RUNS);
const SEED = process.env.FC_SEED ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31);
if (!Number.isSafeInteger(SEED)) throw new Error(`FC_SEED must be an integer, not "${process.env.FC_SEED}"`);
process.stdout.write(`[fast-check] seed ${SEED}, ${RUNS} runs per property (FC_SEED=${SEED} replays it)\n`);
const params = { numRuns: RUNS, seed: SEED };

/** FC_RUNS, or 250; a run count that would run nothing is refused rather than passed. */
function runCount(value: string | undefined): number {
  if (value === undefined) return 250;
  const runs = Number(value);
  if (value.trim() === '' || !Number.isInteger(runs) || runs < 1) {
    throw new Error(`FC_RUNS must be a whole number of runs ≥ 1, not "${value}"`);
  }
  return runs;
}

const INTERNALS =
  /\n\s+at |node_modules|\.ts:\d+|\.js:\d+|TypeError|ReferenceError|SyntaxError|RangeError|Exception|DynamoDB|ZodError|stack/;
const ERROR_KEYS = new Set(['code', 'message', 'details']);

/**
 * What every answer must be: never a 5xx; every non-2xx in the one error shape
 * `{ error: { code, message, details? } }`, JSON, with nothing internal in it.
 */
function checkAnswer(
  status: number,
  contentType: string | null,
  text: string,
  method: string,
): string | undefined {
  if (status >= 500) return `status ${status}: ${text.slice(0, 200)}`;
  if (status < 400 || method === 'HEAD') return undefined;
  if (!/^application\/json/.test(contentType ?? '')) return `content-type ${contentType}`;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `not JSON: ${text.slice(0, 200)}`;
  }
  if (typeof body !== 'object' || body === null || Object.keys(body).join() !== 'error') {
    return `not the error shape: ${text.slice(0, 200)}`;
  }
  const error = (body as { error: Record<string, unknown> }).error;
  if (typeof error !== 'object' || error === null) return `error is not an object: ${text}`;
  if (Object.keys(error).some((k) => !ERROR_KEYS.has(k))) return `extra fields: ${text}`;
  if (typeof error.code !== 'string' || !/^[a-z_]+$/.test(error.code)) return `bad code: ${text}`;
  if (typeof error.message !== 'string' || error.message.length === 0) return `bad message: ${text}`;
  if (INTERNALS.test(text)) return `internals leaked: ${text.slice(0, 300)}`;
  return undefined;
}

// --- generators ------------------------------------------------------------------------------

/** A header value fetch can send: printable ASCII (it refuses the rest before any server sees it). */
const headerValue = fc.oneof(
  fc.string({ unit: 'binary-ascii', maxLength: 200 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
  fc.constantFrom('', ' ', 'Bearer', 'Bearer ', 'Bearer tg_', 'tg_', 'Basic Zm9vOmJhcg==', 'null'),
  fc.string({ unit: fc.constantFrom(...'tg_0123456789ABCDEFabcdef'), minLength: 0, maxLength: 40 }),
  fc.string({ maxLength: 20 }).map((s) => `Bearer ${s.replace(/[^\x21-\x7e]/g, 'x')}`),
  // Long, but under Node's 16 KiB header limit in total: past it Node itself answers 431 (and ALB
  // its own 400), before any Tollgate code runs.
  fc.integer({ min: 1, max: 1500 }).map((n) => 'k'.repeat(n)),
);
const headerName = fc.oneof(
  fc.constantFrom(
    'x-api-key',
    'authorization',
    'content-type',
    'origin',
    'accept',
    'accept-encoding',
    'content-encoding',
    'x-forwarded-for',
    'cookie',
    'x-amzn-trace-id',
  ),
  fc
    .string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz-'), minLength: 1, maxLength: 12 })
    .map((s) => `x-${s}`),
);
const contentType = fc.constantFrom(
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/octet-stream',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/vnd.api+json',
  'text/html; charset=utf-16',
);
const jsonText = fc.oneof(
  fc.json({ maxDepth: 3 }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.record({ key: fc.jsonValue({ maxDepth: 2 }) }).map((v) => JSON.stringify(v)),
  fc.record({ name: fc.jsonValue({ maxDepth: 2 }) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
  fc
    .record({ gracePeriodSeconds: fc.oneof(fc.double(), fc.integer(), fc.string()) })
    .map((v) => JSON.stringify(v)),
);
/** Bodies: JSON-ish text, any text, raw bytes (not UTF-8), truncated JSON, large ones. */
const bodyOf = fc.oneof(
  jsonText,
  fc.string({ unit: 'grapheme', maxLength: 300 }),
  fc.uint8Array({ maxLength: 300 }),
  jsonText.map((t) => t.slice(0, Math.max(0, t.length - 1))),
  fc.integer({ min: 10_000, max: 40_000 }).map((n) => JSON.stringify({ name: 'x'.repeat(n) })),
);
/** A path segment as it goes on the wire: percent-encoded text, raw (maybe invalid) escapes, dots. */
const segment = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }).map(encodeURIComponent),
  fc
    .array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 6 })
    .map((bytes) => bytes.map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('')),
  fc.constantFrom('..', '.', '%2e%2e', '%2F', '%00', 'key_', 'key_first_x', '%', '%zz', 'key_abc%20def'),
  fc.stringMatching(/^key_[A-Za-z0-9_]{1,40}$/),
  fc.integer({ min: 100, max: 1500 }).map((n) => `key_${'a'.repeat(n)}`),
);
const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD');

interface WireRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | Uint8Array | undefined;
}

async function send(base: string, request: WireRequest) {
  const canHaveBody = request.method !== 'GET' && request.method !== 'HEAD';
  const response = await fetch(`${base}${request.path}`, {
    method: request.method,
    headers: request.headers,
    body: canHaveBody && request.body !== undefined ? Buffer.from(request.body) : undefined,
  });
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    text: await response.text(),
  };
}

const statusTally = (tally: Map<number, number>, status: number) =>
  tally.set(status, (tally.get(status) ?? 0) + 1);

// --- key-api ---------------------------------------------------------------------------------

describe('bad input to key-api (property-based)', () => {
  const statuses = { http: new Map<number, number>(), handler: new Map<number, number>() };
  afterAll(async () => {
    await recordFigures('bad-input-key-api', {
      runsPerProperty: RUNS,
      seed: SEED,
      httpStatuses: Object.fromEntries(statuses.http),
      handlerStatuses: Object.fromEntries(statuses.handler),
    });
  });

  it('over HTTP through the local ALB: random methods, paths, headers, bodies, encodings', async () => {
    const request = fc.record({
      method,
      path: fc.array(segment, { maxLength: 3 }).map((s) => `/${s.join('/')}`),
      headers: fc
        .tuple(fc.dictionary(headerName, headerValue, { maxKeys: 5 }), contentType, fc.boolean())
        .map(([headers, type, gzip]) => ({
          ...headers,
          ...(type ? { 'content-type': type } : {}),
          ...(gzip ? { 'content-encoding': 'gzip' } : {}),
        })),
      body: fc.option(bodyOf, { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const answer = await send(endpoints().keyApi, r);
        statusTally(statuses.http, answer.status);
        expect(checkAnswer(answer.status, answer.contentType, answer.text, r.method)).toBeUndefined();
        // No random input is a key: nothing is ever accepted (or billed).
        expect([204, 400, 401, 413], `${answer.status} ${answer.text}`).toContain(answer.status);
      }),
      params,
    );
  });

  describe('events no HTTP client would send (the handler, called directly)', () => {
    let api: KeyApiUnderTest;
    const clients = engineClients(inject('endpoints'));
    beforeAll(async () => {
      const queue = await createTestQueue(clients.sqs, 'badinput', {
        visibilityTimeoutSeconds: 30,
        maxReceiveCount: 5,
      });
      api = buildKeyApi({
        dynamo: clients.dynamo,
        tables: tablesFrom(inject('env')),
        publisher: new SqsUsagePublisher({ queueUrl: queue.queueUrl, client: clients.sqs }),
      });
    });
    afterAll(() => {
      clients.dynamo.destroy();
      clients.sqs.destroy();
    });

    it('any headers (any Unicode, repeated, multi-value), any body, base64 or not', async () => {
      const anyText = fc.oneof(fc.string({ unit: 'binary', maxLength: 100 }), headerValue);
      const event = fc.record(
        {
          httpMethod: fc.oneof(method, fc.string({ maxLength: 10 })),
          path: fc.string({ unit: 'binary', maxLength: 60 }),
          headers: fc.option(fc.dictionary(fc.oneof(headerName, fc.string({ maxLength: 12 })), anyText), {
            nil: undefined,
          }),
          multiValueHeaders: fc.option(fc.dictionary(headerName, fc.array(anyText, { maxLength: 3 })), {
            nil: undefined,
          }),
          body: fc.option(
            fc.oneof(
              bodyOf.map((b) => (typeof b === 'string' ? b : Buffer.from(b).toString('base64'))),
              anyText,
            ),
            {
              nil: null,
            },
          ),
          isBase64Encoded: fc.boolean(),
          queryStringParameters: fc.option(fc.dictionary(fc.string({ maxLength: 8 }), anyText), {
            nil: undefined,
          }),
        },
        { requiredKeys: ['httpMethod', 'path', 'body', 'isBase64Encoded'] },
      );
      await fc.assert(
        fc.asyncProperty(event, async (e) => {
          const result = await api.handler({
            requestContext: { elb: { targetGroupArn: 'arn:aws:elasticloadbalancing:::targetgroup/t/0' } },
            ...e,
          } as ALBEvent);
          statusTally(statuses.handler, result.statusCode);
          const type = result.headers?.['content-type'];
          expect(
            checkAnswer(
              result.statusCode,
              typeof type === 'string' ? type : null,
              result.body ?? '',
              e.httpMethod,
            ),
          ).toBeUndefined();
          expect([204, 400, 401]).toContain(result.statusCode);
        }),
        params,
      );
    });
  });
});

// --- user-api --------------------------------------------------------------------------------

describe('bad input to user-api (property-based)', () => {
  let user: TestUser;
  const statuses = { signedIn: new Map<number, number>(), tokens: new Map<number, number>() };
  beforeAll(async () => {
    user = await signUpAndSignIn('fuzz');
  });
  afterAll(async () => {
    await recordFigures('bad-input-user-api', {
      runsPerProperty: RUNS,
      seed: SEED,
      signedInStatuses: Object.fromEntries(statuses.signedIn),
      badTokenStatuses: Object.fromEntries(statuses.tokens),
    });
  });

  const day = fc.oneof(
    fc
      .date({ min: new Date('1900-01-01'), max: new Date('2200-01-01'), noInvalidDate: true })
      .map((d) => d.toISOString().slice(0, 10)),
    fc.constantFrom(
      '2025-02-29',
      '2024-02-29',
      '2025-13-01',
      '2025-00-10',
      '0000-01-01',
      '9999-12-31',
      '2025-1-1',
    ),
    fc.string({ maxLength: 12 }),
  );
  const query = fc
    .record(
      {
        from: day,
        to: day,
        keyId: fc.oneof(segment, fc.string({ maxLength: 200 })),
        extra: fc.string({ maxLength: 10 }),
      },
      { requiredKeys: [] },
    )
    .map((q) => {
      const params = new URLSearchParams();
      for (const [name, value] of Object.entries(q)) params.append(name, value);
      return params.toString() ? `?${params}` : '';
    });
  const path = fc.oneof(
    fc.constantFrom('/me', '/keys', '/usage', '/keys/', '/me/', '/'),
    segment.map((id) => `/keys/${id}`),
    fc
      .tuple(segment, fc.constantFrom('roll', 'reveal', 'x', ''))
      .map(([id, action]) => `/keys/${id}/${action}`),
    fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `/${s.join('/')}`),
    query.map((q) => `/usage${q}`),
  );

  it('signed in: random routes, ids, queries and bodies never get a 5xx and always the one error shape', async () => {
    const request = fc.record({
      method,
      path,
      contentType,
      body: fc.option(bodyOf, { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const answer = await send(endpoints().userApi, {
          method: r.method,
          path: r.path,
          headers: {
            authorization: `Bearer ${user.idToken}`,
            ...(r.contentType ? { 'content-type': r.contentType } : {}),
          },
          body: r.body,
        });
        statusTally(statuses.signedIn, answer.status);
        expect(checkAnswer(answer.status, answer.contentType, answer.text, r.method)).toBeUndefined();
      }),
      params,
    );
  });

  it('random Authorization headers: always 401 on the protected routes, in the one shape', async () => {
    const segmentB64 = fc
      .jsonValue({ maxDepth: 2 })
      .map((v) => Buffer.from(JSON.stringify(v)).toString('base64url'));
    const authorization = fc.oneof(
      headerValue,
      fc
        .tuple(segmentB64, segmentB64, fc.base64String({ maxLength: 40 }))
        .map((p) => `Bearer ${p.join('.')}`),
      // One character of a real ID token changed. Not the last of a segment: its low bits are
      // padding that base64url decoders ignore, so changing it may leave the token as it was.
      fc
        .tuple(fc.nat(user.idToken.length - 2), fc.constantFrom(...'AZaz09-_.'))
        .filter(([i, c]) => user.idToken[i + 1] !== '.' && user.idToken[i] !== '.' && user.idToken[i] !== c)
        .map(([i, c]) => `Bearer ${user.idToken.slice(0, i)}${c}${user.idToken.slice(i + 1)}`),
    );
    const route = fc.constantFrom(
      ['GET', '/me'],
      ['GET', '/keys'],
      ['POST', '/keys'],
      ['GET', '/usage'],
      ['DELETE', '/keys/key_abc'],
    );
    await fc.assert(
      fc.asyncProperty(authorization, route, async (auth, [m, p]) => {
        const answer = await send(endpoints().userApi, {
          method: m,
          path: p,
          headers: { authorization: auth },
          body: '{}',
        });
        statusTally(statuses.tokens, answer.status);
        expect(checkAnswer(answer.status, answer.contentType, answer.text, m)).toBeUndefined();
        expect(answer.status, auth.slice(0, 60)).toBe(401);
      }),
      params,
    );
  });
});
