import type { ALBEvent } from 'aws-lambda';

export type KeySource = 'x-api-key' | 'bearer' | 'body';

export type ExtractedKey =
  | { kind: 'found'; key: string; source: KeySource }
  | { kind: 'missing' }
  /** The request carries something that cannot be a usable key, e.g. two different keys. */
  | { kind: 'invalid'; message: string };

/** Header values of an ALB event, whether the target group sends single or multi-value headers. */
export function headerValues(event: ALBEvent, name: string): string[] {
  const values: string[] = [];
  for (const [key, value] of Object.entries(event.multiValueHeaders ?? {})) {
    if (key.toLowerCase() === name && value) values.push(...value);
  }
  for (const [key, value] of Object.entries(event.headers ?? {})) {
    if (key.toLowerCase() === name && value !== undefined) values.push(value);
  }
  return values;
}

export function bodyText(event: ALBEvent): string {
  if (!event.body) return '';
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * A key from the request's headers: `x-api-key` or `Authorization: Bearer`. Two different keys are
 * refused rather than picking one. `header` returns every value of a header, by lower-case name.
 */
export function keyFromHeaders(header: (name: string) => readonly string[]): ExtractedKey {
  const headerKeys = new Map<string, KeySource>();
  for (const value of header('x-api-key')) {
    if (value.trim()) headerKeys.set(value.trim(), 'x-api-key');
  }
  for (const value of header('authorization')) {
    const bearer = BEARER.exec(value);
    if (bearer?.[1] && !headerKeys.has(bearer[1])) headerKeys.set(bearer[1], 'bearer');
  }
  if (headerKeys.size > 1) return { kind: 'invalid', message: 'The request carries more than one API key' };
  const [first] = headerKeys;
  return first ? { kind: 'found', key: first[0], source: first[1] } : { kind: 'missing' };
}

/**
 * Where a caller of key-api may put its key, in order: `x-api-key`, `Authorization: Bearer`, or
 * the article's JSON body `{"key": "..."}`. The body is read only when no header carries a key, so
 * an API whose own payload happens to have a `key` field is not misread. (The gate in front of an
 * owner's handlers reads headers only: the body is the owner's.)
 */
export function extractKey(event: ALBEvent): ExtractedKey {
  const fromHeaders = keyFromHeaders((name) => headerValues(event, name));
  return fromHeaders.kind === 'missing' ? keyFromBody(bodyText(event)) : fromHeaders;
}

function keyFromBody(text: string): ExtractedKey {
  if (!text.trimStart().startsWith('{')) return { kind: 'missing' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: 'missing' };
  }
  if (typeof parsed !== 'object' || parsed === null || !('key' in parsed)) return { kind: 'missing' };
  const key = (parsed as { key: unknown }).key;
  if (typeof key !== 'string') return { kind: 'invalid', message: 'The "key" field must be a string' };
  return key.trim() ? { kind: 'found', key: key.trim(), source: 'body' } : { kind: 'missing' };
}
