import { describe, expect, it } from 'vitest';
import type { AcceptedRecord } from '../../services/metering/batch';
import { splitForLedger } from '../../services/metering/ledger/events';
import {
  FLUSH_PROFILES,
  Ledger,
  type LedgerEvent,
  type LedgerOptions,
} from '../../services/metering/ledger/ledger';
import { parsePendingEntry } from '../../services/metering/ledger/policy';
import { RangeSet } from '../../services/metering/ledger/range-set';
import { DependencyError } from '../../services/platform/errors';
import { keyDayCounter, periodCounter } from '../../services/usage/counter-keys';
import type { LedgerStore } from '../../services/usage/ledger-port';
import { type LedgerFault, type LedgerOp, MemoryLedgerStore } from '../support/memory-ledger-store';

const T0 = Date.parse('2026-12-07T10:00:00Z');
const DAY = '2026-12-07';
const LATE_MS = 48 * 3600_000;

const event = (pid: string, seq: number, overrides: Partial<LedgerEvent> = {}): LedgerEvent => ({
  recordId: `${pid}-${seq}`,
  pid,
  seq,
  at: T0 + seq,
  accountId: 'acct',
  keyId: 'key1',
  ts: T0 + seq,
  units: 1,
  ...overrides,
});
const events = (pid: string, from: number, to: number, overrides: Partial<LedgerEvent> = {}) =>
  Array.from({ length: to - from + 1 }, (_, i) => event(pid, from + i, overrides));

/** Ledgers on one store, their clock at `clock.at`; `faults` decides the fault of an invocation's nth call of an operation. */
function setup(
  options: Partial<LedgerOptions> = {},
  faults: (op: LedgerOp, n: number) => LedgerFault = () => 'none',
) {
  const store = new MemoryLedgerStore();
  const clock = { at: T0 + 1_000 };
  const ops: LedgerOp[] = [];
  let ids = 0;
  const ledger = (fault = faults) => {
    const seen = new Map<LedgerOp, number>();
    const nth = (op: LedgerOp) => {
      seen.set(op, (seen.get(op) ?? 0) + 1);
      return seen.get(op) ?? 0;
    };
    return new Ledger({
      store: store.connect({ gate: async (op) => ops.push(op), fault: (op) => fault(op, nth(op)) }),
      clock: { now: () => new Date(clock.at) },
      policy: 'fresh',
      timers: { lateMs: LATE_MS },
      producerTtlMs: LATE_MS,
      newId: () => `id${++ids}`,
      sleep: async (ms) => {
        clock.at += ms;
      },
      ...options,
    });
  };
  const requests = (keyId = 'key1') =>
    store.counters.get(`ACCOUNT#acct\u0000${keyDayCounter('acct', keyId, DAY).sk}`);
  const period = () => store.counters.get(`ACCOUNT#acct\u0000${periodCounter('acct', '2026-12').sk}`);
  return { store, clock, ops, ledger, requests, period };
}

