/**
 * Model properties in dbt's shape: `models/<dataset>/<file>.yml` beside the mart SQL.
 *
 *   version: 2
 *   sources:
 *     - name: socrata
 *       tables:
 *         - name: curated                      # the dataset's curated table (the only source)
 *           loaded_at_field: _source_updated_at
 *           freshness: { warn_after: { count: 2, period: day }, error_after: { count: 7, period: day } }
 *           columns: [{ name: ..., tests: [...] }]
 *   models:
 *     - name: battalion_totals                 # a mart: battalion_totals.sql beside this file
 *       description: ...
 *       columns: [{ name: battalion, description: ..., tests: [not_null, unique] }]
 *       tests: [{ dbt_utils.unique_combination_of_columns: { combination_of_columns: [a, b] } }]
 *       meta: { chart: { type: bar, x: battalion, y: incidents } }   # the report's chart spec (report-charts.ts)
 *
 * Validation is strict (unknown keys are errors) and every error names file:line:column and
 * the model. The supported subset is documented in docs/transform.md ("Models and tests").
 */
import { LineCounter, isMap, isPair, isScalar, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { validateTestExpression } from '../../../runtime/test-expression';
import { DEFAULT_CONFIG, parseThreshold, type ModelTest, type SourceFreshness, type TestCheck, type TestConfig } from './data-tests';
import { ModelError } from './model-error';

const IDENT = /^[a-z_][a-z0-9_]*$/;
const identifier = z.string().regex(IDENT, 'must be a lower-case SQL identifier (a-z, 0-9, _)');

const freshnessRule = z.strictObject({ count: z.number().int().positive(), period: z.enum(['minute', 'hour', 'day']) });
const freshnessSchema = z
  .strictObject({ warn_after: freshnessRule.optional(), error_after: freshnessRule.optional(), filter: z.string().optional() })
  .nullable();

const testList = z.array(z.unknown());
const columnSchema = z.strictObject({
  name: identifier,
  description: z.string().optional(),
  tests: testList.optional(),
  data_tests: testList.optional(),
  meta: z.record(z.string(), z.unknown()).optional(),
});
const metaSchema = z.looseObject({ chart: z.record(z.string(), z.unknown()).optional() });
const modelSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  columns: z.array(columnSchema).optional(),
  tests: testList.optional(),
  data_tests: testList.optional(),
  meta: metaSchema.optional(),
});
const sourceTableSchema = z.strictObject({
  name: z.literal('curated', { error: 'the only source table is the dataset\'s curated table: name it "curated"' }),
  description: z.string().optional(),
  loaded_at_field: identifier.optional(),
  freshness: freshnessSchema.optional(),
  columns: z.array(columnSchema).optional(),
  tests: testList.optional(),
  data_tests: testList.optional(),
});
const sourceSchema = z.strictObject({
  name: identifier,
  description: z.string().optional(),
  loaded_at_field: identifier.optional(),
  freshness: freshnessSchema.optional(),
  tables: z.array(sourceTableSchema).length(1, 'one table: the dataset\'s curated table'),
});
const fileSchema = z.strictObject({
  version: z.literal(2, { error: 'must be 2 (dbt\'s properties file version)' }),
  models: z.array(modelSchema).optional(),
  sources: z.array(sourceSchema).max(1, 'one source: the dataset\'s curated table').optional(),
});

const severity = z.preprocess((v) => (typeof v === 'string' ? v.toLowerCase() : v), z.enum(['error', 'warn']));
const threshold = z.string().refine((s) => parseThreshold(s) !== undefined, 'must be a comparison with a count, e.g. "!= 0", ">10", ">= 5"');
const configSchema = z.strictObject({
  where: z.string().optional(),
  severity: severity.optional(),
  warn_if: threshold.optional(),
  error_if: threshold.optional(),
  store_failures: z.boolean().optional(),
});
const common = { name: identifier.optional(), config: configSchema.optional() };
const onColumn = { ...common, column_name: identifier.optional() };
const scalarValue = z.union([z.string(), z.number(), z.boolean()]);

/** Test names as written in YAML → our kinds (dbt's generic tests and the dbt_utils ones we cover). */
const KINDS = {
  not_null: 'not_null',
  unique: 'unique',
  accepted_values: 'accepted_values',
  relationships: 'relationships',
  expression: 'expression',
  expression_is_true: 'expression',
  'dbt_utils.expression_is_true': 'expression',
  unique_combination_of_columns: 'unique_combination_of_columns',
  'dbt_utils.unique_combination_of_columns': 'unique_combination_of_columns',
  accepted_range: 'accepted_range',
  'dbt_utils.accepted_range': 'accepted_range',
} as const;
type YamlKind = (typeof KINDS)[keyof typeof KINDS];

