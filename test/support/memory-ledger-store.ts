import { DependencyError } from '../../services/platform/errors';
import type {
  ApplyOutcome,
  ArchivedRange,
  CounterDelta,
  LedgerHead,
  LedgerStore,
} from '../../services/usage/ledger-port';

/** The store operations, as the hooks see them. */
export type LedgerOp = keyof LedgerStore;

/**
 * What happens to one operation: `crash-before` (the process dies before sending it: it never
 * runs, and nothing of this connection runs again), `crash-after` (it ran, then the process died),
 * `fail-before` (refused as unavailable, not run), `fail-after` (it ran, and the caller sees an
 * unavailable error: an unknown outcome).
 */
export type LedgerFault = 'none' | 'crash-before' | 'crash-after' | 'fail-before' | 'fail-after';

export interface ConnectionHooks {
  /** Awaited before each operation runs: an interleaving point (e.g. `fc.scheduler().schedule`). */
  gate?: (op: LedgerOp) => Promise<unknown>;
  /** Decides each operation's fault. */
  fault?: (op: LedgerOp) => LedgerFault;
  /** Called once when a fault crashes this connection. */
  onCrash?: () => void;
}

/** One counter item: its numeric attributes, its set attributes and the ledger's watermark. */
export interface MemoryCounter {
  counter: CounterDelta['counter'];
  kind: CounterDelta['kind'];
  numbers: Record<string, number>;
  sets: Record<string, string | number>;
  wm: number;
}

const EMPTY_HEAD: LedgerHead = { ver: 0, seq: 0, pend: {}, prod: {} };
const MAX_MERGED = new Set(['lastUsedAt', 'expiresAt']);
const never = () => new Promise<never>(() => {});

/**
 * An in-memory ledger store with exactly the port's conditional semantics (services/usage/
 * ledger-port.ts), each operation atomic. `connect` gives one invocation its own view of it, with
 * fault and interleaving hooks; the store's own methods run with none.
 */
export class MemoryLedgerStore implements LedgerStore {
  head: LedgerHead | undefined;
  done = 0;
  readonly journals = new Map<string, CounterDelta[]>();
  readonly archives = new Map<string, ArchivedRange>();
  readonly counters = new Map<string, MemoryCounter>();

  /** `watermark: false` makes applyCounter ignore its condition: a broken store, for mutant tests. */
  constructor(private readonly conditions: { watermark: boolean } = { watermark: true }) {}

  async readHead(): Promise<LedgerHead> {
    return structuredClone(this.head ?? EMPTY_HEAD);
  }

  async readDone(): Promise<number> {
    return this.done;
  }

  async commitHead(expectedVer: number, next: LedgerHead): Promise<boolean> {
    if (next.ver !== expectedVer + 1)
      throw new Error(`a head commit from ${expectedVer} must write ${expectedVer + 1}`);
    if ((this.head?.ver ?? 0) !== expectedVer) return false;
    this.head = structuredClone(next);
    return true;
  }

  async putJournal(id: string, deltas: readonly CounterDelta[]): Promise<void> {
    this.journals.set(id, structuredClone([...deltas]));
  }

  async getJournals(ids: readonly string[]): Promise<Map<string, CounterDelta[]>> {
    const found = new Map<string, CounterDelta[]>();
    for (const id of ids) {
      const journal = this.journals.get(id);
      if (journal) found.set(id, structuredClone(journal));
    }
    return found;
  }

  async getArchives(pids: readonly string[]): Promise<Map<string, ArchivedRange>> {
    const found = new Map<string, ArchivedRange>();
    for (const pid of pids) {
      const archive = this.archives.get(pid);
      if (archive) found.set(pid, { ...archive });
    }
    return found;
  }

  async putArchive(pid: string, archive: ArchivedRange): Promise<void> {
    const stored = this.archives.get(pid);
    if (!stored || stored.ver < archive.ver) this.archives.set(pid, { ...archive });
  }

  async applyCounter(delta: CounterDelta, through: number): Promise<ApplyOutcome> {
    const id = `${delta.counter.pk}\u0000${delta.counter.sk}`;
    let item = this.counters.get(id);
    if (item && this.conditions.watermark && item.wm >= through) return 'skipped';
    if (!item) {
      item = { counter: { ...delta.counter }, kind: delta.kind, numbers: {}, sets: {}, wm: 0 };
      this.counters.set(id, item);
    }
    for (const [name, amount] of Object.entries(delta.adds))
      item.numbers[name] = (item.numbers[name] ?? 0) + amount;
    for (const [name, value] of Object.entries(delta.sets)) {
      const was = item.sets[name];
      if (!(MAX_MERGED.has(name) && was !== undefined && was > value)) item.sets[name] = value;
    }
    item.wm = through;
    return 'applied';
  }

  async advanceDone(to: number): Promise<void> {
    if (this.done < to) this.done = to;
  }

  /** A view of this store for one invocation: every operation passes its hooks first. */
  connect(hooks: ConnectionHooks): LedgerStore {
    let crashed = false;
    const run = async <T>(op: LedgerOp, execute: () => Promise<T>): Promise<T> => {
      if (crashed) return never();
      await hooks.gate?.(op);
      if (crashed) return never();
      const fault = hooks.fault?.(op) ?? 'none';
      const crash = () => {
        crashed = true;
        hooks.onCrash?.();
        return never();
      };
      if (fault === 'crash-before') return crash();
      if (fault === 'fail-before') throw new DependencyError('ledger store (refused)');
      const value = await execute();
      if (fault === 'crash-after') return crash();
      if (fault === 'fail-after') throw new DependencyError('ledger store (unknown outcome)');
      return value;
    };
    return {
      readHead: () => run('readHead', () => this.readHead()),
      readDone: () => run('readDone', () => this.readDone()),
      commitHead: (v, next) => run('commitHead', () => this.commitHead(v, next)),
      putJournal: (id, deltas) => run('putJournal', () => this.putJournal(id, deltas)),
      getJournals: (ids) => run('getJournals', () => this.getJournals(ids)),
      getArchives: (pids) => run('getArchives', () => this.getArchives(pids)),
      putArchive: (pid, archive) => run('putArchive', () => this.putArchive(pid, archive)),
      applyCounter: (delta, through) => run('applyCounter', () => this.applyCounter(delta, through)),
      advanceDone: (to) => run('advanceDone', () => this.advanceDone(to)),
    };
  }
}
