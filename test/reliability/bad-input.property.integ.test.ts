import type { ALBEvent } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_ROLL_GRACE_MS, ENV } from '../../contracts/config';
import { SqsUsagePublisher } from '../../services/gate/publisher';
import { engineClients } from '../support/aws';
import { recordFigures } from '../support/figures';
import { buildKeyApi, type KeyApiUnderTest, tablesFrom } from '../support/key-api';
import { KeyModel, type KeyView, type ModelKey, statusesDuring, viewStatus } from '../support/key-model';
import {
  endpoints,
  signInAdmin,
  signUpAndSignIn,
  stackEnv,
  type TestUser,
  userApi,
} from '../support/local-stack';
import { createTestQueue } from '../support/queues';
import {
  answeredByNodeParser,
  headerOf,
  type RawHeader,
  type RawResponse,
  rawExchange,
  requestBytes,
} from '../support/raw-http';

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

// --- raw bytes over a socket -----------------------------------------------------------------
// fetch refuses header values outside printable ASCII, so these go over a TCP socket as bytes:
// obs-text (0x80-0xFF, how latin1 or UTF-8 text arrives), control bytes, bare CR or LF, CRLF
// injection, obs-fold, long values. Node's parser refuses some with a bare 400 before any Tollgate
// code runs (and ALB its own 400 on AWS); the rest reach Tollgate, which must answer them in shape.

const latin1 = (text: string) => Buffer.from(text, 'latin1');
const highByte = fc.integer({ min: 0x80, max: 0xff });
const printableByte = fc.integer({ min: 0x20, max: 0x7e });
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A header value's bytes, and what kind of trouble they are (for the tally). */
interface RawValue {
  kind: string;
  bytes: Buffer;
}
const rawValue: fc.Arbitrary<RawValue> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .array(highByte, { minLength: 1, maxLength: 64 })
      .map((b) => ({ kind: 'obs-text', bytes: Buffer.from(b) })),
  },
  {
    weight: 3,
    arbitrary: fc
      .array(fc.oneof(printableByte, highByte), { minLength: 1, maxLength: 120 })
      .map((b) => ({ kind: 'ascii + obs-text', bytes: Buffer.from(b) })),
  },
  {
    weight: 3,
    arbitrary: fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 30 })
      .map((s) => ({ kind: 'utf-8', bytes: Buffer.from(s, 'utf8') })),
  },
  // The first bytes of a multi-byte UTF-8 character: not text in any encoding but latin1.
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom('é', 'Ж', '日', '🔑'), fc.nat(2), fc.string({ maxLength: 10 }))
      .map(([c, cut, rest]) => {
        const char = Buffer.from(c, 'utf8');
        return {
          kind: 'utf-8 fragment',
          bytes: Buffer.concat([latin1(rest), char.subarray(0, Math.max(1, char.length - 1 - cut))]),
        };
      }),
  },
  // Key-shaped, then bytes no key has: the checksum check must still answer 401, in shape.
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom('', 'Bearer ', 'bearer  '),
        fc.string({ unit: fc.constantFrom(...BASE62), minLength: 20, maxLength: 30 }),
        fc.array(highByte, { minLength: 1, maxLength: 4 }),
      )
      .map(([scheme, random, tail]) => ({
        kind: 'key + obs-text',
        bytes: Buffer.concat([latin1(`${scheme}tg_${random}`), Buffer.from(tail)]),
      })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.string({ unit: 'binary-ascii', maxLength: 10 }),
        fc.oneof(fc.integer({ min: 0, max: 0x1f }), fc.constant(0x7f)),
        fc.string({ maxLength: 10 }),
      )
      .map(([a, control, b]) => ({
        kind: control === 0x09 ? 'tab' : 'control byte',
        bytes: Buffer.concat([
          latin1(a.replace(/[^\x20-\x7e]/g, '')),
          Buffer.from([control]),
          latin1(b.replace(/[^\x20-\x7e]/g, '')),
        ]),
      })),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(
        'a\r\nx-injected: 1',
        'tg_x\r\nx-api-key: tg_y',
        'a\r\n\r\nGET /injected HTTP/1.1\r\nhost: x',
        'a\nx-injected: 1',
        'a\rx-injected: 1',
        'a\r\n',
        '\r\n',
      )
      .map((text) => ({ kind: 'CR/LF injection', bytes: latin1(text) })),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('a\r\n continued', 'Bearer\r\n\ttg_abc', 'a\r\n \xe9')
      .map((text) => ({ kind: 'obs-fold', bytes: latin1(text) })),
  },
  // Long, under the header limit with everything else: one per request at most matters.
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 1_000, max: 12_000 }), highByte)
      .map(([n, b]) => ({ kind: 'long', bytes: Buffer.alloc(n, b) })),
  },
);
const rawHeaderName = fc.oneof(
  { weight: 8, arbitrary: headerName.filter((name) => name !== 'content-encoding') },
  { weight: 1, arbitrary: fc.constantFrom('user-agent', 'accept-language', 'x-\xe9t\xe9', 'x key', 'x:y') },
);
/** Under Node's 16 KiB header limit, everything included; past HEADER_LIMIT it must be a 431. */
const UNDER_HEADER_LIMIT = 16_000;
const HEADER_LIMIT = 16 * 1024;

