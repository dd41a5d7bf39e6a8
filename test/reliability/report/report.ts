/**
 * `npm run reliability:report`: turns the artifacts the tests wrote (test-artifacts/reliability/)
 * into test/reliability/figures.json, and renders RELIABILITY.md and docs/metering.md's generated
 * block from it. Each scenario is taken from its artifact when that was recorded on the scenario's
 * own files as they are now, else kept from the figures file when those files have not changed
 * since; so after an edit, rerunning the tests of the scenarios it touched is enough. Fails, naming
 * what to run, when a scenario is stale with no fresh artifact, or an artifact has no renderer.
 *
 * `--allow-other-code` keeps stale scenarios too, marked in their rows as measured on older code,
 * for a look at a run made while the code moved on: their fingerprints stay the old ones, so
 * `npm test` calls them stale and such a report cannot be committed green.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FIGURES_DIR } from '../../support/figures';
import {
  type Artifact,
  FIGURES_FILE,
  METERING_MD,
  parseFiguresFile,
  RELIABILITY_MD,
  ROOT,
  TEMPLATE_MD,
} from './figures-file';
import { scenarioSources, treeState } from './fingerprint';
import { buildFiguresFile, renderDocuments, serializeFigures } from './render';
import { SCENARIOS } from './rows';

async function readArtifacts(): Promise<Artifact[]> {
  if (!existsSync(FIGURES_DIR)) return [];
  const names = (await readdir(FIGURES_DIR)).filter((name) => name.endsWith('.json')).sort();
  return Promise.all(
    names.map(async (name) => {
      const artifact = JSON.parse(await readFile(join(FIGURES_DIR, name), 'utf8')) as Artifact;
      if (`${artifact.scenario}.json` !== name || typeof artifact.fingerprint !== 'string') {
        throw new Error(`${name}: not an artifact of recordFigures (test/support/figures.ts)`);
      }
      // An artifact of the time before scenarios had their own fingerprints: stale whatever it says.
      return { ...artifact, files: artifact.files ?? {} };
    }),
  );
}

const allowOtherCode = process.argv.includes('--allow-other-code');

try {
  const artifacts = await readArtifacts();
  const previous = existsSync(FIGURES_FILE)
    ? parseFiguresFile(await readFile(FIGURES_FILE, 'utf8'))
    : undefined;
  const tree = { ...treeState(ROOT), sources: await scenarioSources(SCENARIOS, ROOT) };
  const file = buildFiguresFile({ artifacts, previous, tree, allowOtherCode });
  const documents = renderDocuments(file, {
    template: await readFile(TEMPLATE_MD, 'utf8'),
    metering: await readFile(METERING_MD, 'utf8'),
  });
  await writeFile(FIGURES_FILE, serializeFigures(file));
  await writeFile(RELIABILITY_MD, documents.reliability);
  await writeFile(METERING_MD, documents.metering);
  const names = Object.keys(file.scenarios);
  const anew = names.filter((n) => file.scenarios[n]?.figures.at !== previous?.scenarios[n]?.figures.at);
  const older = names.filter((n) => file.scenarios[n]?.staleAtReport);
  process.stdout.write(
    `reliability report: ${names.length} scenarios; measured anew: ${anew.join(', ') || 'none'}; ` +
      `the other ${names.length - anew.length} kept (their files unchanged)\n` +
      (older.length > 0 ? `  measured on older code (their rows say so): ${older.join(', ')}\n` : '') +
      `  commit ${tree.commit.slice(0, 12)}; wrote test/reliability/figures.json, RELIABILITY.md, docs/metering.md\n`,
  );
  if (older.length > 0 && allowOtherCode) {
    process.stderr.write(`warning: --allow-other-code: npm test will call ${older.join(', ')} stale\n`);
  }
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
