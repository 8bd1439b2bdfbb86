/**
 * Data tests, the dbt way: each test is a SELECT of the rows (or groups) that break its rule
 * (`failuresSql`); the test counts them, compares the count with its `warn_if` / `error_if`
 * thresholds and, with `store_failures`, keeps them in a table. Every dataset gets not-null +
 * unique on its primary key; the dataset JSON adds its own (`dataTests`) and the YAML beside the
 * mart SQL adds model and source tests (model-yaml.ts). Source freshness is reported as a test
 * result too. Reconciliation against the raw zone is engine-specific and run by the transform.
 */
import type { DataTestConfig, DatasetConfig } from '../../../runtime/dataset-config';
import { ident, literal } from './dialect';
import { plainValue, scalar, type TransformEngine } from './engine';
import { instantOf } from './freshness';

export type Severity = 'error' | 'warn';

/** A `warn_if` / `error_if` condition on the failure count, e.g. `!= 0` (dbt's default) or `>10`. */
export interface Threshold {
  op: '=' | '!=' | '>' | '>=' | '<' | '<=';
  value: number;
}

export interface TestConfig {
  /** Only rows matching this boolean SQL expression are tested (dbt `config.where`). */
  where?: string;
  severity: Severity;
  warnIf: Threshold;
  errorIf: Threshold;
  /** Keep the failing rows in `<table>__[<model>__]dbt_test__<test>`, replaced every run. */
  storeFailures: boolean;
}

/** What a test checks; `unique` covers dbt's `unique` (one column) and dbt_utils.unique_combination_of_columns. */
export type TestCheck =
  | { kind: 'not_null'; column: string }
  | { kind: 'unique'; columns: string[]; ignoreNulls: boolean }
  | { kind: 'accepted_values'; column: string; values: (string | number | boolean)[]; quote: boolean }
  | { kind: 'accepted_range'; column: string; min?: number; max?: number; inclusive: boolean }
  | { kind: 'relationships'; column: string; to: string; field: string }
  | { kind: 'expression'; expression: string; column?: string };

export interface ModelTest {
  /** Result name: `<test>` on curated, `<model>.<test>` on a mart. */
  name: string;
  /** 'curated' or a mart name. */
  model: string;
  check: TestCheck;
  config: TestConfig;
  /** Where it was declared (file:line, or the dataset file), for messages. */
  origin: string;
}

export interface DataTestResult {
  name: string;
  severity: Severity;
  model: string;
  description: string;
  /** warn: the warn_if threshold was met (and error_if was not, or severity is warn); skipped: see skipReason. */
  status: 'pass' | 'warn' | 'fail' | 'skipped';
  failing: number;
  /** Why the test did not run (an upstream error test failed, or its model was skipped). */
  skipReason?: string;
  /** The table holding this run's failing rows (store_failures). */
  failuresTable?: string;
  /** source_freshness only: what was measured. */
  freshness?: FreshnessMeasure;
  /** A failing or warning test: a few of the values (or rows) that break it (see sampleSql). */
  samples?: FailingSamples;
}

/**
 * Examples of what fails a test, at most SAMPLE_LIMIT: for a column rule the failing values with
 * their row counts, most frequent first; for unique the duplicated groups; otherwise the failing
 * rows (on curated: the key and the columns the rule names).
 */
export interface FailingSamples {
  /** values: a column's failing values with their row counts; groups: duplicated keys with theirs; rows: failing rows. */
  kind: 'values' | 'groups' | 'rows';
  columns: string[];
  rows: (string | number | boolean | null)[][];
}

export const SAMPLE_LIMIT = 5;

export interface FreshnessMeasure {
  loadedAtField: string;
  /** Newest loaded_at_field value (ISO, UTC), or null when no row has one. */
  newest: string | null;
  /** now − newest, in seconds; null when there is no row. */
  lagSeconds: number | null;
  warnAfterSeconds?: number;
  errorAfterSeconds?: number;
}

export const DEFAULT_THRESHOLD: Threshold = { op: '!=', value: 0 };
export const DEFAULT_CONFIG: TestConfig = { severity: 'error', warnIf: DEFAULT_THRESHOLD, errorIf: DEFAULT_THRESHOLD, storeFailures: false };

