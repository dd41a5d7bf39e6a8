import { flushDue } from '../../services/metering/ledger/policy';
import { percentile } from '../lib/stats';
import { busy, type FlushClaim, HeadPartition } from './head';
import { AWS, batchCap, distinctKeys, flushPolicy, LEDGER, type Scenario } from './model';
import { type Process, Scheduler } from './scheduler';

/** What one scenario did over its measured span, per second where it says so. */
export interface ContentionResult {
  scenario: Scenario;
  /** Mean events per batch the event source handed over, and the cap it could not exceed. */
  batchEvents: number;
  batchCap: number;
  /** Commits that landed, and every conditional head write (commits, lost ones, flush claims). */
  commitsPerS: number;
  headWritesPerS: number;
  /** Share of commit attempts that lost the race on `ver`; and of fresh-profile flush claims. */
  lostShare: number;
  lostClaimShare: number;
  /** Commit attempts per batch (1 = no lost race). */
  meanAttempts: number;
  p99Attempts: number;
  /** Batches that lost maxCommitAttempts races: not acknowledged, redelivered (wasted work). */
  gaveUp: number;
  /** Mean head size written, and its write units per write. */
  headBytes: number;
  headWcuPerWrite: number;
  /** Head + DONE (one partition key): write and read units a second, and their share of the ceiling. */
  partitionWcuPerS: number;
  partitionRcuPerS: number;
  wcuShare: number;
  rcuShare: number;
  flushesPerS: number;
  /** Events committed a second, against the rate offered. */
  eventsPerS: number;
  keepsUp: boolean;
}

interface Slot {
  backlog: number;
  since: number;
}

interface Run {
  s: Scenario;
  clock: Scheduler;
  ledger: HeadPartition;
  cap: number;
  attempts: number[];
  batchSizes: number[];
  committedEvents: number;
  gaveUp: number;
}

/**
 * Simulates one ledger on AWS: `concurrency` event source pollers each gather a batch for the
 * batching window (or until the batch is full), then invoke the consumer, which commits the batch
 * through the head as services/metering/ledger/commit.ts does (read head and DONE, write the journal
 * once, compute, conditional write; a lost race re-reads) and takes part in flushes as the profile
 * says. Deterministic for a scenario (seed included).
 */
export function simulate(s: Scenario): ContentionResult {
  const clock = new Scheduler();
  const ledger = new HeadPartition(s, clock);
  const run: Run = {
    s,
    clock,
    ledger,
    cap: batchCap(s),
    attempts: [],
    batchSizes: [],
    committedEvents: 0,
    gaveUp: 0,
  };
  for (let i = 0; i < s.concurrency; i++) clock.spawn(poller(run, { backlog: 0, since: 0 }));
  clock.run(s.warmupMs + s.measureMs);
  return summarize(run);
}

const measuring = (run: Run) => run.ledger.measuring();

/** Messages reach each poller at rate / concurrency; they wait in its share of the queue while it is busy. */
function accrue(run: Run, slot: Slot): void {
  slot.backlog += ((run.s.rate / run.s.concurrency) * (run.clock.now - slot.since)) / 1_000;
  slot.since = run.clock.now;
}

/** How long the next batch gathers: the window, cut short once the batch is full; at least one message. */
function gatherMs(run: Run, slot: Slot): number {
  const perMs = run.s.rate / run.s.concurrency / 1_000;
  const toFull = Math.max(0, (run.cap - slot.backlog) / perMs);
  const toOne = Math.max(0, (1 - slot.backlog) / perMs);
  return Math.max(toOne, Math.min(run.s.windowMs, toFull));
}

function* poller(run: Run, slot: Slot): Process {
  // Pollers start out of phase: the event source does not align their windows, and when a poller
  // sees less than a message a window its first message is as far off as its later ones.
  yield run.ledger.random() * run.s.windowMs;
  slot.since = run.clock.now;
  const perWindow = (run.s.rate / run.s.concurrency) * (run.s.windowMs / 1_000);
  if (perWindow < 1) slot.backlog = run.ledger.random();
  for (;;) {
    const jitter = (2 * run.ledger.random() - 1) * run.s.gatherJitterMs;
    yield Math.max(0, gatherMs(run, slot) + jitter);
    accrue(run, slot);
    const events = Math.min(run.cap, Math.floor(slot.backlog));
    slot.backlog -= events;
    if (events === 0) continue;
    if (measuring(run)) run.batchSizes.push(events);
    yield* invocation(run, slot, events);
  }
}

