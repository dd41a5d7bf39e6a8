/**
 * The committed figures file (test/reliability/figures.json) and a strict reader of the artifacts in
 * it: RELIABILITY.md and docs/metering.md's generated block are rendered from this file alone, so
 * the check in test/unit/reliability-report.test.ts needs no run and no test-artifacts/.
 */
import { join } from 'node:path';

export const ROOT = process.cwd();
export const FIGURES_FILE = join(ROOT, 'test', 'reliability', 'figures.json');
export const RELIABILITY_MD = join(ROOT, 'RELIABILITY.md');
export const METERING_MD = join(ROOT, 'docs', 'metering.md');
export const TEMPLATE_MD = join(ROOT, 'test', 'reliability', 'report', 'reliability.template.md');

/** What one `recordFigures` call wrote (test/support/figures.ts). */
export interface Artifact {
  scenario: string;
  /** When it was recorded (ISO 8601). */
  at: string;
  /** The source fingerprint of the tree that recorded it. */
  fingerprint: string;
  [figure: string]: unknown;
}

/** Which code a run measured. */
export interface Provenance {
  /** `git rev-parse HEAD` when the report was made. */
  commit: string;
  /** Whether the fingerprinted files differed from that commit (the run measured uncommitted code). */
  dirty: boolean;
  /** sha256 over the fingerprinted files (test/support/figures.ts `sourceFingerprint`). */
  fingerprint: string;
  /** The day of the run's last artifact (UTC, YYYY-MM-DD). */
  date: string;
}

export interface FiguresFile {
  comment: string;
  /** The test suite's run: every `suite` scenario's artifact carries this fingerprint. */
  run: Provenance;
  scenarios: Record<string, Artifact>;
  /** Scenarios run on their own (the full soak), each with the provenance of its own last run. */
  separate: Record<string, { run: Provenance; figures: Artifact }>;
}

/** A scenario's figures, read strictly: a figure a renderer asks for and the artifact lacks throws. */
export class Figures {
  constructor(
    readonly scenario: string,
    private readonly data: unknown,
    private readonly prefix = '',
  ) {}

  private fail(path: string, what: string): never {
    throw new Error(
      `${this.scenario}: figure "${this.prefix}${path}" ${what}; does its test record it with recordFigures?`,
    );
  }

  /** The raw value at a dotted path (`a.b.c`); missing is an error. */
  get(path: string): unknown {
    let value: unknown = this.data;
    for (const part of path.split('.')) {
      if (value === null || typeof value !== 'object' || !(part in value)) this.fail(path, 'is missing');
      value = (value as Record<string, unknown>)[part];
    }
    if (value === undefined) this.fail(path, 'is missing');
    return value;
  }

  has(path: string): boolean {
    try {
      this.get(path);
      return true;
    } catch {
      return false;
    }
  }

  num(path: string): number {
    const value = this.get(path);
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail(path, `is not a number (${value})`);
    return value;
  }

  str(path: string): string {
    const value = this.get(path);
    if (typeof value !== 'string') this.fail(path, 'is not a string');
    return value;
  }

  bool(path: string): boolean {
    const value = this.get(path);
    if (typeof value !== 'boolean') this.fail(path, 'is not a boolean');
    return value;
  }

  list(path: string): unknown[] {
    const value = this.get(path);
    if (!Array.isArray(value)) this.fail(path, 'is not a list');
    return value;
  }

  /** A `{ label: count }` tally. */
  counts(path: string): Record<string, number> {
    const value = this.get(path);
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      this.fail(path, 'is not a tally');
    for (const [label, n] of Object.entries(value)) {
      if (typeof n !== 'number') this.fail(`${path}.${label}`, 'is not a number');
    }
    return value as Record<string, number>;
  }

  /** The figures under `path`, read as strictly. */
  at(path: string): Figures {
    return new Figures(this.scenario, this.get(path), `${this.prefix}${path}.`);
  }
}
