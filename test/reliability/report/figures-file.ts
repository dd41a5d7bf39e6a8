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
  /** sha256 over the files that decide this scenario, as they were when it was recorded (fingerprint.ts). */
  fingerprint: string;
  /**
   * Those files, each with the start of its own sha256: what tells which of them changed since. In
   * the figures file only for a scenario kept from older code; the others' files are the tree's
   * of the report, in its `sources`.
   */
  files?: Record<string, string>;
  /** HEAD when it was recorded, and whether any of those files differed from it. */
  recordedOn?: { commit: string; dirty: boolean };
  [figure: string]: unknown;
}

/** Which code a scenario's figures were measured on. */
export interface Provenance {
  /** `git rev-parse HEAD` when the report took the artifact. */
  commit: string;
  /** Whether any of the scenario's own files differed from that commit (it measured uncommitted code). */
  dirty: boolean;
  /** The day the artifact was recorded (UTC, YYYY-MM-DD). */
  date: string;
}

/** One scenario in the figures file: its artifact and where it comes from. */
export interface Measured {
  run: Provenance;
  /**
   * The report kept it although its files had changed since: a scenario run on its own (the full
   * soak) until it is run again, or any with `--allow-other-code`. Its row says so.
   */
  staleAtReport?: true;
  figures: Artifact;
}

export const FIGURES_FORMAT = 2;

export interface FiguresFile {
  comment: string;
  /** 2: each scenario with its own provenance and fingerprint (1 had one fingerprint for the tree). */
  format: typeof FIGURES_FORMAT;
  /**
   * Every file some scenario's fingerprint covers, with the start of its sha256, as the report found
   * them: the files each scenario (but one kept from older code) was measured on.
   */
  sources: Record<string, string>;
  scenarios: Record<string, Measured>;
}

/** The figures file of format 1: one run, one fingerprint over all of services/, test/… (no `files`). */
interface FiguresFileV1 {
  run: Provenance;
  scenarios: Record<string, Artifact>;
  separate: Record<string, { run: Provenance; figures: Artifact }>;
}

/**
 * Reads a figures file; one of format 1 becomes format 2 with no file list, so none of its
 * scenarios matches a fingerprint of today: a full soak is kept as measured on older code, every
 * other scenario must be run again (a fingerprint over the whole tree cannot say which still hold).
 */
export function parseFiguresFile(text: string): FiguresFile {
  const parsed = JSON.parse(text) as FiguresFile | FiguresFileV1;
  if ('format' in parsed && parsed.format === FIGURES_FORMAT) return parsed;
  if ('format' in parsed) throw new Error(`test/reliability/figures.json: unknown format ${parsed.format}`);
  const v1 = parsed as FiguresFileV1;
  const from = (run: Provenance, figures: Artifact): Measured => ({
    run: { commit: run.commit, dirty: run.dirty, date: run.date },
    figures: { ...figures, files: {} },
  });
  const scenarios: Record<string, Measured> = {};
  for (const [name, artifact] of Object.entries(v1.scenarios)) scenarios[name] = from(v1.run, artifact);
  for (const [name, kept] of Object.entries(v1.separate)) scenarios[name] = from(kept.run, kept.figures);
  return { comment: '', format: FIGURES_FORMAT, sources: {}, scenarios };
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
