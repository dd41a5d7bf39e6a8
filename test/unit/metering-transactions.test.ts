import { describe, expect, it } from 'vitest';
import type { PreparedAggregate } from '../../services/metering/batch';
import { planTransactions, runExclusive } from '../../services/metering/transactions';

const aggregate = (keyId: string, size: number, day = '2026-12-01'): PreparedAggregate => ({
  aggregate: {
    keyId,
    accountId: `acc_${keyId}`,
    day,
    events: Array.from({ length: size }, (_, i) => ({ id: `${keyId}-${i}`, ts: 1, units: 1 })),
  },
  recordIds: Array.from({ length: size }, (_, i) => `r-${keyId}-${i}`),
});

const itemsIn = (t: { parts: { events: unknown[] }[] }) =>
  t.parts.reduce((n, p) => n + p.events.length + 1, 0);

describe('planTransactions', () => {
  it('puts every event in exactly one transaction of at most 100 items, with its record', () => {
    const aggregates = [
      aggregate('hot', 450),
      ...Array.from({ length: 60 }, (_, i) => aggregate(`k${i}`, 1 + (i % 7))),
    ];
    const { transactions, duplicates } = planTransactions(aggregates);
    expect(duplicates).toBe(0);
    const events = transactions.flatMap((t) => t.parts.flatMap((p) => p.events.map((e) => e.id)));
    const all = aggregates.flatMap((a) => a.aggregate.events.map((e) => e.id));
    expect(events.sort()).toEqual(all.sort());
    const records = transactions.flatMap((t) => t.parts.flatMap((p) => p.recordIds));
    expect(records.sort()).toEqual(aggregates.flatMap((a) => a.recordIds).sort());
    for (const t of transactions) expect(itemsIn(t)).toBeLessThanOrEqual(100);
  });

  it('writes each counter once per 99 of its events, and fills transactions instead of one per aggregate', () => {
    // 50 keys with 3 events each: 50 counters + 150 marks = 200 items = 2 full transactions.
    const { transactions } = planTransactions(Array.from({ length: 50 }, (_, i) => aggregate(`k${i}`, 3)));
    expect(transactions).toHaveLength(2);
    expect(transactions.map(itemsIn)).toEqual([100, 100]);
    // 250 events of one key: ceil(250 / 99) = 3 counter writes.
    const hot = planTransactions([aggregate('hot', 250)]).transactions;
    expect(hot.reduce((n, t) => n + t.parts.length, 0)).toBe(3);
  });

  it('drops a record repeating an event already in the batch, and fails it with its first copy', () => {
    const twice = aggregate('dup', 3);
    twice.aggregate.events.push({
      ...(twice.aggregate.events[0] as { id: string; ts: number; units: number }),
    });
    twice.recordIds.push('r-dup-again');
    const { transactions, duplicates } = planTransactions([twice]);
    expect(duplicates).toBe(1);
    expect(transactions[0]?.parts[0]?.events).toHaveLength(3);
    expect(transactions[0]?.parts[0]?.recordIds).toContain('r-dup-again');
  });
});

describe('runExclusive', () => {
  it('never runs two tasks that share a key at once, and runs up to the limit otherwise', async () => {
    const busy = new Set<string>();
    let inFlight = 0;
    let most = 0;
    const clashes: string[] = [];
    const tasks = [['a'], ['a', 'b'], ['c'], ['d'], ['b'], ['e'], ['a']];
    await runExclusive(
      tasks,
      (t) => t,
      3,
      async (keys) => {
        for (const k of keys) if (busy.has(k)) clashes.push(k);
        for (const k of keys) busy.add(k);
        most = Math.max(most, ++inFlight);
        await new Promise((resolve) => setTimeout(resolve, 5));
        for (const k of keys) busy.delete(k);
        inFlight--;
      },
    );
    expect(clashes).toEqual([]);
    expect(most).toBe(3);
  });
});
