import { describe, expect, it } from 'vitest';
import { costAt, crossovers, inputsAt, measuredInputs, meteringOverhead } from '../../bench/cost-model';
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
    // Each transport on its own (its own owners and keys), per key and per account, after every
    // phase: a double count on one cannot cancel a loss on the other.
    for (const transport of TRANSPORTS) {
      expect(results.exactByTransport[transport], transport).toBe(true);
      for (const check of results.exactChecks) {
        const own = check.transports[transport];
        expect(own, `${check.phase}: ${transport}`).toBeDefined();
        expect(own?.ok, `${check.phase}: ${transport} (${own?.mismatches.join('; ')})`).toBe(true);
        expect(own?.keysWrong, `${check.phase}: ${transport} keys`).toBe(0);
        expect(own?.accountsWrong, `${check.phase}: ${transport} accounts`).toBe(0);
        expect(own?.counted, `${check.phase}: ${transport}`).toBe(own?.answered);
        expect(own?.keys, transport).toBeGreaterThan(0);
        expect(own?.accounts, transport).toBeGreaterThan(0);
      }
      expect(results.exactChecks.at(-1)?.transports[transport]?.answered, transport).toBeGreaterThan(0);
    }

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
      if (transport === 'sqs') {
        // The gate numbers its events, so every one goes through the ledger: no mark and no
        // transaction; a journal and a head write per batch (PutItem), and counters per flush...
        expect(run.dynamodb['DynamoDB.TransactWriteItems'] ?? 0, transport).toBe(0);
        const batches = run.metering?.invocations ?? 0;
        expect(run.dynamodb['DynamoDB.PutItem'], transport).toBeGreaterThan(0);
        expect(run.dynamodb['DynamoDB.PutItem'], transport).toBeLessThanOrEqual(4 * batches);
        expect(run.dynamodb['DynamoDB.UpdateItem'], transport).toBeGreaterThan(0);
        // ...aggregated: far fewer write requests than events, below the marks' floor of 2 units.
        expect(run.perEvent.writeRequests, transport).toBeLessThan(0.5);
        expect(run.perEvent.writeUnits, transport).toBeLessThan(2);
      } else {
        expect(run.dynamodb['DynamoDB.PutItem'] ?? 0, transport).toBe(0);
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
    const answering = [
      'handler',
      'handler-body',
      'handler-emf',
      'gate-alb',
      'gate-alb-plan',
      'gate-hono',
      'hono-bare',
    ];
    expect(results.cpu.rows.map((r) => r.name)).toEqual(
      expect.arrayContaining(['sha256', 'verify', ...answering]),
    );
    for (const row of results.cpu.rows) {
      expect(row.nsPerOp, row.name).toBeGreaterThan(0);
      expect(Number.isFinite(row.nsPerOp), row.name).toBe(true);
      expect(Number.isFinite(row.cpuNsPerOp), row.name).toBe(true);
    }
    // Every answer of the rows that answer HTTP was a 200, the unmeasured round's included.
    for (const name of answering) {
      const row = results.cpu.rows.find((r) => r.name === name);
      expect(row, name).toBeDefined();
      if (!row) continue;
      expect(Object.keys(row.statuses ?? {}), name).toEqual(['200']);
      expect(row.statuses?.['200'], name).toBe(PROFILES.smoke.cpuMinIterations + row.iterations * row.rounds);
    }
    // The gate rows held against the key-api check: the ratios exist; whether they meet the target
    // is BENCHMARKS.md's to say (a timing, never a test's).
    const gate = results.cpu.gate;
    expect(gate?.against).toBe('handler');
    for (const ratio of [
      gate?.alb.cpuRatio,
      gate?.alb.wallRatio,
      gate?.hono.cpuRatio,
      gate?.hono.wallRatio,
      gate?.plan?.cpuRatio,
      gate?.plan?.wallRatio,
    ]) {
      expect(Number.isFinite(ratio)).toBe(true);
      expect(ratio).toBeGreaterThan(0);
    }
    expect(typeof gate?.met).toBe('boolean');
    expect(typeof gate?.plan?.met).toBe('boolean');
    for (const transport of TRANSPORTS) {
      expect(results.freshness[transport].samples).toBe(PROFILES.smoke.freshnessSamples);
    }

    // Sustained load (wrk), each transport alone: accepted, some 401s on the bogus keys, drained,
    // exact per key and per account, and wrk's own per-key tally within key-api's. wrk sends from
    // one address, so once the bogus keys have spent that address's guess budget (20 lookups that
    // find nothing per minute) they get 429 `too_many_guesses` instead: the product as shipped.
    for (const transport of TRANSPORTS) {
      const run = results.sustained[transport];
      expect(run.wrk.statuses['200'] ?? 0, transport).toBeGreaterThan(0);
      expect(run.wrk.statuses['401'] ?? 0, `${transport} bogus keys`).toBeGreaterThan(0);
      expect(
        Object.keys(run.wrk.statuses).filter((s) => s !== '200' && s !== '401' && s !== '429'),
        transport,
      ).toEqual([]);
      expect(run.wrk.unparsed200, transport).toBe(0);
      expect(run.client.agrees, transport).toBe(true);
      expect(run.acceptedPerSec, transport).toBeGreaterThan(0);
      expect(run.backlogAtEnd, transport).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(run.drainMs), `${transport} drained`).toBe(true);
      expect(run.lagDuringMs.count + run.lagAfterMs.count, transport).toBeGreaterThan(0);
      expect(run.exact.ok, `${transport}: ${run.exact.mismatches.join('; ')}`).toBe(true);
      expect(run.exact.keys, transport).toBe(PROFILES.smoke.sustained.keys);
      expect(run.exact.accounts, transport).toBe(PROFILES.smoke.sustained.accounts);
      // The phase's keys were each used once before the load (cache and JIT warm), then counted.
      expect(run.exact.counted, transport).toBe(run.accepted + run.keys);
    }

    // Events straight to each transport at steady rates: every one counted exactly, write units measured.
    for (const transport of TRANSPORTS) {
      const runs = results.paced[transport];
      // The default profile's run at every rate, then (SQS) the other ledger profiles' runs.
      expect(
        runs.map((p) => `${p.rate}${p.ledgerFlush === undefined ? '' : ` ${p.ledgerFlush}`}`),
        transport,
      ).toEqual([
        ...PROFILES.smoke.paced.runs.map((p) => `${p.rate}`),
        ...(transport === 'sqs'
          ? (PROFILES.smoke.paced.ledgerProfiles ?? []).map((p) => `${p.rate} ${p.ledgerFlush}`)
          : []),
      ]);
      for (const run of runs) {
        expect(run.events, `${transport} @ ${run.rate}`).toBeGreaterThan(0);
        expect(run.exact.ok, `${transport} @ ${run.rate}: ${run.exact.mismatches.join('; ')}`).toBe(true);
        expect(run.exact.counted, `${transport} @ ${run.rate}`).toBe(run.events);
        expect(run.perEvent.writeUnits, `${transport} @ ${run.rate}`).toBeGreaterThan(0);
        expect(run.metering.avgBatch, `${transport} @ ${run.rate}`).toBeGreaterThanOrEqual(1);
      }
    }

    // The Kinesis publish check ran both sides.
    expect(results.publishCheck.bare.ok).toBeGreaterThan(0);
    expect(results.publishCheck.keyApi.acceptedPerSec).toBeGreaterThan(0);

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
    expect(crossovers((rps) => inputsAt(results, rps)).albOverRestApi).toBeGreaterThan(0);
    // Metering overhead per million requests, per transport beside the article's, at each rate.
    for (const rps of [10, 100, 1000]) {
      const overhead = meteringOverhead(results, rps);
      for (const target of TARGETS) {
        expect(overhead.perMillion[target], `${target} @ ${rps}`).toBeGreaterThan(0);
        expect(Number.isFinite(overhead.perMillion[target]), `${target} @ ${rps}`).toBe(true);
      }
      for (const transport of TRANSPORTS) expect(overhead.measured[transport]?.rate, transport).toBe(rps);
    }
    expect(renderBenchmarks(results)).toContain('metering overhead per million requests');
    expect(headlineTable(results)).toContain('Tollgate, Kinesis');
    expect(renderBenchmarks(results)).toContain('## 8. Cost model');
    expect(renderBenchmarks(results)).toContain('**The gate against the key-api check** (');
    expect(headlineTable(results)).toContain('gate CPU per request');
  }, 600_000);
});
