import { utcDay } from '../../contracts/usage-event';
import { localDay } from '../usage/time-zones';
import type { RouteDayCount } from '../usage/usage-reader';
import {
  bucketByKey,
  cellStarts,
  type Granularity,
  MAX_CELLS,
  type WindowCells,
  windowCells,
} from '../usage/usage-series';
import type { UserApiDeps } from './env';
import { ApiError, notFound } from './errors';

/**
 * GET /usage's answers, for the signed-in owner's account and for any account through the admin
 * routes: the window in the account's time zone, its cells, and the counts in them.
 *
 * A UTC day answer without a per-key split reads `requests` (dailyCounts, routeDailyCounts): what
 * the page has always shown, exact for counters written before hours were recorded. Every other
 * answer — hours, another zone, months, per key — is made of the counters' UTC hours
 * (services/usage/usage-series.ts says why that is exact in whole-hour zones).
 */

export const DEFAULT_USAGE_RANGE_DAYS = 30;
const DAY_MS = 24 * 3600_000;

export interface UsageQuery {
  from?: string;
  to?: string;
  keyId?: string;
  granularity?: Granularity;
  tz?: string;
  groupBy?: 'route' | 'key';
  include?: 'refusals';
}

export interface Cell {
  start: string;
  count: number;
}

export interface UsageAnswer {
  from: string;
  to: string;
  tz: string;
  granularity: Granularity;
  keyId?: string;
  asOf: string;
  total: number;
  series: Cell[];
  days?: { date: string; count: number }[];
  rounded?: true;
  keys?: { keyId: string; name?: string; total: number; series: Cell[] }[];
  routes?: {
    route: string;
    method: string;
    total: number;
    series: Cell[];
    days?: { date: string; count: number }[];
  }[];
}

const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The window's days: `from`/`to` as asked, or the last DEFAULT_USAGE_RANGE_DAYS local days to today. */
function windowDays(query: UsageQuery, timeZone: string, now: Date): { from: string; to: string } {
  const to = query.to ?? localDay(now.getTime(), timeZone);
  const from = query.from ?? utcDay(Date.parse(`${to}T00:00:00Z`) - (DEFAULT_USAGE_RANGE_DAYS - 1) * DAY_MS);
  if (from > to)
    throw new ApiError(400, 'invalid_request', `"from" (${from}) is after "to" (${to})`, [
      { path: 'from', message: 'after "to"' },
    ]);
  return { from, to };
}

const LIMIT_WORDS: Readonly<Record<Granularity, string>> = {
  hour: `${MAX_CELLS.hour} hours (31 days)`,
  day: `${MAX_CELLS.day} days`,
  month: `${MAX_CELLS.month} months`,
};

function cellsOf(from: string, to: string, timeZone: string, granularity: Granularity): WindowCells {
  const cells = windowCells({ from, to, timeZone, granularity });
  if ('tooMany' in cells) {
    throw new ApiError(
      400,
      'invalid_request',
      `A window of granularity "${granularity}" covers at most ${LIMIT_WORDS[granularity]}; from ${from} to ${to} is ${cells.tooMany}`,
      [{ path: 'from', message: `at most ${LIMIT_WORDS[granularity]} before "to"` }],
    );
  }
  return cells;
}

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

/** The account's own zone, else the deployment's. */
export async function accountTimeZone(deps: UserApiDeps, accountId: string): Promise<string> {
  return (await deps.store.getAccount(accountId))?.timeZone ?? deps.defaultTimeZone ?? 'UTC';
}

