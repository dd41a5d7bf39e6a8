import { createRoute, z } from '@hono/zod-openapi';
import { DAY_PATTERN, utcDay } from '../../../contracts/usage-event';
import type { RouteDayCount } from '../../usage/usage-reader';
import type { UserApiDeps } from '../env';
import { ApiError, notFound } from '../errors';
import { errorResponses, json, requiresIdToken, router, timestamp } from '../openapi';

/** Longest range one request may ask for: a year, leap day included. */
export const MAX_USAGE_RANGE_DAYS = 366;
export const DEFAULT_USAGE_RANGE_DAYS = 30;
const DAY_MS = 24 * 3600_000;

const day = z
  .string()
  .regex(DAY_PATTERN, 'a date as YYYY-MM-DD')
  .refine((value) => utcDay(Date.parse(`${value}T00:00:00Z`) || 0) === value, 'not a calendar date')
  .openapi({ format: 'date', example: '2026-01-31' });

const usageQuery = z.strictObject({
  from: day
    .optional()
    .openapi({ description: `First day (UTC). Default: ${DEFAULT_USAGE_RANGE_DAYS - 1} days before \`to\`` }),
  to: day.optional().openapi({ description: 'Last day (UTC), included. Default: today' }),
  keyId: z
    .string()
    .min(1)
    .max(128)
    .optional()
    .openapi({ description: 'One key of the account; default: all of them' }),
  groupBy: z
    .enum(['route'])
    .optional()
    .openapi({ description: '`route`: the series per route and method instead of one series' }),
});

const dayCount = z.object({ date: z.string().openapi({ format: 'date' }), count: z.number().int() });

const dailyUsage = z
  .object({
    from: z.string().openapi({ format: 'date' }),
    to: z.string().openapi({ format: 'date' }),
    keyId: z.string().optional(),
    days: z.array(dayCount).openapi({ description: 'Every day of the range, zeros included' }),
    total: z.number().int(),
    asOf: timestamp.openapi({ description: 'When the counters were read' }),
  })
  .openapi('DailyUsage');

const routeUsage = z
  .object({
    from: z.string().openapi({ format: 'date' }),
    to: z.string().openapi({ format: 'date' }),
    keyId: z.string().optional(),
    asOf: timestamp.openapi({ description: 'When the counters were read' }),
    total: z.number().int().openapi({ description: "The sum of the routes' totals" }),
    routes: z
      .array(
        z.object({
          route: z.string().openapi({ description: 'The route template; `*` for requests without one' }),
          method: z.string().openapi({ description: 'The HTTP method; `*` for requests without one' }),
          total: z.number().int(),
          days: z.array(dayCount).openapi({ description: 'Every day of the range, zeros included' }),
        }),
      )
      .openapi({ description: 'Routes by total, largest first, then by method and route' }),
  })
  .openapi('RouteUsage');

const getUsage = createRoute({
  method: 'get',
  path: '/',
  tags: ['Usage'],
  summary: 'Requests counted per day',
  description: `At most ${MAX_USAGE_RANGE_DAYS} days. With \`groupBy=route\`, one series per route and method.`,
  security: requiresIdToken,
  request: { query: usageQuery },
  responses: {
    200: json(z.union([dailyUsage, routeUsage]), '`DailyUsage`, or `RouteUsage` with `groupBy=route`'),
    ...errorResponses(400, 404),
  },
});

/** Every day from `from` to `to`, inclusive. */
function daysBetween(from: string, to: string): string[] {
  const days: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += DAY_MS)
    days.push(utcDay(t));
  return days;
}

const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * One series per route and method over `days` (zeros included), from counts that hold only days
 * with usage; counts outside `days` are left out, as the daily series leaves them out.
 */
function routeSeries(counted: readonly RouteDayCount[], days: readonly string[]) {
  const inRange = new Set(days);
  const routes = new Map<string, { route: string; method: string; byDay: Map<string, number> }>();
  for (const { route, method, date, count } of counted) {
    if (!inRange.has(date)) continue;
    const id = `${method} ${route}`;
    const entry = routes.get(id) ?? { route, method, byDay: new Map<string, number>() };
    entry.byDay.set(date, (entry.byDay.get(date) ?? 0) + count);
    routes.set(id, entry);
  }
  return [...routes.values()]
    .map(({ route, method, byDay }) => {
      const series = days.map((date) => ({ date, count: byDay.get(date) ?? 0 }));
      return { route, method, total: series.reduce((sum, d) => sum + d.count, 0), days: series };
    })
    .sort((a, b) => b.total - a.total || byCodeUnits(a.method, b.method) || byCodeUnits(a.route, b.route));
}

export function usageRoutes(deps: UserApiDeps) {
  return router().openapi(getUsage, async (c) => {
    const query = c.req.valid('query');
    const asOf = deps.clock.now();
    const to = query.to ?? utcDay(asOf.getTime());
    const from =
      query.from ?? utcDay(Date.parse(`${to}T00:00:00Z`) - (DEFAULT_USAGE_RANGE_DAYS - 1) * DAY_MS);
    const span = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS + 1;
    if (span < 1) throw new ApiError(400, 'invalid_request', `"from" (${from}) is after "to" (${to})`);
    if (span > MAX_USAGE_RANGE_DAYS) {
      throw new ApiError(
        400,
        'invalid_request',
        `A range covers at most ${MAX_USAGE_RANGE_DAYS} days; this one covers ${span}`,
      );
    }
    const accountId = c.get('user').userId;
    if (query.keyId && !(await deps.store.getKey(accountId, query.keyId))) throw notFound();
    const scope = query.keyId ? { accountId, keyId: query.keyId } : { accountId };
    const keyId = query.keyId ? { keyId: query.keyId } : {};

    if (query.groupBy === 'route') {
      const routes = routeSeries(await deps.usage.routeDailyCounts(scope, from, to), daysBetween(from, to));
      return c.json(
        {
          from,
          to,
          ...keyId,
          asOf: asOf.toISOString(),
          total: routes.reduce((sum, r) => sum + r.total, 0),
          routes,
        },
        200,
      );
    }

    const counted = await deps.usage.dailyCounts(scope, from, to);
    const byDay = new Map(counted.map((d) => [d.date, d.count]));
    const days = daysBetween(from, to).map((date) => ({ date, count: byDay.get(date) ?? 0 }));
    return c.json(
      {
        from,
        to,
        ...keyId,
        days,
        total: days.reduce((sum, d) => sum + d.count, 0),
        asOf: asOf.toISOString(),
      },
      200,
    );
  });
}
