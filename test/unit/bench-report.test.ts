import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderBenchmarks } from '../../bench/lib/report';
import type { BenchResults } from '../../bench/lib/types';

// BENCHMARKS.md is generated (`npm run bench`) from bench/results.json, which the same run wrote.
// Reads only committed files: no stack, no load; so a change to the report's code that would change
// the document fails here instead of at the next full run.
const read = (path: string) => readFileSync(path, 'utf8');

describe('BENCHMARKS.md', () => {
  it('is what the committed bench/results.json renders, byte for byte (no hand edits)', () => {
    const results = JSON.parse(read('bench/results.json')) as BenchResults;
    expect(
      renderBenchmarks(results),
      'BENCHMARKS.md differs from what bench/results.json renders: change bench/lib/report*, not the file; then `npx tsx bench/render.ts` (or `npm run bench`)',
    ).toBe(read('BENCHMARKS.md'));
  });
});
