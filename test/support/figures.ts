import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Where measured figures are kept for RELIABILITY.md (test-artifacts/ is not committed).
 * `TOLLGATE_FIGURES_DIR` moves them, for the tests and the report alike (a run of one's own).
 */
export const FIGURES_DIR =
  process.env.TOLLGATE_FIGURES_DIR ?? join(process.cwd(), 'test-artifacts', 'reliability');

/**
 * The files that decide what the tests measure: the product, the local stack it runs on, the tests
 * and their harness, and the exact dependencies. Not the documents, and not the report's renderer
 * (test/reliability/report/) or its figures file: a change there changes RELIABILITY.md, which the
 * report check compares byte for byte, but not what a run measures.
 */
export const FINGERPRINTED = [
  'services/',
  'contracts/',
  'infra/local/',
  // The CDK app and its tests: what the infra project's figures (cdk-hardening) are measured on.
  'infra/cdk/',
  'test/infra/',
  'test/reliability/',
  'test/support/',
  'test/integ/',
  'test/setup/',
  'vitest.config.ts',
  'package-lock.json',
] as const;
// The report and its output: what the report writes must not change the fingerprint it records.
export const NOT_FINGERPRINTED = ['test/reliability/report/', 'test/reliability/figures.json'];

/**
 * The files {@link sourceFingerprint} hashes: tracked ones and new ones not ignored (so a file the
 * lead has yet to `git add` counts the same before and after the commit), as they are on disk.
 */
export function fingerprintedFiles(root = process.cwd()): string[] {
  const listed = execFileSync(
    'git',
    ['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', ...FINGERPRINTED],
    { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  return [...new Set(listed.split('\0').filter(Boolean))]
    .filter((path) => !NOT_FINGERPRINTED.some((prefix) => path.startsWith(prefix)))
    .filter((path) => existsSync(join(root, path)) && statSync(join(root, path)).isFile())
    .sort();
}

/**
 * sha256 over the paths and contents of {@link fingerprintedFiles}: equal fingerprints, same code
 * measured. Read from the working tree, so uncommitted changes count; `git ls-files` works in a
 * fresh clone, where it is every committed file.
 */
export function sourceFingerprint(root = process.cwd()): string {
  const hash = createHash('sha256');
  for (const path of fingerprintedFiles(root)) {
    hash
      .update(path)
      .update('\0')
      .update(readFileSync(join(root, path)))
      .update('\0');
  }
  return `sha256:${hash.digest('hex')}`;
}

let fingerprint: string | undefined;

/**
 * Prints a scenario's figures and keeps them as `test-artifacts/reliability/<scenario>.json`, with
 * when and from which source (its fingerprint), for `npm run reliability:report`.
 *
 * Record what was measured. A value the test itself chose (how many events it sent, a window it
 * configured) goes under `parameters`, so no one reads it as a result.
 */
export async function recordFigures(
  scenario: string,
  figures: Record<string, unknown> & { parameters?: Record<string, unknown> },
): Promise<void> {
  fingerprint ??= sourceFingerprint();
  await mkdir(FIGURES_DIR, { recursive: true });
  const text = JSON.stringify({ scenario, at: new Date().toISOString(), fingerprint, ...figures }, null, 2);
  await writeFile(join(FIGURES_DIR, `${scenario}.json`), `${text}\n`);
  process.stdout.write(`[figures] ${scenario}: ${JSON.stringify(figures)}\n`);
}

/** Quantile of a sorted-on-demand sample (nearest rank). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
}
