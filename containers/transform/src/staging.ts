/**
 * The staging model, generated from the dataset's declared columns: every raw value arrives as a
 * string (or a GeoJSON object for points); staging casts each to its curated type, keeps the
 * ingestion metadata, and keeps exactly one row per primary key (newest `_source_updated_at`,
 * then newest `_ingested_at`). One definition, rendered by a Dialect for DuckDB or Athena.
 */
import {
  INGESTION_METADATA,
  pointFieldNamesOf,
  type DatasetConfig,
} from '../../../runtime/dataset-config';
import { CONTENT_HASH_COLUMN, contentHashSql } from './content-hash';
import type { CuratedColumn, RawColumn } from './columns';
import { curatedTypeOf, ident, type Dialect } from './dialect';

/** Columns of the raw rows as the fetcher writes them, declared explicitly so absent columns read as NULL. */
export function rawColumns(dataset: DatasetConfig): RawColumn[] {
  const cols: RawColumn[] = [];
  for (const c of dataset.columns) {
    cols.push({ name: c.name, kind: c.type === 'point' ? 'json' : 'text' });
    if (c.type === 'point') {
      const p = pointFieldNamesOf(c);
      cols.push({ name: p.longitude, kind: 'text' }, { name: p.latitude, kind: 'text' });
    }
  }
  for (const m of Object.values(INGESTION_METADATA)) cols.push({ name: m, kind: 'text' });
  return cols;
}

/** Columns of the curated table in order (same names as curatedColumnNames()). */
export function curatedColumns(dataset: DatasetConfig): CuratedColumn[] {
  const cols: CuratedColumn[] = [];
  for (const c of dataset.columns) {
    const type = curatedTypeOf(c.type);
    cols.push({ name: c.name, type, source: c.name, castable: type !== 'VARCHAR', point: c.type === 'point' });
    if (c.type === 'point') {
      const p = pointFieldNamesOf(c);
      cols.push(
        { name: p.longitude, type: 'DOUBLE', source: p.longitude, castable: true },
        { name: p.latitude, type: 'DOUBLE', source: p.latitude, castable: true },
      );
    }
  }
  cols.push(
    { name: INGESTION_METADATA.ingestedAt, type: 'TIMESTAMP', source: INGESTION_METADATA.ingestedAt, castable: true },
    { name: INGESTION_METADATA.runId, type: 'VARCHAR', source: INGESTION_METADATA.runId, castable: false },
    { name: INGESTION_METADATA.sourceUpdatedAt, type: 'TIMESTAMP', source: INGESTION_METADATA.sourceUpdatedAt, castable: true },
    { name: INGESTION_METADATA.sourceId, type: 'VARCHAR', source: INGESTION_METADATA.sourceId, castable: false },
    { name: CONTENT_HASH_COLUMN, type: 'VARCHAR', source: CONTENT_HASH_COLUMN, castable: false, computed: true },
  );
  return cols;
}

function castExpr(col: CuratedColumn, dialect: Dialect): string {
  if (col.point) return dialect.pointText(ident(col.source));
  const src = `CAST(${ident(col.source)} AS ${dialect.typeName('VARCHAR')})`;
  return col.type === 'VARCHAR' ? src : dialect.tryCast(src, col.type);
}

/** A raw row is malformed when nothing in it could be read (the JSON readers yield an all-NULL row). */
export function malformedCondition(dataset: DatasetConfig): string {
  return `(${rawColumns(dataset)
    .map((c) => `${ident(c.name)} IS NULL`)
    .join(' AND ')})`;
}

/**
 * Counts over a batch of raw rows: rows, malformed lines, rows without a key, and per castable
 * column the values present in raw that did not cast (`cast_failures__<column>`).
 */
export function batchProfileSql(dataset: DatasetConfig, dialect: Dialect, source: string): string {
  const pk = ident(dataset.primaryKey);
  const malformed = malformedCondition(dataset);
  const parts = [
    'count(*) AS rows_read',
    `count_if(${malformed}) AS malformed_rows`,
    `count_if(NOT ${malformed} AND ${pk} IS NULL) AS rows_without_key`,
    `count(DISTINCT ${pk}) AS distinct_keys`,
  ];
  for (const c of curatedColumns(dataset).filter((c) => c.castable)) {
    parts.push(
      `count_if(${ident(c.source)} IS NOT NULL AND ${castExpr(c, dialect)} IS NULL) AS ${ident(`cast_failures__${c.name}`)}`,
    );
  }
  return `SELECT\n  ${parts.join(',\n  ')}\nFROM ${source}`;
}

/** Newest version first: the staging dedup's order (and the merge's "newer", merge-sql.ts). */
function versionOrder(tie?: string): string {
  return `${ident(INGESTION_METADATA.sourceUpdatedAt)} DESC NULLS LAST, ${ident(INGESTION_METADATA.ingestedAt)} DESC NULLS LAST${tie ? `, ${tie} DESC` : ''}`;
}

/**
 * Typed, deduplicated rows of a raw batch: one row per primary key, the newest source version
 * winning, with its `_content_hash`. `tieBreaker` (a raw expression, e.g. the source object's
 * name, compared descending) makes exact ties deterministic and is kept as `__source_object`, so
 * the merge can say what each raw object contributed.
 */
