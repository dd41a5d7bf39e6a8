import { describe, expect, it } from 'vitest';
import type { PreparedAggregate } from '../../services/usage/transactions';
import { planTransactions, runExclusive } from '../../services/usage/transactions';

const DAY = '2026-12-01';
const aggregate = (
  keyId: string,
  size: number,
  options: { accountId?: string; pid?: (i: number) => string } = {},
): PreparedAggregate => ({
  aggregate: {
    keyId,
    accountId: options.accountId ?? `acc_${keyId}`,
    day: DAY,
    events: Array.from({ length: size }, (_, i) => ({
      id: `${keyId}-${i}`,
      ts: Date.parse(`${DAY}T12:00:00Z`),
      units: 1,
      ...(options.pid ? { pid: options.pid(i) } : {}),
    })),
  },
  recordIds: Array.from({ length: size }, (_, i) => `r-${keyId}-${i}`),
});

/**
 * Every item a transaction writes: each event's mark, each part's counter, and once each the
 * account-period items and producer items its parts add to (their ids are the `counters` past the
 * parts' own).
 */
const itemsIn = (t: { parts: { events: unknown[] }[]; counters: string[] }) =>
  t.parts.reduce((n, p) => n + p.events.length + 1, 0) + (t.counters.length - t.parts.length);

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

  it('writes each counter once per 98 of its events, and fills transactions instead of one per aggregate', () => {
    // 50 keys of one account with 3 events each: 150 marks + 50 counters, and the account's period
    // item once per transaction: 24 keys fill one (96 items + the period item), the last 2 a third.
    const { transactions } = planTransactions(
      Array.from({ length: 50 }, (_, i) => aggregate(`k${i}`, 3, { accountId: 'acc_1' })),
    );
    expect(transactions.map(itemsIn)).toEqual([97, 97, 9]);
    // 50 keys of 50 accounts: each part brings its own period item, 5 items a part.
    const apart = planTransactions(Array.from({ length: 50 }, (_, i) => aggregate(`k${i}`, 3))).transactions;
    expect(apart.map(itemsIn)).toEqual([100, 100, 50]);
    // 250 events of one key: 98 events + their counter + the period item per transaction: 3 counter writes.
    const hot = planTransactions([aggregate('hot', 250)]).transactions;
    expect(hot.reduce((n, t) => n + t.parts.length, 0)).toBe(3);
    expect(hot.map(itemsIn)).toEqual([100, 100, 56]);
  });

  it('counts producer items into the 100 too, one per gate container a transaction holds events of', () => {
    // 300 events of one key from 30 containers: every transaction holds at most 100 items in all.
    const { transactions } = planTransactions([aggregate('busy', 300, { pid: (i) => `pid-${i % 30}` })]);
    for (const t of transactions) expect(itemsIn(t)).toBeLessThanOrEqual(100);
    const events = transactions.flatMap((t) => t.parts.flatMap((p) => p.events));
    expect(events).toHaveLength(300);
    // Two transactions sharing an account's period item never run at once (runExclusive's keys).
    const shared = transactions.map((t) => t.counters.filter((c) => c.startsWith('P')));
    for (const ids of shared) expect(ids).toHaveLength(1);
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