interface RawCase {
  method: string;
  target: Buffer;
  headers: { name: string; value: RawValue }[];
  body: Buffer | undefined;
  /** Bytes of a padding header, sent first, that take the request past the header limit; 0: none. */
  oversize: number;
}
const rawCase = (targets: fc.Arbitrary<string>): fc.Arbitrary<RawCase> =>
  fc.record({
    method: fc.constantFrom('POST', 'GET', 'OPTIONS', 'DELETE', 'PUT'),
    target: fc.oneof(
      { weight: 8, arbitrary: targets.map(latin1) },
      {
        weight: 1,
        arbitrary: fc
          .array(fc.oneof(printableByte, highByte), { minLength: 1, maxLength: 20 })
          .map((b) => Buffer.concat([latin1('/'), Buffer.from(b)])),
      },
    ),
    headers: fc.array(fc.record({ name: rawHeaderName, value: rawValue }), { minLength: 1, maxLength: 4 }),
    body: fc.option(
      fc.oneof(
        jsonText.map((t) => Buffer.from(t, 'utf8')),
        fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
      ),
      { nil: undefined },
    ),
    oversize: fc.oneof(
      { weight: 9, arbitrary: fc.constant(0) },
      { weight: 1, arbitrary: fc.integer({ min: HEADER_LIMIT + 500, max: 40_000 }) },
    ),
  });

/** The wire bytes: host, content-length, the padding, `first` (a token, say), the fuzzed headers. */
function rawBytes(c: RawCase, first: RawHeader[] = []): { bytes: Buffer; headerBytes: number } {
  const body = c.body ?? Buffer.alloc(0);
  const headers: RawHeader[] = [
    ['host', latin1('localhost')],
    ...(c.body ? [['content-length', latin1(String(body.length))] as const] : []),
    ...(c.oversize > 0 ? [['x-pad', Buffer.alloc(c.oversize, 0x6b)] as const] : []),
    ...first,
    ...c.headers.map(({ name, value }) => [name, value.bytes] as const),
    ['connection', latin1('close')],
  ];
  const bytes = requestBytes(c.method, c.target, headers, body);
  return { bytes, headerBytes: bytes.length - body.length };
}

interface RawTally {
  statuses: Map<string, number>;
  /** Tally by the kind of the first troublesome header value: how each kind was answered. */
  byKind: Map<string, Map<string, number>>;
  obsTextAnsweredByTollgate: number;
  oversize: number;
}
const newRawTally = (): RawTally => ({
  statuses: new Map(),
  byKind: new Map(),
  obsTextAnsweredByTollgate: 0,
  oversize: 0,
});
function countRaw(tally: RawTally, c: RawCase, result: { label: string; tollgate: boolean }) {
  tally.statuses.set(result.label, (tally.statuses.get(result.label) ?? 0) + 1);
  for (const kind of new Set(c.headers.map(({ value }) => value.kind))) {
    const answers = tally.byKind.get(kind) ?? new Map<string, number>();
    answers.set(result.label, (answers.get(result.label) ?? 0) + 1);
    tally.byKind.set(kind, answers);
  }
  if (result.tollgate && hasObsText(c)) tally.obsTextAnsweredByTollgate++;
  if (c.oversize > 0) tally.oversize++;
}
const rawFigures = (tally: RawTally) => ({
  statuses: Object.fromEntries(tally.statuses),
  byHeaderKind: Object.fromEntries(
    [...tally.byKind].map(([kind, answers]) => [kind, Object.fromEntries(answers)]),
  ),
  obsTextAnsweredByTollgate: tally.obsTextAnsweredByTollgate,
  pastHeaderLimit: tally.oversize,
});

