/**
 * `npm run local [-- options]`: run the whole pipeline on this machine.
 * `npm run local -- serve`: start the local Socrata and Firehose endpoints alone.
 */
import { writeSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadDatasetDir, loadDatasetFile, type DatasetConfig } from '../runtime/dataset-config';
import { ConfigError, exitCodeFor, PipelineError, UsageError } from '../runtime/pipeline-error';
import { TRANSFORM_EXIT } from '../runtime/run-protocol';
import { LOCK_FILE, lockDataDir, type DataDirLock } from './data-dir-lock';
import { sourceFor } from './dataset-rows';
import { localStreamName, startLocalFirehose, type FirehoseServer } from './firehose-server';
import { runLocalPipeline, type LocalRunError, type LocalRunSummary } from './pipeline';
import { startSocrataServer } from './socrata-server';
import { progressPrinter } from './cli-progress';
import { didYouMean, parseArgsErrorLine } from './cli-usage';
import { formatTable } from './text-table';
import { showPosition } from '../lambdas/fetcher/sources/registry';
import { readLocalSource, shrunkSourceHint } from './local-source-state';
import { checkTransformable, runLocalTransformOnly, transformOnlyLines } from './transform-only';
import { engineForRun, parseEngine, type LocalEngineName } from './local-engine';

const REPO_ROOT = path.join(import.meta.dirname, '..');
const DATASETS_DIR = path.join(REPO_ROOT, 'datasets');

const USAGE = `Usage:
  npm run local [-- options]         fetch → deliver → crawl → transform → report, locally
  npm run local -- serve [options]   start the local Socrata and Firehose endpoints only

One run at a time per data directory. Ctrl-C (SIGINT) or SIGTERM delivers what the local
Firehose accepted to the raw zone and stops (exit 130 / 143); the next run continues.

Options:
  --dataset <name>        a dataset from datasets/ (default: sf-fire-incidents)
  --dataset-file <path>   any dataset JSON (same schema as datasets/*.json)
  --source <url>          fetch from this Socrata URL instead of the local server (its host
                          and dataset id are the source the checkpoint records),
                          e.g. https://data.sfgov.org/resource/wr8u-xric.json
  --rows <n>              rows the local Socrata server generates (default 50000)
  --data-dir <dir>        where buckets, checkpoints and the catalog live (default .local-data)
  --engine <name>         the transform's engine: duckdb (default) or athena, the deployed
                          Athena SQL executed on a local Trino (install: bash scripts/install-trino.sh
                          and a Java 24+ JDK); a data directory keeps the engine that built it
  --fresh                 delete the data directory first (a full load from scratch)
  --full-refresh          re-read the whole source, ignoring the checkpoint
  --rebuild               rebuild curated from the whole raw zone, without re-fetching
                          (the repair when the reconciliation test fails)
  --select <models>       transform only, on the data already in --data-dir (no fetch): build and
                          test these marts (<model>, +<model>, <model>+; comma separated)
  --tests-only            transform only, no fetch: run the data tests on the existing tables
  --json                  stdout is one JSON object, success or failure: status, exitCode,
                          error and hint, and the run summary
  --port <n>              (serve) Socrata port; Firehose listens on the next one (default: free ports)
  -h, --help              this text`;

const SERVE_USAGE = `Usage: npm run local -- serve [options]

Starts the local Socrata server (generated rows of one dataset) and the local Firehose endpoint
(one stream per dataset, delivering to <data-dir>/buckets/raw) and prints their URLs, for curl or
the AWS CLI with --endpoint-url. Ctrl-C stops both; the Firehose buffer is flushed first.

Options:
  --dataset <name>        the dataset the Socrata server serves (default: the first in datasets/;
                          Firehose then has a stream for every dataset in datasets/)
  --dataset-file <path>   any dataset JSON (same schema as datasets/*.json)
  --rows <n>              rows the Socrata server generates (default 50000)
  --data-dir <dir>        where the Firehose endpoint delivers (default .local-data)
  --port <n>              Socrata port; Firehose listens on the next one (default: free ports)
  -h, --help              this text`;

/** A bad command line of this command: its hint points at --help. */
class CommandLineError extends UsageError {
  constructor(message: string) {
    super(message);
    this.hint = 'see --help';
  }
}