const THRESHOLD = /^\s*(!=|<>|>=|<=|==|=|>|<)\s*(\d+)\s*$/;

/** Parse dbt's threshold text (`!= 0`, `>10`, `>= 5`, `<>0`); undefined when it is not one. */
export function parseThreshold(text: string): Threshold | undefined {
  const m = THRESHOLD.exec(text);
  if (!m) return undefined;
  const op = m[1] === '<>' ? '!=' : m[1] === '==' ? '=' : (m[1] as Threshold['op']);
  return { op, value: Number(m[2]) };
}

export function thresholdText(t: Threshold): string {
  return `${t.op} ${t.value}`;
}

function meets(count: number, t: Threshold): boolean {
  switch (t.op) {
    case '=':
      return count === t.value;
    case '!=':
      return count !== t.value;
    case '>':
      return count > t.value;
    case '>=':
      return count >= t.value;
    case '<':
      return count < t.value;
    case '<=':
      return count <= t.value;
  }
}

/** dbt's rule: severity error and error_if met → fail; else warn_if met → warn; else pass. */
export function testStatus(failing: number, config: Pick<TestConfig, 'severity' | 'warnIf' | 'errorIf'>): 'pass' | 'warn' | 'fail' {
  if (config.severity === 'error' && meets(failing, config.errorIf)) return 'fail';
  if (meets(failing, config.warnIf)) return 'warn';
  return 'pass';
}

const valueSql = (v: string | number | boolean, quote: boolean): string =>
  quote ? literal(String(v)) : typeof v === 'boolean' ? (v ? 'TRUE' : 'FALSE') : String(v);

export function describeTest(t: ModelTest): string {
  const c = t.check;
  let text: string;
  switch (c.kind) {
    case 'not_null':
      text = `${c.column} is never null`;
      break;
    case 'unique':
      text = c.columns.length === 1 ? `one row per ${c.columns[0]}${c.ignoreNulls ? ' (nulls ignored)' : ''}` : `one row per (${c.columns.join(', ')})`;
      break;
    case 'accepted_values':
      text = `${c.column} in (${c.values.join(', ')}) (null passes)`;
      break;
    case 'accepted_range':
      text = `${c.column} within ${c.inclusive ? '[' : '('}${c.min ?? '-inf'}, ${c.max ?? '+inf'}${c.inclusive ? ']' : ')'} (null passes)`;
      break;
    case 'relationships':
      text = `every ${c.column} is a ${c.field} of ${c.to} (null passes)`;
      break;
    case 'expression':
      text = `${c.column ? `${c.column} ` : ''}${c.expression} holds for every row (null passes)`;
      break;
  }
  const extras = [
    ...(t.config.where ? [`where ${t.config.where}`] : []),
    ...(thresholdText(t.config.errorIf) !== thresholdText(DEFAULT_THRESHOLD) && t.config.severity === 'error' ? [`error if ${thresholdText(t.config.errorIf)}`] : []),
    ...(thresholdText(t.config.warnIf) !== thresholdText(DEFAULT_THRESHOLD) ? [`warn if ${thresholdText(t.config.warnIf)}`] : []),
  ];
  return extras.length ? `${text}; ${extras.join('; ')}` : text;
}

/**
 * The rows (unique: the duplicated groups) that break the test, as one SELECT. `ref` maps
 * 'curated' or a mart name to a table reference (relationships reads its `to` model).
 */
