/**
 * One transform run: find the raw objects not yet merged, stage + merge them, rebuild the marts,
 * run the data tests, record progress, write the run summary and the HTML report.
 * The container entry (main.ts) and the local pipeline both call runTransform().
 */
import { sourceLabel, type DatasetConfig } from '../../../runtime/dataset-config';
import { sameSource, showSource, sourceIdentity, type SourceIdentity } from '../../../runtime/source-identity';
import type { ObjectStore } from '../../../runtime/object-store';
import { gzipSync } from 'node:zlib';
import { readFetchFigures, type FetchFigures } from '../../../runtime/fetch-run-stats';
import { encodeKeyList } from '../../../runtime/key-list';
import { readQuarantinedKeys } from './quarantined-keys';
import { historyKey, quarantinePrefix, KEYSET_PART_PATTERN, keysetRunPrefix, keysetSuccessKey, missingKeysKey, rawPrefix, reportKey, runSummaryKey } from '../../../runtime/storage-layout';
import { registerCurated } from './catalog';
import { curatedTests, type DataTestResult } from './data-tests';
import { DuckDbEngine } from './duckdb-engine';
import { emptyBatchStats, scalar, type KeyScan, type KeyScanReconciliation, type MergeResult, type Row, type TransformEngine, type UnreadableObject } from './engine';
import { changeExamplesSql, changeSummarySql } from './change-history-sql';
import { hashedColumns } from './content-hash';
import { applyKeyScan, mergeBatch } from './merge-algorithm';
import { curatedColumns } from './staging';
import { runModels } from './model-runner';
import { loadProject, selectMarts, type MartModel, type ModelProject } from './models';
import { readProcessedObjects, writeProcessedObjects, type Maintenance, type QuarantinedObject } from './processed-objects';
import { unreadableInStore } from './raw-integrity';
import { measureFreshness, type Freshness } from './freshness';
import { writeHistory } from './history';
import { renderMartSections, renderReport } from './report';
import { validateMartCharts } from './report-charts';
import type { ChangeSummary, RunSummary, TransformStage } from './run-summary';
import { profileCurated, type ColumnProfiles } from './column-profile';
import { ConfigError, RefusedError, StateError } from '../../../runtime/pipeline-error';

// Callers outside the renderers read the summary's type where they get the summary.
export type { ChangeSummary, RunSummary, SourceReconciliation } from './run-summary';

const CHANGED_COLUMNS_SHOWN = 10;
const CHANGE_EXAMPLES = 5;

export interface RunTransformOptions {
  dataset: DatasetConfig;
  /** 'duckdb' opens the embedded engine over the two (local) stores; or pass an engine (Athena). */
  engine: 'duckdb' | TransformEngine;
  rawStore: ObjectStore;
  curatedStore: ObjectStore;
  runId: string;
  /** Marts to build (default: the SQL files under models/<dataset>/); given, the YAML source tests and freshness are not read. */
  marts?: MartModel[];
  /** `--select`: build (and test) these marts only; see selectMarts for the graph operators. */
  select?: string[];
  /** `--tests-only`: merge and build nothing; run the tests on the existing tables. */
  testsOnly?: boolean;
  modelsDir?: string;
  /** DuckDB engine only: register the curated table and marts in this local catalog file. */
  catalogPath?: string;
  /** Rows of each mart shown in the report (charts and tables). */
  reportRowLimit?: number;
  log?: (line: string) => void;
  now?: () => Date;
  /**
   * Rebuild curated from the whole raw zone without re-fetching: every raw object is merged into
   * an empty table that replaces curated atomically (DuckDB: one manifest switch; Athena: a new
   * Iceberg table swapped in), and the processed-objects state is rewritten.
   */
  rebuild?: boolean;
  /** The fetcher's schema drift for this run (source columns not declared), reported as is. */
  undeclaredColumns?: readonly string[];
  /** Table maintenance cadence (engines that have it): every N runs or after this many hours. */
  maintenanceEveryRuns?: number;
  maintenanceIntervalHours?: number;
}

