import { connect } from 'node:net';

/**
 * HTTP/1.1 spoken by hand over a TCP socket, for requests no HTTP client will send: header values
 * with bytes 0x80-0xFF, control bytes, bare CR or LF, obs-fold. fetch (undici) refuses those before
 * anything leaves the machine, so a server's handling of them is only reachable this way. The
 * answer is parsed here too, strictly, so a malformed response is a finding rather than whatever
 * a lenient client library makes of it.
 */

export interface RawResponse {
  version: string;
  status: number;
  reason: string;
  /** In the order received; names as sent (case kept). */
  headers: [string, string][];
  body: Buffer;
  /** How the body was delimited. */
  framing: 'content-length' | 'chunked' | 'close' | 'none';
}

export type RawOutcome =
  | { kind: 'response'; response: RawResponse }
  /** The server closed the connection without a byte of answer. */
  | { kind: 'closed'; bytes: 0 }
  /** Bytes came back that are not an HTTP response. */
  | { kind: 'malformed'; problem: string; head: string };

/** One header field value as the wire carries it: `name: value`, value bytes untouched. */
export type RawHeader = readonly [name: string, value: Buffer];

/** The bytes of a request: request line, headers in the order given, blank line, body. */
export function requestBytes(
  method: string,
  target: string | Buffer,
  headers: readonly RawHeader[],
  body: Buffer = Buffer.alloc(0),
): Buffer {
  const parts: Buffer[] = [
    Buffer.from(`${method} `, 'latin1'),
    Buffer.from(target),
    Buffer.from(' HTTP/1.1\r\n'),
  ];
  for (const [name, value] of headers)
    parts.push(Buffer.from(`${name}: `, 'latin1'), value, Buffer.from('\r\n'));
  parts.push(Buffer.from('\r\n'), body);
  return Buffer.concat(parts);
}

/**
 * Sends `bytes` to `endpoint` (http://host:port) and reads one response: until its body is complete
 * (content-length or chunked), or until the server closes. 1xx interim answers are skipped.
 * Rejects if nothing complete arrives within `timeoutMs`.
 */
export function rawExchange(endpoint: string, bytes: Buffer, timeoutMs = 5_000): Promise<RawOutcome> {
  const { hostname, port } = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const socket = connect({ host: hostname, port: Number(port) });
    const finish = (outcome: RawOutcome | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const timer = setTimeout(() => {
      const head = Buffer.concat(chunks).subarray(0, 200).toString('latin1');
      finish(new Error(`no complete answer within ${timeoutMs} ms (received: ${JSON.stringify(head)})`));
    }, timeoutMs);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      const parsed = parseResponse(Buffer.concat(chunks), false);
      if (parsed !== 'incomplete') finish(parsed);
    });
    // A server may reset a connection it refused while the request was still being written.
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') settle();
      else finish(error);
    });
    socket.on('end', settle);
    socket.on('close', settle);
    function settle() {
      const all = Buffer.concat(chunks);
      if (all.length === 0) return finish({ kind: 'closed', bytes: 0 });
      const parsed = parseResponse(all, true);
      finish(parsed === 'incomplete' ? malformed('connection closed mid-response', all) : parsed);
    }
  });
}