export function failuresSql(t: ModelTest, ref: (model: string) => string): string {
  const table = ref(t.model);
  // dbt applies `where` by testing a filtered copy of the model.
  const from = t.config.where ? `(SELECT * FROM ${table} WHERE ${t.config.where}) AS model_rows` : `${table} AS model_rows`;
  const c = t.check;
  switch (c.kind) {
    case 'not_null':
      return `SELECT * FROM ${from} WHERE ${ident(c.column)} IS NULL`;
    case 'unique': {
      const cols = c.columns.map(ident).join(', ');
      const notNull = c.ignoreNulls ? ` WHERE ${c.columns.map((col) => `${ident(col)} IS NOT NULL`).join(' AND ')}` : '';
      return `SELECT ${cols}, count(*) AS n_records FROM ${from}${notNull} GROUP BY ${cols} HAVING count(*) > 1`;
    }
    case 'accepted_values': {
      // Quoted values compare as text: Trino refuses a bigint or boolean IN a list of strings (DuckDB casts).
      const subject = c.quote ? `CAST(${ident(c.column)} AS VARCHAR)` : ident(c.column);
      return `SELECT * FROM ${from} WHERE ${ident(c.column)} IS NOT NULL AND ${subject} NOT IN (${c.values.map((v) => valueSql(v, c.quote)).join(', ')})`;
    }
    case 'accepted_range': {
      const col = ident(c.column);
      const conds = [
        ...(c.min !== undefined ? [`${col} ${c.inclusive ? '<' : '<='} ${c.min}`] : []),
        ...(c.max !== undefined ? [`${col} ${c.inclusive ? '>' : '>='} ${c.max}`] : []),
      ];
      return `SELECT * FROM ${from} WHERE ${conds.length ? conds.join(' OR ') : 'FALSE'}`;
    }
    case 'relationships':
      return (
        `SELECT * FROM ${from} WHERE ${ident(c.column)} IS NOT NULL AND NOT EXISTS ` +
        `(SELECT 1 FROM ${ref(c.to)} AS parent_rows WHERE parent_rows.${ident(c.field)} = model_rows.${ident(c.column)})`
      );
    case 'expression':
      return `SELECT * FROM ${from} WHERE NOT (${c.column ? `${ident(c.column)} ${c.expression}` : c.expression})`;
  }
}

/** The query counting a test's failures (tests without store_failures). */
export function countSql(t: ModelTest, ref: (model: string) => string): string {
  return `SELECT count(*) AS failing FROM (${failuresSql(t, ref)}) AS test_failures`;
}

/** Catalog model name (mart-table suffix) of a test's stored failures: `[<model>__]dbt_test__<test>`. */
export function failuresModelName(t: Pick<ModelTest, 'name' | 'model'>): string {
  const short = t.model === 'curated' ? t.name : t.name.slice(t.model.length + 1);
  // Single underscores only: "__" separates the parts of catalog names (see martTableName).
  const safe = short.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 120);
  return `${t.model === 'curated' ? '' : `${t.model}__`}dbt_test__${safe}`;
}

/** The column a rule is about, when it has one (the failing values are then grouped by it). */
function ruleColumn(c: TestCheck): string | undefined {
  switch (c.kind) {
    case 'accepted_values':
    case 'accepted_range':
    case 'relationships':
      return c.column;
    case 'expression':
      return c.column;
    default:
      return undefined;
  }
}

/**
 * The query of a failing test's examples, from its failures (`failures`: a table or a
 * parenthesized query, aliased). Ordered on both engines alike, so both show the same examples.
 * `columns`: the row-level columns to show (curated: its key and the columns the rule names;
 * undefined: every column of the model's failing rows).
 */
export function sampleSql(t: ModelTest, failures: string, columns?: readonly string[]): { kind: FailingSamples['kind']; sql: string; columns?: string[] } {
  const c = t.check;
  if (c.kind === 'unique') {
    const cols = c.columns.map(ident).join(', ');
    return { kind: 'groups', sql: `SELECT ${cols}, n_records FROM ${failures} ORDER BY n_records DESC, ${cols} LIMIT ${SAMPLE_LIMIT}`, columns: [...c.columns, 'rows'] };
  }
  const column = ruleColumn(c);
  if (column) {
    const col = ident(column);
    return {
      kind: 'values',
      sql: `SELECT ${col} AS failing_value, count(*) AS failing_rows FROM ${failures} GROUP BY ${col} ORDER BY count(*) DESC, ${col} LIMIT ${SAMPLE_LIMIT}`,
      columns: [column, 'rows'],
    };
  }
  if (!columns?.length) return { kind: 'rows', sql: `SELECT * FROM ${failures} ORDER BY 1 LIMIT ${SAMPLE_LIMIT}` };
  return { kind: 'rows', sql: `SELECT ${columns.map(ident).join(', ')} FROM ${failures} ORDER BY ${ident(columns[0]!)} LIMIT ${SAMPLE_LIMIT}`, columns: [...columns] };
}

