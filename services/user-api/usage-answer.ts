import { utcDay } from '../../contracts/usage-event';
import { REFUSAL_REASONS, type RefusalCount, type RefusalReason } from '../usage/refusals';
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
import { csvLine } from './csv';
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

export type RefusalCounts = Record<RefusalReason, number>;

/** Refusals of a window: totals per reason and one cell per usage cell. Never billed, never in `total`. */
export interface RefusalsAnswer {
  total: RefusalCounts;
  series: ({ start: string } & RefusalCounts)[];
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
  refusals?: RefusalsAnswer;
  keys?: { keyId: string; name?: string; total: number; series: Cell[]; refusals?: RefusalsAnswer }[];
  routes?: {
    route: string;
    method: string;
    total: number;
    series: Cell[];
    days?: { date: string; count: number }[];
  }[];
}

const noRefusals = (): RefusalCounts => ({ rate_limited: 0, quota_exceeded: 0, account_suspended: 0 });

/**
 * Refusals in the window's cells, each UTC hour placed as the usage hours are (by its middle), for
 * the whole scope and per key.
 */
function refusalCells(window: WindowCells, starts: readonly string[], counts: readonly RefusalCount[]) {
  const empty = (): RefusalsAnswer => ({
    total: noRefusals(),
    series: starts.map((start) => ({ start, ...noRefusals() })),
  });
  const all = empty();
  const byKey = new Map<string, RefusalsAnswer>();
  for (const count of counts) {
    const middle = count.hourStart + 1_800_000;
    const at = window.cells.findIndex((cell) => middle >= cell.start && middle < cell.end);
    if (at < 0) continue;
    const key = byKey.get(count.keyId) ?? empty();
    byKey.set(count.keyId, key);
    for (const answer of [all, key]) {
      answer.total[count.reason] += count.count;
      (answer.series[at] as RefusalCounts)[count.reason] += count.count;
    }
  }
  return { all, byKey, empty };
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

/** What every branch of an answer shares: the window, its cells and their labels, the scope. */
interface Asked {
  query: UsageQuery;
  accountId: string;
  scope: { accountId: string; keyId?: string };
  head: Omit<UsageAnswer, 'total' | 'series'>;
  window: WindowCells;
  starts: string[];
  refused: ReturnType<typeof refusalCells> | undefined;
}

const refusedWith = (asked: Asked) => (asked.refused ? { refusals: asked.refused.all } : {});

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
  const utcDays = tz === 'UTC' && granularity === 'day';
  if (query.groupBy === 'route' && !utcDays) {
    throw new ApiError(
      400,
      'invalid_request',
      'groupBy=route is counted per UTC day: use tz=UTC and granularity=day',
      [{ path: 'groupBy', message: 'route is counted per UTC day' }],
    );
  }
  if (query.include === 'refusals' && query.groupBy === 'route') {
    throw new ApiError(
      400,
      'invalid_request',
      'Refusals are counted per key, not per route: use groupBy=key or none',
      [{ path: 'include', message: 'refusals are not counted per route' }],
    );
  }
  const window = cellsOf(from, to, tz, granularity);
  if (query.keyId && !(await deps.store.getKey(accountId, query.keyId))) throw notFound();
  const scope = query.keyId ? { accountId, keyId: query.keyId } : { accountId };
  const starts = cellStarts(window, tz);
  const windowStart = window.cells[0]?.start ?? 0;
  const windowEnd = window.cells.at(-1)?.end ?? windowStart;
  const asked: Asked = {
    query,
    accountId,
    scope,
    head: {
      from,
      to,
      tz,
      granularity,
      ...(query.keyId ? { keyId: query.keyId } : {}),
      asOf: asOf.toISOString(),
    },
    window,
    starts,
    refused:
      query.include === 'refusals'
        ? refusalCells(window, starts, (await deps.refusals?.refusals(scope, windowStart, windowEnd)) ?? [])
        : undefined,
  };
  if (query.groupBy === 'route') return routeAnswer(deps, asked);
  if (utcDays && query.groupBy !== 'key') return utcDayAnswer(deps, asked);
  return hourAnswer(deps, asked);
}

