import { describe, expect, it } from 'vitest';
import { cellStarts, windowCells } from '../../services/usage/usage-series';
import {
  addDays,
  type Granularity,
  isCurrent,
  keySeries,
  RANGE_PRESETS,
  refusalSeries,
  routeSeries,
  shortLabel,
  timeZoneChoices,
  todayIn,
  type UsageAnswer,
} from '../../web/src/usage-view';

/**
 * The usage page's view of GET /usage (web/src/usage-view.ts): the windows it asks for stay within
 * the API's caps in every zone, and what it draws adds up to what the answer says.
 */

const ZONES = [
  'UTC',
  'Asia/Tokyo',
  'America/New_York',
  'Asia/Kolkata',
  'Australia/Lord_Howe',
  'Pacific/Kiritimati',
];
// A US DST change (8 March 2026) and a leap year's February (2028) among the days "today" can be.
const TODAYS = ['2026-03-08', '2026-03-31', '2026-11-01', '2026-12-07', '2028-02-29', '2028-12-31'];

describe('the usage page', () => {
  it('asks only for windows the API answers: every range, in any zone, on any day, within the caps', () => {
    for (const granularity of Object.keys(RANGE_PRESETS) as Granularity[]) {
      for (const preset of RANGE_PRESETS[granularity]) {
        for (const timeZone of ZONES) {
          for (const today of TODAYS) {
            const from = preset.from(today);
            expect(from <= today).toBe(true);
            const cells = windowCells({ from, to: today, timeZone, granularity });
            expect('tooMany' in cells, `${granularity} ${preset.id} ${timeZone} ${today}`).toBe(false);
          }
        }
      }
    }
  });

  it("knows today in the account's zone, not the browser's", () => {
    const instant = Date.parse('2026-12-07T20:30:00Z');
    expect(todayIn('UTC', instant)).toBe('2026-12-07');
    expect(todayIn('Asia/Tokyo', instant)).toBe('2026-12-08');
    expect(todayIn('Pacific/Honolulu', instant)).toBe('2026-12-07');
    expect(addDays('2028-03-01', -1)).toBe('2028-02-29');
  });

  it("labels cells by the API's local time: hours, the day at midnight, months with their year in January", () => {
    const window = windowCells({
      from: '2026-12-07',
      to: '2026-12-07',
      timeZone: 'Asia/Tokyo',
      granularity: 'hour',
    });
    if ('tooMany' in window) throw new Error('one day of hours is within the cap');
    const tokyo = cellStarts(window, 'Asia/Tokyo');
    expect(tokyo[0]).toBe('2026-12-07T00:00:00+09:00');
    expect(shortLabel('hour', tokyo[0] ?? '', '2026-12-07')).toMatch(/7/);
    expect(shortLabel('hour', tokyo[13] ?? '', '2026-12-07')).toBe('13:00');
    expect(shortLabel('day', '2026-12-07T00:00:00+09:00', '2026-12-07')).toBe('Today');
    expect(shortLabel('month', '2027-01-01T00:00:00+09:00', '2026-12-07')).toMatch(/2027/);
    expect(isCurrent('hour', tokyo[23] ?? '', '2026-12-07')).toBe(true);
    expect(isCurrent('month', '2026-12-01T00:00:00+09:00', '2026-12-31')).toBe(true);
  });

  it('stacks keys and routes so that every bar adds up to its cell: the five largest, then one "other"', () => {
    const starts = ['2026-12-06T00:00:00Z', '2026-12-07T00:00:00Z'];
    const keys = Array.from({ length: 7 }, (_, i) => ({
      keyId: `k${i}`,
      total: 7 - i,
      series: [
        { start: starts[0] as string, count: 7 - i - 1 },
        { start: starts[1] as string, count: 1 },
      ],
    }));
    const usage: UsageAnswer = {
      from: '2026-12-06',
      to: '2026-12-07',
      tz: 'UTC',
      granularity: 'day',
      asOf: '2026-12-07T12:00:00Z',
      total: keys.reduce((sum, k) => sum + k.total, 0),
      series: starts.map((start, i) => ({
        start,
        count: keys.reduce((sum, k) => sum + (k.series[i]?.count ?? 0), 0),
      })),
      keys: [...keys, { keyId: 'unused', total: 0, series: starts.map((start) => ({ start, count: 0 })) }],
    };
    const series = keySeries(usage, (id) => `name of ${id}`);
    expect(series.map((s) => s.id)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'other']);
    expect(series.at(-1)?.label).toBe('Other keys (2)');
    for (const [i, cell] of usage.series.entries()) {
      expect(series.reduce((sum, s) => sum + (s.counts[i] ?? 0), 0)).toBe(cell.count);
    }

    const routes = [
      { route: '/v1/a', method: 'GET', total: 3, series: [{ start: starts[1] as string, count: 3 }] },
      { route: '*', method: 'POST', total: 2, series: [{ start: starts[1] as string, count: 2 }] },
    ];
    const byRoute = routeSeries({ ...usage, total: 5 }, routes);
    expect(byRoute.map((s) => [s.id, s.tone, s.counts])).toEqual([
      ['GET /v1/a', 'tone-1', [0, 3]],
      ['none', 'tone-none', [0, 2]],
    ]);
  });

  it('draws refusals per reason, their cells the sum of the three', () => {
    const { cells, series } = refusalSeries({
      total: { rate_limited: 4, quota_exceeded: 0, account_suspended: 1 },
      series: [
        { start: '2026-12-07T10:00:00Z', rate_limited: 3, quota_exceeded: 0, account_suspended: 1 },
        { start: '2026-12-07T11:00:00Z', rate_limited: 1, quota_exceeded: 0, account_suspended: 0 },
      ],
    });
    expect(cells.map((c) => c.count)).toEqual([4, 1]);
    // A reason that never happened is not in the legend.
    expect(series.map((s) => s.id)).toEqual(['rate_limited', 'account_suspended']);
  });

  it('offers UTC first and keeps an account zone the browser spells another way', () => {
    const choices = timeZoneChoices('Asia/Calcutta');
    expect(choices[0]).toBe('UTC');
    expect(choices).toContain('Asia/Calcutta');
    expect(choices).toContain('Europe/Paris');
    expect(new Set(choices).size).toBe(choices.length);
  });
});