/** GET /usage for `accountId`: checks the query's bounds and key, reads, answers. */
export async function answerUsage(
  deps: UserApiDeps,
  accountId: string,
  query: UsageQuery,
): Promise<UsageAnswer> {
  const asOf = deps.clock.now();
  const tz = query.tz ?? (await accountTimeZone(deps, accountId));
  const granularity = query.granularity ?? 'day';
  const { from, to } = windowDays(query, tz, asOf);
  if (query.groupBy === 'route' && granularity === 'hour') {
    throw new ApiError(
      400,
      'invalid_request',
      'groupBy=route counts routes per day: use granularity day or month',
      [{ path: 'groupBy', message: 'route is counted per day, not per hour' }],
    );
  }
  const window = cellsOf(from, to, tz, granularity);
  if (query.keyId && !(await deps.store.getKey(accountId, query.keyId))) throw notFound();
  const scope = query.keyId ? { accountId, keyId: query.keyId } : { accountId };
  const head = {
    from,
    to,
    tz,
    granularity,
    ...(query.keyId ? { keyId: query.keyId } : {}),
    asOf: asOf.toISOString(),
  };
  const starts = cellStarts(window, tz);
  const utcDays = tz === 'UTC' && granularity === 'day';

  if (query.groupBy === 'route') {
    if (!utcDays)
      throw new ApiError(
        400,
        'invalid_request',
        'groupBy=route is counted per UTC day: use tz=UTC and granularity=day',
        [{ path: 'groupBy', message: 'route is counted per UTC day' }],
      );
    const days = starts.map((start) => start.slice(0, 10));
    const routes = routeSeries(await deps.usage.routeDailyCounts(scope, from, to), days).map((r) => ({
      ...r,
      series: r.days.map((d, i) => ({ start: starts[i] as string, count: d.count })),
    }));
    const series = starts.map((start, i) => ({
      start,
      count: routes.reduce((sum, r) => sum + (r.days[i]?.count ?? 0), 0),
    }));
    return { ...head, total: routes.reduce((sum, r) => sum + r.total, 0), series, routes };
  }

  if (utcDays && query.groupBy !== 'key') {
    const byDay = new Map((await deps.usage.dailyCounts(scope, from, to)).map((d) => [d.date, d.count]));
    const days = starts.map((start) => ({
      date: start.slice(0, 10),
      count: byDay.get(start.slice(0, 10)) ?? 0,
    }));
    const series = days.map((d, i) => ({ start: starts[i] as string, count: d.count }));
    return { ...head, total: days.reduce((sum, d) => sum + d.count, 0), series, days };
  }

  const counters = await deps.usage.hourlyCounts(scope, window.utcFrom, window.utcTo);
  const { keys, rounded } = bucketByKey(window, counters, granularity);
  const counts = starts.map((_, i) => keys.reduce((sum, key) => sum + (key.counts[i] ?? 0), 0));
  const series = starts.map((start, i) => ({ start, count: counts[i] ?? 0 }));
  const answer: UsageAnswer = {
    ...head,
    total: counts.reduce((sum, n) => sum + n, 0),
    series,
    ...(granularity === 'day'
      ? { days: series.map((c) => ({ date: c.start.slice(0, 10), count: c.count })) }
      : {}),
    ...(rounded ? { rounded: true as const } : {}),
  };
  if (query.groupBy === 'key') {
    const names = new Map((await deps.store.listKeys(accountId)).map((k) => [k.keyId, k.name]));
    // Every key of the account is in the answer, one without usage in the window with zeros.
    const zeros = new Array<number>(starts.length).fill(0);
    const unused = [...names.keys()]
      .filter((keyId) => !keys.some((key) => key.keyId === keyId))
      .sort(byCodeUnits);
    const all = [...keys, ...unused.map((keyId) => ({ keyId, counts: zeros, total: 0 }))];
    answer.keys = all.map((key) => ({
      keyId: key.keyId,
      ...(names.get(key.keyId) ? { name: names.get(key.keyId) as string } : {}),
      total: key.total,
      series: starts.map((start, i) => ({ start, count: key.counts[i] ?? 0 })),
    }));
  }
  return answer;
}

const CSV_SAFE = /^[A-Za-z0-9 _.:/+*{}#-]*$/;

/** A CSV field (RFC 4180): quoted when it holds anything but plain characters; a leading = + - @ is a formula to spreadsheets, so quoted and prefixed. */
function csvField(value: string | number): string {
  if (typeof value === 'number') return String(value);
  const guarded = /^[=+\-@]/.test(value) ? `'${value}` : value;
  return CSV_SAFE.test(guarded) && guarded === value ? value : `"${guarded.replaceAll('"', '""')}"`;
}

const csvLine = (fields: readonly (string | number)[]) => `${fields.map(csvField).join(',')}\r\n`;

/** The answer as CSV: a header row, then one row per cell (per key or route with groupBy): the JSON's numbers exactly. */
export function usageCsv(answer: UsageAnswer): string {
  if (answer.keys) {
    const rows = answer.keys.flatMap((key) =>
      key.series.map((cell) => [key.keyId, key.name ?? '', cell.start, cell.count]),
    );
    return csvLine(['keyId', 'name', 'start', 'count']) + rows.map(csvLine).join('');
  }
  if (answer.routes) {
    const rows = answer.routes.flatMap((r) =>
      r.series.map((cell) => [r.method, r.route, cell.start, cell.count]),
    );
    return csvLine(['method', 'route', 'start', 'count']) + rows.map(csvLine).join('');
  }
  return (
    csvLine(['start', 'count']) + answer.series.map((cell) => csvLine([cell.start, cell.count])).join('')
  );
}
