const numberFormat = new Intl.NumberFormat();
const percentFormat = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });
const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
// Usage days are UTC calendar days: show them as such, whatever the browser's time zone.
const dayFormat = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', timeZone: 'UTC' });
const longDayFormat = new Intl.DateTimeFormat(undefined, {
  weekday: 'short',
  day: 'numeric',
  month: 'short',
  year: 'numeric',
  timeZone: 'UTC',
});

export const count = (n: number): string => numberFormat.format(n);

/** A part of a whole (0 to 1) as "42.9%"; a part too small to round to 0.1% is not shown as none. */
export const share = (part: number): string =>
  part > 0 && part < 0.0005 ? `<${percentFormat.format(0.001)}` : percentFormat.format(part);

export const plural = (n: number, one: string, many = `${one}s`): string =>
  `${count(n)} ${n === 1 ? one : many}`;

/** A configured window in words, in its largest whole unit: "10 seconds", "24 hours", "2 days". */
export function duration(ms: number): string {
  if (ms > 86_400_000 && ms % 86_400_000 === 0) return plural(ms / 86_400_000, 'day');
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return plural(ms / 3_600_000, 'hour');
  if (ms >= 60_000 && ms % 60_000 === 0) return plural(ms / 60_000, 'minute');
  return plural(ms / 1000, 'second');
}

export const dateTime = (iso: string): string => dateTimeFormat.format(new Date(iso));

export const time = (iso: string): string => timeFormat.format(new Date(iso));

/** "3 minutes ago", "in 23 hours", "yesterday". */
export function relative(iso: string, now = Date.now()): string {
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return seconds <= 0 ? 'just now' : 'in a few seconds';
  const units: Array<[Intl.RelativeTimeFormatUnit, number]> = [
    ['minute', 60],
    ['hour', 3600],
    ['day', 86_400],
    ['month', 30 * 86_400],
    ['year', 365 * 86_400],
  ];
  let chosen: [Intl.RelativeTimeFormatUnit, number] = ['minute', 60];
  for (const unit of units) if (abs >= unit[1] * 0.9) chosen = unit;
  return relativeFormat.format(Math.round(seconds / chosen[1]), chosen[0]);
}

/** A usage day (`YYYY-MM-DD`, UTC) as "3 Jul". */
export const day = (date: string): string => dayFormat.format(new Date(`${date}T00:00:00Z`));

/** A usage day as "Thu, 3 Jul 2025". */
export const longDay = (date: string): string => longDayFormat.format(new Date(`${date}T00:00:00Z`));