/** What to tell a person when curated and the merged keys disagree. */
export const RECONCILIATION_TEST = 'reconciliation_merged_keys_equal_curated_rows';
/** With a key scan: curated holds exactly the source's keys. */
export const SOURCE_RECONCILIATION_TEST = 'reconciliation_curated_keys_equal_source_keys';

/** The key scan would delete more than deletions.maxDeleteShare of curated: nothing was deleted. */
export class MassDeleteRefusedError extends RefusedError {
  override name = 'MassDeleteRefusedError';
}

/** The key scan's files do not match its _SUCCESS, or it was read from another source. */
export class KeyScanError extends StateError {
  override name = 'KeyScanError';
}

/** This run's completed key scan, or undefined (no scan, or one that did not complete: nothing is deleted). */
export async function readKeyScan(rawStore: ObjectStore, dataset: DatasetConfig, runId: string): Promise<(KeyScan & { keys: number }) | undefined> {
  const key = keysetSuccessKey(dataset, runId);
  const obj = await rawStore.get(key);
  if (!obj) return undefined;
  let success: { parts?: unknown; keys?: unknown; source?: SourceIdentity };
  try {
    success = JSON.parse(obj.body.toString('utf8')) as typeof success;
  } catch (err) {
    throw new KeyScanError(`Key scan marker ${rawStore.location}/${key} is not valid JSON; delete it (the run then deletes nothing) or re-run the key scan`, { cause: err });
  }
  const expected = sourceIdentity(dataset.source);
  if (!success.source || typeof success.source !== 'object' || !sameSource(success.source, expected)) {
    throw new KeyScanError(
      `Key scan ${rawStore.location}/${key} was read from ${success.source && typeof success.source === 'object' ? showSource(success.source) : 'an unnamed source'}, but dataset ${dataset.name} reads ` +
        `${showSource(expected)}; its keys say nothing about this source and nothing was deleted. Re-run the key scan.`,
    );
  }
  const partKeys = (await rawStore.list(keysetRunPrefix(dataset, runId))).filter((k) => KEYSET_PART_PATTERN.test(k));
  if (partKeys.length !== success.parts) {
    throw new KeyScanError(
      `Key scan ${rawStore.location}/${keysetRunPrefix(dataset, runId)} has ${partKeys.length} part file(s) but its _SUCCESS names ${String(success.parts)}; ` +
        'nothing was deleted. Re-run the key scan for this run (or delete its _SUCCESS.json to run without deletions).',
    );
  }
  return { partKeys, keys: Number(success.keys ?? 0) };
}

export const REBUILD_HINT =
  'rebuild curated from the raw zone without re-fetching: `npm run local -- --rebuild` locally, or start the transform task with REBUILD=true on AWS';

/** Local directory behind a store, or a clear error (the DuckDB engine reads and writes files). */
function localDir(store: ObjectStore, role: string): string {
  if (store.location.startsWith('s3://')) {
    throw new TransformConfigError(
      `The duckdb engine needs a local ${role} directory, got ${store.location}; use ENGINE=athena for S3 buckets`,
    );
  }
  return store.location;
}

export class TransformConfigError extends ConfigError {
  override name = 'TransformConfigError';
}

/** Engine calls that belong to another stage than the one making them. */
const HISTORY_CALLS = new Set(['historyTarget', 'insertHistory', 'commitHistory', 'deletionRecords', 'changesTarget', 'commitChanges', 'changesRef']);
const HISTORY_LABELS = new Set(['history', 'change records']);

/**
 * Wall-clock time per transform stage. A stage's time excludes what ran inside it under another
 * stage: the history statements the merge and the key scan make, the marts runModels builds.
 */
export class StageClock {
  readonly ms: Partial<Record<TransformStage, number>> = {};
  constructor(private readonly now: () => Date) {}

  private total(): number {
    return Object.values(this.ms).reduce((a, b) => a + b, 0);
  }

  add(stage: TransformStage, ms: number): void {
    this.ms[stage] = (this.ms[stage] ?? 0) + Math.max(0, ms);
  }