/** Per route and method: UTC days, as the counters hold routes. */
async function routeAnswer(deps: UserApiDeps, asked: Asked): Promise<UsageAnswer> {
  const { head, starts, scope } = asked;
  const days = starts.map((start) => start.slice(0, 10));
  const routes = routeSeries(await deps.usage.routeDailyCounts(scope, head.from, head.to), days).map((r) => ({
    ...r,
    series: r.days.map((d, i) => ({ start: starts[i] as string, count: d.count })),
  }));
  const series = starts.map((start, i) => ({
    start,
    count: routes.reduce((sum, r) => sum + (r.days[i]?.count ?? 0), 0),
  }));
  return { ...head, total: routes.reduce((sum, r) => sum + r.total, 0), series, routes };
}

/** UTC days from `requests`: exact for counters older than hours too. */
async function utcDayAnswer(deps: UserApiDeps, asked: Asked): Promise<UsageAnswer> {
  const { head, starts, scope } = asked;
  const byDay = new Map(
    (await deps.usage.dailyCounts(scope, head.from, head.to)).map((d) => [d.date, d.count]),
  );
  const days = starts.map((start) => ({
    date: start.slice(0, 10),
    count: byDay.get(start.slice(0, 10)) ?? 0,
  }));
  const series = days.map((d, i) => ({ start: starts[i] as string, count: d.count }));
  return { ...head, total: days.reduce((sum, d) => sum + d.count, 0), series, days, ...refusedWith(asked) };
}

/** Any other window, from the counters' UTC hours; per key with groupBy=key. */
async function hourAnswer(deps: UserApiDeps, asked: Asked): Promise<UsageAnswer> {
  const { head, starts, scope, window, query } = asked;
  const counters = await deps.usage.hourlyCounts(scope, window.utcFrom, window.utcTo);
  const { keys, rounded } = bucketByKey(window, counters, head.granularity);
  const counts = starts.map((_, i) => keys.reduce((sum, key) => sum + (key.counts[i] ?? 0), 0));
  const series = starts.map((start, i) => ({ start, count: counts[i] ?? 0 }));
  const answer: UsageAnswer = {
    ...head,
    total: counts.reduce((sum, n) => sum + n, 0),
    series,
    ...(head.granularity === 'day'
      ? { days: series.map((c) => ({ date: c.start.slice(0, 10), count: c.count })) }
      : {}),
    ...(rounded ? { rounded: true as const } : {}),
    ...refusedWith(asked),
  };
  if (query.groupBy !== 'key') return answer;
  const names = new Map((await deps.store.listKeys(asked.accountId)).map((k) => [k.keyId, k.name]));
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
    ...(asked.refused ? { refusals: asked.refused.byKey.get(key.keyId) ?? asked.refused.empty() } : {}),
  }));
  return answer;
}

/** The answer as CSV: a header row, then one row per cell (per key or route with groupBy): the JSON's numbers exactly. */
export function usageCsv(answer: UsageAnswer): string {
  const refusalColumns = answer.refusals ? [...REFUSAL_REASONS] : [];
  const refusalsAt = (refusals: RefusalsAnswer | undefined, i: number) =>
    refusals ? REFUSAL_REASONS.map((reason) => refusals.series[i]?.[reason] ?? 0) : [];
  if (answer.keys) {
    const rows = answer.keys.flatMap((key) =>
      key.series.map((cell, i) => [
        key.keyId,
        key.name ?? '',
        cell.start,
        cell.count,
        ...refusalsAt(key.refusals, i),
      ]),
    );
    return csvLine(['keyId', 'name', 'start', 'count', ...refusalColumns]) + rows.map(csvLine).join('');
  }
  if (answer.routes) {
    const rows = answer.routes.flatMap((r) =>
      r.series.map((cell) => [r.method, r.route, cell.start, cell.count]),
    );
    return csvLine(['method', 'route', 'start', 'count']) + rows.map(csvLine).join('');
  }
  const rows = answer.series.map((cell, i) => [cell.start, cell.count, ...refusalsAt(answer.refusals, i)]);
  return csvLine(['start', 'count', ...refusalColumns]) + rows.map(csvLine).join('');
}
