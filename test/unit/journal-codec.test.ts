import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeJournal, encodeJournal } from '../../services/usage/journal-codec';
import { journalDeltas } from '../../services/usage/ledger-deltas';
import type { CounterDelta } from '../../services/usage/ledger-port';

const DAY_MS = 86_400_000;
const T0 = Date.parse('2026-12-07T00:00:00Z');

const event = fc.record({
  accountId: fc.constantFrom('acct_1', 'acct_2', 'bench-run-sqs-r100-a3'),
  keyId: fc.constantFrom('key_a', 'key_b', 'bench-run-sqs-r100-k12'),
  ts: fc.integer({ min: T0 - DAY_MS, max: T0 + DAY_MS }),
  units: fc.constant(1),
  route: fc.option(fc.constantFrom('/v1/rates/:currency', '*', '/v1/things'), { nil: undefined }),
  method: fc.option(fc.constantFrom('GET', 'POST', 'OTHER'), { nil: undefined }),
  pid: fc.option(fc.constantFrom('pidAAAAAAAAAAAAAAAAAAA', 'pidBBBBBBBBBBBBBBBBBBB'), { nil: undefined }),
});
/** Deltas in one order (the codec groups them by partition; nothing depends on their order). */
const sorted = (deltas: readonly CounterDelta[]) =>
  [...deltas].sort((a, b) =>
    `${a.counter.pk} ${a.counter.sk}`.localeCompare(`${b.counter.pk} ${b.counter.sk}`),
  );
const withoutUndefined = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

describe('the ledger journal codec', () => {
  it('gives back exactly the deltas of any set of events', () => {
    fc.assert(
      fc.property(fc.array(event, { minLength: 1, maxLength: 60 }), (events) => {
        const deltas = journalDeltas(events.map(withoutUndefined), 49 * 3_600_000);
        expect(sorted(decodeJournal(encodeJournal(deltas)))).toEqual(sorted(deltas));
      }),
    );
  });

  it('keeps what it cannot shorten: other sets, a key-day delta without a keyId, a keyId of another key', () => {
    const deltas: CounterDelta[] = [
      {
        counter: { pk: 'ACCOUNT#a', sk: 'DAY#2026-12-07#KEY#k' },
        kind: 'keyDay',
        adds: { requests: 2, r: 5, '=x': 1 },
        sets: { l: 'not a time', lastUsedAt: 'yesterday', e: 3 },
      },
      {
        counter: { pk: 'ACCOUNT#a', sk: 'DAY#2026-12-07#KEY#k2' },
        kind: 'keyDay',
        adds: {},
        sets: { keyId: 'other' },
      },
    ];
    expect(sorted(decodeJournal(encodeJournal(deltas)))).toEqual(sorted(deltas));
  });

  it('writes a batch’s journal in well under half the bytes of its deltas’ JSON', () => {
    const events = Array.from({ length: 150 }, (_, i) => ({
      accountId: `bench-20261207-sqs-r100-a${i % 10}`,
      keyId: `bench-20261207-sqs-r100-k${i % 60}`,
      ts: T0 + 13 * 3_600_000 + i * 1000,
      units: 1,
      pid: 'pidAAAAAAAAAAAAAAAAAAA',
    }));
    const deltas = journalDeltas(events, 49 * 3_600_000);
    const compact = Buffer.byteLength(encodeJournal(deltas));
    const plain = Buffer.byteLength(JSON.stringify(deltas));
    expect(compact / plain).toBeLessThan(0.5);
  });

  it('refuses a journal of an encoding it does not know', () => {
    expect(() => decodeJournal('{"v":2,"p":[]}')).toThrow(/unknown encoding/);
  });
});
