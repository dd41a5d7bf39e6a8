/**
 * Renders RELIABILITY.md and docs/metering.md's generated block from the figures file, and builds
 * that file from a run's artifacts. Pure: the same figures file gives the same bytes anywhere, which
 * is what test/unit/reliability-report.test.ts compares.
 */

import {
  type Artifact,
  FIGURES_FORMAT,
  Figures,
  type FiguresFile,
  type Measured,
  type Provenance,
} from './figures-file';
import { changedFiles, type SourceSet } from './fingerprint';
import { cell, fixed, int } from './format';
import { ROWS, SCENARIOS, type Scenario } from './rows';

export const TABLE_PLACEHOLDER = '{{figures-table}}';
export const PROVENANCE_PLACEHOLDER = '{{provenance}}';
export const METERING_BLOCK_START =
  '<!-- generated:metering-writes (npm run reliability:report; do not edit) -->';
export const METERING_BLOCK_END = '<!-- /generated:metering-writes -->';

/** A scenario's artifact and the run it came from. */
function lookUp(file: FiguresFile, scenario: string): { figures: Figures; run: Provenance; stale: boolean } {
  const measured = file.scenarios[scenario];
  if (!measured) throw new Error(`the figures file has no "${scenario}" (run its test, then the report)`);
  return {
    figures: new Figures(scenario, measured.figures),
    run: measured.run,
    stale: measured.staleAtReport === true,
  };
}

const short = (run: Provenance) =>
  `\`${run.commit.slice(0, 12)}\`${run.dirty ? ' plus uncommitted changes' : ''}`;

/** "on 2026-12-07" or "between 2026-12-07 and 2026-12-09". */
function days(dates: readonly string[]): string {
  const sorted = [...new Set(dates)].sort();
  const first = sorted[0] ?? '';
  const last = sorted.at(-1) ?? '';
  return first === last ? `on ${first}` : `between ${first} and ${last}`;
}

/** Where the figures come from: the days and the commits, with how many scenarios each. */
export function provenanceLine(file: FiguresFile): string {
  const all = Object.values(file.scenarios);
  const byCode = new Map<string, Measured[]>();
  for (const measured of all) {
    const code = short(measured.run);
    byCode.set(code, [...(byCode.get(code) ?? []), measured]);
  }
  const commits = [...byCode]
    .sort(([a, x], [b, y]) => y.length - x.length || (a < b ? -1 : 1))
    .map(([code, group]) => (byCode.size === 1 ? `of commit ${code}` : `${group.length} on commit ${code}`));
  const what =
    byCode.size === 1
      ? `from runs ${days(all.map((m) => m.run.date))} ${commits[0]}`
      : `from runs ${days(all.map((m) => m.run.date))} (of its ${all.length} scenarios, ${commits.join(', ')})`;
  return (
    `The figures below are ${what}, on this project's 2-core machine. Each scenario's figures carry ` +
    'the fingerprint of the files that decide them (its tests, the product code they exercise and the ' +
    'local harness: `decidedBy` in `test/reliability/report/rows.ts`), so a scenario is measured again ' +
    'when those change, not when other code does. The tests write them to `test-artifacts/reliability/`; ' +
    'they are kept in `test/reliability/figures.json`, and this file is generated from it by ' +
    '`npm run reliability:report` (do not edit it by hand; `npm test` fails when it is stale).'
  );
}

export function figuresTable(file: FiguresFile): string {
  const lines = ['| scenario | must hold | measured |', '| --- | --- | --- |'];
  for (const row of ROWS) {
    const found = row.scenario === undefined ? undefined : lookUp(file, row.scenario);
    const text = (part: string | ((f: Figures, run: Provenance) => string)) => {
      if (typeof part === 'string') return part;
      if (!found) throw new Error('a row without a scenario can only have fixed text');
      return part(found.figures, found.run);
    };
    const measured = found
      ? row.measured(found.figures, found.run)
      : row.measured(new Figures('none', {}), { commit: '', dirty: false, date: '' });
    // A separate run (the full soak) kept from older code says so.
    const older = found?.stale ? ' (its code has changed since that run)' : '';
    lines.push(`| ${cell(text(row.title) + older)} | ${cell(text(row.mustHold))} | ${cell(measured)} |`);
  }
  return lines.join('\n');
}

