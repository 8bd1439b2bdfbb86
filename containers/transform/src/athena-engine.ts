/**
 * The AWS engine: Athena over the Glue raw table (the CDK's, with partition projection on
 * ingest_date) and Iceberg curated tables in the curated database.
 */
import type { AthenaClient } from '@aws-sdk/client-athena';
import { randomUUID } from 'node:crypto';
import { tableName, type DatasetConfig } from '../../../runtime/dataset-config';
import { curatedPrefix, keysetPrefix } from '../../../runtime/storage-layout';
import {
  addColumnsSql,
  asideTableName,
  createChangesTableSql,
  createCuratedTableSql,
  createDeletionsTableSql,
  createHistoryTableSql,
  createKeyScanTableSql,
  createMergedKeysTableSql,
  deletionsTableName,
  keyScanRawSql,
  deleteAllSql,
  dropTableSql,
  martCtasSql,
  mergedKeysCountSql,
  mergeSql,
  optimizeSql,
  qualified,
  rawBatchSql,
  recordMergedKeysSql,
  renameTableSql,
  tableColumnsSql,
  tableExistsSql,
  vacuumSql,
} from './athena-sql';
import { AthenaQueryRunner, type AthenaQueryOptions } from './athena-query';
import { changesTableName, historyColumns, historyTableName } from './change-history-sql';
import { athenaDialect, ident, literal, type CuratedType } from './dialect';
import type { HistoryTarget, KeyScan, Row, StagedGroup, TransformEngine } from './engine';
import { partitionGroups } from './merge-algorithm';
import { deleteMergeSql } from './merge-sql';
import { martTableName } from './models';
import { curatedColumns, typedBatchSql, typedProfileSql, typedStagedSql } from './staging';

export interface AthenaEngineOptions extends AthenaQueryOptions {
  dataset: DatasetConfig;
  client: AthenaClient;
  rawDatabase: string;
  curatedDatabase: string;
  /** s3://raw-bucket */
  rawLocation: string;
  /** s3://curated-bucket */
  curatedLocation: string;
  runId: string;
  /** Raw objects per query (keeps statements far below Athena's 256 KB limit). */
  objectsPerQuery?: number;
  /** Event-time partitions per MERGE (Athena writes at most 100 partitions per statement). */
  partitionsPerWrite?: number;
  /** Tests only: render the merge statement (to prove a mutated merge is caught on Trino). */
  renderMerge?: typeof mergeSql;
}

const INGEST_DATE = /\/ingest_date=(\d{4}-\d{2}-\d{2})\//;

export class AthenaEngine implements TransformEngine {
  readonly dialect = athenaDialect;
  readonly curatedLocation: string;
  private readonly runner: AthenaQueryRunner;
  private readonly table: string;

  constructor(private readonly opts: AthenaEngineOptions) {
    this.runner = new AthenaQueryRunner(opts.client, opts);
    this.table = tableName(opts.dataset);
    this.curatedLocation = `${opts.curatedLocation.replace(/\/$/, '')}/${curatedPrefix(opts.dataset)}table/`;
  }

  rows(sql: string): Promise<Row[]> {
    return this.runner.execute(sql);
  }

  tableRef(model: string): string {
    return qualified(this.opts.curatedDatabase, model === 'curated' ? this.table : martTableName(this.table, model));
  }

  private async exists(table: string): Promise<boolean> {
    const [r] = await this.runner.execute(tableExistsSql(this.opts.curatedDatabase, table), 'table lookup');
    return Number(r?.n ?? 0) > 0;
  }

  private get keysTable(): string {
    return qualified(this.opts.curatedDatabase, asideTableName(this.table, 'merged_keys'));
  }

  private location(...parts: string[]): string {
    return `${this.opts.curatedLocation.replace(/\/$/, '')}/${curatedPrefix(this.opts.dataset)}${parts.join('/')}/`;
  }

  /**
   * A location no table has used, for a table built under this run (`<parts>/<run id>-<random>`):
   * Athena and Trino refuse a CTAS into a non-empty location, and the same run id builds again
   * when the repair pass transforms a second time while the first build is still live.
   */
  private freshLocation(...parts: string[]): string {
    return this.location(...parts.slice(0, -1), `${parts.at(-1)}-${randomUUID().slice(0, 8)}`);
  }

