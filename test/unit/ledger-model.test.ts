import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FLUSH_PROFILES,
  type FlushPolicy,
  Ledger,
  type LedgerEvent,
} from '../../services/metering/ledger/ledger';
import { journalDeltas } from '../../services/usage/ledger-deltas';
import { type LedgerHead, type LedgerStore, mergeDeltas } from '../../services/usage/ledger-port';
import { type LedgerFault, MemoryLedgerStore } from '../support/memory-ledger-store';

/*
 * The model check of the design note (research/sqs-ledger-model/sim.py) as a property: producers
 * number their events, leave gaps and store retry copies; a standard queue reorders, redelivers
 * after the visibility timeout and sometimes leaves a ghost copy after a delete; up to 5
 * invocations run the real protocol (services/metering/ledger/) at once against the in-memory
 * store, interleaved by fast-check's scheduler at every store call, any of which may crash the
 * invocation or fail (before running, or after: an unknown outcome). Idle producers are archived,
 * flushes are grouped and taken over past their lease, a schedule runs the backstop. After the queue
 * drains and a last backstop, every stored (pid, seq) is counted exactly once: each counter item
 * holds exactly what the journal deltas of the stored events add up to.
 */

const T0 = Date.parse('2026-12-07T10:00:00Z');
const STEP_MS = 100;
const VISIBILITY_MS = 2_500;
const LEASE_MS = 3_000;
const PRODUCER_TTL_MS = 86_400_000;
const MAX_STEPS = 6_000;
/** Runs of the property; CI's unit project keeps it to a few seconds, `LEDGER_MODEL_RUNS=3000` for a longer check. */
const RUNS = Number(process.env.LEDGER_MODEL_RUNS ?? 150);

/** fresh as is; balanced and economy scaled to the model's few seconds. */
const POLICIES: Record<string, FlushPolicy> = {
  fresh: FLUSH_PROFILES.fresh,
  balanced: { name: 'balanced (model)', maxDelayMs: 1_000, maxEvents: 20 },
  economy: { name: 'economy (model)', maxDelayMs: 5_000, maxEvents: 60 },
};

interface Scenario {
  seed: number;
  producers: number;
  events: number;
  keys: number;
  batch: number;
  concurrency: number;
  pCrash: number;
  pFail: number;
  pRetry: number;
  pGhost: number;
  pLost: number;
  policy: keyof typeof POLICIES;
  archiveIdleMs: number;
  maxJournalBytes: number;
}

const scenarios = (overrides: Partial<Record<keyof Scenario, fc.Arbitrary<number | string>>> = {}) =>
  fc.record({
    seed: fc.integer(),
    producers: fc.integer({ min: 1, max: 5 }),
    events: fc.integer({ min: 10, max: 60 }),
    keys: fc.integer({ min: 1, max: 5 }),
    batch: fc.integer({ min: 1, max: 10 }),
    concurrency: fc.integer({ min: 1, max: 5 }),
    pCrash: fc.constantFrom(0, 0.02, 0.05, 0.1),
    pFail: fc.constantFrom(0, 0.02, 0.05),
    pRetry: fc.constantFrom(0, 0.1, 0.3),
    pGhost: fc.constantFrom(0, 0.05, 0.2),
    pLost: fc.constantFrom(0, 0.05, 0.1),
    policy: fc.constantFrom('fresh', 'balanced', 'economy'),
    archiveIdleMs: fc.constantFrom(1_000, 4_000),
    // Small enough, a batch commits in several chunks, and one failing fails the rest.
    maxJournalBytes: fc.constantFrom(300_000, 1_500),
    ...overrides,
  }) as fc.Arbitrary<Scenario>;

/** mulberry32: the queue's and the faults' randomness, from the scenario's seed. */
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n) };
}
type Random = ReturnType<typeof random>;

type Body = Omit<LedgerEvent, 'recordId'>;
interface Message {
  body: Body;
  visibleAt: number;
  receipt?: string;
}

/** SQS standard: any order, redelivery after the visibility timeout, a ghost copy now and then. */
class Queue {
  readonly messages: Message[] = [];
  #receipts = 0;
  constructor(
    private readonly rand: Random,
    private readonly pGhost: number,
  ) {}

  send(body: Body, visibleAt: number): void {
    this.messages.push({ body, visibleAt });
  }

  receive(now: number, max: number): LedgerEvent[] {
    const visible = this.messages.filter((m) => m.visibleAt <= now);
    for (let i = visible.length - 1; i > 0; i--) {
      const j = this.rand.int(i + 1);
      [visible[i], visible[j]] = [visible[j] as Message, visible[i] as Message];
    }
    return visible.slice(0, max).map((m) => {
      m.receipt = `r${++this.#receipts}`;
      m.visibleAt = now + VISIBILITY_MS;
      return { ...m.body, recordId: m.receipt };
    });
  }

