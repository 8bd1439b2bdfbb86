/**
 * Curated against the source's key set (the fetcher's key scan), written once and rendered per
 * dialect: both engines run these statements. `rawKeys` is a query yielding one VARCHAR column
 * `key` (a line of the scan's key lists), exactly as the source serves the primary key.
 */
import type { DatasetConfig } from '../../../runtime/dataset-config';
import { curatedTypeOf, ident, literal, type Dialect } from './dialect';

/** The key as curated stores it: the source text cast like staging casts the primary key. */
export function castKey(dataset: DatasetConfig, dialect: Dialect, expr: string): string {
  const column = dataset.columns.find((c) => c.name === dataset.primaryKey);
  const type = curatedTypeOf(column?.type ?? 'text');
  return type === 'VARCHAR' ? expr : dialect.tryCast(expr, type);
}

/** Distinct source keys: `k` (typed like curated; NULL when it does not cast) and `text` (as served). */
export function sourceKeysSql(dataset: DatasetConfig, dialect: Dialect, rawKeys: string): string {
  return `SELECT ${castKey(dataset, dialect, 'r.key')} AS k, min(r.key) AS text FROM (${rawKeys}) AS r GROUP BY 1`;
}

/** Curated rows whose key is not in the source's key set: the deletions (key and event year). */
export function goneKeysSql(dataset: DatasetConfig, dialect: Dialect, curated: string, sourceKeys: string): string {
  const pk = ident(dataset.primaryKey);
  return `SELECT c.${pk} AS ${pk}, coalesce(${dialect.year(`c.${ident(dataset.eventTimeColumn)}`)}, -1) AS ${ident('__year')}
FROM ${curated} AS c
WHERE NOT EXISTS (SELECT 1 FROM (${sourceKeys}) AS s WHERE s.k = c.${pk})`;
}

/** Source keys (as served) that curated lacks; keys that do not cast can never be curated and are left out. */
export function missingKeysSql(dataset: DatasetConfig, curated: string, sourceKeys: string): string {
  const pk = ident(dataset.primaryKey);
  return `SELECT s.text AS key FROM (${sourceKeys}) AS s
WHERE s.k IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ${curated} AS c WHERE c.${pk} = s.k)
ORDER BY s.text`;
}

/** Counts for the summary and the mass-delete guard: curated rows, distinct source keys, gone keys. */
export function keyScanCountsSql(dataset: DatasetConfig, dialect: Dialect, curated: string, sourceKeys: string): string {
  return `SELECT
  (SELECT count(*) FROM ${curated}) AS curated_rows,
  (SELECT count(*) FROM (${sourceKeys}) AS s WHERE s.k IS NOT NULL) AS source_keys,
  (SELECT count(*) FROM (${goneKeysSql(dataset, dialect, curated, sourceKeys)}) AS g) AS gone`;
}

/** One row per deletion for `<table>__deletions`: the key (as text), when it was detected, the run. */
export function deletionRecordsSql(dataset: DatasetConfig, dialect: Dialect, gone: string, detectedAt: Date, runId: string): string {
  const ts = detectedAt.toISOString().replace('T', ' ').replace('Z', '');
  return `SELECT CAST(g.${ident(dataset.primaryKey)} AS ${dialect.typeName('VARCHAR')}) AS ${ident('key')}, TIMESTAMP '${ts}' AS ${ident('detected_at')}, ${literal(runId)} AS ${ident('run_id')}
FROM (${gone}) AS g`;
}
