import { parseArgs } from 'node:util';
import { LAYOUT_PROFILES } from './layout/profiles';
import { layoutTables } from './layout/report';
import { runLayoutBench } from './layout/run-layout';
import { refusals } from './layout/verdict';
import { writeResultsJson } from './lib/results-file';

/**
 * `npm run bench:layout`: what issue 24's hourly counts cost. On a local stack of its own, each
 * transport's metering meters events at a steady rate once with today's counters (hours) and once
 * with the previous layout (the same code, hour ADDs removed at the client: bench/layout/
 * previous-layout.ts); then the counters written are sized, and the 30-day per-key usage answer's
 * read units are measured. Prints the tables and writes bench/layout-results.json, unless the
 * results are refused (bench/layout/verdict.ts): then it writes nothing and exits 1.
 *
 *   npm run bench:layout                      the full run (about 3 minutes)
 *   npm run bench:layout -- --profile smoke   seconds of load, exactness only (writes nothing
 *                                             unless --out-json is given)
 */
const { values } = parseArgs({
  options: {
    profile: { type: 'string', default: 'full' },
    'out-json': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(
    'usage: npm run bench:layout -- [--profile full|smoke] [--out-json bench/layout-results.json]\n',
  );
  process.exit(0);
}
const settings =
  values.profile === 'smoke'
    ? LAYOUT_PROFILES.smoke
    : values.profile === 'full'
      ? LAYOUT_PROFILES.full
      : undefined;
if (!settings) {
  process.stderr.write(`unknown profile ${values.profile}: use full or smoke\n`);
  process.exit(2);
}
const jsonPath =
  values['out-json'] ?? (settings.profile === 'full' ? 'bench/layout-results.json' : undefined);
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const started = Date.now();
const results = await runLayoutBench({
  settings,
  log: (line) =>
    process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`),
});
process.stdout.write(`\n${layoutTables(results)}\n\n`);
const refused = refusals(results);
if (refused.length > 0) {
  process.stderr.write(`refused, nothing written:\n${refused.map((r) => `  - ${r}`).join('\n')}\n`);
  process.exit(1);
}
if (jsonPath) {
  await writeResultsJson(jsonPath, results);
  process.stdout.write(`results: ${jsonPath}\n`);
}
process.stdout.write(`done in ${Math.round((Date.now() - started) / 1000)} s\n`);
process.exit(0);
