/**
 * The embedded pipeline: the deployed state machine's steps, run on this machine with the same
 * code. Local Socrata and Firehose endpoints over real HTTP, the real fetcher handler looping on
 * `done`, a local "crawl" into the DuckDB catalog, the transform on DuckDB, and the HTML report.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import axios from 'axios';
import { curatedColumnNames, declaredSourceFields, isSocrata, socrataSource, sourceLabel, tableName, type DatasetConfig } from '../runtime/dataset-config';
import { sourceIdentity, type SourceIdentity } from '../runtime/source-identity';
import { UsageError } from '../runtime/pipeline-error';
import type { LocalSourceEndpoint } from './local-source-endpoint';
import { startLocalSourceEndpoint } from './local-sources';
import { LocalObjectStore } from '../runtime/object-store';
import { FETCHER_PHASE, type RunMode, type RunPhase } from '../runtime/run-protocol';
import { defaultCatalogPath, type CrawlResult } from '../containers/transform/src/catalog';
import { engineForRun, markEngine, type LocalEngineName } from './local-engine';
import { martTableName } from '../containers/transform/src/models';
import type { RunSummary } from '../containers/transform/src/transform';
import { startTransformProcess, type TransformProcess } from './transform-process';
import { fetcherEnvironment } from '../runtime/fetcher-environment';
import { CheckpointStore } from '../lambdas/fetcher/checkpoint-store';
import { fetcherHandler, type FetcherHandler, type FetcherHost } from '../lambdas/fetcher/handler';
import type { FetchOutput } from '../lambdas/fetcher/fetch-run';
import { keysetWhere } from '../lambdas/fetcher/sources/socrata/keyset';
import { KEYSET_POSITIONS } from '../lambdas/fetcher/sources/socrata/socrata-source';
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
  /** A file or S3 dataset's pre-started local source (local/local-sources.ts). */
  endpoint?: LocalSourceEndpoint;
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

/**
 * The bench's split of a run: the run protocol's phases it times (the key scan counts in the fetch,
 * a repair in the transform), after starting the source, then the sample query and the end.
 */
export type PipelinePhase = 'source' | Exclude<RunPhase, 'keys' | 'repair'> | 'sample' | 'done';

