/**
 * The AWS engine: Athena over the Glue raw table (the CDK's, with partition projection on
 * ingest_date) and Iceberg curated tables in the curated database.
 */
import type { AthenaClient } from '@aws-sdk/client-athena';
import { tableName, type DatasetConfig } from '../../../runtime/dataset-config';
import { curatedPrefix } from '../../../runtime/storage-layout';
import {
  createCuratedTableSql,
  dropTableSql,
  martCtasSql,
  mergePreviewSql,
  mergeSql,
  partitionGroups,
  qualified,
  rawBatchSql,
  stagedBatchSql,
  tableExistsSql,
} from './athena-sql';
import { AthenaQueryRunner, type AthenaQueryOptions } from './athena-query';
import { athenaDialect, ident } from './dialect';
import { emptyBatchStats, type BatchStats, type Row, type TransformEngine } from './engine';
import { martTableName } from './models';
import { batchProfileSql } from './staging';

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

  async prepare(): Promise<void> {
    const [exists] = await this.runner.execute(tableExistsSql(this.opts.curatedDatabase, this.table), 'table lookup');
    if (Number(exists?.n ?? 0) === 0) {
      await this.runner.execute(createCuratedTableSql(this.opts.dataset, this.tableRef('curated'), this.curatedLocation), 'create curated table');
    }
  }

  async mergeBatch(rawKeys: string[]): Promise<BatchStats> {
    const total = emptyBatchStats();
    const rawTable = qualified(this.opts.rawDatabase, this.table);
    const bucket = this.opts.rawLocation.replace(/\/$/, '');
    const objects = rawKeys.map((key) => {
      const date = INGEST_DATE.exec(key)?.[1];
      if (!date) throw new Error(`Raw object ${bucket}/${key} is outside an ingest_date=YYYY-MM-DD partition`);
      return { ingestDate: date, path: `${bucket}/${key}` };
    });
    for (const group of partitionGroups(objects, this.opts.objectsPerQuery ?? 500)) {
      const raw = rawBatchSql(rawTable, group);
      const [profile = {}] = await this.runner.execute(batchProfileSql(this.opts.dataset, this.dialect, raw), 'batch profile');
      const staged = stagedBatchSql(this.opts.dataset, raw);
      const perObject = await this.runner.execute(mergePreviewSql(this.opts.dataset, staged, this.tableRef('curated')), 'merge preview');
      const preview = { staged: 0, inserted: 0, updated: 0, unchanged: 0 };
      const yearSet = new Set<number>();
      for (const p of perObject) {
        preview.staged += Number(p.staged ?? 0);
        preview.inserted += Number(p.inserted ?? 0);
        preview.updated += Number(p.updated ?? 0);
        preview.unchanged += Number(p.unchanged ?? 0);
        for (const y of String(p.years ?? '').split(',').filter(Boolean)) yearSet.add(Number(y));
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
      if (preview.inserted + preview.updated === 0) continue;
      for (const yearGroup of partitionGroups(years, this.opts.partitionsPerWrite ?? 100)) {
        await this.runner.execute(mergeSql(this.opts.dataset, staged, this.tableRef('curated'), yearGroup), 'merge');
        total.partitionsWritten += yearGroup.length;
      }
    }
    return total;
  }

  async materializeMart(name: string, selectSql: string): Promise<number> {
    const table = martTableName(this.table, name);
    const location = `${this.opts.curatedLocation.replace(/\/$/, '')}/${curatedPrefix(this.opts.dataset)}marts/${name}/${this.opts.runId}/`;
    await this.runner.execute(dropTableSql(this.opts.curatedDatabase, table), `drop mart ${name}`);
    await this.runner.execute(martCtasSql(this.tableRef(name), location, selectSql), `build mart ${name}`);
    const [count] = await this.runner.execute(`SELECT count(*) AS n FROM ${this.tableRef(name)}`, `count mart ${name}`);
    return Number(count?.n ?? 0);
  }

  async rawDistinctKeys(): Promise<number> {
    const rawTable = qualified(this.opts.rawDatabase, this.table);
    const [r] = await this.runner.execute(`SELECT count(DISTINCT ${ident(this.opts.dataset.primaryKey)}) AS n FROM ${rawTable}`, 'reconciliation');
    return Number(r?.n ?? 0);
  }

  async close(): Promise<void> {}
}
