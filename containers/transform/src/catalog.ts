/**
 * The local catalog: a DuckDB database file (default `<data-dir>/catalog.duckdb`) with schemas
 * `raw` and `curated`, the local stand-in for the Glue databases.
 *   raw.<table>                 view over the raw gzipped NDJSON, schema inferred at crawl time
 *                               and then fixed (like the Glue crawler), plus `ingest_date`
 *   curated.<table>             view over the curated Parquet files the table's manifest names
 *   curated.<table>__<mart>     view over each mart's Parquet
 *   curated.<table>__deletions  view over the deletions record (rows removed because the source dropped their keys)
 *   curated.<table>__history    view over the history of every key (every version, its validity)
 *   curated.<table>__changes    view over the change feed (per run: inserts, updates, deletes)
 * The file is opened only briefly, so `npm run query` can use it between runs.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { tableName, type DatasetConfig } from '../../../runtime/dataset-config';
import { LocalObjectStore } from '../../../runtime/object-store';
import { rawPrefix } from '../../../runtime/storage-layout';
import { ident, literal } from './dialect';
import { manifestFiles } from './curated-manifest';
import { changesDir, curatedParquetSelect, curatedTableDir, deletionsDir, historyFile, martDir } from './duckdb-engine';
import { duckDbResources } from './duckdb-resources';
import { martTableName } from './models';

export const defaultCatalogPath = (dataDir: string): string => path.join(dataDir, 'catalog.duckdb');

export async function withCatalog<T>(catalogPath: string, fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
  await mkdir(path.dirname(path.resolve(catalogPath)), { recursive: true });
  // The crawl reads every raw object: bounded like the transform's own instance.
  const db = await DuckDBInstance.create(catalogPath, { ...duckDbResources() });
  const conn = await db.connect();
  try {
    await conn.run('CREATE SCHEMA IF NOT EXISTS raw');
    await conn.run('CREATE SCHEMA IF NOT EXISTS curated');
    return await fn(conn);
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

export interface CrawlResult {
  table: string;
  objects: number;
  columns: { name: string; type: string }[];
}

/** "Crawl" the raw zone of a dataset: infer the schema over its objects and (re)create raw.<table>. */
export async function crawlRaw(opts: { dataset: DatasetConfig; rawDir: string; catalogPath: string }): Promise<CrawlResult> {
  const table = tableName(opts.dataset);
  const dir = path.join(opts.rawDir, rawPrefix(opts.dataset));
  // The raw objects as the transform lists them (the object store skips temp and lock files).
  const files = (await new LocalObjectStore(opts.rawDir).list(rawPrefix(opts.dataset))).filter((k) => /\/ingest_date=[^/]+\/[^/]+$/.test(k));
  return withCatalog(opts.catalogPath, async (conn) => {
    const ref = `raw.${ident(table)}`;
    if (!files.length) {
      await conn.run(`DROP VIEW IF EXISTS ${ref}`);
      return { table: `raw.${table}`, objects: 0, columns: [] };
    }
    const glob = literal(path.join(dir, 'ingest_date=*', '*'));
    const reader = (columns?: string): string =>
      `read_ndjson(${glob}, format = 'newline_delimited', compression = 'gzip', ignore_errors = true, ` +
      `hive_partitioning = true, union_by_name = true${columns ? `, columns = ${columns}` : ''})`;
    const described = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${reader()}`)).getRowObjectsJS();
    const columns = described
      .map((r) => ({ name: String(r.column_name), type: String(r.column_type) }))
      .filter((c) => c.name !== 'ingest_date');
    const declared = `{${columns.map((c) => `${literal(c.name)}: ${literal(c.type)}`).join(', ')}}`;
    await conn.run(`CREATE OR REPLACE VIEW ${ref} AS SELECT * FROM ${reader(declared)}`);
    return { table: `raw.${table}`, objects: files.length, columns };
  });
}

/** Register the curated table and the marts written by the DuckDB engine; returns the table names. */
export async function registerCurated(opts: { dataset: DatasetConfig; curatedDir: string; catalogPath: string }): Promise<string[]> {
  const table = tableName(opts.dataset);
  const tableDir = curatedTableDir(opts.curatedDir, opts.dataset);
  const martsRoot = path.dirname(martDir(opts.curatedDir, opts.dataset, 'x'));
  return withCatalog(opts.catalogPath, async (conn) => {
    const names: string[] = [];
    // Only the files the curated manifest names: a crashed commit's files are never visible.
    const files = manifestFiles(tableDir);
    if (files.length) {
      // Columns added to the dataset (or by the transform, like _content_hash) after older files
      // were written read as NULL from those files.
      const described = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet([${files.map(literal).join(', ')}], union_by_name = true)`)).getRowObjectsJS();
      const present = new Set(described.map((r) => String(r.column_name)));
      await conn.run(`CREATE OR REPLACE VIEW curated.${ident(table)} AS ${curatedParquetSelect(opts.dataset, tableDir, present, files)}`);
      names.push(`curated.${table}`);
    } else {
      await conn.run(`DROP VIEW IF EXISTS curated.${ident(table)}`);
    }
    const deletions = deletionsDir(opts.curatedDir, opts.dataset);
    const deletionFiles = existsSync(deletions) ? readdirSync(deletions).filter((f) => f.endsWith('.parquet')).map((f) => path.join(deletions, f)).sort() : [];
    if (deletionFiles.length) {
      await conn.run(`CREATE OR REPLACE VIEW curated.${ident(`${table}__deletions`)} AS SELECT * FROM read_parquet([${deletionFiles.map(literal).join(', ')}])`);
      names.push(`curated.${table}__deletions`);
    }
    const history = historyFile(opts.curatedDir, opts.dataset);
    if (existsSync(history)) {
      await conn.run(`CREATE OR REPLACE VIEW curated.${ident(`${table}__history`)} AS SELECT * FROM read_parquet(${literal(history)})`);
      names.push(`curated.${table}__history`);
    }
    const changes = changesDir(opts.curatedDir, opts.dataset);
    const changeFiles = existsSync(changes) ? readdirSync(changes).filter((f) => f.endsWith('.parquet')).map((f) => path.join(changes, f)).sort() : [];
    if (changeFiles.length) {
      await conn.run(`CREATE OR REPLACE VIEW curated.${ident(`${table}__changes`)} AS SELECT * FROM read_parquet([${changeFiles.map(literal).join(', ')}])`);
      names.push(`curated.${table}__changes`);
    }
    const marts = existsSync(martsRoot) ? readdirSync(martsRoot).filter((m) => existsSync(path.join(martsRoot, m, 'data.parquet'))) : [];
    for (const m of marts.sort()) {
      const name = martTableName(table, m);
      await conn.run(`CREATE OR REPLACE VIEW curated.${ident(name)} AS SELECT * FROM read_parquet(${literal(path.join(martsRoot, m, 'data.parquet'))})`);
      names.push(`curated.${name}`);
    }
    return names;
  });
}

/** Run one SQL statement on the catalog; rows with bigints as numbers and timestamps as ISO text. */
export async function queryCatalog(catalogPath: string, sql: string): Promise<{ columns: string[]; rows: Record<string, unknown>[] }> {
  if (!existsSync(catalogPath)) {
    throw new Error(`No local catalog at ${catalogPath}: run \`npm run local\` first (or pass --data-dir)`);
  }
  const db = await DuckDBInstance.create(catalogPath, { access_mode: 'READ_ONLY' });
  const conn = await db.connect();
  try {
    const reader = await conn.runAndReadAll(sql);
    const columns = reader.columnNames();
    const rows = reader.getRowObjectsJson() as Record<string, unknown>[];
    const types = reader.columnTypes().map(String);
    // getRowObjectsJson keeps 64/128-bit integers as strings (lossless); show small ones as numbers.
    for (const r of rows) {
      columns.forEach((c, i) => {
        const v = r[c];
        if (typeof v === 'string' && /INT/.test(types[i] ?? '') && Number.isSafeInteger(Number(v))) r[c] = Number(v);
      });
    }
    return { columns, rows };
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}
