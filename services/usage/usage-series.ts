import { localDay, localIso, nextDay, nextMonthStart, startOfLocalDay, wholeHourOffset } from './time-zones';
import type { KeyDayHours } from './usage-reader';

/**
 * Usage answers in an owner's time zone and granularity, from the counters' UTC hours
 * (usage-reader.ts hourlyCounts). Pure: what GET /usage and the admin route share.
 *
 * Every cell of a window is a run of whole UTC hours in any zone whose offset is a whole number of
 * hours, DST days included (a 23- or 25-hour local day is 23 or 25 UTC hours), so its count is
 * exact. In a :30/:45 zone (India, Nepal, parts of Australia) a cell boundary cuts a UTC hour:
 * that hour goes to the cell holding its middle, and the answer says `rounded` — only the hours
 * at the cells' edges can be off, never the window's total of the hours it holds.
 */

export type Granularity = 'hour' | 'day' | 'month';

/** Most cells one answer may hold, per granularity (a 31-day month of hours, DST's extra hour included). */
export const MAX_CELLS: Readonly<Record<Granularity, number>> = { hour: 31 * 24 + 1, day: 366, month: 13 };

export interface UsageWindow {
  /** First local day, included. */
  from: string;
  /** Last local day, included. */
  to: string;
  timeZone: string;
  granularity: Granularity;
}

export interface Cell {
  /** The cell's first instant (ms). */
  start: number;
  /** Its end, excluded. */
  end: number;
}

export interface WindowCells {
  cells: Cell[];
  /** The UTC days whose counters hold the window's hours. */
  utcFrom: string;
  utcTo: string;
  /** Some cell boundary cuts a UTC hour (a :30/:45 zone). */
  rounded: boolean;
}

const HOUR_MS = 3_600_000;

/** The cells of a window, or the count it would have when that is over the granularity's cap. */
export function windowCells(window: UsageWindow): WindowCells | { tooMany: number } {
  const { from, to, timeZone, granularity } = window;
  const end = startOfLocalDay(nextDay(to), timeZone);
  const starts: number[] = [];
  if (granularity === 'hour') {
    for (let t = startOfLocalDay(from, timeZone); t < end; t += HOUR_MS) {
      starts.push(t);
      if (starts.length > MAX_CELLS.hour)
        return { tooMany: Math.ceil((end - (starts[0] as number)) / HOUR_MS) };
    }
  } else {
    const step = granularity === 'day' ? nextDay : nextMonthStart;
    for (let day = from; day <= to; day = step(day)) {
      starts.push(startOfLocalDay(day, timeZone));
      if (starts.length > MAX_CELLS[granularity]) return { tooMany: starts.length };
    }
  }
  const cells = starts.map((start, i) => ({ start, end: starts[i + 1] ?? end }));
  const rounded =
    cells.some((cell) => !wholeHourOffset(timeZone, cell.start)) || !wholeHourOffset(timeZone, end);
  const first = starts[0] ?? end;
  return {
    cells,
    utcFrom: new Date(first).toISOString().slice(0, 10),
    utcTo: new Date(end - 1).toISOString().slice(0, 10),
    rounded,
  };
}

/** The index of the cell holding `instant`, or -1 outside the window. */
function cellOf(cells: readonly Cell[], instant: number): number {
  let low = 0;
  let high = cells.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const cell = cells[mid] as Cell;
    if (instant < cell.start) high = mid - 1;
    else if (instant >= cell.end) low = mid + 1;
    else return mid;
  }
  return -1;
}

export interface KeySeries {
  keyId: string;
  counts: number[];
  total: number;
}

/**
 * Each key's count in each cell, largest total first (then by key id). Requests a counter holds
 * without an hour (counted before hours were recorded) are placed at the middle of their UTC day's
 * first hour and make the answer `rounded` unless every cell is a whole UTC day.
 */
export function bucketByKey(
  window: WindowCells,
  counters: readonly KeyDayHours[],
  granularity: Granularity,
): { keys: KeySeries[]; rounded: boolean } {
  const byKey = new Map<string, number[]>();
  let rounded = window.rounded;
  const utcDays = granularity !== 'hour' && window.cells.every((c) => c.start % (24 * HOUR_MS) === 0);
  for (const counter of counters) {
    const counts = byKey.get(counter.keyId) ?? new Array<number>(window.cells.length).fill(0);
    byKey.set(counter.keyId, counts);
    const dayStart = Date.parse(`${counter.day}T00:00:00Z`);
    const place = (hour: number, count: number) => {
      if (count === 0) return;
      const at = cellOf(window.cells, dayStart + hour * HOUR_MS + HOUR_MS / 2);
      if (at >= 0) counts[at] = (counts[at] ?? 0) + count;
    };
    for (const [hour, count] of counter.hours.entries()) place(hour, count);
    if (counter.unhoured > 0) {
      place(0, counter.unhoured);
      if (!utcDays) rounded = true;
    }
  }
  const keys = [...byKey].map(([keyId, counts]) => ({
    keyId,
    counts,
    total: counts.reduce((sum, n) => sum + n, 0),
  }));
  keys.sort((a, b) => b.total - a.total || (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0));
  return { keys, rounded };
}

/** The cells' labels: each start as local time with its offset. */
export const cellStarts = (window: WindowCells, timeZone: string): string[] =>
  window.cells.map((cell) => localIso(cell.start, timeZone));

/** The local day an instant falls on (for `days[].date` of a day answer). */
export const cellDay = (cell: Cell, timeZone: string): string => localDay(cell.start, timeZone);