const isCleanTarget = (target: Buffer) => target.every((b) => b > 0x20 && b < 0x7f);
const hasObsText = (c: RawCase) => c.headers.some(({ value }) => value.bytes.some((b) => b >= 0x80));
/** Bytes as readable text: printable ASCII as is, every other byte as \xNN. */
const shown = (bytes: Buffer, max = 80) =>
  [...bytes.subarray(0, max)]
    .map((b) =>
      b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`,
    )
    .join('') + (bytes.length > max ? `…(${bytes.length} bytes)` : '');
const describeCase = (c: RawCase) =>
  `${c.method} ${shown(c.target)} ${c.headers.map(({ name, value }) => `${name}: ${shown(value.bytes)}`).join(' | ')}${
    c.oversize ? ` + ${c.oversize} bytes of padding` : ''
  }`;

/**
 * The property of every raw request: a well-formed HTTP answer below 500; a request past the
 * header limit refused by Node with 431; any answer Tollgate's code gave (not Node's parser) in the
 * one error shape, with a status among `allowed`, and no request header leaked into a response
 * header. Returns how it was answered, for the tally.
 */
async function checkRawAnswer(endpoint: string, c: RawCase, first: RawHeader[], allowed: readonly number[]) {
  const { bytes, headerBytes } = rawBytes(c, first);
  const outcome = await rawExchange(endpoint, bytes);
  const what = describeCase(c);
  if (outcome.kind !== 'response')
    throw new Error(`${outcome.kind} answer to ${what}: ${JSON.stringify(outcome)}`);
  const response: RawResponse = outcome.response;
  expect(response.status, what).toBeLessThan(500);
  const byNode = answeredByNodeParser(response);
  if (c.oversize > 0 && isCleanTarget(c.target)) {
    expect({ status: response.status, byNode }, what).toEqual({ status: 431, byNode: true });
  } else if (headerBytes <= UNDER_HEADER_LIMIT) {
    expect(response.status, what).not.toBe(431);
  }
  if (byNode) return { label: `node ${response.status}`, tollgate: false };
  const text = response.body.toString('utf8');
  expect(
    checkAnswer(response.status, headerOf(response, 'content-type') ?? null, text, c.method),
    what,
  ).toBeUndefined();
  expect(allowed, `${response.status} ${text.slice(0, 200)} for ${what}`).toContain(response.status);
  expect(
    response.headers.filter(([name]) => /injected|x-api-key|x-pad/i.test(name)),
    what,
  ).toEqual([]);
  return { label: `tollgate ${response.status}`, tollgate: true };
}

// --- the caller's real keys (model-based) ----------------------------------------------------
// Random ids alone never reach a real key (no roll, reveal or revoke of one ever succeeds), so
// here the ids come from the keys the caller really holds (live ones favoured), from another
// account's real keys, from near misses of real ids, and made up. fast-check's model-based
// testing runs sequences of calls against the real API and a model of the caller's keys
// (test/support/key-model.ts) side by side; a failing sequence is shrunk to a shortest one.

type KeyPick =
  | { from: 'live' | 'own' | 'other'; index: number }
  | { from: 'near-miss'; index: number; edit: 'append' | 'drop' | 'upper' | 'swap' }
  | { from: 'made-up'; id: string };

/** A JSON body (`undefined`: none sent), whether the API must take it, and what it then means. */
interface CallBody {
  json: unknown;
  valid: boolean;
  /** A create's expected name (trimmed); a roll's grace, absent for the deployment's default. */
  name?: string;
  graceSeconds?: number;
}

type Step =
  | { op: 'create'; body: CallBody }
  | { op: 'roll'; key: KeyPick; body: CallBody }
  | { op: 'reveal' | 'revoke'; key: KeyPick }
  | { op: 'usage'; key: KeyPick; groupBy: boolean }
  | { op: 'list' }
  | { op: 'stray'; key: KeyPick; method: string; suffix: string };

const keyPick: fc.Arbitrary<KeyPick> = fc.oneof(
  { weight: 5, arbitrary: fc.nat(1000).map((index) => ({ from: 'live' as const, index })) },
  { weight: 3, arbitrary: fc.nat(1000).map((index) => ({ from: 'own' as const, index })) },
  { weight: 2, arbitrary: fc.nat(1000).map((index) => ({ from: 'other' as const, index })) },
  {
    weight: 1,
    arbitrary: fc.record({
      from: fc.constant('near-miss' as const),
      index: fc.nat(1000),
      edit: fc.constantFrom('append' as const, 'drop' as const, 'upper' as const, 'swap' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        fc.stringMatching(/^key_[A-Za-z0-9_]{1,40}$/),
        fc.string({ maxLength: 40 }),
        fc.constantFrom('', 'key_', 'key_first_x', '..', 'KEY_abc', 'key_a'.padEnd(140, 'a')),
      )
      .map((id) => ({ from: 'made-up' as const, id })),
  },
);

// Names an owner may give (any script, emoji, inner spaces; 1-64 UTF-16 units after trimming) and
// names the API must refuse; the expectation is written here, not taken from the API's schema.
const NAME_CHARS = [...'abcXYZ019-_.:() ', 'é', 'ß', 'Ω', 'Ж', '日', '本', '🔑', 'ñ'];
const validName = fc.oneof(
  fc
    .tuple(fc.array(fc.constantFrom(...NAME_CHARS), { maxLength: 30 }), fc.constantFrom('', ' ', '   '))
    .map(([chars, pad]) => ({ sent: `${pad}k${chars.join('')}k${pad}`, name: `k${chars.join('')}k` })),
  fc.constant({ sent: 'k'.repeat(64), name: 'k'.repeat(64) }),
);
const invalidName = fc.constantFrom<unknown>(
  '',
  '   ',
  'k'.repeat(65),
  'a\u0000b',
  'a\nb',
  'left\u202Eright',
  'x\uD800',
  42,
  null,
);
const createBody: fc.Arbitrary<CallBody> = fc.oneof(
  fc.constant({ json: undefined, valid: true }),
  fc.constant({ json: {}, valid: true }),
  { weight: 3, arbitrary: validName.map(({ sent, name }) => ({ json: { name: sent }, valid: true, name })) },
  invalidName.map((name) => ({ json: { name }, valid: false })),
  fc
    .constantFrom<unknown>({ name: 'ok', admin: true }, [], 'text', 7)
    .map((json) => ({ json, valid: false })),
);
const MAX_GRACE_SECONDS = 7 * 24 * 3600;
const rollBody: fc.Arbitrary<CallBody> = fc.oneof(
  fc.constant({ json: undefined, valid: true }),
  fc.constant({ json: {}, valid: true }),
  {
    // Short graces run out during the run: the model must follow `expiring` to `expired`.
    weight: 3,
    arbitrary: fc
      .oneof(fc.constantFrom(0, 1, 2, MAX_GRACE_SECONDS), fc.integer({ min: 0, max: MAX_GRACE_SECONDS }))
      .map((g) => ({ json: { gracePeriodSeconds: g }, valid: true, graceSeconds: g })),
  },
  fc
    .constantFrom<unknown>(-1, MAX_GRACE_SECONDS + 1, 1.5, '10', null, true)
    .map((g) => ({ json: { gracePeriodSeconds: g }, valid: false })),
  fc
    .constantFrom<unknown>({ gracePeriodSeconds: 1, extra: 1 }, [], 'text')
    .map((json) => ({ json, valid: false })),
);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 2, arbitrary: createBody.map((body) => ({ op: 'create' as const, body })) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('roll' as const), key: keyPick, body: rollBody }) },
  { weight: 1, arbitrary: keyPick.map((key) => ({ op: 'reveal' as const, key })) },
  { weight: 2, arbitrary: keyPick.map((key) => ({ op: 'revoke' as const, key })) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('usage' as const), key: keyPick, groupBy: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'list' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('stray' as const),
      key: keyPick,
      method: fc.constantFrom('GET', 'PUT', 'PATCH'),
      suffix: fc.constantFrom('', '/roll', '/reveal', '/x'),
    }),
  },
);

/** Calls per generated sequence (fast-check shrinks a failing one towards fewer). */
const MAX_CALLS_PER_RUN = 6;
/** Keys the caller creates before the run, besides the one its sign-up made. */
const KEYS_CREATED_FIRST = 3;
/** The key limit of the caller's plan. */
const PLAN_MAX_KEYS = 6;

/** Route templates, for the tallies. */
const ROUTE = {
  create: 'POST /keys',
  roll: 'POST /keys/{id}/roll',
  reveal: 'POST /keys/{id}/reveal',
  revoke: 'DELETE /keys/{id}',
  usage: 'GET /usage?keyId=',
  list: 'GET /keys',
  stray: 'other methods on /keys/{id}',
} as const;

/** An answer a call may get: a status, and for errors the code (and for conflicts the key's status). */
interface Outcome {
  status: number;
  code?: string;
}

interface RealKeys {
  token: string;
  /** Another account's real key ids. */
  otherIds: readonly string[];
  rollGraceMs: number;
  /** Answers per route and status; `realKey`: those about one of the caller's own keys. */
  tally: Map<string, Map<number, number>>;
  realKey: Map<string, Map<number, number>>;
}

function count(tally: Map<string, Map<number, number>>, route: string, status: number) {
  const statuses = tally.get(route) ?? new Map<number, number>();
  statuses.set(status, (statuses.get(status) ?? 0) + 1);
  tally.set(route, statuses);
}
const tallyFigures = (tally: Map<string, Map<number, number>>) =>
  Object.fromEntries([...tally].map(([route, statuses]) => [route, Object.fromEntries(statuses)]));

/** A key id for a pick: whose it is, and the model's key if it is the caller's. */
function resolve(pick: KeyPick, model: KeyModel, real: RealKeys, at: number): { id: string; key?: ModelKey } {
  const own = [...model.keys.values()];
  const live = own.filter((key) => ['pending', 'active', 'expiring'].includes(viewStatus(key, at)));
  const from = (list: readonly string[], index: number) =>
    list[index % Math.max(1, list.length)] ?? 'key_none';
  let id: string;
  switch (pick.from) {
    case 'live':
      id = from(
        (live.length > 0 ? live : own).map((key) => key.id),
        pick.index,
      );
      break;
    case 'own':
      id = from(
        own.map((key) => key.id),
        pick.index,
      );
      break;
    case 'other':
      id = from(real.otherIds, pick.index);
      break;
    case 'near-miss': {
      const base = from(
        own.map((key) => key.id),
        pick.index,
      );
      const last = base.at(-1) ?? 'a';
      id = {
        append: `${base}x`,
        drop: base.slice(0, -1),
        upper: base.toUpperCase(),
        swap: `${base.slice(0, -1)}${last === 'a' ? 'b' : 'a'}`,
      }[pick.edit];
      break;
    }
    case 'made-up':
      id = pick.id;
      break;
  }
  const key = model.keys.get(id);
  return key ? { id, key } : { id };
}

const REAUTH: Outcome = { status: 401, code: 'reauthentication_required' };
const NOT_FOUND: Outcome = { status: 404, code: 'not_found' };
const INVALID: Outcome = { status: 400, code: 'invalid_request' };

/** One call of a sequence: sends it, checks the answer against the model, updates the model. */
class KeyCall implements fc.AsyncCommand<{ model: KeyModel }, RealKeys> {
  constructor(readonly step: Step) {}
  check = () => true;
  toString = () => JSON.stringify(this.step);

  async run({ model }: { model: KeyModel }, real: RealKeys): Promise<void> {
    const { step } = this;
    const picked = 'key' in step ? resolve(step.key, model, real, Date.now()) : undefined;
    const id = encodeURIComponent(picked?.id ?? '');
    const [method, path, body] = ((): [string, string, unknown] => {
      switch (step.op) {
        case 'create':
          return ['POST', '/keys', step.body.json];
        case 'roll':
          return ['POST', `/keys/${id}/roll`, step.body.json];
        case 'reveal':
          return ['POST', `/keys/${id}/reveal`, undefined];
        case 'revoke':
          return ['DELETE', `/keys/${id}`, undefined];
        case 'usage':
          return ['GET', `/usage?keyId=${id}${step.groupBy ? '&groupBy=route' : ''}`, undefined];
        case 'list':
          return ['GET', '/keys', undefined];
        case 'stray':
          return [step.method, `/keys/${id}${step.suffix}`, undefined];
      }
    })();
    const t0 = Date.now();
    const answer = await send(endpoints().userApi, {
      method,
      path,
      headers: {
        authorization: `Bearer ${real.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const t1 = Date.now();
    const route = ROUTE[step.op];
    count(real.tally, route, answer.status);
    if (picked?.key) count(real.realKey, route, answer.status);
    const what = `${method} ${path} ${body === undefined ? '' : JSON.stringify(body)} → ${answer.status} ${answer.text.slice(0, 300)}`;
    expect(checkAnswer(answer.status, answer.contentType, answer.text, method), what).toBeUndefined();
    const json = answer.text ? (JSON.parse(answer.text) as Record<string, unknown>) : {};
    const got: Outcome = {
      status: answer.status,
      ...(answer.status >= 400 ? { code: (json.error as { code?: string } | undefined)?.code ?? '' } : {}),
    };

    const expected = expectedOutcomes(step, picked, model, real, t0, t1);
    expect(expected, what).toContainEqual(got);
    apply(step, picked?.key, json, got, model, real, t0, t1, what);
  }
}

