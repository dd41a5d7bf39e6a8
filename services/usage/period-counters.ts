import { utcDay } from '../../contracts/usage-event';
import { type CounterKey, dayAttribute, monthOf, periodCounter, producerCounter } from './counter-keys';

/** What one write adds to an account-period item or to a producer's share of it (counter-keys.ts). */
export interface PeriodIncrement {
  counter: CounterKey;
  /** A stable id of the item, for keeping two writes of it apart (transactions.ts). */
  id: string;
  requests: number;
  units: number;
  /** Requests per day attribute (`d06`). */
  days: Map<string, number>;
  /** Producer items only: when the table's TTL may remove it (epoch seconds). */
  expiresAt?: number;
}

interface CountedEvent {
  accountId: string;
  ts: number;
  units: number;
  pid?: string;
}

/**
 * The account-period and producer increments of a set of events: one per (account, month), and
 * one per (account, month, producer) for events that name their producer. `producerTtlMs`: how
 * long a producer item outlives its month (the late window: no event of it can come after).
 */
export function periodIncrements(
  events: readonly CountedEvent[],
  producerTtlMs: number,
): { periods: PeriodIncrement[]; producers: PeriodIncrement[] } {
  const periods = new Map<string, PeriodIncrement>();
  const producers = new Map<string, PeriodIncrement>();
  const add = (
    map: Map<string, PeriodIncrement>,
    id: string,
    counter: () => CounterKey,
    event: CountedEvent,
    day: string,
    expiresAt?: number,
  ) => {
    let increment = map.get(id);
    if (!increment) {
      increment = {
        counter: counter(),
        id,
        requests: 0,
        units: 0,
        days: new Map(),
        ...(expiresAt === undefined ? {} : { expiresAt }),
      };
      map.set(id, increment);
    }
    increment.requests++;
    increment.units += event.units;
    const attribute = dayAttribute(day);
    increment.days.set(attribute, (increment.days.get(attribute) ?? 0) + 1);
  };
  for (const event of events) {
    const day = utcDay(event.ts);
    const month = monthOf(day);
    add(periods, periodId(event.accountId, month), () => periodCounter(event.accountId, month), event, day);
    if (event.pid !== undefined) {
      const pid = event.pid;
      add(
        producers,
        producerId(event.accountId, month, pid),
        () => producerCounter(event.accountId, month, pid),
        event,
        day,
        Math.ceil((monthEnd(month) + producerTtlMs) / 1000),
      );
    }
  }
  return { periods: [...periods.values()], producers: [...producers.values()] };
}

export const periodId = (accountId: string, month: string): string => `P\u0000${accountId}\u0000${month}`;
export const producerId = (accountId: string, month: string, pid: string): string =>
  `Q\u0000${accountId}\u0000${month}\u0000${pid}`;

/** The ids of the period items an event adds to (periodId, and producerId when it names one). */
export function periodIdsOf(event: CountedEvent): string[] {
  const month = monthOf(utcDay(event.ts));
  const ids = [periodId(event.accountId, month)];
  if (event.pid !== undefined) ids.push(producerId(event.accountId, month, event.pid));
  return ids;
}

function monthEnd(month: string): number {
  const [year, m] = month.split('-').map(Number) as [number, number];
  return Date.UTC(year, m, 1);
}

/**
 * The UpdateItem parts of a period increment: `ADD requests, units, d<dd>…` and `updatedAt`
 * (and a producer item's expiry). Placeholders are prefixed with `prefix` so that callers may add
 * their own (the Kinesis watermark).
 */
export function periodUpdate(
  increment: PeriodIncrement,
  now: Date,
): { adds: string; sets: string; names: Record<string, string>; values: Record<string, unknown> } {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {
    ':pr': increment.requests,
    ':pu': increment.units,
    ':pnow': now.toISOString(),
  };
  const dayAdds = [...increment.days].map(([attribute, count], i) => {
    names[`#pd${i}`] = attribute;
    values[`:pd${i}`] = count;
    return `#pd${i} :pd${i}`;
  });
  let sets = 'updatedAt = :pnow';
  if (increment.expiresAt !== undefined) {
    values[':pexp'] = increment.expiresAt;
    sets += ', expiresAt = :pexp';
  }
  return { adds: ['requests :pr', 'units :pu', ...dayAdds].join(', '), sets, names, values };
}