  /** Deletes by receipt handle (a stale one, from before a redelivery, deletes nothing). */
  ack(receipt: string, now: number): void {
    const i = this.messages.findIndex((m) => m.receipt === receipt);
    const message = this.messages[i];
    if (!message) return;
    if (this.rand.next() < this.pGhost) {
      message.receipt = undefined;
      message.visibleAt = now + (5 + this.rand.int(55)) * STEP_MS;
    } else {
      this.messages.splice(i, 1);
    }
  }
}

/** A broken protocol or store, which the property must catch. */
interface Mutant {
  /** A wrapper around each invocation's store connection. */
  store?: (inner: LedgerStore) => LedgerStore;
  /** Builds the store with its watermark condition off. */
  noWatermark?: boolean;
  /** Journal ids derived from the journal's number, not fresh per attempt. */
  journalKeyedBySeq?: boolean;
  claimFlushWhileBusy?: boolean;
  ackBeforeCommit?: boolean;
}

/** Stored events: what the producers' publishes left in the queue (a lost publish is a gap). */
function publish(sc: Scenario, rand: Random, queue: Queue): Body[] {
  const seqs = new Array<number>(sc.producers).fill(0);
  const stored: Body[] = [];
  for (let i = 0; i < sc.events; i++) {
    const p = rand.int(sc.producers);
    const seq = (seqs[p] ?? 0) + 1;
    seqs[p] = seq;
    const k = rand.int(sc.keys);
    const at = T0 + i * 10;
    const body: Body = {
      pid: `pid${p}`,
      seq,
      at,
      ts: at - rand.int(5),
      accountId: `acct${k % 2}`,
      keyId: `key${k}`,
      units: 1 + rand.int(3),
      ...(i % 3 === 0 ? { route: '/v1/items/{id}', method: 'GET' } : {}),
    };
    if (rand.next() < sc.pLost) continue;
    stored.push(body);
    queue.send(body, T0 + rand.int(30) * STEP_MS);
    if (rand.next() < sc.pRetry) queue.send(body, T0 + rand.int(30) * STEP_MS);
  }
  return stored;
}

const drain = () => new Promise<void>((resolve) => setImmediate(resolve));

/** One run of the model; a description of what went wrong, or undefined when counted exactly. */
async function runModel(sc: Scenario, s: fc.Scheduler, mutant: Mutant = {}): Promise<string | undefined> {
  const rand = random(sc.seed);
  const queue = new Queue(rand, sc.pGhost);
  const stored = publish(sc, rand, queue);
  const store = new MemoryLedgerStore({ watermark: !mutant.noWatermark });
  let now = T0;
  let active = 0;
  let ids = 0;
  const errors: unknown[] = [];
  const fault = (): LedgerFault => {
    const r = rand.next();
    if (r < sc.pCrash) return r < sc.pCrash / 2 ? 'crash-before' : 'crash-after';
    if (r < sc.pCrash + sc.pFail) return r < sc.pCrash + sc.pFail / 2 ? 'fail-before' : 'fail-after';
    return 'none';
  };
  const ledger = (faults: boolean) => {
    const connection = store.connect({
      gate: (op) => s.schedule(Promise.resolve(), op),
      ...(faults ? { fault, onCrash: () => active-- } : {}),
    });
    return new Ledger({
      store: mutant.store ? mutant.store(connection) : connection,
      clock: { now: () => new Date(now) },
      policy: POLICIES[sc.policy],
      timers: {
        lateMs: PRODUCER_TTL_MS,
        leaseMs: LEASE_MS,
        archiveIdleMs: sc.archiveIdleMs,
        reorderHorizonMs: 2_000,
      },
      producerTtlMs: PRODUCER_TTL_MS,
      maxJournalBytes: sc.maxJournalBytes,
      newId: (journal) => (mutant.journalKeyedBySeq && journal !== undefined ? `J${journal}` : `id${++ids}`),
      sleep: () => s.schedule(Promise.resolve(), 'sleep'),
      unsafe: { claimFlushWhileBusy: mutant.claimFlushWhileBusy ?? false },
    });
  };
  const invoke = async (records: LedgerEvent[]) => {
    if (mutant.ackBeforeCommit) for (const r of records) queue.ack(r.recordId, now);
    const result = await ledger(true).commit(records);
    for (const id of [...result.committed, ...result.duplicates]) queue.ack(id, now);
  };
  const start = (work: () => Promise<unknown>) => {
    active++;
    work().then(
      () => active--,
      (error) => {
        errors.push(error);
        active--;
      },
    );
  };

  let steps = 0;
  for (; steps < MAX_STEPS; steps++) {
    now += STEP_MS;
    if (active < sc.concurrency && rand.next() < 0.5) {
      const records = queue.receive(now, sc.batch);
      if (records.length > 0) start(() => invoke(records));
      else if (rand.next() < 0.05) start(() => ledger(true).backstop());
    }
    if (s.count() > 0) await s.waitNext(1);
    else if (active === 0 && queue.messages.length === 0) break;
    await drain();
  }
  if (queue.messages.length > 0) return `${queue.messages.length} messages left after ${steps} steps`;

  // The schedule's last run, with every lease past: finishes what crashed invocations left.
  now += 2 * LEASE_MS;
  let settled = false;
  ledger(false)
    .backstop()
    .then(
      () => (settled = true),
      (error) => {
        errors.push(error);
        settled = true;
      },
    );
  while (!settled) {
    if (s.count() > 0) await s.waitNext(1);
    await drain();
  }
  if (errors.length > 0) return `invocations threw: ${errors.map(String).join('; ')}`;
  return countedExactly(store, stored);
}

