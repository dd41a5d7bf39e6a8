/*
 * What the usage page shows, from the answers of `GET /usage` (`Usage` in the OpenAPI document):
 * the window a choice of granularity and range asks for, the cells' labels in the account's zone,
 * and the chart's series, split by route, by key or by refusal reason. Pure, so every number the
 * page shows comes from one answer and the CSV of the same query holds the same numbers.
 */

export type Granularity = 'hour' | 'day' | 'month';

export const GRANULARITIES: ReadonlyArray<{ id: Granularity; label: string }> = [
  { id: 'hour', label: 'Hour' },
  { id: 'day', label: 'Day' },
  { id: 'month', label: 'Month' },
];

/** One cell of a series: its first instant as the zone's local time with its offset, and its count. */
export interface UsageCell {
  start: string;
  count: number;
}

export const REFUSAL_REASONS = ['rate_limited', 'quota_exceeded', 'account_suspended'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];
export type RefusalCounts = Record<RefusalReason, number>;

/** What the gate answered, in words a customer reads; the code is what their client saw. */
export const REFUSAL_LABELS: Readonly<Record<RefusalReason, string>> = {
  rate_limited: 'Rate limited (429)',
  quota_exceeded: 'Over quota (429)',
  account_suspended: 'Account suspended (403)',
};

/** The parts of a usage answer the page reads. */
export interface UsageAnswer {
  from: string;
  to: string;
  tz: string;
  granularity: Granularity;
  asOf: string;
  total: number;
  series: UsageCell[];
  rounded?: boolean | undefined;
  keys?:
    | Array<{
        keyId: string;
        name?: string | undefined;
        total: number;
        series: UsageCell[];
        refusals?: { total: RefusalCounts } | undefined;
      }>
    | undefined;
  routes?: Array<{ route: string; method: string; total: number; series: UsageCell[] }> | undefined;
  refusals?: { total: RefusalCounts; series: Array<{ start: string } & RefusalCounts> } | undefined;
}

// ---------------------------------------------------------------- windows

const DAY_MS = 86_400_000;

/** Today (`YYYY-MM-DD`) in an IANA zone. */
export function todayIn(timeZone: string, now = Date.now()): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).formatToParts(new Date(now));
  const part = (type: string) => parts.find((p) => p.type === type)?.value ?? '01';
  return `${part('year')}-${part('month')}-${part('day')}`;
}

/** A calendar day `n` days after `day` (before, when negative). */
export const addDays = (day: string, n: number): string =>
  new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);

/** The first day of the month `n` months before the one `day` is in. */
function monthStartBefore(day: string, n: number): string {
  const date = new Date(Date.parse(`${day.slice(0, 7)}-01T00:00:00Z`));
  date.setUTCMonth(date.getUTCMonth() - n);
  return date.toISOString().slice(0, 10);
}

export interface RangePreset {
  id: string;
  label: string;
  /** The window's first local day, from today's. */
  from(today: string): string;
}

/**
 * The windows the page offers per granularity, up to the API's caps (hours: 31 days; days: 366;
 * months: 13). Hours over a month are 744 bars: dense, but the shape of a month is worth having.
 */
export const RANGE_PRESETS: Readonly<Record<Granularity, readonly RangePreset[]>> = {
  hour: [
    { id: 'today', label: 'Today', from: (today) => today },
    { id: '2d', label: 'Last 2 days', from: (today) => addDays(today, -1) },
    { id: '7d', label: 'Last 7 days', from: (today) => addDays(today, -6) },
    { id: '31d', label: 'Last 31 days', from: (today) => addDays(today, -30) },
  ],
  day: [
    { id: '7d', label: 'Last 7 days', from: (today) => addDays(today, -6) },
    { id: '30d', label: 'Last 30 days', from: (today) => addDays(today, -29) },
    { id: '90d', label: 'Last 90 days', from: (today) => addDays(today, -89) },
    { id: '365d', label: 'Last 365 days', from: (today) => addDays(today, -364) },
  ],
  month: [
    { id: '12m', label: 'Last 12 months', from: (today) => monthStartBefore(today, 11) },
    { id: 'year', label: 'This year', from: (today) => `${today.slice(0, 4)}-01-01` },
  ],
};

export const DEFAULT_PRESET: Readonly<Record<Granularity, string>> = { hour: '2d', day: '30d', month: '12m' };

export function presetOf(granularity: Granularity, id: string): RangePreset {
  const presets = RANGE_PRESETS[granularity];
  const found = presets.find((p) => p.id === id) ?? presets.find((p) => p.id === DEFAULT_PRESET[granularity]);
  if (!found) throw new Error(`No range "${DEFAULT_PRESET[granularity]}" for ${granularity}s`);
  return found;
}