/** node:util's parseArgs, its errors (an unknown option, a missing value) as usage errors. */
function parseArgsOrUsage<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    throw new CommandLineError(parseArgsErrorLine(err, Object.keys(config.options ?? {})));
  }
}

function parseEngineFlag(value: string | undefined): LocalEngineName | undefined {
  try {
    return parseEngine(value);
  } catch (err) {
    throw new CommandLineError((err as Error).message);
  }
}

function parse(argv: string[]) {
  const { values, positionals } = parseArgsOrUsage({
    args: argv,
    allowPositionals: true,
    options: {
      dataset: { type: 'string' },
      'dataset-file': { type: 'string' },
      source: { type: 'string' },
      rows: { type: 'string' },
      'data-dir': { type: 'string' },
      engine: { type: 'string' },
      fresh: { type: 'boolean', default: false },
      'full-refresh': { type: 'boolean', default: false },
      rebuild: { type: 'boolean', default: false },
      select: { type: 'string', multiple: true },
      'tests-only': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      port: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const command = positionals[0] ?? 'run';
  if (!['run', 'serve'].includes(command) || positionals.length > 1) {
    const meant = positionals.length === 1 ? didYouMean(command, ['serve']) : undefined;
    throw new CommandLineError(`Unknown command "${positionals.join(' ')}": expected no command (run) or "serve"${meant ? `; did you mean "${meant}"?` : ''}`);
  }
  const int = (name: string, v: string | undefined, fallback: number, min: number): number => {
    if (v === undefined) return fallback;
    const n = Number(v.replace(/_/g, ''));
    if (!Number.isInteger(n) || n < min) throw new CommandLineError(`--${name} must be a whole number ≥ ${min}, got "${v}"`);
    return n;
  };
  if (values.dataset && values['dataset-file']) throw new CommandLineError('Give --dataset or --dataset-file, not both');
  if (values.select || values['tests-only']) {
    const clash = (['fresh', 'full-refresh', 'rebuild', 'source'] as const).filter((f) => values[f]);
    if (clash.length) throw new CommandLineError(`--select / --tests-only run the transform alone on existing data; drop --${clash.join(', --')}`);
  }
  return {
    command,
    help: values.help,
    datasetName: values.dataset,
    datasetFile: values['dataset-file'],
    source: values.source,
    rows: int('rows', values.rows, 50_000, 1),
    rowsGiven: values.rows !== undefined,
    dataDir: values['data-dir'] ?? path.join(process.cwd(), '.local-data'),
    engine: parseEngineFlag(values.engine),
    fresh: values.fresh,
    fullRefresh: values['full-refresh'],
    rebuild: values.rebuild,
    select: values.select?.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean),
    testsOnly: values['tests-only'],
    json: values.json,
    port: int('port', values.port, 0, 0),
  };
}

/** How often a non-terminal stderr (CI, a pipe) gets a progress line; LOCAL_PROGRESS_INTERVAL_MS overrides it. */
function progressIntervalMs(): number {
  const v = process.env.LOCAL_PROGRESS_INTERVAL_MS;
  const n = v === undefined ? 5_000 : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CommandLineError(`LOCAL_PROGRESS_INTERVAL_MS must be a whole number of milliseconds ≥ 1, got "${v}"`);
  return n;
}

/** Dataset files read: one that does not validate is the person's to fix (its message names the file and each field). */
function readDatasetFiles<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof ConfigError) err.hint ??= 'fix the file and run again';
    throw err;
  }
}

function loadDataset(name: string | undefined, file: string | undefined): DatasetConfig {
  if (file) return readDatasetFiles(() => loadDatasetFile(path.resolve(file)));
  const wanted = name ?? 'sf-fire-incidents';
  const all = readDatasetFiles(() => loadDatasetDir(DATASETS_DIR));
  const found = all.find((d) => d.name === wanted);
  if (!found) {
    throw new CommandLineError(`No dataset "${wanted}" in ${DATASETS_DIR}; known: ${all.map((d) => d.name).join(', ')} (or use --dataset-file)`);
  }
  return found;
}

const fmt = (n: number): string => n.toLocaleString('en-US');

