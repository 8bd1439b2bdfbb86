/**
 * Marts: SQL files under `models/<dataset>/<mart>.sql`, each one SELECT, materialized as a table.
 *
 *   {{ ref('curated') }}         the dataset's curated table
 *   {{ ref('<mart>') }}          another mart of the same dataset (ordered before this one)
 *   {{ percentile('<expr>', p) }} a continuous percentile (exact on DuckDB, approximate on Athena)
 *
 * Descriptions, column docs, tests and the report's chart (`meta.chart`, a chart spec: see
 * chart-spec.ts) live in dbt-shaped YAML beside the SQL (model-yaml.ts), as does the curated
 * source's freshness; `-- description:` / `-- tests:` / `-- chart:` lines are refused so there is
 * one way to declare them.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { INGESTION_METADATA, type DatasetConfig } from '../../../runtime/dataset-config';
import { curatedTests, failuresModelName, type ModelTest, type SourceFreshness } from './data-tests';
import type { Dialect } from './dialect';
import { parseChartSpec } from './chart-spec';
import { ModelError } from './model-error';
import { parsePropertiesFile, type ColumnDoc, type PropertiesFile } from './model-yaml';
import { curatedColumns } from './staging';

export { ModelError } from './model-error';

const MART_NAME = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

export interface MartModel {
  name: string;
  file: string;
  description: string;
  /** The SQL with its template calls still in place. */
  template: string;
  /** Marts this one refers to (not 'curated'). */
  dependsOn: string[];
  tests: ModelTest[];
  /** Column docs from the YAML. */
  columns?: ColumnDoc[];
  /** The report's chart spec (YAML `meta.chart`, validated by chart-spec.ts), if the mart declares one. */
  chart?: Record<string, unknown>;
}

/** The curated table as dbt sees it: a source, with its freshness rule and YAML-declared tests. */
export interface CuratedSource {
  description?: string;
  columns: ColumnDoc[];
  /** The dataset JSON's tests and the primary-key tests, then the YAML source tests. */
  tests: ModelTest[];
  freshness?: SourceFreshness;
}

export interface ModelProject {
  marts: MartModel[];
  curated: CuratedSource;
}

/** Default models directory: `<container>/models`, next to `src/` (and next to `dist/` in the image). */
export function defaultModelsDir(): string {
  return path.join(import.meta.dirname, '..', 'models');
}

/** The default freshness field: the source's `:updated_at`, as the fetcher stamps every row. */
export const DEFAULT_LOADED_AT_FIELD = INGESTION_METADATA.sourceUpdatedAt;