// ---------------------------------------------------------------- cells and their labels

/** A cell's local wall time (`YYYY-MM-DDTHH:MM`), as the API wrote it before the offset. */
export const wallTime = (start: string): string => start.slice(0, 16);
/** The local day a cell starts on. */
export const cellDay = (start: string): string => start.slice(0, 10);

// The wall time is formatted as if it were UTC: the API has already put it in the account's zone.
const asWall = (start: string) => new Date(`${wallTime(start)}:00Z`);
const dayFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', timeZone: 'UTC' });
const hourFormat = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit',
  minute: '2-digit',
  hourCycle: 'h23',
  timeZone: 'UTC',
});
const monthFormat = new Intl.DateTimeFormat(undefined, { month: 'short', timeZone: 'UTC' });
const monthYearFormat = new Intl.DateTimeFormat(undefined, {
  month: 'long',
  year: 'numeric',
  timeZone: 'UTC',
});
const longDayFormat = new Intl.DateTimeFormat(undefined, {
  weekday: 'short',
  day: 'numeric',
  month: 'short',
  year: 'numeric',
  timeZone: 'UTC',
});

/** The axis label of a cell: an hour (its day at midnight), a day, or a month (its year in January). */
export function shortLabel(granularity: Granularity, start: string, today: string): string {
  const wall = asWall(start);
  if (granularity === 'hour')
    return wall.getUTCHours() === 0 ? dayFormat.format(wall) : hourFormat.format(wall);
  if (granularity === 'day') return cellDay(start) === today ? 'Today' : dayFormat.format(wall);
  return wall.getUTCMonth() === 0
    ? `${monthFormat.format(wall)} ${wall.getUTCFullYear()}`
    : monthFormat.format(wall);
}

/** A cell in words, for its tooltip and screen readers: "Mon, 7 Dec 2026, 13:00", "December 2026". */
export function longLabel(granularity: Granularity, start: string): string {
  const wall = asWall(start);
  if (granularity === 'hour') return `${longDayFormat.format(wall)}, ${hourFormat.format(wall)}`;
  if (granularity === 'day') return longDayFormat.format(wall);
  return monthYearFormat.format(wall);
}

/** Whether a cell holds the present moment's local day (an hour of today, today, this month). */
export function isCurrent(granularity: Granularity, start: string, today: string): boolean {
  if (granularity === 'month') return start.slice(0, 7) === today.slice(0, 7);
  return cellDay(start) === today;
}

// ---------------------------------------------------------------- chart series

/** The chart's colours (styles/palette.css, and the refusals' in UsageRefusals.vue). */
export const NAMED_TONES = ['tone-1', 'tone-2', 'tone-3', 'tone-4', 'tone-5'] as const;
export type Tone =
  | (typeof NAMED_TONES)[number]
  | 'tone-other'
  | 'tone-none'
  | 'tone-rate-limited'
  | 'tone-quota-exceeded'
  | 'tone-account-suspended';

/** One stacked series of the chart: `counts` align with the answer's cells. */
export interface Series {
  id: string;
  label: string;
  tone: Tone;
  counts: number[];
}

/**
 * The route and method of requests counted without one (key-api's own key check, unmatched paths):
 * contracts/usage-event.ts's `ANY_ROUTE` and `ANY_METHOD`, not imported so that zod stays out of
 * the page's bundle.
 */
export const ANY_ROUTE = '*';
export const ANY_METHOD = '*';

interface Part {
  id: string;
  label: string;
  total: number;
  series: UsageCell[];
}

/** Counts aligned with `starts`, adding up the parts' series (cells the answer lacks count 0). */
function countsOf(starts: readonly string[], parts: readonly Part[]): number[] {
  const index = new Map(starts.map((start, i) => [start, i]));
  const counts = starts.map(() => 0);
  for (const part of parts) {
    for (const cell of part.series) {
      const i = index.get(cell.start);
      if (i !== undefined) counts[i] = (counts[i] ?? 0) + cell.count;
    }
  }
  return counts;
}

/**
 * The largest five parts (the answer lists them largest first) get a colour each; past five,
 * colours stop telling them apart, so the rest share one series ("Other …"). `last` (requests
 * without a route) is drawn on top in its own grey.
 */
