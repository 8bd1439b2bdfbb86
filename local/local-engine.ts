/**
 * Which engine a local data directory is built by: `npm run local -- --engine duckdb|athena`.
 * DuckDB (the default) keeps curated as Parquet files with a manifest; athena runs the production
 * AthenaEngine on a local Trino (./athena-local.ts), curated as Iceberg tables. The two layouts
 * cannot read each other's state, so a directory stays with the engine that built it (the marker
 * `engine.json`), and `npm run query` asks that engine.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DatasetConfig } from '../runtime/dataset-config';
import { AthenaQueryRunner } from '../containers/transform/src/athena-query';
import { localAthenaEngine, LOCAL_WORKGROUP, prepareAthenaCatalog, startLocalAthena, type AthenaCatalogOptions, type LocalAthena } from './athena-local';
import { trinoMissing } from './trino-server';
import { ConfigError } from '../runtime/pipeline-error';

export const LOCAL_ENGINES = ['duckdb', 'athena'] as const;
export type LocalEngineName = (typeof LOCAL_ENGINES)[number];

const MARKER = 'engine.json';

/** The data directory was built by the other engine (or Trino is missing for athena). */
export class LocalEngineError extends ConfigError {
  override name = 'LocalEngineError';
}

export function parseEngine(value: string | undefined): LocalEngineName | undefined {
  if (value === undefined) return undefined;
  if (!(LOCAL_ENGINES as readonly string[]).includes(value)) throw new LocalEngineError(`--engine must be duckdb or athena, got "${value}"`);
  return value as LocalEngineName;
}

/** The engine that built this data directory, if any run did. */
export function builtBy(dataDir: string): LocalEngineName | undefined {
  const file = path.join(dataDir, MARKER);
  if (!existsSync(file)) return undefined;
  const engine = (JSON.parse(readFileSync(file, 'utf8')) as { engine?: string }).engine;
  return engine === 'athena' ? 'athena' : 'duckdb';
}

/** The engine a run uses: the one asked for, else the directory's, else DuckDB; checked before anything runs. */
export function engineForRun(dataDir: string, asked: LocalEngineName | undefined, fresh: boolean): LocalEngineName {
  const built = fresh ? undefined : builtBy(dataDir);
  if (asked && built && asked !== built) {
    throw new LocalEngineError(`${dataDir} was built by the ${built} engine; run with --engine ${built}, or --fresh to start over with ${asked}`);
  }
  const engine = asked ?? built ?? 'duckdb';
  if (engine === 'athena') {
    const missing = trinoMissing();
    if (missing) throw new LocalEngineError(`--engine athena runs the deployed Athena SQL on a local Trino: ${missing}`);
  }
  return engine;
}

export async function markEngine(dataDir: string, engine: LocalEngineName): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  await writeFile(path.join(dataDir, MARKER), `${JSON.stringify({ engine })}\n`);
}

/** Glue's databases locally: the names `npm run query` uses on both engines. */
export const LOCAL_DATABASES = { rawDatabase: 'raw', curatedDatabase: 'curated' } as const;

export function localCatalog(dataDir: string, dataset: DatasetConfig): AthenaCatalogOptions {
  return { dataset, rawDir: path.join(dataDir, 'buckets', 'raw'), curatedDir: path.join(dataDir, 'buckets', 'curated'), ...LOCAL_DATABASES };
}

/** Trino (state kept in the data directory), the local Athena endpoint, the Glue databases and raw table. */
export async function openLocalAthena(dataDir: string, dataset: DatasetConfig | undefined, log?: (line: string) => void): Promise<LocalAthena> {
  const athena = await startLocalAthena({
    resultsDir: path.join(dataDir, 'buckets', 'athena-results'),
    trino: { stateDir: path.join(dataDir, 'trino') },
    ...(log ? { log } : {}),
  });
  if (dataset) {
    try {
      await prepareAthenaCatalog(athena, localCatalog(dataDir, dataset));
    } catch (err) {
      await athena.close();
      throw err;
    }
  }
  return athena;
}

export function localAthenaRunEngine(athena: LocalAthena, dataDir: string, dataset: DatasetConfig, runId: string) {
  return localAthenaEngine(athena, { ...localCatalog(dataDir, dataset), runId });
}

/** A query through the local Athena endpoint, rows as the transform reads them. */
export async function queryAthena(athena: LocalAthena, sql: string): Promise<{ columns: string[]; rows: Record<string, unknown>[] }> {
  const rows = await new AthenaQueryRunner(athena.client, { workgroup: LOCAL_WORKGROUP, pollInitialMs: 10, pollMaxMs: 100 }).execute(sql);
  return { columns: rows[0] ? Object.keys(rows[0]) : [], rows };
}
