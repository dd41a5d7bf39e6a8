import { AWS, batchCap, headBytes, type Scenario } from './model';
import { type ContentionResult, simulate } from './simulate';

/**
 * The share of the partition ceilings (and of the 400 KB item limit) one head may use. Half: the
 * event source scales up by 300 invocations a minute before anyone reacts, a throttled write is
 * retried and widens the race window for everyone, and adaptive capacity is no headroom (a
 * partition stays capped at 1,000 WCU/s and 3,000 RCU/s even holding one item).
 */
export const SAFE_FRACTION = 0.5;

/** Above this share of commit attempts lost to races, the p99 batch retries several times and a
 * burst tips the head into collapse (past ~50 % lost, the sweep shows give-ups). */
export const MAX_LOST_SHARE = 0.25;

/** Why one head does not carry a scenario (empty: it does). */
export function overload(r: ContentionResult): string[] {
  const reasons: string[] = [];
  if (r.wcuShare > SAFE_FRACTION) reasons.push('WCU');
  if (r.rcuShare > SAFE_FRACTION) reasons.push('RCU');
  if (headBytes(r.scenario.producers, 0) > SAFE_FRACTION * AWS.maxItemBytes) reasons.push('item size');
  if (r.lostShare > MAX_LOST_SHARE) reasons.push('races');
  if (r.gaveUp > 0) reasons.push('give-ups');
  if (!r.keepsUp) reasons.push('throughput');
  return reasons;
}

/**
 * The commits a second a scenario asks of its head: each poller commits once per window and
 * invocation (about 50 ms), but a batch holds at least one event and at most the batch cap.
 */
export function commitDemand(s: Scenario): number {
  const perPoller = 1_000 / (s.windowMs + 50);
  return Math.max(Math.min(s.concurrency * perPoller, s.rate), s.rate / batchCap(s));
}

/**
 * The rule of thumb: L = ⌈demand / (safe fraction × ceiling)⌉, over the head's write units a
 * second (the commits that land, at their head size, and DONE), the head's bytes against the
 * item limit, the commits a second against `maxCommitsPerHead` (what one head takes while losing
 * at most MAX_LOST_SHARE of its attempts: races have no AWS ceiling, they grow with the commits a
 * second each head takes), and the events a head cannot keep up with.
 */
export function shardEstimate(r: ContentionResult, maxCommitsPerHead: number): number {
  const s = r.scenario;
  const goodWcu = r.commitsPerS * r.headWcuPerWrite + r.flushesPerS;
  const demands = [
    goodWcu / (SAFE_FRACTION * AWS.partitionWcuPerS),
    headBytes(s.producers, 0) / (SAFE_FRACTION * AWS.maxItemBytes),
    commitDemand(s) / maxCommitsPerHead,
    r.keepsUp ? 0 : s.rate / Math.max(1, r.eventsPerS),
  ];
  return Math.max(1, Math.ceil(Math.max(...demands)));
}

/**
 * One of L ledgers: producers hash to L queues, so each gets 1/L of the events and of the active
 * producers, and its own event source with MaximumConcurrency ⌈c / L⌉ (≥ 2, the setting's floor),
 * so the concurrency in total stays c.
 */
export function shardScenario(s: Scenario, ledgers: number): Scenario {
  const concurrency = s.concurrency === 1 ? 1 : Math.max(2, Math.ceil(s.concurrency / ledgers));
  return {
    ...s,
    rate: s.rate / ledgers,
    producers: Math.max(1, Math.ceil(s.producers / ledgers)),
    concurrency,
  };
}

export interface ShardPlan {
  /** The scenario on one head. */
  whole: ContentionResult;
  /** Why one head is not enough (empty: it is). */
  reasons: string[];
  /** Ledgers needed (1: one head), and one of them simulated. */
  ledgers: number;
  shard: ContentionResult;
  verdict: string;
}

const MAX_LEDGERS = 4_096;

/**
 * Simulates the scenario on one head; if it is overloaded, finds the fewest ledgers L whose one
 * ledger (1/L of the events and producers, ⌈c / L⌉ pollers) carries its share: doubling L until
 * one does, then bisecting.
 */
export function planShards(s: Scenario): ShardPlan {
  const whole = simulate(s);
  const reasons = overload(whole);
  if (reasons.length === 0) return { whole, reasons, ledgers: 1, shard: whole, verdict: 'one head' };
  const carries = (ledgers: number) => {
    const shard = simulate(shardScenario(s, ledgers));
    return overload(shard).length === 0 ? shard : undefined;
  };
  let low = 1;
  let high = 2;
  let shard = carries(high);
  while (!shard && high < MAX_LEDGERS) {
    low = high;
    high *= 2;
    shard = carries(high);
  }
  if (!shard) {
    const last = simulate(shardScenario(s, high));
    return { whole, reasons, ledgers: high, shard: last, verdict: `over ${MAX_LEDGERS} ledgers` };
  }
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    const fits = carries(middle);
    if (fits) [high, shard] = [middle, fits];
    else low = middle;
  }
  return {
    whole,
    reasons,
    ledgers: high,
    shard,
    verdict: `shard into ${high} (c ${shard.scenario.concurrency} each)`,
  };
}

/**
 * What MaximumConcurrency buys at a rate: the largest of `candidates` a single head carries (one
 * ledger, the scenario's other settings), or undefined if none does.
 */
export function largestConcurrency(s: Scenario, candidates: readonly number[]): number | undefined {
  let best: number | undefined;
  for (const concurrency of [...candidates].sort((a, b) => a - b)) {
    if (overload(simulate({ ...s, concurrency })).length > 0) break;
    best = concurrency;
  }
  return best;
}
