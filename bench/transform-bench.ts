/**
 * Transform: our DuckDB transform (runTransform: staging, dedup, merge into the partitioned
 * curated table, marts, data tests, run summary and report) over the raw objects our fetcher
 * delivered, against the floor for touching all that data once: a plain DuckDB
 * `COPY (SELECT * FROM read_ndjson(<raw objects>)) TO parquet`. Beside it, informational, the same
 * transform on the deployed engine (AthenaEngine on a local Trino).
 */
import { randomUUID } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { DatasetConfig } from '../runtime/dataset-config';
import { LocalObjectStore } from '../runtime/object-store';
import { rawPrefix } from '../runtime/storage-layout';
import { literal } from '../containers/transform/src/dialect';
import { DuckDbEngine } from '../containers/transform/src/duckdb-engine';
import { runTransform, type RunSummary } from '../containers/transform/src/transform';
import { localAthenaEngine, prepareAthenaCatalog, startLocalAthena } from '../local/athena-local';
import { trinoMissing } from '../local/trino-server';

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
  /**
   * Where runTransform's time went: its stages (between its log lines) and, inside them, the
   * DuckDB statements by kind. Seconds of wall time; the load statement runs while zlib checks
   * the same objects, so the first stage is not the sum of its parts.
   */
  profile: TransformProfile;
  /**
   * The same transform on the deployed engine (AthenaEngine through the local Athena endpoint on
   * Trino), side by side, informational: or why it did not run (no Trino here).
   */
  athena: AthenaTransformBench | { skipped: string };
}

export interface AthenaTransformBench {
  /** Trino start-up (not part of the transform; Athena has none). */
  trinoStartSeconds: number;
  transformSeconds: number;
  stages: { stage: string; seconds: number }[];
  curatedRows: number;
  martRows: Record<string, number>;
  /** The two engines' curated rows and mart row counts are equal. */
  agrees: boolean;
}

export interface TransformProfile {
  stages: { stage: string; seconds: number }[];
  statements: { kind: string; count: number; seconds: number }[];
}