  async prepare(): Promise<void> {
    const d = this.opts.dataset;
    await this.restoreAside(this.table);
    if (!(await this.exists(this.table))) {
      await this.runner.execute(createCuratedTableSql(d, this.tableRef('curated'), this.curatedLocation), 'create curated table');
    } else {
      // A table created by an earlier version lacks newer curated columns (e.g. _content_hash).
      await this.addMissingColumns(this.table, curatedColumns(d));
    }
    if (!(await this.exists(asideTableName(this.table, 'merged_keys')))) {
      await this.runner.execute(createMergedKeysTableSql(this.keysTable, this.location('merged-keys')), 'create merged keys table');
    }
    const history = historyTableName(this.table);
    await this.restoreAside(history);
    if (!(await this.exists(history))) await this.runner.execute(createHistoryTableSql(d, this.historyRef, this.location('history')), 'create history table');
    else await this.addMissingColumns(history, historyColumns(d));
    if (!(await this.exists(changesTableName(this.table)))) {
      await this.runner.execute(createChangesTableSql(this.changesTable, this.location('changes')), 'create changes table');
    }
    // The history reads the deletions record from the first run on, before any key scan.
    if (!(await this.exists(deletionsTableName(this.table)))) {
      await this.runner.execute(createDeletionsTableSql(this.deletionsTable, this.location('deletions')), 'create deletions table');
    }
  }

  private async addMissingColumns(table: string, columns: { name: string; type: CuratedType }[]): Promise<void> {
    const have = new Set((await this.runner.execute(tableColumnsSql(this.opts.curatedDatabase, table), `${table} columns`)).map((r) => String(r.column_name)));
    const missing = columns.filter((c) => !have.has(c.name));
    if (missing.length) await this.runner.execute(addColumnsSql(this.opts.curatedDatabase, table, missing), `add ${table} columns`);
  }

  private get historyRef(): string {
    return qualified(this.opts.curatedDatabase, historyTableName(this.table));
  }

  private get historyNextTable(): string {
    return asideTableName(historyTableName(this.table), 'next');
  }

  private get changesTable(): string {
    return qualified(this.opts.curatedDatabase, changesTableName(this.table));
  }

  /**
   * After a swap interrupted between its two renames, the live table is missing and the old one
   * is aside: put it back. Otherwise drop a leftover aside copy (only ever a superseded one).
   */
  private async restoreAside(live: string): Promise<void> {
    const old = asideTableName(live, 'old');
    if (!(await this.exists(old))) return;
    if (await this.exists(live)) await this.runner.execute(dropTableSql(this.opts.curatedDatabase, old), `drop ${old}`);
    else await this.runner.execute(renameTableSql(this.opts.curatedDatabase, old, live), `restore ${live}`);
  }

  /**
   * Swap a table built aside (`next`) in place of `live` (the dbt-athena pattern): live is renamed
   * aside, next renamed in, and the old one dropped only once the new one is live. Readers see
   * the old table until the rename; a failure before it leaves the old table untouched.
   */
  private async swapIn(live: string, next: string): Promise<void> {
    const db = this.opts.curatedDatabase;
    const old = asideTableName(live, 'old');
    const hadLive = await this.exists(live);
    if (hadLive) await this.runner.execute(renameTableSql(db, live, old), `move ${live} aside`);
    await this.runner.execute(renameTableSql(db, next, live), `swap in ${live}`);
    if (hadLive) await this.runner.execute(dropTableSql(db, old), `drop old ${live}`);
  }

  // --- merge primitives (the algorithm is merge-algorithm.ts) ---

  get dataset(): DatasetConfig {
    return this.opts.dataset;
  }

  get partitionsPerWrite(): number {
    return this.opts.partitionsPerWrite ?? 100;
  }

  private get bucket(): string {
    return this.opts.rawLocation.replace(/\/$/, '');
  }

  rawKeyOf(sourceObject: string): string {
    return sourceObject.replace(`${this.bucket}/`, '');
  }

  private get nextTable(): string {
    return asideTableName(this.table, 'next');
  }

  /** A rebuild merges into an empty table built aside; readers keep the old curated table until the swap. */
  async beginRebuild(): Promise<void> {
    const db = this.opts.curatedDatabase;
    await this.runner.execute(dropTableSql(db, this.nextTable), 'drop leftover rebuild table');
    await this.runner.execute(createCuratedTableSql(this.opts.dataset, qualified(db, this.nextTable), this.freshLocation(`table-${this.opts.runId}`)), 'create rebuild table');
    // The history is rebuilt beside it, from every raw version and the deletions record.
    await this.runner.execute(dropTableSql(db, this.historyNextTable), 'drop leftover rebuild history');
    await this.runner.execute(createHistoryTableSql(this.opts.dataset, qualified(db, this.historyNextTable), this.freshLocation(`history-${this.opts.runId}`)), 'create rebuild history');
  }

