import { describe, expect, it } from 'vitest';
import { LAYOUT_PROFILES, RUN_ORDER } from '../../bench/layout/profiles';
import { layoutTables } from '../../bench/layout/report';
import { runLayoutBench } from '../../bench/layout/run-layout';
import { refusals } from '../../bench/layout/verdict';
import { TRANSPORTS } from '../../bench/lib/types';

/**
 * CI's smoke run of `npm run bench:layout`: seconds of load per transport and layout on a local
 * stack of its own. It checks that every part runs, that every count is exact, that each layout
 * wrote the counters it stands for (the previous one without a single hour attribute), and that
 * the read-units answers equal what was seeded: never how the ratios come out (the full run's).
 */
describe('counter layout bench (smoke)', () => {
  it('meters both layouts on both transports exactly, sizes the counters and measures the reads', async () => {
    const settings = LAYOUT_PROFILES.smoke;
    const results = await runLayoutBench({ settings, log: () => {} });

    expect(results.runs.map((r) => `${r.transport} ${r.layout}`)).toEqual(
      RUN_ORDER.map((r) => `${r.transport} ${r.layout}`),
    );
    for (const run of results.runs) {
      const name = `${run.transport} ${run.layout}`;
      expect(run.events, name).toBeGreaterThan(0);
      expect(run.exact.ok, `${name}: ${run.exact.mismatches.join('; ')}`).toBe(true);
      expect(run.exact.counted, name).toBe(run.events);
      expect(run.perEvent.writeUnits, name).toBeGreaterThan(0);
      expect(run.perEvent.writeRequests, name).toBeGreaterThan(0);
      expect(run.items.count, name).toBeGreaterThan(0);
      expect(run.items.hoursAsLaidOut, name).toBe(true);
      if (run.layout === 'previous') expect(run.items.hourAttributes.max, name).toBe(0);
      else expect(run.items.hourAttributes.min, name).toBeGreaterThanOrEqual(1);
      // Both transports' counters are plain updates now (SQS: the ledger's flushes).
      expect(run.dynamodb['DynamoDB.UpdateItem'], name).toBeGreaterThan(0);
      expect(run.dynamodb['DynamoDB.TransactWriteItems.errors'] ?? 0, name).toBe(0);
      expect(run.dynamodb['DynamoDB.UpdateItem.errors'] ?? 0, name).toBe(0);
    }
    for (const transport of TRANSPORTS) {
      const { hours, previous, ratio } = results.byTransport[transport];
      // The same events on the same keys; hours add bytes to each counter, never an item.
      expect(hours.items.count, transport).toBe(previous.items.count);
      expect(hours.items.medianBytes, transport).toBeGreaterThan(previous.items.medianBytes);
      expect(Number.isFinite(ratio.writeUnits) && Number.isFinite(ratio.writeRequests), transport).toBe(true);
    }

    const { reads } = results;
    expect(reads.items.count).toBe(settings.read.keys * (settings.read.days + 1));
    expect(reads.items.hourAttributes.max).toBe(24);
    expect(reads.answers).toHaveLength(4);
    for (const answer of reads.answers) {
      const name = `${answer.granularity} ${answer.tz}`;
      expect(answer.total, name).toBe(answer.expectedTotal);
      expect(answer.keys, name).toBe(settings.read.keys);
      expect(answer.cells, name).toBe(
        answer.granularity === 'hour' ? settings.read.days * 24 : settings.read.days,
      );
      expect(answer.counters.requests, name).toBeGreaterThan(0);
      expect(answer.counters.engineUnits, name).toBeGreaterThan(0);
      expect(answer.counters.clientUnits, name).toBeGreaterThan(0);
      expect(answer.counters.clientUnitsWithoutHours, name).toBeLessThan(answer.counters.clientUnits);
      expect(answer.sdkCounter.readRequests, name).toBe(answer.counters.requests + answer.keyList.requests);
    }
    // New York's days are not UTC's: the seeded days differ, so their window sums differ too.
    const utc = reads.answers.find((a) => a.tz === 'UTC');
    const ny = reads.answers.find((a) => a.tz === 'America/New_York');
    expect(ny?.total).not.toBe(utc?.total);

    expect(results.exact).toBe(true);
    expect(refusals(results)).toEqual([]);
    expect(layoutTables(results)).toContain('hours / previous');
  }, 180_000);
});
