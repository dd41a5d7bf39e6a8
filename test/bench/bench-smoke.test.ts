import { describe, expect, it } from 'vitest';
import { costAt, crossovers, measuredInputs } from '../../bench/cost-model';
import { headlineTable, renderBenchmarks } from '../../bench/lib/report';
import { eventsFor, PROFILES, runBench } from '../../bench/lib/run-bench';
import { type BenchResults, TARGETS, type Target, TRANSPORTS } from '../../bench/lib/types';

/**
 * CI's smoke run of `npm run bench`: the same code with a few seconds of load and 2,000 events per
 * design, on a local stack of its own. It checks that every benchmark runs and that every count is
 * exact: never how fast anything was (the machine is shared; timings are for BENCHMARKS.md).
 */
describe('benchmarks (smoke)', () => {
  it('run end to end, count every accepted request exactly once, and feed the cost model', async () => {
    const lines: string[] = [];
    const results: BenchResults = await runBench({
      settings: PROFILES.smoke,
      log: (line) => lines.push(line),
    });
    const events = PROFILES.smoke.writeEvents;
    const baselineEvents = eventsFor(PROFILES.smoke, 'baseline');

    // Exactness, after every phase: usage owners see == 200s the key APIs answered.
    expect(results.exactChecks.length).toBeGreaterThanOrEqual(6);
    expect(results.exactChecks.filter((c) => !c.ok)).toEqual([]);
    expect(results.exact).toBe(true);

    // HTTP: every design answered, with 200s only.
    for (const target of TARGETS) {
      const http = results.http[target];
      expect(http.runs).toHaveLength(PROFILES.smoke.rounds);
      for (const run of http.runs) {
        expect(run.ok200).toBeGreaterThan(0);
        expect(run.requests - run.ok200, `${target} non-200s`).toBe(0);
      }
      expect(http.sequential.handlerMs.count).toBe(PROFILES.smoke.sequentialRequests);
    }

    // Write amplification: counts, not timings.
    const w = results.writes;
    for (const target of TARGETS) expect(w[target].events, target).toBe(eventsFor(PROFILES.smoke, target));
    // The baseline: one GSI query and one update per request, 2 write units each (ALL projection).
    expect(w.baseline.dynamodb['DynamoDB.Query']).toBe(baselineEvents);
    expect(w.baseline.dynamodb['DynamoDB.UpdateItem']).toBe(baselineEvents);
    expect(w.baseline.perEvent.writeUnits).toBe(2);
    for (const transport of TRANSPORTS) {
      const run = w[transport];
      expect(run.exact.ok).toBe(true);
      expect(run.perKeyExact, transport).toBe(true);
      // At least once: a publish retried after a client timeout can deliver an event twice (the
      // consumer drops the copy by its id, as the exact checks above show), so these are floors.
      expect(run.metering?.records, transport).toBeGreaterThanOrEqual(events);
      expect(run.dynamodb['DynamoDB.PutItem'] ?? 0, transport).toBe(0);
      if (transport === 'sqs') {
        // One dedupe mark per event, in transactions that also carry the counters...
        expect(run.dynamodb['DynamoDB.TransactWriteItems.Put'], transport).toBeGreaterThanOrEqual(events);
        // ...aggregated: far fewer write requests than events, and no other kind of write.
        expect(run.perEvent.writeRequests, transport).toBeLessThan(0.5);
        expect(run.dynamodb['DynamoDB.UpdateItem'] ?? 0).toBe(0);
        expect(run.perEvent.writeUnits, transport).toBeGreaterThan(2);
      } else {
        // No per-event write and no transaction: one conditional UpdateItem per counter a batch
        // touches, at most three per event (key day, key total, account day).
        expect(run.dynamodb['DynamoDB.TransactWriteItems'] ?? 0, transport).toBe(0);
        expect(run.dynamodb['DynamoDB.UpdateItem'], transport).toBeGreaterThan(0);
        expect(run.dynamodb['DynamoDB.UpdateItem'], transport).toBeLessThanOrEqual(3 * events);
      }
    }
    expect(w.sqs.transport['SQS.SendMessage']).toBeGreaterThanOrEqual(events);
    expect(w.kinesis.transport['Kinesis.PutRecord']).toBeGreaterThanOrEqual(events);

    // CPU and freshness produced their samples.
    expect(results.cpu.rows.map((r) => r.name)).toEqual(
      expect.arrayContaining(['sha256', 'verify', 'handler', 'handler-emf']),
    );
    for (const row of results.cpu.rows) expect(row.nsPerOp).toBeGreaterThan(0);
    for (const transport of TRANSPORTS) {
      expect(results.freshness[transport].samples).toBe(PROFILES.smoke.freshnessSamples);
    }

    // The cost model and the report take these results as they are.
    const inputs = Object.fromEntries(TARGETS.map((t) => [t, measuredInputs(results, t)])) as Record<
      Target,
      ReturnType<typeof measuredInputs>
    >;
    for (const rps of [10, 100, 1000]) {
      const table = costAt(inputs, rps);
      for (const target of TARGETS)
        expect(Number.isFinite(table.total[target]), `${target} @ ${rps}`).toBe(true);
    }
    expect(crossovers(inputs).albOverRestApi).toBeGreaterThan(0);
    expect(headlineTable(results)).toContain('Tollgate, Kinesis');
    expect(renderBenchmarks(results)).toContain('## 5. Cost model');
  }, 600_000);
});
