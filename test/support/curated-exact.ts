/**
 * "Curated is exact": the curated table holds the source's keys, no more, no fewer, each with the
 * source record's values as its declared types read them. Expected values come from the records
 * the source served (a file's, S3 objects'), read by each column's path as the adapter reads them.
 */
import assert from 'node:assert/strict';
import { queryCatalog, defaultCatalogPath } from '../../containers/transform/src/catalog';
import { tableName, type DatasetConfig } from '../../runtime/dataset-config';
import { valueAt } from '../../runtime/file-formats';

/** A timestamp's instant, whichever way it is written (DuckDB: `2020-05-03 01:21:57.35`, in UTC). */
export const instant = (v: unknown): string => {
  const t = String(v as string).replace(' ', 'T');
  return new Date(/(Z|[+-]\d\d(:?\d\d)?)$/.test(t) ? t : `${t}Z`).toISOString();
};

/** A value of the column's type, as text both sides can be compared in (null: missing). */
function comparable(type: string, v: unknown): string | null {
  if (v === undefined || v === null || v === '') return null;
  if (type === 'integer' || type === 'number') return String(Number(v));
  if (type === 'checkbox') return String(v === true || v === 'true');
  if (type.endsWith('timestamp')) return instant(v);
  return typeof v === 'object' ? JSON.stringify(v) : String(v as string);
}

/**
 * The source's rows by primary key, each column read at its path; a composite `source.key` is
 * the JSON array of its parts (as the S3 adapter writes it). Records missing a key part are left
 * out: the adapter quarantines them.
 */
export function sourceRowsByKey(dataset: DatasetConfig, records: Iterable<Record<string, unknown>>): Map<string, Record<string, unknown>> {
  const composite = dataset.source.type === 's3' ? dataset.source.key : undefined;
  const keyColumn = dataset.columns.find((c) => c.name === dataset.primaryKey)!;
  const out = new Map<string, Record<string, unknown>>();
  for (const record of records) {
    const parts = composite?.map((p) => valueAt(record, p));
    if (parts?.some((p) => p === undefined || p === null || p === '')) continue;
    const key = parts ? JSON.stringify(parts) : comparable(keyColumn.type, keyColumn.field !== undefined ? record[keyColumn.field] : valueAt(record, keyColumn.path ?? keyColumn.name));
    if (key === null) continue;
    out.set(key, Object.fromEntries(dataset.columns.map((c) => [c.name, c.field !== undefined ? record[c.field] : valueAt(record, c.path ?? c.name)])));
  }
  return out;
}

/** Asserts curated holds exactly `source`'s keys, each with the source's values typed. */
export async function assertCuratedExact(dataDir: string, dataset: DatasetConfig, source: Map<string, Record<string, unknown>>): Promise<void> {
  const select = dataset.columns.map((c) => `CAST("${c.name}" AS VARCHAR) AS "${c.name}"`).join(', ');
  const { rows } = await queryCatalog(defaultCatalogPath(dataDir), `SELECT ${select} FROM curated.${tableName(dataset)}`);
  const keyColumn = dataset.columns.find((c) => c.name === dataset.primaryKey)!;
  const table = new Map(rows.map((r) => [keyColumn.type === 'text' ? String(r[dataset.primaryKey]) : comparable(keyColumn.type, r[dataset.primaryKey])!, r]));
  assert.deepEqual([...table.keys()].sort(), [...source.keys()].sort(), `${dataset.name}: curated keys are the source keys`);
  for (const [key, want] of source) {
    const got = table.get(key)!;
    for (const c of dataset.columns) {
      if (c.name === dataset.primaryKey) continue;
      assert.equal(comparable(c.type, got[c.name]), comparable(c.type, want[c.name]), `${dataset.name} ${key} ${c.name}`);
    }
  }
}
