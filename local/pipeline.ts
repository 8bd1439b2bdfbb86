/**
 * The embedded pipeline: the deployed state machine's steps, run on this machine with the same
 * code. Local Socrata and Firehose endpoints over real HTTP, the real fetcher handler looping on
 * `done`, a local "crawl" into the DuckDB catalog, the transform on DuckDB, and the HTML report.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import axios from 'axios';
import { curatedColumnNames, tableName, type DatasetConfig } from '../runtime/dataset-config';
import { LocalObjectStore } from '../runtime/object-store';
import { FETCHER_PHASE, type RunMode } from '../runtime/run-protocol';
import { defaultCatalogPath, type CrawlResult } from '../containers/transform/src/catalog';
import { engineForRun, markEngine, type LocalEngineName } from './local-engine';
import { martTableName } from '../containers/transform/src/models';
import type { RunSummary } from '../containers/transform/src/transform';
import { startTransformProcess, type TransformProcess } from './transform-process';
import { fetcherEnvironment } from '../runtime/fetcher-environment';
import { CheckpointStore } from '../lambdas/fetcher/checkpoint-store';
import { keysetWhere, type FetchOutput } from '../lambdas/fetcher/fetch-run';
import { startLocalSource } from './dataset-rows';
import { invokePhaseUntilDone, invokeUntilDone } from './fetch-loop';
import type { KeyScanOutput } from '../lambdas/fetcher/key-scan';
import type { RepairOutput } from '../lambdas/fetcher/repair';
import { localStreamName, startLocalFirehose, type FirehoseServer } from './firehose-server';
import type { SocrataEndpoint } from './socrata-process';
import { writeFailedRun, type FailedRunOutputs } from './failed-run';

/** An error of runLocalPipeline, with where the failed run's summary and report were written. */
export type LocalRunError = Error & { run?: FailedRunOutputs };

export interface FetchProgress {
  rowsFetched: number;
  rowsDelivered: number;
  rowsQuarantined: number;
  pages: number;
  retries: number;
  /** Rows the source holds past the checkpoint when the run started, if the source could say. */
  expectedRows?: number;
  elapsedMs: number;
  /** Set on the last report of the fetch: the source has nothing more (a progress bar shows 100% only then). */
  done?: boolean;
}

export interface LocalRunOptions {
  dataset: DatasetConfig;
  /** The transform's engine (default: the one that built dataDir, else duckdb; see local-engine.ts). */
  engine?: LocalEngineName;
  /** Holds `buckets/raw`, `buckets/curated` and `catalog.duckdb`. */
  dataDir: string;
  /** A Socrata base or resource URL; default: start a local server with generated rows. */
  source?: string;
  /** Rows the local server generates (ignored with `source`). */
  rows?: number;
  seed?: number;
  /** Delete the data directory first. */
  fresh?: boolean;
  mode?: RunMode;
  /**
   * Rebuild curated from the whole raw zone (no re-fetch): the repair when reconciliation fails.
   * Passed to the transform as `rebuild: true` (RunTransformOptions.rebuild, the transform's own).
   */
  rebuild?: boolean;
  /** Pre-started endpoints (tests inject faults and mutate rows through them); closed by the caller. */
  socrata?: SocrataEndpoint;
  firehose?: FirehoseServer;
  /** Time budget of one simulated Lambda invocation (default 60 s); the loop resumes with the returned cursor. */
  invocationBudgetMs?: number;
  /** Stop starting pages when this little of the budget is left. */
  budgetMarginMs?: number;
  /** Stop the fetch loop after this many invocations (tests of an interrupted fetch). */
  maxInvocations?: number;
  runId?: string;
  onProgress?: (p: FetchProgress) => void;
  log?: (line: string) => void;
  /**
   * Called as each phase starts (the full-size bench measures time and memory per phase), with the
   * PIDs of the local Socrata and transform child processes once they run.
   */
  onPhase?: (phase: PipelinePhase, info: { socrataPid?: number; transformPid?: number }) => void;
  /** Called as each step after the row fetch starts, for a person watching (the CLI's phase lines). */
  onStep?: (step: RunStep) => void;
  /** How often onProgress is called during the fetch (default 250 ms; a test of mid-page progress asks more often). */
  progressEveryMs?: number;
}