  async time<T>(stage: TransformStage, work: () => Promise<T>): Promise<T> {
    const before = this.total();
    const t0 = this.now().getTime();
    try {
      return await work();
    } finally {
      this.add(stage, this.now().getTime() - t0 - (this.total() - before));
    }
  }

  /**
   * The engine, with its history and change-feed calls timed as `history` and its mart builds as
   * `marts` (a test's stored failures are `tests`), wherever the algorithm makes them.
   */
  engine(engine: TransformEngine): TransformEngine {
    const stageOf = (method: string, args: unknown[]): TransformStage | undefined => {
      if (HISTORY_CALLS.has(method) || (method === 'rows' && HISTORY_LABELS.has(String(args[1])))) return 'history';
      if (method === 'materializeMart') return String(args[0]).includes('dbt_test__') ? 'tests' : 'marts';
      return undefined;
    };
    return new Proxy(engine, {
      get: (target, prop) => {
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        const fn = value as (...args: unknown[]) => unknown;
        return (...args: unknown[]) => {
          const stage = stageOf(String(prop), args);
          return stage ? this.time(stage, async () => fn.apply(target, args)) : fn.apply(target, args);
        };
      },
    });
  }
}

/** What every stage of a run reads. */
interface RunContext {
  opts: RunTransformOptions;
  dataset: DatasetConfig;
  engine: TransformEngine;
  /** The engine with calls timed by stage (see StageClock.engine): what the merge, key scan and models use. */
  timed: TransformEngine;
  clock: StageClock;
  runId: string;
  rebuild: boolean;
  testsOnly: boolean;
  log: (line: string) => void;
  now: () => Date;
}

/**
 * One run, as named stages: check the request, open the engine, pick the raw objects, merge them,
 * maintain the tables, record what was processed, reconcile with the source's key scan, build
 * and test the models, reconcile curated, summarize, write the summary, report and history.
 */
export async function runTransform(opts: RunTransformOptions): Promise<RunSummary> {
  const now = opts.now ?? (() => new Date());
  const started = now();
  const project = checkRequest(opts);
  const engine = await openEngine(opts);
  const clock = new StageClock(now);
  const ctx: RunContext = { opts, dataset: opts.dataset, engine, timed: clock.engine(engine), clock, runId: opts.runId, rebuild: opts.rebuild === true, testsOnly: opts.testsOnly === true, log: opts.log ?? (() => {}), now };
  try {
    // Read first: a stats object that does not parse fails the run before it changes anything.
    const fetchFigures = await readFetchFigures(opts.rawStore, opts.dataset.name, opts.runId);
    await engine.prepare();
    const objects = await pickRawObjects(ctx);
    const batch = await clock.time('merge', () => mergeObjects(ctx, objects.fresh));
    const maintenance = await maintainTables(ctx, objects.processed);
    await recordProcessed(ctx, objects, batch.contributions, maintenance);
    const source = await clock.time('key scan', () => reconcileWithSource(ctx));
    const changes = ctx.testsOnly ? undefined : await clock.time('history', () => summarizeChanges(ctx));
    const models = await clock.time('tests', () =>
      runModels({ engine: ctx.timed, project, ...(opts.select ? { select: opts.select } : {}), testsOnly: ctx.testsOnly, now: now(), log: (line) => ctx.log(`${opts.dataset.name}: ${line}`) }),
    );
    const checks = await reconcileCurated(ctx, objects, models.results, source);
    const freshness = await measureFreshness(engine, opts.dataset, fetchFigures, now());
    // Without marts the report has no picture of the data: profile its columns instead.
    const profile = project.marts.length ? undefined : await clock.time('profile', () => profileCurated(engine));
    const summary = summarize(ctx, { started, objects, batch, maintenance: maintenance.run, source, models, checks, fetchFigures, freshness, changes, profile });
    await writeOutputs(ctx, summary, models.shown);
    return summary;
  } finally {
    if (opts.engine === 'duckdb') await engine.close();
  }
}

