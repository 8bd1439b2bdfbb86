/**
 * The container's entry logic: environment → engine → runTransform → exit code.
 *
 * Exit codes: TRANSFORM_EXIT in runtime/run-protocol.ts (the state machine branches on them):
 * 0 ok, 1 failed, 2 configuration, 3 an error-severity data test failed, 4 mass delete refused,
 * 5 repair needed.
 *
 * Flags (`node dist/entry.mjs [--select <models>] [--tests-only]`, or the SELECT / TESTS_ONLY
 * variables; a flag wins over its variable): see USAGE. `--help` exits 0, a usage error 2.
 */
import { parseArgs } from 'node:util';
import { AthenaClient } from '@aws-sdk/client-athena';
import { ATHENA_REQUEST_TIMEOUT_MS, boundedRequestHandler } from '../../../runtime/aws-request-handler';
import { openObjectStore } from '../../../runtime/object-store';
import { errorCategory, exitCodeFor } from '../../../runtime/pipeline-error';
import { TRANSFORM_EXIT, type TransformExitCode } from '../../../runtime/run-protocol';
import { AthenaEngine } from './athena-engine';
import { readTransformEnv } from './env';
import { REBUILD_HINT, RECONCILIATION_TEST, runTransform, type RunSummary } from './transform';

/** The run protocol's exit codes, under the name this module's callers and tests know. */
export const EXIT = TRANSFORM_EXIT;

export const USAGE = `Usage: node dist/entry.mjs [--select <model>[,<model>...]] [--tests-only] [--help]

Runs one transform: merge the new raw objects into curated, build the marts, run the data tests.
Configuration comes from the environment (DATASET_CONFIG, ENGINE, RAW_LOCATION, CURATED_LOCATION,
RUN_ID, ...; see docs/transform.md "Container").

  --select <models>  build and test only these marts (comma or space separated; env SELECT):
                     <model>, +<model> (and its ancestors), <model>+ (and its descendants),
                     +<model>+; "curated" alone builds no mart. Curated is always merged and tested.
  --tests-only       merge and build nothing: run the tests on the existing tables (env TESTS_ONLY=true)
  --help             print this help and exit 0

Exit codes: 0 ok, 1 run failed, 2 configuration or usage error, 3 an error-severity test failed,
4 mass delete refused, 5 repair needed.`;

export interface MainIo {
  /** One JSON object per line (CloudWatch Logs friendly). */
  log: (record: Record<string, unknown>) => void;
  athenaClient?: () => AthenaClient;
  /** Plain text for a person (--help, usage errors); default stdout / stderr. */
  print?: (text: string, stream: 'stdout' | 'stderr') => void;
}

/** Command-line flags as the environment variables they stand for; `help` or a usage error instead. */
export function parseFlags(argv: readonly string[]): { env: NodeJS.ProcessEnv } | { help: true } | { usageError: string } {
  let values: { select?: string[]; 'tests-only'?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { select: { type: 'string', multiple: true }, 'tests-only': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    return { usageError: (err as Error).message };
  }
  if (values.help) return { help: true };
  return {
    env: {
      ...(values.select ? { SELECT: values.select.join(',') } : {}),
      ...(values['tests-only'] ? { TESTS_ONLY: 'true' } : {}),
    },
  };
}

const defaultPrint = (text: string, stream: 'stdout' | 'stderr'): void => {
  (stream === 'stdout' ? process.stdout : process.stderr).write(`${text}\n`);
};

const defaultIo: MainIo = { log: (r) => process.stdout.write(`${JSON.stringify(r)}\n`) };

/**
 * The one place the container maps an error to its exit code and log line: the error's own
 * (runtime/pipeline-error.ts), so configuration (environment, dataset, model files) exits 2, a
 * refused mass delete 4, anything else 1.
 */
function failed(err: unknown, datasetName: string | undefined, io: MainIo): TransformExitCode {
  const e = err as Error;
  const exitCode = exitCodeFor(err);
  // A refused mass delete's `dataset` and `error` feed the MassDeleteRefused metric filter on the task's log group.
  const dataset = errorCategory(err) === 'refused' ? { dataset: datasetName } : {};
  io.log({ level: 'error', message: e.message, error: e.name, ...dataset, exitCode });
  return exitCode;
}

export async function main(baseEnv: NodeJS.ProcessEnv, io: MainIo = defaultIo, argv: readonly string[] = []): Promise<number> {
  const flags = parseFlags(argv);
  const print = io.print ?? defaultPrint;
  if ('help' in flags) {
    print(USAGE, 'stdout');
    return EXIT.ok;
  }
  if ('usageError' in flags) {
    print(`${flags.usageError}\n\n${USAGE}`, 'stderr');
    return EXIT.config;
  }
  const env = { ...baseEnv, ...flags.env };
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
    io.log({ level: 'info', message: 'transform started', dataset: cfg.dataset.name, runId: cfg.runId, engine: cfg.engine, rebuild: cfg.rebuild, select: cfg.select, testsOnly: cfg.testsOnly });
    summary = await runTransform({
      dataset: cfg.dataset,
      engine,
      rawStore,
      curatedStore,
      runId: cfg.runId,
      rebuild: cfg.rebuild,
      undeclaredColumns: cfg.undeclaredColumns,
      ...(cfg.select ? { select: cfg.select } : {}),
      testsOnly: cfg.testsOnly,
      log: (message) => io.log({ level: 'info', message, dataset: cfg.dataset.name, runId: cfg.runId }),
    });
  } catch (err) {
    return failed(err, datasetName, io);
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
