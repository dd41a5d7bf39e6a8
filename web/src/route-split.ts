import type { RouteUsage } from './api';

/**
 * The route and method of requests counted without one (key-api's own key check, unmatched paths,
 * events from before routes were recorded): contracts/usage-event.ts's `ANY_ROUTE` and `ANY_METHOD`.
 * Not imported: that module's schemas would bring all of zod into the page (about 20 kB gzipped;
 * the page has only zod/mini).
 */
const ANY_ROUTE = '*';
export const ANY_METHOD = '*';

/**
 * The colours of the routes with a series of their own (`.tone-*` in styles/palette.css), largest first.
 * Past five, colours stop telling routes apart, so the smaller ones share one series ("Other
 * routes"); the table still lists every route.
 */
const NAMED_TONES = ['tone-1', 'tone-2', 'tone-3', 'tone-4', 'tone-5'] as const;

/** A colour of the chart's palette: a named route's, the other routes', or requests without a route. */
export type Tone = (typeof NAMED_TONES)[number] | 'tone-other' | 'tone-none';

/** One row of the table: one route and method over the whole range. */
export interface RouteRow {
  /** `METHOD template`, unique in the answer. */
  id: string;
  method: string;
  route: string;
  /** True for requests counted without a route (key-api's own key check, unmatched paths). */
  unrouted: boolean;
  total: number;
  /** Of the range's total, 0 to 1. */
  share: number;
  /** The colour of the chart series this route is drawn in. */
  tone: Tone;
}

/** One stacked series of the chart: counts aligned with `UsageSplit.days`. */
export interface Series {
  id: string;
  label: string;
  tone: Tone;
  counts: number[];
}

export interface UsageSplit {
  /** Every day of the range with its total, routes added up. */
  days: Array<{ date: string; count: number }>;
  /** Bottom of the stack first: the named routes by total, then the other routes, then no route. */
  series: Series[];
  rows: RouteRow[];
}

const DAY_MS = 86_400_000;

/** Every UTC day from `from` to `to`, inclusive (both `YYYY-MM-DD`). */
function daysBetween(from: string, to: string): string[] {
  const days: string[] = [];
  const end = Date.parse(`${to}T00:00:00Z`);
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= end; t += DAY_MS)
    days.push(new Date(t).toISOString().slice(0, 10));
  return days;
}

/**
 * The page's whole usage view from one answer of `GET /usage?groupBy=route`: the daily totals, the
 * chart's stacked series and the table's rows. One read, so the totals, the bars and the table
 * always agree (the routes add up to the days' totals by construction of the counters).
 */
export function splitByRoute(usage: RouteUsage): UsageSplit {
  const days = daysBetween(usage.from, usage.to);
  const index = new Map(days.map((date, i) => [date, i]));
  const countsOf = (routes: RouteUsage['routes']): number[] => {
    const counts = days.map(() => 0);
    for (const route of routes) {
      for (const d of route.days) {
        const i = index.get(d.date);
        if (i !== undefined) counts[i] = (counts[i] ?? 0) + d.count;
      }
    }
    return counts;
  };

  // The answer lists routes by total, largest first: the first few named ones get their own colour.
  const routed = usage.routes.filter((r) => r.route !== ANY_ROUTE && r.total > 0);
  const named = routed.slice(0, NAMED_TONES.length);
  const others = routed.slice(NAMED_TONES.length);
  const unrouted = usage.routes.filter((r) => r.route === ANY_ROUTE && r.total > 0);

  const idOf = (r: { method: string; route: string }) => `${r.method} ${r.route}`;
  const tones = new Map<string, Tone>(named.map((r, i) => [idOf(r), NAMED_TONES[i] ?? 'tone-other']));
  const toneOf = (r: { method: string; route: string }): Tone =>
    r.route === ANY_ROUTE ? 'tone-none' : (tones.get(idOf(r)) ?? 'tone-other');

  const series: Series[] = named.map((r) => ({
    id: idOf(r),
    label: idOf(r),
    tone: toneOf(r),
    counts: countsOf([r]),
  }));
  if (others.length > 0) {
    series.push({
      id: 'other',
      label: `Other routes (${others.length})`,
      tone: 'tone-other',
      counts: countsOf(others),
    });
  }
  if (unrouted.length > 0) {
    series.push({ id: 'none', label: 'Without a route', tone: 'tone-none', counts: countsOf(unrouted) });
  }

  const rows = usage.routes
    .filter((r) => r.total > 0)
    .map(
      (r): RouteRow => ({
        id: idOf(r),
        method: r.method,
        route: r.route,
        unrouted: r.route === ANY_ROUTE,
        total: r.total,
        share: usage.total > 0 ? r.total / usage.total : 0,
        tone: toneOf(r),
      }),
    );

  const all = countsOf(usage.routes);
  return { days: days.map((date, i) => ({ date, count: all[i] ?? 0 })), series, rows };
}