/** Refuse a bad request before anything runs; the models project to build. */
function checkRequest(opts: RunTransformOptions): ModelProject {
  const { dataset } = opts;
  if (dataset.name.includes('--')) {
    throw new TransformConfigError(`Dataset name "${dataset.name}" contains "--": "__" separates dataset and mart table names`);
  }
  if (opts.testsOnly && opts.rebuild) throw new TransformConfigError('--tests-only and a rebuild exclude each other: a tests-only run changes no table');
  // loadProject checks each chart where its YAML declares it; marts handed in are checked here.
  if (opts.marts) validateMartCharts(opts.marts);
  const project: ModelProject = opts.marts ? { marts: opts.marts, curated: { columns: [], tests: curatedTests(dataset) } } : loadProject(dataset, opts.modelsDir);
  // A wrong --select is a usage error before anything is merged.
  if (opts.select) selectMarts(project.marts, opts.select);
  return project;
}

async function openEngine(opts: RunTransformOptions): Promise<TransformEngine> {
  if (opts.engine !== 'duckdb') return opts.engine;
  return DuckDbEngine.open({
    dataset: opts.dataset,
    rawDir: localDir(opts.rawStore, 'raw'),
    curatedDir: localDir(opts.curatedStore, 'curated'),
    runId: opts.runId,
    rebuild: opts.rebuild === true,
  });
}

interface RawObjects {
  allRaw: string[];
  processed: Awaited<ReturnType<typeof readProcessedObjects>>;
  /** Objects this run merges. */
  fresh: string[];
  unreadable: UnreadableObject[];
}

/** The raw objects to merge: new ones (all on a rebuild, none for tests only), less the unreadable. */
async function pickRawObjects(ctx: RunContext): Promise<RawObjects> {
  const { dataset, rawStore, curatedStore } = ctx.opts;
  const allRaw = (await rawStore.list(rawPrefix(dataset))).filter((k) => !k.endsWith('/'));
  const processed = await readProcessedObjects(curatedStore, dataset);
  // Tests only: nothing is merged (new raw objects wait for the next full run).
  const candidates = ctx.testsOnly ? [] : ctx.rebuild ? allRaw : allRaw.filter((k) => !processed.keys.has(k));
  // An object that cannot be read whole is never merged as if complete: it stays unprocessed
  // (retried every run), is listed in the summary and state, and fails the run's data tests.
  const unreadable = ctx.engine.unreadableObjects ? await ctx.engine.unreadableObjects(candidates) : await unreadableInStore(rawStore, candidates);
  const unreadableKeys = new Set(unreadable.map((u) => u.key));
  const fresh = candidates.filter((k) => !unreadableKeys.has(k));
  for (const u of unreadable) ctx.log(`${dataset.name}: raw object ${rawStore.location}/${u.key} cannot be read whole (${u.error}); quarantined, not merged`);
  ctx.log(`${dataset.name}: ${ctx.rebuild ? `rebuilding curated from all ${fresh.length} raw object(s)` : `${fresh.length} new raw object(s) of ${allRaw.length}`}`);
  return { allRaw, processed, fresh, unreadable };
}

/** THE merge (merge-algorithm.ts) of the picked objects; every one is recorded, also one that contributed nothing. */
async function mergeObjects(ctx: RunContext, fresh: string[]): Promise<MergeResult> {
  const merged: MergeResult = fresh.length || ctx.rebuild ? await mergeBatch(ctx.timed, fresh, { rebuild: ctx.rebuild, runId: ctx.runId, changedAt: ctx.now() }) : { ...emptyBatchStats(), contributions: {} };
  // An object whose rows all lost to newer versions elsewhere (or were all malformed) is recorded
  // too: an object missing here would look merged before keys were recorded.
  const contributions = Object.fromEntries(fresh.map((k) => [k, merged.contributions[k] ?? { keys: 0, inserted: 0 }]));
  ctx.log(
    `${ctx.dataset.name}: read ${merged.rowsRead} rows, ${merged.rowsInserted} inserted, ${merged.rowsUpdated} updated, ` +
      `${merged.rowsUnchanged} unchanged, ${merged.duplicatesRemoved} duplicates removed, ${merged.malformedRows} malformed`,
  );
  return { ...merged, contributions };
}

