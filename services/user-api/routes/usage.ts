import { zValidator } from '@hono/zod-validator';
import { Hono } from 'hono';
import { z } from 'zod';
import { DAY_PATTERN, utcDay } from '../../../contracts/usage-event';
import type { UserApiDeps, UserApiEnv } from '../env';
import { ApiError, notFound, validationHook } from '../errors';

/** Longest range one request may ask for: a year, leap day included. */
export const MAX_USAGE_RANGE_DAYS = 366;
export const DEFAULT_USAGE_RANGE_DAYS = 30;
const DAY_MS = 24 * 3600_000;

const day = z
  .string()
  .regex(DAY_PATTERN, 'a date as YYYY-MM-DD')
  .refine((value) => utcDay(Date.parse(`${value}T00:00:00Z`) || 0) === value, 'not a calendar date');

const usageQuery = z.strictObject({
  from: day.optional(),
  to: day.optional(),
  keyId: z.string().min(1).max(128).optional(),
});

/** Every day from `from` to `to`, inclusive. */
function daysBetween(from: string, to: string): string[] {
  const days: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += DAY_MS)
    days.push(utcDay(t));
  return days;
}

export function usageRoutes(deps: UserApiDeps) {
  return new Hono<UserApiEnv>().get('/', zValidator('query', usageQuery, validationHook), async (c) => {
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
    const counted = await deps.usage.dailyCounts(
      query.keyId ? { accountId, keyId: query.keyId } : { accountId },
      from,
      to,
    );
    const byDay = new Map(counted.map((d) => [d.date, d.count]));
    const days = daysBetween(from, to).map((date) => ({ date, count: byDay.get(date) ?? 0 }));
    return c.json({
      from,
      to,
      ...(query.keyId ? { keyId: query.keyId } : {}),
      days,
      total: days.reduce((sum, d) => sum + d.count, 0),
      asOf: asOf.toISOString(),
    });
  });
}