export interface LocalRunSummary {
  dataset: string;
  runId: string;
  dataDir: string;
  source: string;
  /**
   * The source's identity this run (Socrata: domain and dataset id; a file: its URL; S3: bucket and
   * prefix): recorded by the checkpoint and the key scan, checked by the transform.
   */
  sourceIdentity: SourceIdentity;
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
export function localFetcherEnv(
  opts: {
    dataset: DatasetConfig;
    firehoseUrl: string;
    rawDir: string;
    marginMs: number;
  } & ({ datasetId: string; baseUrl: string } | { sourceEnv: Record<string, string> }),
): Record<string, string> {
  const socrataEnv = (datasetId: string, baseUrl: string) => ({
    ...fetcherEnvironment({
      dataset: { ...opts.dataset, source: { ...socrataSource(opts.dataset, 'npm run local'), datasetId } },
      deliveryStreamName: localStreamName(opts.dataset),
      stateLocation: opts.rawDir,
      metricsNamespace: 'SocrataPipelineLocal',
    }),
    SOURCE_BASE_URL: baseUrl,
    // No Secrets Manager here: the token comes from SOCRATA_APP_TOKEN (the local server takes any;
    // SODA 3 refuses requests without one), the secret's name is the deployed fetcher's.
    APP_TOKEN_SECRET_NAME: '',
    ...(process.env.SOCRATA_APP_TOKEN || socrataSource(opts.dataset, 'npm run local').api === 'soda3' ? { SOCRATA_APP_TOKEN: process.env.SOCRATA_APP_TOKEN || 'local-app-token' } : {}),
  });
  return {
    ...('sourceEnv' in opts
      ? // Another source type: the declared source, its requests pointed at this machine's endpoint.
        { ...fetcherEnvironment({ dataset: opts.dataset, deliveryStreamName: localStreamName(opts.dataset), stateLocation: opts.rawDir, metricsNamespace: 'SocrataPipelineLocal' }), ...opts.sourceEnv }
      : socrataEnv(opts.datasetId, opts.baseUrl)),
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

/**
 * The fetcher as the local pipeline runs it: its environment (localFetcherEnv) passed as an
 * argument, never through `process.env`; the credentials the SDK insists on, from that environment.
 */
export function localFetcherHost(env: Record<string, string>): FetcherHost {
  return { env, credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID ?? 'local', secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? 'local' } };
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
  if (stored && KEYSET_POSITIONS.is(stored.checkpoint.position)) params.$where = keysetWhere(stored.checkpoint.position);
  try {
    const res = await axios.get<{ n?: string }[]>(`${baseUrl}/resource/${datasetId}.json`, { params, timeout: 10_000 });
    const n = Number(res.data[0]?.n);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One local run, in the run protocol's order (runtime/run-protocol.ts RUN_PHASES): fetch → keys →
 * flush → crawl → transform (→ repair → flush → transform, once). The endpoints it started itself
 * are closed by the caller of `start`, through `close`.
 */
export async function runLocalPipeline(opts: LocalRunOptions): Promise<LocalRunSummary> {
  const run = await LocalPipelineRun.start(opts);
  try {
    const fetched = await run.fetch();
    // The key scan, as the state machine runs it after the row fetch: the source's complete key
    // set for this run (deletions, reconciliation against the source). Not after an interrupted fetch.
    const keys = fetched.interrupted ? undefined : await run.keys();
    const summary = await run.flush(fetched, keys);
    if (summary.interrupted) return run.interrupted(summary);
    const crawl = await run.crawl(summary);
    await run.transform(summary, crawl.catalogPath);
    return await run.sample(summary, crawl.catalogPath);
  } catch (err) {
    throw await run.recordFailure(err);
  } finally {
    await run.close();
  }
}

/** The row fetch's outcome, as the later phases need it. */
interface Fetched {
  out: FetchOutput;
  invocations: number;
  interrupted: boolean;
  fetchStart: number;
}

/** Where the run reads from and what it knows about it, settled before the fetch starts. */
interface RunSource {
  /** The fetcher's variables that say where its source is: Socrata's portal, or another type's local endpoint. */
  where: { datasetId: string; baseUrl: string } | { sourceEnv: Record<string, string> };
  /** What the fetcher reads, for the log and the summary (SODA 2's resource or SODA 3's query endpoint). */
  endpoint: string;
  /**
   * One source identity for the whole run: what the checkpoint and the key scan record, and what
   * the transform checks the key scan against. A --source names its own (host and dataset id);
   * the generated local source stands in for the dataset's own portal.
   */
  identity: SourceIdentity;
  /** The dataset with that identity, as the fetcher and the transform see it. */
  dataset: DatasetConfig;
}

/** The state of one runLocalPipeline call: its directories, endpoints, child processes and clock. */
class LocalPipelineRun {
  private readonly t0 = Date.now();
  private readonly log: (line: string) => void;
  private readonly dataset: DatasetConfig;
  private readonly rawDir: string;
  private readonly curatedDir: string;
  private readonly rawStore: LocalObjectStore;
  private readonly runId: string;
  private readonly budget: number;
  private source: RunSource | undefined;
  private handler: FetcherHandler | undefined;
  private transformProcess: TransformProcess | undefined;

  private constructor(
    private readonly opts: LocalRunOptions,
    private readonly dataDir: string,
    private readonly engine: LocalEngineName,
    /** The generated source's child process, when this run started it (else opts.socrata or opts.source). */
    private readonly ownSocrata: Awaited<ReturnType<typeof startLocalSource>> | undefined,
    /** A file or S3 dataset's local source, when this run started it (else opts.endpoint). */
    private readonly ownEndpoint: LocalSourceEndpoint | undefined,
    private readonly ownFirehose: FirehoseServer | undefined,
  ) {
    this.log = opts.log ?? (() => {});
    this.dataset = opts.dataset;
    this.rawDir = path.join(dataDir, 'buckets', 'raw');
    this.curatedDir = path.join(dataDir, 'buckets', 'curated');
    this.rawStore = new LocalObjectStore(this.rawDir);
    this.runId = opts.runId ?? `local-${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${randomUUID().slice(0, 8)}`;
    this.budget = opts.invocationBudgetMs ?? 60_000;
  }

  /** Checks the engine, empties a --fresh data directory, and starts the endpoints the caller did not pass. */
  static async start(opts: LocalRunOptions): Promise<LocalPipelineRun> {
    const dataDir = path.resolve(opts.dataDir);
    // Checked before anything runs: the other engine's data directory, or no Trino for athena.
    const socrata = isSocrata(opts.dataset.source);
    if (!socrata && opts.source) throw new UsageError(`--source names a Socrata dataset; ${opts.dataset.name} reads ${sourceLabel(opts.dataset.source)}, which npm run local serves from generated rows`);
    const engine = engineForRun(dataDir, opts.engine, opts.fresh === true);
    if (opts.fresh) await rm(dataDir, { recursive: true, force: true });
    // The generated source runs in a child process (its rows never share this heap); if it dies,
    // the run fails with its one-line reason rather than with the fetcher's connection errors.
    opts.onPhase?.('source', {});
    const generated = { dataset: opts.dataset, dataDir, rows: opts.rows ?? 50_000, seed: opts.seed ?? 1 };
    const ownSocrata = socrata && !opts.socrata && !opts.source ? await startLocalSource(opts.dataset, dataDir, generated.rows, generated.seed) : undefined;
    let ownEndpoint: LocalSourceEndpoint | undefined;
    let ownFirehose: FirehoseServer | undefined;
    try {
      ownEndpoint = !socrata && !opts.endpoint ? await startLocalSourceEndpoint(generated) : undefined;
      ownFirehose = opts.firehose ? undefined : await startLocalFirehose({ dataDir, datasets: [opts.dataset] });
    } catch (err) {
      await ownSocrata?.close();
      await ownEndpoint?.close();
      throw err;
    }
    return new LocalPipelineRun(opts, dataDir, engine, ownSocrata, ownEndpoint, ownFirehose);
  }

  private get socrata(): SocrataEndpoint | undefined {
    return this.opts.socrata ?? this.ownSocrata;
  }

  private get firehose(): FirehoseServer {
    return this.opts.firehose ?? this.ownFirehose!;
  }

  private get duckdbTemp(): string {
    return path.join(this.dataDir, 'duckdb-tmp');
  }

  private phase(p: PipelinePhase): void {
    const { ownSocrata, ownEndpoint, transformProcess } = this;
    const sourcePid = ownSocrata?.pid ?? ownEndpoint?.pid;
    this.opts.onPhase?.(p, { ...(sourcePid !== undefined ? { socrataPid: sourcePid } : {}), ...(transformProcess ? { transformPid: transformProcess.pid } : {}) });
  }

  /** The source URL and identity of this run: --source, or the local server. */
  private resolveSource(): RunSource {
    const { opts, dataset } = this;
    const local = opts.endpoint ?? this.ownEndpoint;
    if (local) {
      this.log(`source ${local.describe} → Firehose ${this.firehose.url} (${localStreamName(dataset)}) → ${this.rawDir}`);
      return { where: { sourceEnv: local.env }, endpoint: local.describe, identity: sourceIdentity(dataset.source), dataset };
    }
    const source = socrataSource(dataset, 'npm run local');
    const { baseUrl, datasetId } = opts.source ? parseSourceUrl(opts.source, source.datasetId) : { baseUrl: this.socrata!.url, datasetId: this.socrata!.datasetId };
    // What the fetcher reads: SODA 3's query endpoint or SODA 2's resource (socrata-client.ts).
    const endpoint = source.api === 'soda3' ? `${baseUrl}/api/v3/views/${datasetId}/query.json (SODA 3)` : `${baseUrl}/resource/${datasetId}.json`;
    this.log(`source ${endpoint} → Firehose ${this.firehose.url} (${localStreamName(dataset)}) → ${this.rawDir}`);
    const identity = opts.source ? { domain: new URL(baseUrl).host, datasetId } : { domain: source.domain, datasetId };
    return { where: { baseUrl, datasetId }, endpoint, identity, dataset: { ...dataset, source: { ...source, ...identity } } };
  }

  /** Phase "fetch": the real handler, looping on `done` like the state machine. */
  async fetch(): Promise<Fetched> {
    const { opts } = this;
    const source = (this.source = this.resolveSource());
    this.phase('fetch');
    const env = localFetcherEnv({ dataset: source.dataset, ...source.where, firehoseUrl: this.firehose.url, rawDir: this.rawDir, marginMs: opts.budgetMarginMs ?? 0 });
    const handler = fetcherHandler(localFetcherHost(env));
    this.handler = handler;
    const mode = opts.mode ?? 'incremental';
    // Only a Socrata source can count the rows after a checkpoint (a file is read whole, or not at all).
    const expected = 'baseUrl' in source.where ? await expectedRows(source.where.baseUrl, source.where.datasetId, this.rawStore, this.dataset, mode === 'full-refresh') : undefined;
    const fetchStart = Date.now();
    const progress = new FetchProgressReporter(opts, this.firehose, this.socrata, expected, fetchStart);
    let loop: { out: FetchOutput; invocations: number };
    try {
      loop = await invokeUntilDone(handler, {
        runId: this.runId,
        mode,
        budgetMs: this.budget,
        ...(opts.maxInvocations !== undefined ? { maxInvocations: opts.maxInvocations } : {}),
        onInvocation: (out) => progress.invocation(out),
      });
    } finally {
      progress.stop();
    }
    return { ...loop, interrupted: !loop.out.done, fetchStart };
  }

  /** Phase "keys": the key scan (deletion detection), looped on `done` like the row fetch. */
  async keys(): Promise<NonNullable<LocalRunSummary['keys']>> {
    this.opts.onStep?.('key scan');
    const scan = await invokePhaseUntilDone(this.handler!, FETCHER_PHASE.keys, { runId: this.runId, budgetMs: this.budget });
    this.log(scan.out.skipped ? `key scan skipped (${scan.out.skipped})` : `key scan: ${scan.out.stats.keys} source keys in ${scan.out.stats.pages} page(s)`);
    return { ...scan.out.stats, ...(scan.out.skipped ? { skipped: scan.out.skipped } : {}) };
  }

  /** Phase "flush": the state machine waits for Firehose's buffer; locally we flush it. The summary starts here. */
  async flush(fetched: Fetched, keys: LocalRunSummary['keys']): Promise<LocalRunSummary> {
    // The fetch's time includes the key scan's, as it always has in the summary.
    const fetchMs = Date.now() - fetched.fetchStart;
    this.phase('flush');
    const flushStart = Date.now();
    await this.firehose.flush();
    const flushMs = Date.now() - flushStart;
    const fc = this.firehose.counters();
    const { out, invocations, interrupted } = fetched;
    const source = this.source!;
    return {
      dataset: this.dataset.name,
      runId: this.runId,
      dataDir: this.dataDir,
      source: source.endpoint,
      sourceIdentity: source.identity,
      fetch: { ...out.stats, invocations, done: out.done, durationMs: fetchMs, rowsPerSecond: fetchMs ? Math.round((out.stats.rowsFetched / fetchMs) * 1000) : 0 },
      firehose: { objectsWritten: fc.objectsWritten, recordsAccepted: fc.recordsAccepted, recordsFailed: fc.recordsFailed, throttledCalls: fc.throttledCalls },
      crawl: { table: `raw.${tableName(this.dataset)}`, objects: 0, columns: 0 },
      schemaDrift: { undeclared: [] },
      interrupted,
      ...(keys ? { keys } : {}),
      timings: { fetchMs, flushMs, crawlMs: 0, transformMs: 0, totalMs: 0 },
    };
  }

  /** A fetch stopped early (maxInvocations): the checkpoint holds what was delivered; nothing is transformed. */
  interrupted(summary: LocalRunSummary): LocalRunSummary {
    this.log(`fetch stopped after ${summary.fetch.invocations} invocation(s) with more to fetch; the checkpoint holds what was delivered`);
    summary.timings.totalMs = Date.now() - this.t0;
    return summary;
  }

  /** Phase "crawl": register the raw zone in the local catalog, like the Glue crawler, and report schema drift. */
  async crawl(summary: LocalRunSummary): Promise<{ catalogPath: string }> {
    const { dataset } = this;
    const catalogPath = defaultCatalogPath(this.dataDir);
    const crawlStart = Date.now();
    // The crawl and the transform run in a child process of their own (./transform-process.ts).
    this.phase('crawl');
    this.opts.onStep?.('crawl');
    // DuckDB spills into the data directory (containers/transform/src/duckdb-resources.ts), removed after the run.
    this.transformProcess = startTransformProcess(this.log, { DUCKDB_TEMP_DIRECTORY: this.duckdbTemp });
    const crawl: CrawlResult = await this.transformProcess.crawl({ dataset, rawDir: this.rawDir, catalogPath });
    summary.crawl = { table: crawl.table, objects: crawl.objects, columns: crawl.columns.length };
    const known = new Set([...curatedColumnNames(dataset), ...declaredSourceFields(dataset)]);
    // What the fetcher saw this run (as on AWS) and what the crawl finds in the whole raw zone.
    summary.schemaDrift.undeclared = [
      ...new Set([...(summary.fetch.undeclaredColumns ?? []), ...crawl.columns.map((c) => c.name).filter((n) => !known.has(n))]),
    ].sort();
    if (summary.schemaDrift.undeclared.length) {
      this.log(
        `schema drift: the source has ${summary.schemaDrift.undeclared.length} column(s) not declared in the dataset definition ` +
          `(${summary.schemaDrift.undeclared.join(', ')}); they are kept in raw, and loaded into curated once declared`,
      );
    }
    summary.timings.crawlMs = Date.now() - crawlStart;
    return { catalogPath };
  }

  /**
   * Phase "transform" (DuckDB, or the deployed Athena engine on a local Trino): staging, dedup,
   * marts, data tests, run summary and report; then phase "repair" and the transform again, once,
   * when it found source keys missing from curated.
   */
  async transform(summary: LocalRunSummary, catalogPath: string): Promise<void> {
    const { opts } = this;
    this.phase('transform');
    opts.onStep?.('transform');
    await markEngine(this.dataDir, this.engine);
    const transformStart = Date.now();
    const transformOnce = (): Promise<RunSummary> =>
      this.transformProcess!.transform({
        dataset: this.source!.dataset,
        engine: this.engine,
        dataDir: this.dataDir,
        rawDir: this.rawDir,
        curatedDir: this.curatedDir,
        runId: this.runId,
        catalogPath,
        rebuild: opts.rebuild ?? false,
        undeclaredColumns: summary.schemaDrift.undeclared,
      });
    let transform = await transformOnce();
    if (transform.repairNeeded) {
      summary.repair = await this.repair(transform);
      opts.onStep?.('transform');
      transform = await transformOnce();
    }
    summary.timings.transformMs = Date.now() - transformStart;
    summary.transform = transform;
    summary.reportPath = transform.reportLocation;
  }

  /**
   * Phase "repair": source keys curated lacks (e.g. rows added behind the checkpoint) are fetched
   * by key and Firehose delivers them, like the state machine after the transform's exit 5.
   */
  private async repair(transform: RunSummary): Promise<RepairOutput['stats']> {
    this.log(`${transform.missingKeys} source key(s) missing from curated: repairing`);
    this.opts.onStep?.('repair');
    const repaired = await invokePhaseUntilDone(this.handler!, FETCHER_PHASE.repair, { runId: this.runId, budgetMs: this.budget });
    await this.firehose.flush();
    return repaired.out.stats;
  }

  /** A few rows of the first mart (else the curated row count), for the summary a person reads. */
  async sample(summary: LocalRunSummary, catalogPath: string): Promise<LocalRunSummary> {
    const { dataset, engine, dataDir } = this;
    this.phase('sample');
    const firstMart = summary.transform!.marts[0];
    const sql = firstMart
      ? `SELECT * FROM curated.${martTableName(tableName(dataset), firstMart.name)} ORDER BY 1 LIMIT 5`
      : `SELECT count(*) AS curated_rows FROM curated.${tableName(dataset)}`;
    summary.sample = { sql, ...(await this.transformProcess!.query({ engine, dataDir, catalogPath, sql })) };
    summary.timings.totalMs = Date.now() - this.t0;
    this.phase('done');
    return summary;
  }

  /**
   * A failed run is recorded like a finished one (summary, report, history row); a failure to
   * record it must not hide the run's own error. Returns the error to throw.
   */
  async recordFailure(err: unknown): Promise<LocalRunError> {
    const { ownSocrata, dataset, runId, engine, rawStore, log } = this;
    const failure: LocalRunError = ownSocrata?.failure ? new Error(ownSocrata.failure, { cause: err }) : (err as Error);
    await writeFailedRun({ dataset, runId, engine, startedAt: new Date(this.t0), error: failure, rawStore, curatedStore: new LocalObjectStore(this.curatedDir), log }).then(
      (outputs) => Object.assign(failure, { run: outputs }),
      (writeErr: unknown) => log(`the failed run's summary and report could not be written: ${(writeErr as Error).message.split('\n')[0]}`),
    );
    return failure;
  }

  async close(): Promise<void> {
    await this.transformProcess?.close();
    await this.ownFirehose?.close();
    await this.ownSocrata?.close();
    await this.ownEndpoint?.close();
    await rm(this.duckdbTemp, { recursive: true, force: true });
  }
}

/**
 * Live progress of the row fetch: rows as they stream in (the lines the local Firehose accepted:
 * a page of 200,000 rows is one request, so counting finished pages alone would show nothing until
 * its end), and pages and retries from the local server's own log (with --source, the fetcher's
 * per-invocation figures).
 */
class FetchProgressReporter {
  private readonly requestsBefore: number;
  private readonly linesBefore: number;
  private latest = { rowsQuarantined: 0, pages: 0, retries: 0 };
  private readonly ticker: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly opts: LocalRunOptions,
    private readonly firehose: FirehoseServer,
    private readonly socrata: SocrataEndpoint | undefined,
    private readonly expected: number | undefined,
    private readonly fetchStart: number,
  ) {
    this.requestsBefore = socrata && !opts.source ? socrata.requests.length : 0;
    this.linesBefore = firehose.counters().linesAccepted;
    this.ticker = opts.onProgress ? setInterval(() => opts.onProgress!(this.served()), opts.progressEveryMs ?? 250) : undefined;
  }

  private served(): FetchProgress {
    const { socrata, opts, latest, expected } = this;
    const streamed = this.firehose.counters().linesAccepted - this.linesBefore;
    let { pages, retries } = latest;
    let pageRows = 0;
    if (socrata && !opts.source) {
      // Count requests (the progress bar's and the fetcher's own) are not pages.
      const reqs = socrata.requests.slice(this.requestsBefore).filter((r) => (r.path.startsWith('/resource/') || r.path.startsWith('/api/v3/')) && !/count\(/i.test(r.params.$select ?? ''));
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
      elapsedMs: Date.now() - this.fetchStart,
    };
  }

  /** After each invocation: its cumulative figures, and `done` on the last. */
  invocation({ stats: s, done }: FetchOutput): void {
    const { expected } = this;
    this.latest = { rowsQuarantined: s.rowsQuarantined, pages: s.pages, retries: s.sourceRetries + s.firehoseRetriedRecords };
    this.opts.onProgress?.({
      ...(done ? { done } : {}),
      rowsFetched: s.rowsFetched,
      rowsDelivered: s.rowsDelivered,
      rowsQuarantined: s.rowsQuarantined,
      pages: s.pages,
      retries: s.sourceRetries + s.firehoseRetriedRecords,
      ...(expected !== undefined ? { expectedRows: expected } : {}),
      elapsedMs: Date.now() - this.fetchStart,
    });
  }

  stop(): void {
    if (this.ticker) clearInterval(this.ticker);
  }
}