/** Table maintenance when due (engines that have it); the cadence record to keep. */
async function maintainTables(ctx: RunContext, processed: RawObjects['processed']): Promise<{ run: string[]; record?: Maintenance }> {
  const { engine, opts, now } = ctx;
  if (!engine.maintain || ctx.testsOnly) return { run: [] };
  const last = processed.maintenance;
  const everyRuns = opts.maintenanceEveryRuns ?? 24;
  const intervalMs = (opts.maintenanceIntervalHours ?? 24) * 3_600_000;
  const due = last !== undefined && (last.runsSince + 1 >= everyRuns || now().getTime() - Date.parse(last.lastAt) >= intervalMs);
  const run: string[] = [];
  if (due) {
    run.push(...(await engine.maintain()));
    ctx.log(`${ctx.dataset.name}: table maintenance: ${run.join('; ')}`);
  }
  return { run, record: !last || due ? { lastAt: now().toISOString(), runsSince: 0 } : { lastAt: last.lastAt, runsSince: last.runsSince + 1 } };
}

/** The processed-objects state: merged objects with their contributions, quarantined ones, maintenance. */
async function recordProcessed(ctx: RunContext, objects: RawObjects, contributions: MergeResult['contributions'], maintenance: { record?: Maintenance }): Promise<void> {
  const { processed, fresh, unreadable } = objects;
  const quarantined: Record<string, QuarantinedObject> = Object.fromEntries(
    unreadable.map((u) => [u.key, { error: u.error, firstRunId: processed.quarantined[u.key]?.firstRunId ?? ctx.runId, lastRunId: ctx.runId }]),
  );
  if (ctx.testsOnly || !(fresh.length || ctx.rebuild || unreadable.length || Object.keys(processed.quarantined).length || maintenance.record)) return;
  await writeProcessedObjects(ctx.opts.curatedStore, ctx.dataset, processed, fresh, ctx.runId, {
    contributions,
    quarantined,
    replace: ctx.rebuild,
    ...(maintenance.record ? { maintenance: maintenance.record } : {}),
  });
}

interface SourceCheck {
  /** Its missingKeys are those not accounted for by the quarantine. */
  result: KeyScanReconciliation;
  missingKeysLocation?: string;
  /** Missing keys whose rows the fetcher quarantined in this run. */
  quarantinedKeys: string[];
  quarantineLocation?: string;
}

/**
 * Deletions and reconciliation against the source, when this run's key scan completed. After the
 * merge: rows the scan saw that this batch delivered are curated by now.
 */
async function reconcileWithSource(ctx: RunContext): Promise<SourceCheck | undefined> {
  const { dataset, rawStore } = ctx.opts;
  const keyScan = dataset.deletions.detect && !ctx.testsOnly ? await readKeyScan(rawStore, dataset, ctx.runId) : undefined;
  if (!keyScan) return undefined;
  const source = await applyKeyScan(ctx.timed, keyScan, { maxDeleteShare: dataset.deletions.maxDeleteShare, detectedAt: ctx.now(), runId: ctx.runId });
  if (source.refused) {
    const share = source.curatedRowsBefore ? ((100 * source.goneKeys) / source.curatedRowsBefore).toFixed(1) : '100';
    throw new MassDeleteRefusedError(
      `Dataset ${dataset.name}: the key scan of run ${ctx.runId} (${source.sourceKeys} keys from ${sourceLabel(dataset.source)}) ` +
        `would delete ${source.goneKeys} of ${source.curatedRowsBefore} curated rows (${share}%), above deletions.maxDeleteShare ${dataset.deletions.maxDeleteShare}; ` +
        'nothing was deleted (this run\'s upserts are kept). An outage, a wrong source URL or a publisher\'s mistake looks like this: check the source. ' +
        'If the rows really are gone, raise deletions.maxDeleteShare in the dataset file for one run.',
    );
  }
  // Keys missing because the fetcher quarantined their rows are known, not lost: reported apart.
  let quarantinedKeys: string[] = [];
  let quarantineLocation: string | undefined;
  if (source.missingKeys.length) {
    const known = await readQuarantinedKeys(rawStore, dataset, ctx.runId);
    quarantinedKeys = source.missingKeys.filter((k) => known.keys.has(k));
    source.missingKeys = source.missingKeys.filter((k) => !known.keys.has(k));
    if (quarantinedKeys.length) quarantineLocation = `${rawStore.location}/${quarantinePrefix(dataset)} (run ${ctx.runId}: ${known.files.length} file(s))`;
  }
  let missingKeysLocation: string | undefined;
  if (source.missingKeys.length) {
    const key = missingKeysKey(dataset, ctx.runId);
    await rawStore.put(key, gzipSync(encodeKeyList(source.missingKeys)), { contentType: 'application/gzip' });
    missingKeysLocation = `${rawStore.location}/${key}`;
  }
  ctx.log(
    `${dataset.name}: key scan: ${source.sourceKeys} source keys, ${source.rowsDeleted} curated row(s) deleted, ` +
      `${source.missingKeys.length} source key(s) missing from curated${missingKeysLocation ? ` (listed in ${missingKeysLocation})` : ''}` +
      (quarantinedKeys.length ? `, ${quarantinedKeys.length} more whose rows the fetcher quarantined (${quarantineLocation})` : ''),
  );
  return { result: source, quarantinedKeys, ...(missingKeysLocation ? { missingKeysLocation } : {}), ...(quarantineLocation ? { quarantineLocation } : {}) };
}

