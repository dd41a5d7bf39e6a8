import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Artifact,
  FIGURES_FILE,
  FIGURES_FORMAT,
  METERING_MD,
  parseFiguresFile,
  RELIABILITY_MD,
  TEMPLATE_MD,
} from '../reliability/report/figures-file';
import { changedFiles, type SourceSet, scenarioSources } from '../reliability/report/fingerprint';
import {
  buildFiguresFile,
  figuresTable,
  provenanceLine,
  refreshCommands,
  renderDocuments,
  staleScenarios,
  type Tree,
} from '../reliability/report/render';
import { SCENARIOS } from '../reliability/report/rows';

// RELIABILITY.md and the write-amplification figures in docs/metering.md are generated
// (`npm run reliability:report`) from test/reliability/figures.json, which runs of the tests wrote.
// Reads only the tree: no local stack and no test-artifacts/, so a fresh clone in CI checks the same.

const REPORT =
  'then `npm run reliability:report`, and commit test/reliability/figures.json, RELIABILITY.md and docs/metering.md';
const read = (path: string) => readFileSync(path, 'utf8');
const committed = () => parseFiguresFile(read(FIGURES_FILE));

/** Each scenario's files and fingerprint in this tree (one esbuild pass, a few seconds). */
let sourcesNow: Map<string, SourceSet>;
beforeAll(async () => {
  sourcesNow = await scenarioSources(SCENARIOS);
}, 60_000);

describe('the generated reliability documents', () => {
  it('the figures file has a fingerprint per scenario (format 2)', () => {
    const format = (JSON.parse(read(FIGURES_FILE)) as { format?: number }).format;
    expect(
      format,
      'test/reliability/figures.json is of format 1 (one fingerprint over the whole tree); regenerate it: `npm test` (every scenario), ' +
        `then \`npm run reliability:report\` (and \`npm run soak\`, then the report again, for the full soak's row)`,
    ).toBe(FIGURES_FORMAT);
  });

  const rendered = () =>
    renderDocuments(committed(), { template: read(TEMPLATE_MD), metering: read(METERING_MD) });

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

  it('every scenario the report expects is in the figures file', () => {
    expect(Object.keys(committed().scenarios).sort(), `run the tests, ${REPORT}`).toEqual(
      SCENARIOS.map((s) => s.name).sort(),
    );
  });

  it("every scenario was measured on its own files as they are (CI refuses a stale one; the full soak's row says it)", () => {
    const stale = staleScenarios(committed(), sourcesNow).filter(({ scenario }) => !scenario.separate);
    const commands = refreshCommands(stale.map(({ scenario }) => scenario));
    expect(
      stale.map(({ scenario }) => scenario.name),
      `stale reliability rows (their files changed since they were measured):\n${stale
        .map(({ scenario, changes }) => `- ${scenario.name}: ${changes}`)
        .join('\n')}\nrun ${commands.map((c) => `\`${c}\``).join(' and ')}, ${REPORT}`,
    ).toEqual([]);
  });
});

// --- what the scenarios name --------------------------------------------------------------------

/**
 * The local stack's handlers a test file calls, read from its text (test/support/local-stack.ts's
 * helpers and the stack's endpoints), each as the module its scenario must name in `decidedBy`.
 */
function stackHandlersCalled(text: string): string[] {
  const destructured = [...text.matchAll(/\{([^}]*)\}\s*=\s*inject\('endpoints'\)/g)].flatMap((m) =>
    (m[1] ?? '').split(',').map((name) => name.trim()),
  );
  // local-stack.ts's helpers by the names they are imported under (a test may have its own userApi()).
  const helpers = [...text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'[./]*(support\/)?local-stack'/g)].flatMap(
    (m) => (m[1] ?? '').split(',').map((name) => name.trim()),
  );
  const uses = (endpoint: string, helper?: string) =>
    new RegExp(`\\bendpoints(\\(\\))?\\.${endpoint}\\b`).test(text) ||
    destructured.includes(endpoint) ||
    (helper !== undefined && helpers.includes(helper) && new RegExp(`\\b${helper}\\(`).test(text));
  return [
    uses('keyApi', 'keyApi') && 'services/key-api/compose.ts',
    uses('userApi', 'userApi') && 'services/user-api/compose.ts',
    uses('exampleApi', 'exampleApi') && 'examples/rates-api/compose.ts',
    uses('web') && 'web/server/local-site.ts',
    helpers.includes('signUpAndSignIn') && 'services/auth-triggers/compose.ts',
  ].filter((module): module is string => typeof module === 'string');
}

describe('what each scenario names (decidedBy in test/reliability/report/rows.ts)', () => {
  it('names every handler of the local stack its tests call (else an edit to it would leave the row fresh)', () => {
    const missing = SCENARIOS.flatMap((scenario) => {
      const files = Object.keys(sourcesNow.get(scenario.name)?.files ?? {}).filter(
        (path) => /^test\/.*\.ts$/.test(path) && path !== 'test/support/local-stack.ts',
      );
      const called = [...new Set(files.flatMap((path) => stackHandlersCalled(read(path))))];
      return called
        .filter((module) => !scenario.decidedBy.includes(module))
        .map((module) => `${scenario.name}: calls the local stack's ${module}`);
    });
    expect(missing, 'add them to its decidedBy (STACK in rows.ts)').toEqual([]);
  });

  it('the check above finds what a test calls', () => {
    expect(
      stackHandlersCalled(
        "import { userApi } from '../support/local-stack'; await userApi(user, '/keys'); const { keyApi } = inject('endpoints');",
      ),
    ).toEqual(['services/key-api/compose.ts', 'services/user-api/compose.ts']);
    expect(
      stackHandlersCalled(
        "import { endpoints, signUpAndSignIn } from '../support/local-stack'; fetch(endpoints().exampleApi + '/v1');",
      ),
    ).toEqual(['examples/rates-api/compose.ts', 'services/auth-triggers/compose.ts']);
    expect(
      stackHandlersCalled("const { region, dynamodb } = inject('endpoints'); figures.keyApi = 1;"),
    ).toEqual([]);
  });
});

