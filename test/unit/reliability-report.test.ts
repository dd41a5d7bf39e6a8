import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  FIGURES_FILE,
  type FiguresFile,
  METERING_MD,
  RELIABILITY_MD,
  TEMPLATE_MD,
} from '../reliability/report/figures-file';
import { buildFiguresFile, renderDocuments } from '../reliability/report/render';
import { SCENARIOS } from '../reliability/report/rows';
import { sourceFingerprint } from '../support/figures';

// RELIABILITY.md and the write-amplification figures in docs/metering.md are generated
// (`npm run reliability:report`) from test/reliability/figures.json, which a run of the tests wrote.
// Reads only committed files: it needs no local stack and no test-artifacts/, so a fresh clone in CI
// checks the same.

const REFRESH =
  'run the tests (`npm test`, or `npx vitest run --project reliability` and the integ files in ' +
  'test/reliability/report/rows.ts), then `npm run reliability:report`, and commit the result';
const read = (path: string) => readFileSync(path, 'utf8');

describe('the generated reliability documents', () => {
  it('the figures file exists', () => {
    expect(existsSync(FIGURES_FILE), `test/reliability/figures.json is missing: ${REFRESH}`).toBe(true);
  });

  const file = () => JSON.parse(read(FIGURES_FILE)) as FiguresFile;
  const rendered = () =>
    renderDocuments(file(), { template: read(TEMPLATE_MD), metering: read(METERING_MD) });

  it('RELIABILITY.md is what the committed figures render, byte for byte (no hand edits)', () => {
    expect(
      read(RELIABILITY_MD) === rendered().reliability,
      `RELIABILITY.md differs from what test/reliability/figures.json renders: edit the template (test/reliability/report/reliability.template.md) or the rows (rows.ts), not the file; then \`npm run reliability:report\``,
    ).toBe(true);
  });

  it("docs/metering.md's generated block is what the committed figures render", () => {
    expect(
      read(METERING_MD) === rendered().metering,
      'docs/metering.md: the block between <!-- generated:metering-writes … --> and <!-- /generated:metering-writes --> differs from what test/reliability/figures.json renders; run `npm run reliability:report`',
    ).toBe(true);
  });

  it('the figures were measured on this code (the source fingerprint of the tree)', () => {
    const { run } = file();
    expect(
      run.fingerprint,
      `RELIABILITY.md is stale: its figures were measured on other code (commit ${run.commit.slice(0, 12)} of ${run.date}${run.dirty ? ' plus changes' : ''}); ${REFRESH}`,
    ).toBe(sourceFingerprint());
  });

  it('every scenario the report expects is in the figures file, from that one run', () => {
    const f = file();
    const scenarios = SCENARIOS.filter((s) => !s.separate).map((s) => s.name);
    expect(Object.keys(f.scenarios).sort(), REFRESH).toEqual([...scenarios].sort());
    for (const name of scenarios) expect(f.scenarios[name]?.fingerprint, name).toBe(f.run.fingerprint);
    for (const s of SCENARIOS.filter((x) => x.separate)) expect(f.separate[s.name], s.name).toBeDefined();
  });
});

describe('the report (test/reliability/report/render.ts)', () => {
  const run = { commit: 'c0ffee', dirty: false, fingerprint: 'sha256:one', date: '' };
  const committed = JSON.parse(read(FIGURES_FILE)) as FiguresFile;
  const artifacts = Object.values(committed.scenarios).map((a) => ({ ...a, fingerprint: run.fingerprint }));

  it('refuses an artifact no row renders, a missing one, and one recorded from other code', () => {
    expect(() =>
      buildFiguresFile({
        artifacts: [
          ...artifacts,
          { scenario: 'new-thing', at: '2026-01-01T00:00:00Z', fingerprint: run.fingerprint },
        ],
        previous: committed,
        run,
      }),
    ).toThrow(/no row renders "new-thing"/);
    expect(() =>
      buildFiguresFile({
        artifacts: artifacts.filter((a) => a.scenario !== 'faults'),
        previous: committed,
        run,
      }),
    ).toThrow(/faults: no artifact; run `npx vitest run --project reliability`/);
    expect(() =>
      buildFiguresFile({
        artifacts: artifacts.map((a) =>
          a.scenario === 'revocation' ? { ...a, fingerprint: 'sha256:two' } : a,
        ),
        previous: committed,
        run,
      }),
    ).toThrow(/revocation: recorded at .* from other code/);
  });

  it('refuses an artifact that lacks a figure its row states', () => {
    const withoutLag = artifacts.map((a) =>
      a.scenario === 'quota-overshoot' ? { ...a, observedLagMs: undefined } : a,
    );
    expect(() => buildFiguresFile({ artifacts: withoutLag, previous: committed, run })).toThrow(
      /quota-overshoot: figure "observedLagMs" is missing/,
    );
  });

  it('keeps the full soak of an earlier run, with that run, until it is run again', () => {
    const built = buildFiguresFile({ artifacts, previous: committed, run });
    expect(built.separate['soak-60s']).toEqual(committed.separate['soak-60s']);
    expect(built.run.fingerprint).toBe(run.fingerprint);
  });
});
