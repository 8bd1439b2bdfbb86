/**
 * Query cost: the bytes an engine such as Athena must read to answer each shipped mart's query,
 * on the curated Parquet vs on the raw gzipped JSON.
 *
 * Method.
 * - Columns: each mart's SQL is rendered for DuckDB with `ref('curated')` pointing at the curated
 *   Parquet files and any `ref('<mart>')` inlined as that mart's own query (so the answer comes
 *   from the curated table, as an ad-hoc query would). DuckDB's optimizer plans it
 *   (`EXPLAIN (FORMAT json)`), and the columns its Parquet scans read are the scan's
 *   `Projections` plus every column named in the `Filters` pushed into the scan. This is the
 *   engine's own column pruning, not a guess from the SQL text.
 * - Bytes on Parquet: the sum of `total_compressed_size` of those columns' chunks in every file
 *   (from `parquet_metadata()`), over the partitions the query touches. The curated table is
 *   partitioned by event year and no shipped mart filters on it, so every partition counts; the
 *   Parquet footers (a few KB per file) are left out.
 * - Bytes on raw JSON: every gzipped raw object in full. Gzip is not splittable and JSON has no
 *   columns, so Athena reads (and bills) the whole objects for any query on them.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { DatasetConfig } from '../runtime/dataset-config';
import { duckdbDialect, literal } from '../containers/transform/src/dialect';
import { manifestFiles } from '../containers/transform/src/curated-manifest';
import { curatedTableDir } from '../containers/transform/src/duckdb-engine';
import { loadMarts, renderMart, type MartModel } from '../containers/transform/src/models';

export interface MartQueryBytes {
  mart: string;
  /** Curated columns the query reads, as the planner pruned them. */
  columns: string[];
  parquetFiles: number;
  parquetBytes: number;
  rawJsonGzipBytes: number;
  /** rawJsonGzipBytes ÷ parquetBytes: how many times fewer bytes the curated Parquet costs. */
  reduction: number;
}

interface PlanNode {
  name?: string;
  children?: PlanNode[];
  extra_info?: Record<string, string | string[]>;
}

const asList = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : v.split('\n'));

/** Columns read by the Parquet scans of a plan: projections plus columns used by pushed-down filters. */
export function scannedColumns(plan: PlanNode[], tableColumns: string[]): string[] {
  const found = new Set<string>();
  const visit = (n: PlanNode): void => {
    if (/PARQUET/i.test(n.name ?? '') || /PARQUET/i.test(String(n.extra_info?.Function ?? ''))) {
      for (const p of asList(n.extra_info?.Projections)) if (tableColumns.includes(p.trim())) found.add(p.trim());
      const filters = asList(n.extra_info?.Filters).join(' ');
      for (const c of tableColumns) if (new RegExp(`(^|[^A-Za-z0-9_])"?${c}"?($|[^A-Za-z0-9_])`).test(filters)) found.add(c);
    }
    n.children?.forEach(visit);
  };
  plan.forEach(visit);
  return [...found].sort();
}

/** A mart's query against the curated table only: refs to other marts are inlined as subqueries. */
export function martQueryOnCurated(mart: MartModel, all: MartModel[], curatedRef: string): string {
  const byName = new Map(all.map((m) => [m.name, m]));
  const resolve = (ref: string): string => {
    if (ref === 'curated') return curatedRef;
    const dep = byName.get(ref);
    if (!dep) throw new Error(`mart ${mart.name} refers to unknown mart ${ref}`);
    return `(${renderMart(dep, duckdbDialect, resolve)})`;
  };
  return renderMart(mart, duckdbDialect, resolve);
}

async function rows(conn: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  return (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
}

export async function measureQueryBytes(opts: { dataset: DatasetConfig; curatedDir: string; rawGzipBytes: number }): Promise<MartQueryBytes[]> {
  const tableDir = curatedTableDir(opts.curatedDir, opts.dataset);
  // Only the files the curated manifest names (older versions may still be on disk).
  const files = manifestFiles(tableDir);
  if (!files.length) throw new Error(`No curated Parquet under ${tableDir}: run the transform first`);
  const glob = `[${files.map(literal).join(', ')}]`;
  const marts = loadMarts(opts.dataset);
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    await conn.run(`CREATE VIEW curated_parquet AS SELECT * FROM read_parquet(${glob}, hive_partitioning = true)`);
    const tableColumns = (await rows(conn, 'DESCRIBE curated_parquet')).map((r) => String(r.column_name));
    const chunkBytes = new Map<string, number>();
    for (const r of await rows(conn, `SELECT path_in_schema AS c, sum(total_compressed_size) AS b FROM parquet_metadata(${glob}) GROUP BY 1`)) {
      chunkBytes.set(String(r.c), Number(r.b));
    }
    const out: MartQueryBytes[] = [];
    for (const mart of marts) {
      const sql = martQueryOnCurated(mart, marts, 'curated_parquet');
      const [explain] = await rows(conn, `EXPLAIN (FORMAT json) ${sql}`);
      const plan = JSON.parse(String(explain?.explain_value ?? '[]')) as PlanNode[];
      const columns = scannedColumns(plan, tableColumns);
      if (!columns.length) throw new Error(`mart ${mart.name}: found no Parquet scan columns in its plan; the EXPLAIN format may have changed`);
      // A column absent from the metadata (the hive partition column) is read from the path, not the files.
      const parquetBytes = columns.reduce((a, c) => a + (chunkBytes.get(c) ?? 0), 0);
      out.push({
        mart: mart.name,
        columns,
        parquetFiles: files.length,
        parquetBytes,
        rawJsonGzipBytes: opts.rawGzipBytes,
        reduction: parquetBytes ? opts.rawGzipBytes / parquetBytes : Number.POSITIVE_INFINITY,
      });
    }
    return out;
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}
