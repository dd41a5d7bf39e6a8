import type { ALBEvent, ALBResult } from 'aws-lambda';
import { TrieRouter } from 'hono/router/trie-router';
import { errorBody } from '../../contracts/errors';
import { ANY_ROUTE, MAX_ROUTE_TEMPLATES, routeTemplateSchema } from '../../contracts/usage-event';
import { albClientIp, clientKey } from './client-ip';
import { headerValues, keyFromHeaders } from './extract-key';
import { type BillingPolicy, billSuccesses, type Caller, Gate } from './gate';
import type { Refusal } from './refusals';

/** The owner's ALB handler, behind the gate: it runs only for an admitted caller. */
export type GatedAlbHandler = (event: ALBEvent, caller: Caller) => Promise<ALBResult>;

export interface AlbGateOptions {
  /**
   * The routes usage is split by, `"<METHOD> <template>"` in Hono's path syntax, e.g.
   * `"GET /v1/rates/:currency"` (`ALL` for any method). A request matching none is recorded as `*`,
   * so the split stays as small as this list whatever paths clients send.
   */
  readonly routes?: readonly string[];
  /** Which answers are billed. @default billSuccesses (2xx and 3xx) */
  readonly bill?: BillingPolicy;
  /** Called after every invocation (composeGate passes the metrics' flush). */
  readonly endInvocation?: () => void;
  /**
   * The client's address, whose guess budget a lookup of an unknown key is charged to
   * (guess-throttle.ts); undefined: not throttled.
   * @default albClientIp: the right-most `x-forwarded-for` entry, the one the ALB added
   */
  readonly clientIp?: (event: ALBEvent) => string | undefined;
}

/** A JSON answer as an ALB target gives it (key-api's too). */
export const albJson = (status: number, body: unknown, headers: Record<string, string> = {}): ALBResult => ({
  statusCode: status,
  statusDescription: `${status}`,
  isBase64Encoded: false,
  headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
  body: JSON.stringify(body),
});

/** The gate's refusal as an ALB answer, with any further headers (key-api's CORS). */
export const albRefusal = (refusal: Refusal, headers: Record<string, string> = {}): ALBResult =>
  albJson(refusal.status, refusal.body, { ...refusal.headers, ...headers });

/** Route templates → a matcher of (method, path) to the template (Hono's router, not our own). */
export function routeMatcher(routes: readonly string[]): (method: string, path: string) => string {
  // Checked at cold start, not per request: each template is a counter dimension (times
  // BILLED_METHODS), so the list bounds the attributes a key's day item can grow, and a template
  // the event schema refuses would make every answer on it unbillable.
  if (routes.length > MAX_ROUTE_TEMPLATES) {
    throw new Error(`at most ${MAX_ROUTE_TEMPLATES} routes can be declared, not ${routes.length}`);
  }
  const router = new TrieRouter<string>();
  for (const route of routes) {
    const [method, template, ...rest] = route.trim().split(/\s+/);
    if (!method || !template?.startsWith('/') || rest.length > 0) {
      throw new Error(`a route is "<METHOD> <template>", e.g. "GET /v1/rates/:currency": got "${route}"`);
    }
    if (!routeTemplateSchema.safeParse(template).success) {
      throw new Error(`a route template is a printable path of at most 200 characters: got "${template}"`);
    }
    router.add(method.toUpperCase(), template, template);
  }
  return (method, path) => router.match(method.toUpperCase(), path)[0][0]?.[0] ?? ANY_ROUTE;
}

/**
 * An ALB-event Lambda handler behind the gate: the article's architecture, with the ALB's target
 * being the owner's own function. The key check (headers only: the body is the owner's) comes
 * first; a refusal is answered in the one error shape and the handler never runs. After the handler
 * answered, the answer is billed if the policy says so (Gate.settle): in closed mode an answer
 * whose usage could not be recorded is replaced by a 503. A handler that throws is answered 500
 * (logged and counted as `InternalErrors`) and not billed.
 */
export function gateAlbHandler(
  gate: Gate,
  handler: GatedAlbHandler,
  options: AlbGateOptions = {},
): (event: ALBEvent) => Promise<ALBResult> {
  const routeOf = routeMatcher(options.routes ?? []);
  const bill = options.bill ?? billSuccesses;
  const clientIp = options.clientIp ?? albClientIp;
  return async (event) => {
    try {
      const admission = await gate.admit(
        keyFromHeaders((name) => headerValues(event, name)),
        { client: () => clientKey(clientIp(event)) },
      );
      if (!admission.admitted) return albRefusal(admission.refusal);
      let result: ALBResult;
      try {
        result = await handler(event, admission.caller);
      } catch (error) {
        gate.failed(error, 'gated handler failed');
        result = albJson(500, errorBody('internal_error', 'The request failed'));
      }
      const answer = {
        route: routeOf(event.httpMethod, event.path),
        method: event.httpMethod,
        status: result.statusCode,
      };
      const withheld = Gate.withheld(await gate.settle(admission, answer, bill));
      if (withheld) return albRefusal(withheld);
      const headers = admission.headers;
      if (headers['ratelimit-policy'] === undefined) return result;
      // Added in place: the answer is the gate's to hand on by now, and a copy of it costs more.
      const own = result.headers ?? {};
      own['ratelimit-policy'] = headers['ratelimit-policy'];
      own.ratelimit = headers.ratelimit as string;
      result.headers = own;
      return result;
    } finally {
      options.endInvocation?.();
    }
  };
}