describe('Ledger.commit', () => {
  it('claims a batch with a journal and one head write, then flushes it (fresh)', async () => {
    const { store, ops, ledger, requests, period } = setup();
    const result = await ledger().commit([...events('p1', 1, 5), event('p1', 3, { recordId: 'copy' })]);
    expect(result.committed).toEqual(['p1-1', 'p1-2', 'p1-3', 'p1-4', 'p1-5']);
    expect(result.duplicates).toEqual(['copy']);
    expect(result.failed).toEqual([]);
    expect(result).toMatchObject({ counted: 5, accounts: ['acct'] });
    expect(requests()?.numbers.requests).toBe(5);
    expect(period()?.numbers.requests).toBe(5);
    expect(store.done).toBe(1);
    expect(ops.filter((op) => ['putJournal', 'commitHead', 'putArchive'].includes(op))).toEqual([
      'putJournal',
      'commitHead',
    ]);
    expect(RangeSet.decode(store.head?.prod.p1 ?? '').through).toBe(5);
  });

  it('writes nothing for a redelivered batch: every record is a duplicate', async () => {
    const { store, ops, ledger } = setup();
    await ledger().commit(events('p1', 1, 3));
    const writes = ops.length;
    const again = await ledger().commit(events('p1', 1, 3).reverse());
    expect(again).toMatchObject({
      committed: [],
      duplicates: ['p1-3', 'p1-2', 'p1-1'],
      failed: [],
      counted: 0,
    });
    expect(ops.slice(writes)).toEqual(['readHead', 'readDone']);
    expect(store.counters.size).toBeGreaterThan(0);
  });

  it('gives the batch back when the store is unavailable, and counts it once on redelivery', async () => {
    const { ledger, requests } = setup();
    const down = await ledger((op) => (op === 'putJournal' ? 'fail-before' : 'none')).commit(
      events('p1', 1, 3),
    );
    expect(down).toMatchObject({ committed: [], duplicates: [], failed: ['p1-1', 'p1-2', 'p1-3'] });
    expect(down.error).toBeInstanceOf(DependencyError);
    expect(requests()).toBeUndefined();
    const up = await ledger().commit(events('p1', 1, 3));
    expect(up.committed).toHaveLength(3);
    expect(requests()?.numbers.requests).toBe(3);
  });

  it('settles an unknown commit outcome by the head: landed, so committed once', async () => {
    const { store, ledger, requests } = setup({}, (op, n) =>
      op === 'commitHead' && n === 1 ? 'fail-after' : 'none',
    );
    const result = await ledger().commit(events('p1', 1, 4));
    expect(result.committed).toHaveLength(4);
    expect(store.journals.size).toBe(1);
    expect(requests()?.numbers.requests).toBe(4);
  });

  it('retries a commit refused before it ran, with the same journal', async () => {
    const { store, ledger } = setup({}, (op, n) => (op === 'commitHead' && n === 1 ? 'fail-before' : 'none'));
    const result = await ledger().commit(events('p1', 1, 4));
    expect(result.committed).toHaveLength(4);
    expect(store.journals.size).toBe(1);
    expect(store.head?.seq).toBe(1);
  });

  it('runs its own flush claim when its timed-out commit landed only after the re-read', async () => {
    const { store, clock, requests } = setup();
    const base = store.connect({});
    let held: (() => Promise<boolean>) | undefined;
    const late: LedgerStore = {
      ...base,
      commitHead: async (ver, next) => {
        if (!held) {
          held = () => base.commitHead(ver, next);
          throw new DependencyError('timed out');
        }
        await held(); // the first write arrives before the retry
        return base.commitHead(ver, next);
      },
    };
    const ledger = new Ledger({
      store: late,
      clock: { now: () => new Date(clock.at) },
      policy: 'fresh',
      timers: { lateMs: LATE_MS },
      producerTtlMs: LATE_MS,
    });
    const result = await ledger.commit(events('p1', 1, 4));
    expect(result.duplicates).toHaveLength(4); // its own, claimed by the late write
    expect(result.counted).toBe(4);
    expect(requests()?.numbers.requests).toBe(4);
    expect(store.done).toBe(1);
  });

  it('splits a batch whose journal would be too large, and fails only the chunks from the first unavailable one', async () => {
    const batch = Array.from({ length: 40 }, (_, i) => event('p1', i + 1, { keyId: `key${i}` }));
    const { store, ledger } = setup({ maxJournalBytes: 2_000 });
    const commits = (await ledger().commit(batch)).committed;
    expect(commits).toHaveLength(40);
    expect(store.head?.seq).toBeGreaterThan(2);
    for (const journal of store.journals.values()) expect(journal.length).toBeLessThan(40);

    const again = setup({ maxJournalBytes: 2_000 }, (op, n) =>
      op === 'putJournal' && n === 2 ? 'fail-before' : 'none',
    );
    const partial = await again.ledger().commit(batch);
    expect(partial.committed.length).toBeGreaterThan(0);
    expect(partial.failed.length).toBeGreaterThan(0);
    expect(partial.committed.length + partial.failed.length).toBe(40);
    expect(partial.failed).toContain('p1-40');
  });

  it('balanced: holds small commits back until its event count or delay, then flushes them in one go', async () => {
    // While traffic flows the next batch's commit finds them due; the tail is the next test's.
    const { store, clock, ledger, requests } = setup({ policy: 'balanced', tailFlush: false });
    await ledger().commit(events('p1', 1, 10));
    await ledger().commit(events('p1', 11, 20));
    expect(store.done).toBe(0);
    expect(requests()).toBeUndefined();
    clock.at += FLUSH_PROFILES.balanced.maxDelayMs;
    const third = await ledger().commit(events('p1', 21, 30));
    expect(third.counted).toBe(30);
    expect(store.done).toBe(3);
    expect(requests()?.numbers.requests).toBe(30);
    const many = await ledger().commit(events('p2', 1, 2_000));
    expect(many.counted).toBe(2_000);
  });

  it('balanced: the last commit of a burst waits until its journals are due and flushes them', async () => {
    const { store, clock, ledger, requests } = setup({ policy: 'balanced' });
    const result = await ledger().commit(events('p1', 1, 10));
    // The injected sleep moved the clock: the commit waited until its oldest event (T0 + 1) was
    // the policy's delay old, no longer.
    expect(clock.at).toBe(T0 + 1 + FLUSH_PROFILES.balanced.maxDelayMs);
    expect(result.counted).toBe(10);
    expect(store.done).toBe(1);
    expect(requests()?.numbers.requests).toBe(10);
  });

  it('balanced: a commit that is no longer the tail after its wait leaves the flush to the later one', async () => {
    const store = new MemoryLedgerStore();
    const clock = { at: T0 + 1_000 };
    let ids = 0;
    const later: Promise<unknown>[] = [];
    const make = (onSleep?: () => void) =>
      new Ledger({
        store: store.connect({}),
        clock: { now: () => new Date(clock.at) },
        policy: 'balanced',
        timers: { lateMs: LATE_MS },
        producerTtlMs: LATE_MS,
        newId: () => `id${++ids}`,
        sleep: async (ms) => {
          if (onSleep) {
            onSleep();
            await Promise.all(later);
          }
          clock.at += ms;
        },
      });
    const second = make();
    // While the first commit waits, a second batch commits (and itself becomes the tail).
    const first = make(() => {
      if (later.length === 0) later.push(second.commit(events('p1', 11, 20)));
    });
    const firstResult = await first.commit(events('p1', 1, 10));
    expect(firstResult.counted).toBe(0);
    await Promise.all(later);
    // The second commit's own wait ended with both journals flushed, in one flush.
    expect(store.done).toBe(2);
    const counter = store.counters.get(`ACCOUNT#acct\u0000${keyDayCounter('acct', 'key1', DAY).sk}`);
    expect(counter?.numbers.requests).toBe(20);
  });

  it('balanced: a commit of events already older than the delay (a backlog) flushes at once, without waiting', async () => {
    const { store, clock, ledger, requests } = setup({ policy: 'balanced' });
    clock.at = T0 + 60_000;
    const started = clock.at;
    const result = await ledger().commit(events('p1', 1, 10));
    expect(clock.at).toBe(started);
    expect(result.counted).toBe(10);
    expect(store.done).toBe(1);
    expect(requests()?.numbers.requests).toBe(10);
  });

  it('the backstop flushes what no commit flushed', async () => {
    const { store, ledger, requests } = setup({ policy: 'economy' });
    await ledger().commit(events('p1', 1, 10));
    expect(store.done).toBe(0);
    expect(await ledger().backstop()).toMatchObject({ counted: 10, accounts: ['acct'] });
    expect(requests()?.numbers.requests).toBe(10);
    expect(await ledger().backstop()).toMatchObject({ counted: 0 });
  });

  it('takes over a flush its owner left, but only past the lease, without counting twice', async () => {
    // The first invocation dies right after its second counter update (of four: two key-days, period, producer).
    const { store, clock, ledger, requests, period } = setup();
    const crash = (op: LedgerOp, n: number): LedgerFault =>
      op === 'applyCounter' && n === 2 ? 'crash-after' : 'none';
    void ledger(crash).commit([...events('p1', 1, 3), ...events('p1', 4, 6, { keyId: 'key2' })]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(store.done).toBe(0);
    expect(store.head?.fl).toMatchObject({ frm: 0, to: 1 });
    // Within the lease the flush is its owner's: the schedule's backstop leaves it alone.
    expect(await ledger().backstop()).toMatchObject({ counted: 0 });
    expect(store.done).toBe(0);
    clock.at += 10_000;
    const later = await ledger().commit(events('p1', 7, 7));
    expect(later.counted).toBe(7);
    expect(store.done).toBe(2);
    expect(requests()?.numbers.requests).toBe(4);
    expect(requests('key2')?.numbers.requests).toBe(3);
    expect(period()?.numbers.requests).toBe(7);
  });

  it('balanced with a scheduled tail: the first commit of a run asks for it and returns at once; it flushes once traffic goes quiet', async () => {
    const asked: Array<[number, number]> = [];
    const { store, clock, ledger, requests } = setup({
      policy: 'balanced',
      scheduleTail: async (delayMs, journal) => {
        asked.push([delayMs, journal]);
      },
    });
    const now = (from: number, to: number) =>
      events('p1', from, to).map((e) => ({ ...e, ts: clock.at, at: clock.at }));
    const t0 = clock.at;
    await ledger().commit(now(1, 10));
    expect(clock.at).toBe(t0); // no wait in the invocation
    // Asked to look again when traffic would have gone quiet (2.5 s), before the 4 s delay.
    expect(asked).toEqual([[2_500, 1]]);
    clock.at = t0 + 1_000;
    await ledger().commit(now(11, 20));
    expect(asked).toHaveLength(1); // not the first of its run
    // At 2.5 s a batch came 1.5 s ago: traffic goes on, so it looks again when that one is 2.5 s old.
    clock.at = t0 + 2_500;
    expect(await ledger().flushPending(1)).toMatchObject({ counted: 0 });
    expect(asked).toEqual([
      [2_500, 1],
      [1_000, 1],
    ]);
    clock.at = t0 + 3_500;
    expect(await ledger().flushPending(1)).toMatchObject({
      counted: 20,
      accounts: ['acct'],
      flushedThrough: 2,
    });
    expect(store.done).toBe(2);
    expect(requests()?.numbers.requests).toBe(20);
  });

  it('balanced: a scheduled tail whose journal a commit flushed meanwhile does nothing; the next run has its own', async () => {
    const asked: Array<[number, number]> = [];
    const { store, clock, ledger } = setup({
      policy: 'balanced',
      scheduleTail: async (delayMs, journal) => {
        asked.push([delayMs, journal]);
      },
    });
    const now = (from: number, to: number) =>
      events('p1', from, to).map((e) => ({ ...e, ts: clock.at, at: clock.at }));
    await ledger().commit(now(1, 10));
    clock.at += FLUSH_PROFILES.balanced.maxDelayMs;
    // Journal 1 is due: the next commit flushes it with its own, before the scheduled tail comes.
    await ledger().commit(now(11, 20));
    expect(store.done).toBe(2);
    await ledger().commit(now(21, 30));
    expect(asked.map(([, journal]) => journal)).toEqual([1, 3]);
    expect(await ledger().flushPending(1)).toMatchObject({ counted: 0 });
    expect(asked).toHaveLength(2);
    expect(store.done).toBe(2);
    clock.at += 2_500;
    expect(await ledger().flushPending(3)).toMatchObject({ counted: 10, flushedThrough: 3 });
  });

  it('balanced: a tail that cannot be scheduled is waited for in the invocation, and flushed', async () => {
    const { store, clock, ledger } = setup({
      policy: 'balanced',
      scheduleTail: async () => {
        throw new DependencyError('sqs', new Error('queue unavailable'));
      },
    });
    const result = await ledger().commit(events('p1', 1, 10));
    expect(clock.at).toBe(T0 + 1 + FLUSH_PROFILES.balanced.maxDelayMs);
    expect(result.counted).toBe(10);
    expect(store.done).toBe(1);
  });

  it('goes on committing while a dead owner holds the flush: waits a second for it, not the lease', async () => {
    const { store, clock, ledger, requests } = setup();
    const crash = (op: LedgerOp, n: number): LedgerFault =>
      op === 'applyCounter' && n === 1 ? 'crash-after' : 'none';
    void ledger(crash).commit(events('p1', 1, 3));
    await new Promise((resolve) => setImmediate(resolve));
    expect(store.head?.fl).toMatchObject({ frm: 0, to: 1 });
    // A due commit within the lease: its batch is claimed and acknowledged about a second later,
    // its journal left pending behind the stalled flush (nothing counted yet, nothing lost).
    const started = clock.at;
    const within = await ledger().commit(events('p1', 4, 6));
    expect(within.committed).toEqual(['p1-4', 'p1-5', 'p1-6']);
    expect(within.counted).toBe(0);
    expect(clock.at - started).toBeLessThanOrEqual(1_500);
    expect(store.head?.seq).toBe(2);
    // The first commit past the lease takes the stalled flush over, then flushes the rest.
    clock.at = started + 10_000;
    const past = await ledger().commit(events('p1', 7, 7));
    expect(past.counted).toBe(7);
    expect(store.done).toBe(3);
    expect(requests()?.numbers.requests).toBe(7);
  });

  it('archives an idle producer, refuses its old seqs from the archive and brings it back for new ones', async () => {
    const { store, clock, ledger, requests } = setup();
    await ledger().commit(events('old', 1, 3));
    clock.at += 11 * 60_000;
    await ledger().commit(events('p2', 1, 1));
    expect(store.head?.prod.old).toBeUndefined();
    expect(RangeSet.decode(store.archives.get('old')?.range ?? '').through).toBe(3);
    const redelivered = await ledger().commit([event('old', 2), event('old', 4)]);
    expect(redelivered).toMatchObject({ committed: ['old-4'], duplicates: ['old-2'] });
    expect(RangeSet.decode(store.head?.prod.old ?? '').through).toBe(4);
    expect(requests()?.numbers.requests).toBe(5);
  });

  it('names each journal with its events and its oldest event time, for the policy', async () => {
    const { store, ledger } = setup({ policy: 'economy' });
    await ledger().commit(events('p1', 1, 7));
    const entry = store.head?.pend[1] ?? '';
    // The events' times are T0 + seq: the oldest is seq 1's.
    expect(parsePendingEntry(entry, 0)).toEqual({ id: 'id2', events: 7, at: T0 + 1 });
    expect(store.journals.has('id2')).toBe(true);
  });
});

describe('splitForLedger', () => {
  it('sends numbered events to the ledger and the others to the mark path', () => {
    const base = { v: 1 as const, keyId: 'key1', accountId: 'acct', ts: T0, units: 2 };
    const numbered: AcceptedRecord = {
      record: { recordId: 'm1', body: '' },
      event: {
        ...base,
        id: 'event-numbered-0001',
        pid: 'p'.repeat(22),
        seq: 7,
        at: T0 + 1,
        route: '/a',
        method: 'GET',
      },
    };
    const old: AcceptedRecord = {
      record: { recordId: 'm2', body: '' },
      event: { ...base, id: 'event-old-000000001' },
    };
    const { ledger, marks } = splitForLedger([numbered, old]);
    expect(ledger).toEqual([
      {
        recordId: 'm1',
        pid: 'p'.repeat(22),
        seq: 7,
        at: T0 + 1,
        accountId: 'acct',
        keyId: 'key1',
        ts: T0,
        units: 2,
        route: '/a',
        method: 'GET',
      },
    ]);
    expect(marks).toEqual([old]);
  });
});