const STATUS_LINE = /^(HTTP\/1\.[01]) ([1-5]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
// RFC 9110 token characters; a field value is visible bytes, spaces and tabs (obs-text allowed).
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

function malformed(problem: string, bytes: Buffer): RawOutcome {
  return { kind: 'malformed', problem, head: bytes.subarray(0, 300).toString('latin1') };
}

/**
 * Parses one HTTP/1.x response from the start of `bytes` (RFC 9112), skipping 1xx answers. With
 * `closed`, a response without length framing ends at the end of the bytes.
 */
export function parseResponse(bytes: Buffer, closed: boolean): RawOutcome | 'incomplete' {
  let offset = 0;
  for (;;) {
    const end = bytes.indexOf('\r\n\r\n', offset, 'latin1');
    if (end === -1) return closed ? malformed('no end of headers', bytes.subarray(offset)) : 'incomplete';
    const lines = bytes.subarray(offset, end).toString('latin1').split('\r\n');
    const statusLine = lines.shift() ?? '';
    const match = STATUS_LINE.exec(statusLine);
    if (!match) return malformed(`bad status line ${JSON.stringify(statusLine)}`, bytes);
    const headers: [string, string][] = [];
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = colon === -1 ? '' : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
      if (!FIELD_NAME.test(name)) return malformed(`bad header line ${JSON.stringify(line)}`, bytes);
      if (!FIELD_VALUE.test(value) || /[\r\n]/.test(line)) {
        return malformed(`bad header value ${JSON.stringify(line)}`, bytes);
      }
      headers.push([name, value]);
    }
    const status = Number(match[2]);
    const bodyStart = end + 4;
    if (status >= 100 && status < 200) {
      offset = bodyStart;
      continue;
    }
    const head = { version: match[1] ?? '', status, reason: match[3] ?? '', headers };
    const field = (name: string) => headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
    // Bodiless by definition (RFC 9112 §6.3); HEAD is never sent by the callers of this module.
    if (status === 204 || status === 304) {
      if (field('content-length').some((v) => v !== '0') || field('transfer-encoding').length > 0) {
        return malformed(`${status} with a body framing`, bytes);
      }
      return { kind: 'response', response: { ...head, body: Buffer.alloc(0), framing: 'none' } };
    }
    const encodings = field('transfer-encoding');
    const lengths = field('content-length');
    if (encodings.length > 0 && lengths.length > 0)
      return malformed('both transfer-encoding and content-length', bytes);
    if (encodings.length > 0) {
      if (encodings.join(',').toLowerCase().replace(/\s/g, '') !== 'chunked') {
        return malformed(`transfer-encoding ${encodings.join(',')}`, bytes);
      }
      const body = dechunk(bytes.subarray(bodyStart));
      if (body === 'incomplete') return closed ? malformed('truncated chunked body', bytes) : 'incomplete';
      if (typeof body === 'string') return malformed(body, bytes);
      return { kind: 'response', response: { ...head, body, framing: 'chunked' } };
    }
    if (lengths.length > 0) {
      if (new Set(lengths).size !== 1 || !/^\d+$/.test(lengths[0] ?? '')) {
        return malformed(`content-length ${lengths.join(',')}`, bytes);
      }
      const length = Number(lengths[0]);
      if (bytes.length - bodyStart < length) {
        return closed ? malformed('body shorter than its content-length', bytes) : 'incomplete';
      }
      return {
        kind: 'response',
        response: { ...head, body: bytes.subarray(bodyStart, bodyStart + length), framing: 'content-length' },
      };
    }
    if (!closed) return 'incomplete';
    return { kind: 'response', response: { ...head, body: bytes.subarray(bodyStart), framing: 'close' } };
  }
}

/** The body of a chunked message, 'incomplete', or a problem. */
function dechunk(bytes: Buffer): Buffer | 'incomplete' | string {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', offset, 'latin1');
    if (lineEnd === -1) return 'incomplete';
    const sizeText = bytes.subarray(offset, lineEnd).toString('latin1').split(';')[0]?.trim() ?? '';
    if (!/^[0-9a-fA-F]+$/.test(sizeText)) return `bad chunk size ${JSON.stringify(sizeText)}`;
    const size = Number.parseInt(sizeText, 16);
    const dataStart = lineEnd + 2;
    if (size === 0) {
      // Trailers (none expected) end with an empty line.
      return bytes.indexOf('\r\n', dataStart, 'latin1') === -1 ? 'incomplete' : Buffer.concat(parts);
    }
    if (bytes.length < dataStart + size + 2) return 'incomplete';
    if (bytes.subarray(dataStart + size, dataStart + size + 2).toString('latin1') !== '\r\n') {
      return 'chunk not followed by CRLF';
    }
    parts.push(bytes.subarray(dataStart, dataStart + size));
    offset = dataStart + size + 2;
  }
}

/** The value of a header of a parsed response (the last one if repeated), lower-cased name. */
export function headerOf(response: RawResponse, name: string): string | undefined {
  return response.headers
    .filter(([n]) => n.toLowerCase() === name)
    .map(([, v]) => v)
    .at(-1);
}

/**
 * Whether Node's own HTTP parser answered (it refuses a request it cannot parse, or whose headers
 * pass `maxHeaderSize`, with a bare `400 Bad Request` or `431` and `Connection: close`, before any
 * handler runs) rather than Tollgate's code, which always answers with a body framing and a type.
 */
export function answeredByNodeParser(response: RawResponse): boolean {
  return (
    (response.status === 400 || response.status === 431) &&
    response.body.length === 0 &&
    headerOf(response, 'content-type') === undefined &&
    response.headers.every(([name]) => name.toLowerCase() === 'connection')
  );
}
