import type { StandInTime } from './clock';
import type { EventPublisher } from './events';
import type { OperationKey } from './operations';
import type { ParamReader } from './params';
import type { StandInState } from './state';

/** The v2 operation the SDK calls to fetch a thin event's full body (`notification.fetchEvent()`). */
export type V2OperationKey = 'GET /v2/core/events/{id}';
export type RouteKey = OperationKey | V2OperationKey;

/** What a handler gets: its parameters (body or query), path values and the stand-in's state. */
export interface RequestContext {
  readonly params: ParamReader;
  readonly path: Readonly<Record<string, string>>;
  readonly state: StandInState;
  readonly time: StandInTime;
  readonly events: EventPublisher;
  /** Where the stand-in listens, e.g. `http://127.0.0.1:12111`: hosted pages' URLs start with it. */
  readonly baseUrl: string;
  readonly requestId: string;
  readonly idempotencyKey: string | undefined;
}

/** Answers a request with the JSON body of a 200, or throws a StripeApiError. */
export type Handler = (context: RequestContext) => unknown;

export type Routes = Partial<Record<RouteKey, Handler>>;

interface CompiledRoute {
  readonly key: RouteKey;
  readonly method: string;
  readonly pattern: RegExp;
  readonly names: readonly string[];
  readonly handler: Handler;
}

export interface RouteMatch {
  readonly key: RouteKey;
  readonly path: Record<string, string>;
  readonly handler: Handler;
}

/** Dispatches `METHOD /path` on the operation keys of Stripe's OpenAPI document. */
export class Router {
  private readonly routes: CompiledRoute[];

  constructor(routes: Routes) {
    this.routes = Object.entries(routes).map(([key, handler]) => {
      const [method = '', template = ''] = key.split(' ');
      const names = [...template.matchAll(/\{(\w+)\}/g)].map((match) => match[1] ?? '');
      const source = template.replace(/[.]/g, '\\.').replace(/\{\w+\}/g, '([^/]+)');
      return {
        key: key as RouteKey,
        method,
        pattern: new RegExp(`^${source}$`),
        names,
        handler: handler as Handler,
      };
    });
  }

  match(method: string, pathname: string): RouteMatch | undefined {
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const found = route.pattern.exec(pathname);
      if (found === null) continue;
      const path = Object.fromEntries(
        route.names.map((name, index) => [name, decodeURIComponent(found[index + 1] ?? '')]),
      );
      return { key: route.key, path, handler: route.handler };
    }
    return undefined;
  }
}
