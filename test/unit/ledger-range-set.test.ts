import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateBatch } from '../../services/metering/batch';
import { RangeSet } from '../../services/metering/ledger/range-set';

const T0 = Date.parse('2026-12-01T12:00:00Z');
const MINUTE = 60_000;
const HORIZON = { reorderHorizonMs: 20 * MINUTE, lateMs: 48 * 60 * MINUTE };
/** The gate's `at`: one ms per seq, never decreasing. */
const atOf = (seq: number) => T0 + seq;

const claim = (seqs: readonly number[], now = T0 + 1_000) => {
  const set = new RangeSet();
  for (const seq of seqs) set.add(seq, atOf(seq), now);
  return set;
};

/** Seqs 1..m in an order where each is at most `depth` places from its own. */
const reordered = (m: number, depth: number) =>
  fc.array(fc.integer({ min: 0, max: depth }), { minLength: m, maxLength: m }).map((shifts) =>
    shifts
      .map((shift, i) => ({ seq: i + 1, key: i + shift + 0.5 * (i / m) }))
      .sort((a, b) => a.key - b.key)
      .map((e) => e.seq),
  );

describe('RangeSet', () => {
  it('is through alone, in a few bytes, for an in-order producer', () => {
    const set = claim(Array.from({ length: 5000 }, (_, i) => i + 1));
    expect(set.through).toBe(5000);
    expect(set.runs).toEqual([]);
    expect(set.encode().length).toBeLessThanOrEqual(20);
    expect(set.contains(5000)).toBe(true);
    expect(set.contains(5001)).toBe(false);
    expect(set.contains(0)).toBe(false);
  });

  it('refuses a seq it holds, and holds a hole open until the horizon, then as a gap', () => {
    const set = claim([1, 2, 4, 5, 7]);
    expect(set.add(4, atOf(4), T0)).toBe(false);
    expect(set.through).toBe(2);
    expect(set.runs.map((r) => [r.from, r.to])).toEqual([
      [4, 5],
      [7, 7],
    ]);
    set.compact(T0 + 19 * MINUTE, HORIZON);
    expect(set.through).toBe(2);
    set.compact(T0 + 21 * MINUTE, HORIZON);
    expect(set.through).toBe(7);
    expect(set.gaps).toEqual([
      { from: 3, to: 3, atNext: atOf(4) },
      { from: 6, to: 6, atNext: atOf(7) },
    ]);
    expect([3, 6].map((s) => set.contains(s))).toEqual([false, false]);
    // A late copy of a seq in a gap is claimed once.
    expect(set.add(3, atOf(3), T0 + 22 * MINUTE)).toBe(true);
    expect(set.add(3, atOf(3), T0 + 22 * MINUTE)).toBe(false);
    expect(set.gaps).toEqual([{ from: 6, to: 6, atNext: atOf(7) }]);
  });

  it('splits a gap around a late seq, the lower part bounded by that seq’s at', () => {
    const set = claim([1, 10]);
    set.compact(T0 + 21 * MINUTE, HORIZON);
    expect(set.gaps).toEqual([{ from: 2, to: 9, atNext: atOf(10) }]);
    set.add(5, atOf(5), T0 + 22 * MINUTE);
    expect(set.gaps).toEqual([
      { from: 2, to: 4, atNext: atOf(5) },
      { from: 6, to: 9, atNext: atOf(10) },
    ]);
    expect(RangeSet.decode(set.encode())).toEqual(set);
  });

  it('rejects what is not an encoded range', () => {
    for (const bad of ['', 'x', '1.2', '1.2.3.1', '1.2.3.4.5.6', '3.0.0..2:5', 'A.0.0']) {
      expect(() => RangeSet.decode(bad), bad).toThrow(/not an encoded range/);
    }
  });

  it('contains exactly the seqs added, whatever their order and repeats', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 400 }), (seqs) => {
        const set = new RangeSet();
        const added = new Set<number>();
        for (const seq of seqs) {
          if (set.add(seq, atOf(seq), T0) === added.has(seq)) return false;
          added.add(seq);
        }
        for (let s = 0; s <= 302; s++) if (set.contains(s) !== added.has(s)) return false;
        expect(RangeSet.decode(set.encode())).toEqual(set);
        return true;
      }),
      { numRuns: 300 },
    );
  });

  it('compaction keeps every claimed seq and every unclaimed one not yet past the late window', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 200 }), { maxLength: 200 }),
        fc.integer({ min: 0, max: 60 * 60 * MINUTE }),
        (seqs, later) => {
          // The event of seq s was stamped `at` s minutes after T0; now is `later` past the last.
          const at = (seq: number) => T0 + seq * MINUTE;
          const set = new RangeSet();
          for (const seq of seqs) set.add(seq, at(seq), T0);
          const now = T0 + 200 * MINUTE + later;
          set.compact(now, HORIZON);
          const added = new Set(seqs);
          for (let s = 1; s <= 201; s++) {
            if (added.has(s)) expect(set.contains(s)).toBe(true);
            else if (set.contains(s)) {
              // Forgotten: a claimed seq above it was stamped before the late window, so its own
              // event (ts ≤ at ≤ that at) is refused too_old before dedupe.
              const next = [...added].filter((x) => x > s).sort((a, b) => a - b)[0];
              expect(next).toBeDefined();
              expect(at(next ?? 0)).toBeLessThan(now - HORIZON.lateMs);
            }
          }
          for (const gap of set.gaps) expect(gap.atNext).toBeGreaterThanOrEqual(now - HORIZON.lateMs);
          expect(RangeSet.decode(set.encode())).toEqual(set);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a late copy of a seq in a closed gap is refused too_old by the consumer, before the ledger sees it', () => {
    let withClosedGaps = 0;
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 120 }), { maxLength: 120 }),
        fc.integer({ min: 0, max: 200 * MINUTE }),
        (seqs, later) => {
          const at = (seq: number) => T0 + seq * MINUTE;
          const set = new RangeSet();
          for (const seq of seqs) set.add(seq, at(seq), T0);
          const now = T0 + HORIZON.lateMs + later;
          set.compact(now, HORIZON);
          const claimed = new Set(seqs);
          const closed = Array.from({ length: 120 }, (_, i) => i + 1).filter(
            (s) => !claimed.has(s) && set.contains(s),
          );
          const records = closed.map((seq) => ({
            recordId: `r${seq}`,
            // The gate stamps ts ≤ at; the copy is the event as first published.
            body: JSON.stringify({
              v: 1,
              id: `event-${seq}`.padEnd(16, '0'),
              keyId: 'key1',
              accountId: 'acct',
              ts: at(seq),
              units: 1,
              pid: 'p'.repeat(22),
              seq,
              at: at(seq),
            }),
          }));
          const { accepted, rejected } = validateBatch(records, new Date(now), {
            lateMs: HORIZON.lateMs,
            futureMs: 5 * MINUTE,
          });
          if (closed.length > 0) withClosedGaps++;
          return accepted.length === 0 && rejected.every((r) => r.reason === 'too_old');
        },
      ),
      { numRuns: 200 },
    );
    expect(withClosedGaps).toBeGreaterThan(50);
  });

  it('stays as large as the reorder depth, not as the number of seqs', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 8 }).chain((depth) => fc.tuple(fc.constant(depth), reordered(800, depth))),
        ([depth, order]) => {
          const set = new RangeSet();
          let widest = 0;
          for (const seq of order) {
            set.add(seq, atOf(seq), T0);
            widest = Math.max(widest, set.encode().length);
            if (set.runs.length > depth) return false;
          }
          expect(set.through).toBe(800);
          // through, at and seenAt, then an entry of at most ~6 bytes per hole.
          expect(widest).toBeLessThanOrEqual(20 + 7 * depth);
          return true;
        },
      ),
      { numRuns: 100 },
    );
  });
});
