import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { ENV } from '../../contracts/config';
import { keyDayCounter } from '../../services/usage/counter-keys';
import type { CounterDelta, LedgerHead } from '../../services/usage/ledger-port';
import { DynamoLedgerStore } from '../../services/usage/ledger-store';
import { localClients, stackEnv } from '../support/local-stack';

// The SQS ledger's store on DynamoDB Local: every race the protocol relies on is one of these
// single-item conditions, so each is checked here against the real engine (the in-memory store the
// property test uses must model exactly these).

const run = `${process.pid}-${Date.now()}`;
let ledgers = 0;
function newStore() {
  const { doc } = localClients();
  const table = stackEnv()[ENV.usageTable] as string;
  const store = new DynamoLedgerStore({
    client: doc,
    table,
    name: `test-${run}-${ledgers++}`,
    archiveTtlMs: 3_600_000,
  });
  return { store, doc, table };
}

const head = (ver: number, extra: Partial<LedgerHead> = {}): LedgerHead => ({
  ver,
  seq: ver,
  pend: { [ver]: `journal-${ver}` },
  prod: { pid_a: 'range-a' },
  ...extra,
});

describe('the SQS ledger store on DynamoDB', () => {
  it('commits the head only on the version read: one of two racing commits wins', async () => {
    const { store } = newStore();
    expect(await store.readHead()).toEqual({ ver: 0, seq: 0, pend: {}, prod: {} });
    expect(await store.commitHead(0, head(1))).toBe(true);
    // A second writer that also read "no head": refused, not merged.
    expect(await store.commitHead(0, head(1, { prod: { pid_b: 'range-b' } }))).toBe(false);
    const fl = { frm: 0, to: 1, at: 1_000, owner: 'inv-1' };
    expect(await store.commitHead(1, head(2, { fl }))).toBe(true);
    expect(await store.commitHead(1, head(2))).toBe(false);
    expect(await store.readHead()).toEqual(head(2, { fl }));
  });

  it('keeps journals as written and reads back only those that exist', async () => {
    const { store } = newStore();
    const delta: CounterDelta = {
      counter: keyDayCounter('acct', 'key', '2026-12-07'),
      kind: 'keyDay',
      adds: { requests: 3, units: 3, h10: 3, 'route#GET /v1/rates/:currency': 3 },
      sets: { keyId: 'key', lastUsedAt: '2026-12-07T10:00:00.000Z' },
    };
    await store.putJournal('j-1', [delta]);
    const read = await store.getJournals(['j-1', 'j-missing']);
    expect([...read.keys()]).toEqual(['j-1']);
    expect(read.get('j-1')).toEqual([delta]);
  });

  it('archives a producer unless a newer archive of it is there', async () => {
    const { store } = newStore();
    await store.putArchive('pid_a', { range: 'r5', ver: 5 });
    await store.putArchive('pid_a', { range: 'r3', ver: 3 });
    expect((await store.getArchives(['pid_a', 'pid_b'])).get('pid_a')).toEqual({ range: 'r5', ver: 5 });
    await store.putArchive('pid_a', { range: 'r9', ver: 9 });
    expect(await store.getArchives(['pid_a'])).toEqual(new Map([['pid_a', { range: 'r9', ver: 9 }]]));
  });

  it('adds a flush to a counter once, however often it is applied, and a later flush after it', async () => {
    const { store, doc, table } = newStore();
    const counter = keyDayCounter(`acct-${run}`, 'key-w', '2026-12-07');
    const delta = (n: number): CounterDelta => ({
      counter,
      kind: 'keyDay',
      adds: { requests: n, units: n, h09: n },
      sets: { keyId: 'key-w' },
    });
    expect(await store.applyCounter(delta(4), 3)).toBe('applied');
    expect(await store.applyCounter(delta(4), 3)).toBe('skipped');
    // An older flush arriving late (a stalled taker): refused too.
    expect(await store.applyCounter(delta(4), 2)).toBe('skipped');
    expect(await store.applyCounter(delta(2), 5)).toBe('applied');
    const item = (await doc.send(new GetCommand({ TableName: table, Key: counter, ConsistentRead: true })))
      .Item;
    expect(item).toMatchObject({
      requests: 6,
      units: 6,
      h09: 6,
      keyId: 'key-w',
      [store.watermarkAttribute]: 5,
    });
  });

  it('applies a delta wider than one expression chunk by chunk, each chunk once', async () => {
    const { store, doc, table } = newStore();
    const counter = keyDayCounter(`acct-${run}`, 'key-wide', '2026-12-07');
    const adds: Record<string, number> = { requests: 250, units: 250 };
    for (let i = 0; i < 248; i++) adds[`route#GET /r${i}`] = 1;
    const wide: CounterDelta = { counter, kind: 'keyDay', adds, sets: { keyId: 'key-wide' } };
    expect(await store.applyCounter(wide, 1)).toBe('applied');
    expect(await store.applyCounter(wide, 1)).toBe('skipped');
    const item = (await doc.send(new GetCommand({ TableName: table, Key: counter, ConsistentRead: true })))
      .Item as Record<string, unknown>;
    expect(item.requests).toBe(250);
    const routes = Object.entries(item).filter(([name]) => name.startsWith('route#'));
    expect(routes).toHaveLength(248);
    expect(routes.every(([, count]) => count === 1)).toBe(true);
  });

  it('moves DONE forward only', async () => {
    const { store } = newStore();
    expect(await store.readDone()).toBe(0);
    await store.advanceDone(4);
    await store.advanceDone(2);
    await store.advanceDone(4);
    expect(await store.readDone()).toBe(4);
  });
});
