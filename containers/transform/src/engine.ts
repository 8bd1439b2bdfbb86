/** The interface both engines implement; the transform (transform.ts) drives it. */
import type { DatasetConfig } from '../../../runtime/dataset-config';
import type { Dialect } from './dialect';

export type Row = Record<string, unknown>;

export interface BatchStats {
  /** Lines read from the new raw objects (malformed ones included). */
  rowsRead: number;
  /** Lines that were not a JSON object: counted, skipped. */
  malformedRows: number;
  /** Rows without a primary key value: counted, skipped. */
  rowsWithoutKey: number;
  /** Older versions of a key within the batch, dropped before the merge. */
  duplicatesRemoved: number;
  /** Keys new to the curated table. */
  rowsInserted: number;
  /** Keys whose curated row was replaced by a newer version. */
  rowsUpdated: number;
  /** Keys already curated at the same or a newer version. */
  rowsUnchanged: number;
  /** Per column: raw values present that did not cast to the column's type (now NULL). */
  castFailures: Record<string, number>;
  /** Event-time partitions (years) rewritten. */
  partitionsWritten: number;
}

/** Stats of a batch that read nothing; engines add to a fresh copy. */
export function emptyBatchStats(): BatchStats {
  return {
    rowsRead: 0,
    malformedRows: 0,
    rowsWithoutKey: 0,
    duplicatesRemoved: 0,
    rowsInserted: 0,
    rowsUpdated: 0,
    rowsUnchanged: 0,
    castFailures: {},
    partitionsWritten: 0,
  };
}

export interface MergeOptions {
  /** Rebuild: merge into an empty table and replace curated with the result (see runTransform). */
  rebuild?: boolean;
  /** The run the change records belong to (no records without it). */
  runId?: string;
  /** When the run records its changes (`changed_at`). */
  changedAt?: Date;
}

/** What one raw object contributed to a merge: keys staged from it, and of those, keys new to curated. */
export interface ObjectContribution {
  keys: number;
  inserted: number;
}

export interface MergeResult extends BatchStats {
  /** Per raw object key (objects that yielded no staged row are absent). */
  contributions: Record<string, ObjectContribution>;
}

/** A raw object that cannot be read whole (truncated or corrupt gzip). */
export interface UnreadableObject {
  key: string;
  error: string;
}

/** A completed key scan of the source (the fetcher's `keysets/<dataset>/<run-id>/`). */
export interface KeyScan {
  /** Keys of the part files in the raw store (gzipped, one key per line). */
  partKeys: string[];
}

export interface KeyScanOptions {
  /** More deletions than this share of curated rows: delete nothing (the mass-delete guard). */
  maxDeleteShare: number;
  detectedAt: Date;
}

/** Curated reconciled with the source's key set, after the deletions. */
export interface KeyScanReconciliation {
  /** Distinct source keys (that cast to the key's type). */
  sourceKeys: number;
  /** Curated rows before the deletions. */
  curatedRowsBefore: number;
  /** Curated keys the source no longer has. */
  goneKeys: number;
  /** Rows removed (goneKeys, or 0 when the guard refused). */
  rowsDeleted: number;
  /** The mass-delete guard refused: nothing was deleted. */
  refused: boolean;
  /** Source keys curated lacks, as the source serves them (repair fetches these). */
  missingKeys: string[];
  /** Curated keys not in the source after the deletions (0 unless refused or a delete failed). */
  extraKeys: number;
}

/** Raw objects staged together: the SQL of their staged rows and the profile of their raw rows. */
export interface StagedGroup {
  /** A query of the staged rows: typed, one per key, with `__source_object`. */
  staged: string;
  /** rows_read, malformed_rows, rows_without_key, cast_failures__<column> (see staging.ts). */
  profile: Row;
  /**
   * Every keyed version in the group's raw rows (typed, curated columns), not only each key's
   * newest: the history records them all, so a rebuild from raw loses no version in between.
   */
  versions: string;
}

/** Where THE history statement runs: the table (or copy) and the keys it recomputes. */
export interface HistoryTarget {
  target: string;
  /** A query of the keys, one column named like the primary key. */
  keys: string;
  /** The target holds no row of the keys: THE history statement would only insert (insertHistory). */
  empty: boolean;
}

/** What each engine supplies to the one merge and key-scan algorithm (merge-algorithm.ts). */
export interface EnginePrimitives {
  readonly dialect: Dialect;
  readonly dataset: DatasetConfig;
  /** Event-year partitions one write may touch (Athena: 100; DuckDB: no limit). */
  readonly partitionsPerWrite: number;
  rows(sql: string, label?: string): Promise<Row[]>;
  tableRef(model: string): string;
  /** The raw-store key of a staged row's `__source_object`. */
  rawKeyOf(sourceObject: string): string;

