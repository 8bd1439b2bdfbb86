/**
 * The history of every key and the change feed, written once and rendered per dialect: both
 * engines execute these statements (DuckDB on a table loaded with the affected keys, Athena on
 * the Iceberg tables).
 *
 * `<table>__history`: one row per version of a key, with the curated columns and
 *   valid_from   the version's `_source_updated_at` (the source's :updated_at), when the content
 *                first appeared; consecutive versions with the same content are one version
 *   valid_to     the next version's valid_from, or the deletion time; NULL while current
 *   is_current   the version curated holds (not superseded, not deleted)
 *   deleted_at   the key scan's detection time when the key was deleted while this version held
 * It is a pure function of every version ever merged and of the deletions record: each run
 * recomputes the keys it touches from their history rows, the new versions and their deletions,
 * and applies the difference with one MERGE. So a retried run changes nothing twice (a version
 * already recorded is matched, not added), and a rebuild from raw gives the same rows.
 *
 * `<table>__changes`: per run and key, `insert` / `update` / `delete`, the declared columns an
 * update changed, and when the run recorded it; a retry of the run id replaces its own records.
 */
import { INGESTION_METADATA, type DatasetConfig } from '../../../runtime/dataset-config';
import { CONTENT_HASH_COLUMN, hashedColumns } from './content-hash';
import { ident, literal, type CuratedType, type Dialect } from './dialect';
import { castKey } from './key-scan-sql';
import { replaceCondition } from './merge-sql';
import { curatedColumns } from './staging';

/** The history table's own columns, after the curated ones. */
export const HISTORY_COLUMNS: readonly { name: string; type: CuratedType }[] = [
  { name: 'valid_from', type: 'TIMESTAMP' },
  { name: 'valid_to', type: 'TIMESTAMP' },
  { name: 'is_current', type: 'BOOLEAN' },
  { name: 'deleted_at', type: 'TIMESTAMP' },
];

/** The change feed's columns. */
export const CHANGE_COLUMNS: readonly { name: string; type: CuratedType }[] = [
  { name: 'run_id', type: 'VARCHAR' },
  { name: 'key', type: 'VARCHAR' },
  { name: 'change', type: 'VARCHAR' },
  { name: 'changed_columns', type: 'VARCHAR' },
  { name: 'changed_at', type: 'TIMESTAMP' },
];

export const historyTableName = (table: string): string => `${table}__history`;
export const changesTableName = (table: string): string => `${table}__changes`;

/** Every column of the history table, in order. */
export function historyColumns(dataset: DatasetConfig): { name: string; type: CuratedType }[] {
  return [...curatedColumns(dataset).map((c) => ({ name: c.name, type: c.type })), ...HISTORY_COLUMNS];
}

const U = ident(INGESTION_METADATA.sourceUpdatedAt);
const I = ident(INGESTION_METADATA.ingestedAt);
const H = ident(CONTENT_HASH_COLUMN);

/** Two rows are the same version: same key, :updated_at, ingestion time and content. */
const sameVersion = (pk: string, a: string, b: string): string =>
  `${a}.${pk} = ${b}.${pk} AND ${a}.${U} IS NOT DISTINCT FROM ${b}.${U} AND ${a}.${I} IS NOT DISTINCT FROM ${b}.${I} AND ${a}.${H} IS NOT DISTINCT FROM ${b}.${H}`;

export interface HistoryInputs {
  /** The history table (or the engine's copy of the affected keys' rows). */
  target: string;
  /** A query of the keys to recompute, one column named like the primary key. */
  keys: string;
  /** A query of new versions (curated columns; more per key allowed), or undefined for none. */
  versions?: string;
  /** A query of the deletions record: `key` (text, as recorded) and `detected_at`. */
  deletions: string;
}

