import type { RouteKey } from './router';

/**
 * A failure to inject: an answer Stripe gives when it is in trouble, or none at all.
 * - `server_error`: 500 `api_error` (the SDK retries it).
 * - `rate_limit`: 429 `rate_limit` with `Retry-After` (the SDK retries it with its own backoff).
 * - `hang`: no answer until the stand-in stops, past any client timeout.
 * Injected failures happen before the operation runs, so nothing changes and no idempotent result
 * is saved: a retry with the same key runs the operation.
 */
export type Fault =
  | { readonly kind: 'server_error' }
  | { readonly kind: 'rate_limit'; readonly retryAfterSeconds?: number }
  | { readonly kind: 'hang' };

interface Planned {
  readonly fault: Fault;
  remaining: number;
  readonly only: RouteKey | undefined;
}

/** The faults queued for the next requests, first queued first served. */
export class FaultPlan {
  private readonly planned: Planned[] = [];

  /** The next `times` requests (to `only`, if given) answer with `fault`. */
  add(fault: Fault, times = 1, only?: RouteKey): void {
    this.planned.push({ fault, remaining: times, only });
  }

  clear(): void {
    this.planned.length = 0;
  }

  take(route: RouteKey): Fault | undefined {
    const next = this.planned.find((planned) => planned.only === undefined || planned.only === route);
    if (next === undefined) return undefined;
    next.remaining -= 1;
    if (next.remaining <= 0) this.planned.splice(this.planned.indexOf(next), 1);
    return next.fault;
  }
}