function stack(starts: readonly string[], parts: readonly Part[], otherLabel: string, last?: Part): Series[] {
  const shown = parts.filter((p) => p.total > 0);
  const named = shown.slice(0, NAMED_TONES.length);
  const others = shown.slice(NAMED_TONES.length);
  const series: Series[] = named.map((p, i) => ({
    id: p.id,
    label: p.label,
    tone: NAMED_TONES[i] ?? 'tone-other',
    counts: countsOf(starts, [p]),
  }));
  if (others.length > 0) {
    series.push({
      id: 'other',
      label: `${otherLabel} (${others.length})`,
      tone: 'tone-other',
      counts: countsOf(starts, others),
    });
  }
  if (last && last.total > 0)
    series.push({ id: 'none', label: last.label, tone: 'tone-none', counts: countsOf(starts, [last]) });
  return series;
}

/**
 * Whether the API splits this window by route: routes are counted per UTC day (GET /usage answers
 * `groupBy=route` only for `granularity=day` and `tz=UTC`).
 */
export const routesSplit = (granularity: Granularity, tz: string): boolean =>
  granularity === 'day' && tz === 'UTC';

export const routeId = (r: { method: string; route: string }): string => `${r.method} ${r.route}`;

/** The chart's series per route and method (`groupBy=route`), requests without a route on top. */
export function routeSeries(usage: UsageAnswer, routes: NonNullable<UsageAnswer['routes']>): Series[] {
  const starts = usage.series.map((c) => c.start);
  const parts = (list: typeof routes) =>
    list.map((r) => ({ id: routeId(r), label: routeId(r), total: r.total, series: r.series }));
  const unrouted = routes.filter((r) => r.route === ANY_ROUTE);
  const last = unrouted.length
    ? {
        id: 'none',
        label: 'Without a route',
        total: unrouted.reduce((sum, r) => sum + r.total, 0),
        series: unrouted.flatMap((r) => r.series),
      }
    : undefined;
  return stack(starts, parts(routes.filter((r) => r.route !== ANY_ROUTE)), 'Other routes', last);
}

/** The chart's series per key (`groupBy=key`), named as the key list names them. */
export function keySeries(usage: UsageAnswer, nameOf: (keyId: string) => string): Series[] {
  const starts = usage.series.map((c) => c.start);
  const parts = (usage.keys ?? []).map((k) => ({
    id: k.keyId,
    label: nameOf(k.keyId),
    total: k.total,
    series: k.series,
  }));
  return stack(starts, parts, 'Other keys');
}

/** The refusals' series, one per reason, in the reasons' order. */
export function refusalSeries(refusals: NonNullable<UsageAnswer['refusals']>): {
  cells: UsageCell[];
  series: Series[];
} {
  const tones: Record<RefusalReason, Tone> = {
    rate_limited: 'tone-rate-limited',
    quota_exceeded: 'tone-quota-exceeded',
    account_suspended: 'tone-account-suspended',
  };
  const cells = refusals.series.map((c) => ({
    start: c.start,
    count: REFUSAL_REASONS.reduce((sum, reason) => sum + c[reason], 0),
  }));
  const series = REFUSAL_REASONS.filter((reason) => refusals.total[reason] > 0).map((reason) => ({
    id: reason,
    label: REFUSAL_LABELS[reason],
    tone: tones[reason],
    counts: refusals.series.map((c) => c[reason]),
  }));
  return { cells, series };
}

export const refusalTotal = (counts: RefusalCounts | undefined): number =>
  counts ? REFUSAL_REASONS.reduce((sum, reason) => sum + counts[reason], 0) : 0;

// ---------------------------------------------------------------- time zones

/**
 * Every IANA zone the browser knows, `UTC` first: Chromium's list leaves `UTC` out, and an
 * account's zone that the list spells differently (an alias such as `Asia/Calcutta`) is kept.
 */
export function timeZoneChoices(current: string): string[] {
  const known = Intl.supportedValuesOf('timeZone').filter((zone) => zone !== 'UTC');
  if (current !== 'UTC' && !known.includes(current)) known.push(current);
  return ['UTC', ...known.sort()];
}

/** The browser's own zone (what the device's clock shows). */
export const browserTimeZone = (): string => Intl.DateTimeFormat().resolvedOptions().timeZone;

/** A zone's offset now, as "UTC+09:00" ("UTC" for none). */
export function offsetName(timeZone: string, now = Date.now()): string {
  const name = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' })
    .formatToParts(new Date(now))
    .find((p) => p.type === 'timeZoneName')?.value;
  return name === 'GMT' || !name ? 'UTC' : name.replace('GMT', 'UTC');
}

/** The name a downloaded CSV is saved under. */
export const csvFileName = (usage: { from: string; to: string }): string =>
  `usage-${usage.from}-${usage.to}.csv`;
