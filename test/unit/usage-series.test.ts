import { describe, expect, it } from 'vitest';
import { localIso, offsetAt, startOfLocalDay } from '../../services/usage/time-zones';
import type { KeyDayHours } from '../../services/usage/usage-reader';
import { bucketByKey, MAX_CELLS, windowCells } from '../../services/usage/usage-series';

const HOUR = 3_600_000;

const cellsOf = (from: string, to: string, timeZone: string, granularity: 'hour' | 'day' | 'month') => {
  const cells = windowCells({ from, to, timeZone, granularity });
  if ('tooMany' in cells) throw new Error(`too many: ${cells.tooMany}`);
  return cells;
};

/** A key-day counter with `perHour` in each of its UTC hours. */
const counter = (keyId: string, day: string, perHour: number, unhoured = 0): KeyDayHours => ({
  keyId,
  day,
  requests: perHour * 24 + unhoured,
  hours: new Array<number>(24).fill(perHour),
  unhoured,
});

describe('time zones from Intl', () => {
  it('offsets, DST included, and :45 zones', () => {
    expect(offsetAt('Asia/Tokyo', Date.parse('2026-07-01T00:00:00Z'))).toBe(9 * HOUR);
    expect(offsetAt('America/New_York', Date.parse('2026-07-01T00:00:00Z'))).toBe(-4 * HOUR);
    expect(offsetAt('America/New_York', Date.parse('2026-12-01T00:00:00Z'))).toBe(-5 * HOUR);
    expect(offsetAt('Asia/Kathmandu', Date.parse('2026-12-01T00:00:00Z'))).toBe(5.75 * HOUR);
  });

  it('local midnight as an instant, on both sides of a DST change', () => {
    expect(new Date(startOfLocalDay('2026-11-01', 'America/New_York')).toISOString()).toBe(
      '2026-11-01T04:00:00.000Z',
    );
    expect(new Date(startOfLocalDay('2026-11-02', 'America/New_York')).toISOString()).toBe(
      '2026-11-02T05:00:00.000Z',
    );
    expect(new Date(startOfLocalDay('2026-03-08', 'America/New_York')).toISOString()).toBe(
      '2026-03-08T05:00:00.000Z',
    );
    expect(new Date(startOfLocalDay('2026-12-07', 'Asia/Tokyo')).toISOString()).toBe(
      '2026-12-06T15:00:00.000Z',
    );
    expect(localIso(startOfLocalDay('2026-12-07', 'Asia/Kolkata'), 'Asia/Kolkata')).toBe(
      '2026-12-07T00:00:00+05:30',
    );
  });
});

describe('windowCells and bucketByKey', () => {
  it('a 25-hour and a 23-hour New York day', () => {
    expect(cellsOf('2026-11-01', '2026-11-01', 'America/New_York', 'hour').cells).toHaveLength(25);
    expect(cellsOf('2026-03-08', '2026-03-08', 'America/New_York', 'hour').cells).toHaveLength(23);
    const day = cellsOf('2026-11-01', '2026-11-01', 'America/New_York', 'day');
    const [fallBack] = day.cells;
    expect((fallBack?.end ?? 0) - (fallBack?.start ?? 0)).toBe(25 * HOUR);
    expect([day.utcFrom, day.utcTo]).toEqual(['2026-11-01', '2026-11-02']);
  });

  it('caps each granularity and says how many cells the window would have', () => {
    expect(
      windowCells({ from: '2026-01-01', to: '2026-02-01', timeZone: 'UTC', granularity: 'hour' }),
    ).toEqual({
      tooMany: 32 * 24,
    });
    expect(
      'tooMany' in
        windowCells({ from: '2026-01-01', to: '2026-01-31', timeZone: 'UTC', granularity: 'hour' }),
    ).toBe(false);
    expect(MAX_CELLS.day).toBe(366);
  });

  it('a local day is the right UTC hours; months are clipped to the window', () => {
    const window = cellsOf('2026-12-02', '2026-12-02', 'Asia/Tokyo', 'day');
    // 15:00–24:00 UTC of Dec 1 (9 hours) and 00:00–15:00 UTC of Dec 2 (15 hours).
    const { keys } = bucketByKey(
      window,
      [counter('k', '2026-12-01', 1), counter('k', '2026-12-02', 2)],
      'day',
    );
    expect(keys).toEqual([{ keyId: 'k', counts: [9 * 1 + 15 * 2], total: 39 }]);
    const months = cellsOf('2026-11-15', '2027-01-10', 'UTC', 'month');
    expect(months.cells.map((c) => new Date(c.start).toISOString().slice(0, 10))).toEqual([
      '2026-11-15',
      '2026-12-01',
      '2027-01-01',
    ]);
  });

  it('a :30 zone is rounded, a whole-hour zone exact; hours counted before hours were recorded make an hour answer rounded', () => {
    expect(cellsOf('2026-12-02', '2026-12-02', 'Asia/Kolkata', 'day').rounded).toBe(true);
    expect(cellsOf('2026-12-02', '2026-12-02', 'Europe/Paris', 'day').rounded).toBe(false);
    const utcDay = cellsOf('2026-12-02', '2026-12-02', 'UTC', 'day');
    expect(bucketByKey(utcDay, [counter('k', '2026-12-02', 0, 5)], 'day')).toEqual({
      keys: [{ keyId: 'k', counts: [5], total: 5 }],
      rounded: false,
    });
    const hours = cellsOf('2026-12-02', '2026-12-02', 'UTC', 'hour');
    expect(bucketByKey(hours, [counter('k', '2026-12-02', 0, 5)], 'hour').rounded).toBe(true);
  });
});
