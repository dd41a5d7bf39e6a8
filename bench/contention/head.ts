import type { PendingJournal } from '../../services/metering/ledger/policy';
import { seededRandom } from '../lib/stats';
import { consistentReadUnits, distinctKeys, headBytes, LEDGER, type Scenario, writeUnits } from './model';
import type { Process, Scheduler } from './scheduler';

/** A flush claimed in the head: journals (frm, to] holding `events` events. */
export interface FlushClaim {
  frm: number;
  to: number;
  events: number;
}

/** The head and DONE items as the store holds them (only what contention depends on). */
export interface HeadState {
  ver: number;
  /** Last committed journal. */
  seq: number;
  /** DONE.through. */
  done: number;
  fl?: FlushClaim;
  /** Committed journals not yet in a flush claim (what the flush policy looks at). */
  pending: PendingJournal[];
  /** pend entries ≤ this were pruned by the last claim; the head holds seq − pendFloor entries. */
  pendFloor: number;
}

/** What an invocation saw when it read the head, then DONE (readView reads them one after the other). */
export interface View {
  ver: number;
  seq: number;
  done: number;
  fl?: FlushClaim;
}

/** Counters of the measured span (calls outside it are not counted). */
export interface Tally {
  commitAttempts: number;
  lostCommits: number;
  claimAttempts: number;
  lostClaims: number;
  headWcu: number;
  doneWcu: number;
  headRcu: number;
  doneRcu: number;
  headWrites: number;
  headBytesWritten: number;
  flushes: number;
}

const emptyTally = (): Tally => ({
  commitAttempts: 0,
  lostCommits: 0,
  claimAttempts: 0,
  lostClaims: 0,
  headWcu: 0,
  doneWcu: 0,
  headRcu: 0,
  doneRcu: 0,
  headWrites: 0,
  headBytesWritten: 0,
  flushes: 0,
});

export const busy = (view: { fl?: FlushClaim; done: number }): boolean =>
  view.fl !== undefined && view.fl.to > view.done;

/**
 * One ledger's head partition on AWS, as the simulation's processes see it: the calls the ledger
 * makes on it (services/metering/ledger/: readView, commitHead, runFlush, flushThrough), each
 * with a log-normal latency that grows with the item's size, and the capacity units each consumes.
 */
export class HeadPartition {
  readonly head: HeadState = { ver: 0, seq: 0, done: 0, pending: [], pendFloor: 0 };
  readonly tally = emptyTally();
  readonly random: () => number;

  constructor(
    readonly s: Scenario,
    readonly clock: Scheduler,
  ) {
    this.random = seededRandom(s.seed);
  }

  measuring(): boolean {
    const now = this.clock.now;
    return now >= this.s.warmupMs && now < this.s.warmupMs + this.s.measureMs;
  }

  count(field: keyof Tally, amount = 1): void {
    if (this.measuring()) this.tally[field] += amount;
  }

  headSize(): number {
    return headBytes(this.s.producers, this.head.seq - this.head.pendFloor);
  }

  /** One call's latency: the median plus the per-KB term, times a log-normal draw. */
  latency(medianMs: number, bytes = 0): number {
    const u = Math.max(this.random(), 1e-12);
    const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.random());
    return (medianMs + (this.s.msPerKb * bytes) / 1_024) * Math.exp(this.s.latencySigma * z);
  }

  /** readView: a consistent GetItem of HEAD, then one of DONE. */
  *readView(): Process<View> {
    const bytes = this.headSize();
    const headLatency = this.latency(this.s.readMs, bytes);
    yield headLatency / 2;
    const { ver, seq, fl } = this.head;
    this.count('headRcu', consistentReadUnits(bytes));
    yield headLatency / 2;
    const doneLatency = this.latency(this.s.readMs);
    yield doneLatency / 2;
    const done = this.head.done;
    this.count('doneRcu');
    yield doneLatency / 2;
    return { ver, seq, done, ...(fl ? { fl } : {}) };
  }

  /**
   * The conditional PutItem of the head (`ver = :v`): applies `change` and bumps the version when
   * nobody wrote since `ver` was read, and returns what `change` returned; undefined when the race
   * was lost. A lost write is billed too (by the item's size).
   */
  *writeHead<T extends object>(ver: number, change: () => T): Process<T | undefined> {
    const before = this.headSize();
    const latency = this.latency(this.s.writeMs, before);
    yield latency / 2;
    const won = this.head.ver === ver;
    let result: T | undefined;
    if (won) {
      result = change();
      this.head.ver++;
    }
    const after = this.headSize();
    this.count('headWcu', writeUnits(before, won ? after : before));
    this.count('headWrites');
    this.count('headBytesWritten', Math.max(before, after));
    yield latency / 2;
    return result;
  }

  /** Claims a flush of every journal committed after DONE (the caller checked the head is not busy). */
  claimAll(done: number): FlushClaim {
    const head = this.head;
    const claim = { frm: done, to: head.seq, events: head.pending.reduce((sum, j) => sum + j.events, 0) };
    head.fl = claim;
    head.pending = [];
    head.pendFloor = done;
    return claim;
  }

  /** runFlush: read pend, get the journals, apply the counters 16 at a time, then DONE. */
  *runFlush(claim: FlushClaim): Process {
    yield* this.readView();
    yield this.latency(this.s.readMs) * Math.ceil((claim.to - claim.frm) / 100);
    let counters = Math.ceil(distinctKeys(claim.events, this.s.keys));
    while (counters > 0) {
      const round = Math.min(counters, LEDGER.counterConcurrency);
      let slowest = 0;
      for (let i = 0; i < round; i++) slowest = Math.max(slowest, this.latency(this.s.writeMs));
      yield slowest;
      counters -= round;
    }
    const latency = this.latency(this.s.writeMs);
    yield latency / 2;
    this.head.done = Math.max(this.head.done, claim.to);
    this.count('doneWcu');
    this.count('flushes');
    yield latency / 2;
  }

  /**
   * flushThrough (the fresh profile, by a commit that could not claim a flush itself): until DONE
   * covers journal j, wait for the flush in progress with a doubling poll, then claim one with a
   * head write of its own (contended like a commit) and run it. Gives up after a lease.
   */
  *flushThrough(j: number): Process {
    const deadline = this.clock.now + LEDGER.leaseMs;
    let waits = 0;
    for (let round = 0; round < 1_000; round++) {
      const view = yield* this.readView();
      if (view.done >= j) return;
      if (busy(view)) {
        if (this.clock.now >= deadline) return;
        yield LEDGER.pollMs * 2 ** Math.min(3, waits++);
        continue;
      }
      this.count('claimAttempts');
      const claim = yield* this.writeHead(view.ver, () => this.claimAll(view.done));
      if (claim) yield* this.runFlush(claim);
      else this.count('lostClaims');
    }
  }
}