/** What changed this run, from its records in the change feed (the merges' and the deletions'). */
async function summarizeChanges(ctx: RunContext): Promise<ChangeSummary> {
  const { engine, dataset, runId } = ctx;
  const feed = await engine.changesRef();
  const [counts = {}] = await engine.rows(changeSummarySql(dataset, feed, runId), 'change summary');
  const columns = hashedColumns(curatedColumns(dataset))
    .filter((c) => c.name !== dataset.primaryKey)
    .map((c, i) => ({ column: c.name, updates: Number(counts[`c${i}`] ?? 0) }))
    .filter((c) => c.updates > 0)
    .sort((a, b) => b.updates - a.updates || a.column.localeCompare(b.column))
    .slice(0, CHANGED_COLUMNS_SHOWN);
  const examples: ChangeSummary['examples'] = { insert: [], update: [], delete: [] };
  for (const r of await engine.rows(changeExamplesSql(feed, runId, CHANGE_EXAMPLES), 'change examples')) {
    examples[String(r.change) as keyof ChangeSummary['examples']]?.push(String(r.key));
  }
  return { inserted: Number(counts.inserted ?? 0), updated: Number(counts.updated ?? 0), deleted: Number(counts.deleted ?? 0), columns, examples };
}

interface CuratedChecks {
  results: DataTestResult[];
  curatedRows: number;
  mergedKeys: number;
  failedErrorTests: string[];
  repairNeeded: boolean;
}

/**
 * The run's own tests after the models': raw objects readable, and the reconciliation from what
 * each merge recorded (never re-reading raw): every key a merge staged is in curated exactly once,
 * and curated holds nothing else. With a key scan, curated is reconciled against the source
 * instead: what the pipeline is for.
 */