/** On curated (wide rows): the key, then the declared columns the rule mentions. */
function curatedSampleColumns(t: ModelTest, dataset: Pick<DatasetConfig, 'primaryKey' | 'columns'> | undefined): string[] | undefined {
  if (t.model !== 'curated' || !dataset) return undefined;
  const c = t.check;
  const text = c.kind === 'expression' ? c.expression : c.kind === 'not_null' ? c.column : '';
  const named = dataset.columns.map((x) => x.name).filter((n) => n !== dataset.primaryKey && new RegExp(`\\b${n}\\b`).test(text));
  return [dataset.primaryKey, ...named];
}

/** A driver value as the summary keeps it (JSON scalars). */
function sampleValue(v: unknown): string | number | boolean | null {
  const p = plainValue(v);
  if (p === null || p === undefined) return null;
  return typeof p === 'number' || typeof p === 'boolean' || typeof p === 'string' ? p : JSON.stringify(p);
}

/** Engine operations a test needs: count a query, or build a table from it (store_failures); the dataset names curated's key. */
export type TestEngine = Pick<TransformEngine, 'rows' | 'tableRef' | 'materializeMart'> & Partial<Pick<TransformEngine, 'dataset'>>;

/** A few examples of what fails the test (bounded by SAMPLE_LIMIT). */
export async function failingSamples(engine: TestEngine, t: ModelTest, failuresTable?: string): Promise<FailingSamples> {
  const from = failuresTable ? `${failuresTable} AS test_failures` : `(${failuresSql(t, (m) => engine.tableRef(m))}) AS test_failures`;
  const q = sampleSql(t, from, curatedSampleColumns(t, engine.dataset));
  const rows = await engine.rows(q.sql, `samples of ${t.name}`);
  const columns = q.columns ?? Object.keys(rows[0] ?? {});
  return { kind: q.kind, columns, rows: rows.map((r) => Object.values(r).map(sampleValue)) };
}

/** Run one test: count (or store) its failures and judge them against its thresholds. */
export async function runTest(engine: TestEngine, t: ModelTest): Promise<DataTestResult> {
  const ref = (m: string): string => engine.tableRef(m);
  let failing: number;
  let failuresTable: string | undefined;
  if (t.config.storeFailures) {
    const name = failuresModelName(t);
    // Built (and replaced) every run, also when empty: a stale table would show fixed rows as failing.
    failing = await engine.materializeMart(name, failuresSql(t, ref));
    failuresTable = engine.tableRef(name);
  } else {
    failing = await scalar(engine as TransformEngine, countSql(t, ref));
  }
  const status = testStatus(failing, t.config);
  // Only for tests a person has to look at: a passing test costs no second query.
  const samples = status !== 'pass' && failing > 0 ? await failingSamples(engine, t, failuresTable) : undefined;
  return {
    name: t.name,
    severity: t.config.severity,
    model: t.model,
    description: describeTest(t),
    status,
    failing,
    ...(failuresTable ? { failuresTable } : {}),
    ...(samples ? { samples } : {}),
  };
}

/** A skipped test's result. */
export function skippedResult(t: ModelTest, reason: string): DataTestResult {
  return { name: t.name, severity: t.config.severity, model: t.model, description: describeTest(t), status: 'skipped', failing: 0, skipReason: reason };
}

/** A dataset JSON `dataTests` entry on the same machinery (names as before: `<kind>_<column>`). */
export function fromDatasetTest(t: DataTestConfig, origin: string): ModelTest {
  const config: TestConfig = { ...DEFAULT_CONFIG, severity: t.severity };
  const name = t.name ?? `${t.kind}_${'column' in t ? t.column : ''}`;
  switch (t.kind) {
    case 'not_null':
      return { name, model: 'curated', check: { kind: 'not_null', column: t.column }, config, origin };
    case 'accepted_values':
      return { name, model: 'curated', check: { kind: 'accepted_values', column: t.column, values: t.values, quote: true }, config, origin };
    case 'range':
      return {
        name,
        model: 'curated',
        check: { kind: 'accepted_range', column: t.column, inclusive: true, ...(t.min !== undefined ? { min: t.min } : {}), ...(t.max !== undefined ? { max: t.max } : {}) },
        config,
        origin,
      };
    case 'expression':
      return { name: t.name, model: 'curated', check: { kind: 'expression', expression: t.expression }, config, origin };
  }
}

