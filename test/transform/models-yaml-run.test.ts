/**
 * YAML-declared models and tests on DuckDB, on tiny data: each test kind passes and fails,
 * where / severity / warn_if / error_if, store_failures tables, source freshness, the
 * skip-dependents rule, --select and --tests-only.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { loadDatasetFile, parseDataset } from '../../runtime/dataset-config';
import { openObjectStore } from '../../runtime/object-store';
import { martDir } from '../../containers/transform/src/duckdb-engine';
import { runTransform, type RunSummary } from '../../containers/transform/src/transform';
import { incident, writeRawObject } from './raw-fixture';

const DATASET = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'));
const NAME = DATASET.name;
const TABLE = 'sf_fire_incidents';

/** 8 incidents: battalions B01, B02, B03, B10 twice each; :updated_at 2024-02-01T00:00:00Z. */
function workspace(rows = 8) {
  const root = mkdtempSync(path.join(tmpdir(), 'models-yaml-'));
  const rawDir = path.join(root, 'raw');
  const curatedDir = path.join(root, 'curated');
  const modelsDir = path.join(root, 'models');
  writeRawObject(rawDir, NAME, '2024-03-01', 'a', Array.from({ length: rows }, (_, i) => incident(i)));
  let n = 0;
  const ws = {
    rawDir,
    curatedDir,
    modelsDir,
    /** Replace the dataset's model folder with these files. */
    models(files: Record<string, string>): void {
      const dir = path.join(modelsDir, NAME);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      for (const [f, text] of Object.entries(files)) writeFileSync(path.join(dir, f), text);
    },
    run(extra: Partial<Parameters<typeof runTransform>[0]> = {}): Promise<RunSummary> {
      return runTransform({
        dataset: DATASET,
        engine: 'duckdb',
        rawStore: openObjectStore(rawDir),
        curatedStore: openObjectStore(curatedDir),
        runId: `run-${++n}`,
        modelsDir,
        ...extra,
      });
    },
  };
  return ws;
}

const BY_BATTALION = `SELECT battalion, count(*) AS incidents, CASE WHEN battalion IN ('B03', 'B10') THEN NULL ELSE battalion END AS code
FROM {{ ref('curated') }} GROUP BY battalion`;
/** Two branches of marts over curated: by_battalion → battalion_rank → top_battalion, and by_neighborhood. */
const BATTALION_MARTS = {
  'by_battalion.sql': BY_BATTALION,
  'battalion_rank.sql': `SELECT battalion, incidents FROM {{ ref('by_battalion') }}`,
  'top_battalion.sql': `SELECT max(incidents) AS incidents FROM {{ ref('battalion_rank') }}`,
  'by_neighborhood.sql': `SELECT neighborhood_district, count(*) AS incidents FROM {{ ref('curated') }} GROUP BY 1`,
};
const TWO_BATTALIONS = `SELECT 'B01' AS battalion UNION ALL SELECT 'B02' AS battalion`;

const byName = (s: RunSummary) => new Map(s.tests.results.map((r) => [r.name, r]));
const outcome = (s: RunSummary, name: string): [string, number] => {
  const r = byName(s).get(name);
  assert.ok(r, `no result ${name} in ${[...byName(s).keys()].join(', ')}`);
  return [r.status, r.failing];
};