export function renderReliability(file: FiguresFile, template: string): string {
  for (const placeholder of [TABLE_PLACEHOLDER, PROVENANCE_PLACEHOLDER]) {
    if (template.split(placeholder).length !== 2)
      throw new Error(`the template must hold ${placeholder} once`);
  }
  return template
    .replace(PROVENANCE_PLACEHOLDER, () => provenanceLine(file))
    .replace(TABLE_PLACEHOLDER, () => figuresTable(file));
}

// --- docs/metering.md ------------------------------------------------------------------------

export function meteringWritesBlock(file: FiguresFile): string {
  const { figures: f, run } = lookUp(file, 'metering-writes');
  const p = f.at('parameters');
  const events = p.num('events');
  const sqs = f.at('sqs');
  const kinesis = f.at('kinesis');
  const per = (n: number, digits: number) => fixed(n / events, digits);
  const units = 2 * sqs.num('transactionItems');
  return [
    METERING_BLOCK_START,
    'Measured by the write-amplification tests (`test/integ/metering-writes.integ.test.ts`, DynamoDB',
    `requests and transaction items counted at the client), ${int(events)} events over ${int(p.num('keys'))} keys in ${int(p.num('accounts'))} accounts`,
    `with a Zipf(${p.num('zipfExponent')}) skew drawn from seed ${p.num('seed')}, in batches of up to ${int(p.num('batchSize'))}`,
    `(SQS: ${int(sqs.num('batches'))} batches, ${int(sqs.num('aggregates'))} (key, day) aggregates, so _k_ / _N_ = ${per(sqs.num('aggregates'), 3)};`,
    `Kinesis: ${int(kinesis.num('batches'))} batches, ${int(kinesis.num('aggregates'))} aggregates). Run of ${run.date}, commit ${short(run)};`,
    'generated by `npm run reliability:report` from `test/reliability/figures.json`.',
    '',
    '| | write requests | per event | write units | per event |',
    '| --- | ---: | ---: | ---: | ---: |',
    `| SQS: marks + counters, packed transactions | ${int(sqs.num('transactions'))} \`TransactWriteItems\` (${int(sqs.num('transactionItems'))} items) | ${per(sqs.num('transactions'), 3)} | 2 × ${int(sqs.num('transactionItems'))} = ${int(units)} | ${per(units, 2)} |`,
    `| Kinesis: sequence-number watermarks | ${int(kinesis.num('updates'))} \`UpdateItem\` | ${per(kinesis.num('updates'), 3)} | ${int(kinesis.num('updates'))} | ${per(kinesis.num('updates'), 3)} |`,
    '',
    METERING_BLOCK_END,
  ].join('\n');
}

/** docs/metering.md with its generated block replaced by `block`. */
export function withMeteringBlock(doc: string, block: string): string {
  const start = doc.indexOf(METERING_BLOCK_START);
  const end = doc.indexOf(METERING_BLOCK_END);
  if (start === -1 || end === -1 || end < start || doc.indexOf(METERING_BLOCK_START, start + 1) !== -1) {
    throw new Error(`docs/metering.md must hold one ${METERING_BLOCK_START} … ${METERING_BLOCK_END} block`);
  }
  return doc.slice(0, start) + block + doc.slice(end + METERING_BLOCK_END.length);
}

// --- the figures file ------------------------------------------------------------------------

/** What the report knows of the tree it runs in. */
export interface Tree {
  /** Each scenario's files and fingerprint now (fingerprint.ts `scenarioSources`). */
  sources: ReadonlyMap<string, SourceSet>;
  /** `git rev-parse HEAD`. */
  commit: string;
  /** Files that differ from HEAD or are untracked. */
  uncommitted: ReadonlySet<string>;
}

const MAX_LISTED = 6;

/** "changed: services/gate/limits.ts, … (+3 more)": which of a scenario's files changed since `then`. */
export function changeList(then: Record<string, string>, now: Record<string, string>): string {
  if (Object.keys(then).length === 0) return 'measured before scenarios had their own fingerprints';
  const changed = changedFiles(then, now);
  if (changed.length === 0) return 'an import added or removed';
  const more = changed.length > MAX_LISTED ? ` (+${changed.length - MAX_LISTED} more)` : '';
  return `changed: ${changed.slice(0, MAX_LISTED).join(', ')}${more}`;
}

