import { expectedProducers, type Scenario, scenario } from './model';
import { largestConcurrency, planShards, type ShardPlan, shardEstimate } from './shard';
import { simulate } from './simulate';

export const RATES = [10, 100, 1_000, 10_000, 100_000] as const;
export const CONCURRENCIES = [1, 2, 5, 20, 100, 1_000] as const;
/** MaximumConcurrency values tried for the largest one a single head carries. */
export const MAX_CONCURRENCY_CANDIDATES = [2, 5, 10, 20, 30, 50, 100, 200, 500, 1_000] as const;

/** One row of the results: the scenario's inputs, what one head did, and the plan. */
export interface ContentionRow {
  sweep: string;
  rate: number;
  concurrency: number;
  producers: number;
  profile: string;
  windowMs: number;
  readMs: number;
  writeMs: number;
  batchEvents: number;
  commitsPerS: number;
  headWritesPerS: number;
  lostShare: number;
  meanAttempts: number;
  p99Attempts: number;
  gaveUp: number;
  headBytes: number;
  headWcuPerWrite: number;
  partitionWcuPerS: number;
  wcuShare: number;
  partitionRcuPerS: number;
  rcuShare: number;
  eventsPerS: number;
  keepsUp: boolean;
  overload: string[];
  /** L by the rule of thumb, and the fewest ledgers the simulation found to carry it. */
  ledgersRule: number;
  ledgers: number;
  verdict: string;
  shard: { rate: number; concurrency: number; producers: number; lostShare: number; wcuShare: number };
}

export interface ContentionResults {
  /** The largest MaximumConcurrency one head carries at each rate (balanced, W 1 s). */
  maxConcurrencyPerHead: { rate: number; concurrency: number | null }[];
  /** The rule of thumb's commits a second per head: one head at 1,000 events/s with the largest c it carries. */
  maxCommitsPerHead: number;
  rows: ContentionRow[];
}

const round = (x: number, digits = 3) => Number(x.toFixed(digits));

/** A head overloaded by races alone is relieved by fewer pollers as well as by more ledgers. */
function verdict(plan: ShardPlan, largestC: number | null | undefined): string {
  const racesOnly = plan.reasons.every((reason) => reason === 'races');
  if (plan.ledgers === 1 || !racesOnly || !largestC) return plan.verdict;
  return `MaximumConcurrency ≤ ${largestC}, or ${plan.verdict}`;
}

function row(
  sweep: string,
  plan: ShardPlan,
  maxCommitsPerHead: number,
  largestC?: number | null,
): ContentionRow {
  const { whole, shard } = plan;
  const s = whole.scenario;
  return {
    sweep,
    rate: s.rate,
    concurrency: s.concurrency,
    producers: s.producers,
    profile: s.profile,
    windowMs: s.windowMs,
    readMs: s.readMs,
    writeMs: s.writeMs,
    batchEvents: round(whole.batchEvents, 1),
    commitsPerS: round(whole.commitsPerS, 2),
    headWritesPerS: round(whole.headWritesPerS, 2),
    lostShare: round(whole.lostShare),
    meanAttempts: round(whole.meanAttempts, 2),
    p99Attempts: whole.p99Attempts,
    gaveUp: whole.gaveUp,
    headBytes: Math.round(whole.headBytes),
    headWcuPerWrite: round(whole.headWcuPerWrite, 2),
    partitionWcuPerS: round(whole.partitionWcuPerS, 1),
    wcuShare: round(whole.wcuShare),
    partitionRcuPerS: round(whole.partitionRcuPerS, 1),
    rcuShare: round(whole.rcuShare),
    eventsPerS: round(whole.eventsPerS, 1),
    keepsUp: whole.keepsUp,
    overload: plan.reasons,
    ledgersRule: shardEstimate(whole, maxCommitsPerHead),
    ledgers: plan.ledgers,
    verdict: verdict(plan, largestC),
    shard: {
      rate: round(shard.scenario.rate, 1),
      concurrency: shard.scenario.concurrency,
      producers: shard.scenario.producers,
      lostShare: round(shard.lostShare),
      wcuShare: round(shard.wcuShare),
    },
  };
}

/** The scenarios of each sweep beside the main R × c grid. */
function sideSweeps(): [string, Scenario][] {
  const producers = [60, 400, 2_000, 4_000, 8_000].map((n): [string, Scenario] => [
    'producers',
    scenario({ producers: n }),
  ]);
  const profiles = [5, 20].flatMap((concurrency): [string, Scenario][] => [
    ['profiles', scenario({ concurrency, profile: 'fresh' })],
    ['profiles', scenario({ concurrency, profile: 'balanced' })],
    ['profiles', scenario({ concurrency, profile: 'economy', windowMs: 5_000, measureMs: 80_000 })],
  ]);
  const latency = [5, 20].map((concurrency): [string, Scenario] => [
    'latency',
    scenario({ concurrency, readMs: 10, writeMs: 10 }),
  ]);
  return [...producers, ...profiles, ...latency];
}

/** Every sweep of `npm run bench:contention` (deterministic: same figures every run). */
export function runSweeps(log: (line: string) => void = () => {}): ContentionResults {
  const maxConcurrencyPerHead = RATES.map((rate) => ({
    rate,
    concurrency:
      largestConcurrency(
        scenario({ rate, producers: expectedProducers(rate) }),
        MAX_CONCURRENCY_CANDIDATES,
      ) ?? null,
  }));
  const ruleConcurrency = maxConcurrencyPerHead.find((m) => m.rate === 1_000)?.concurrency ?? 2;
  const maxCommitsPerHead = round(simulate(scenario({ concurrency: ruleConcurrency })).commitsPerS, 2);
  log(
    `largest c on one head: ${maxConcurrencyPerHead.map((m) => `${m.rate}/s → ${m.concurrency}`).join(', ')}`,
  );
  const grid: [string, Scenario][] = RATES.flatMap((rate) =>
    CONCURRENCIES.map((concurrency): [string, Scenario] => [
      'rate × c',
      scenario({ rate, concurrency, producers: expectedProducers(rate) }),
    ]),
  );
  const rows = [...grid, ...sideSweeps()].map(([sweep, s]) => {
    const largestC = maxConcurrencyPerHead.find((m) => m.rate === s.rate)?.concurrency;
    const r = row(sweep, planShards(s), maxCommitsPerHead, largestC);
    log(`${sweep}: ${s.rate}/s c ${s.concurrency} P ${s.producers} ${s.profile} → ${r.verdict}`);
    return r;
  });
  return { maxConcurrencyPerHead, maxCommitsPerHead, rows };
}
