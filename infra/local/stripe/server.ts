import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from '../http-util';
import type { StandInTime } from './clock';
import { StripeApiError } from './errors';
import type { EventPublisher } from './events';
import type { FaultPlan } from './faults';
import { parseStripeParams } from './form';
import type { IdempotencyStore, SavedAnswer } from './idempotency';
import { newId } from './ids';
import { answerPage } from './pages';
import { ParamReader } from './params';
import type { RouteKey, RouteMatch, Router } from './router';
import type { StandInState } from './state';

const BODY_LIMIT = 1024 * 1024;

/** An answer the stand-in gave to an API request, as the fidelity test reads it back. */
export interface RecordedAnswer {
  readonly route: RouteKey;
  readonly status: number;
  readonly body: unknown;
}

export interface ServerDeps {
  readonly router: Router;
  readonly state: StandInState;
  readonly time: StandInTime;
  readonly events: EventPublisher;
  readonly faults: FaultPlan;
  readonly idempotency: IdempotencyStore;
  readonly secretKey: string;
  readonly baseUrl: () => string;
  readonly answers: RecordedAnswer[];
  /** Requests held open by a `hang` fault, ended when the stand-in stops. */
  readonly hanging: Set<ServerResponse>;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): SavedAnswer {
  return {
    status,
    body: JSON.stringify(body, null, 2),
    headers: { 'content-type': 'application/json', ...headers },
  };
}

function faultAnswer(deps: ServerDeps, route: RouteKey): SavedAnswer | 'hang' | undefined {
  const fault = deps.faults.take(route);
  if (fault === undefined) return undefined;
  if (fault.kind === 'hang') return 'hang';
  if (fault.kind === 'rate_limit') {
    const message =
      'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.';
    return json(
      429,
      { error: { type: 'invalid_request_error', code: 'rate_limit', message } },
      {
        'retry-after': String(fault.retryAfterSeconds ?? 1),
      },
    );
  }
  return json(500, {
    error: { type: 'api_error', message: 'An unknown error occurred (injected by the stand-in).' },
  });
}

function authorized(req: IncomingMessage, secretKey: string): boolean {
  return req.headers.authorization === `Bearer ${secretKey}`;
}

function runHandler(
  deps: ServerDeps,
  match: RouteMatch,
  params: ParamReader,
  requestId: string,
  key: string | undefined,
): SavedAnswer {
  try {
    const body = match.handler({
      params,
      path: match.path,
      state: deps.state,
      time: deps.time,
      events: deps.events,
      baseUrl: deps.baseUrl(),
      requestId,
      idempotencyKey: key,
    });
    return json(200, body);
  } catch (error) {
    if (error instanceof StripeApiError) return json(error.status, error.body(), { ...error.headers });
    return json(500, { error: { type: 'api_error', message: `The stand-in failed: ${String(error)}` } });
  }
}

/** Faults, then idempotent replay, then the operation; the answer is recorded either way. */
function answerOperation(
  deps: ServerDeps,
  req: IncomingMessage,
  match: RouteMatch,
  rawBody: string,
  query: string,
): SavedAnswer | 'hang' {
  const injected = faultAnswer(deps, match.key);
  if (injected !== undefined) return injected;
  const isV2 = match.key.includes(' /v2/');
  const params = new ParamReader(
    req.method === 'GET' || req.method === 'DELETE'
      ? parseStripeParams(query)
      : isV2
        ? {}
        : parseStripeParams(rawBody),
  );
  const requestId = newId('req');
  const key = req.method === 'POST' ? (req.headers['idempotency-key'] as string | undefined) : undefined;
  const fingerprint = `${match.key} ${JSON.stringify(params.raw)}`;
  try {
    const saved =
      key === undefined ? undefined : deps.idempotency.replay(key, fingerprint, deps.time.nowMs());
    if (saved !== undefined)
      return { ...saved, headers: { ...saved.headers, 'idempotent-replayed': 'true' } };
  } catch (error) {
    if (error instanceof StripeApiError) return json(error.status, error.body());
    throw error;
  }
  const answer = runHandler(deps, match, params, requestId, key);
  // Refused parameters save nothing: "no idempotent result is saved because no API endpoint began execution".
  if (key !== undefined && answer.status !== 400)
    deps.idempotency.save(key, fingerprint, answer, deps.time.nowMs());
  return {
    ...answer,
    headers: {
      ...answer.headers,
      'request-id': requestId,
      ...(key === undefined ? {} : { 'idempotency-key': key }),
    },
  };
}

function apiAnswer(deps: ServerDeps, req: IncomingMessage, url: URL, rawBody: string): SavedAnswer | 'hang' {
  if (!authorized(req, deps.secretKey)) {
    const message = 'Invalid API Key provided. The stand-in accepts only the secret key it was started with.';
    return json(401, { error: { type: 'invalid_request_error', message } });
  }
  const match = deps.router.match(req.method ?? 'GET', url.pathname);
  if (match === undefined) {
    const message = `Unrecognized request URL (${req.method}: ${url.pathname}). The stand-in serves only what docs/stripe-stand-in.md lists.`;
    return json(404, { error: { type: 'invalid_request_error', message } });
  }
  const answer = answerOperation(deps, req, match, rawBody, url.search.slice(1));
  if (answer !== 'hang')
    deps.answers.push({ route: match.key, status: answer.status, body: JSON.parse(answer.body) });
  return answer;
}

/** The stand-in's HTTP entry: hosted pages for browsers, the API for the SDK. */
export function createRequestListener(deps: ServerDeps) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const rawBody = (await readBody(req, BODY_LIMIT))?.toString('utf8') ?? '';
    const url = new URL(req.url ?? '/', deps.baseUrl());
    const page = answerPage(url.pathname, req.method ?? 'GET', rawBody, deps);
    const answer = page ?? apiAnswer(deps, req, url, rawBody);
    if (answer === 'hang') {
      deps.hanging.add(res);
      res.on('close', () => deps.hanging.delete(res));
      return;
    }
    res.writeHead(answer.status, {
      ...answer.headers,
      'stripe-version': String(req.headers['stripe-version'] ?? ''),
    });
    res.end(answer.body);
  };
}
