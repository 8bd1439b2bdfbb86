/**
 * The statements the Athena engine sends, as pure functions (tested against a Trino grammar).
 * Curated tables are Iceberg (MERGE INTO needs it), partitioned by year(event time), zstd Parquet.
 */
import type { DatasetConfig } from '../../../runtime/dataset-config';
import { athenaDialect, ident, literal, type CuratedType } from './dialect';
import { CHANGE_COLUMNS, historyColumns } from './change-history-sql';
import { mergeSql as genericMergeSql } from './merge-sql';
import { curatedColumns } from './staging';

export const qualified = (database: string, table: string): string => `${ident(database)}.${ident(table)}`;

/** Whether a table exists (returns one row, n = 0 or 1). */
export function tableExistsSql(database: string, table: string): string {
  return `SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = ${literal(database)} AND table_name = ${literal(table)}`;
}

/** The empty curated Iceberg table, created once. */
export function createCuratedTableSql(dataset: DatasetConfig, target: string, location: string): string {
  return createEmptyIcebergTableSql(target, location, curatedColumns(dataset), `year(${dataset.eventTimeColumn})`);
}

/**
 * An empty Iceberg table of these columns (CTAS WITH NO DATA, so Athena takes the types as
 * declared): curated, its history and the change feed differ only in columns and partitioning.
 */
function createEmptyIcebergTableSql(target: string, location: string, columns: readonly { name: string; type: CuratedType }[], partitioning: string): string {
  const cols = columns.map((c) => `CAST(NULL AS ${athenaDialect.typeName(c.type)}) AS ${ident(c.name)}`).join(',\n  ');
  return `CREATE TABLE ${target}
WITH (
  table_type = 'ICEBERG',
  is_external = false,
  location = ${literal(location)},
  partitioning = ARRAY[${literal(partitioning)}],
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

/**
 * Upsert the staged rows whose event year is in `years` (one MERGE writes at most ~100
 * partitions, so callers pass bounded year groups): the shared merge (merge-sql.ts) in Trino.
 */
export function mergeSql(dataset: DatasetConfig, staged: string, target: string, years: number[]): string {
  return genericMergeSql(dataset, athenaDialect, staged, target, years);
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

/** Hive DDL identifiers on Athena (DROP, ALTER TABLE ... RENAME TO) take backticks, not double quotes. */
const hiveQualified = (database: string, table: string): string => {
  const bt = (n: string): string => `\`${n.replace(/`/g, '')}\``;
  return `${bt(database)}.${bt(table)}`;
};

/** Rename an Iceberg table (the swap step of marts and rebuilds). */
export function renameTableSql(database: string, from: string, to: string): string {
  return `ALTER TABLE ${hiveQualified(database, from)} RENAME TO ${hiveQualified(database, to)}`;
}

/**
 * Names of the tables the transform builds aside. `___` cannot occur in a dataset table (no
 * `--` in dataset names) nor in a mart table (`<table>__<mart>`, mart names never start with
 * `_`), so these never collide with a table readers use.
 */
export const asideTableName = (table: string, role: 'next' | 'old' | 'merged_keys' | 'keyset' | 'typed'): string => `${table}___${role}`;

/** `curated.<table>__deletions`: every curated row removed because the source no longer has its key. */
export const deletionsTableName = (table: string): string => `${table}__deletions`;

/**
 * The key scans' lists (`keysets/<dataset>/`, gzipped text, one encoded key per line) as a one-column
 * text table; queries pick one run's parts by "$path". Hive DDL (backticks); `_SUCCESS.json` and
 * `_latest.json` are not read (Athena skips `_` files). The table keeps the aside role name
 * `keyset` (`<table>___keyset`): it already exists in deployed catalogs, and a new name would leave
 * that one behind.
 */
export function createKeyScanTableSql(database: string, table: string, location: string): string {
  return `CREATE EXTERNAL TABLE IF NOT EXISTS ${hiveQualified(database, table)} (\`key\` string)
ROW FORMAT DELIMITED LINES TERMINATED BY '\\n'
STORED AS TEXTFILE
LOCATION ${literal(location)}`;
}

/**
 * The one run's key lists in the key scan table, decoded (runtime/key-list.ts): a `.jsonl.gz` line
 * is a JSON string, CAST from JSON gives its exact text; a `.txt.gz` line (the earlier format) is
 * the key itself.
 */
