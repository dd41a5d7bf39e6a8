import { describe, expect, inject, it } from 'vitest';
import { recordFigures } from '../support/figures';
import { EXPECTED_POISON_REASONS, runSoak } from '../support/soak-run';

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
      expect(report.consumerKills).toHaveLength(2);
      // No 5xx at all: the consumer's deaths never reach the callers.
      expect(Object.keys(report.refused).filter((label) => label.startsWith('5'))).toEqual([]);
      // The poison, and only the poison, in the dead letter, each record with its reason.
      expect(report.deadLetteredDistinct).toBe(report.poisonInjected);
      expect(Object.keys(report.deadLettered).sort()).toEqual(Object.keys(EXPECTED_POISON_REASONS).sort());
      expect(report.settleMs).toBeGreaterThanOrEqual(0);
    },
    SECONDS * 1000 + 150_000,
  );
});