export function stagingSql(dataset: DatasetConfig, dialect: Dialect, source: string, tieBreaker?: string): string {
  const all = curatedColumns(dataset);
  const cols = all.filter((c) => !c.computed);
  const select = cols.map((c) => `${castExpr(c, dialect)} AS ${ident(c.name)}`).join(',\n      ');
  const names = cols.map((c) => ident(c.name)).join(', ');
  const tie = ident('__tie');
  return `SELECT ${names},
  ${contentHashSql(all, dialect)} AS ${ident(CONTENT_HASH_COLUMN)}${tieBreaker ? `,\n  ${tie} AS ${ident('__source_object')}` : ''}
FROM (
  SELECT ${names}${tieBreaker ? `, ${tie}` : ''},
    row_number() OVER (
      PARTITION BY ${ident(dataset.primaryKey)}
      ORDER BY ${versionOrder(tieBreaker ? tie : undefined)}
    ) AS ${ident('__version_rank')}
  FROM (
    SELECT
      ${select}${tieBreaker ? `,\n      ${tieBreaker} AS ${tie}` : ''}
    FROM ${source}
    WHERE NOT ${malformedCondition(dataset)} AND ${ident(dataset.primaryKey)} IS NOT NULL
  ) AS typed
) AS ranked
WHERE ${ident('__version_rank')} = 1`;
}

/*
 * The same staging in two steps (the DuckDB engine): stagingSql reads the raw rows twice (the
 * profile's casts, then the staging's) and ranks every key's versions even when each key occurs
 * once. Here one pass types every raw row once, with its content hash and the flags the profile
 * needs; the profile is then plain counts over the typed rows, and the version ranking runs only
 * when some key occurs more than once (otherwise it would keep every row). Same rows, same
 * counters: test/transform/staging-two-step.test.ts compares both forms on one batch.
 */
const MALFORMED = ident('__malformed');
const KEYED = ident('__keyed');
const presentFlag = (c: CuratedColumn): string => ident(`__present__${c.name}`);

/**
 * Every raw row of `source` typed (malformed and keyless rows too, flagged): the curated columns
 * with `_content_hash`, `tieBreaker` as `__source_object`, `__malformed`, `__keyed` (a raw
 * primary key is present) and, per castable column, `__present__<column>` (a raw value is present:
 * present but NULL once typed is a cast failure).
 */
export function typedBatchSql(dataset: DatasetConfig, dialect: Dialect, source: string, tieBreaker: string): string {
  const all = curatedColumns(dataset);
  const cols = all.filter((c) => !c.computed);
  const select = [
    ...cols.map((c) => `${castExpr(c, dialect)} AS ${ident(c.name)}`),
    `${tieBreaker} AS ${ident('__source_object')}`,
    `${malformedCondition(dataset)} AS ${MALFORMED}`,
    `${ident(dataset.primaryKey)} IS NOT NULL AS ${KEYED}`,
    ...cols.filter((c) => c.castable).map((c) => `${ident(c.source)} IS NOT NULL AS ${presentFlag(c)}`),
  ];
  return `SELECT *, ${contentHashSql(all, dialect)} AS ${ident(CONTENT_HASH_COLUMN)}
FROM (
  SELECT
    ${select.join(',\n    ')}
  FROM ${source}
) AS typed`;
}

/**
 * The batch profile (batchProfileSql's counters) over typed rows, plus what decides whether the
 * version ranking is needed: `keyed_rows` (rows with a raw key) and `key_partitions` (the groups
 * the ranking would form: distinct typed keys, keys that do not cast being one NULL group).
 */
export function typedProfileSql(dataset: DatasetConfig, typed: string): string {
  const pk = ident(dataset.primaryKey);
  const parts = [
    'count(*) AS rows_read',
    `count_if(${MALFORMED}) AS malformed_rows`,
    `count_if(NOT ${MALFORMED} AND NOT ${KEYED}) AS rows_without_key`,
    `count_if(${KEYED}) AS keyed_rows`,
    `count(DISTINCT ${pk}) FILTER (WHERE ${KEYED}) + CASE WHEN count_if(${KEYED} AND ${pk} IS NULL) > 0 THEN 1 ELSE 0 END AS key_partitions`,
  ];
  for (const c of curatedColumns(dataset).filter((c) => c.castable)) {
    parts.push(`count_if(${presentFlag(c)} AND ${ident(c.name)} IS NULL) AS ${ident(`cast_failures__${c.name}`)}`);
  }
  return `SELECT\n  ${parts.join(',\n  ')}\nFROM ${typed}`;
}

/**
 * The staged rows (stagingSql's result) from typed rows: the keyed rows, and when `unique` (every
 * key occurs once: key_partitions = keyed_rows) nothing else, else the newest version of each key.
 */
export function typedStagedSql(dataset: DatasetConfig, typed: string, unique: boolean): string {
  const names = [...curatedColumns(dataset).map((c) => ident(c.name)), ident('__source_object')].join(', ');
  if (unique) return `SELECT ${names} FROM ${typed} WHERE ${KEYED}`;
  return `SELECT ${names}
FROM (
  SELECT ${names},
    row_number() OVER (PARTITION BY ${ident(dataset.primaryKey)} ORDER BY ${versionOrder(ident('__source_object'))}) AS ${ident('__version_rank')}
  FROM ${typed}
  WHERE ${KEYED}
) AS ranked
WHERE ${ident('__version_rank')} = 1`;
}
