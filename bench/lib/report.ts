import { costSection, exactnessSection } from './report/cost';
import { howToReadSection, introSection } from './report/intro';
import { cpuSection, httpSection } from './report/key-checks';
import { pacedSection, publishCheckSection, sustainedSection } from './report/sustained';
import { freshnessSection, writesSection } from './report/writes';
import type { BenchResults } from './types';

export { COST_RATES, headlineTable, PACED_HEADLINE_RATE, pacedAt } from './report/headline';

/**
 * BENCHMARKS.md from one run's results, a section per phase in the order they ran; sections of
 * phases that older results lack are left out.
 */
export function renderBenchmarks(r: BenchResults): string {
  const sections = [
    introSection(r),
    howToReadSection(r),
    httpSection(r),
    cpuSection(r),
    writesSection(r),
    freshnessSection(r),
    sustainedSection(r),
    pacedSection(r),
    publishCheckSection(r),
    costSection(r),
    exactnessSection(r),
  ].filter((section) => section !== undefined);
  return `${sections.join('\n\n')}\n`;
}
