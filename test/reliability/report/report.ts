/**
 * `npm run reliability:report`: turns the artifacts the last run wrote (test-artifacts/reliability/)
 * into test/reliability/figures.json, with the commit, the date and the source fingerprint, and
 * renders RELIABILITY.md and docs/metering.md's generated block from it. Fails, naming what to run,
 * when an expected artifact is missing or was recorded from other code, or one has no renderer.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FIGURES_DIR, FINGERPRINTED, NOT_FINGERPRINTED, sourceFingerprint } from '../../support/figures';
import {
  type Artifact,
  FIGURES_FILE,
  type FiguresFile,
  METERING_MD,
  RELIABILITY_MD,
  ROOT,
  TEMPLATE_MD,
} from './figures-file';
import { buildFiguresFile, renderDocuments, serializeFigures } from './render';
import { SCENARIOS } from './rows';

const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();

async function readArtifacts(): Promise<Artifact[]> {
  if (!existsSync(FIGURES_DIR)) return [];
  const names = (await readdir(FIGURES_DIR)).filter((name) => name.endsWith('.json')).sort();
  return Promise.all(
    names.map(async (name) => {
      const artifact = JSON.parse(await readFile(join(FIGURES_DIR, name), 'utf8')) as Artifact;
      if (`${artifact.scenario}.json` !== name || typeof artifact.fingerprint !== 'string') {
        throw new Error(`${name}: not an artifact of recordFigures (test/support/figures.ts)`);
      }
      return artifact;
    }),
  );
}

/**
 * `--allow-other-code`: take the artifacts' own fingerprint (all must share one) instead of the
 * tree's, for a look at a run made while the code moved on. The figures file then names that
 * fingerprint, so `npm test` still fails as stale: such a report cannot be committed green.
 */
const allowOtherCode = process.argv.includes('--allow-other-code');

try {
  const artifacts = await readArtifacts();
  const tree = sourceFingerprint(ROOT);
  let fingerprint = tree;
  if (allowOtherCode) {
    const suite = new Set(SCENARIOS.filter((s) => !s.separate).map((s) => s.name));
    const seen = new Set(artifacts.filter((a) => suite.has(a.scenario)).map((a) => a.fingerprint));
    if (seen.size !== 1)
      throw new Error(`--allow-other-code: the artifacts come from ${seen.size} trees, not one`);
    fingerprint = [...seen][0] as string;
    if (fingerprint !== tree) {
      process.stderr.write(
        `warning: figures from other code than the tree's (${tree}); npm test will call them stale\n`,
      );
    }
  }
  const previous = existsSync(FIGURES_FILE)
    ? (JSON.parse(await readFile(FIGURES_FILE, 'utf8')) as FiguresFile)
    : undefined;
  const file = buildFiguresFile({
    artifacts,
    previous,
    run: {
      commit: git('rev-parse', 'HEAD'),
      // Uncommitted changes to the fingerprinted files (the report's own output aside).
      dirty: git('status', '--porcelain', '--', ...FINGERPRINTED)
        .split('\n')
        .some((line) => line !== '' && !NOT_FINGERPRINTED.some((path) => line.slice(3).startsWith(path))),
      fingerprint,
      date: '',
    },
  });
  const documents = renderDocuments(file, {
    template: await readFile(TEMPLATE_MD, 'utf8'),
    metering: await readFile(METERING_MD, 'utf8'),
  });
  await writeFile(FIGURES_FILE, serializeFigures(file));
  await writeFile(RELIABILITY_MD, documents.reliability);
  await writeFile(METERING_MD, documents.metering);
  process.stdout.write(
    `reliability report: ${Object.keys(file.scenarios).length} scenarios of ${file.run.date}, commit ` +
      `${file.run.commit.slice(0, 12)}${file.run.dirty ? ' + uncommitted changes' : ''}, ${file.run.fingerprint}\n` +
      `  separate: ${
        Object.entries(file.separate)
          .map(
            ([name, s]) =>
              `${name} of ${s.run.date}${s.run.fingerprint === file.run.fingerprint ? '' : ' (older code)'}`,
          )
          .join(', ') || 'none'
      }\n  wrote test/reliability/figures.json, RELIABILITY.md, docs/metering.md\n`,
  );
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
