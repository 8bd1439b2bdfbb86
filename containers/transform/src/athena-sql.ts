/**
 * The statements the Athena engine sends, as pure functions (tested against a Trino grammar).
 * Curated tables are Iceberg (MERGE INTO needs it), partitioned by year(event time), zstd Parquet.
 */
import { INGESTION_METADATA, type DatasetConfig } from '../../../runtime/dataset-config';
import { athenaDialect, ident, literal } from './dialect';
import { curatedColumns, stagingSql } from './staging';

export const qualified = (database: string, table: string): string => `${ident(database)}.${ident(table)}`;

/** Whether a table exists (returns one row, n = 0 or 1). */
export function tableExistsSql(database: string, table: string): string {
  return `SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = ${literal(database)} AND table_name = ${literal(table)}`;
}

/** The empty curated Iceberg table, created once. */
export function createCuratedTableSql(dataset: DatasetConfig, target: string, location: string): string {
  const cols = curatedColumns(dataset)
    .map((c) => `CAST(NULL AS ${athenaDialect.typeName(c.type)}) AS ${ident(c.name)}`)
    .join(',\n  ');
  return `CREATE TABLE ${target}
WITH (
  table_type = 'ICEBERG',
  is_external = false,
  location = ${literal(location)},
  partitioning = ARRAY[${literal(`year(${dataset.eventTimeColumn})`)}],
  format = 'PARQUET',
  write_compression = 'ZSTD'
) AS
SELECT
  ${cols}
WITH NO DATA`;
}

/** The raw rows of some objects: the Glue raw table, pruned by partition and by object path. */
export function rawBatchSql(rawTable: string, objects: { ingestDate: string; path: string }[]): string {
  const dates = [...new Set(objects.map((o) => o.ingestDate))].sort();
  return `(SELECT *, "$path" AS ${ident('__source_object')} FROM ${rawTable}
  WHERE ingest_date IN (${dates.map(literal).join(', ')})
    AND "$path" IN (${objects.map((o) => literal(o.path)).join(', ')}))`;
}

/** Source row `s` is a newer version than target row `t` (same order as the staging dedup). */
export function newerCondition(s = 's', t = 't'): string {
  const u = ident(INGESTION_METADATA.sourceUpdatedAt);
  const i = ident(INGESTION_METADATA.ingestedAt);
  const sameUpdated = `(${s}.${u} = ${t}.${u} OR (${s}.${u} IS NULL AND ${t}.${u} IS NULL))`;
  return `(${s}.${u} > ${t}.${u} OR (${t}.${u} IS NULL AND ${s}.${u} IS NOT NULL) OR (${sameUpdated} AND (${s}.${i} > ${t}.${i} OR (${t}.${i} IS NULL AND ${s}.${i} IS NOT NULL))))`;
}

/** Staged (typed, one row per key) rows of a raw batch. */
export function stagedBatchSql(dataset: DatasetConfig, rawBatch: string): string {
  return stagingSql(dataset, athenaDialect, rawBatch, ident('__source_object'));
}

/** How the staged batch compares with the curated table (before the merge). */
export function mergePreviewSql(dataset: DatasetConfig, staged: string, target: string): string {
  const pk = ident(dataset.primaryKey);
  const year = `coalesce(${athenaDialect.year(`s.${ident(dataset.eventTimeColumn)}`)}, -1)`;
  return `SELECT
  count(*) AS staged,
  count_if(t.${pk} IS NULL) AS inserted,
  count_if(t.${pk} IS NOT NULL AND ${newerCondition()}) AS updated,
  count_if(t.${pk} IS NOT NULL AND NOT ${newerCondition()}) AS unchanged,
  array_join(array_sort(array_agg(DISTINCT ${year})), ',') AS years
FROM (${staged}) AS s
LEFT JOIN ${target} AS t ON t.${pk} = s.${pk}`;
}

/**
 * Upsert the staged rows whose event year is in `years` (one MERGE writes at most ~100
 * partitions, so callers pass bounded year groups). A key is replaced only by a newer version.
 */
export function mergeSql(dataset: DatasetConfig, staged: string, target: string, years: number[]): string {
  const cols = curatedColumns(dataset).map((c) => ident(c.name));
  const pk = ident(dataset.primaryKey);
  const year = `coalesce(${athenaDialect.year(ident(dataset.eventTimeColumn))}, -1)`;
  return `MERGE INTO ${target} AS t
USING (SELECT * FROM (${staged}) AS staged WHERE ${year} IN (${years.join(', ')})) AS s
ON t.${pk} = s.${pk}
WHEN MATCHED AND ${newerCondition()} THEN UPDATE SET ${cols.filter((c) => c !== pk).map((c) => `${c} = s.${c}`).join(', ')}
WHEN NOT MATCHED THEN INSERT (${cols.join(', ')}) VALUES (${cols.map((c) => `s.${c}`).join(', ')})`;
}

/** DROP is Hive DDL on Athena: backtick quoting, not double quotes. */
export function dropTableSql(database: string, table: string): string {
  const bt = (n: string): string => `\`${n.replace(/`/g, '')}\``;
  return `DROP TABLE IF EXISTS ${bt(database)}.${bt(table)}`;
}

/** A mart materialized as its own Iceberg table at a fresh location. */
export function martCtasSql(target: string, location: string, select: string): string {
  return `CREATE TABLE ${target}
WITH (table_type = 'ICEBERG', is_external = false, location = ${literal(location)}, format = 'PARQUET', write_compression = 'ZSTD')
AS ${select}`;
}

/** Split partition values into groups a single write may touch (Athena: at most 100 partitions). */
export function partitionGroups<T>(values: T[], maxPerWrite = 100): T[][] {
  const groups: T[][] = [];
  for (let i = 0; i < values.length; i += maxPerWrite) groups.push(values.slice(i, i + maxPerWrite));
  return groups;
}