  // --- merge ---
  /** A rebuild starts: later groups merge into an empty table built aside. */
  beginRebuild(): Promise<void>;
  /** Stage the raw objects, in as many groups as the engine reads at once (at least one). */
  stageGroups(rawKeys: string[]): AsyncIterable<StagedGroup>;
  /** The table a group merges into; DuckDB loads the event years its keys can touch aside. */
  mergeTarget(group: StagedGroup, rebuild: boolean): Promise<string>;
  /** Record the group's staged keys (reconciliation reads these, never raw). */
  recordMergedKeys(group: StagedGroup): Promise<void>;
  /** Upsert the group's staged rows of these event years (THE merge statement); `allNew`: no staged key is curated. */
  upsert(group: StagedGroup, target: string, years: number[], allNew: boolean): Promise<void>;
  /** The group is merged (`changed`: rows were written): commit, drop what it staged. */
  endGroup(group: StagedGroup, changed: boolean, rebuild: boolean): Promise<void>;
  /** The rebuilt table replaces curated, and its merged keys every earlier run's. */
  finishRebuild(): Promise<void>;

  // --- key scan ---
  /** The key scan's lines as a query of one VARCHAR column `key`. */
  keyScanLines(keyScan: KeyScan): Promise<string>;
  /** Keep a query's rows for the statements that follow; returns a query of them (DuckDB: of a temp table; Athena: the query itself). */
  scratch(name: 'source_keys' | 'gone', sql: string): Promise<string>;
  /** Append the deletion records (key, detected_at, run_id), replacing this run's earlier ones. */
  recordDeletions(recordsSql: string): Promise<void>;
  /** Delete the curated rows `gone` (key + `__year`) selects, in these years, and forget their merged keys. */
  deleteKeys(gone: string, years: number[]): Promise<void>;
  /** Drop what scratch() kept. */
  dropScratch(): Promise<void>;

  // --- history and change feed (change-history-sql.ts) ---
  /** The deletions record of every run as a query of `key` and `detected_at`. */
  deletionRecords(): Promise<string>;
  /** The history rows of `keys` where THE history statement can run (DuckDB: a copy of those keys' rows; Athena: the table, or the rebuild's). */
  historyTarget(keys: string, rebuild: boolean): Promise<HistoryTarget>;
  /** The recomputed rows of keys the target holds none of, inserted without the MERGE (DuckDB: written as the file when there is none yet). */
  insertHistory(history: HistoryTarget, rows: string, rebuild: boolean): Promise<void>;
  /** THE history statement ran on the target: make it the history (DuckDB writes the file). */
  commitHistory(rebuild: boolean): Promise<void>;
  /** This run's change records where THE changes statement can run. */
  changesTarget(): Promise<string>;
  /** THE changes statement ran on the target: keep it (DuckDB writes the run's file). */
  commitChanges(): Promise<void>;
  /** The change feed of every run as a query. */
  changesRef(): Promise<string>;
}

/**
 * What the transform needs of an engine: the merge and key-scan primitives (the algorithm is
 * merge-algorithm.ts, once for both engines), marts, reads, maintenance.
 */
export interface TransformEngine extends EnginePrimitives {
  /** Where the curated table lives, for messages. */
  readonly curatedLocation: string;
  /** Make sure the curated table exists and is queryable (before any batch). */
  prepare(): Promise<void>;
  /** Raw objects that cannot be read whole; they are quarantined, not merged (engines that cannot tell omit this). */
  unreadableObjects?(rawKeys: string[]): Promise<UnreadableObject[]>;
  /** Materialize a mart from its rendered SELECT, replacing the previous one only once built; returns its row count. */
  materializeMart(name: string, selectSql: string): Promise<number>;
  /**
   * Make an existing mart table (built by an earlier run) readable as tableRef(name), for a run
   * that tests it or reads it without rebuilding it (--tests-only, --select); false if there is none.
   */
  existingModel?(name: string): Promise<boolean>;
  /** Distinct primary keys every merge so far recorded (reconciliation; never re-reads raw). */
  mergedKeys(): Promise<number>;
  /** Table maintenance (Athena: Iceberg OPTIMIZE + VACUUM); returns the statements run. */
  maintain?(): Promise<string[]>;
  close(): Promise<void>;
}

/** First column of the first row as a number (count queries). */
export async function scalar(engine: TransformEngine, sql: string): Promise<number> {
  const rows = await engine.rows(sql);
  const first = rows[0];
  const value = first ? Object.values(first)[0] : undefined;
  return value === null || value === undefined ? 0 : Number(value);
}

/** Normalize a driver value for JSON: bigint → number, Date → ISO string. */
export function plainValue(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Date) return v.toISOString();
  return v;
}
