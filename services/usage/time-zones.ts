/**
 * Local days and months of an IANA time zone as UTC instants, from the runtime's own time-zone
 * database (Intl, ICU: the same on Node 20 and 22 and in the browser). No library: the two
 * operations needed here — a zone's offset at an instant and the instant of a local midnight — are a
 * few lines over Intl.DateTimeFormat, and a dependency would ship a second copy of the tz database.
 */

const HOUR_MS = 3_600_000;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, format);
  }
  return format;
}

/** Whether `name` is a time zone the runtime knows (`Europe/Paris`, `UTC`, …). */
export function isTimeZone(name: string): boolean {
  if (name.length === 0 || name.length > 64) return false;
  try {
    formatter(name);
    return true;
  } catch {
    return false;
  }
}

/** The zone's offset from UTC at `instant`, in ms (Tokyo: +9 h; New York in July: −4 h). */
export function offsetAt(timeZone: string, instant: number): number {
  const parts: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(new Date(instant))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  const wall = Date.UTC(
    parts.year ?? 1970,
    (parts.month ?? 1) - 1,
    parts.day ?? 1,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  );
  return wall - (instant - (instant % 1000));
}

/**
 * The instant a local day (`yyyy-mm-dd`) starts in the zone. Where a DST change skips local
 * midnight, the day starts at the first instant it has (the offset after the change).
 */
export function startOfLocalDay(day: string, timeZone: string): number {
  const wallMidnight = Date.parse(`${day}T00:00:00Z`);
  let instant = wallMidnight - offsetAt(timeZone, wallMidnight);
  // Once more from the first guess: right on either side of a change the offsets differ.
  instant = wallMidnight - offsetAt(timeZone, instant);
  return instant;
}

/** The local day (`yyyy-mm-dd`) an instant falls on in the zone. */
export function localDay(instant: number, timeZone: string): string {
  return new Date(instant + offsetAt(timeZone, instant)).toISOString().slice(0, 10);
}

/** The next calendar day of `yyyy-mm-dd`. */
export function nextDay(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + 24 * HOUR_MS).toISOString().slice(0, 10);
}

/** The first day of the month after the one `day` is in. */
export function nextMonthStart(day: string): string {
  const date = new Date(Date.parse(`${day.slice(0, 7)}-01T00:00:00Z`));
  date.setUTCMonth(date.getUTCMonth() + 1);
  return date.toISOString().slice(0, 10);
}

/** An instant as the zone's local time with its offset: `2026-12-07T00:00:00+09:00`. */
export function localIso(instant: number, timeZone: string): string {
  const offset = offsetAt(timeZone, instant);
  const wall = new Date(instant + offset).toISOString().slice(0, 19);
  if (offset === 0) return `${wall}Z`;
  const sign = offset < 0 ? '-' : '+';
  const minutes = Math.abs(offset) / 60_000;
  const hh = String(Math.floor(minutes / 60)).padStart(2, '0');
  const mm = String(minutes % 60).padStart(2, '0');
  return `${wall}${sign}${hh}:${mm}`;
}

/** Whether the zone's offset is a whole number of hours at `instant` (UTC hours tile its hours exactly). */
export const wholeHourOffset = (timeZone: string, instant: number): boolean =>
  offsetAt(timeZone, instant) % HOUR_MS === 0;