interface Committed {
  j: number;
  claim?: FlushClaim;
}

/** One invocation of the consumer for a batch of `events` distinct new events. */
function* invocation(run: Run, slot: Slot, events: number): Process {
  const { s, ledger } = run;
  const started = measuring(run);
  yield ledger.latency(s.invokeMs);
  let committed: Committed | undefined;
  let attempts = 0;
  let journalWritten = false;
  while (!committed && attempts < LEDGER.maxCommitAttempts) {
    attempts++;
    const view = yield* ledger.readView();
    if (!journalWritten) {
      // The journal (k deltas of ~120 B) goes to its own partition, once: a retry reuses it.
      yield ledger.latency(s.writeMs, distinctKeys(events, s.keys) * 120);
      journalWritten = true;
    }
    yield ledger.latency(s.computeMs + s.computeMsPerEvent * events);
    ledger.count('commitAttempts');
    committed = yield* ledger.writeHead(view.ver, () => commitChange(run, view, events));
    if (!committed) ledger.count('lostCommits');
  }
  if (started) run.attempts.push(attempts);
  if (!committed) {
    if (measuring(run)) run.gaveUp++;
    // Not acknowledged: the messages come back once their visibility timeout passes.
    run.clock.at(run.clock.now + s.visibilityMs, () => {
      accrue(run, slot);
      slot.backlog += events;
    });
    return;
  }
  if (measuring(run)) run.committedEvents += events;
  if (committed.claim) yield* ledger.runFlush(committed.claim);
  else if (s.profile === 'fresh') yield* ledger.flushThrough(committed.j);
}

/** The commit's change of the head: journal j named, and a flush claimed when one is due and none runs. */
function commitChange(run: Run, view: { done: number; fl?: FlushClaim }, events: number): Committed {
  const head = run.ledger.head;
  const now = run.clock.now;
  head.seq++;
  head.pending.push({ id: `j${head.seq}`, events, at: now });
  const due = !busy(view) && flushDue(flushPolicy(run.s.profile), head.pending, now);
  return due ? { j: head.seq, claim: run.ledger.claimAll(view.done) } : { j: head.seq };
}

function summarize(run: Run): ContentionResult {
  const { s, ledger } = run;
  const t = ledger.tally;
  const perS = (n: number) => n / (s.measureMs / 1_000);
  const sorted = [...run.attempts].sort((a, b) => a - b);
  const mean = (xs: readonly number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
  const wcu = perS(t.headWcu + t.doneWcu);
  const rcu = perS(t.headRcu + t.doneRcu);
  const eventsPerS = perS(run.committedEvents);
  return {
    scenario: s,
    batchEvents: mean(run.batchSizes),
    batchCap: run.cap,
    commitsPerS: perS(t.commitAttempts - t.lostCommits),
    headWritesPerS: perS(t.headWrites),
    lostShare: t.commitAttempts === 0 ? 0 : t.lostCommits / t.commitAttempts,
    lostClaimShare: t.claimAttempts === 0 ? 0 : t.lostClaims / t.claimAttempts,
    meanAttempts: mean(run.attempts),
    p99Attempts: sorted.length === 0 ? 0 : percentile(sorted, 99),
    gaveUp: run.gaveUp,
    headBytes: t.headWrites === 0 ? 0 : t.headBytesWritten / t.headWrites,
    headWcuPerWrite: t.headWrites === 0 ? 0 : t.headWcu / t.headWrites,
    partitionWcuPerS: wcu,
    partitionRcuPerS: rcu,
    wcuShare: wcu / AWS.partitionWcuPerS,
    rcuShare: rcu / AWS.partitionRcuPerS,
    flushesPerS: perS(t.flushes),
    eventsPerS,
    keepsUp: eventsPerS >= 0.9 * s.rate,
  };
}
