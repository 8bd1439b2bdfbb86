/**
 * Transform: our DuckDB transform (runTransform: staging, dedup, merge into the partitioned
 * curated table, marts, data tests, run summary and report) over the raw objects our fetcher
 * delivered, against the floor for touching all that data once: a plain DuckDB
 * `COPY (SELECT * FROM read_ndjson(<raw objects>)) TO parquet`.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { DatasetConfig } from '../runtime/dataset-config';
import { LocalObjectStore } from '../runtime/object-store';
import { rawPrefix } from '../runtime/storage-layout';
import { literal } from '../containers/transform/src/dialect';
import { runTransform, type RunSummary } from '../containers/transform/src/transform';

export interface TransformBenchResult {
  rawObjects: number;
  /** Gzipped bytes of the raw objects. */
  rawGzipBytes: number;
  /** Seconds of runTransform, end to end. */
  transformSeconds: number;
  /** Seconds of the plain COPY floor (the faster of two runs, so the ratio errs against us). */
  copyFloorSeconds: number;
  copyFloorRuns: number[];
  /** transformSeconds ÷ copyFloorSeconds. */
  ratio: number;
  curatedRows: number;
  rowsRead: number;
  martRows: Record<string, number>;
  /** Bytes of the curated table's Parquet files. */
  curatedParquetBytes: number;
  /** Bytes of the floor's single Parquet file (all raw columns as read). */
  floorParquetBytes: number;
  curatedDir: string;
  status: RunSummary['status'];
}

/** Every file under `dir`, recursively, with its size. */
export async function filesUnder(dir: string, suffix = ''): Promise<{ file: string; bytes: number }[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  const out: { file: string; bytes: number }[] = [];
  for (const e of entries) {
    if (!e.isFile() || !e.name.endsWith(suffix)) continue;
    const file = path.join(e.parentPath, e.name);
    out.push({ file, bytes: (await stat(file)).size });
  }
  return out.sort((a, b) => a.file.localeCompare(b.file));
}

async function copyFloor(rawFiles: string[], target: string): Promise<number> {
  await rm(target, { force: true });
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    const start = performance.now();
    await conn.run(
      `COPY (SELECT * FROM read_ndjson([${rawFiles.map(literal).join(', ')}], compression = 'gzip', maximum_object_size = 67108864)) ` +
        `TO ${literal(target)} (FORMAT parquet, COMPRESSION zstd)`,
    );
    return (performance.now() - start) / 1000;
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

export async function runTransformBench(opts: { dataset: DatasetConfig; dataDir: string; log: (line: string) => void }): Promise<TransformBenchResult> {
  const { dataset, dataDir } = opts;
  const rawDir = path.join(dataDir, 'buckets', 'raw');
  const curatedDir = path.join(dataDir, 'buckets', 'curated');
  const raw = await filesUnder(path.join(rawDir, rawPrefix(dataset)));
  if (!raw.length) throw new Error(`No raw objects under ${path.join(rawDir, rawPrefix(dataset))}: the fetch contender delivered nothing`);
  const rawFiles = raw.map((r) => r.file);
  const floorFile = path.join(dataDir, 'copy-floor.parquet');

  // Floor first (also warms the page cache for both), twice; the faster run counts.
  const copyFloorRuns = [await copyFloor(rawFiles, floorFile), await copyFloor(rawFiles, floorFile)];
  const copyFloorSeconds = Math.min(...copyFloorRuns);
  opts.log(`  COPY floor ${copyFloorRuns.map((s) => s.toFixed(2)).join(' s, ')} s`);

  await rm(curatedDir, { recursive: true, force: true });
  const start = performance.now();
  const summary = await runTransform({
    dataset,
    engine: 'duckdb',
    rawStore: new LocalObjectStore(rawDir),
    curatedStore: new LocalObjectStore(curatedDir),
    runId: 'bench-transform',
  });
  const transformSeconds = (performance.now() - start) / 1000;
  opts.log(`  transform ${transformSeconds.toFixed(2)} s (${summary.curatedRows.toLocaleString('en-US')} curated rows, ${summary.status})`);

  const curated = await filesUnder(path.join(curatedDir, 'curated', dataset.name, 'table'), '.parquet');
  const [floor] = await filesUnder(dataDir, 'copy-floor.parquet');
  return {
    rawObjects: raw.length,
    rawGzipBytes: raw.reduce((a, r) => a + r.bytes, 0),
    transformSeconds,
    copyFloorSeconds,
    copyFloorRuns,
    ratio: transformSeconds / copyFloorSeconds,
    curatedRows: summary.curatedRows,
    rowsRead: summary.rowsRead,
    martRows: Object.fromEntries(summary.marts.map((m) => [m.name, m.rows])),
    curatedParquetBytes: curated.reduce((a, f) => a + f.bytes, 0),
    floorParquetBytes: floor?.bytes ?? 0,
    curatedDir,
    status: summary.status,
  };
}
