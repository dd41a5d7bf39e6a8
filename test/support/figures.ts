import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where measured figures are kept for RELIABILITY.md (test-artifacts/ is not committed). */
export const FIGURES_DIR = join(process.cwd(), 'test-artifacts', 'reliability');

/** Prints a scenario's figures and keeps them as `test-artifacts/reliability/<scenario>.json`. */
export async function recordFigures(scenario: string, figures: Record<string, unknown>): Promise<void> {
  await mkdir(FIGURES_DIR, { recursive: true });
  const text = JSON.stringify({ scenario, at: new Date().toISOString(), ...figures }, null, 2);
  await writeFile(join(FIGURES_DIR, `${scenario}.json`), `${text}\n`);
  process.stdout.write(`[figures] ${scenario}: ${JSON.stringify(figures)}\n`);
}

/** Quantile of a sorted-on-demand sample (nearest rank). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
}