  private get typedTable(): string {
    return asideTableName(this.table, 'typed');
  }

  /**
   * Groups of at most objectsPerQuery objects. Each group's raw rows (the Glue raw table, pruned by
   * partition and path) are read and typed ONCE into an Iceberg table beside curated, as DuckDB
   * types its batch (staging.ts typedBatchSql): the profile, the preview, the recorded keys and the
   * MERGE then read typed Parquet, not the raw JSON four times over.
   */
  async *stageGroups(rawKeys: string[]): AsyncIterable<StagedGroup> {
    const rawTable = qualified(this.opts.rawDatabase, this.table);
    const db = this.opts.curatedDatabase;
    const typed = qualified(db, this.typedTable);
    const objects = rawKeys.map((key) => {
      const date = INGEST_DATE.exec(key)?.[1];
      if (!date) throw new Error(`Raw object ${this.bucket}/${key} is outside an ingest_date=YYYY-MM-DD partition`);
      return { ingestDate: date, path: `${this.bucket}/${key}` };
    });
    let n = 0;
    for (const group of partitionGroups(objects, this.opts.objectsPerQuery ?? 500)) {
      // A crashed run's typed table is only ever a leftover.
      await this.runner.execute(dropTableSql(db, this.typedTable), 'drop leftover typed batch');
      const select = typedBatchSql(this.opts.dataset, this.dialect, rawBatchSql(rawTable, group), ident('__source_object'));
      await this.runner.execute(martCtasSql(typed, this.freshLocation('staging', `${this.opts.runId}-${n++}`), select), 'type raw batch');
      const [profile = {}] = await this.runner.execute(typedProfileSql(this.opts.dataset, typed), 'batch profile');
      // The version ranking only when some key occurs more than once (as on DuckDB).
      const unique = Number(profile.key_partitions ?? 0) === Number(profile.keyed_rows ?? 0);
      yield { staged: typedStagedSql(this.opts.dataset, typed, unique), profile, versions: typedStagedSql(this.opts.dataset, typed, true) };
    }
  }

  async mergeTarget(_group: StagedGroup, rebuild: boolean): Promise<string> {
    return rebuild ? qualified(this.opts.curatedDatabase, this.nextTable) : this.tableRef('curated');
  }

  async recordMergedKeys(group: StagedGroup): Promise<void> {
    await this.runner.execute(recordMergedKeysSql(this.opts.dataset, group.staged, this.keysTable, this.opts.runId), 'record merged keys');
  }

  /** One MERGE per year group: Athena writes at most 100 partitions per statement. */
  async upsert(group: StagedGroup, target: string, years: number[]): Promise<void> {
    await this.runner.execute((this.opts.renderMerge ?? mergeSql)(this.opts.dataset, group.staged, target, years), 'merge');
  }

  /** Each MERGE committed its own Iceberg snapshot; the group's typed rows go. */
  async endGroup(): Promise<void> {
    await this.runner.execute(dropTableSql(this.opts.curatedDatabase, this.typedTable), 'drop typed batch');
  }

  async finishRebuild(): Promise<void> {
    await this.swapIn(this.table, this.nextTable);
    await this.swapIn(historyTableName(this.table), this.historyNextTable);
    // The rebuild's key set replaces every earlier run's (a crash before this only leaves duplicates).
    await this.runner.execute(`${deleteAllSql(this.keysTable)} WHERE ${ident('run_id')} <> ${literal(this.opts.runId)}`, 'reset merged keys');
  }

  // --- key-scan primitives ---

  private get deletionsTable(): string {
    return qualified(this.opts.curatedDatabase, deletionsTableName(this.table));
  }

  /** The scan's gzipped key lists through an external text table, this run's parts picked by "$path". */
  async keyScanLines(keyScan: KeyScan): Promise<string> {
    const db = this.opts.curatedDatabase;
    const keyScanTable = asideTableName(this.table, 'keyset');
    await this.runner.execute(createKeyScanTableSql(db, keyScanTable, `${this.bucket}/${keysetPrefix(this.opts.dataset)}`), 'create key scan table');
    if (!(await this.exists(deletionsTableName(this.table)))) {
      await this.runner.execute(createDeletionsTableSql(this.deletionsTable, this.location('deletions')), 'create deletions table');
    }
    return keyScanRawSql(qualified(db, keyScanTable), keyScan.partKeys.map((k) => `${this.bucket}/${k}`));
  }

