import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { renderBenchmarks } from './lib/report';
import type { BenchResults } from './lib/types';

/**
 * Renders BENCHMARKS.md again from saved results, with no load: for a change to the report's
 * wording (bench/lib/report*), which test/unit/bench-report.test.ts otherwise refuses.
 *
 *   npx tsx bench/render.ts [--results bench/results.json] [--out BENCHMARKS.md]
 */
const { values } = parseArgs({
  options: {
    results: { type: 'string', default: 'bench/results.json' },
    out: { type: 'string', default: 'BENCHMARKS.md' },
  },
});
const results = JSON.parse(await readFile(resolve(values.results), 'utf8')) as BenchResults;
await writeFile(resolve(values.out), renderBenchmarks(results));
process.stdout.write(`report: ${values.out} (from ${values.results})\n`);
