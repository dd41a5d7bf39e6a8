/**
 * CSV lines (RFC 4180) for the user API's downloads: the usage CSV and the admins' month report.
 * A field is written as it is when it holds only plain characters (those of ids, emails, route
 * templates and ISO times), else quoted with its quotes doubled. A field a spreadsheet would take for
 * a formula (a leading `= + - @`) is quoted and prefixed with `'`, so opening the file runs nothing.
 * Twenty lines, so no CSV library.
 */

const PLAIN = /^[A-Za-z0-9 _.:/@+*{}#-]*$/;
const FORMULA = /^[=+\-@]/;

function csvField(value: string | number): string {
  if (typeof value === 'number') return String(value);
  if (FORMULA.test(value)) return `"'${value.replaceAll('"', '""')}"`;
  return PLAIN.test(value) ? value : `"${value.replaceAll('"', '""')}"`;
}

/** One line of fields, CRLF-terminated. */
export const csvLine = (fields: readonly (string | number)[]): string =>
  `${fields.map(csvField).join(',')}\r\n`;

/**
 * Whether a download route answers CSV: `format` decides when given; else an Accept header that
 * names text/csv before application/json (or without it).
 */
export function wantsCsv(format: 'json' | 'csv' | undefined, accept: string | undefined): boolean {
  if (format !== undefined) return format === 'csv';
  if (!accept) return false;
  const csv = accept.indexOf('text/csv');
  const json = accept.indexOf('application/json');
  return csv >= 0 && (json < 0 || csv < json);
}

/** The headers of a CSV download named `filename`. */
export const csvHeaders = (filename: string): Record<string, string> => ({
  'content-type': 'text/csv; charset=utf-8',
  'content-disposition': `attachment; filename="${filename}"`,
});