/** The steps after the row fetch that take long enough to be shown (PipelinePhase is the bench's split). */
export type RunStep = 'key scan' | 'crawl' | 'transform' | 'repair';

export type PipelinePhase = 'source' | 'fetch' | 'flush' | 'crawl' | 'transform' | 'sample' | 'done';

export interface LocalRunSummary {
  dataset: string;
  runId: string;
  dataDir: string;
  source: string;
  /** The source's identity this run (domain and dataset id): recorded by the checkpoint and the key scan, checked by the transform. */
  sourceIdentity: { domain: string; datasetId: string };
  fetch: FetchOutput['stats'] & { invocations: number; done: boolean; durationMs: number; rowsPerSecond: number };
  firehose: { objectsWritten: number; recordsAccepted: number; recordsFailed: number; throttledCalls: number };
  crawl: { table: string; objects: number; columns: number };
  /**
   * Columns the crawl found in the raw zone that the dataset definition does not declare: they stay
   * in raw but are not loaded into curated until declared (the Glue crawler's job on AWS).
   */
  schemaDrift: { undeclared: string[] };
  /** The key scan (deletion detection) after the row fetch: keys listed, or why it was skipped. */
  keys?: KeyScanOutput['stats'] & { skipped?: string };
  /** The repair after a transform that found source keys missing from curated (then the transform ran again). */
  repair?: RepairOutput['stats'];
  transform?: RunSummary;
  /** Set when the fetch loop was stopped early (maxInvocations): the transform did not run. */
  interrupted: boolean;
  reportPath?: string;
  sample?: { sql: string; columns: string[]; rows: Record<string, unknown>[] };
  timings: { fetchMs: number; flushMs: number; crawlMs: number; transformMs: number; totalMs: number };
}

