import type { LayoutResults } from './run-layout';

/** Hours may cost at most this much more per event than the previous layout (issue 24). */
export const MAX_RATIO = 1.05;
/** The common counter item stays under one write unit's worth of bytes. */
export const MAX_MEDIAN_BYTES = 1024;

/**
 * Why the results must not be kept, or nothing. Counts that are not exact always refuse; the
 * ratios and the item size only when the profile refuses (full; smoke's seconds of load say
 * nothing about them).
 */
export function refusals(results: LayoutResults): string[] {
  const out: string[] = [];
  if (!results.exact) out.push('counts are not exact (see each run, the items and the answers)');
  if (!results.settings.refuse) return out;
  for (const [transport, comparison] of Object.entries(results.byTransport)) {
    for (const [what, ratio] of Object.entries(comparison.ratio)) {
      if (!(ratio <= MAX_RATIO))
        out.push(`${transport}: ${what} per event hours / previous = ${ratio} > ${MAX_RATIO}`);
    }
    const median = comparison.hours.items.medianBytes;
    if (median >= MAX_MEDIAN_BYTES)
      out.push(`${transport}: median counter item ${median} B ≥ ${MAX_MEDIAN_BYTES} B`);
  }
  return out;
}
