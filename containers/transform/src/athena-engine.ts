/**
 * The AWS engine: Athena over the Glue raw table (the CDK's, with partition projection on
 * ingest_date) and Iceberg curated tables in the curated database.
 */
import type { AthenaClient } from '@aws-sdk/client-athena';
import { tableName, type DatasetConfig } from '../../../runtime/dataset-config';
import { curatedPrefix, keysetPrefix } from '../../../runtime/storage-layout';
import {
  addColumnsSql,
  asideTableName,
  createCuratedTableSql,
  createDeletionsTableSql,
  createKeysetTableSql,
  createMergedKeysTableSql,
  deletionsTableName,
  keysetRawSql,
  deleteAllSql,
  dropTableSql,
  martCtasSql,
  mergePreviewSql,
  mergedKeysCountSql,
  mergeSql,
  optimizeSql,
  partitionGroups,
  qualified,
  rawBatchSql,
  recordMergedKeysSql,
  renameTableSql,
  stagedBatchSql,
  tableColumnsSql,
  tableExistsSql,
  vacuumSql,
} from './athena-sql';
import { AthenaQueryRunner, type AthenaQueryOptions } from './athena-query';
import { athenaDialect, ident, literal } from './dialect';
import { emptyBatchStats, type Keyset, type KeysetOptions, type KeysetReconciliation, type MergeOptions, type MergeResult, type Row, type TransformEngine } from './engine';
import { deletionRecordsSql, goneKeysSql, keysetCountsSql, missingKeysSql, sourceKeysSql } from './keyset-sql';
import { deleteMergeSql } from './merge-sql';
import { martTableName } from './models';
import { batchProfileSql, curatedColumns } from './staging';

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

  async prepare(): Promise<void> {
    await this.restoreAside(this.table);
    if (!(await this.exists(this.table))) {
      await this.runner.execute(createCuratedTableSql(this.opts.dataset, this.tableRef('curated'), this.curatedLocation), 'create curated table');
    } else {
      // A table created by an earlier version lacks newer curated columns (e.g. _content_hash).
      const have = new Set((await this.runner.execute(tableColumnsSql(this.opts.curatedDatabase, this.table), 'curated columns')).map((r) => String(r.column_name)));
      const missing = curatedColumns(this.opts.dataset).filter((c) => !have.has(c.name));
      if (missing.length) await this.runner.execute(addColumnsSql(this.opts.curatedDatabase, this.table, missing), 'add curated columns');
    }
    if (!(await this.exists(asideTableName(this.table, 'merged_keys')))) {
      await this.runner.execute(createMergedKeysTableSql(this.keysTable, this.location('merged-keys')), 'create merged keys table');
    }
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

  async mergeBatch(rawKeys: string[], options: MergeOptions = {}): Promise<MergeResult> {
    const total: MergeResult = { ...emptyBatchStats(), contributions: {} };
    const rawTable = qualified(this.opts.rawDatabase, this.table);
    const bucket = this.opts.rawLocation.replace(/\/$/, '');
    const objects = rawKeys.map((key) => {
      const date = INGEST_DATE.exec(key)?.[1];
      if (!date) throw new Error(`Raw object ${bucket}/${key} is outside an ingest_date=YYYY-MM-DD partition`);
      return { ingestDate: date, path: `${bucket}/${key}` };
    });
    // A rebuild merges everything into an empty table built aside, then swaps it in: readers keep
    // the old curated table until the new one is complete.
    const nextTable = asideTableName(this.table, 'next');
    const target = options.rebuild ? qualified(this.opts.curatedDatabase, nextTable) : this.tableRef('curated');
    if (options.rebuild) {
      await this.runner.execute(dropTableSql(this.opts.curatedDatabase, nextTable), 'drop leftover rebuild table');
      await this.runner.execute(createCuratedTableSql(this.opts.dataset, target, this.location(`table-${this.opts.runId}`)), 'create rebuild table');
    }
    for (const group of partitionGroups(objects, this.opts.objectsPerQuery ?? 500)) {
      const raw = rawBatchSql(rawTable, group);
      const [profile = {}] = await this.runner.execute(batchProfileSql(this.opts.dataset, this.dialect, raw), 'batch profile');
      const staged = stagedBatchSql(this.opts.dataset, raw);
      const perObject = await this.runner.execute(mergePreviewSql(this.opts.dataset, staged, target), 'merge preview');
      const preview = { staged: 0, inserted: 0, updated: 0, unchanged: 0 };
      const yearSet = new Set<number>();
      for (const p of perObject) {
        preview.staged += Number(p.staged ?? 0);
        preview.inserted += Number(p.inserted ?? 0);
        preview.updated += Number(p.updated ?? 0);
        preview.unchanged += Number(p.unchanged ?? 0);
        for (const y of String(p.years ?? '').split(',').filter(Boolean)) yearSet.add(Number(y));
        const key = String(p.source_object ?? '').replace(`${bucket}/`, '');
        total.contributions[key] = { keys: Number(p.staged ?? 0), inserted: Number(p.inserted ?? 0) };
      }
      const years = [...yearSet].sort((x, y) => x - y);
      const rowsRead = Number(profile.rows_read ?? 0);
      const malformed = Number(profile.malformed_rows ?? 0);
      const keyless = Number(profile.rows_without_key ?? 0);
      total.rowsRead += rowsRead;
      total.malformedRows += malformed;
      total.rowsWithoutKey += keyless;
      total.duplicatesRemoved += rowsRead - malformed - keyless - preview.staged;
      total.rowsInserted += preview.inserted;
      total.rowsUpdated += preview.updated;
      total.rowsUnchanged += preview.unchanged;
      for (const [k, v] of Object.entries(profile)) {
        if (k.startsWith('cast_failures__') && Number(v) > 0) {
          const col = k.slice('cast_failures__'.length);
          total.castFailures[col] = (total.castFailures[col] ?? 0) + Number(v);
        }
      }
      if (preview.staged > 0) await this.runner.execute(recordMergedKeysSql(this.opts.dataset, staged, this.keysTable, this.opts.runId), 'record merged keys');
      if (preview.inserted + preview.updated === 0) continue;
      for (const yearGroup of partitionGroups(years, this.opts.partitionsPerWrite ?? 100)) {
        await this.runner.execute(mergeSql(this.opts.dataset, staged, target, yearGroup), 'merge');
        total.partitionsWritten += yearGroup.length;
      }
    }
    if (options.rebuild) {
      await this.swapIn(this.table, nextTable);
      // The rebuild's key set replaces every earlier run's (a crash before this only leaves duplicates).
      await this.runner.execute(`${deleteAllSql(this.keysTable)} WHERE ${ident('run_id')} <> ${literal(this.opts.runId)}`, 'reset merged keys');
    }
    return total;
  }

  async applyKeyset(keyset: Keyset, options: KeysetOptions): Promise<KeysetReconciliation> {
    const d = this.opts.dataset;
    const db = this.opts.curatedDatabase;
    const bucket = this.opts.rawLocation.replace(/\/$/, '');
    const keysetTable = asideTableName(this.table, 'keyset');
    await this.runner.execute(createKeysetTableSql(db, keysetTable, `${bucket}/${keysetPrefix(d)}`), 'create keyset table');
    const deletions = qualified(db, deletionsTableName(this.table));
    if (!(await this.exists(deletionsTableName(this.table)))) {
      await this.runner.execute(createDeletionsTableSql(deletions, this.location('deletions')), 'create deletions table');
    }
    const source = sourceKeysSql(d, this.dialect, keysetRawSql(qualified(db, keysetTable), keyset.partKeys.map((k) => `${bucket}/${k}`)));
    const curated = this.tableRef('curated');
    const [counts = {}] = await this.runner.execute(keysetCountsSql(d, this.dialect, curated, source), 'keyset counts');
    const curatedRowsBefore = Number(counts.curated_rows ?? 0);
    const goneKeys = Number(counts.gone ?? 0);
    const refused = goneKeys > options.maxDeleteShare * curatedRowsBefore;
    if (goneKeys && !refused) {
      const gone = goneKeysSql(d, this.dialect, curated, source);
      const years = (await this.runner.execute(`SELECT DISTINCT ${ident('__year')} AS y FROM (${gone}) AS g ORDER BY 1`, 'deletion years')).map((r) => Number(r.y));
      // Recorded before the deletes, replacing this run's records: a retried run records each once.
      await this.runner.execute(`${deleteAllSql(deletions)} WHERE ${ident('run_id')} = ${literal(this.opts.runId)}`, 'reset this run\'s deletion records');
      await this.runner.execute(
        `INSERT INTO ${deletions} (${ident('key')}, ${ident('detected_at')}, ${ident('run_id')})\n${deletionRecordsSql(d, this.dialect, gone, options.detectedAt, this.opts.runId)}`,
        'record deletions',
      );
      for (const group of partitionGroups(years, this.opts.partitionsPerWrite ?? 100)) {
        await this.runner.execute(deleteMergeSql(d, gone, curated, group), 'delete gone keys');
      }
      await this.runner.execute(
        `${deleteAllSql(this.keysTable)} WHERE ${ident('key')} IN (SELECT ${ident('key')} FROM ${deletions} WHERE ${ident('run_id')} = ${literal(this.opts.runId)})`,
        'forget deleted merged keys',
      );
    }
    const missing = (await this.runner.execute(missingKeysSql(d, curated, source), 'missing keys')).map((r) => String(r.key));
    const [after = {}] = await this.runner.execute(`SELECT count(*) AS n FROM (${goneKeysSql(d, this.dialect, curated, source)}) AS g`, 'extra keys');
    return {
      sourceKeys: Number(counts.source_keys ?? 0),
      curatedRowsBefore,
      goneKeys,
      rowsDeleted: refused ? 0 : goneKeys,
      refused,
      missingKeys: missing,
      extraKeys: Number(after.n ?? 0),
    };
  }

  async materializeMart(name: string, selectSql: string): Promise<number> {
    const live = martTableName(this.table, name);
    const next = asideTableName(live, 'next');
    const db = this.opts.curatedDatabase;
    await this.restoreAside(live);
    await this.runner.execute(dropTableSql(db, next), `drop leftover ${next}`);
    // Built aside: a failing CTAS leaves the previous mart in place for readers.
    await this.runner.execute(martCtasSql(qualified(db, next), this.location('marts', name, this.opts.runId), selectSql), `build mart ${name}`);
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
    const statements = [optimizeSql(this.tableRef('curated')), vacuumSql(this.tableRef('curated'))];
    await this.runner.execute(statements[0]!, 'optimize curated');
    await this.runner.execute(statements[1]!, 'vacuum curated');
    return statements;
  }

  async close(): Promise<void> {}
}
