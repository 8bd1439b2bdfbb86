/**
 * Marts: SQL files under `models/<dataset>/<mart>.sql`, each one SELECT, materialized as a table.
 *
 *   {{ ref('curated') }}         the dataset's curated table
 *   {{ ref('<mart>') }}          another mart of the same dataset (ordered before this one)
 *   {{ percentile('<expr>', p) }} a continuous percentile (exact on DuckDB, approximate on Athena)
 *   -- description: <text>      shown in the report
 *   -- tests: [<json>, ...]      data tests on the mart (same kinds as the dataset's dataTests, plus
 *                                {"kind":"unique","columns":[...]})
 *   -- chart: {<json>}           a Vega-Lite view (mark, encoding, ...) drawn over the mart's rows
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { dataTestSchema, type DatasetConfig } from '../../../runtime/dataset-config';
import type { Dialect } from './dialect';

const MART_NAME = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

export const martTestSchema = z.union([
  dataTestSchema,
  z.strictObject({
    kind: z.literal('unique'),
    name: z.string().optional(),
    columns: z.array(z.string().regex(/^[a-z_][a-z0-9_]*$/)).min(1),
    severity: z.enum(['error', 'warn']).default('error'),
  }),
]);
export type MartTest = z.infer<typeof martTestSchema>;

export interface MartModel {
  name: string;
  file: string;
  description: string;
  /** The SQL with its template calls still in place. */
  template: string;
  /** Marts this one refers to (not 'curated'). */
  dependsOn: string[];
  tests: MartTest[];
  /** Vega-Lite spec fragment (without data) for the report, if the mart declares one. */
  chart?: Record<string, unknown>;
}

export class ModelError extends Error {
  override name = 'ModelError';
}

/** Default models directory: `<container>/models`, next to `src/` (and next to `dist/` in the image). */
export function defaultModelsDir(): string {
  return path.join(import.meta.dirname, '..', 'models');
}

const REF = /\{\{\s*ref\(\s*'([^']+)'\s*\)\s*\}\}/g;
const PERCENTILE = /\{\{\s*percentile\(\s*'([^']+)'\s*,\s*([0-9]*\.?[0-9]+)\s*\)\s*\}\}/g;

/** Parse one mart file's text. */
export function parseMart(name: string, file: string, text: string): MartModel {
  if (!MART_NAME.test(name)) {
    throw new ModelError(`${file}: mart name "${name}" must be snake_case without "__" (a-z, 0-9, single underscores)`);
  }
  if (name === 'deletions') {
    throw new ModelError(`${file}: mart name "deletions" is taken by the deletions record (<table>__deletions); rename the file`);
  }
  const description = /^--\s*description:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? '';
  let tests: MartTest[] = [];
  const testsLine = /^--\s*tests:\s*(.+)$/m.exec(text)?.[1];
  if (testsLine) {
    let value: unknown;
    try {
      value = JSON.parse(testsLine);
    } catch (err) {
      throw new ModelError(`${file}: the "-- tests:" line is not valid JSON: ${(err as Error).message}`);
    }
    const parsed = z.array(martTestSchema).safeParse(value);
    if (!parsed.success) {
      throw new ModelError(`${file}: invalid tests: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    tests = parsed.data;
  }
  let chart: Record<string, unknown> | undefined;
  const chartLine = /^--\s*chart:\s*(.+)$/m.exec(text)?.[1];
  if (chartLine) {
    try {
      chart = z.record(z.string(), z.unknown()).parse(JSON.parse(chartLine));
    } catch (err) {
      throw new ModelError(`${file}: the "-- chart:" line must be a JSON object: ${(err as Error).message}`);
    }
  }
  const dependsOn = [...new Set([...text.matchAll(REF)].map((m) => m[1]!).filter((r) => r !== 'curated'))];
  const leftover = text.replace(/^\s*--.*$/gm, '').replace(REF, '').replace(PERCENTILE, '');
  if (/\{\{|\}\}/.test(leftover)) throw new ModelError(`${file}: unknown template call (only ref('...') and percentile('...', p))`);
  return { name, file, description, template: text, dependsOn, tests, ...(chart ? { chart } : {}) };
}

/** Every mart of a dataset, in dependency order. A dataset without a models folder has no marts. */
export function loadMarts(dataset: Pick<DatasetConfig, 'name'>, modelsDir = defaultModelsDir()): MartModel[] {
  const dir = path.join(modelsDir, dataset.name);
  if (!existsSync(dir)) return [];
  const marts = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => parseMart(path.basename(f, '.sql'), path.join(dir, f), readFileSync(path.join(dir, f), 'utf8')));
  return orderByDependencies(marts);
}

/** Topological order (dependencies first); unknown refs and cycles are errors naming the models. */
export function orderByDependencies(marts: MartModel[]): MartModel[] {
  const byName = new Map(marts.map((m) => [m.name, m]));
  const ordered: MartModel[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (m: MartModel, trail: string[]): void => {
    if (state.get(m.name) === 'done') return;
    if (state.get(m.name) === 'visiting') throw new ModelError(`Cycle between models: ${[...trail, m.name].join(' -> ')}`);
    state.set(m.name, 'visiting');
    for (const dep of m.dependsOn) {
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
