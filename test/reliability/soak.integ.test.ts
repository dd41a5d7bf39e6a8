import { describe, expect, inject, it } from 'vitest';
import { recordFigures } from '../support/figures';
import { EXPECTED_POISON_REASONS, runSoak, soakProblems } from '../support/soak-run';

// CI runs a short soak; `npm run soak` runs the full minute (SOAK_SECONDS=60) and prints the figures.
const SECONDS = Number(process.env.SOAK_SECONDS ?? 15);

describe('soak: concurrent traffic over 50 keys while the consumer dies twice and a batch is poisoned', () => {
  it(
    'counts every accepted request exactly once, per key and per account; poison is dead-lettered with reasons',
    async () => {
      const report = await runSoak({ endpoints: inject('endpoints'), env: inject('env'), seconds: SECONDS });
      await recordFigures('soak', { ...report });

      // Real load, even on a shared 2-core CI machine next to the other reliability files.
      expect(report.accepted).toBeGreaterThan(SECONDS * 15);
      expect(report.mismatchedKeys).toEqual([]);
      expect(report.counted).toBe(report.accepted);
      expect(report.countedByAccounts).toBe(report.accepted);
      // Each account's day counters, not only their sum.
      expect(report.byAccount).toHaveLength(5);
      for (const account of report.byAccount)
        expect(account.counted, account.accountId).toBe(account.accepted);
      expect(report.mismatchedAccounts).toEqual([]);
      // The chaos happened: both kills landed mid-batch (as the consumer process reported, and as
      // the processes themselves counted), each crashed one batch right after its commit, and the
      // redelivered events of those batches were dropped as already counted.
      expect(report.consumerKills.map((k) => k.midBatch)).toEqual([true, true]);
      expect(report.killsLanded).toBe(2);
      expect(report.crashedBatches).toBe(report.killsLanded);
      expect(report.duplicatesDropped).toBeGreaterThan(0);
      // No 5xx at all: the consumer's deaths never reach the callers.
      expect(Object.keys(report.refused).filter((label) => label.startsWith('5'))).toEqual([]);
      // The poison, and only the poison, in the dead letter: per reason, as many as were injected.
      expect(report.deadLetteredDistinct).toBe(report.poisonInjected);
      expect(report.poisonReasons).toEqual(EXPECTED_POISON_REASONS);
      expect(report.deadLetteredDistinctByReason).toEqual(EXPECTED_POISON_REASONS);
      expect(report.settleMs).toBeGreaterThanOrEqual(0);
      expect(soakProblems(report)).toEqual([]);
    },
    SECONDS * 1000 + 150_000,
  );
});