async function reconcileCurated(ctx: RunContext, objects: RawObjects, modelResults: DataTestResult[], check: SourceCheck | undefined): Promise<CuratedChecks> {
  const { dataset, engine } = ctx;
  const results: DataTestResult[] = [...modelResults];
  const curatedRows = await scalar(engine, `SELECT count(*) AS n FROM ${engine.tableRef('curated')}`);
  const { unreadable, processed } = objects;
  if (unreadable.length) {
    results.push({
      name: 'raw_objects_readable',
      severity: 'error',
      model: 'raw',
      description: `raw objects that cannot be read whole, quarantined and not merged (fix or remove them; they are retried every run): ${unreadable.map((u) => u.key).join(', ')}`,
      status: 'fail',
      failing: unreadable.length,
    });
  }
  const mergedKeys = await engine.mergedKeys();
  const unrecorded = ctx.rebuild ? 0 : [...processed.keys].filter((k) => !(k in processed.contributions)).length;
  const source = check?.result;
  const reconciled = source ? source.missingKeys.length === 0 && source.extraKeys === 0 : mergedKeys === curatedRows;
  if (source) {
    const quarantined = check.quarantinedKeys.length;
    results.push({
      name: SOURCE_RECONCILIATION_TEST,
      severity: 'error',
      model: 'curated',
      description:
        `curated keys (${curatedRows}) == the source's keys in this run's key scan (${source.sourceKeys}): ` +
        `${source.missingKeys.length} missing from curated, ${source.extraKeys} in curated but not at the source` +
        (source.missingKeys.length ? `; missing keys listed in ${check.missingKeysLocation} for the repair phase` : '') +
        (quarantined
          ? `; ${quarantined} more source row(s) quarantined by the fetcher, so not in curated: see their reasons in ${check.quarantineLocation}; ` +
            'they load once the source fixes them (re-fetching or a rebuild cannot load them)'
          : ''),
      // Known quarantined rows are reported, never a failure: they would fail every later run.
      status: reconciled ? (quarantined ? 'warn' : 'pass') : 'fail',
      failing: source.missingKeys.length + source.extraKeys,
    });
  } else results.push({
    name: RECONCILIATION_TEST,
    // A state written before merges recorded their keys cannot reconcile yet: warn until a rebuild.
    severity: unrecorded ? 'warn' : 'error',
    model: 'curated',
    description:
      `distinct keys merged (${mergedKeys}) == rows in curated (${curatedRows})` +
      (unrecorded ? `; ${unrecorded} raw object(s) were merged before keys were recorded` : '') +
      (reconciled ? '' : `; to repair, ${REBUILD_HINT}`),
    status: reconciled ? 'pass' : unrecorded ? 'warn' : 'fail',
    failing: Math.abs(mergedKeys - curatedRows),
  });
  const failedErrorTests = results.filter((r) => r.status === 'fail').map((r) => r.name);
  for (const r of results.filter((x) => x.status === 'fail' || x.status === 'warn')) {
    ctx.log(`${dataset.name}: data test ${r.status === 'fail' ? 'FAILED' : 'warning'}: ${r.name} (${r.failing} failing: ${r.description})`);
  }
  if (!reconciled && !source) ctx.log(`${dataset.name}: reconciliation failed: curated has ${curatedRows} rows, the merges recorded ${mergedKeys} distinct keys; ${REBUILD_HINT}`);
  const otherFailures = failedErrorTests.filter((n) => n !== SOURCE_RECONCILIATION_TEST);
  const repairNeeded = !!source && source.missingKeys.length > 0 && source.extraKeys === 0 && otherFailures.length === 0;
  return { results, curatedRows, mergedKeys, failedErrorTests, repairNeeded };
}

