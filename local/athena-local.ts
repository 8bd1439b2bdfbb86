/**
 * The deployed engine, locally: the production AthenaEngine (the one the transform container
 * runs) talks to the local Athena endpoint (local/athena-server.ts) over the AWS SDK, which runs
 * every statement on Trino. What Glue does on AWS is done here: the databases exist, and the raw
 * table is the CDK's `AWS::Glue::Table` (local/glue-raw-table.ts) registered in Trino's metastore.
 * Used by `npm run local -- --engine athena`, `npm run query`, the bench and the tests.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { AthenaClient } from '@aws-sdk/client-athena';
import { AthenaEngine, type AthenaEngineOptions } from '../containers/transform/src/athena-engine';
import type { DatasetConfig } from '../runtime/dataset-config';
import { startAthenaServer, type AthenaServer } from './athena-server';
import { rawLocationMapper, registerGlueTable, synthesizeRawTable } from './glue-raw-table';
import { TrinoClient } from './trino-client';
import { localLocation, startTrino, type TrinoServer } from './trino-server';

export const LOCAL_WORKGROUP = 'primary';

export interface LocalAthena {
  client: AthenaClient;
  trino: TrinoClient;
  /** Trino's file metastore (the Glue catalog's stand-in). */
  metastoreDir: string;
  endpoint: string;
  close(): Promise<void>;
}

export interface StartLocalAthenaOptions {
  /** Where query results go (the workgroup's enforced result location). */
  resultsDir: string;
  /** Use a running Trino (its URL and metastore directory), or start one with state in `stateDir`. */
  trino: { url: string; metastoreDir: string } | { stateDir: string };
  log?: (line: string) => void;
}

export async function startLocalAthena(opts: StartLocalAthenaOptions): Promise<LocalAthena> {
  let own: TrinoServer | undefined;
  let url: string;
  let metastoreDir: string;
  if ('url' in opts.trino) {
    ({ url, metastoreDir } = opts.trino);
  } else {
    own = await startTrino({ stateDir: opts.trino.stateDir, ...(opts.log ? { log: opts.log } : {}) });
    ({ url, metastoreDir } = own);
  }
  let server: AthenaServer | undefined;
  try {
    const trino = new TrinoClient(url);
    await mkdir(opts.resultsDir, { recursive: true });
    server = await startAthenaServer({ trino, workgroups: { [LOCAL_WORKGROUP]: { outputDir: opts.resultsDir } } });
    const client = new AthenaClient({
      endpoint: server.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    });
    const started = server;
    return {
      client,
      trino,
      metastoreDir,
      endpoint: server.endpoint,
      close: async () => {
        client.destroy();
        await started.close();
        await own?.stop();
      },
    };
  } catch (err) {
    await server?.close();
    await own?.stop();
    throw err;
  }
}

export interface AthenaCatalogOptions {
  dataset: DatasetConfig;
  rawDir: string;
  curatedDir: string;
  rawDatabase: string;
  curatedDatabase: string;
}

/** What the Storage and Pipeline stacks create in Glue: both databases and the raw table (from its template). */
export async function prepareAthenaCatalog(athena: LocalAthena, opts: AthenaCatalogOptions): Promise<void> {
  for (const [db, dir] of [
    [opts.rawDatabase, opts.rawDir],
    [opts.curatedDatabase, opts.curatedDir],
  ] as const) {
    const r = await athena.trino.execute(`CREATE SCHEMA IF NOT EXISTS hive."${db}" WITH (location = '${localLocation(path.join(dir, '_glue', db))}')`);
    if (r.error) throw new Error(`cannot create database ${db} on Trino: ${r.error.message}`);
  }
  await registerGlueTable(athena.metastoreDir, opts.rawDatabase, synthesizeRawTable(opts.dataset, opts.rawDatabase), rawLocationMapper(opts.rawDir));
}

/** The production engine over the local endpoint, for one run. */
export function localAthenaEngine(
  athena: LocalAthena,
  opts: AthenaCatalogOptions & { runId: string } & Partial<Pick<AthenaEngineOptions, 'objectsPerQuery' | 'partitionsPerWrite' | 'renderMerge'>>,
): AthenaEngine {
  return new AthenaEngine({
    dataset: opts.dataset,
    client: athena.client,
    workgroup: LOCAL_WORKGROUP,
    rawDatabase: opts.rawDatabase,
    curatedDatabase: opts.curatedDatabase,
    rawLocation: localLocation(opts.rawDir),
    curatedLocation: localLocation(opts.curatedDir),
    runId: opts.runId,
    // A local query answers in milliseconds: poll often, as a person would not wait on AWS.
    pollInitialMs: 10,
    pollMaxMs: 100,
    ...(opts.objectsPerQuery ? { objectsPerQuery: opts.objectsPerQuery } : {}),
    ...(opts.partitionsPerWrite ? { partitionsPerWrite: opts.partitionsPerWrite } : {}),
    ...(opts.renderMerge ? { renderMerge: opts.renderMerge } : {}),
  });
}