const ARGS: Record<YamlKind, z.ZodType> = {
  not_null: z.strictObject(onColumn),
  unique: z.strictObject(onColumn),
  accepted_values: z.strictObject({ ...onColumn, values: z.array(scalarValue).min(1), quote: z.boolean().optional() }),
  relationships: z.strictObject({ ...onColumn, to: z.string(), field: identifier }),
  expression: z.strictObject({ ...onColumn, expression: z.string() }),
  unique_combination_of_columns: z.strictObject({ ...common, combination_of_columns: z.array(identifier).min(1) }),
  accepted_range: z.strictObject({ ...onColumn, min_value: z.number().optional(), max_value: z.number().optional(), inclusive: z.boolean().optional() }),
};

interface TestArgs {
  name?: string;
  config?: { where?: string; severity?: 'error' | 'warn'; warn_if?: string; error_if?: string; store_failures?: boolean };
  column_name?: string;
  values?: (string | number | boolean)[];
  quote?: boolean;
  to?: string;
  field?: string;
  expression?: string;
  combination_of_columns?: string[];
  min_value?: number;
  max_value?: number;
  inclusive?: boolean;
}

export interface ColumnDoc {
  name: string;
  description?: string;
}

/** One `models:` entry, tests resolved. */
export interface ModelDoc {
  name: string;
  description?: string;
  columns: ColumnDoc[];
  tests: ModelTest[];
  chart?: Record<string, unknown>;
  /** file:line:column of the entry. */
  origin: string;
}

/** The `sources:` entry: the curated table's freshness, columns and tests. */
export interface SourceDoc {
  description?: string;
  columns: ColumnDoc[];
  tests: ModelTest[];
  /** Absent: no freshness check (none declared, or `freshness: null`). */
  freshness?: SourceFreshness;
  /** loaded_at_field, when declared (default: see models.ts). */
  loadedAtField?: string;
  origin: string;
}

export interface PropertiesFile {
  file: string;
  models: ModelDoc[];
  source?: SourceDoc;
}

type Path = readonly PropertyKey[];

/** Positions in one YAML document, for messages. */
class Locator {
  constructor(
    private readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** `file:line:col` of the node at `path` (or of a key `key` in the map there), or of its nearest ancestor. */
  at(path: Path, key?: string): string {
    for (let n = path.length; n >= 0; n--) {
      const node = this.doc.getIn(path.slice(0, n) as unknown[], true) as unknown;
      if (n === path.length && key !== undefined && isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === key);
        const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
        if (range) return this.pos(range[0]);
      }
      const range = (node as { range?: [number, number, number] } | undefined)?.range;
      if (range) return this.pos(range[0]);
    }
    return this.file;
  }

  private pos(offset: number): string {
    const { line, col } = this.lines.linePos(offset);
    return `${this.file}:${line}:${col}`;
  }
}