/**
 * The recomputed history rows of `keys` (THE history statement's source): from their rows in
 * `target` (unless `existing` is false), the new `versions` and the deletions recorded for them.
 * Each row carries `__drop`: true for an existing row to delete because a version with the same
 * content that arrived late now starts its run (it is no longer a change).
 *
 * The key's timeline orders versions by `_source_updated_at` (then `_ingested_at`, content) and
 * places each deletion at its detection time. A version starts a new history row when it is the
 * first, follows a deletion, or differs in content from the version before; a deletion ends the
 * row before it (a second deletion in a row means nothing more).
 *
 * The windows run on the version's identity (key, :updated_at, ingestion time, content hash)
 * only; the curated columns are joined back to the rows that start a history row. A window
 * over every curated column kept all of them in memory at once (on DuckDB, out of memory at
 * 650,000 rows under its 600 MB limit: docs/bench.md).
 */
function historyRowsSql(dataset: DatasetConfig, dialect: Dialect, inputs: HistoryInputs, existing: boolean): string {
  const pk = ident(dataset.primaryKey);
  const cols = curatedColumns(dataset);
  const list = cols.map((c) => ident(c.name)).join(', ');
  const key = (q: string): string => `${q}.${pk} IN (SELECT k.${pk} FROM (${inputs.keys}) AS k)`;
  const at = ident('__at');
  const kind = ident('__kind');
  const prevKind = ident('__prev_kind');
  const nextKind = ident('__next_kind');
  const nextAt = ident('__next_at');
  const boundary = ident('__boundary');
  const existingFlag = ident('__existing');
  const copy = ident('__copy');
  const order = `PARTITION BY ${pk} ORDER BY ${at} NULLS FIRST, ${kind}, ${I} NULLS FIRST, ${H}`;
  const identity = `${pk}, ${U}, ${I}, ${H}`;
  const sources = [
    ...(existing ? [`SELECT ${list}, true AS ${existingFlag} FROM ${inputs.target} AS e WHERE ${key('e')}`] : []),
    ...(inputs.versions ? [`SELECT ${list}, false AS ${existingFlag} FROM (${inputs.versions}) AS v WHERE v.${pk} IS NOT NULL AND ${key('v')}`] : []),
  ];
  if (!sources.length) sources.push(`SELECT ${list}, false AS ${existingFlag} FROM ${inputs.target} AS e WHERE false`);
  const typedNull = (name: string): string => `CAST(NULL AS ${dialect.typeName(HISTORY_COLUMNS.find((c) => c.name === name)!.type)})`;
  // One row per version: an existing row wins over the same version arriving again.
  const versions = `SELECT *, row_number() OVER (PARTITION BY ${identity} ORDER BY ${existingFlag} DESC) AS ${copy}
    FROM (
      ${sources.join('\n      UNION ALL\n      ')}
    ) AS all_versions`;
  return `WITH versions AS (
    ${versions}
  ),
  timeline AS (
    SELECT ${identity}, ${U} AS ${at}, 0 AS ${kind}, ${existingFlag}
    FROM versions
    WHERE ${copy} = 1
    UNION ALL
    SELECT ${castKey(dataset, dialect, 'd.key')}, ${typedNull('valid_from')}, ${typedNull('valid_from')}, CAST(NULL AS ${dialect.typeName('VARCHAR')}), d.${ident('detected_at')}, 1, false
    FROM (${inputs.deletions}) AS d
    WHERE ${castKey(dataset, dialect, 'd.key')} IN (SELECT k.${pk} FROM (${inputs.keys}) AS k)
  ),
  flagged AS (
    SELECT *,
      CASE WHEN ${kind} = 0 THEN ${prevKind} IS NULL OR ${prevKind} = 1 OR ${ident('__prev_hash')} IS DISTINCT FROM ${H}
        ELSE coalesce(${prevKind} = 0, false) END AS ${boundary}
    FROM (SELECT *, lag(${kind}) OVER (${order}) AS ${prevKind}, lag(${H}) OVER (${order}) AS ${ident('__prev_hash')} FROM timeline) AS ordered
  ),
  bounded AS (
    SELECT *, lead(${at}) OVER (${order}) AS ${nextAt}, lead(${kind}) OVER (${order}) AS ${nextKind}
    FROM flagged
    WHERE ${boundary}
  ),
  chosen AS (
    SELECT ${identity}, ${U} AS ${ident('valid_from')}, ${nextAt} AS ${ident('valid_to')}, ${nextKind} IS NULL AS ${ident('is_current')},
      CASE WHEN ${nextKind} = 1 THEN ${nextAt} END AS ${ident('deleted_at')}, false AS ${ident('__drop')}
    FROM bounded
    WHERE ${kind} = 0${
      existing
        ? `
    UNION ALL
    SELECT ${identity}, ${typedNull('valid_from')}, ${typedNull('valid_to')}, ${typedNull('is_current')}, ${typedNull('deleted_at')}, true
    FROM flagged
    WHERE ${kind} = 0 AND NOT ${boundary} AND ${existingFlag}`
        : ''
    }
  )
  SELECT ${cols.map((c) => `v.${ident(c.name)}`).join(', ')}, c.${ident('valid_from')}, c.${ident('valid_to')}, c.${ident('is_current')}, c.${ident('deleted_at')}, c.${ident('__drop')}
  FROM chosen AS c
  JOIN versions AS v ON ${sameVersion(pk, 'v', 'c')} AND v.${copy} = 1`;
}

