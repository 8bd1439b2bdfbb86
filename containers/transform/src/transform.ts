/**
 * One transform run: find the raw objects not yet merged, stage + merge them, rebuild the marts,
 * run the data tests, record progress, write the run summary and the HTML report.
 * The container entry (main.ts) and the local pipeline both call runTransform().
 */
import type { DatasetConfig } from '../../../runtime/dataset-config';
import type { ObjectStore } from '../../../runtime/object-store';
import { rawPrefix, reportKey, runSummaryKey } from '../../../runtime/storage-layout';
import { registerCurated } from './catalog';
import { curatedTests, testQuery, type DataTestResult } from './data-tests';
import { DuckDbEngine } from './duckdb-engine';
import { emptyBatchStats, scalar, type BatchStats, type Row, type TransformEngine } from './engine';
import { loadMarts, renderMart, type MartModel } from './models';
import { readProcessedObjects, writeProcessedObjects } from './processed-objects';
import { renderReport } from './report';

/** A run's summary: the merged batch's stats (see BatchStats) plus the run's own facts. */
export interface RunSummary extends BatchStats {
  dataset: string;
  runId: string;
  engine: 'duckdb' | 'athena';
  /** succeeded: every error-severity test passed (warnings may have failed). */
  status: 'succeeded' | 'tests_failed';
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  rawObjects: { total: number; new: number; alreadyProcessed: number };
  /** rowsInserted + rowsUpdated. */
  rowsWritten: number;
  curatedRows: number;
  marts: { name: string; table: string; rows: number }[];
  tests: { passed: number; failed: number; warned: number; results: DataTestResult[] };
  /** Names of the error-severity tests that failed (why the run exits non-zero). */
  failedErrorTests: string[];
  summaryLocation: string;
  reportLocation: string;
}

export interface RunTransformOptions {
  dataset: DatasetConfig;
  /** 'duckdb' opens the embedded engine over the two (local) stores; or pass an engine (Athena). */
  engine: 'duckdb' | TransformEngine;
  rawStore: ObjectStore;
  curatedStore: ObjectStore;
  runId: string;
  /** Marts to build (default: the SQL files under models/<dataset>/). */
  marts?: MartModel[];
  modelsDir?: string;
  /** DuckDB engine only: register the curated table and marts in this local catalog file. */
  catalogPath?: string;
  /** Rows of each mart shown in the report (charts and tables). */
  reportRowLimit?: number;
  log?: (line: string) => void;
  now?: () => Date;
}

/** Local directory behind a store, or a clear error (the DuckDB engine reads and writes files). */
function localDir(store: ObjectStore, role: string): string {
  if (store.location.startsWith('s3://')) {
    throw new TransformConfigError(
      `The duckdb engine needs a local ${role} directory, got ${store.location}; use ENGINE=athena for S3 buckets`,
    );
  }
  return store.location;
}

export class TransformConfigError extends Error {
  override name = 'TransformConfigError';
}