/**
 * The files a scenario of a figures file was measured on: its own, or (measured on the report's
 * tree) those of the file's `sources` it still has. Which files it no longer has is not known then,
 * but no import goes without an edit to its importer, which is listed.
 */
function measuredFiles(measured: Measured, file: FiguresFile, now: SourceSet): Record<string, string> {
  if (measured.figures.files) return measured.figures.files;
  const files: Record<string, string> = {};
  for (const path of Object.keys(now.files)) {
    const hash = file.sources[path];
    if (hash !== undefined) files[path] = hash;
  }
  return files;
}

/**
 * The commands that measure `scenarios` again, merged: one vitest run per project with its files
 * (or the whole project when a scenario needs it), then the others as they are.
 */
export function refreshCommands(scenarios: readonly Scenario[]): string[] {
  const vitest = /^npx vitest run --project (\S+)(?: (.+))?$/;
  const files = new Map<string, Set<string> | 'all'>();
  const others = new Set<string>();
  for (const { producedBy } of scenarios) {
    const match = vitest.exec(producedBy);
    if (!match?.[1]) {
      others.add(producedBy);
      continue;
    }
    const [, project, file] = match;
    const known = files.get(project);
    if (known === 'all') continue;
    if (file === undefined) files.set(project, 'all');
    else files.set(project, (known ?? new Set()).add(file));
  }
  const runs = [...files]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([project, wanted]) =>
      wanted === 'all'
        ? `npx vitest run --project ${project}`
        : `npx vitest run --project ${project} ${[...wanted].sort().join(' ')}`,
    );
  return [...runs, ...others];
}

/** One scenario: a fresh artifact, else the previous file's entry if its files are unchanged. */
function pick(
  scenario: Scenario,
  found: { artifact?: Artifact; kept?: Measured; now: SourceSet },
  tree: Tree,
  allowOtherCode: boolean,
): Measured | string {
  const { artifact, kept, now } = found;
  // Already in the figures file (the artifact it was taken from, still in test-artifacts/).
  if (kept?.figures.fingerprint === now.fingerprint && kept.figures.at === artifact?.at) return kept;
  // Its files are the tree's: the commit they are in now describes them (plus what is uncommitted).
  if (artifact?.fingerprint === now.fingerprint) {
    const dirty = Object.keys(artifact.files ?? {}).some((path) => tree.uncommitted.has(path));
    return { run: { commit: tree.commit, dirty, date: artifact.at.slice(0, 10) }, figures: artifact };
  }
  if (kept?.figures.fingerprint === now.fingerprint) return { run: kept.run, figures: kept.figures };
  // Measured on other code: the newest of the two, with the commit it was recorded on.
  const recorded: Measured | undefined = artifact && {
    run: { ...(artifact.recordedOn ?? { commit: 'unknown', dirty: true }), date: artifact.at.slice(0, 10) },
    figures: artifact,
  };
  const newest = [recorded, kept]
    .filter((m) => m !== undefined)
    .sort((a, b) => (a.figures.at < b.figures.at ? 1 : -1))[0];
  if (!newest) return `${scenario.name}: never run; run \`${scenario.producedBy}\``;
  // Said in its row; `npm test` calls it stale unless it is a separate one.
  if (scenario.separate || allowOtherCode) return { ...newest, staleAtReport: true };
  return (
    `${scenario.name}: stale, recorded ${newest.figures.at} on other code (${changeList(newest.figures.files ?? {}, now.files)}); ` +
    `run \`${scenario.producedBy}\` again`
  );
}

/**
 * The figures file for a tree: each scenario from its artifact when that was recorded on the
 * scenario's files as they are now, else from the previous figures file when its files have not
 * changed since (so rerunning the stale scenarios' tests is enough). A stale scenario with neither
 * is refused, naming what to run; a separate one (the full soak) is kept, marked as older code.
 * `allowOtherCode` keeps every stale one so (for a look: `npm test` then calls them stale).
 */