const REF = /\{\{\s*ref\(\s*'([^']+)'\s*\)\s*\}\}/g;
const PERCENTILE = /\{\{\s*percentile\(\s*'([^']+)'\s*,\s*([0-9]*\.?[0-9]+)\s*\)\s*\}\}/g;

/** Parse one mart file's text (its YAML properties are merged in by loadProject). */
export function parseMart(name: string, file: string, text: string): MartModel {
  if (!MART_NAME.test(name)) {
    throw new ModelError(`${file}: mart name "${name}" must be snake_case without "__" (a-z, 0-9, single underscores)`);
  }
  if (name === 'deletions' || name === 'history' || name === 'changes') {
    throw new ModelError(`${file}: mart name "${name}" is taken by the transform's own table <table>__${name}; rename the file`);
  }
  const legacy = /^--\s*(description|tests|chart):/m.exec(text);
  if (legacy) {
    const line = text.slice(0, legacy.index).split('\n').length;
    throw new ModelError(
      `${file}:${line}: "-- ${legacy[1]}:" lines are no longer read; declare the model's ${legacy[1]} in YAML beside the SQL ` +
        `(models: [{ name: ${name}, ${legacy[1] === 'chart' ? 'meta: { chart: ... }' : `${legacy[1]}: ...`} }], see docs/transform.md "Models and tests")`,
    );
  }
  const dependsOn = [...new Set([...text.matchAll(REF)].map((m) => m[1]!).filter((r) => r !== 'curated'))];
  const leftover = text.replace(/^\s*--.*$/gm, '').replace(REF, '').replace(PERCENTILE, '');
  if (/\{\{|\}\}/.test(leftover)) throw new ModelError(`${file}: unknown template call (only ref('...') and percentile('...', p))`);
  return { name, file, description: '', template: text, dependsOn, tests: [] };
}

/** Every mart of a dataset, in dependency order. A dataset without a models folder has no marts. */
export function loadMarts(dataset: DatasetConfig, modelsDir = defaultModelsDir()): MartModel[] {
  return loadProject(dataset, modelsDir).marts;
}

/**
 * The dataset's marts (SQL + YAML properties, in dependency order) and its curated source (tests
 * from the dataset JSON and the YAML, freshness). A YAML entry without SQL, a model described
 * twice, a duplicate test name and a test on an unknown column of curated are errors.
 */
export function loadProject(dataset: DatasetConfig, modelsDir = defaultModelsDir()): ModelProject {
  const dir = path.join(modelsDir, dataset.name);
  const files = existsSync(dir) ? readdirSync(dir).sort() : [];
  const marts = files
    .filter((f) => f.endsWith('.sql'))
    .map((f) => parseMart(path.basename(f, '.sql'), path.join(dir, f), readFileSync(path.join(dir, f), 'utf8')));
  const props: PropertiesFile[] = files
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => parsePropertiesFile(path.join(dir, f), readFileSync(path.join(dir, f), 'utf8')));

  const byName = new Map(marts.map((m) => [m.name, m]));
  const describedAt = new Map<string, string>();
  for (const doc of props.flatMap((p) => p.models)) {
    const mart = byName.get(doc.name);
    if (!mart) {
      throw new ModelError(`${doc.origin}: model "${doc.name}" has no SQL file (${path.join(dir, `${doc.name}.sql`)}); create it or remove the entry`);
    }
    const first = describedAt.get(doc.name);
    if (first) throw new ModelError(`${doc.origin}: model "${doc.name}" is already described at ${first}; keep one entry`);
    describedAt.set(doc.name, doc.origin);
    mart.description = doc.description ?? '';
    mart.tests = doc.tests;
    mart.columns = doc.columns;
    // Checked here, so a bad spec is reported at its place in the YAML (file:line:column).
    if (doc.chart) mart.chart = parseChartSpec(doc.chart, `${doc.origin} (meta.chart)`);
  }

  const sources = props.filter((p) => p.source);
  if (sources.length > 1) {
    throw new ModelError(`${sources[1]!.source!.origin}: the curated source is already declared at ${sources[0]!.source!.origin}; keep one sources entry`);
  }
  const sourceDoc = sources[0]?.source;
  const columnTypes = new Map(curatedColumns(dataset).map((c) => [c.name, c.type]));
  let freshness: SourceFreshness | undefined;
  if (sourceDoc?.freshness) {
    const field = sourceDoc.freshness.loadedAtField || DEFAULT_LOADED_AT_FIELD;
    const type = columnTypes.get(field);
    if (!type || !/^TIMESTAMP/.test(type)) {
      throw new ModelError(`${sourceDoc.origin}: loaded_at_field "${field}" must be a timestamp column of curated (${type ? `it is ${type}` : 'no such column'}); the default is ${DEFAULT_LOADED_AT_FIELD} (the source's :updated_at)`);
    }
    freshness = { ...sourceDoc.freshness, loadedAtField: field };
  }
  const curated: CuratedSource = {
    ...(sourceDoc?.description ? { description: sourceDoc.description } : {}),
    columns: sourceDoc?.columns ?? [],
    tests: [...curatedTests(dataset), ...(sourceDoc?.tests ?? [])],
    ...(freshness ? { freshness } : {}),
  };

  checkTests(curated, marts, columnTypes);
  return { marts: orderByDependencies(marts), curated };
}

/** Test names are result keys and failure-table names: unique per dataset; columns of curated must exist. */
function checkTests(curated: CuratedSource, marts: MartModel[], curatedCols: Map<string, string>): void {
  const names = new Map<string, string>();
  const tables = new Map<string, string>();
  const known = new Set(['curated', ...marts.map((m) => m.name)]);
  for (const t of [...curated.tests, ...marts.flatMap((m) => m.tests)]) {
    const first = names.get(t.name);
    if (first) throw new ModelError(`${t.origin}: test "${t.name}" is already declared at ${first}; give one of them a distinct name`);
    names.set(t.name, t.origin);
    const table = failuresModelName(t);
    const sameTable = tables.get(table);
    if (t.config.storeFailures && sameTable) throw new ModelError(`${t.origin}: the failures table of "${t.name}" would be the one of ${sameTable}; rename one of the tests`);
    tables.set(table, `"${t.name}" (${t.origin})`);
    const c = t.check;
    if (c.kind === 'relationships' && !known.has(c.to)) {
      throw new ModelError(`${t.origin}: relationships test "${t.name}" refers to "${c.to}", which is not a model (known: ${[...known].join(', ')})`);
    }
    const columns = [
      ...(t.model === 'curated' ? ('column' in c && c.column ? [c.column] : 'columns' in c ? c.columns : []) : []),
      ...(c.kind === 'relationships' && c.to === 'curated' ? [c.field] : []),
    ];
    for (const col of columns) {
      if (!curatedCols.has(col)) throw new ModelError(`${t.origin}: test "${t.name}": "${col}" is not a column of curated (declared columns and ${Object.values(INGESTION_METADATA).join(', ')})`);
    }
  }
}

/** Marts whose tests read another mart (relationships) must come after it too. */
const orderDeps = (m: MartModel): string[] => [
  ...new Set([...m.dependsOn, ...m.tests.flatMap((t) => (t.check.kind === 'relationships' && t.check.to !== 'curated' && t.check.to !== m.name ? [t.check.to] : []))]),
];

/** Topological order (dependencies first); unknown refs and cycles are errors naming the models. */
export function orderByDependencies(marts: MartModel[]): MartModel[] {
  const byName = new Map(marts.map((m) => [m.name, m]));
  const ordered: MartModel[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (m: MartModel, trail: string[]): void => {
    if (state.get(m.name) === 'done') return;
    if (state.get(m.name) === 'visiting') throw new ModelError(`Cycle between models: ${[...trail, m.name].join(' -> ')}`);
    state.set(m.name, 'visiting');
    for (const dep of orderDeps(m)) {
      const target = byName.get(dep);
      if (!target) throw new ModelError(`${m.file}: ref('${dep}') names no model (known: curated, ${[...byName.keys()].join(', ')})`);
      visit(target, [...trail, m.name]);
    }
    state.set(m.name, 'done');
    ordered.push(m);
  };
  for (const m of marts) visit(m, []);
  return ordered;
}

/** `--select` could not be resolved: a usage error (exit 2). */
export class SelectionError extends ModelError {
  override name = 'SelectionError';
}

/**
 * The marts a `--select` picks: each term is `<model>`, `+<model>` (with its ancestors),
 * `<model>+` (with its descendants) or `+<model>+`; terms are a union. `curated` names the
 * source: `curated+` is every mart, `curated` alone no mart (curated itself is always merged
 * and tested). Undefined selects every mart.
 */
export function selectMarts(marts: MartModel[], select: readonly string[] | undefined): Set<string> {
  const all = new Set(marts.map((m) => m.name));
  if (!select) return all;
  const parents = new Map(marts.map((m) => [m.name, m.dependsOn]));
  // Every mart derives from curated, directly or through other marts.
  const children = new Map<string, string[]>([['curated', [...all]]]);
  for (const m of marts) for (const p of m.dependsOn) children.set(p, [...(children.get(p) ?? []), m.name]);
  const walk = (start: string, edges: Map<string, string[]>, into: Set<string>): void => {
    for (const next of edges.get(start) ?? []) {
      if (!into.has(next)) {
        into.add(next);
        walk(next, edges, into);
      }
    }
  };
  const chosen = new Set<string>();
  for (const term of select) {
    const m = /^(\+?)([a-z][a-z0-9_]*)(\+?)$/.exec(term.trim());
    if (!m) throw new SelectionError(`--select: "${term}" is not a model selector (<model>, +<model>, <model>+ or +<model>+)`);
    const [, up, name, down] = m as unknown as [string, string, string, string];
    if (name !== 'curated' && !all.has(name)) throw new SelectionError(`--select: "${name}" is not a model (known: curated, ${[...all].join(', ')})`);
    const picked = new Set<string>(name === 'curated' ? [] : [name]);
    if (up) walk(name, parents, picked);
    if (down) walk(name, children, picked);
    for (const p of picked) chosen.add(p);
  }
  return chosen;
}

/** Render a mart's SQL for one engine: `resolve` maps 'curated' or a mart name to a table reference. */
export function renderMart(mart: MartModel, dialect: Dialect, resolve: (ref: string) => string): string {
  return mart.template
    .replace(REF, (_m, ref: string) => resolve(ref))
    .replace(PERCENTILE, (_m, expr: string, p: string) => dialect.percentile(expr, Number(p)))
    .replace(/^\s*--.*$/gm, '')
    .trim()
    .replace(/;\s*$/, '');
}

/** Catalog name of a mart table: `<table>__<mart>`; see docs/transform.md for why it cannot collide. */
export function martTableName(table: string, mart: string): string {
  return `${table}__${mart}`;
}
