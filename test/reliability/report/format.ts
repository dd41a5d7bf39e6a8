/** Number formatting for the generated documents: fixed locale, so a render is the same anywhere. */

/** 20313 → "20,313". */
export const int = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Milliseconds as seconds: 2104 → "2.1 s". */
export const secs = (ms: number, digits = 1): string => `${(ms / 1000).toFixed(digits)} s`;

export const fixed = (n: number, digits: number): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** `{ "204": 34, "400": 6 }` → "204 ×34, 400 ×6" (labels in order). */
export function tally(counts: Record<string, number>, wrap: (label: string) => string = (l) => l): string {
  const entries = Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (entries.length === 0) return 'none';
  return entries.map(([label, n]) => `${wrap(label)} ×${int(n)}`).join(', ');
}

/** "`invalid_json` 2, `too_old` 1" from a tally of codes. */
export const codes = (counts: Record<string, number>): string =>
  Object.entries(counts)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([code, n]) => `\`${code}\` ${int(n)}`)
    .join(', ');

export const sum = (counts: Record<string, number>): number =>
  Object.values(counts).reduce((a, b) => a + b, 0);

/** A recorded answer, `503 service_unavailable` → "503 `service_unavailable`", `200 ok` → "200". */
export const answer = (label: string): string =>
  label.replace(/^(\d+) ok$/, '$1').replace(/^(\d+) (.+)$/, '$1 `$2`');

/** Markdown table cell: no raw pipes or newlines. */
export const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