/** What the model says a call may be answered (a set, where the clock may decide). */
function expectedOutcomes(
  step: Step,
  picked: { id: string; key?: ModelKey } | undefined,
  model: KeyModel,
  real: RealKeys,
  t0: number,
  t1: number,
): Outcome[] {
  const key = picked?.key;
  const foreign = picked !== undefined && real.otherIds.includes(picked.id);
  const limited = (freed?: (at: number) => number) =>
    [...model.limitReachedDuring(t0, t1, freed)].map((reached) =>
      reached ? { status: 409, code: 'key_limit_reached' } : { status: 201 },
    );
  switch (step.op) {
    case 'create':
      return step.body.valid ? [...limited(), REAUTH] : [INVALID];
    case 'roll': {
      // The id is checked before the body: a made-up id that cannot be a key id is a 404 first.
      if (!step.body.valid) return key || foreign ? [INVALID] : [INVALID, NOT_FOUND];
      if (!key) return [NOT_FOUND];
      const graceMs = step.body.graceSeconds === undefined ? real.rollGraceMs : step.body.graceSeconds * 1000;
      const outcomes: Outcome[] = [REAUTH];
      for (const status of statusesDuring(key, t0, t1)) {
        if (status === 'active') outcomes.push(...limited((at) => model.freedByRoll(key, graceMs, at)));
        else outcomes.push({ status: 409, code: 'conflict' });
      }
      return outcomes;
    }
    case 'reveal':
      if (!key) return [NOT_FOUND];
      return [key.status === 'pending' ? { status: 201 } : { status: 409, code: 'conflict' }, REAUTH];
    case 'revoke':
      return key ? [{ status: 200 }] : [NOT_FOUND];
    case 'usage':
      // A made-up id may also be no id at all (empty, too long): the query is then invalid.
      return key ? [{ status: 200 }] : foreign ? [NOT_FOUND] : [NOT_FOUND, INVALID];
    case 'list':
      return [{ status: 200 }];
    case 'stray':
      return [NOT_FOUND, { status: 405, code: 'method_not_allowed' }];
  }
}

