/**
 * The container's entry logic: environment → engine → runTransform → exit code.
 *
 * Exit codes (the state machine fails the execution on any non-zero code):
 *   0  success (warn-severity data tests may have failed; they are in the summary and report)
 *   1  the run failed (a query, an object read/write, the engine); the log line says what to do
 *   2  configuration error (environment variables, dataset definition, model files)
 *   3  an error-severity data test failed; the log names each failing test
 *   4  mass delete refused: the key scan would delete more than deletions.maxDeleteShare of
 *      curated; nothing was deleted (metric/alarm MassDeleteRefused)
 *   5  repair needed: curated lacks source keys (listed in keysets/<dataset>/<run>/missing-keys.txt.gz)
 *      and nothing else failed; the state machine runs the fetcher's repair phase, then the
 *      transform again (once; a second 5 fails the run)
 */
import { AthenaClient } from '@aws-sdk/client-athena';
import { DatasetConfigError } from '../../../runtime/dataset-config';
import { ATHENA_REQUEST_TIMEOUT_MS, boundedRequestHandler } from '../../../runtime/aws-request-handler';
import { openObjectStore } from '../../../runtime/object-store';
import { AthenaEngine } from './athena-engine';
import { EnvError, readTransformEnv } from './env';
import { ModelError } from './models';
import { MassDeleteRefusedError, REBUILD_HINT, RECONCILIATION_TEST, runTransform, TransformConfigError, type RunSummary } from './transform';

export const EXIT = { ok: 0, failed: 1, config: 2, testsFailed: 3, massDeleteRefused: 4, repairNeeded: 5 } as const;

export interface MainIo {
  /** One JSON object per line (CloudWatch Logs friendly). */
  log: (record: Record<string, unknown>) => void;
  athenaClient?: () => AthenaClient;
}

const defaultIo: MainIo = { log: (r) => process.stdout.write(`${JSON.stringify(r)}\n`) };

export async function main(env: NodeJS.ProcessEnv, io: MainIo = defaultIo): Promise<number> {
  let summary: RunSummary;
  let datasetName: string | undefined;
  try {
    const cfg = readTransformEnv(env);
    datasetName = cfg.dataset.name;
    const rawStore = openObjectStore(cfg.rawLocation);
    const curatedStore = openObjectStore(cfg.curatedLocation);
    const engine =
      cfg.engine === 'duckdb'
        ? ('duckdb' as const)
        : new AthenaEngine({
            dataset: cfg.dataset,
            client: io.athenaClient?.() ?? new AthenaClient({ requestHandler: boundedRequestHandler(ATHENA_REQUEST_TIMEOUT_MS) }),
            workgroup: cfg.athena!.workgroup,
            rawDatabase: cfg.athena!.rawDatabase,
            curatedDatabase: cfg.athena!.curatedDatabase,
            rawLocation: cfg.rawLocation,
            curatedLocation: cfg.curatedLocation,
            runId: cfg.runId,
          });
    io.log({ level: 'info', message: 'transform started', dataset: cfg.dataset.name, runId: cfg.runId, engine: cfg.engine, rebuild: cfg.rebuild });
    summary = await runTransform({
      dataset: cfg.dataset,
      engine,
      rawStore,
      curatedStore,
      runId: cfg.runId,
      rebuild: cfg.rebuild,
      undeclaredColumns: cfg.undeclaredColumns,
      log: (message) => io.log({ level: 'info', message, dataset: cfg.dataset.name, runId: cfg.runId }),
    });
  } catch (err) {
    if (err instanceof MassDeleteRefusedError) {
      // `dataset` and `error` feed the MassDeleteRefused metric filter on the task's log group.
      io.log({ level: 'error', message: err.message, error: err.name, dataset: datasetName, exitCode: EXIT.massDeleteRefused });
      return EXIT.massDeleteRefused;
    }
    const config = err instanceof EnvError || err instanceof DatasetConfigError || err instanceof ModelError || err instanceof TransformConfigError;
    io.log({ level: 'error', message: (err as Error).message, error: (err as Error).name, exitCode: config ? EXIT.config : EXIT.failed });
    return config ? EXIT.config : EXIT.failed;
  }
  io.log({ level: summary.status === 'succeeded' ? 'info' : 'error', message: 'transform finished', summary });
  if (summary.repairNeeded) {
    io.log({
      level: 'warn',
      message: `${summary.missingKeys} source key(s) missing from curated (${summary.reconciliation.source?.missingKeysLocation}); repair needed: the fetcher's repair phase fetches them, then the transform runs again`,
      exitCode: EXIT.repairNeeded,
    });
    return EXIT.repairNeeded;
  }
  if (summary.failedErrorTests.length) {
    io.log({
      level: 'error',
      message:
        `data tests failed (severity error): ${summary.failedErrorTests.join(', ')}` +
        (summary.failedErrorTests.includes(RECONCILIATION_TEST) ? `; to repair curated, ${REBUILD_HINT}` : ''),
      exitCode: EXIT.testsFailed,
    });
    return EXIT.testsFailed;
  }
  return EXIT.ok;
}
