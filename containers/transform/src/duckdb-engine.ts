/**
 * The embedded engine: DuckDB reads the raw zone's gzipped NDJSON from a local directory and keeps
 * the curated table as zstd Parquet, hive-partitioned by event-time year:
 *
 *   <curated dir>/curated/<dataset>/table/event_year=YYYY/data_0.parquet
 *   <curated dir>/curated/<dataset>/marts/<mart>/data.parquet
 *
 * A batch rewrites only the years it touches (the years of its rows and of the curated rows it
 * replaces), each swapped in by directory rename.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { tableName, type DatasetConfig } from '../../../runtime/dataset-config';
import { curatedPrefix } from '../../../runtime/storage-layout';
import { duckdbDialect, ident, literal } from './dialect';
import { plainValue, type BatchStats, type Row, type TransformEngine } from './engine';
import { martTableName } from './models';
import { batchProfileSql, curatedColumns, rawColumns, stagingSql } from './staging';

export const PARTITION_COLUMN = 'event_year';

export interface DuckDbEngineOptions {
  dataset: DatasetConfig;
  /** Local directory mirroring the raw bucket. */
  rawDir: string;
  /** Local directory mirroring the curated bucket. */
  curatedDir: string;
  runId: string;
  /** DuckDB memory limit, e.g. '2GB' (default: DuckDB's own, 80% of RAM). */
  memoryLimit?: string;
}

/** Directory of the curated table and of a mart, under the curated root. */
export const curatedTableDir = (curatedDir: string, dataset: DatasetConfig): string =>
  path.join(curatedDir, curatedPrefix(dataset), 'table');
export const martDir = (curatedDir: string, dataset: DatasetConfig, mart: string): string =>
  path.join(curatedDir, curatedPrefix(dataset), 'marts', mart);

const sqlList = (values: string[]): string => `[${values.map(literal).join(', ')}]`;

