import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, METHODS, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { listen, readBody } from './http-util';

/**
 * Stands in for an Application Load Balancer with a Lambda target group (single-value headers),
 * so key-api runs locally with the same handler and the same event shape as behind the real ALB.
 */

export type AlbHandler = (event: ALBEvent) => Promise<ALBResult>;

export interface AlbAdapterOptions {
  readonly port: number;
  readonly handler: AlbHandler;
  readonly targetGroupArn: string;
  /** Told about handler failures; the client only gets a generic 502, as behind ALB. */
  readonly onHandlerError?: (error: unknown) => void;
}

export interface AlbAdapter {
  readonly endpoint: string;
  close(): Promise<void>;
}

/** ALB's limit for request and response bodies of Lambda targets. */
export const ALB_MAX_BODY_BYTES = 1024 * 1024;

// The content types ALB documents as passed through as text; every other body (form posts,
// `+json` types, no content type at all) reaches the function base64-encoded.
const TEXT_TYPES = [/^text\//, /^application\/(json|javascript|xml)$/];

export async function startAlbAdapter(options: AlbAdapterOptions): Promise<AlbAdapter> {
  const methodHeader = `x-local-alb-method-${randomBytes(8).toString('hex')}`;
  const server: Server = createServer((req, res) => {
    handle({ ...options, methodHeader }, req, res).catch((error: unknown) => {
      options.onHandlerError?.(error);
      if (!res.headersSent) sendError(res, 502, 'internal_error', 'The key API failed');
      else res.destroy();
    });
  });
  const front = createNetServer((socket) => acceptAnyMethod(socket, server, methodHeader));
  await listen(front, options.port);
  return {
    endpoint: `http://127.0.0.1:${options.port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    },
  };
}

/** Longest request line the front reads before it hands the connection over unchanged. */
const MAX_REQUEST_LINE = 8192;
/** RFC 9110's method token: tchar+. */
const METHOD_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const NODE_METHODS: ReadonlySet<string> = new Set(METHODS);

/**
 * An ALB passes any method token to its target; Node's HTTP parser refuses every method it does not
 * know (400). So the first request line of each connection is read here: a method Node does not
 * know is replaced by `GET`, with the real one in a header only this process can name, and
 * `toAlbEvent` puts it back. Later requests on a kept-alive connection meet Node's parser as they
 * are: the emulator's one difference from ALB, documented in docs/gate.md.
 */
function acceptAnyMethod(socket: Socket, server: Server, methodHeader: string): void {
  let buffered = Buffer.alloc(0);
  const hand = (data: Buffer) => {
    socket.pause();
    socket.unshift(data);
    server.emit('connection', socket);
    socket.resume();
  };
  const onData = (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    const end = buffered.indexOf('\r\n');
    if (end < 0 && buffered.length < MAX_REQUEST_LINE) return;
    socket.off('data', onData);
    const line = end < 0 ? '' : buffered.subarray(0, end).toString('latin1');
    const space = line.indexOf(' ');
    const method = space > 0 ? line.slice(0, space) : '';
    if (method === '' || NODE_METHODS.has(method) || !METHOD_TOKEN.test(method)) return hand(buffered);
    hand(
      Buffer.concat([
        Buffer.from(`GET${line.slice(space)}\r\n${methodHeader}: ${method}`, 'latin1'),
        buffered.subarray(end),
      ]),
    );
  };
  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
}

function drain(req: IncomingMessage, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (req.readableEnded) return resolve();
    const timer = setTimeout(resolve, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    req.once('end', done).once('error', done).once('close', done);
    req.resume();
  });
}

async function handle(
  options: AlbAdapterOptions & { methodHeader: string },
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const declaredLength = Number(req.headers['content-length'] ?? 0);
  const body = declaredLength > ALB_MAX_BODY_BYTES ? undefined : await readBody(req, ALB_MAX_BODY_BYTES);
  if (body === undefined) {
    // Read the rest of the body (discarding it) before answering, as a real server does: a client
    // still writing when the connection closes sees EPIPE instead of the 413. Bounded in time, so
    // a client that never stops sending still gets its answer.
    await drain(req, 2_000);
    sendError(
      res,
      413,
      'payload_too_large',
      `Request bodies are limited to ${ALB_MAX_BODY_BYTES} bytes`,
      true,
    );
    return;
  }

  const event = toAlbEvent(req, body, options);
  let result: ALBResult;
  try {
    result = await options.handler(event);
  } catch (error) {
    options.onHandlerError?.(error);
    sendError(res, 502, 'internal_error', 'The key API failed');
    return;
  }
  writeResult(res, result, options);
}

export function toAlbEvent(
  req: IncomingMessage,
  body: Buffer,
  options: Pick<AlbAdapterOptions, 'port' | 'targetGroupArn'> & { methodHeader?: string },
): ALBEvent {
  const rawUrl = req.url ?? '/';
  const queryStart = rawUrl.indexOf('?');
  const path = queryStart === -1 ? rawUrl : rawUrl.slice(0, queryStart);
  const query = queryStart === -1 ? '' : rawUrl.slice(queryStart + 1);

  const headers = singleValueHeaders(req);
  // A method Node's parser does not know, put back (acceptAnyMethod).
  const method = options.methodHeader === undefined ? undefined : headers[options.methodHeader];
  if (options.methodHeader !== undefined) delete headers[options.methodHeader];
  // What ALB adds on the way in; x-forwarded-for gets the client appended to any it sent.
  const client = req.socket.remoteAddress ?? '127.0.0.1';
  headers['x-forwarded-for'] = headers['x-forwarded-for']
    ? `${headers['x-forwarded-for']}, ${client}`
    : client;
  headers['x-forwarded-proto'] = 'http';
  headers['x-forwarded-port'] = String(options.port);
  headers['x-amzn-trace-id'] ??= traceId();

  const text = body.length === 0 ? '' : isTextual(headers) ? asUtf8(body) : undefined;
  return {
    requestContext: { elb: { targetGroupArn: options.targetGroupArn } },
    httpMethod: method ?? req.method ?? 'GET',
    path,
    queryStringParameters: singleValueQuery(query),
    headers,
    body: text ?? body.toString('base64'),
    isBase64Encoded: text === undefined,
  };
}

/** Lower-cased names; a repeated header keeps its last value, as ALB does without multi-value mode. */
function singleValueHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i];
    const value = req.rawHeaders[i + 1];
    if (name !== undefined && value !== undefined) headers[name.toLowerCase()] = value;
  }
  return headers;
}

/**
 * ALB hands names and values over exactly as they were sent, still percent-encoded (unlike API
 * Gateway), and a repeated parameter keeps its last value.
 */
function singleValueQuery(query: string): Record<string, string> {
  const parameters: Record<string, string> = {};
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    if (equals === -1) parameters[pair] = '';
    else parameters[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  return parameters;
}

function isTextual(headers: Record<string, string>): boolean {
  // A compressed body is bytes whatever its type.
  if (headers['content-encoding'] && headers['content-encoding'] !== 'identity') return false;
  const type = headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  return type !== undefined && TEXT_TYPES.some((pattern) => pattern.test(type));
}

function asUtf8(body: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    return undefined;
  }
}

function writeResult(res: ServerResponse, result: ALBResult, options: AlbAdapterOptions): void {
  if (!result || typeof result.statusCode !== 'number' || !Number.isInteger(result.statusCode)) {
    // ALB answers 502 when a Lambda target returns something that is not a valid response.
    options.onHandlerError?.(new Error(`key-api returned an invalid ALB result: ${JSON.stringify(result)}`));
    sendError(res, 502, 'internal_error', 'The key API failed');
    return;
  }
  const body = result.body
    ? Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8')
    : Buffer.alloc(0);
  if (body.length > ALB_MAX_BODY_BYTES) {
    options.onHandlerError?.(new Error(`key-api returned ${body.length} bytes, over ALB's limit`));
    sendError(res, 502, 'internal_error', 'The key API failed');
    return;
  }

  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(result.headers ?? {}))
    headers[name.toLowerCase()] = String(value);
  for (const [name, values] of Object.entries(result.multiValueHeaders ?? {})) {
    headers[name.toLowerCase()] = values.map(String);
  }
  headers['content-length'] = String(body.length);
  // statusDescription is ALB's status line, e.g. "404 Not Found"; Node wants just the reason.
  const reason = result.statusDescription?.replace(/^\d{3}\s*/, '');
  if (reason) res.writeHead(result.statusCode, reason, headers);
  else res.writeHead(result.statusCode, headers);
  res.end(body);
}

function sendError(res: ServerResponse, status: number, code: string, message: string, close = false): void {
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(body);
}

/** The `Root=1-<epoch hex>-<96 random bits>` id ALB adds to every request. */
function traceId(): string {
  const epoch = Math.floor(Date.now() / 1000).toString(16);
  return `Root=1-${epoch}-${randomBytes(12).toString('hex')}`;
}