function countedExactly(store: MemoryLedgerStore, stored: readonly Body[]): string | undefined {
  const head: LedgerHead = store.head ?? { ver: 0, seq: 0, pend: {}, prod: {} };
  if (store.done !== head.seq) return `journals ${store.done + 1}..${head.seq} never flushed`;
  const want = new Map(
    mergeDeltas([journalDeltas(stored, PRODUCER_TTL_MS)]).map((d) => [
      `${d.counter.pk} ${d.counter.sk}`,
      d.adds,
    ]),
  );
  const got = new Map(
    [...store.counters.values()].map((c) => [`${c.counter.pk} ${c.counter.sk}`, c.numbers]),
  );
  for (const [id, adds] of want) {
    const numbers = got.get(id) ?? {};
    for (const name of new Set([...Object.keys(adds), ...Object.keys(numbers)])) {
      if (adds[name] !== numbers[name])
        return `${id} ${name}: counted ${numbers[name]}, stored ${adds[name]}`;
    }
  }
  for (const id of got.keys()) if (!want.has(id)) return `${id} counted, nothing stored`;
  return undefined;
}

const property = (mutant?: Mutant, overrides?: Parameters<typeof scenarios>[0]) =>
  fc.asyncProperty(scenarios(overrides), fc.scheduler(), async (sc, s) => {
    const wrong = await runModel(sc, s, mutant);
    if (wrong) throw new Error(wrong);
  });

/** A commit that ignores the version it read: it replaces whatever head is there now. */
const headWithoutVersion = (inner: LedgerStore): LedgerStore => ({
  ...inner,
  commitHead: async (_expected, next) => {
    const current = await inner.readHead();
    return inner.commitHead(current.ver, { ...next, ver: current.ver + 1 });
  },
});

/**
 * A flush claim (a head write that names no new journal) made without the version condition, as
 * an `UpdateItem SET fl = …, ver = ver + 1` would be: the claim lands on whatever head is there.
 */
const flushClaimWithoutVersion = (inner: LedgerStore): LedgerStore => ({
  ...inner,
  commitHead: async (expected, next) => {
    const current = await inner.readHead();
    const claim =
      next.fl !== undefined && next.pend[next.seq] === current.pend[next.seq] && next.seq <= current.seq;
    if (!claim || !next.fl) return inner.commitHead(expected, next);
    const frm = next.fl.frm;
    const pend = Object.fromEntries(Object.entries(current.pend).filter(([j]) => Number(j) > frm));
    return inner.commitHead(current.ver, { ...current, ver: current.ver + 1, fl: next.fl, pend });
  },
});

/** Archiving that writes nothing: producers leave the head with no archive behind them. */
const noArchive = (inner: LedgerStore): LedgerStore => ({ ...inner, putArchive: async () => {} });

/** An archive read that is not consistent: it misses archives (here, all of them). */
const staleArchiveReads = (inner: LedgerStore): LedgerStore => ({
  ...inner,
  getArchives: async (pids) => {
    await inner.getArchives(pids);
    return new Map();
  },
});

describe('the SQS ledger protocol, model-checked', () => {
  it('counts every stored (pid, seq) exactly once, whatever the queue, the crashes and the interleaving', async () => {
    await fc.assert(property(), { numRuns: RUNS });
  }, 600_000);

  const mutants: [string, Mutant, Parameters<typeof scenarios>[0]?][] = [
    ['counter updates without the watermark condition', { noWatermark: true }],
    ['head commits without the version condition', { store: headWithoutVersion }],
    ['journals keyed by their number and overwritten', { journalKeyedBySeq: true }],
    ['a flush claimed while one is incomplete', { claimFlushWhileBusy: true }],
    [
      'producers dropped from the head without an archive',
      { store: noArchive },
      { archiveIdleMs: fc.constant(1_000) },
    ],
    ['the batch acknowledged before its commit', { ackBeforeCommit: true }, { pCrash: fc.constant(0.1) }],
    ['group-flush claims without the version condition', { store: flushClaimWithoutVersion }],
    ['archives read inconsistently', { store: staleArchiveReads }, { archiveIdleMs: fc.constant(1_000) }],
  ];
  for (const [name, mutant, overrides] of mutants) {
    it(`catches a broken variant: ${name}`, async () => {
      const out = await fc.check(property(mutant, overrides), { numRuns: 400, endOnFailure: true });
      if (process.env.LEDGER_MODEL_DEBUG)
        console.log(name, out.numRuns, String(out.errorInstance).slice(0, 300));
      expect(out.failed, `no counterexample in ${out.numRuns} runs`).toBe(true);
    }, 60_000);
  }
});
