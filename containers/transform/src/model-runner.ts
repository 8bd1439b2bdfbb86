/**
 * Builds the marts and runs the tests the way `dbt build` does: the curated source's tests (and
 * freshness) first, then each mart in dependency order, its tests right after it. A failing
 * error-severity test on a model skips every mart that depends on it (transitively) and their
 * tests, reported as skipped with the reason; other branches still run. `--select` limits the
 * marts; `--tests-only` builds nothing and tests the tables as they are.
 */
import { runFreshness, runTest, skippedResult, type DataTestResult, type ModelTest } from './data-tests';
import type { TransformEngine } from './engine';
import { ModelError } from './model-error';
import { renderMart, selectMarts, type MartModel, type ModelProject } from './models';

export interface ModelRunOptions {
  engine: TransformEngine;
  project: ModelProject;
  /** `--select` terms (see selectMarts); undefined: every mart. */
  select?: readonly string[];
  /** Build nothing: test the existing tables (nothing is skipped for a failing test). */
  testsOnly?: boolean;
  now: Date;
  log: (line: string) => void;
}

export interface SkippedModel {
  name: string;
  reason: string;
}

export interface ModelRunResult {
  /** Curated tests, freshness, then each mart's tests, in the order they ran (skipped ones included). */
  results: DataTestResult[];
  /** Marts built this run. */
  built: { name: string; table: string; rows: number }[];
  /** Selected marts not built because an upstream error test failed. */
  skipped: SkippedModel[];
  /** Marts whose tables this run built or tested (what the report can show). */
  shown: MartModel[];
}

/** A mart this run needs but does not build has no table yet. */
export class MissingModelError extends ModelError {
  override name = 'MissingModelError';
}

export async function runModels(opts: ModelRunOptions): Promise<ModelRunResult> {
  const { engine, project, log } = opts;
  const results: DataTestResult[] = [];
  const built: ModelRunResult['built'] = [];
  const skipped: SkippedModel[] = [];
  const shown: MartModel[] = [];
  /** Model → why its dependents are skipped (an error test failed on it, or it was skipped). */
  const blocked = new Map<string, string>();
  const failedOn = (r: DataTestResult[]): DataTestResult | undefined => (opts.testsOnly ? undefined : r.find((x) => x.status === 'fail'));

  const curatedResults: DataTestResult[] = [];
  for (const t of project.curated.tests) curatedResults.push(await runTest(engine, t));
  if (project.curated.freshness) curatedResults.push(await runFreshness(engine, project.curated.freshness, opts.now));
  results.push(...curatedResults);
  const curatedFailure = failedOn(curatedResults);
  if (curatedFailure) blocked.set('curated', `error test ${curatedFailure.name} failed on curated`);

  const selected = selectMarts(project.marts, opts.select);
  const available = new Set<string>(['curated']);
  const ensureTable = async (name: string, wantedBy: string): Promise<void> => {
    if (available.has(name)) return;
    if (!(await engine.existingModel?.(name))) {
      throw new MissingModelError(
        opts.testsOnly
          ? `mart ${name} has no table yet, so --tests-only cannot test it; build it first (run without --tests-only)`
          : `mart ${wantedBy} reads ${name}, which is not selected and has no table yet; select it too (--select +${wantedBy})`,
      );
    }
    available.add(name);
  };

  for (const mart of project.marts) {
    if (!selected.has(mart.name)) continue;
    const upstream = ['curated', ...mart.dependsOn].find((d) => blocked.has(d));
    if (upstream) {
      const reason = upstream === 'curated' || !skipped.some((s) => s.name === upstream) ? `skipped: ${blocked.get(upstream)}` : `skipped: upstream mart ${upstream} was skipped`;
      blocked.set(mart.name, reason.replace(/^skipped: /, ''));
      skipped.push({ name: mart.name, reason });
      results.push(...mart.tests.map((t) => skippedResult(t, reason)));
      log(`mart ${mart.name}: ${reason}`);
      continue;
    }
    if (opts.testsOnly) {
      await ensureTable(mart.name, mart.name);
    } else {
      for (const dep of mart.dependsOn) await ensureTable(dep, mart.name);
      const rows = await engine.materializeMart(mart.name, renderMart(mart, engine.dialect, (ref) => engine.tableRef(ref)));
      available.add(mart.name);
      built.push({ name: mart.name, table: engine.tableRef(mart.name), rows });
      log(`mart ${mart.name}: ${rows} rows`);
    }
    shown.push(mart);
    const martResults: DataTestResult[] = [];
    for (const t of mart.tests) martResults.push(await runMartTest(t, mart.name));
    results.push(...martResults);
    const failure = failedOn(martResults);
    if (failure) blocked.set(mart.name, `error test ${failure.name} failed on ${mart.name}`);
  }
  return { results, built, skipped, shown };

  async function runMartTest(t: ModelTest, martName: string): Promise<DataTestResult> {
    const c = t.check;
    if (c.kind === 'relationships' && c.to !== 'curated' && c.to !== martName) {
      const why = blocked.get(c.to);
      if (why) return skippedResult(t, `skipped: ${c.to} ${skipped.some((s) => s.name === c.to) ? 'was skipped' : `failed a test (${why})`}`);
      await ensureTable(c.to, martName);
    }
    return runTest(engine, t);
  }
}