function printSummary(s: LocalRunSummary): void {
  const f = s.fetch;
  const t = s.transform;
  const out: string[] = [
    '',
    `Run ${s.runId} of ${s.dataset}`,
    `  fetch      ${fmt(f.rowsFetched)} rows in ${f.pages} pages${(f.streams ?? 1) > 1 ? ` by ${f.streams} parallel streams` : ''}, ` +
      `${(f.durationMs / 1000).toFixed(1)} s (${fmt(f.rowsPerSecond)} rows/s), ${f.invocations} invocation(s), ${f.sourceRetries} source retries`,
    // A parallel backfill writes its rows straight to the raw zone; incremental runs go through Firehose.
    `  deliver    ${fmt(f.rowsDelivered)} rows (${(f.bytesDelivered / 1e6).toFixed(1)} MB): ` +
      (f.directObjects ? `${fmt(f.directObjects)} raw objects written directly, ` : '') +
      `${fmt(f.firehoseRecords)} Firehose records / ${f.firehoseCalls} calls, ${f.firehoseRetriedRecords} records retried, ${s.firehose.objectsWritten} Firehose objects written`,
    `  quarantine ${fmt(f.rowsQuarantined)} rows (${f.quarantinedMissingKey} without key, ${f.quarantinedInvalidKey} with a non-scalar key); ${fmt(f.largeRowObjects)} rows too large for a Firehose record written as their own raw objects`,
    `  checkpoint ${f.checkpoint ? showPosition(undefined, f.checkpoint) : '(none yet)'}`,
    `  crawl      ${s.crawl.table}: ${s.crawl.objects} objects, ${s.crawl.columns} columns` +
      (s.schemaDrift.undeclared.length ? `; NOT DECLARED (kept in raw only): ${s.schemaDrift.undeclared.join(', ')}` : ''),
  ];
  if (t) {
    const casts = Object.values(t.castFailures).reduce((a, b) => a + b, 0);
    out.push(
      `  transform  ${fmt(t.rowsRead)} rows read from ${t.rawObjects.new} new objects, ${fmt(t.rowsInserted)} inserted, ${fmt(t.rowsUpdated)} updated, ` +
        `${fmt(t.duplicatesRemoved)} duplicates removed, ${casts} cast failures, ${t.malformedRows} malformed`,
      `  deletions  ${t.keysetApplied ? `${fmt(t.rowsDeleted)} curated rows deleted (keys gone at the source), ${fmt(t.missingKeys)} source keys missing from curated` : `no key scan this run${s.keys?.skipped ? ` (${s.keys.skipped})` : ''}`}` +
        (s.repair ? `; repaired ${fmt(s.repair.rowsDelivered)} of ${fmt(s.repair.keysRequested)} missing rows` : ''),
      `  curated    ${fmt(t.curatedRows)} rows; marts: ${t.marts.map((m) => `${m.name} (${m.rows})`).join(', ')}` +
        (t.skippedModels?.length ? `; SKIPPED (an upstream test failed): ${t.skippedModels.map((m) => m.name).join(', ')}` : ''),
      `  tests      ${t.tests.passed} passed, ${t.tests.failed} failed, ${t.tests.warned} warnings${t.tests.skipped ? `, ${t.tests.skipped} skipped` : ''}` +
        (t.failedErrorTests.length ? ` — FAILED: ${t.failedErrorTests.join(', ')}` : ''),
    );
  }
  if (s.sample) out.push('', `Sample: npm run query -- "${s.sample.sql}"`, formatTable(s.sample.columns, s.sample.rows).replace(/^/gm, '  '));
  if (s.reportPath) out.push('', `Report:  ${s.reportPath}`);
  if (t?.historyLocation) out.push(`History: ${t.historyLocation}`);
  out.push(`Query:   npm run query -- "SELECT count(*) FROM curated.${s.dataset.replace(/-/g, '_')}"`);
  process.stdout.write(`${out.join('\n')}\n`);
}

/**
 * Leftovers of a run killed mid-write: LocalObjectStore's per-object lock files (a crash inside a
 * checkpoint write leaves one, and the next write would wait on it) and half-written `.tmp` files.
 * Safe only because this run holds the data directory: no other process is writing in it.
 */
