/**
 * DataStore values as the pipeline's raw rows carry them. `datastore_search` answers numbers as
 * JSON numbers, booleans as JSON booleans, `timestamp` as ISO text with up to six fraction digits
 * (`2017-10-19T09:51:00.442000`), `date` as a date, `json` as the JSON value itself. The raw zone
 * holds Socrata's shape (scalars as text, timestamps with at most three fraction digits: the cast
 * contract, docs/transform.md), so each value is written in that shape by its field's type.
 */
import type { SourceRow } from '../source-adapter';

/** One field of a `datastore_search` answer. */
export interface CkanField {
  id: string;
  type: string;
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]00(?::?00)?)?$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/**
 * A `timestamp` value in the cast contract's form: milliseconds at most (the curated column keeps
 * no more on Athena), UTC kept as Z. A value in another shape is passed on as it is, so the
 * transform's cast refuses it visibly rather than this code guessing.
 */
export function timestampText(value: string): string {
  const m = TIMESTAMP.exec(value);
  if (!m) return value;
  const fraction = m[3] ? `.${m[3].slice(0, 3)}` : '';
  return `${m[1]}T${m[2]}${fraction}${m[4] ? 'Z' : ''}`;
}

/** One value by its field's DataStore type; null stays null (the raw row leaves it out). */
export function rawValue(type: string, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value !== 'string') return value; // json, arrays: kept as JSON
  if (type === 'timestamp') return timestampText(value);
  // An instant with an offset (`+00:00`, `-05:00`): the cast contract reads UTC instants ending in Z.
  if (type === 'timestamptz' && !Number.isNaN(Date.parse(value))) return new Date(Date.parse(value)).toISOString();
  if (type === 'date' && DATE.test(value)) return `${value}T00:00:00`;
  return value;
}

/**
 * A record as a source row: the declared fields by their types, CKAN's own underscore fields
 * (`_id`, `_full_text`) left out (CKAN forbids field names starting with `_`).
 */
export function rowOf(record: Record<string, unknown>, types: ReadonlyMap<string, string>): SourceRow {
  const row: SourceRow = {};
  for (const [k, v] of Object.entries(record)) {
    if (k.startsWith('_')) continue;
    const value = rawValue(types.get(k) ?? 'text', v);
    if (value !== null) row[k] = value;
  }
  return row;
}
