/** The number and table formats of BENCHMARKS.md and the headline table. */
export const ms = (v: number | undefined, digits = 1) =>
  v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits);
export const int = (v: number) => Math.round(v).toLocaleString('en-US');
export const ratio = (v: number) => `${v.toFixed(2)}×`;

export function table(header: string[], rows: string[][], align?: string[]): string {
  return [
    `| ${header.join(' | ')} |`,
    `| ${(align ?? header.map((_, i) => (i === 0 ? '---' : '---:'))).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

export const yesNo = (met: boolean) => (met ? 'yes' : 'NO');

/** One section of BENCHMARKS.md: its lines, joined. */
export const lines = (...parts: string[]): string => parts.join('\n');