/**
 * THE history statement: recompute the history of `keys` (historyRowsSql) and apply the
 * difference to `target`: new versions inserted, validity of existing ones updated, and an
 * existing row deleted when it no longer starts a run.
 */
export function historyMergeSql(dataset: DatasetConfig, dialect: Dialect, inputs: HistoryInputs): string {
  const pk = ident(dataset.primaryKey);
  const setters = HISTORY_COLUMNS.filter((c) => c.name !== 'valid_from').map((c) => ident(c.name));
  const all = historyColumns(dataset).map((c) => ident(c.name));
  return `MERGE INTO ${inputs.target} AS h
USING (
  ${historyRowsSql(dataset, dialect, inputs, true)}
) AS s
ON ${sameVersion(pk, 'h', 's')}
WHEN MATCHED AND s.${ident('__drop')} THEN DELETE
WHEN MATCHED AND (${setters.map((c) => `h.${c} IS DISTINCT FROM s.${c}`).join(' OR ')}) THEN UPDATE SET ${setters.map((c) => `${c} = s.${c}`).join(', ')}
WHEN NOT MATCHED AND NOT s.${ident('__drop')} THEN INSERT (${all.join(', ')}) VALUES (${all.map((c) => `s.${c}`).join(', ')})`;
}

/**
 * The same statement where the target holds no row of `keys` (a first load, a rebuild, a batch
 * of keys never seen): the MERGE would match nothing and insert every recomputed row, so this
 * is those rows, for the engine to insert or write without the MERGE's join. Columns in
 * `historyColumns` order.
 */
export function historyNewRowsSql(dataset: DatasetConfig, dialect: Dialect, inputs: HistoryInputs): string {
  const all = historyColumns(dataset).map((c) => `s.${ident(c.name)}`);
  return `SELECT ${all.join(', ')} FROM (
  ${historyRowsSql(dataset, dialect, inputs, false)}
) AS s`;
}

/** At most this many arguments per concat_ws (Trino takes at most 254). */
const CONCAT_GROUP = 100;

/** The declared columns `s` and `t` differ in, in curated order, comma-separated (NULL when none). */
export function changedColumnsSql(dataset: DatasetConfig, s = 's', t = 't'): string {
  const cols = hashedColumns(curatedColumns(dataset)).filter((c) => c.name !== dataset.primaryKey);
  const parts = cols.map((c) => `CASE WHEN ${s}.${ident(c.name)} IS DISTINCT FROM ${t}.${ident(c.name)} THEN ${literal(c.name)} END`);
  const groups: string[] = [];
  for (let i = 0; i < parts.length; i += CONCAT_GROUP) groups.push(`nullif(concat_ws(',', ${parts.slice(i, i + CONCAT_GROUP).join(', ')}), '')`);
  return groups.length === 1 ? groups[0]! : `nullif(concat_ws(',', ${groups.join(', ')}), '')`;
}

const timestampLiteral = (at: Date): string => `TIMESTAMP '${at.toISOString().replace('T', ' ').replace('Z', '')}'`;

/**
 * This group's change records: staged keys the merge inserts or updates (its own condition,
 * merge-sql.ts), with the declared columns an update changes. Computed before the merge writes.
 */
