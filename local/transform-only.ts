/**
 * `npm run local -- --select <models>` / `--tests-only`: the transform alone, on what the data
 * directory already holds (no fetch), as a data engineer iterates on a mart or its tests (dbt's
 * `dbt build --select` / `dbt test`). Raw objects not yet merged are merged unless tests-only.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { DatasetConfig } from '../runtime/dataset-config';
import { openObjectStore } from '../runtime/object-store';
import { defaultCatalogPath } from '../containers/transform/src/catalog';
import { runTransform, type RunSummary } from '../containers/transform/src/transform';
import { localAthenaRunEngine, openLocalAthena, type LocalEngineName } from './local-engine';
import { UsageError } from '../runtime/pipeline-error';

export interface TransformOnlyOptions {
  dataset: DatasetConfig;
  /** The engine that built dataDir (local-engine.ts). */
  engine?: LocalEngineName;
  dataDir: string;
  select?: string[];
  testsOnly: boolean;
  log: (line: string) => void;
}

/** The data directory has no curated data yet: run the whole pipeline first. */
export class NothingToTransformError extends UsageError {
  override name = 'NothingToTransformError';
}

/** Refuse a data directory the pipeline never ran in (checked before it is locked, which would create it). */
export function checkTransformable(dataDir: string): void {
  if (!existsSync(path.join(dataDir, 'buckets', 'raw')) && !existsSync(path.join(dataDir, 'buckets', 'curated'))) {
    throw new NothingToTransformError(`${dataDir} holds no data yet: run \`npm run local -- --data-dir ${dataDir}\` first (--select and --tests-only work on what is there)`);
  }
}

export async function runLocalTransformOnly(opts: TransformOnlyOptions): Promise<RunSummary> {
  checkTransformable(opts.dataDir);
  const rawDir = path.join(opts.dataDir, 'buckets', 'raw');
  const curatedDir = path.join(opts.dataDir, 'buckets', 'curated');
  const runId = `local-${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${randomUUID().slice(0, 8)}`;
  const athena = opts.engine === 'athena' ? await openLocalAthena(opts.dataDir, opts.dataset, opts.log) : undefined;
  try {
    return await runTransform({
      dataset: opts.dataset,
      engine: athena ? localAthenaRunEngine(athena, opts.dataDir, opts.dataset, runId) : 'duckdb',
      rawStore: openObjectStore(rawDir),
      curatedStore: openObjectStore(curatedDir),
      runId,
      catalogPath: defaultCatalogPath(opts.dataDir),
      ...(opts.select ? { select: opts.select } : {}),
      testsOnly: opts.testsOnly,
      log: opts.log,
    });
  } finally {
    await athena?.close();
  }
}

/** The summary lines a person reads after a transform-only run. */
export function transformOnlyLines(s: RunSummary): string[] {
  const lines = [
    '',
    `Transform ${s.runId} of ${s.dataset}${s.selection?.testsOnly ? ' (tests only: nothing merged or built)' : ''}${s.selection?.select ? ` --select ${s.selection.select.join(',')}` : ''}`,
    `  curated    ${s.curatedRows} rows${s.selection?.testsOnly ? '' : `, ${s.rawObjects.new} new raw object(s) merged`}`,
    `  marts      ${s.marts.length ? s.marts.map((m) => `${m.name} (${m.rows})`).join(', ') : 'none built'}` +
      (s.skippedModels?.length ? `; SKIPPED: ${s.skippedModels.map((m) => `${m.name} (${m.reason})`).join(', ')}` : ''),
    `  tests      ${s.tests.passed} passed, ${s.tests.failed} failed, ${s.tests.warned} warnings, ${s.tests.skipped ?? 0} skipped` +
      (s.failedErrorTests.length ? ` — FAILED: ${s.failedErrorTests.join(', ')}` : ''),
    ...s.tests.results
      .filter((r) => r.status === 'fail' || r.status === 'warn')
      .map((r) => `    ${r.status === 'fail' ? 'FAIL' : 'warn'} ${r.name}: ${r.failing} failing (${r.description})${r.failuresTable ? `; rows in ${r.failuresTable}` : ''}`),
    '',
    `Report: ${s.reportLocation}`,
  ];
  return lines;
}
