/**
 * THE merge: one MERGE INTO statement, rendered per dialect, executed by both engines (Athena on
 * the Iceberg table, DuckDB on the affected years of curated loaded into a table). A key is
 * inserted when new; a curated row is replaced only by a strictly newer version (the same order
 * as the staging dedup) whose declared columns differ (`_content_hash`), so re-merging delivered
 * rows, re-running a batch after a crash, or a publisher's full replace with identical contents
 * changes nothing.
 */
import { INGESTION_METADATA, type DatasetConfig } from '../../../runtime/dataset-config';
import { CONTENT_HASH_COLUMN } from './content-hash';
import { ident, type Dialect } from './dialect';
import { curatedColumns } from './staging';

/** Source row `s` is a newer version than target row `t` (same order as the staging dedup). */
export function newerCondition(s = 's', t = 't'): string {
  const u = ident(INGESTION_METADATA.sourceUpdatedAt);
  const i = ident(INGESTION_METADATA.ingestedAt);
  const sameUpdated = `(${s}.${u} = ${t}.${u} OR (${s}.${u} IS NULL AND ${t}.${u} IS NULL))`;
  return `(${s}.${u} > ${t}.${u} OR (${t}.${u} IS NULL AND ${s}.${u} IS NOT NULL) OR (${sameUpdated} AND (${s}.${i} > ${t}.${i} OR (${t}.${i} IS NULL AND ${s}.${i} IS NOT NULL))))`;
}

/** The declared columns of `s` differ from those of `t` (a NULL hash, from before hashes, differs). */
export function contentChangedCondition(s = 's', t = 't'): string {
  const h = ident(CONTENT_HASH_COLUMN);
  return `(${s}.${h} IS DISTINCT FROM ${t}.${h})`;
}

/** When a matched curated row is replaced: newer AND different content (NULL-safe: never NULL). */
export function replaceCondition(s = 's', t = 't'): string {
  return `coalesce(${newerCondition(s, t)} AND ${contentChangedCondition(s, t)}, false)`;
}

const yearOf = (dataset: DatasetConfig, dialect: Dialect, q?: string): string =>
  `coalesce(${dialect.year(`${q ? `${q}.` : ''}${ident(dataset.eventTimeColumn)}`)}, -1)`;

/**
 * Upsert the staged rows into `target`. `years` (Athena: one MERGE writes at most ~100
 * partitions, so callers pass bounded year groups) restricts the staged rows to those event years.
 */
export function mergeSql(dataset: DatasetConfig, dialect: Dialect, staged: string, target: string, years?: number[]): string {
  const cols = curatedColumns(dataset).map((c) => ident(c.name));
  const pk = ident(dataset.primaryKey);
  const using = years ? `(SELECT * FROM (${staged}) AS staged WHERE ${yearOf(dataset, dialect)} IN (${years.join(', ')}))` : `(${staged})`;
  return `MERGE INTO ${target} AS t
USING ${using} AS s
ON t.${pk} = s.${pk}
WHEN MATCHED AND ${replaceCondition()} THEN UPDATE SET ${cols.filter((c) => c !== pk).map((c) => `${c} = s.${c}`).join(', ')}
WHEN NOT MATCHED THEN INSERT (${cols.join(', ')}) VALUES (${cols.map((c) => `s.${c}`).join(', ')})`;
}

/**
 * What the merge will do, per raw object (`__source_object` of the staged rows), computed with
 * the merge's own condition before it runs: staged keys, inserted, updated (content changed),
 * unchanged, and the event years touched.
 */
export function mergePreviewSql(dataset: DatasetConfig, dialect: Dialect, staged: string, target: string): string {
  const pk = ident(dataset.primaryKey);
  const year = yearOf(dataset, dialect, 's');
  const years = dialect.distinctList(year);
  return `SELECT
  s.${ident('__source_object')} AS source_object,
  count(*) AS staged,
  count_if(t.${pk} IS NULL) AS inserted,
  count_if(t.${pk} IS NOT NULL AND ${replaceCondition()}) AS updated,
  count_if(t.${pk} IS NOT NULL AND NOT ${replaceCondition()}) AS unchanged,
  ${years} AS years
FROM (${staged}) AS s
LEFT JOIN ${target} AS t ON t.${pk} = s.${pk}
GROUP BY s.${ident('__source_object')}`;
}

/**
 * Delete the curated rows whose keys the source no longer has: `gone` selects the key column
 * (named like the primary key) and `__year` (the row's event year, -1 when none). `years`
 * (Athena: bounded groups, like the upsert) restricts it to those event years.
 */
export function deleteMergeSql(dataset: DatasetConfig, gone: string, target: string, years?: number[]): string {
  const pk = ident(dataset.primaryKey);
  const using = years ? `(SELECT * FROM (${gone}) AS gone WHERE ${ident('__year')} IN (${years.join(', ')}))` : `(${gone})`;
  return `MERGE INTO ${target} AS t
USING ${using} AS g
ON t.${pk} = g.${pk}
WHEN MATCHED THEN DELETE`;
}
