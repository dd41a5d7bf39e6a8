import { ANY_METHOD, ANY_ROUTE, utcDay } from '../../contracts/usage-event';
import { hourAttribute, keyDayCounter, routeAttribute } from './counter-keys';
import type { CounterDelta } from './ledger-port';
import { periodIncrements } from './period-counters';

/** What the ledger counts of one event: the same fields the mark path and the Kinesis path count. */
export interface LedgerCountedEvent {
  accountId: string;
  keyId: string;
  ts: number;
  units: number;
  route?: string;
  method?: string;
  pid?: string;
}

/**
 * A journal's deltas: what a set of events adds to every item the other paths add to — each (key,
 * UTC day) counter (requests, units, route and hour attributes, lastUsedAt), each account-period item
 * and each producer's share of it — aggregated, so a journal is as large as the counters it touches,
 * not as the events it holds. `producerTtlMs`: how long a producer item outlives its month.
 */
export function journalDeltas(events: readonly LedgerCountedEvent[], producerTtlMs: number): CounterDelta[] {
  const counters = new Map<string, CounterDelta>();
  for (const event of events) {
    const day = utcDay(event.ts);
    const counter = keyDayCounter(event.accountId, event.keyId, day);
    const id = `${counter.pk}\u0000${counter.sk}`;
    let delta = counters.get(id);
    if (!delta) {
      delta = { counter, kind: 'keyDay', adds: {}, sets: { keyId: event.keyId } };
      counters.set(id, delta);
    }
    const adds = delta.adds;
    adds.requests = (adds.requests ?? 0) + 1;
    adds.units = (adds.units ?? 0) + event.units;
    const route = routeAttribute(event.method ?? ANY_METHOD, event.route ?? ANY_ROUTE);
    adds[route] = (adds[route] ?? 0) + 1;
    const hour = hourAttribute(event.ts);
    adds[hour] = (adds[hour] ?? 0) + 1;
    const last = new Date(event.ts).toISOString();
    const was = delta.sets.lastUsedAt;
    if (was === undefined || last > was) delta.sets.lastUsedAt = last;
  }
  const { periods, producers } = periodIncrements(events, producerTtlMs);
  const periodDeltas = (kind: 'period' | 'producer', list: typeof periods): CounterDelta[] =>
    list.map((p) => {
      const sets: Record<string, number> = {};
      if (p.expiresAt !== undefined) sets.expiresAt = p.expiresAt;
      return {
        counter: p.counter,
        kind,
        adds: { requests: p.requests, units: p.units, ...Object.fromEntries(p.days) },
        sets,
      };
    });
  return [...counters.values(), ...periodDeltas('period', periods), ...periodDeltas('producer', producers)];
}

/**
 * About how many bytes a journal item of these deltas takes in DynamoDB (names and values, as
 * DynamoDB sizes items): what keeps a journal under the 400 KB item limit, and what its write costs.
 */
export function journalBytes(deltas: readonly CounterDelta[]): number {
  let bytes = 0;
  for (const d of deltas) {
    bytes += d.counter.pk.length + d.counter.sk.length + d.kind.length + 16;
    for (const name of Object.keys(d.adds)) bytes += name.length + 4;
    for (const [name, value] of Object.entries(d.sets)) bytes += name.length + String(value).length + 2;
  }
  return bytes;
}