async function removeCrashLeftovers(dataDir: string, log: (line: string) => void): Promise<void> {
  const buckets = path.join(dataDir, 'buckets');
  const entries = await readdir(buckets, { recursive: true, withFileTypes: true }).catch(() => []);
  const leftovers = entries.filter((e) => e.isFile() && (e.name.endsWith('.lock') || e.name.endsWith('.tmp')));
  for (const e of leftovers) await rm(path.join(e.parentPath, e.name), { force: true });
  if (leftovers.length) log(`removed ${leftovers.length} lock/temporary file(s) left by an interrupted run`);
}

/** `--fresh`: empty the data directory, keeping the lock this run holds on it. */
async function emptyDataDir(dataDir: string): Promise<void> {
  for (const name of await readdir(dataDir)) if (name !== LOCK_FILE) await rm(path.join(dataDir, name), { recursive: true, force: true });
}

/** Set once a stop signal is being handled: the run's own outcome is no longer reported. */
let stopping = false;

/**
 * SIGINT (Ctrl-C) / SIGTERM: stop the local Firehose endpoint taking calls, deliver its buffer to
 * raw/ (durably), free the data directory and exit 130 / 143 with one line. Everything the
 * endpoint accepted is already in its journal, so a second signal (or a SIGKILL) loses nothing
 * either: the next run delivers it.
 */