/** Checks a successful answer's body and updates the model from it. */
function apply(
  step: Step,
  key: ModelKey | undefined,
  json: Record<string, unknown>,
  got: Outcome,
  model: KeyModel,
  real: RealKeys,
  t0: number,
  t1: number,
  what: string,
): void {
  if (step.op === 'list' && got.status === 200) {
    const problems = model.differences((json as { keys: KeyView[] }).keys, t0, t1);
    expect(problems, what).toEqual([]);
  }
  if (got.status === 409 && got.code === 'conflict' && key) {
    // The conflict names the status that refused it, one the key had while the call ran.
    const details = (json.error as { details?: { status?: string } }).details;
    expect([...statusesDuring(key, t0, t1)], what).toContain(details?.status);
  }
  if (got.status === 409 && got.code === 'key_limit_reached') {
    const details = (json.error as { details?: { limit?: number } }).details;
    expect(details?.limit, what).toBe(model.maxKeys);
  }
  if (got.status >= 300) return;
  switch (step.op) {
    case 'create': {
      const created = json as { id: string; key: string; name: string };
      expect(model.keys.has(created.id), what).toBe(false);
      expect(created.name, what).toBe(step.body.name ?? 'API key');
      expect(created.key, what).toMatch(/^[a-z0-9]+_[A-Za-z0-9]+$/);
      model.keys.set(created.id, { id: created.id, name: created.name, status: 'active' });
      return;
    }
    case 'roll': {
      if (!key) throw new Error(`roll of a key the model does not hold answered ${got.status}: ${what}`);
      const rolled = json as {
        id: string;
        name: string;
        previous: { id: string; status: string; expiresAt: string };
      };
      const graceMs = step.body.graceSeconds === undefined ? real.rollGraceMs : step.body.graceSeconds * 1000;
      const expiresAt = Date.parse(rolled.previous.expiresAt);
      expect(rolled.previous.id, what).toBe(key.id);
      expect(rolled.previous.status, what).toBe('expiring');
      expect(rolled.name, what).toBe(key.name);
      expect(model.keys.has(rolled.id), what).toBe(false);
      // The old key keeps working for the grace asked for, counted from the roll.
      expect(expiresAt, what).toBeGreaterThanOrEqual(t0 + graceMs);
      expect(expiresAt, what).toBeLessThanOrEqual(t1 + graceMs);
      model.applyRoll(key, { id: rolled.id, expiresAt }, t0, t1);
      return;
    }
    case 'reveal': {
      if (!key) throw new Error(`reveal of a key the model does not hold answered ${got.status}: ${what}`);
      expect((json as { id: string }).id, what).toBe(key.id);
      key.status = 'active';
      return;
    }
    case 'revoke': {
      if (!key) throw new Error(`revoke of a key the model does not hold answered ${got.status}: ${what}`);
      const revoked = json as { id: string; status: string; revokedAt?: string };
      expect({ id: revoked.id, status: revoked.status }, what).toEqual({ id: key.id, status: 'revoked' });
      // Revoking again keeps the first revocation time.
      if (key.revokedAt) expect(revoked.revokedAt, what).toBe(key.revokedAt);
      key.status = 'revoked';
      key.revokedAt = revoked.revokedAt;
      return;
    }
    case 'usage':
      expect((json as { keyId?: string }).keyId, what).toBe(key?.id);
      return;
    default:
      return;
  }
}