/** A Socrata URL as base URL + dataset id: `https://host`, or `https://host/resource/abcd-1234.json`. */
export function parseSourceUrl(source: string, fallbackDatasetId: string): { baseUrl: string; datasetId: string } {
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    throw new Error(`--source "${source}" is not a URL; give a Socrata base URL or resource URL, e.g. https://data.sfgov.org/resource/wr8u-xric.json`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--source "${source}" must be an http(s) URL`);
  const m = /\/resource\/([a-z0-9]{4}-[a-z0-9]{4})(\.json)?\/?$/.exec(url.pathname);
  return { baseUrl: url.origin, datasetId: m ? m[1]! : fallbackDatasetId };
}

/** Environment for the fetcher handler: the CDK's variables, pointed at the local endpoints. */
export function localFetcherEnv(opts: {
  dataset: DatasetConfig;
  datasetId: string;
  baseUrl: string;
  firehoseUrl: string;
  rawDir: string;
  marginMs: number;
}): Record<string, string> {
  return {
    ...fetcherEnvironment({
      dataset: { ...opts.dataset, source: { ...opts.dataset.source, datasetId: opts.datasetId } },
      deliveryStreamName: localStreamName(opts.dataset),
      stateLocation: opts.rawDir,
      metricsNamespace: 'SocrataPipelineLocal',
    }),
    SOURCE_BASE_URL: opts.baseUrl,
    TIME_BUDGET_MARGIN_MS: String(opts.marginMs),
    AWS_ENDPOINT_URL_FIREHOSE: opts.firehoseUrl,
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
    // The local endpoints ignore credentials, but the SDK insists on having some.
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'local',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
    // Powertools would print every log line and EMF metric blob to the terminal, and a failed run's
    // error as a JSON blob with its stack before the CLI's own one-line message: silent locally
    // (DEBUG=1 prints the stack; POWERTOOLS_LOG_LEVEL=ERROR brings the JSON lines back).
    POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL || 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_TRACE_ENABLED: 'false',
  };
}

/** The `$select` of the progress bar's count query (told apart from the fetcher's pages). */
const COUNT_SELECT = 'count(*) AS n';

/**
 * Rows the fetch will read, asked of the source with `count(*)` and the fetcher's own keyset
 * predicate after the stored checkpoint; undefined where the source cannot say.
 */
async function expectedRows(baseUrl: string, datasetId: string, rawStore: LocalObjectStore, dataset: DatasetConfig, full: boolean): Promise<number | undefined> {
  const params: Record<string, string> = { $select: COUNT_SELECT };
  const stored = full ? undefined : await new CheckpointStore(rawStore, dataset.name).read();
  if (stored) params.$where = keysetWhere(stored.checkpoint);
  try {
    const res = await axios.get<{ n?: string }[]>(`${baseUrl}/resource/${datasetId}.json`, { params, timeout: 10_000 });
    const n = Number(res.data[0]?.n);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

export async function runLocalPipeline(opts: LocalRunOptions): Promise<LocalRunSummary> {
  const t0 = Date.now();
  const log = opts.log ?? (() => {});
  const { dataset } = opts;
  const dataDir = path.resolve(opts.dataDir);
  // Checked before anything runs: the other engine's data directory, or no Trino for athena.
  const engine = engineForRun(dataDir, opts.engine, opts.fresh === true);
  if (opts.fresh) await rm(dataDir, { recursive: true, force: true });
  const rawDir = path.join(dataDir, 'buckets', 'raw');
  const curatedDir = path.join(dataDir, 'buckets', 'curated');
  const rawStore = new LocalObjectStore(rawDir);
  const runId = opts.runId ?? `local-${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${randomUUID().slice(0, 8)}`;

  // The generated source runs in a child process (its rows never share this heap); if it dies,
  // the run fails with its one-line reason rather than with the fetcher's connection errors.
  opts.onPhase?.('source', {});
  const ownSocrata = !opts.socrata && !opts.source ? await startLocalSource(dataset, dataDir, opts.rows ?? 50_000, opts.seed ?? 1) : undefined;
  const socrata = opts.socrata ?? ownSocrata;
  let ownFirehose: FirehoseServer | undefined;
  try {
    ownFirehose = opts.firehose ? undefined : await startLocalFirehose({ dataDir, datasets: [dataset] });
  } catch (err) {
    await ownSocrata?.close();
    throw err;
  }
  const firehose = opts.firehose ?? ownFirehose!;
  let transformProcess: TransformProcess | undefined;
  const phase = (p: PipelinePhase): void =>
    opts.onPhase?.(p, { ...(ownSocrata ? { socrataPid: ownSocrata.pid } : {}), ...(transformProcess ? { transformPid: transformProcess.pid } : {}) });
  // DuckDB spills into the data directory (containers/transform/src/duckdb-resources.ts), removed after the run.
  const duckdbTemp = path.join(dataDir, 'duckdb-tmp');
  process.env.DUCKDB_TEMP_DIRECTORY = duckdbTemp;
  try {
    const { baseUrl, datasetId } = opts.source
      ? parseSourceUrl(opts.source, dataset.source.datasetId)
      : { baseUrl: socrata!.url, datasetId: socrata!.datasetId };
    log(`source ${baseUrl}/resource/${datasetId}.json → Firehose ${firehose.url} (${localStreamName(dataset)}) → ${rawDir}`);
    // One source identity for the whole run: what the checkpoint and the key scan record, and what
    // the transform checks the key scan against. A --source names its own (host and dataset id);
    // the generated local source stands in for the dataset's own portal.
    const sourceIdentity = opts.source ? { domain: new URL(baseUrl).host, datasetId } : { domain: dataset.source.domain, datasetId };
    const runDataset: DatasetConfig = { ...dataset, source: { ...dataset.source, ...sourceIdentity } };

    // 1. Fetch: the real handler, looping on `done` like the state machine.
    phase('fetch');
    const env = localFetcherEnv({ dataset: runDataset, datasetId, baseUrl, firehoseUrl: firehose.url, rawDir, marginMs: opts.budgetMarginMs ?? 0 });
    Object.assign(process.env, env);
    const { handler } = await import('../lambdas/fetcher/handler');
    const mode = opts.mode ?? 'incremental';
    const expected = await expectedRows(baseUrl, datasetId, rawStore, dataset, mode === 'full-refresh');
    const budget = opts.invocationBudgetMs ?? 60_000;
    const fetchStart = Date.now();
    // Live progress: rows as they stream in (the lines the local Firehose accepted: a page of
    // 200,000 rows is one request, so counting finished pages alone would show nothing until its
    // end), and pages and retries from the local server's own log (with --source, the fetcher's
    // per-invocation figures).
    const requestsBefore = socrata && !opts.source ? socrata.requests.length : 0;
    const linesBefore = firehose.counters().linesAccepted;
    let latest = { rowsQuarantined: 0, pages: 0, retries: 0 };
    const served = (): FetchProgress => {
      const streamed = firehose.counters().linesAccepted - linesBefore;
      let { pages, retries } = latest;
      let pageRows = 0;
      if (socrata && !opts.source) {
        // Count requests (the progress bar's and the fetcher's own) are not pages.
        const reqs = socrata.requests.slice(requestsBefore).filter((r) => r.path.startsWith('/resource/') && !/count\(/i.test(r.params.$select ?? ''));
        const ok = reqs.filter((r) => r.status === 200 && r.fault === undefined);
        pageRows = ok.reduce((a, r) => a + (r.rows ?? 0), 0);
        pages = ok.length;
        retries = reqs.length - ok.length;
      }
      return {
        rowsFetched: Math.max(pageRows, streamed + latest.rowsQuarantined),
        rowsDelivered: streamed,
        rowsQuarantined: latest.rowsQuarantined,
        pages,
        retries,
        ...(expected !== undefined ? { expectedRows: expected } : {}),
        elapsedMs: Date.now() - fetchStart,
      };
    };
    const ticker = opts.onProgress ? setInterval(() => opts.onProgress!(served()), opts.progressEveryMs ?? 250) : undefined;
    let loop: { out: FetchOutput; invocations: number };
    try {
      loop = await invokeUntilDone(handler, {
        runId,
        mode,
        budgetMs: budget,
        ...(opts.maxInvocations !== undefined ? { maxInvocations: opts.maxInvocations } : {}),
        onInvocation: ({ stats: s, done }) => {
          latest = { rowsQuarantined: s.rowsQuarantined, pages: s.pages, retries: s.sourceRetries + s.firehoseRetriedRecords };
          opts.onProgress?.({
            ...(done ? { done } : {}),
            rowsFetched: s.rowsFetched,
            rowsDelivered: s.rowsDelivered,
            rowsQuarantined: s.rowsQuarantined,
            pages: s.pages,
            retries: s.sourceRetries + s.firehoseRetriedRecords,
            ...(expected !== undefined ? { expectedRows: expected } : {}),
            elapsedMs: Date.now() - fetchStart,
          });
        },
      });
    } finally {
      if (ticker) clearInterval(ticker);
    }
    const { out, invocations } = loop;
    const interrupted = !out.done;
    // The key scan, as the state machine runs it after the row fetch: the source's complete key
    // set for this run (deletions, reconciliation against the source). Not after an interrupted fetch.
    let keys: LocalRunSummary['keys'];
    if (!interrupted) {
      opts.onStep?.('key scan');
      const scan = await invokePhaseUntilDone(handler, FETCHER_PHASE.keys, { runId, budgetMs: budget });
      keys = { ...scan.out.stats, ...(scan.out.skipped ? { skipped: scan.out.skipped } : {}) };
      log(scan.out.skipped ? `key scan skipped (${scan.out.skipped})` : `key scan: ${scan.out.stats.keys} source keys in ${scan.out.stats.pages} page(s)`);
    }
    const fetchMs = Date.now() - fetchStart;

    // 2. The state machine waits for Firehose's buffer; locally we flush it.
    phase('flush');
    const flushStart = Date.now();
    await firehose.flush();
    const flushMs = Date.now() - flushStart;
    const fc = firehose.counters();
    const summary: LocalRunSummary = {
      dataset: dataset.name,
      runId,
      dataDir,
      source: `${baseUrl}/resource/${datasetId}.json`,
      sourceIdentity,
      fetch: { ...out.stats, invocations, done: out.done, durationMs: fetchMs, rowsPerSecond: fetchMs ? Math.round((out.stats.rowsFetched / fetchMs) * 1000) : 0 },
      firehose: { objectsWritten: fc.objectsWritten, recordsAccepted: fc.recordsAccepted, recordsFailed: fc.recordsFailed, throttledCalls: fc.throttledCalls },
      crawl: { table: `raw.${tableName(dataset)}`, objects: 0, columns: 0 },
      schemaDrift: { undeclared: [] },
      interrupted,
      ...(keys ? { keys } : {}),
      timings: { fetchMs, flushMs, crawlMs: 0, transformMs: 0, totalMs: 0 },
    };
    if (interrupted) {
      log(`fetch stopped after ${invocations} invocation(s) with more to fetch; the checkpoint holds what was delivered`);
      summary.timings.totalMs = Date.now() - t0;
      return summary;
    }

    // 3. Crawl: register the raw zone in the local catalog, like the Glue crawler.
    const catalogPath = defaultCatalogPath(dataDir);
    const crawlStart = Date.now();
    // The crawl and the transform run in a child process of their own (./transform-process.ts).
    phase('crawl');
    opts.onStep?.('crawl');
    transformProcess = startTransformProcess(log);
    const crawl: CrawlResult = await transformProcess.crawl({ dataset, rawDir, catalogPath });
    summary.crawl = { table: crawl.table, objects: crawl.objects, columns: crawl.columns.length };
    const known = new Set(curatedColumnNames(dataset));
    // What the fetcher saw this run (as on AWS) and what the crawl finds in the whole raw zone.
    summary.schemaDrift.undeclared = [
      ...new Set([...(out.stats.undeclaredColumns ?? []), ...crawl.columns.map((c) => c.name).filter((n) => !known.has(n))]),
    ].sort();
    if (summary.schemaDrift.undeclared.length) {
      log(
        `schema drift: the source has ${summary.schemaDrift.undeclared.length} column(s) not declared in the dataset definition ` +
          `(${summary.schemaDrift.undeclared.join(', ')}); they are kept in raw, and loaded into curated once declared`,
      );
    }
    summary.timings.crawlMs = Date.now() - crawlStart;

    // 4. Transform (DuckDB, or the deployed Athena engine on a local Trino): staging, dedup,
    // marts, data tests, run summary and report.
    phase('transform');
    opts.onStep?.('transform');
    await markEngine(dataDir, engine);
    const transformStart = Date.now();
    const transformOnce = (): Promise<RunSummary> =>
      transformProcess!.transform({
        dataset: runDataset,
        engine,
        dataDir,
        rawDir,
        curatedDir,
        runId,
        catalogPath,
        rebuild: opts.rebuild ?? false,
        undeclaredColumns: summary.schemaDrift.undeclared,
      });
    let transform = await transformOnce();
    if (transform.repairNeeded) {
      // Source keys curated lacks (e.g. rows added behind the checkpoint): fetch them by key, let
      // Firehose deliver them, and transform again, once, like the state machine.
      log(`${transform.missingKeys} source key(s) missing from curated: repairing`);
      opts.onStep?.('repair');
      const repaired = await invokePhaseUntilDone(handler, FETCHER_PHASE.repair, { runId, budgetMs: budget });
      summary.repair = repaired.out.stats;
      await firehose.flush();
      opts.onStep?.('transform');
      transform = await transformOnce();
    }
    summary.timings.transformMs = Date.now() - transformStart;
    summary.transform = transform;
    summary.reportPath = transform.reportLocation;

    phase('sample');
    const firstMart = transform.marts[0];
    const sql = firstMart
      ? `SELECT * FROM curated.${martTableName(tableName(dataset), firstMart.name)} ORDER BY 1 LIMIT 5`
      : `SELECT count(*) AS curated_rows FROM curated.${tableName(dataset)}`;
    summary.sample = { sql, ...(await transformProcess.query({ engine, dataDir, catalogPath, sql })) };
    summary.timings.totalMs = Date.now() - t0;
    phase('done');
    return summary;
  } catch (err) {
    const failure = ownSocrata?.failure ? new Error(ownSocrata.failure, { cause: err }) : (err as Error);
    // Recorded like a finished run (summary, report, history row); a failure to record it must not hide the run's own error.
    await writeFailedRun({ dataset, runId, engine, startedAt: new Date(t0), error: failure, rawStore, curatedStore: new LocalObjectStore(curatedDir), log }).then(
      (outputs) => Object.assign(failure, { run: outputs }),
      (writeErr: unknown) => log(`the failed run's summary and report could not be written: ${(writeErr as Error).message.split('\n')[0]}`),
    );
    throw failure;
  } finally {
    await transformProcess?.close();
    await ownFirehose?.close();
    await ownSocrata?.close();
    await rm(duckdbTemp, { recursive: true, force: true });
  }
}