/** Parse one properties file. Throws a ModelError naming file:line:col (and the model) on the first problem. */
export function parsePropertiesFile(file: string, text: string): PropertiesFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const loc = new Locator(file, doc, lines);
  const [yamlError] = doc.errors;
  if (yamlError) {
    const { line, col } = lines.linePos(yamlError.pos[0]);
    throw new ModelError(`${file}:${line}:${col}: ${yamlError.message.split('\n')[0]} (not valid YAML)`);
  }
  const value: unknown = doc.toJS();
  const whose = (path: Path): string => {
    const [section, index] = path;
    const entry = typeof index === 'number' ? (value as Record<string, { name?: unknown }[] | undefined> | null)?.[String(section)]?.[index] : undefined;
    return typeof entry?.name === 'string' ? `${section === 'models' ? 'model' : 'source'} "${entry.name}": ` : '';
  };
  const fail = (path: Path, message: string, key?: string): never => {
    throw new ModelError(`${loc.at(path, key)}: ${whose(path)}${message}`);
  };
  const check = <T>(schema: z.ZodType<T>, v: unknown, base: Path): T => {
    const parsed = schema.safeParse(v);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0]!;
    const path = [...base, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      const [key] = issue.keys;
      return fail(path, `unknown key "${key}"${path.length ? ` in ${dotted(path)}` : ''} (see docs/transform.md "Models and tests" for what is supported)`, key);
    }
    return fail(path, `${dotted(path) || 'file'}: ${issue.message}`);
  };

  const parsed = check(fileSchema, value ?? {}, []);
  const models: ModelDoc[] = (parsed.models ?? []).map((m, i) => {
    const path = ['models', i];
    const tests = [
      ...modelLevelTests(m, path, m.name, fail, check, loc),
      ...(m.columns ?? []).flatMap((c, ci) => columnTests(c, [...path, 'columns', ci], m.name, fail, check, loc)),
    ];
    return {
      name: m.name,
      ...(m.description !== undefined ? { description: m.description.trim() } : {}),
      columns: (m.columns ?? []).map((c) => ({ name: c.name, ...(c.description !== undefined ? { description: c.description.trim() } : {}) })),
      tests,
      ...(m.meta?.chart ? { chart: m.meta.chart } : {}),
      origin: loc.at(path),
    };
  });

  let source: SourceDoc | undefined;
  const s = parsed.sources?.[0];
  if (s) {
    const t = s.tables[0]!;
    const path = ['sources', 0, 'tables', 0];
    const freshness = t.freshness !== undefined ? t.freshness : s.freshness;
    const loadedAtField = t.loaded_at_field ?? s.loaded_at_field;
    if (freshness) {
      const fpath = t.freshness !== undefined ? [...path, 'freshness'] : ['sources', 0, 'freshness'];
      if (!freshness.warn_after && !freshness.error_after) fail(fpath, 'freshness needs warn_after and/or error_after (or freshness: null for none)');
      if (freshness.filter !== undefined) {
        const problem = validateTestExpression(freshness.filter);
        if (problem) fail([...fpath, 'filter'], `freshness filter ${problem}`);
      }
    }
    source = {
      ...(t.description ?? s.description ? { description: (t.description ?? s.description)!.trim() } : {}),
      columns: (t.columns ?? []).map((c) => ({ name: c.name, ...(c.description !== undefined ? { description: c.description.trim() } : {}) })),
      tests: [
        ...modelLevelTests(t, path, 'curated', fail, check, loc),
        ...(t.columns ?? []).flatMap((c, ci) => columnTests(c, [...path, 'columns', ci], 'curated', fail, check, loc)),
      ],
      ...(freshness
        ? {
            freshness: {
              loadedAtField: loadedAtField ?? '',
              ...(freshness.warn_after ? { warnAfter: freshness.warn_after } : {}),
              ...(freshness.error_after ? { errorAfter: freshness.error_after } : {}),
              ...(freshness.filter !== undefined ? { filter: freshness.filter } : {}),
            },
          }
        : {}),
      ...(loadedAtField ? { loadedAtField } : {}),
      origin: loc.at(path),
    };
  }
  return { file, models, ...(source ? { source } : {}) };
}

const dotted = (path: Path): string => path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');

type Fail = (path: Path, message: string, key?: string) => never;
type Check = <T>(schema: z.ZodType<T>, v: unknown, base: Path) => T;

function modelLevelTests(
  entry: { tests?: unknown[] | undefined; data_tests?: unknown[] | undefined },
  path: Path,
  model: string,
  fail: Fail,
  check: Check,
  loc: Locator,
): ModelTest[] {
  return testEntries(entry, path, fail).map(([t, p]) => parseTest(t, p, model, undefined, fail, check, loc));
}

function columnTests(column: { name: string; tests?: unknown[] | undefined; data_tests?: unknown[] | undefined }, path: Path, model: string, fail: Fail, check: Check, loc: Locator): ModelTest[] {
  return testEntries(column, path, fail).map(([t, p]) => parseTest(t, p, model, column.name, fail, check, loc));
}

/** `tests:` or dbt 1.8's `data_tests:` (one of them). */
function testEntries(entry: { tests?: unknown[] | undefined; data_tests?: unknown[] | undefined }, path: Path, fail: Fail): [unknown, Path][] {
  if (entry.tests && entry.data_tests) fail(path, 'declare tests under "tests" or "data_tests", not both', 'data_tests');
  const key = entry.data_tests ? 'data_tests' : 'tests';
  return (entry[key] ?? []).map((t, i) => [t, [...path, key, i]]);
}

