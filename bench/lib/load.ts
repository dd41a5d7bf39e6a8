import autocannon from 'autocannon';
import { seededRandom, summarize, zipfSampler } from './stats';
import type { LoadResult } from './types';

export interface LoadOptions {
  readonly url: string;
  /** The keys to draw from, hottest first; drawn Zipf(zipfS). */
  readonly keys: readonly string[];
  readonly zipfS: number;
  readonly seed: number;
  readonly connections: number;
  /** Either a duration in seconds or a fixed number of requests. */
  readonly durationSec?: number;
  readonly amount?: number;
}

/**
 * Drives one key-check endpoint with autocannon on loopback: POST / with the article's body
 * `{"key": "..."}` (both Tollgate and the baseline read it), each request's key drawn from a Zipf
 * distribution with a fixed seed, so every target sees the same sequence of keys. Latencies are
 * kept at full resolution (autocannon's own histogram rounds to whole milliseconds).
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const draw = zipfSampler(options.keys.length, options.zipfS, seededRandom(options.seed));
  const bodies = options.keys.map((key) => JSON.stringify({ key }));
  const ok = new Array<number>(options.keys.length).fill(0);
  const latencies: number[] = [];
  let responseBytes = 0;
  let responses = 0;

  const instance = autocannon({
    url: options.url,
    connections: options.connections,
    ...(options.amount ? { amount: options.amount } : { duration: options.durationSec ?? 10 }),
    timeout: 30,
    requests: [
      {
        method: 'POST',
        path: '/',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request, context) => {
          const i = draw();
          context.i = i;
          return { ...request, body: bodies[i] as string };
        },
        onResponse: (status, _body, context) => {
          if (status === 200) ok[context.i as number] = (ok[context.i as number] ?? 0) + 1;
        },
      },
    ],
  });
  instance.on('response', (_client: unknown, _status: number, bytes: number, ms: number) => {
    latencies.push(ms);
    responseBytes += bytes;
    responses++;
  });
  const result = await instance;
  // What goes on the wire for one request: autocannon's request line and headers, then the body.
  const host = new URL(options.url).host;
  const requestBytes =
    bodies.reduce(
      (sum, body) =>
        sum +
        Buffer.byteLength(
          `POST / HTTP/1.1\r\nHost: ${host}\r\ncontent-type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        ),
      0,
    ) / Math.max(1, bodies.length);
  const statuses: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {}))
    statuses[code] = Number(count);
  return {
    durationSec: result.duration,
    requests: responses,
    reqPerSec: responses / result.duration,
    statuses,
    ok200: statuses['200'] ?? 0,
    errors: result.errors,
    timeouts: result.timeouts,
    latencyMs: summarize(latencies),
    responseBytes: responses ? responseBytes / responses : 0,
    requestBytes,
    perKey200: ok,
  };
}