async function isGzip(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(2);
    const { bytesRead } = await handle.read(buf, 0, 2, 0);
    return bytesRead === 2 && buf[0] === 0x1f && buf[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

async function hasParquet(dir: string): Promise<boolean> {
  if (!existsSync(dir)) return false;
  const entries = await readdir(dir, { recursive: true });
  return entries.some((e) => String(e).endsWith('.parquet'));
}

export class DuckDbEngine implements TransformEngine {
  readonly dialect = duckdbDialect;
  readonly curatedLocation: string;
  private readonly table: string;
  private readonly tableDir: string;
  private curatedKind: 'VIEW' | 'TABLE' | undefined;

  private constructor(
    private readonly opts: DuckDbEngineOptions,
    private readonly db: DuckDBInstance,
    private readonly conn: DuckDBConnection,
  ) {
    this.table = tableName(opts.dataset);
    this.tableDir = curatedTableDir(opts.curatedDir, opts.dataset);
    this.curatedLocation = this.tableDir;
  }

  static async open(opts: DuckDbEngineOptions): Promise<DuckDbEngine> {
    const db = await DuckDBInstance.create(':memory:', opts.memoryLimit ? { memory_limit: opts.memoryLimit } : {});
    const conn = await db.connect();
    await conn.run('CREATE SCHEMA IF NOT EXISTS curated');
    return new DuckDbEngine(opts, db, conn);
  }

  private async exec(sql: string): Promise<void> {
    await this.conn.run(sql);
  }

  async rows(sql: string): Promise<Row[]> {
    const reader = await this.conn.runAndReadAll(sql);
    return reader.getRowObjectsJS().map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, plainValue(v)])));
  }

  tableRef(model: string): string {
    return model === 'curated'
      ? `curated.${ident(this.table)}`
      : `curated.${ident(martTableName(this.table, model))}`;
  }

  private columnDdl(): string {
    return curatedColumns(this.opts.dataset)
      .map((c) => `${ident(c.name)} ${c.type}`)
      .join(', ');
  }

  /** (Re)point curated.<table> at the Parquet files, or an empty typed table when there are none. */
  private async refreshCuratedView(): Promise<void> {
    const ref = this.tableRef('curated');
    if (this.curatedKind) await this.exec(`DROP ${this.curatedKind} ${ref}`);
    if (await hasParquet(this.tableDir)) {
      await this.exec(`CREATE VIEW ${ref} AS ${curatedParquetSelect(this.opts.dataset, this.tableDir, await this.parquetColumns())}`);
      this.curatedKind = 'VIEW';
    } else {
      await this.exec(`CREATE TABLE ${ref} (${this.columnDdl()})`);
      this.curatedKind = 'TABLE';
    }
  }

  private async parquetColumns(): Promise<Set<string>> {
    const rows = await this.rows(
      `DESCRIBE SELECT * FROM read_parquet(${literal(path.join(this.tableDir, '**', '*.parquet'))}, hive_partitioning = true, union_by_name = true)`,
    );
    return new Set(rows.map((r) => String(r.column_name)));
  }

  async prepare(): Promise<void> {
    await this.refreshCuratedView();
  }

  private rawPaths(rawKeys: string[]): string[] {
    return rawKeys.map((k) => path.join(this.opts.rawDir, k));
  }

  /** A read_ndjson over raw objects with every column declared (absent columns read as NULL). */
  private async rawReader(rawKeys: string[], columns = rawColumns(this.opts.dataset)): Promise<string> {
    const files = this.rawPaths(rawKeys);
    const gz: string[] = [];
    const plain: string[] = [];
    for (const f of files) {
      if (await isGzip(f)) gz.push(f);
      else plain.push(f);
    }
    const cols = `{${columns.map((c) => `${literal(c.name)}: ${literal(c.kind === 'json' ? 'JSON' : 'VARCHAR')}`).join(', ')}}`;
    const read = (list: string[], compression: string): string =>
      `SELECT * FROM read_ndjson(${sqlList(list)}, columns = ${cols}, format = 'newline_delimited', ignore_errors = true, ` +
      `compression = '${compression}', filename = '__source_object', maximum_object_size = 67108864)`;
    const parts = [...(gz.length ? [read(gz, 'gzip')] : []), ...(plain.length ? [read(plain, 'none')] : [])];
    return parts.length ? `(${parts.join(' UNION ALL ')})` : `(SELECT ${columns.map((c) => `CAST(NULL AS VARCHAR) AS ${ident(c.name)}`).join(', ')}, '' AS __source_object WHERE FALSE)`;
  }

  async mergeBatch(rawKeys: string[]): Promise<BatchStats> {
    const d = this.opts.dataset;
    const pk = ident(d.primaryKey);
    const cols = curatedColumns(d);
    const names = cols.map((c) => ident(c.name)).join(', ');
    const event = ident(d.eventTimeColumn);

    await this.exec(`CREATE OR REPLACE TEMP TABLE batch_raw AS SELECT * FROM ${await this.rawReader(rawKeys)}`);
    const [profile] = await this.rows(batchProfileSql(d, this.dialect, 'batch_raw'));
    const p = profile ?? {};
    const castFailures: Record<string, number> = {};
    for (const [k, v] of Object.entries(p)) {
      if (k.startsWith('cast_failures__') && Number(v) > 0) castFailures[k.slice('cast_failures__'.length)] = Number(v);
    }
    const rowsRead = Number(p.rows_read ?? 0);
    const malformedRows = Number(p.malformed_rows ?? 0);
    const rowsWithoutKey = Number(p.rows_without_key ?? 0);

    await this.exec(`CREATE OR REPLACE TEMP TABLE batch AS ${stagingSql(d, this.dialect, 'batch_raw', '__source_object')}`);
    await this.exec('DROP TABLE batch_raw');
    const batchRows = Number((await this.rows('SELECT count(*) AS n FROM batch'))[0]?.n ?? 0);
    const duplicatesRemoved = rowsRead - malformedRows - rowsWithoutKey - batchRows;

    const existing = this.tableRef('curated');
    const year = (e: string): string => `coalesce(${this.dialect.year(e)}, -1)`;
    // Years to rewrite: those of the batch rows and of the curated rows they replace (an event time can move).
    await this.exec(`CREATE OR REPLACE TEMP TABLE affected AS
      SELECT DISTINCT ${year(event)} AS y FROM batch
      UNION SELECT DISTINCT ${year(`e.${event}`)} FROM ${existing} e SEMI JOIN batch b ON e.${pk} = b.${pk}`);
    await this.exec(`CREATE OR REPLACE TEMP TABLE merged AS
      SELECT ${names}, __origin FROM (
        SELECT *, row_number() OVER (
          PARTITION BY ${pk}
          ORDER BY "_source_updated_at" DESC NULLS LAST, "_ingested_at" DESC NULLS LAST, __origin DESC
        ) AS __rank
        FROM (
          SELECT ${names}, 1 AS __origin FROM ${existing} WHERE ${year(event)} IN (SELECT y FROM affected)
          UNION ALL
          SELECT ${names}, 0 AS __origin FROM batch
        )
      ) WHERE __rank = 1`);
    const [counts] = await this.rows(`SELECT
        count_if(b.${pk} IS NOT NULL AND e.${pk} IS NULL) AS inserted,
        count_if(b.${pk} IS NOT NULL AND e.${pk} IS NOT NULL AND m.__origin = 0) AS updated,
        count_if(b.${pk} IS NOT NULL AND e.${pk} IS NOT NULL AND m.__origin = 1) AS unchanged
      FROM batch b
      LEFT JOIN (SELECT ${pk} FROM ${existing}) e ON e.${pk} = b.${pk}
      LEFT JOIN merged m ON m.${pk} = b.${pk}`);
    const rowsInserted = Number(counts?.inserted ?? 0);
    const rowsUpdated = Number(counts?.updated ?? 0);
    const rowsUnchanged = Number(counts?.unchanged ?? 0);

    const affected = (await this.rows('SELECT y FROM affected ORDER BY y')).map((r) => Number(r.y));
    if (rowsInserted + rowsUpdated > 0) {
      await this.writePartitions(affected, names, event);
    }
    await this.exec('DROP TABLE IF EXISTS merged');
    await this.exec('DROP TABLE IF EXISTS batch');
    await this.exec('DROP TABLE IF EXISTS affected');
    await this.refreshCuratedView();
    return {
      rowsRead,
      malformedRows,
      rowsWithoutKey,
      duplicatesRemoved,
      rowsInserted,
      rowsUpdated,
      rowsUnchanged,
      castFailures,
      partitionsWritten: rowsInserted + rowsUpdated > 0 ? affected.length : 0,
    };
  }

  /** Write the merged rows of the affected years to a scratch directory, then swap each year in. */
  private async writePartitions(years: number[], names: string, event: string): Promise<void> {
    const scratch = path.join(this.opts.curatedDir, '.transform-scratch', `${this.opts.dataset.name}-${this.opts.runId}`);
    await rm(scratch, { recursive: true, force: true });
    await mkdir(path.dirname(scratch), { recursive: true });
    // Rows in event-time order: neighbouring timestamps compress far better (mart queries read
    // the time columns), and min/max statistics let engines skip row groups on time filters.
    const key = ident(this.opts.dataset.primaryKey);
    await this.exec(`COPY (SELECT ${names}, ${this.dialect.year(event)} AS ${PARTITION_COLUMN} FROM merged ORDER BY ${event} NULLS LAST, ${key})
      TO ${literal(scratch)} (FORMAT parquet, PARTITION_BY (${PARTITION_COLUMN}), COMPRESSION zstd, PARQUET_VERSION 'V2', OVERWRITE_OR_IGNORE)`);
    await mkdir(this.tableDir, { recursive: true });
    for (const y of years) {
      const dir = `${PARTITION_COLUMN}=${y === -1 ? '__HIVE_DEFAULT_PARTITION__' : y}`;
      const target = path.join(this.tableDir, dir);
      const retired = path.join(scratch, `retired-${dir}`);
      if (existsSync(target)) await rename(target, retired);
      if (existsSync(path.join(scratch, dir))) await rename(path.join(scratch, dir), target);
    }
    await rm(scratch, { recursive: true, force: true });
  }

  async materializeMart(name: string, selectSql: string): Promise<number> {
    const dir = martDir(this.opts.curatedDir, this.opts.dataset, name);
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, 'data.parquet');
    const tmp = path.join(dir, `.data-${this.opts.runId}.parquet.tmp`);
    await this.exec(`COPY (${selectSql}) TO ${literal(tmp)} (FORMAT parquet, COMPRESSION zstd)`);
    await rename(tmp, file);
    const ref = this.tableRef(name);
    await this.exec(`CREATE OR REPLACE VIEW ${ref} AS SELECT * FROM read_parquet(${literal(file)})`);
    return Number((await this.rows(`SELECT count(*) AS n FROM ${ref}`))[0]?.n ?? 0);
  }

  async rawDistinctKeys(rawKeys: string[]): Promise<number> {
    if (!rawKeys.length) return 0;
    const pkOnly = [{ name: this.opts.dataset.primaryKey, kind: 'text' as const }];
    const rows = await this.rows(`SELECT count(DISTINCT ${ident(this.opts.dataset.primaryKey)}) AS n FROM ${await this.rawReader(rawKeys, pkOnly)}`);
    return Number(rows[0]?.n ?? 0);
  }

  private closed = false;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.conn.closeSync();
    this.db.closeSync();
  }
}

/**
 * SELECT of the curated columns over the Parquet files (the partition column left out); columns
 * added to the dataset after the files were written read as NULL.
 */
export function curatedParquetSelect(dataset: DatasetConfig, tableDir: string, present?: Set<string>): string {
  const cols = curatedColumns(dataset)
    .map((c) => (present && !present.has(c.name) ? `CAST(NULL AS ${c.type}) AS ${ident(c.name)}` : ident(c.name)))
    .join(', ');
  return `SELECT ${cols} FROM read_parquet(${literal(path.join(tableDir, '**', '*.parquet'))}, hive_partitioning = true, union_by_name = true, hive_types = {'${PARTITION_COLUMN}': INTEGER})`;
}