function parseTest(entry: unknown, path: Path, model: string, column: string | undefined, fail: Fail, check: Check, loc: Locator): ModelTest {
  let written: string;
  let rawArgs: unknown;
  let argsPath: Path;
  if (typeof entry === 'string') {
    written = entry;
    rawArgs = {};
    argsPath = path;
  } else if (entry && typeof entry === 'object' && !Array.isArray(entry) && Object.keys(entry).length === 1) {
    written = Object.keys(entry)[0]!;
    rawArgs = (entry as Record<string, unknown>)[written] ?? {};
    argsPath = [...path, written];
  } else {
    return fail(path, 'a test is a name ("not_null") or a map with one key, the test name, holding its arguments ({ accepted_values: { values: [...] } })');
  }
  const kind = (KINDS as Record<string, YamlKind | undefined>)[written];
  if (!kind) return fail(path, `unknown test "${written}"; supported: ${Object.keys(KINDS).join(', ')}`);
  const args = check(ARGS[kind], rawArgs, argsPath) as TestArgs;
  if (args.column_name && column) fail(argsPath, `column_name is for model-level tests; this test is already on column "${column}"`, 'column_name');
  const col = column ?? args.column_name;
  const needsColumn = (): string => col ?? fail(argsPath, `${written} needs a column: declare it under columns[].tests, or give column_name`);
  const origin = loc.at(path);

  let check_: TestCheck;
  let short: string;
  switch (kind) {
    case 'not_null':
      check_ = { kind: 'not_null', column: needsColumn() };
      short = `not_null_${check_.column}`;
      break;
    case 'unique':
      check_ = { kind: 'unique', columns: [needsColumn()], ignoreNulls: true };
      short = `unique_${col}`;
      break;
    case 'unique_combination_of_columns':
      if (column) fail(path, `${written} is a model-level test (it names its columns); move it to the model's tests`);
      check_ = { kind: 'unique', columns: args.combination_of_columns!, ignoreNulls: false };
      short = `unique_${args.combination_of_columns!.join('_')}`;
      break;
    case 'accepted_values': {
      const quote = args.quote ?? true;
      if (!quote && args.values!.some((v) => typeof v === 'string')) {
        fail([...argsPath, 'values'], 'quote: false takes numbers or booleans only (strings would be spliced into SQL); drop quote: false to compare as text');
      }
      check_ = { kind: 'accepted_values', column: needsColumn(), values: args.values!, quote };
      short = `accepted_values_${col}`;
      break;
    }
    case 'accepted_range':
      if (args.min_value === undefined && args.max_value === undefined) fail(argsPath, `${written} needs min_value and/or max_value`);
      check_ = {
        kind: 'accepted_range',
        column: needsColumn(),
        inclusive: args.inclusive ?? true,
        ...(args.min_value !== undefined ? { min: args.min_value } : {}),
        ...(args.max_value !== undefined ? { max: args.max_value } : {}),
      };
      short = `accepted_range_${col}`;
      break;
    case 'relationships': {
      const to = /^\s*ref\(\s*['"]([a-z][a-z0-9_]*)['"]\s*\)\s*$/.exec(args.to!)?.[1] ?? (/^\s*source\(\s*['"][a-z0-9_]+['"]\s*,\s*['"]curated['"]\s*\)\s*$/.test(args.to!) ? 'curated' : undefined);
      if (!to) fail([...argsPath, 'to'], `relationships.to must be ref('<model>') or source('<source>', 'curated'), got "${args.to}"`);
      check_ = { kind: 'relationships', column: needsColumn(), to: to!, field: args.field! };
      short = `relationships_${col}_to_${to}_${args.field}`;
      break;
    }
    case 'expression': {
      const expression = args.expression!;
      const problem = validateTestExpression(col ? `${col} ${expression}` : expression);
      if (problem) fail([...argsPath, 'expression'], `expression test ${args.name ? `"${args.name}" ` : ''}${problem}`);
      check_ = { kind: 'expression', expression, ...(col ? { column: col } : {}) };
      short = `expression_is_true_${(col ? `${col}_` : '') + expression.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 40)}`;
      break;
    }
  }
  const c = args.config ?? {};
  if (c.where !== undefined) {
    const problem = validateTestExpression(c.where);
    if (problem) fail([...argsPath, 'config', 'where'], `where ${problem}`);
  }
  const config: TestConfig = {
    severity: c.severity ?? DEFAULT_CONFIG.severity,
    warnIf: c.warn_if !== undefined ? parseThreshold(c.warn_if)! : DEFAULT_CONFIG.warnIf,
    errorIf: c.error_if !== undefined ? parseThreshold(c.error_if)! : DEFAULT_CONFIG.errorIf,
    storeFailures: c.store_failures ?? false,
    ...(c.where !== undefined ? { where: c.where } : {}),
  };
  const name = args.name ?? short;
  return { name: model === 'curated' ? name : `${model}.${name}`, model, check: check_, config, origin };
}
