/**
 * The writers that match readRecords: records as CSV (RFC 4180, a header row, every value a
 * field), NDJSON (one object per line) or a JSON array. The local pipeline writes generated file
 * and S3 sources with them, so what the fetcher reads back is what a publisher's file would hold.
 */
import type { FileFormat } from './read-records';

/** A CSV field, quoted when it holds a comma, quote or line break (a quote doubled inside). */
export function csvField(value: unknown): string {
  const text = value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value as string | number | boolean);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * The text of `records` in `format`, line by line (a CSV's header first): CSV fields are
 * `columns` in that order, a missing value an empty field; NDJSON and JSON keep each record whole.
 */
export function* recordLines(format: FileFormat, records: Iterable<Record<string, unknown>>, columns: readonly string[]): Generator<string> {
  if (format === 'csv') {
    yield `${columns.map(csvField).join(',')}\r\n`;
    for (const r of records) yield `${columns.map((c) => csvField(r[c])).join(',')}\r\n`;
    return;
  }
  if (format === 'ndjson') {
    for (const r of records) yield `${JSON.stringify(r)}\n`;
    return;
  }
  let first = true;
  yield '[';
  for (const r of records) {
    yield `${first ? '' : ','}\n${JSON.stringify(r)}`;
    first = false;
  }
  yield '\n]\n';
}