  /** Athena keeps nothing between statements: the query is used as it is. */
  async scratch(_name: string, sql: string): Promise<string> {
    return sql;
  }

  async recordDeletions(recordsSql: string): Promise<void> {
    await this.runner.execute(`${deleteAllSql(this.deletionsTable)} WHERE ${ident('run_id')} = ${literal(this.opts.runId)}`, "reset this run's deletion records");
    await this.runner.execute(`INSERT INTO ${this.deletionsTable} (${ident('key')}, ${ident('detected_at')}, ${ident('run_id')})\n${recordsSql}`, 'record deletions');
  }

  async deleteKeys(gone: string, years: number[]): Promise<void> {
    for (const group of partitionGroups(years, this.partitionsPerWrite)) {
      await this.runner.execute(deleteMergeSql(this.opts.dataset, gone, this.tableRef('curated'), group), 'delete gone keys');
    }
    await this.runner.execute(
      `${deleteAllSql(this.keysTable)} WHERE ${ident('key')} IN (SELECT ${ident('key')} FROM ${this.deletionsTable} WHERE ${ident('run_id')} = ${literal(this.opts.runId)})`,
      'forget deleted merged keys',
    );
  }

  async dropScratch(): Promise<void> {}

  // --- history and change feed primitives: the Iceberg tables themselves ---

  async deletionRecords(): Promise<string> {
    return `SELECT ${ident('key')}, ${ident('detected_at')} FROM ${this.deletionsTable}`;
  }

  async historyTarget(keys: string, rebuild: boolean): Promise<HistoryTarget> {
    const target = rebuild ? qualified(this.opts.curatedDatabase, this.historyNextTable) : this.historyRef;
    const pk = ident(this.opts.dataset.primaryKey);
    // Reads the key column only: the cheap way to learn whether the MERGE can be an INSERT.
    const [found] = await this.runner.execute(`SELECT count(*) AS n FROM (SELECT 1 FROM ${target} AS h WHERE h.${pk} IN (SELECT k.${pk} FROM (${keys}) AS k) LIMIT 1) AS x`, 'history of the keys');
    return { target, keys, empty: Number(found?.n ?? 0) === 0 };
  }

  async insertHistory(history: HistoryTarget, rows: string): Promise<void> {
    // By name: a column declared after the table was created sits after the history columns.
    const names = historyColumns(this.opts.dataset).map((c) => ident(c.name)).join(', ');
    await this.runner.execute(`INSERT INTO ${history.target} (${names}) ${rows}`, 'history');
  }

  async commitHistory(): Promise<void> {}

  async changesTarget(): Promise<string> {
    return this.changesTable;
  }

  async commitChanges(): Promise<void> {}

  async changesRef(): Promise<string> {
    return this.changesTable;
  }

  async materializeMart(name: string, selectSql: string): Promise<number> {
    const live = martTableName(this.table, name);
    const next = asideTableName(live, 'next');
    const db = this.opts.curatedDatabase;
    await this.restoreAside(live);
    await this.runner.execute(dropTableSql(db, next), `drop leftover ${next}`);
    // Built aside: a failing CTAS leaves the previous mart in place for readers.
    await this.runner.execute(martCtasSql(qualified(db, next), this.freshLocation('marts', name, this.opts.runId), selectSql), `build mart ${name}`);
    await this.swapIn(live, next);
    const [count] = await this.runner.execute(`SELECT count(*) AS n FROM ${this.tableRef(name)}`, `count mart ${name}`);
    return Number(count?.n ?? 0);
  }

  async existingModel(name: string): Promise<boolean> {
    const live = martTableName(this.table, name);
    // A swap interrupted by a crash leaves the mart aside; put it back before looking.
    await this.restoreAside(live);
    return this.exists(live);
  }

  async mergedKeys(): Promise<number> {
    const [r] = await this.runner.execute(mergedKeysCountSql(this.keysTable), 'reconciliation');
    return Number(r?.n ?? 0);
  }

  /** Iceberg maintenance of the curated table (runTransform decides the cadence). */
  async maintain(): Promise<string[]> {
    const statements = [optimizeSql(this.tableRef('curated')), vacuumSql(this.opts.curatedDatabase, this.table)];
    await this.runner.execute(statements[0]!, 'optimize curated');
    await this.runner.execute(statements[1]!, 'vacuum curated');
    return statements;
  }

  async close(): Promise<void> {}
}
