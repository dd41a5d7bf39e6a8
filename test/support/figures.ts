import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scenarioSources, treeState } from '../reliability/report/fingerprint';
import { SCENARIOS } from '../reliability/report/rows';

/**
 * Where measured figures are kept for RELIABILITY.md (test-artifacts/ is not committed).
 * `TOLLGATE_FIGURES_DIR` moves them, for the tests and the report alike (a run of one's own).
 */
export const FIGURES_DIR =
  process.env.TOLLGATE_FIGURES_DIR ?? join(process.cwd(), 'test-artifacts', 'reliability');

/**
 * Prints a scenario's figures and keeps them as `test-artifacts/reliability/<scenario>.json`, with
 * when, and from which code: the fingerprint of the files that decide this scenario (its
 * `decidedBy` in test/reliability/report/rows.ts and what they import) and each file's hash, for
 * `npm run reliability:report`. Taken when the figures are recorded, so an edit made while a long
 * test ran counts as measured.
 *
 * Record what was measured. A value the test itself chose (how many events it sent, a window it
 * configured) goes under `parameters`, so no one reads it as a result.
 */
export async function recordFigures(
  scenario: string,
  figures: Record<string, unknown> & { parameters?: Record<string, unknown> },
): Promise<void> {
  const declared = SCENARIOS.find((s) => s.name === scenario);
  // A scenario no row renders (a soak of other length) is kept for a look; the report refuses it.
  const sources = (declared && (await scenarioSources([declared])).get(scenario)) ?? {
    fingerprint: 'none: no SCENARIOS entry in test/reliability/report/rows.ts',
    files: {},
  };
  const tree = treeState();
  const recordedOn = {
    commit: tree.commit,
    dirty: Object.keys(sources.files).some((path) => tree.uncommitted.has(path)),
  };
  await mkdir(FIGURES_DIR, { recursive: true });
  // The sources last: no figure can shadow them.
  const text = JSON.stringify(
    { scenario, at: new Date().toISOString(), ...figures, ...sources, recordedOn },
    null,
    2,
  );
  await writeFile(join(FIGURES_DIR, `${scenario}.json`), `${text}\n`);
  process.stdout.write(`[figures] ${scenario}: ${JSON.stringify(figures)}\n`);
}

/** Quantile of a sorted-on-demand sample (nearest rank). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
}