/** What a DuckDB statement of the transform does (the bench's profile groups by this). */
export function statementKind(sql: string): string {
  const s = sql.replace(/\s+/g, ' ').trim();
  const rules: [RegExp, string][] = [
    [/TEMP TABLE batch_typed AS/, 'load: read raw, cast, content hash (one pass)'],
    [/^DELETE FROM batch_typed/, 'load: drop rows of quarantined objects'],
    [/AS rows_read/, 'batch profile (counts)'],
    [/TEMP (VIEW|TABLE) batch AS/, 'staged rows (ranking only when a key repeats)'],
    [/TEMP TABLE (affected|merge_target) AS|AS source_object, count\(\*\) AS staged|^SELECT y FROM affected|^SELECT count\(\*\) AS n FROM batch$/, 'merge target + preview'],
    // The change feed's records (one per run and key) and the history's versions have MERGEs of their own.
    [/^MERGE INTO \S+ AS c USING/, 'change feed records (MERGE per run and key)'],
    [/^MERGE INTO \S+ AS h USING/, 'history versions (MERGE)'],
    [/^MERGE INTO/, 'MERGE statement'],
    [/PARTITION_BY/, 'write curated Parquet (sorted, per year)'],
    [/AS key, __source_object AS object/, 'record merged keys'],
    [/^COPY \(SELECT DISTINCT key, object|count\(DISTINCT key\)/, 'merged keys: fold + count'],
    [/\.data-.*\.parquet\.tmp|^CREATE OR REPLACE VIEW curated\./, 'marts'],
    [/AS failing/, 'data tests'],
    [/^DESCRIBE|^(CREATE|DROP) (VIEW|TABLE) curated\./, 'curated view refresh'],
  ];
  return rules.find(([re]) => re.test(s))?.[1] ?? 'other statements';
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
  const statements = new Map<string, { count: number; ms: number }>();
  const marks: { line: string; at: number }[] = [];
  const start = performance.now();
  const engine = await DuckDbEngine.open({
    dataset,
    rawDir,
    curatedDir,
    runId: 'bench-transform',
    onStatement: (sql, ms) => {
      const kind = statementKind(sql);
      const k = statements.get(kind) ?? { count: 0, ms: 0 };
      statements.set(kind, { count: k.count + 1, ms: k.ms + ms });
    },
  });
  let summary: RunSummary;
  try {
    summary = await runTransform({
      dataset,
      engine,
      rawStore: new LocalObjectStore(rawDir),
      curatedStore: new LocalObjectStore(curatedDir),
      runId: 'bench-transform',
      log: (line) => marks.push({ line, at: performance.now() }),
    });
  } finally {
    await engine.close();
  }
  const end = performance.now();
  const transformSeconds = (end - start) / 1000;
  opts.log(`  transform ${transformSeconds.toFixed(2)} s (${summary.curatedRows.toLocaleString('en-US')} curated rows, ${summary.status})`);
  const profile = transformProfile(start, end, marks, statements);
  for (const p of profile.stages) opts.log(`    ${p.seconds.toFixed(2).padStart(6)} s  ${p.stage}`);
  for (const p of profile.statements) opts.log(`    ${p.seconds.toFixed(2).padStart(6)} s  SQL: ${p.kind} (${p.count})`);

  const curated = await filesUnder(path.join(curatedDir, 'curated', dataset.name, 'table'), '.parquet');
  const [floor] = await filesUnder(dataDir, 'copy-floor.parquet');
  const martRows = Object.fromEntries(summary.marts.map((m) => [m.name, m.rows]));
  const athena = await runAthenaTransformBench({ dataset, dataDir, rawDir, log: opts.log, expect: { curatedRows: summary.curatedRows, martRows } });
  return {
    rawObjects: raw.length,
    rawGzipBytes: raw.reduce((a, r) => a + r.bytes, 0),
    transformSeconds,
    copyFloorSeconds,
    copyFloorRuns,
    ratio: transformSeconds / copyFloorSeconds,
    curatedRows: summary.curatedRows,
    rowsRead: summary.rowsRead,
    martRows,
    curatedParquetBytes: curated.reduce((a, f) => a + f.bytes, 0),
    floorParquetBytes: floor?.bytes ?? 0,
    curatedDir,
    status: summary.status,
    profile,
    athena,
  };
}

/** The transform over the same raw objects on the Athena engine (Trino), into a curated directory of its own. */
async function runAthenaTransformBench(opts: {
  dataset: DatasetConfig;
  dataDir: string;
  rawDir: string;
  log: (line: string) => void;
  expect: { curatedRows: number; martRows: Record<string, number> };
}): Promise<AthenaTransformBench | { skipped: string }> {
  const missing = trinoMissing();
  if (missing) {
    opts.log(`  athena engine: skipped (${missing})`);
    return { skipped: missing };
  }
  const curatedDir = path.join(opts.dataDir, 'buckets', 'curated-athena');
  await rm(curatedDir, { recursive: true, force: true });
  const t0 = performance.now();
  // A running Trino (the test run's) is used as it is; otherwise the bench starts its own.
  const running = process.env.TRINO_URL && process.env.TRINO_METASTORE_DIR ? { url: process.env.TRINO_URL, metastoreDir: process.env.TRINO_METASTORE_DIR } : undefined;
  const athena = await startLocalAthena({ resultsDir: path.join(opts.dataDir, 'buckets', 'athena-results'), trino: running ?? { stateDir: path.join(opts.dataDir, 'trino-bench') } });
  try {
    const trinoStartSeconds = (performance.now() - t0) / 1000;
    const suffix = randomUUID().replace(/-/g, '').slice(0, 8);
    const catalog = { dataset: opts.dataset, rawDir: opts.rawDir, curatedDir, rawDatabase: `raw_bench_${suffix}`, curatedDatabase: `curated_bench_${suffix}` };
    await prepareAthenaCatalog(athena, catalog);
    const marks: { line: string; at: number }[] = [];
    const start = performance.now();
    const summary = await runTransform({
      dataset: opts.dataset,
      engine: localAthenaEngine(athena, { ...catalog, runId: 'bench-transform' }),
      rawStore: new LocalObjectStore(opts.rawDir),
      curatedStore: new LocalObjectStore(curatedDir),
      runId: 'bench-transform',
      log: (line) => marks.push({ line, at: performance.now() }),
    });
    const end = performance.now();
    const martRows = Object.fromEntries(summary.marts.map((m) => [m.name, m.rows]));
    const agrees = summary.curatedRows === opts.expect.curatedRows && JSON.stringify(martRows) === JSON.stringify(opts.expect.martRows);
    const stages = transformProfile(start, end, marks, new Map()).stages;
    opts.log(`  athena engine (Trino): ${((end - start) / 1000).toFixed(2)} s (${summary.curatedRows.toLocaleString('en-US')} curated rows, ${agrees ? 'agrees with DuckDB' : 'DIFFERS from DuckDB'}); Trino started in ${trinoStartSeconds.toFixed(1)} s`);
    for (const p of stages) opts.log(`    ${p.seconds.toFixed(2).padStart(6)} s  ${p.stage}`);
    return { trinoStartSeconds, transformSeconds: (end - start) / 1000, stages, curatedRows: summary.curatedRows, martRows, agrees };
  } finally {
    await athena.close();
  }
}

/** runTransform's stages, cut at its log lines, and its statements by kind, slowest first. */
function transformProfile(start: number, end: number, marks: { line: string; at: number }[], statements: Map<string, { count: number; ms: number }>): TransformProfile {
  const at = (re: RegExp, fallback: number): number => marks.find((m) => re.test(m.line))?.at ?? fallback;
  const checked = at(/new raw object|rebuilding curated/, start);
  const merged = at(/: read \d+ rows/, checked);
  const martLines = marks.filter((m) => /: mart /.test(m.line));
  const marts = martLines.at(-1)?.at ?? merged;
  const stages = [
    { stage: 'open, list, state; gzip check with the load running alongside', seconds: (checked - start) / 1000 },
    { stage: 'merge: profile, staged rows, preview, write, commit', seconds: (merged - checked) / 1000 },
    { stage: 'key scan (when present) and marts', seconds: (marts - merged) / 1000 },
    { stage: 'data tests, reconciliation, summary, report', seconds: (end - marts) / 1000 },
  ];
  return {
    stages,
    statements: [...statements].map(([kind, v]) => ({ kind, count: v.count, seconds: v.ms / 1000 })).sort((a, b) => b.seconds - a.seconds),
  };
}
