import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runSweeps } from './sweep';
import { contentionTables } from './table';

/**
 * `npm run bench:contention`: the model of ledger head contention on AWS (issue 25), which the
 * local stack cannot measure: a deterministic discrete-event simulation of event source pollers
 * committing batches through one head (bench/contention/simulate.ts), swept over rate, pollers,
 * producers and flush profiles, with the sharding rule (bench/contention/shard.ts). Prints the
 * tables and writes bench/contention-results.json (docs/metering.md, "Head contention on AWS").
 *
 *   npm run bench:contention                         about half a minute
 *   npm run bench:contention -- --out-json <path>    write the results elsewhere
 */
const { values } = parseArgs({
  options: { 'out-json': { type: 'string', default: 'bench/contention-results.json' } },
});
const jsonPath = values['out-json'];
const started = Date.now();
const results = runSweeps((line) =>
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(3)} s] ${line}\n`),
);
process.stdout.write(`\n${contentionTables(results)}\n\n`);
await writeFile(resolve(jsonPath), `${JSON.stringify(results, null, 2)}\n`);
// In the repository's own format, so `npm run lint` passes on the committed file.
try {
  execFileSync(resolve('node_modules/.bin/biome'), ['format', '--write', resolve(jsonPath)], {
    stdio: 'ignore',
  });
} catch {
  process.stderr.write(`could not format ${jsonPath} with biome: run \`npm run format\`\n`);
}
process.stdout.write(`results: ${jsonPath}\ndone in ${Math.round((Date.now() - started) / 1000)} s\n`);
