import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';

/**
 * Writes a benchmark's results as JSON, in the repository's own format (biome), so `npm run lint`
 * passes on the committed file; if biome cannot run, says how to format it instead of failing.
 */
export async function writeResultsJson(path: string, results: unknown): Promise<void> {
  await writeFile(resolve(path), `${JSON.stringify(results, null, 2)}\n`);
  try {
    execFileSync(resolve('node_modules/.bin/biome'), ['format', '--write', resolve(path)], {
      stdio: 'ignore',
    });
  } catch {
    process.stderr.write(`could not format ${path} with biome: run \`npm run format\`\n`);
  }
}