// --- the report, on made-up fingerprints --------------------------------------------------------

/** Made-up sources: each scenario has a file of its own and shares services/shared.ts. */
const made = (version: (name: string) => string = () => '1'): Map<string, SourceSet> =>
  new Map(
    SCENARIOS.map((s) => [
      s.name,
      {
        fingerprint: `sha256:${s.name}-${version(s.name)}`,
        files: { [`test/${s.name}.ts`]: `own-${version(s.name)}`, 'services/shared.ts': 'shared' },
      },
    ]),
  );
const tree = (sources: Map<string, SourceSet>, uncommitted: string[] = []): Tree => ({
  sources,
  commit: 'c0ffee00c0ffee00',
  uncommitted: new Set(uncommitted),
});
/** The committed figures as artifacts recorded on `sources`, at `at`. */
const artifactsFor = (sources: Map<string, SourceSet>, at = '2027-01-02T03:04:05.000Z'): Artifact[] =>
  Object.values(committed().scenarios).map(({ figures }) => {
    const own = sources.get(figures.scenario) as SourceSet;
    return { ...figures, at, fingerprint: own.fingerprint, files: own.files };
  });

describe('the report (test/reliability/report/render.ts)', () => {
  const v1 = made();
  const first = () => buildFiguresFile({ artifacts: artifactsFor(v1), tree: tree(v1, ['test/faults.ts']) });

  it('takes every fresh artifact, with the commit and whether its own files were uncommitted', () => {
    const file = first();
    // The files once for all of them (each scenario's fingerprint says which set it was).
    expect(Object.keys(file.sources)).toHaveLength(SCENARIOS.length + 1);
    expect(Object.values(file.scenarios).filter((m) => m.figures.files !== undefined)).toEqual([]);
    expect(Object.keys(file.scenarios).sort()).toEqual(SCENARIOS.map((s) => s.name).sort());
    expect(file.scenarios.faults?.run).toEqual({
      commit: 'c0ffee00c0ffee00',
      dirty: true,
      date: '2027-01-02',
    });
    expect(file.scenarios.revocation?.run.dirty).toBe(false);
    expect(staleScenarios(file, v1)).toEqual([]);
    expect(provenanceLine(file)).toContain(
      `from runs on 2027-01-02 (of its ${SCENARIOS.length} scenarios, ${SCENARIOS.length - 1} on commit \`c0ffee00c0ff\`, 1 on commit \`c0ffee00c0ff\` plus uncommitted changes)`,
    );
  });

  it("keeps a scenario whose files have not changed, so rerunning only the stale ones' tests is enough", () => {
    const previous = first();
    const v2 = made((name) => (name === 'revocation' ? '2' : '1'));
    const rerun = artifactsFor(v2, '2027-02-03T00:00:00.000Z').filter((a) => a.scenario === 'revocation');
    const file = buildFiguresFile({ artifacts: rerun, previous, tree: { ...tree(v2), commit: 'beef' } });
    expect(file.scenarios.revocation?.run).toEqual({ commit: 'beef', dirty: false, date: '2027-02-03' });
    expect(file.scenarios.faults).toEqual(previous.scenarios.faults);
    expect(staleScenarios(file, v2)).toEqual([]);
    expect(provenanceLine(file)).toContain('between 2027-01-02 and 2027-02-03');
    // The artifacts of the first report, still in test-artifacts/, change nothing: no churn.
    const again = buildFiguresFile({
      artifacts: [...artifactsFor(v1).filter((a) => a.scenario !== 'revocation'), ...rerun],
      previous,
      tree: { ...tree(v2), commit: 'beef' },
    });
    expect(again).toEqual(file);
    expect(again.scenarios.faults?.run.commit).toBe('c0ffee00c0ffee00');
  });

  it('refuses a stale scenario with no fresh artifact, naming the files that changed and what to run', () => {
    const previous = first();
    const v2 = made((name) => (name === 'revocation' ? '2' : '1'));
    const build = () => buildFiguresFile({ artifacts: artifactsFor(v1), previous, tree: tree(v2) });
    expect(build).toThrow(
      /- revocation: stale, recorded .* on other code \(changed: test\/revocation\.ts\); run `npx vitest run --project reliability test\/reliability\/revocation\.integ\.test\.ts` again/,
    );
    // …and only that one.
    expect(build).toThrow(
      /cannot make the reliability report:\n- revocation: [^\n]*\nrun `npx vitest run --project reliability test\/reliability\/revocation\.integ\.test\.ts`, then `npm run/,
    );
    expect(staleScenarios(previous, v2).map((s) => [s.scenario.name, s.changes])).toEqual([
      ['revocation', 'changed: test/revocation.ts'],
    ]);
  });

  it('says what to run for stale scenarios in as few commands as it can', () => {
    const named = (...names: string[]) => SCENARIOS.filter((s) => names.includes(s.name));
    expect(
      refreshCommands(named('conflict-retry', 'metering-writes', 'faults', 'revocation', 'soak-60s')),
    ).toEqual([
      'npx vitest run --project integ test/integ/conflict-retry.integ.test.ts test/integ/metering-writes.integ.test.ts',
      'npx vitest run --project reliability test/reliability/faults.integ.test.ts test/reliability/revocation.integ.test.ts',
      'npm run soak',
    ]);
  });

  it('refuses an artifact no row renders, and a scenario never run', () => {
    expect(() =>
      buildFiguresFile({
        artifacts: [
          ...artifactsFor(v1),
          { scenario: 'new-thing', at: '2027-01-01T00:00:00Z', fingerprint: 'sha256:x', files: {} },
        ],
        tree: tree(v1),
      }),
    ).toThrow(/no row renders "new-thing"/);
    expect(() =>
      buildFiguresFile({
        artifacts: artifactsFor(v1).filter((a) => a.scenario !== 'faults'),
        tree: tree(v1),
      }),
    ).toThrow(
      /- faults: never run; run `npx vitest run --project reliability test\/reliability\/faults\.integ\.test\.ts`/,
    );
  });

  it('refuses an artifact that lacks a figure its row states', () => {
    const withoutLag = artifactsFor(v1).map((a) =>
      a.scenario === 'quota-overshoot' ? { ...a, observedLagMs: undefined } : a,
    );
    expect(() => buildFiguresFile({ artifacts: withoutLag, tree: tree(v1) })).toThrow(
      /quota-overshoot: figure "observedLagMs" is missing/,
    );
  });

  it('keeps the full soak of older code, said in its row, until it is run again', () => {
    const previous = first();
    const v2 = made((name) => (name === 'soak-60s' ? '2' : '1'));
    const suite = artifactsFor(v2).filter((a) => a.scenario !== 'soak-60s');
    const file = buildFiguresFile({ artifacts: suite, previous, tree: tree(v2) });
    const kept = previous.scenarios['soak-60s'];
    // Kept with the files it was measured on, which the new file's sources no longer say.
    expect(file.scenarios['soak-60s']).toEqual({
      ...kept,
      staleAtReport: true,
      figures: { ...kept?.figures, files: { 'services/shared.ts': 'shared', 'test/soak-60s.ts': 'own-1' } },
    });
    expect(file.sources['test/soak-60s.ts']).toBeUndefined();
    expect(figuresTable(file)).toMatch(/\*\*Soak, \d+ s\*\* .*\(its code has changed since that run\)/);
    expect(figuresTable(first())).not.toContain('has changed since');
    expect(staleScenarios(file, v2).map((s) => [s.scenario.name, s.changes])).toEqual([
      ['soak-60s', 'changed: test/soak-60s.ts'],
    ]);
  });

  it('with --allow-other-code keeps stale scenarios, marked, and their old fingerprints (so npm test refuses them)', () => {
    const v2 = made((name) => (name === 'faults' ? '2' : '1'));
    const recorded = artifactsFor(v1).map((a) => ({ ...a, recordedOn: { commit: 'old', dirty: false } }));
    const file = buildFiguresFile({ artifacts: recorded, tree: tree(v2), allowOtherCode: true });
    expect(file.scenarios.faults?.staleAtReport).toBe(true);
    expect(file.scenarios.faults?.run.commit).toBe('old');
    expect(file.scenarios.revocation?.staleAtReport).toBeUndefined();
    expect(staleScenarios(file, v2).map((s) => s.scenario.name)).toEqual(['faults']);
  });

  it('a figures file of format 1 (one fingerprint for the tree) is read with every scenario stale', () => {
    const v1File = {
      comment: '',
      run: { commit: 'abc', dirty: false, fingerprint: 'sha256:tree', date: '2026-12-07' },
      scenarios: { faults: { scenario: 'faults', at: '2026-12-07T00:00:00Z', fingerprint: 'sha256:tree' } },
      separate: {
        'soak-60s': {
          run: { commit: 'def', dirty: false, fingerprint: 'sha256:older', date: '2026-12-08' },
          figures: { scenario: 'soak-60s', at: '2026-12-08T00:00:00Z', fingerprint: 'sha256:older' },
        },
      },
    };
    const file = parseFiguresFile(JSON.stringify(v1File));
    expect(file.scenarios['soak-60s']?.run).toEqual({ commit: 'def', dirty: false, date: '2026-12-08' });
    expect(staleScenarios(file, v1).map((s) => [s.scenario.name, s.changes])).toEqual([
      ['soak-60s', 'measured before scenarios had their own fingerprints'],
      ['faults', 'measured before scenarios had their own fingerprints'],
    ]);
  });
});

// --- the fingerprints, over a copy of the tree -------------------------------------------------

describe('each scenario fingerprints the files that decide it (test/reliability/report/fingerprint.ts)', () => {
  const names = ['conflict-retry', 'dynamodb-loopback', 'revocation', 'metering-writes', 'cdk-hardening'];
  const chosen = SCENARIOS.filter((s) => names.includes(s.name));
  let copy = '';
  let base: Map<string, SourceSet>;
  const at = (path: string) => join(copy, path);
  const inCopy = () => scenarioSources(chosen, copy);
  /** The chosen scenarios whose fingerprint differs from the unedited copy's. */
  const staleIn = (now: Map<string, SourceSet>) =>
    names.filter((name) => now.get(name)?.fingerprint !== base.get(name)?.fingerprint);
  /** Runs `check` with `path` of the copy edited (or created), then puts it back. */
  async function edited(path: string, edit: () => void, check: (now: Map<string, SourceSet>) => void) {
    const before = (() => {
      try {
        return readFileSync(at(path));
      } catch {
        return undefined;
      }
    })();
    edit();
    try {
      check(await inCopy());
    } finally {
      if (before) writeFileSync(at(path), before);
      else rmSync(at(path));
    }
  }

  /** The tree's fingerprints at a moment when the copy was made of the same files. */
  let treeWhenCopied: Map<string, SourceSet> | undefined;

  beforeAll(async () => {
    // The tree as git sees it (tracked files and new ones not ignored), into a repository of its own.
    // Others may edit the tree meanwhile: copy again until it stood still while it was copied.
    for (let attempt = 0; attempt < 3 && !treeWhenCopied; attempt++) {
      const before = await scenarioSources(chosen);
      if (copy) rmSync(copy, { recursive: true, force: true });
      copy = mkdtempSync(join(tmpdir(), 'tollgate-fingerprint-'));
      const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
      for (const path of listed.split('\0').filter((p) => p !== '' && existsSync(p))) {
        mkdirSync(dirname(at(path)), { recursive: true });
        cpSync(path, at(path));
      }
      const after = await scenarioSources(chosen);
      if (names.every((n) => before.get(n)?.fingerprint === after.get(n)?.fingerprint))
        treeWhenCopied = after;
    }
    execFileSync('git', ['init', '-q'], { cwd: copy });
    base = await inCopy();
  }, 120_000);
  afterAll(() => rmSync(copy, { recursive: true, force: true }));

  it('depends on the files alone: a copy of them has the same fingerprints as the tree', () => {
    expect(treeWhenCopied, 'the tree kept changing while it was copied').toBeDefined();
    for (const name of names) expect(base.get(name), name).toEqual(treeWhenCopied?.get(name));
  });

  it('an edit to a product file makes stale exactly the scenarios that reach it', async () => {
    // The services/ file the fewest of the chosen scenarios reach, but at least one.
    const reached = (path: string) => names.filter((name) => path in (base.get(name)?.files ?? {}));
    const candidates = [...new Set(names.flatMap((n) => Object.keys(base.get(n)?.files ?? {})))]
      .filter((path) => path.startsWith('services/'))
      .sort((a, b) => reached(a).length - reached(b).length || (a < b ? -1 : 1));
    const file = candidates[0] as string;
    const reaching = reached(file);
    expect(reaching.length).toBeGreaterThan(0);
    expect(reaching.length).toBeLessThan(names.length);
    await edited(
      file,
      () => appendFileSync(at(file), '\n// an edit\n'),
      (now) => {
        expect(staleIn(now)).toEqual(reaching);
        for (const name of reaching) {
          expect(changedFiles(base.get(name)?.files ?? {}, now.get(name)?.files ?? {})).toEqual([file]);
        }
      },
    );
  }, 60_000);

  it("an edit to a scenario's own test makes that scenario alone stale", async () => {
    const test = 'test/integ/conflict-retry.integ.test.ts';
    await edited(
      test,
      () => appendFileSync(at(test), '\n// an edit\n'),
      (now) => expect(staleIn(now)).toEqual(['conflict-retry']),
    );
  }, 60_000);

  it('the harness counts whole, but not the deployables it composes (the scenario names those)', async () => {
    const compose = 'services/key-api/compose.ts';
    // Some harness file composes the key-api (infra/local/ starts every deployable)…
    const harnessFiles = Object.keys(base.get('dynamodb-loopback')?.files ?? {}).filter((p) =>
      p.startsWith('infra/local/'),
    );
    expect(harnessFiles.some((p) => read(at(p)).includes("/services/key-api/compose'"))).toBe(true);
    // …but a scenario that does not call it does not reach it.
    expect(Object.keys(base.get('dynamodb-loopback')?.files ?? {})).not.toContain(compose);
    await edited(
      compose,
      () => appendFileSync(at(compose), '\n// an edit\n'),
      (now) => {
        expect(staleIn(now)).not.toContain('dynamodb-loopback');
        // revocation calls the local stack's key-api, and names it.
        expect(staleIn(now)).toContain('revocation');
      },
    );
    // A file new to the harness (not yet `git add`ed) counts for every scenario on the local stack.
    const step = 'infra/local/a-new-step.ts';
    await edited(
      step,
      () => writeFileSync(at(step), 'export const step = 1;\n'),
      (now) => expect(staleIn(now)).toEqual(names.filter((n) => n !== 'cdk-hardening')),
    );
  }, 60_000);

  it('a new import brings its file into the scenario', async () => {
    const test = 'test/integ/conflict-retry.integ.test.ts';
    const helper = 'test/support/a-new-helper.ts';
    writeFileSync(at(helper), 'export const helper = 1;\n');
    try {
      await edited(
        test,
        () => writeFileSync(at(test), `import '../support/a-new-helper';\n${read(at(test))}`),
        (now) => {
          expect(staleIn(now)).toEqual(['conflict-retry']);
          expect(
            changedFiles(base.get('conflict-retry')?.files ?? {}, now.get('conflict-retry')?.files ?? {}),
          ).toEqual([test, `${helper} (new)`]);
        },
      );
    } finally {
      rmSync(at(helper));
    }
  }, 60_000);

  it('an import that does not resolve (an edit under way) makes the scenario stale, not the fingerprint fail', async () => {
    const test = 'test/integ/conflict-retry.integ.test.ts';
    await edited(
      test,
      () => writeFileSync(at(test), `import '../support/not-there';\n${read(at(test))}`),
      (now) => {
        expect(staleIn(now)).toEqual(['conflict-retry']);
        expect(
          changedFiles(base.get('conflict-retry')?.files ?? {}, now.get('conflict-retry')?.files ?? {}),
        ).toEqual([test, `${test} imports unresolved ../support/not-there (new)`]);
      },
    );
  }, 60_000);

  it('refuses a scenario that names a file which does not exist (moved?)', async () => {
    await expect(scenarioSources([{ name: 'x', decidedBy: ['services/gone.ts'] }], copy)).rejects.toThrow(
      /names files that do not exist .*\n- x: services\/gone\.ts/,
    );
  });
});