export function upsertChangesSql(dataset: DatasetConfig, dialect: Dialect, staged: string, target: string, runId: string, at: Date): string {
  const pk = ident(dataset.primaryKey);
  return `SELECT ${literal(runId)} AS ${ident('run_id')}, CAST(s.${pk} AS ${dialect.typeName('VARCHAR')}) AS ${ident('key')},
  CASE WHEN t.${pk} IS NULL THEN 'insert' ELSE 'update' END AS ${ident('change')},
  CASE WHEN t.${pk} IS NULL THEN NULL ELSE ${changedColumnsSql(dataset)} END AS ${ident('changed_columns')},
  ${timestampLiteral(at)} AS ${ident('changed_at')}
FROM (${staged}) AS s
LEFT JOIN ${target} AS t ON t.${pk} = s.${pk}
WHERE s.${pk} IS NOT NULL AND (t.${pk} IS NULL OR ${replaceCondition()})`;
}

/** Change records of the keys the key scan deletes (`gone`: the key column and `__year`). */
export function deleteChangesSql(dataset: DatasetConfig, dialect: Dialect, gone: string, runId: string, at: Date): string {
  return `SELECT ${literal(runId)} AS ${ident('run_id')}, CAST(g.${ident(dataset.primaryKey)} AS ${dialect.typeName('VARCHAR')}) AS ${ident('key')},
  'delete' AS ${ident('change')}, CAST(NULL AS ${dialect.typeName('VARCHAR')}) AS ${ident('changed_columns')}, ${timestampLiteral(at)} AS ${ident('changed_at')}
FROM (${gone}) AS g`;
}

/**
 * Add change records to the feed, one per run and key: a retried run id updates its own records
 * instead of adding a second. A key inserted earlier in the same run (before a repair pass
 * updated it) stays an insert: the run's net change.
 */
export function changesMergeSql(target: string, records: string): string {
  const c = (n: string): string => ident(n);
  const keepInsert = `c.${c('change')} = 'insert' AND r.${c('change')} = 'update'`;
  const names = CHANGE_COLUMNS.map((x) => c(x.name));
  return `MERGE INTO ${target} AS c
USING (${records}) AS r
ON c.${c('run_id')} = r.${c('run_id')} AND c.${c('key')} = r.${c('key')}
WHEN MATCHED THEN UPDATE SET ${c('change')} = CASE WHEN ${keepInsert} THEN c.${c('change')} ELSE r.${c('change')} END,
  ${c('changed_columns')} = CASE WHEN ${keepInsert} THEN c.${c('changed_columns')} ELSE r.${c('changed_columns')} END,
  ${c('changed_at')} = r.${c('changed_at')}
WHEN NOT MATCHED THEN INSERT (${names.join(', ')}) VALUES (${names.map((n) => `r.${n}`).join(', ')})`;
}

/** What changed in one run, for the summary and the report: counts per change and, per declared column, the updates that changed it. */
export function changeSummarySql(dataset: DatasetConfig, changes: string, runId: string): string {
  const cols = hashedColumns(curatedColumns(dataset)).filter((c) => c.name !== dataset.primaryKey);
  const perColumn = cols.map(
    (col, i) => `count_if(strpos(concat(',', ${ident('changed_columns')}, ','), ${literal(`,${col.name},`)}) > 0) AS ${ident(`c${i}`)}`,
  );
  return `SELECT
  count_if(${ident('change')} = 'insert') AS inserted,
  count_if(${ident('change')} = 'update') AS updated,
  count_if(${ident('change')} = 'delete') AS deleted${perColumn.length ? `,\n  ${perColumn.join(',\n  ')}` : ''}
FROM ${changes} AS x
WHERE ${ident('run_id')} = ${literal(runId)}`;
}

/** A few keys of each change of one run (the first `perChange` in key order). */
export function changeExamplesSql(changes: string, runId: string, perChange: number): string {
  return `SELECT ${ident('change')}, ${ident('key')} FROM (
  SELECT ${ident('change')}, ${ident('key')}, row_number() OVER (PARTITION BY ${ident('change')} ORDER BY ${ident('key')}) AS n
  FROM ${changes} AS x
  WHERE ${ident('run_id')} = ${literal(runId)}
) AS r
WHERE n <= ${perChange}
ORDER BY ${ident('change')}, ${ident('key')}`;
}