export async function runTransform(opts: RunTransformOptions): Promise<RunSummary> {
  const now = opts.now ?? (() => new Date());
  const log = opts.log ?? (() => {});
  const started = now();
  const { dataset, rawStore, curatedStore, runId } = opts;
  if (dataset.name.includes('--')) {
    throw new TransformConfigError(`Dataset name "${dataset.name}" contains "--": "__" separates dataset and mart table names`);
  }
  const marts = opts.marts ?? loadMarts(dataset, opts.modelsDir);
  const engine =
    opts.engine === 'duckdb'
      ? await DuckDbEngine.open({ dataset, rawDir: localDir(rawStore, 'raw'), curatedDir: localDir(curatedStore, 'curated'), runId })
      : opts.engine;
  try {
    await engine.prepare();

    const allRaw = (await rawStore.list(rawPrefix(dataset))).filter((k) => !k.endsWith('/'));
    const processed = await readProcessedObjects(curatedStore, dataset);
    const fresh = allRaw.filter((k) => !processed.keys.has(k));
    log(`${dataset.name}: ${fresh.length} new raw object(s) of ${allRaw.length}`);

    const batch = fresh.length ? await engine.mergeBatch(fresh) : emptyBatchStats();
    if (fresh.length) await writeProcessedObjects(curatedStore, dataset, processed, fresh, runId);
    log(
      `${dataset.name}: read ${batch.rowsRead} rows, ${batch.rowsInserted} inserted, ${batch.rowsUpdated} updated, ` +
        `${batch.duplicatesRemoved} duplicates removed, ${batch.malformedRows} malformed`,
    );

    const martResults: RunSummary['marts'] = [];
    for (const mart of marts) {
      const sql = renderMart(mart, engine.dialect, (ref) => engine.tableRef(ref));
      const rows = await engine.materializeMart(mart.name, sql);
      martResults.push({ name: mart.name, table: engine.tableRef(mart.name), rows });
      log(`${dataset.name}: mart ${mart.name}: ${rows} rows`);
    }

    const curatedRef = engine.tableRef('curated');
    const curatedRows = await scalar(engine, `SELECT count(*) AS n FROM ${curatedRef}`);
    const queries = [
      ...curatedTests(dataset, curatedRef),
      ...marts.flatMap((m) => m.tests.map((t) => testQuery(t, m.name, engine.tableRef(m.name)))),
    ];
    const results: DataTestResult[] = [];
    for (const q of queries) {
      const failing = await scalar(engine, q.sql);
      results.push({ name: q.name, severity: q.severity, model: q.model, description: q.description, status: failing ? 'fail' : 'pass', failing });
    }
    const rawKeys = await engine.rawDistinctKeys(allRaw);
    results.push({
      name: 'reconciliation_raw_keys_equal_curated_rows',
      severity: 'error',
      model: 'curated',
      description: `distinct keys in raw (${rawKeys}) == rows in curated (${curatedRows})`,
      status: rawKeys === curatedRows ? 'pass' : 'fail',
      failing: Math.abs(rawKeys - curatedRows),
    });
    const failedErrorTests = results.filter((r) => r.status === 'fail' && r.severity === 'error').map((r) => r.name);
    for (const r of results.filter((x) => x.status === 'fail')) {
      log(`${dataset.name}: data test ${r.severity === 'error' ? 'FAILED' : 'warning'}: ${r.name} (${r.failing} failing: ${r.description})`);
    }

    const finished = now();
    const summary: RunSummary = {
      dataset: dataset.name,
      runId,
      engine: engine.dialect.name,
      status: failedErrorTests.length ? 'tests_failed' : 'succeeded',
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      durationMs: finished.getTime() - started.getTime(),
      rawObjects: { total: allRaw.length, new: fresh.length, alreadyProcessed: allRaw.length - fresh.length },
      ...batch,
      rowsWritten: batch.rowsInserted + batch.rowsUpdated,
      curatedRows,
      marts: martResults,
      tests: {
        passed: results.filter((r) => r.status === 'pass').length,
        failed: results.filter((r) => r.status === 'fail' && r.severity === 'error').length,
        warned: results.filter((r) => r.status === 'fail' && r.severity === 'warn').length,
        results,
      },
      failedErrorTests,
      summaryLocation: `${curatedStore.location}/${runSummaryKey(dataset, runId)}`,
      reportLocation: `${curatedStore.location}/${reportKey(dataset, runId)}`,
    };

    const martRows: { mart: MartModel; rows: Row[] }[] = [];
    for (const mart of marts) {
      martRows.push({ mart, rows: await engine.rows(`SELECT * FROM ${engine.tableRef(mart.name)} LIMIT ${opts.reportRowLimit ?? 5000}`) });
    }
    await curatedStore.put(runSummaryKey(dataset, runId), JSON.stringify(summary, null, 2), { contentType: 'application/json' });
    await curatedStore.put(reportKey(dataset, runId), await renderReport({ dataset, summary, marts: martRows }), {
      contentType: 'text/html; charset=utf-8',
    });
    if (opts.catalogPath && opts.engine === 'duckdb') {
      await engine.close();
      await registerCurated({ dataset, curatedDir: curatedStore.location, catalogPath: opts.catalogPath });
    }
    return summary;
  } finally {
    if (opts.engine === 'duckdb') await engine.close();
  }
}