function summarize(
  ctx: RunContext,
  r: {
    started: Date;
    objects: RawObjects;
    batch: MergeResult;
    maintenance: string[];
    source: SourceCheck | undefined;
    models: Awaited<ReturnType<typeof runModels>>;
    checks: CuratedChecks;
    fetchFigures: FetchFigures | undefined;
    freshness: Freshness;
    changes: ChangeSummary | undefined;
    profile: ColumnProfiles | undefined;
  },
): RunSummary {
  const { dataset, runId, opts } = ctx;
  const { curatedStore } = opts;
  const { contributions: _contributions, ...batch } = r.batch;
  const { allRaw, fresh, unreadable } = r.objects;
  const { results, curatedRows, mergedKeys, failedErrorTests, repairNeeded } = r.checks;
  const source = r.source?.result;
  const finished = ctx.now();
  return {
    dataset: dataset.name,
    runId,
    engine: ctx.engine.dialect.name,
    status: failedErrorTests.length ? 'tests_failed' : 'succeeded',
    startedAt: r.started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - r.started.getTime(),
    rawObjects: {
      total: allRaw.length,
      new: fresh.length,
      alreadyProcessed: ctx.rebuild ? 0 : allRaw.length - fresh.length - unreadable.length,
      quarantined: unreadable.length,
    },
    quarantinedObjects: unreadable,
    rebuild: ctx.rebuild,
    reconciliation: {
      mergedKeys,
      curatedRows,
      ...(source
        ? {
            source: {
              keysetRunId: runId,
              sourceKeys: source.sourceKeys,
              curatedRowsBefore: source.curatedRowsBefore,
              goneKeys: source.goneKeys,
              missingKeys: source.missingKeys.length,
              extraKeys: source.extraKeys,
              ...(r.source?.missingKeysLocation ? { missingKeysLocation: r.source.missingKeysLocation } : {}),
              quarantinedKeys: r.source?.quarantinedKeys.length ?? 0,
              ...(r.source?.quarantineLocation ? { quarantineLocation: r.source.quarantineLocation } : {}),
            },
          }
        : {}),
    },
    rowsDeleted: source?.rowsDeleted ?? 0,
    missingKeys: source?.missingKeys.length ?? 0,
    keysetApplied: !!source,
    repairNeeded,
    maintenance: r.maintenance,
    // As the state machine passed it, and as the fetcher recorded it for this run.
    schemaDrift: { undeclared: [...new Set([...(opts.undeclaredColumns ?? []), ...(r.fetchFigures?.rows?.undeclaredColumns ?? [])])].sort() },
    ...batch,
    rowsWritten: batch.rowsInserted + batch.rowsUpdated,
    curatedRows,
    marts: r.models.built,
    skippedModels: r.models.skipped,
    selection: { ...(opts.select ? { select: [...opts.select] } : {}), testsOnly: ctx.testsOnly },
    tests: {
      passed: results.filter((x) => x.status === 'pass').length,
      failed: results.filter((x) => x.status === 'fail').length,
      warned: results.filter((x) => x.status === 'warn').length,
      skipped: results.filter((x) => x.status === 'skipped').length,
      results,
    },
    failedErrorTests,
    summaryLocation: `${curatedStore.location}/${runSummaryKey(dataset, runId)}`,
    reportLocation: `${curatedStore.location}/${reportKey(dataset, runId)}`,
    historyLocation: `${curatedStore.location}/${historyKey(dataset)}`,
    ...(r.fetchFigures ? { fetch: r.fetchFigures } : {}),
    freshness: r.freshness,
    ...(r.changes ? { changes: r.changes } : {}),
    stageMs: ctx.clock.ms,
    ...(r.profile ? { columnProfile: r.profile } : {}),
  };
}

/** The run summary, the HTML report (with each shown mart's rows), the history page, and the local catalog. */
async function writeOutputs(ctx: RunContext, summary: RunSummary, shown: MartModel[]): Promise<void> {
  const { engine, dataset, runId, opts } = ctx;
  // The report stage: the marts' rows read and their charts drawn (the page around them and the
  // writes that follow take no measurable time next to these, and cannot time themselves).
  const martSections = await ctx.clock.time('report', async () => {
    const martRows: { mart: MartModel; rows: Row[] }[] = [];
    for (const mart of shown) {
      martRows.push({ mart, rows: await engine.rows(`SELECT * FROM ${engine.tableRef(mart.name)} LIMIT ${opts.reportRowLimit ?? 5000}`) });
    }
    return renderMartSections(martRows, summary);
  });
  const finished = ctx.now();
  summary.finishedAt = finished.toISOString();
  summary.durationMs = finished.getTime() - Date.parse(summary.startedAt);
  summary.stageMs = { ...ctx.clock.ms };
  await opts.curatedStore.put(runSummaryKey(dataset, runId), JSON.stringify(summary, null, 2), { contentType: 'application/json' });
  await opts.curatedStore.put(reportKey(dataset, runId), await renderReport({ dataset, summary, marts: [], martSections }), {
    contentType: 'text/html; charset=utf-8',
  });
  await writeHistory(opts.curatedStore, dataset, summary, ctx.log);
  if (opts.catalogPath && opts.engine === 'duckdb') {
    await engine.close();
    await registerCurated({ dataset, curatedDir: opts.curatedStore.location, catalogPath: opts.catalogPath });
  }
}