/** Tests on the curated table: primary key not-null + unique (error), then the dataset JSON's own. */
export function curatedTests(dataset: DatasetConfig): ModelTest[] {
  const pk = dataset.primaryKey;
  const origin = `dataset ${dataset.name}`;
  return [
    { name: `primary_key_not_null_${pk}`, model: 'curated', check: { kind: 'not_null', column: pk }, config: DEFAULT_CONFIG, origin },
    { name: `primary_key_unique_${pk}`, model: 'curated', check: { kind: 'unique', columns: [pk], ignoreNulls: false }, config: DEFAULT_CONFIG, origin },
    ...dataset.dataTests.map((t) => fromDatasetTest(t, `${origin} (dataTests)`)),
  ];
}

export const FRESHNESS_TEST = 'source_freshness';

export type FreshnessPeriod = 'minute' | 'hour' | 'day';
export interface FreshnessRule {
  count: number;
  period: FreshnessPeriod;
}

/** The curated source's freshness rule (dbt `sources[].tables[].freshness`). */
export interface SourceFreshness {
  loadedAtField: string;
  warnAfter?: FreshnessRule;
  errorAfter?: FreshnessRule;
  /** Only rows matching this expression count (dbt `freshness.filter`). */
  filter?: string;
}

const PERIOD_SECONDS: Record<FreshnessPeriod, number> = { minute: 60, hour: 3600, day: 86_400 };
const ruleSeconds = (r: FreshnessRule): number => r.count * PERIOD_SECONDS[r.period];
const ruleText = (r: FreshnessRule): string => `${r.count} ${r.period}${r.count === 1 ? '' : 's'}`;

export function freshnessSql(f: SourceFreshness, table: string): string {
  return `SELECT max(${ident(f.loadedAtField)}) AS newest FROM ${table}${f.filter ? ` WHERE ${f.filter}` : ''}`;
}

/** Freshness of curated: now − max(loaded_at_field), judged against warn_after / error_after. */
export async function runFreshness(engine: Pick<TransformEngine, 'rows' | 'tableRef'>, f: SourceFreshness, now: Date): Promise<DataTestResult> {
  const [row] = await engine.rows(freshnessSql(f, engine.tableRef('curated')));
  const raw = row?.newest;
  const newest = instantOf(raw);
  if (raw !== null && raw !== undefined && !newest) {
    throw new Error(`source freshness: ${f.loadedAtField} returned ${JSON.stringify(raw)}, not a timestamp; point loaded_at_field at a timestamp column`);
  }
  const lagSeconds = newest ? Math.round((now.getTime() - newest.getTime()) / 1000) : null;
  const over = (r: FreshnessRule | undefined): boolean => !!r && (lagSeconds === null || lagSeconds > ruleSeconds(r));
  const status = over(f.errorAfter) ? 'fail' : over(f.warnAfter) ? 'warn' : 'pass';
  const lagText = lagSeconds === null ? 'no rows' : `${formatLag(lagSeconds)} since the newest ${f.loadedAtField} (${newest!.toISOString()})`;
  const rules = [...(f.warnAfter ? [`warn after ${ruleText(f.warnAfter)}`] : []), ...(f.errorAfter ? [`error after ${ruleText(f.errorAfter)}`] : [])];
  return {
    name: FRESHNESS_TEST,
    severity: f.errorAfter ? 'error' : 'warn',
    model: 'curated',
    description: `${lagText}; ${rules.join(', ')}${f.filter ? `; where ${f.filter}` : ''}`,
    status,
    failing: status === 'pass' ? 0 : 1,
    freshness: {
      loadedAtField: f.loadedAtField,
      newest: newest ? newest.toISOString() : null,
      lagSeconds,
      ...(f.warnAfter ? { warnAfterSeconds: ruleSeconds(f.warnAfter) } : {}),
      ...(f.errorAfter ? { errorAfterSeconds: ruleSeconds(f.errorAfter) } : {}),
    },
  };
}

function formatLag(seconds: number): string {
  const abs = Math.abs(seconds);
  const text = abs >= 86_400 ? `${(abs / 86_400).toFixed(1)} days` : abs >= 3600 ? `${(abs / 3600).toFixed(1)} hours` : `${Math.round(abs / 60)} minutes`;
  return seconds < 0 ? `${text} in the future` : text;
}