export function keyScanRawSql(keyScanTable: string, partPaths: string[]): string {
  const k = ident('key');
  return `SELECT CASE WHEN "$path" LIKE '%.jsonl.gz' THEN CAST(json_parse(${k}) AS VARCHAR) ELSE ${k} END AS ${k} FROM ${keyScanTable} WHERE "$path" IN (${partPaths.map(literal).join(', ')})`;
}

/** The deletions table (Iceberg, so a crashed run's records can be replaced by run id). */
export function createDeletionsTableSql(target: string, location: string): string {
  return `CREATE TABLE ${target}
WITH (table_type = 'ICEBERG', is_external = false, location = ${literal(location)}, format = 'PARQUET', write_compression = 'ZSTD') AS
SELECT CAST(NULL AS varchar) AS ${ident('key')}, CAST(NULL AS timestamp(6)) AS ${ident('detected_at')}, CAST(NULL AS varchar) AS ${ident('run_id')}
WITH NO DATA`;
}

/** The table recording the keys each batch merged (reconciliation reads it, never raw). */
export function createMergedKeysTableSql(target: string, location: string): string {
  return `CREATE TABLE ${target}
WITH (table_type = 'ICEBERG', is_external = false, location = ${literal(location)}, format = 'PARQUET', write_compression = 'ZSTD') AS
SELECT CAST(NULL AS varchar) AS ${ident('key')}, CAST(NULL AS varchar) AS ${ident('object')}, CAST(NULL AS varchar) AS ${ident('run_id')}
WITH NO DATA`;
}

/** Record the keys of a staged batch (optionally only those of some event years). */
export function recordMergedKeysSql(dataset: DatasetConfig, staged: string, keysTable: string, runId: string): string {
  return `INSERT INTO ${keysTable} (${ident('key')}, ${ident('object')}, ${ident('run_id')})
SELECT CAST(s.${ident(dataset.primaryKey)} AS varchar), s.${ident('__source_object')}, ${literal(runId)} FROM (${staged}) AS s`;
}

export function mergedKeysCountSql(keysTable: string): string {
  return `SELECT count(DISTINCT ${ident('key')}) AS n FROM ${keysTable}`;
}

export function deleteAllSql(table: string): string {
  return `DELETE FROM ${table}`;
}

/**
 * Iceberg maintenance, Athena's own statements (not Trino syntax, so outside the grammar test):
 * compact small files written by frequent MERGEs, then expire snapshots and remove orphan files.
 */
export function optimizeSql(target: string): string {
  return `OPTIMIZE ${target} REWRITE DATA USING BIN_PACK`;
}

/**
 * VACUUM takes Hive-style names: "double quotes do not work in place of backticks", and a
 * database prefix is not put in backticks (Athena docs, VACUUM). Database names are plain
 * identifiers here (Glue databases of the Storage stack).
 */
export function vacuumSql(database: string, table: string): string {
  return `VACUUM ${database}.\`${table.replace(/`/g, '')}\``;
}

/** The columns a table has (one row per column, `column_name`). */
export function tableColumnsSql(database: string, table: string): string {
  return `SELECT column_name FROM information_schema.columns WHERE table_schema = ${literal(database)} AND table_name = ${literal(table)}`;
}

const hiveTypes: Record<CuratedType, string> = { VARCHAR: 'string', DOUBLE: 'double', BIGINT: 'bigint', TIMESTAMP: 'timestamp', BOOLEAN: 'boolean' };

/**
 * Add curated columns a table created earlier lacks (`_content_hash`, columns declared later):
 * Hive DDL on Athena; existing rows read NULL (a NULL hash differs from any, see merge-sql.ts).
 */
export function addColumnsSql(database: string, table: string, columns: { name: string; type: CuratedType }[]): string {
  const bt = (n: string): string => `\`${n.replace(/`/g, '')}\``;
  return `ALTER TABLE ${hiveQualified(database, table)} ADD COLUMNS (${columns.map((c) => `${bt(c.name)} ${hiveTypes[c.type]}`).join(', ')})`;
}

/**
 * The history table (change-history-sql.ts), Iceberg: all versions of a key in one of 16 key
 * buckets, so a run's MERGE writes at most 16 partitions (within Athena's 100) and a key's
 * history is read from one.
 */
export function createHistoryTableSql(dataset: DatasetConfig, target: string, location: string): string {
  return createEmptyIcebergTableSql(target, location, historyColumns(dataset), `bucket(${dataset.primaryKey}, 16)`);
}

/** The change feed (Iceberg), partitioned by the day its runs recorded it. */
export function createChangesTableSql(target: string, location: string): string {
  return createEmptyIcebergTableSql(target, location, CHANGE_COLUMNS, 'day(changed_at)');
}
