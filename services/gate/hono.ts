import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import { ANY_ROUTE, MAX_ROUTE_TEMPLATES } from '../../contracts/usage-event';
import { clientKey, honoClientIp } from './client-ip';
import { keyFromHeaders } from './extract-key';
import { type BillingPolicy, billSuccesses, type Caller, Gate } from './gate';
import type { Refusal } from './refusals';

/** What gated Hono handlers see: `c.get('caller')`. */
export interface GateEnv {
  Variables: { caller: Caller };
}

export interface GateMiddlewareOptions {
  /** Which answers are billed. @default billSuccesses (2xx and 3xx) */
  readonly bill?: BillingPolicy;
  /** Called after every request (composeGate passes the metrics' flush). */
  readonly endInvocation?: () => void;
  /**
   * The client's address, whose guess budget a lookup of an unknown key is charged to
   * (guess-throttle.ts); undefined: not throttled.
   * @default honoClientIp: behind an ALB the right-most `x-forwarded-for` entry, on Node the connection's address
   */
  readonly clientIp?: (c: Context) => string | undefined;
}

const refusalResponse = (refusal: Refusal): Response =>
  new Response(JSON.stringify(refusal.body), {
    status: refusal.status,
    headers: { 'content-type': 'application/json', ...refusal.headers },
  });

/**
 * The gate as Hono middleware, for Node servers and Hono on Lambda alike. The key comes from the
 * headers only; a refusal is answered in the one error shape and no handler runs. After the handler
 * answered, its route template is the path Hono matched it by (`/v1/rates/:currency`, never the raw
 * path; `*` when only middleware matched) and the answer is billed if the policy says so
 * (Gate.settle). In closed mode an answer whose usage could not be recorded is replaced by a 503.
 */
export function gateMiddleware(gate: Gate, options: GateMiddlewareOptions = {}): MiddlewareHandler<GateEnv> {
  const bill = options.bill ?? billSuccesses;
  const clientIp = options.clientIp ?? honoClientIp;
  // Hono's templates are the app's own route table, but nothing bounds its size here as the ALB
  // wrapper's `routes` are bounded: past MAX_ROUTE_TEMPLATES distinct ones this container records
  // the rest under `*`, so no app can grow a counter's attributes without bound.
  const templates = new Set<string>();
  const recorded = (route: string) => {
    if (templates.has(route)) return route;
    if (templates.size >= MAX_ROUTE_TEMPLATES) return ANY_ROUTE;
    templates.add(route);
    return route;
  };
  return async (c, next) => {
    try {
      const admission = await gate.admit(
        keyFromHeaders((name) => (c.req.header(name) ?? '').split(/,\s*/).filter(Boolean)),
        { client: () => clientKey(clientIp(c)) },
      );
      if (!admission.admitted) return refusalResponse(admission.refusal);
      c.set('caller', admission.caller);
      const here = c.req.routeIndex;
      await next();
      // A handler that threw was answered by the app's onError (Hono's default: a 500): a bug of the
      // owner's, counted and alarmed like the gate's own.
      if (c.error) gate.failed(c.error, 'gated handler failed');
      // After next(), routeIndex is the handler that answered; ours again if nothing else matched.
      const route = c.req.routeIndex === here ? ANY_ROUTE : recorded(routePath(c) || ANY_ROUTE);
      const settled = await gate.settle(
        admission,
        { route, method: c.req.method, status: c.res.status },
        bill,
      );
      const withheld = Gate.withheld(settled);
      if (withheld) {
        // Cleared first: Hono would otherwise copy the withheld answer's headers onto the refusal.
        c.res = undefined;
        c.res = refusalResponse(withheld);
        return;
      }
      for (const [name, value] of Object.entries(admission.headers)) c.res.headers.set(name, value);
    } finally {
      options.endInvocation?.();
    }
  };
}
