import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { headlineTable, renderBenchmarks } from './lib/report';
import { writeResultsJson } from './lib/results-file';
import { PROFILES, runBench } from './lib/run-bench';

/**
 * `npm run bench`: starts a local stack of its own (temp data dir, free ports, quiet), runs every
 * benchmark against it in one process tree, prints the side-by-side table, and writes
 * bench/results.json (what `npm run cost` reads) and BENCHMARKS.md.
 *
 *   npm run bench                       the full run (about 12 minutes)
 *   npm run bench -- --profile smoke    a few seconds of load each, for a quick look (writes nothing
 *                                       unless --out-json / --out-md are given)
 */
const { values } = parseArgs({
  options: {
    profile: { type: 'string', default: 'full' },
    'out-json': { type: 'string' },
    'out-md': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(
    'usage: npm run bench -- [--profile full|smoke] [--out-json bench/results.json] [--out-md BENCHMARKS.md]\n',
  );
  process.exit(0);
}
const profile =
  values.profile === 'smoke' ? PROFILES.smoke : values.profile === 'full' ? PROFILES.full : undefined;
if (!profile) {
  process.stderr.write(`unknown profile ${values.profile}: use full or smoke\n`);
  process.exit(2);
}
const full = profile.profile === 'full';
const jsonPath = values['out-json'] ?? (full ? 'bench/results.json' : undefined);
const mdPath = values['out-md'] ?? (full ? 'BENCHMARKS.md' : undefined);
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const started = Date.now();
const results = await runBench({
  settings: profile,
  log: (line) =>
    process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`),
});

process.stdout.write(`\n${headlineTable(results)}\n\n`);
if (jsonPath) {
  await writeResultsJson(jsonPath, results);
  process.stdout.write(`results: ${jsonPath}\n`);
}
if (mdPath) {
  await writeFile(resolve(mdPath), renderBenchmarks(results));
  process.stdout.write(`report:  ${mdPath}\n`);
}
process.stdout.write(`done in ${Math.round((Date.now() - started) / 1000)} s\n`);
if (!results.exact) {
  process.stderr.write('usage counts did NOT match the 200s answered: see the exactness checks\n');
  process.exit(1);
}
// Children are stopped; nothing should hold the loop, but do not wait on a stray handle.
process.exit(0);