// --- key-api ---------------------------------------------------------------------------------

describe('bad input to key-api (property-based)', () => {
  const statuses = { http: new Map<number, number>(), handler: new Map<number, number>() };
  const raw = newRawTally();
  afterAll(async () => {
    await recordFigures('bad-input-key-api', {
      runsPerProperty: RUNS,
      seed: SEED,
      httpStatuses: Object.fromEntries(statuses.http),
      handlerStatuses: Object.fromEntries(statuses.handler),
      rawSocket: rawFigures(raw),
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

  describe('bytes no HTTP client would send (raw requests over a socket)', () => {
    let secret: string;
    beforeAll(async () => {
      const owner = await signUpAndSignIn('fuzz-raw-key');
      const created = await userApi(owner.idToken, 'POST', '/keys', { name: 'raw' });
      expect(created.status).toBe(201);
      secret = (created.body as { key: string }).key;
    }, 60_000);

    it('header values with bytes 0x80-0xFF, control bytes, CR/LF injection, obs-fold, long values', async () => {
      // With the owner's real key first, some requests are accepted: the fuzzed headers after it
      // then reach the gate's whole path, not just the key check.
      const request = fc.record({
        c: rawCase(fc.constantFrom('/', '/check', '/?key=x', '/%e9')),
        withKey: fc.boolean(),
      });
      await fc.assert(
        fc.asyncProperty(request, async ({ c, withKey }) => {
          const first: RawHeader[] = withKey ? [['x-api-key', latin1(secret)]] : [];
          const result = await checkRawAnswer(endpoints().keyApi, c, first, [200, 204, 400, 401, 413, 429]);
          countRaw(raw, c, result);
        }),
        params,
      );
      // The point of the property: non-ASCII bytes reached Tollgate's code, and some of them were
      // refused by its key check (not only by Node's parser).
      expect(raw.obsTextAnsweredByTollgate).toBeGreaterThan(0);
      expect(raw.statuses.get('tollgate 401') ?? 0).toBeGreaterThan(0);
    });
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
  const realKeys = {
    tally: new Map<string, Map<number, number>>(),
    realKey: new Map<string, Map<number, number>>(),
    keysAtEnd: 0,
    otherAccountUnchanged: false,
    maxKeys: undefined as number | undefined,
  };
  const raw = newRawTally();
  beforeAll(async () => {
    user = await signUpAndSignIn('fuzz');
  });
  afterAll(async () => {
    await recordFigures('bad-input-user-api', {
      runsPerProperty: RUNS,
      seed: SEED,
      signedInStatuses: Object.fromEntries(statuses.signedIn),
      badTokenStatuses: Object.fromEntries(statuses.tokens),
      realKeys: {
        statusesByRoute: tallyFigures(realKeys.tally),
        realKeyAnswersByRoute: tallyFigures(realKeys.realKey),
        keysAtEnd: realKeys.keysAtEnd,
        otherAccountUnchanged: realKeys.otherAccountUnchanged,
      },
      rawSocket: rawFigures(raw),
      parameters: {
        maxKeys: realKeys.maxKeys,
        maxCallsPerRun: MAX_CALLS_PER_RUN,
        keysCreatedFirst: KEYS_CREATED_FIRST,
      },
    });
  });

  describe("the caller's real keys: roll, reveal, revoke, usage (model-based)", () => {
    let owner: TestUser;
    let other: TestUser;
    let real: RealKeys;
    let otherBefore: unknown;
    let model: KeyModel | undefined;
    const listOf = async (who: TestUser) => {
      const answer = await userApi(who.idToken, 'GET', '/keys');
      expect(answer.status).toBe(200);
      return (answer.body as { keys: KeyView[] }).keys;
    };

    beforeAll(async () => {
      const admin = await signInAdmin();
      [owner, other] = await Promise.all([signUpAndSignIn('fuzz-owner'), signUpAndSignIn('fuzz-other')]);
      // Its own plan, with a key limit: creations and rolls then meet 409 key_limit_reached too,
      // and the live keys stay few, so the same real keys are rolled, revoked and read again.
      const planId = `fuzz-keys-${SEED}-${Date.now() % 1_000_000}`;
      const accountId = ((await userApi(owner.idToken, 'GET', '/me')).body as { userId: string }).userId;
      expect(
        (
          await userApi(admin.idToken, 'PUT', `/admin/plans/${planId}`, {
            name: planId,
            maxKeys: PLAN_MAX_KEYS,
          })
        ).status,
      ).toBe(201);
      expect(
        (await userApi(admin.idToken, 'PUT', `/admin/accounts/${accountId}/plan`, { planId })).status,
      ).toBe(200);
      realKeys.maxKeys = (
        (await userApi(owner.idToken, 'GET', '/me/plan')).body as { maxKeys?: { limit: number } }
      ).maxKeys?.limit;
      for (let i = 0; i < KEYS_CREATED_FIRST; i++) {
        expect((await userApi(owner.idToken, 'POST', '/keys', { name: `fuzz ${i}` })).status).toBe(201);
      }
      // The other account holds keys in every state: active, expiring (rolled), revoked, pending.
      const [a, b] = await Promise.all([
        userApi(other.idToken, 'POST', '/keys', { name: 'other a' }),
        userApi(other.idToken, 'POST', '/keys', { name: 'other b' }),
      ]);
      const otherIds = [a, b].map((r) => (r.body as { id: string }).id);
      expect((await userApi(other.idToken, 'POST', `/keys/${otherIds[0]}/roll`, {})).status).toBe(201);
      expect((await userApi(other.idToken, 'DELETE', `/keys/${otherIds[1]}`)).status).toBe(200);
      const otherKeys = await listOf(other);
      otherBefore = otherKeys;
      real = {
        token: owner.idToken,
        otherIds: otherKeys.map((key) => key.id),
        rollGraceMs: Number(stackEnv()[ENV.rollGraceMs] ?? DEFAULT_ROLL_GRACE_MS),
        tally: realKeys.tally,
        realKey: realKeys.realKey,
      };
      model = KeyModel.fromList(await listOf(owner), realKeys.maxKeys);
      expect(model.keys.size).toBe(KEYS_CREATED_FIRST + 1);
    }, 60_000);

    it('never a 5xx, the one error shape, every answer as the model says; GET /keys matches it after every run', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.commands([step.map((s) => new KeyCall(s))], { maxCommands: MAX_CALLS_PER_RUN }),
          async (calls) => {
            // The model carries over from run to run while they pass; after a failure (and in the
            // runs that shrink it) it is rebuilt from what the API lists.
            const start = model ?? KeyModel.fromList(await listOf(owner), realKeys.maxKeys);
            model = undefined;
            await fc.asyncModelRun(() => ({ model: { model: start }, real }), calls);
            const t0 = Date.now();
            const listed = await listOf(owner);
            expect(start.differences(listed, t0, Date.now())).toEqual([]);
            model = start;
          },
        ),
        params,
      );
      realKeys.keysAtEnd = model?.keys.size ?? 0;
      // The other account's keys are exactly as they were: no call of this caller reached them.
      const otherAfter = await listOf(other);
      realKeys.otherAccountUnchanged = JSON.stringify(otherAfter) === JSON.stringify(otherBefore);
      expect(otherAfter).toEqual(otherBefore);
      // A fuzz run that never reaches the real paths proves nothing: real keys were created,
      // rolled, revoked and read.
      const real2xx = (route: string, status: number) => realKeys.realKey.get(route)?.get(status) ?? 0;
      expect(realKeys.tally.get(ROUTE.create)?.get(201) ?? 0, 'keys created').toBeGreaterThan(0);
      expect(real2xx(ROUTE.roll, 201), 'real keys rolled').toBeGreaterThan(0);
      expect(real2xx(ROUTE.revoke, 200), 'real keys revoked').toBeGreaterThan(0);
      expect(real2xx(ROUTE.usage, 200), "real keys' usage read").toBeGreaterThan(0);
    });
  });

  describe('bytes no HTTP client would send (raw requests over a socket)', () => {
    it('header values with bytes 0x80-0xFF, control bytes, CR/LF injection, obs-fold, long values', async () => {
      // Signed in (most of them), so the fuzzed headers after the token reach the routes.
      const request = fc.record({
        c: rawCase(fc.constantFrom('/me', '/keys', '/usage', '/me/plan', '/keys/key_x/roll', '/nowhere')),
        signedIn: fc.boolean(),
      });
      await fc.assert(
        fc.asyncProperty(request, async ({ c, signedIn }) => {
          const first: RawHeader[] = signedIn ? [['authorization', latin1(`Bearer ${user.idToken}`)]] : [];
          const result = await checkRawAnswer(
            endpoints().userApi,
            c,
            first,
            [200, 201, 204, 400, 401, 404, 405, 409, 413, 415],
          );
          countRaw(raw, c, result);
        }),
        params,
      );
      expect(raw.obsTextAnsweredByTollgate).toBeGreaterThan(0);
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