async function parquetRows(file: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    return (await conn.runAndReadAll(`SELECT * FROM read_parquet('${file}') ORDER BY ALL`)).getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

describe('YAML tests on DuckDB', () => {
  test('each test kind passes and fails on tiny data', async () => {
    const ws = workspace();
    ws.models({
      'by_battalion.sql': BY_BATTALION,
      'two_battalions.sql': TWO_BATTALIONS,
      'props.yml': `version: 2
models:
  - name: two_battalions
  - name: by_battalion
    columns:
      - name: battalion
        tests:
          - not_null
          - unique
          - accepted_values: { name: av_all, values: [B01, B02, B03, B10] }
          - accepted_values: { name: av_two, values: [B01, B02] }
          - relationships: { name: rel_two, to: "ref('two_battalions')", field: battalion }
          - relationships: { name: rel_curated, to: "source('socrata', 'curated')", field: battalion }
      - name: code
        tests: [not_null, unique]
      - name: incidents
        tests:
          - unique: { name: unique_incidents }
          - accepted_values: { name: av_num_ok, values: [2], quote: false }
          - accepted_values: { name: av_num_bad, values: [1], quote: false }
          - expression_is_true: { name: col_expr_ok, expression: ">= 2" }
          - dbt_utils.accepted_range: { name: range_ok, min_value: 1, max_value: 2 }
          - dbt_utils.accepted_range: { name: range_bad, min_value: 3 }
          - dbt_utils.accepted_range: { name: range_exclusive, min_value: 2, inclusive: false }
    tests:
      - dbt_utils.expression_is_true: { name: expr_ok, expression: "incidents >= 2" }
      - dbt_utils.expression_is_true: { name: expr_bad, expression: "incidents > 2" }
      - dbt_utils.unique_combination_of_columns: { combination_of_columns: [battalion, incidents] }
      - dbt_utils.unique_combination_of_columns: { name: combo_bad, combination_of_columns: [incidents] }
`,
    });
    const s = await ws.run();
    const m = 'by_battalion.';
    const expected: Record<string, [string, number]> = {
      not_null_battalion: ['pass', 0],
      not_null_code: ['fail', 2],
      unique_code: ['pass', 0], // two nulls: unique ignores nulls, as dbt's does
      unique_battalion: ['pass', 0],
      unique_incidents: ['fail', 1], // one duplicated value (2), counted as one group
      av_all: ['pass', 0],
      av_two: ['fail', 2],
      rel_two: ['fail', 2],
      rel_curated: ['pass', 0],
      av_num_ok: ['pass', 0],
      av_num_bad: ['fail', 4],
      col_expr_ok: ['pass', 0],
      range_ok: ['pass', 0],
      range_bad: ['fail', 4],
      range_exclusive: ['fail', 4],
      expr_ok: ['pass', 0],
      expr_bad: ['fail', 4],
      unique_battalion_incidents: ['pass', 0],
      combo_bad: ['fail', 1],
    };
    for (const [name, want] of Object.entries(expected)) assert.deepEqual(outcome(s, m + name), want, name);
    assert.equal(s.status, 'tests_failed');
    assert.ok(s.failedErrorTests.includes('by_battalion.av_two'));
    // Declared on the source: the curated table's own tests run through the same machinery.
    assert.deepEqual(outcome(s, 'primary_key_unique_id'), ['pass', 0]);
  });

  test('the dataset JSON dataTests run on the same machinery: range is an inclusive accepted_range', async () => {
    const ws = workspace();
    const dataset = parseDataset(
      {
        ...JSON.parse(readFileSync(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'), 'utf8')),
        // suppression_units is i % 4: 0..3, both bounds present.
        dataTests: [
          { kind: 'range', column: 'suppression_units', min: 0, max: 3, name: 'units_in_range' },
          { kind: 'range', column: 'suppression_units', min: 1, name: 'units_at_least_one', severity: 'warn' },
        ],
      },
      'test',
    );
    const s = await ws.run({ dataset, marts: [] });
    assert.deepEqual(outcome(s, 'units_in_range'), ['pass', 0]);
    assert.deepEqual(outcome(s, 'units_at_least_one'), ['warn', 2]);
  });

  test('where, severity, warn_if and error_if decide pass / warn / fail as dbt does', async () => {
    const ws = workspace();
    // accepted_values [B01] fails for B02, B03 and B10: 3 rows.
    const av = (name: string, config: string) => `          - accepted_values: { name: ${name}, values: [B01], config: { ${config} } }\n`;
    ws.models({
      'by_battalion.sql': BY_BATTALION,
      'by_battalion.yml': `version: 2
models:
  - name: by_battalion
    columns:
      - name: code
        tests:
          - not_null: { name: where_filters, config: { where: "battalion NOT IN ('B03', 'B10')" } }
      - name: battalion
        tests:
${av('error_if_above_3', 'error_if: ">3"')}${av('error_if_above_2', 'error_if: ">2"')}${av('warn_ignores_error_if', 'severity: warn, error_if: ">0"')}${av('both_above_5', 'warn_if: ">5", error_if: ">5"')}${av('warn_band', 'warn_if: ">=3", error_if: ">10"')}${av('severity_upper_case', 'severity: WARN')}`,
    });
    const s = await ws.run();
    const m = 'by_battalion.';
    assert.deepEqual(outcome(s, `${m}where_filters`), ['pass', 0]);
    assert.deepEqual(outcome(s, `${m}error_if_above_3`), ['warn', 3]);
    assert.deepEqual(outcome(s, `${m}error_if_above_2`), ['fail', 3]);
    assert.deepEqual(outcome(s, `${m}warn_ignores_error_if`), ['warn', 3]);
    assert.deepEqual(outcome(s, `${m}both_above_5`), ['pass', 3]);
    assert.deepEqual(outcome(s, `${m}warn_band`), ['warn', 3]);
    assert.deepEqual(outcome(s, `${m}severity_upper_case`), ['warn', 3]);
    assert.deepEqual(s.failedErrorTests, [`${m}error_if_above_2`]);
    assert.equal(s.status, 'tests_failed');
    assert.equal(s.tests.failed, 1);
    assert.ok(s.tests.warned >= 4);
    assert.match(byName(s).get(`${m}error_if_above_3`)!.description, /error if > 3/);
  });

  test('store_failures keeps the failing rows in <table>__<model>__dbt_test__<test>, replaced every run', async () => {
    const ws = workspace();
    const props = (values: string) => `version: 2
sources:
  - name: socrata
    tables:
      - name: curated
        columns:
          - name: battalion
            tests:
              - accepted_values: { name: curated_known, values: [${values}], config: { store_failures: true, severity: warn } }
models:
  - name: by_battalion
    columns:
      - name: battalion
        tests:
          - accepted_values: { name: known, values: [${values}], config: { store_failures: true } }
`;
    ws.models({ 'by_battalion.sql': BY_BATTALION, 'by_battalion.yml': props('B01, B02') });
    const s1 = await ws.run();
    const mart = byName(s1).get('by_battalion.known')!;
    assert.equal(mart.failing, 2);
    assert.equal(mart.failuresTable, `curated."${TABLE}__by_battalion__dbt_test__known"`);
    const martFile = path.join(martDir(ws.curatedDir, DATASET, 'by_battalion__dbt_test__known'), 'data.parquet');
    assert.deepEqual((await parquetRows(martFile)).map((r) => r.battalion), ['B03', 'B10']);
    const curated = byName(s1).get('curated_known')!;
    assert.equal(curated.failuresTable, `curated."${TABLE}__dbt_test__curated_known"`);
    const curatedRows = await parquetRows(path.join(martDir(ws.curatedDir, DATASET, 'dbt_test__curated_known'), 'data.parquet'));
    // Whole curated rows, 2 per battalion.
    assert.deepEqual(curatedRows.map((r) => r.battalion).sort(), ['B03', 'B03', 'B10', 'B10']);
    assert.ok(curatedRows.every((r) => typeof r.incident_number === 'string'));

    // Fixed: the next run replaces the table with an empty one (no stale failures).
    ws.models({ 'by_battalion.sql': BY_BATTALION, 'by_battalion.yml': props('B01, B02, B03, B10') });
    const s2 = await ws.run();
    assert.deepEqual(outcome(s2, 'by_battalion.known'), ['pass', 0]);
    assert.deepEqual(await parquetRows(martFile), []);
  });

  test('source freshness: warn after, error after, measured lag; an error skips every mart', async () => {
    const ws = workspace();
    ws.models({
      'by_battalion.sql': BY_BATTALION,
      'sources.yml': `version: 2
sources:
  - name: socrata
    freshness: { warn_after: { count: 1, period: day } }
    tables:
      - name: curated
        freshness:
          warn_after: { count: 1, period: day }
          error_after: { count: 10, period: day }
`,
    });
    const newest = Date.parse('2024-02-01T00:00:00.000Z');
    const at = (ms: number) => ({ now: () => new Date(newest + ms) });
    const fresh = await ws.run(at(3_600_000));
    const f1 = byName(fresh).get('source_freshness')!;
    assert.deepEqual([f1.status, f1.severity, f1.freshness?.lagSeconds, f1.freshness?.loadedAtField], ['pass', 'error', 3600, '_source_updated_at']);
    assert.equal(f1.freshness?.newest, '2024-02-01T00:00:00.000Z');
    assert.equal(fresh.marts.length, 1);

    const late = await ws.run(at(2 * 86_400_000));
    const f2 = byName(late).get('source_freshness')!;
    assert.deepEqual([f2.status, f2.freshness?.lagSeconds], ['warn', 2 * 86_400]);
    assert.match(f2.description, /2\.0 days since the newest _source_updated_at/);
    assert.equal(late.status, 'succeeded');

    const stale = await ws.run(at(11 * 86_400_000));
    assert.deepEqual(outcome(stale, 'source_freshness'), ['fail', 1]);
    assert.deepEqual(stale.failedErrorTests, ['source_freshness']);
    assert.deepEqual(stale.marts, []);
    assert.deepEqual(stale.skippedModels, [{ name: 'by_battalion', reason: 'skipped: error test source_freshness failed on curated' }]);
  });

  test('a failing error test skips the models that depend on it (transitively) and their tests; other branches run', async () => {
    const ws = workspace();
    ws.models({
      ...BATTALION_MARTS,
      'props.yml': `version: 2
models:
  - name: by_battalion
    columns:
      - name: code
        tests: [not_null]
      - name: battalion
        tests:
          - accepted_values: { values: [B01], config: { severity: warn } }
  - name: battalion_rank
    columns:
      - name: battalion
        tests: [unique]
  - name: top_battalion
    columns:
      - name: incidents
        tests: [not_null]
  - name: by_neighborhood
    columns:
      - name: neighborhood_district
        tests:
          - unique
          - relationships: { name: rel_failed_parent, to: "ref('by_battalion')", field: battalion }
`,
    });
    const s = await ws.run();
    assert.deepEqual(s.marts.map((m) => m.name).sort(), ['by_battalion', 'by_neighborhood']);
    assert.deepEqual(s.skippedModels, [
      { name: 'battalion_rank', reason: 'skipped: error test by_battalion.not_null_code failed on by_battalion' },
      { name: 'top_battalion', reason: 'skipped: upstream mart battalion_rank was skipped' },
    ]);
    const rank = byName(s).get('battalion_rank.unique_battalion')!;
    assert.deepEqual([rank.status, rank.skipReason], ['skipped', 'skipped: error test by_battalion.not_null_code failed on by_battalion']);
    assert.equal(byName(s).get('top_battalion.not_null_incidents')!.status, 'skipped');
    assert.deepEqual(outcome(s, 'by_neighborhood.unique_neighborhood_district'), ['pass', 0]);
    // A relationships test reads its parent: skipped when the parent failed, its own mart still built.
    const rel = byName(s).get('by_neighborhood.rel_failed_parent')!;
    assert.deepEqual([rel.status, rel.skipReason], ['skipped', 'skipped: by_battalion failed a test (error test by_battalion.not_null_code failed on by_battalion)']);
    assert.equal(s.tests.skipped, 3);
    assert.equal(s.status, 'tests_failed');
    assert.deepEqual(s.failedErrorTests, ['by_battalion.not_null_code']);

    // A warning does not skip anything.
    ws.models({
      'by_battalion.sql': BY_BATTALION,
      'battalion_rank.sql': `SELECT battalion, incidents FROM {{ ref('by_battalion') }}`,
      'by_battalion.yml': `version: 2
models:
  - name: by_battalion
    columns:
      - name: code
        tests:
          - not_null: { config: { severity: warn } }
`,
    });
    const w = await ws.run();
    assert.deepEqual(w.marts.map((m) => m.name), ['by_battalion', 'battalion_rank']);
    assert.deepEqual(w.skippedModels, []);
    assert.equal(w.status, 'succeeded');
  });
});

describe('--select and --tests-only on DuckDB', () => {
  const files = {
    ...BATTALION_MARTS,
    'props.yml': `version: 2
models:
  - name: battalion_rank
    columns:
      - name: battalion
        tests: [unique]
  - name: by_neighborhood
    columns:
      - name: neighborhood_district
        tests: [unique]
`,
  };
  const built = (s: RunSummary) => s.marts.map((m) => m.name);

  test('--select builds the chosen marts only; +model and model+ follow the graph; refs outside the selection read the existing table', async () => {
    const ws = workspace();
    ws.models(files);
    await assert.rejects(ws.run({ select: ['battalion_rank'] }), /battalion_rank reads by_battalion, which is not selected and has no table yet; select it too \(--select \+battalion_rank\)/);
    assert.deepEqual(built(await ws.run({ select: ['+battalion_rank'] })), ['by_battalion', 'battalion_rank']);
    const one = await ws.run({ select: ['battalion_rank'] });
    assert.deepEqual(built(one), ['battalion_rank']);
    assert.deepEqual(one.tests.results.filter((r) => r.model !== 'curated').map((r) => r.name), ['battalion_rank.unique_battalion']);
    assert.deepEqual(one.selection, { select: ['battalion_rank'], testsOnly: false });
    assert.deepEqual(built(await ws.run({ select: ['by_battalion+'] })), ['by_battalion', 'battalion_rank', 'top_battalion']);
    assert.deepEqual(built(await ws.run({ select: ['top_battalion', 'by_neighborhood'] })).sort(), ['by_neighborhood', 'top_battalion']);
    assert.deepEqual(built(await ws.run({ select: ['curated'] })), []);
    assert.deepEqual(built(await ws.run({ select: ['curated+'] })).length, 4);
    // A typo is refused before anything is merged.
    writeRawObject(ws.rawDir, NAME, '2024-03-02', 'b', [incident(100)]);
    await assert.rejects(ws.run({ select: ['battalion_rnak'] }), /--select: "battalion_rnak" is not a model \(known: curated, /);
    await assert.rejects(ws.run({ select: ['by battalion'] }), /is not a model selector/);
    assert.equal((await ws.run({ select: ['curated'] })).rawObjects.new, 1);
  });

  test('--tests-only merges and builds nothing and tests the existing tables', async () => {
    const ws = workspace();
    ws.models(files);
    await assert.rejects(ws.run({ testsOnly: true }), /mart by_battalion has no table yet, so --tests-only cannot test it; build it first/);
    const first = await ws.run();
    assert.equal(first.curatedRows, 8);
    // New raw data and a test that now fails: tests-only sees the old tables and the new rule.
    writeRawObject(ws.rawDir, NAME, '2024-03-02', 'b', [incident(100), incident(101)]);
    ws.models({
      ...files,
      'props.yml': `version: 2
models:
  - name: battalion_rank
    columns:
      - name: incidents
        tests: [unique]
  - name: by_battalion
    columns:
      - name: code
        tests: [not_null]
`,
    });
    const t = await ws.run({ testsOnly: true });
    assert.deepEqual(t.marts, []);
    assert.equal(t.rawObjects.new, 0);
    assert.equal(t.rowsRead, 0);
    assert.equal(t.curatedRows, 8);
    assert.deepEqual(t.selection, { testsOnly: true });
    // Nothing is skipped in tests-only mode: battalion_rank is tested although by_battalion failed.
    assert.deepEqual(outcome(t, 'by_battalion.not_null_code'), ['fail', 2]);
    assert.deepEqual(outcome(t, 'battalion_rank.unique_incidents'), ['fail', 1]);
    assert.deepEqual(t.skippedModels, []);
    assert.equal(t.status, 'tests_failed');
    // The raw object left alone is merged by the next full run.
    const next = await ws.run();
    assert.equal(next.rawObjects.new, 1);
    assert.equal(next.curatedRows, 10);
    await assert.rejects(ws.run({ testsOnly: true, rebuild: true }), /--tests-only and a rebuild exclude each other/);
  });
});
