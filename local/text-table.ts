/** Query results as a plain-text table, as `npm run query` and the `npm run local` sample print them. */

/**
 * A number as DuckDB's JSON rows give it: a JS number or bigint, or the lossless string of a
 * DECIMAL / HUGEINT. A string with a leading zero ("01") is a code, not a number.
 */
const NUMERIC_TEXT = /^-?(0|[1-9]\d*)(\.\d+)?$/;
const isNumeric = (v: unknown): boolean => typeof v === 'number' || typeof v === 'bigint' || (typeof v === 'string' && NUMERIC_TEXT.test(v));

/**
 * Numbers are right-aligned (digits line up), header included; a column counts as numeric when
 * every non-NULL value in it is a number.
 */
export function formatTable(columns: string[], rows: Record<string, unknown>[]): string {
  const cell = (v: unknown): string => (v === null || v === undefined ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = columns.map((c) => Math.min(60, Math.max(c.length, ...rows.map((r) => cell(r[c]).length))));
  const numeric = columns.map((c) => {
    const values = rows.map((r) => r[c]).filter((v) => v !== null && v !== undefined);
    return values.length > 0 && values.every(isNumeric);
  });
  const fit = (v: string, i: number): string => {
    const w = widths[i]!;
    if (v.length > w) return `${v.slice(0, w - 1)}…`;
    return numeric[i] ? v.padStart(w) : v.padEnd(w);
  };
  const line = (vals: string[]): string => vals.map(fit).join(' | ');
  return [line(columns), widths.map((w) => '-'.repeat(w)).join('-+-'), ...rows.map((r) => line(columns.map((c) => cell(r[c])))), `(${rows.length} row${rows.length === 1 ? '' : 's'})`].join('\n');
}