function stopOnSignal(firehose: FirehoseServer, lock: DataDirLock, rawDir: string): () => void {
  let firstAt = 0;
  const handler = (signal: NodeJS.Signals): void => {
    const code = signal === 'SIGINT' ? 130 : 143;
    // One Ctrl-C reaches this process twice under `npm run local`: from the terminal (the whole
    // process group) and relayed by npm. Only a later signal means "stop now".
    if (stopping && Date.now() - firstAt < 1_000) return;
    if (stopping) {
      const message = `${signal} again: stopping now; accepted records not yet in raw/ stay in the Firehose journal and are delivered by the next run`;
      process.stderr.write(`\n${message}\n`);
      json.write({ status: 'stopped', exitCode: code, error: message, hint: 'run again to continue' });
      process.exit(code);
    }
    stopping = true;
    firstAt = Date.now();
    // The fetcher's calls refused from now on fail its current page: the checkpoint stays behind it.
    void firehose
      .close()
      .then(
        () => `stopped by ${signal}: every record the local Firehose accepted is in ${rawDir}; the checkpoint marks what was delivered; run again to continue`,
        (err: unknown) =>
          `stopped by ${signal}: the local Firehose buffer could not be written to ${rawDir} (${(err as Error).message.split('\n')[0]}); ` +
          'its records stay in the journal and are delivered by the next run',
      )
      .then(async (message) => {
        await lock.release();
        process.stderr.write(`\n${message}\n`);
        json.write({ status: 'stopped', exitCode: code, error: message, hint: 'run again to continue' });
        process.exit(code);
      });
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/** A run whose error-severity data tests failed (exit 3): what `--json` says about it. */
function testFailure(failedErrorTests: string[], dataDir: string): { error?: string; hint?: string } {
  if (!failedErrorTests.length) return {};
  return {
    error: `${failedErrorTests.length} error-severity data test(s) failed: ${failedErrorTests.join(', ')}`,
    hint: failedErrorTests.some((t) => /reconcil/i.test(t)) ? REBUILD_HINT(dataDir) : 'the report lists the failing rows of each test',
  };
}

const REBUILD_HINT = (dataDir: string): string =>
  `curated does not match the raw zone: run \`npm run local -- --rebuild --data-dir ${dataDir}\` to rebuild curated from raw without re-fetching`;

/** What a run ends with: its exit code, and the object `--json` prints (summary or failure). */
interface Outcome {
  exitCode: number;
  /** The run summary (or the transform-only summary) when the run got that far. */
  summary?: object;
  error?: string;
  hint?: string;
}

async function run(opts: ReturnType<typeof parse>): Promise<Outcome> {
  const dataset = loadDataset(opts.datasetName, opts.datasetFile);
  const dataDir = path.resolve(opts.dataDir);
  const progress = opts.json ? { update: () => {}, log: () => {}, step: () => {}, done: () => {} } : progressPrinter(process.stderr, progressIntervalMs());
  const log = progress.log;
  // Before anything runs: the other engine's data directory, or no Trino for athena, is one line.
  const engine = engineForRun(dataDir, opts.engine, opts.fresh);
  if (opts.select || opts.testsOnly) {
    checkTransformable(dataDir);
    const lock = await lockDataDir(dataDir);
    try {
      const s = await runLocalTransformOnly({ dataset, dataDir, engine, ...(opts.select ? { select: opts.select } : {}), testsOnly: opts.testsOnly, log });
      if (!opts.json) process.stdout.write(`${transformOnlyLines(s).join('\n')}\n`);
      return { exitCode: s.failedErrorTests.length ? TRANSFORM_EXIT.testsFailed : TRANSFORM_EXIT.ok, summary: s, ...testFailure(s.failedErrorTests, dataDir) };
    } finally {
      await lock.release();
    }
  }
  const lock = await lockDataDir(dataDir);
  try {
    if (lock.tookOverFrom !== undefined) log(`data directory ${dataDir} was locked by PID ${lock.tookOverFrom}, which is no longer running: lock taken over`);
    if (opts.fresh) await emptyDataDir(dataDir);
    else await removeCrashLeftovers(dataDir, log);
    // Read before the run replaces it: a refused mass delete may be this machine's doing.
    const previousSource = opts.source ? undefined : await readLocalSource(dataDir, dataset);
    // Started here, not by the pipeline, so a signal can flush it. Starting it delivers what a
    // crashed run's endpoint had accepted but not delivered (its journal).
    const firehose = await startLocalFirehose({ dataDir, datasets: [dataset] });
    if (firehose.counters().recordsReplayed > 0) {
      log(`delivered ${fmt(firehose.counters().recordsReplayed)} Firehose records a previous run had accepted but not yet written to raw/`);
    }
    const stopHandlers = stopOnSignal(firehose, lock, path.join(dataDir, 'buckets', 'raw'));
    let summary: LocalRunSummary;
    try {
      summary = await runLocalPipeline({
        dataset,
        engine,
        dataDir,
        rows: opts.rows,
        firehose,
        mode: opts.fullRefresh ? 'full-refresh' : 'incremental',
        rebuild: opts.rebuild,
        ...(opts.source ? { source: opts.source } : {}),
        onProgress: progress.update,
        onStep: progress.step,
        log,
      }).finally(progress.done);
    } catch (err) {
      // The signal handler exits the process once the buffer is delivered.
      if (stopping) await new Promise<never>(() => {});
      if (/reconcil/i.test((err as Error).message)) (err as Error).message += `\n${REBUILD_HINT(dataDir)}`;
      if (err instanceof PipelineError && err.category === 'refused') {
        const hint = shrunkSourceHint(previousSource, opts.rows, opts.rowsGiven, dataDir);
        if (hint) err.hint = hint;
      }
      throw err;
    } finally {
      await firehose.close();
      stopHandlers();
    }
    if (!opts.json) printSummary(summary);
    const failed = summary.transform?.failedErrorTests ?? [];
    if (failed.some((t) => /reconcil/i.test(t))) process.stderr.write(`${REBUILD_HINT(dataDir)}\n`);
    return { exitCode: failed.length ? TRANSFORM_EXIT.testsFailed : TRANSFORM_EXIT.ok, summary, ...testFailure(failed, dataDir) };
  } finally {
    await lock.release();
  }
}

async function serve(opts: ReturnType<typeof parse>): Promise<void> {
  const datasets = opts.datasetName || opts.datasetFile ? [loadDataset(opts.datasetName, opts.datasetFile)] : readDatasetFiles(() => loadDatasetDir(DATASETS_DIR));
  const primary = datasets[0]!;
  const lock = await lockDataDir(path.resolve(opts.dataDir));
  // Rows stored compactly in the data directory, as `npm run local` does, so a large --rows fits.
  const socrata = await startSocrataServer({ ...sourceFor(primary, opts.rows), port: opts.port, storageDir: path.join(path.resolve(opts.dataDir), 'local-source') });
  const firehose = await startLocalFirehose({ dataDir: path.resolve(opts.dataDir), datasets, port: opts.port ? opts.port + 1 : 0 });
  const stream = localStreamName(primary);
  process.stdout.write(
    [
      `Socrata  ${socrata.url}/resource/${socrata.datasetId}.json  (${fmt(opts.rows)} generated ${primary.name} rows)`,
      `Firehose ${firehose.url}  streams: ${datasets.map(localStreamName).join(', ')} → ${path.resolve(opts.dataDir, 'buckets', 'raw')}`,
      '',
      'Try:',
      `  curl '${socrata.url}/resource/${socrata.datasetId}.json?$select=:*,*&$order=:updated_at,:id&$limit=2'`,
      `  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x aws firehose put-record --region us-east-1 --endpoint-url ${firehose.url} \\`,
      `    --delivery-stream-name ${stream} --record '{"Data":"eyJoZWxsbyI6MX0K"}'`,
      'Ctrl-C stops both (buffers are flushed first).',
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await firehose.close();
  await socrata.close();
  await lock.release();
}

/** An error as the person reads it: exit code, one line of what went wrong, and what to do. */
function failureOf(err: unknown): { exitCode: number; error: string; hint?: string; summary?: object } {
  const f = exitAndHint(err);
  const run = (err as LocalRunError).run;
  // The failed run's summary, report and history page: what a script and a person look at next.
  return run ? { ...f, summary: { reportPath: run.reportLocation, summaryPath: run.summaryLocation, historyPath: run.historyLocation } } : f;
}

/**
 * The one place this command maps an error to its exit code and hint: the error's own
 * (runtime/pipeline-error.ts), so a usage or configuration error exits 2, a refused mass delete 4
 * (as in the transform container), anything else 1.
 */
function exitAndHint(err: unknown): { exitCode: number; error: string; hint?: string } {
  const e = err as Error;
  const hint = e instanceof PipelineError ? e.hint : undefined;
  return { exitCode: exitCodeFor(err), error: e.message, ...(hint ? { hint } : {}) };
}

/**
 * `--json`'s promise: stdout ends with exactly one JSON object, whatever happens. Written with
 * writeSync so that it is complete even when the process exits right after (a signal, process.exit).
 */
class JsonResult {
  private written = false;
  constructor(private readonly enabled: boolean) {
    if (enabled) {
      // Anything that ends the process without a result (an exit from a library, an uncaught error).
      process.once('exit', (code) => this.write({ status: 'failed', exitCode: code, error: `the run ended without a result (exit code ${code})` }));
    }
  }

  write(result: { status: 'succeeded' | 'failed' | 'stopped'; exitCode: number; error?: string; hint?: string } & Record<string, unknown>): void {
    if (!this.enabled || this.written) return;
    this.written = true;
    writeSync(1, `${JSON.stringify(result)}\n`);
  }
}

let json = new JsonResult(false);

async function cli(argv: string[]): Promise<number> {
  // The SDK warns that Node 20 support ends in 2027; the deployed Lambda and task run Node 22.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // Known before parsing, so that a usage error is a JSON object too.
  json = new JsonResult(argv.includes('--json'));
  let outcome: Outcome;
  try {
    const opts = parse(argv);
    if (opts.help) {
      process.stdout.write(`${opts.command === 'serve' ? SERVE_USAGE : USAGE}\n`);
      return 0;
    }
    if (opts.command === 'serve') {
      await serve(opts);
      return 0;
    }
    outcome = await run(opts);
  } catch (err) {
    const f = failureOf(err);
    outcome = f;
    // One clear line; the details (cause chain) only with DEBUG=1.
    const short = f.hint && f.exitCode === 2;
    process.stderr.write(`error: ${f.error.split('\n').join('\n  ')}${short ? ` (${f.hint})` : ''}\n${f.hint && !short ? `hint: ${f.hint}\n` : ''}`);
    if (process.env.DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    const run = (err as LocalRunError).run;
    if (run) process.stderr.write(`Report:  ${run.reportLocation}\nHistory: ${run.historyLocation}\n`);
  }
  const { exitCode, summary, error, hint } = outcome;
  json.write({ status: exitCode === 0 ? 'succeeded' : 'failed', exitCode, ...(error ? { error } : {}), ...(hint ? { hint } : {}), ...summary });
  return exitCode;
}

process.exitCode = await cli(process.argv.slice(2));
