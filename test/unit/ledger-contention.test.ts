import { describe, expect, it } from 'vitest';
import { batchCap, headBytes, scenario, writeUnits } from '../../bench/contention/model';
import { Scheduler } from '../../bench/contention/scheduler';
import {
  commitDemand,
  overload,
  planShards,
  shardEstimate,
  shardScenario,
} from '../../bench/contention/shard';
import { simulate } from '../../bench/contention/simulate';

// Short spans keep the suite fast; the figures of docs/metering.md come from `npm run bench:contention`.
const quick = { warmupMs: 2_000, measureMs: 10_000 };

describe('the head contention simulation (bench/contention)', () => {
  it('is deterministic for a seed, and another seed draws other latencies', () => {
    const s = scenario({ ...quick, concurrency: 20 });
    expect(simulate(s)).toEqual(simulate(s));
    expect(simulate({ ...s, seed: 2 }).headWritesPerS).not.toBe(simulate(s).headWritesPerS);
  });

  it('with one poller no commit ever loses a race', () => {
    for (const rate of [10, 1_000, 10_000]) {
      const r = simulate(scenario({ ...quick, rate, concurrency: 1 }));
      expect(r.commitsPerS).toBeGreaterThan(0);
      expect(r.lostShare).toBe(0);
      expect(r.p99Attempts).toBe(1);
      expect(r.gaveUp).toBe(0);
      expect(r.keepsUp).toBe(true);
    }
  });

  it('contention rises with the pollers at a fixed rate, up to give-ups past what one head serializes', () => {
    const runs = [2, 5, 20, 100].map((concurrency) => simulate(scenario({ ...quick, concurrency })));
    const lost = runs.map((r) => r.lostShare);
    for (let i = 1; i < lost.length; i++) expect(lost[i]).toBeGreaterThan(lost[i - 1] as number);
    const [two, , , hundred] = runs;
    expect(two?.gaveUp).toBe(0);
    // A head takes a few dozen read-modify-writes a second; 100 pollers ask for ~95 commits a second.
    expect(hundred?.gaveUp).toBeGreaterThan(0);
    expect(hundred?.p99Attempts).toBe(20);
    expect(hundred?.wcuShare).toBeGreaterThan(1);
  });

  it('forms batches of about rate × window / pollers, capped by BatchSize and the 6 MB payload', () => {
    const s = scenario({ ...quick, rate: 1_000, concurrency: 5 });
    expect(simulate(s).batchEvents).toBeGreaterThan(180);
    expect(simulate(s).batchEvents).toBeLessThan(240);
    const cap = batchCap(s);
    expect(cap).toBe(Math.floor((6 * 1_024 * 1_024) / s.recordBytes));
    expect(simulate(scenario({ ...quick, rate: 100_000, concurrency: 2, producers: 60 })).batchEvents).toBe(
      cap,
    );
  });

  it('bills a head write by the larger of its images in 1 KB units; producers grow the head', () => {
    expect(headBytes(60, 0)).toBe(3_200);
    expect(writeUnits(headBytes(60, 0), headBytes(60, 1))).toBe(4);
    expect(writeUnits(10, 20)).toBe(1);
    const small = simulate(scenario({ ...quick, producers: 60 }));
    const large = simulate(scenario({ ...quick, producers: 2_000 }));
    expect(large.headWcuPerWrite).toBeGreaterThan(20 * small.headWcuPerWrite);
  });
});

describe('the sharding rule', () => {
  it("gives one ledger in the benchmark's regime (1,000 events/s, up to 5 pollers)", () => {
    for (const concurrency of [1, 2, 5]) {
      const s = scenario({ ...quick, rate: 1_000, concurrency, producers: 60 });
      const plan = planShards(s);
      expect(plan.reasons).toEqual([]);
      expect(plan.ledgers).toBe(1);
      expect(plan.verdict).toBe('one head');
      expect(shardEstimate(plan.whole, 10)).toBe(1);
    }
  });

  it('shards a head past the write ceiling, and one of the L ledgers then carries its share', () => {
    const s = scenario({ ...quick, rate: 1_000, concurrency: 5, producers: 4_000 });
    const plan = planShards(s);
    expect(plan.reasons).toContain('WCU');
    expect(plan.ledgers).toBeGreaterThan(1);
    expect(overload(plan.shard)).toEqual([]);
    expect(plan.shard.scenario).toEqual(shardScenario(s, plan.ledgers));
    expect(shardEstimate(plan.whole, 10)).toBeGreaterThan(1);
  });

  it('splits events, producers and pollers over the ledgers (MaximumConcurrency ≥ 2 each)', () => {
    const s = scenario({ rate: 10_000, concurrency: 20, producers: 600 });
    expect(shardScenario(s, 4)).toMatchObject({ rate: 2_500, concurrency: 5, producers: 150 });
    expect(shardScenario(s, 40).concurrency).toBe(2);
    expect(commitDemand(scenario({ rate: 10, concurrency: 1_000 }))).toBe(10);
  });
});

describe('the scheduler', () => {
  it('runs steps in time order, ties in the order they were scheduled', () => {
    const clock = new Scheduler();
    const seen: string[] = [];
    clock.at(5, () => seen.push('b'));
    clock.at(1, () => seen.push('a'));
    clock.at(5, () => seen.push('c'));
    clock.at(50, () => seen.push('late'));
    clock.run(10);
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(clock.now).toBe(10);
  });
});
