import { parseArgs } from 'node:util';
import { writeResultsJson } from '../lib/results-file';
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
await writeResultsJson(jsonPath, results);
process.stdout.write(`results: ${jsonPath}\ndone in ${Math.round((Date.now() - started) / 1000)} s\n`);