export function buildFiguresFile(options: {
  artifacts: readonly Artifact[];
  previous?: FiguresFile;
  tree: Tree;
  allowOtherCode?: boolean;
}): FiguresFile {
  const { artifacts, previous, tree, allowOtherCode = false } = options;
  const problems: string[] = [];
  const byName = new Map(artifacts.map((a) => [a.scenario, a]));
  const known = new Set(SCENARIOS.map((s) => s.name));
  for (const artifact of artifacts) {
    if (!known.has(artifact.scenario)) {
      problems.push(
        `test-artifacts/reliability/${artifact.scenario}.json: no row renders "${artifact.scenario}" (add it to SCENARIOS and ROWS in test/reliability/report/rows.ts, or delete the artifact)`,
      );
    }
  }
  const scenarios: Record<string, Measured> = {};
  const toRun: Scenario[] = [];
  for (const scenario of SCENARIOS) {
    const now = tree.sources.get(scenario.name);
    if (!now)
      throw new Error(`${scenario.name}: no fingerprint for it (scenarioSources was given other scenarios)`);
    const artifact = byName.get(scenario.name);
    const previously = previous?.scenarios[scenario.name];
    const kept = previously && {
      ...previously,
      figures: { ...previously.figures, files: measuredFiles(previously, previous, now) },
    };
    const picked = pick(scenario, { artifact, kept, now }, tree, allowOtherCode);
    if (typeof picked === 'string') {
      problems.push(picked);
      toRun.push(scenario);
    } else scenarios[scenario.name] = picked;
  }
  if (problems.length > 0) {
    const run = refreshCommands(toRun).map((c) => `\`${c}\``);
    throw new Error(
      `cannot make the reliability report:\n- ${problems.join('\n- ')}\n` +
        `${run.length > 0 ? `run ${run.join(' and ')}, ` : ''}then \`npm run reliability:report\` again`,
    );
  }
  // The files of a scenario measured on the tree's files are in `sources`, once for all of them.
  const sources: Record<string, string> = {};
  for (const [name, measured] of Object.entries(scenarios)) {
    if (measured.staleAtReport) continue;
    Object.assign(sources, tree.sources.get(name)?.files);
    const { files: _, ...figures } = measured.figures;
    scenarios[name] = { ...measured, figures };
  }
  const file: FiguresFile = {
    comment:
      'Written by `npm run reliability:report` from test-artifacts/reliability/; RELIABILITY.md and docs/metering.md are rendered from it. Each scenario keeps the fingerprint of the files that decide it (test/reliability/report/fingerprint.ts), `sources` those files. Do not edit.',
    format: FIGURES_FORMAT,
    sources: Object.fromEntries(Object.entries(sources).sort(([a], [b]) => (a < b ? -1 : 1))),
    scenarios,
  };
  // Every renderer runs now, so a missing figure fails the report, not the next check.
  for (const row of ROWS) if (row.scenario) lookUp(file, row.scenario);
  figuresTable(file);
  meteringWritesBlock(file);
  return file;
}

/**
 * The scenarios of a figures file whose files changed since they were measured, each with what
 * changed (`npm test` refuses them, but for a separate one: its row says it is older).
 */
export function staleScenarios(
  file: FiguresFile,
  sources: ReadonlyMap<string, SourceSet>,
): { scenario: Scenario; changes: string }[] {
  return SCENARIOS.flatMap((scenario) => {
    const measured = file.scenarios[scenario.name];
    const now = sources.get(scenario.name);
    if (!measured || !now || measured.figures.fingerprint === now.fingerprint) return [];
    return [{ scenario, changes: changeList(measuredFiles(measured, file, now), now.files) }];
  });
}

export const serializeFigures = (file: FiguresFile): string => `${JSON.stringify(file, null, 2)}\n`;

/** RELIABILITY.md and docs/metering.md as the figures file renders them. */
export function renderDocuments(
  file: FiguresFile,
  current: { template: string; metering: string },
): { reliability: string; metering: string } {
  return {
    reliability: renderReliability(file, current.template),
    metering: withMeteringBlock(current.metering, meteringWritesBlock(file)),
  };
}
