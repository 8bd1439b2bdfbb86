/**
 * The dbt-shaped YAML beside the mart SQL: what it maps to, errors with file:line:column, the
 * Athena SQL of every test kind (Trino grammar), --select resolution, and the container's flags.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { TrinoSQL } from 'dt-sql-parser';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { martCtasSql } from '../../containers/transform/src/athena-sql';
import { countSql, failuresModelName, failuresSql, freshnessSql } from '../../containers/transform/src/data-tests';
import { EXIT, main, USAGE } from '../../containers/transform/src/main';
import { parsePropertiesFile } from '../../containers/transform/src/model-yaml';
import { loadMarts, loadProject, selectMarts, type MartModel } from '../../containers/transform/src/models';
import { incident, writeRawObject } from './raw-fixture';

const DATASET_FILE = path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json');
const DATASET = loadDatasetFile(DATASET_FILE);

const FULL = `version: 2
sources:
  - name: socrata
    tables:
      - name: curated
        freshness:
          warn_after: { count: 2, period: day }
          error_after: { count: 7, period: day }
          filter: "battalion IS NOT NULL"
        columns:
          - name: battalion
            description: the battalion
            data_tests:
              - accepted_values: { values: [B01, B02], config: { severity: warn } }
models:
  - name: m
    description: " a mart "
    meta:
      owner: fire
      chart: { mark: bar }
    columns:
      - name: a
        description: column a
        tests:
          - not_null
          - unique:
              config: { where: "a > 0", severity: warn, warn_if: ">10", error_if: ">= 100", store_failures: true }
          - accepted_values: { values: [1, 2, true], quote: false }
          - relationships: { to: "ref('n')", field: b }
          - expression_is_true: { expression: "> 0" }
          - dbt_utils.accepted_range: { min_value: 0, max_value: 5, inclusive: false }
    tests:
      - dbt_utils.unique_combination_of_columns: { combination_of_columns: [a, b] }
      - dbt_utils.expression_is_true: { name: ordered, expression: "a <= b" }
      - not_null: { column_name: b }
`;

function errorOf(text: string, file = 'models/x/p.yml'): string {
  try {
    parsePropertiesFile(file, text);
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail(`no error for:\n${text}`);
}

describe('YAML properties', () => {
  test('every supported key maps onto a test, its config and the model docs', () => {
    const p = parsePropertiesFile('models/x/p.yml', FULL);
    const [m] = p.models;
    assert.equal(m!.description, 'a mart');
    assert.deepEqual(m!.chart, { mark: 'bar' });
    assert.deepEqual(m!.columns, [{ name: 'a', description: 'column a' }]);
    const t = new Map(m!.tests.map((x) => [x.name, x]));
    assert.deepEqual([...t.keys()], [
      'm.unique_a_b',
      'm.ordered',
      'm.not_null_b',
      'm.not_null_a',
      'm.unique_a',
      'm.accepted_values_a',
      'm.relationships_a_to_n_b',
      'm.expression_is_true_a_0',
      'm.accepted_range_a',
    ]);
    assert.deepEqual(t.get('m.unique_a')!.config, { where: 'a > 0', severity: 'warn', warnIf: { op: '>', value: 10 }, errorIf: { op: '>=', value: 100 }, storeFailures: true });
    assert.deepEqual(t.get('m.unique_a')!.check, { kind: 'unique', columns: ['a'], ignoreNulls: true });
    assert.deepEqual(t.get('m.unique_a_b')!.check, { kind: 'unique', columns: ['a', 'b'], ignoreNulls: false });
    assert.deepEqual(t.get('m.accepted_values_a')!.check, { kind: 'accepted_values', column: 'a', values: [1, 2, true], quote: false });
    assert.deepEqual(t.get('m.relationships_a_to_n_b')!.check, { kind: 'relationships', column: 'a', to: 'n', field: 'b' });
    assert.deepEqual(t.get('m.expression_is_true_a_0')!.check, { kind: 'expression', expression: '> 0', column: 'a' });
    assert.deepEqual(t.get('m.accepted_range_a')!.check, { kind: 'accepted_range', column: 'a', min: 0, max: 5, inclusive: false });
    assert.deepEqual(t.get('m.not_null_b')!.check, { kind: 'not_null', column: 'b' });
    assert.equal(t.get('m.not_null_a')!.origin, 'models/x/p.yml:25:13');
    assert.deepEqual(p.source!.freshness, {
      loadedAtField: '',
      warnAfter: { count: 2, period: 'day' },
      errorAfter: { count: 7, period: 'day' },
      filter: 'battalion IS NOT NULL',
    });
    assert.deepEqual(p.source!.tests.map((x) => [x.name, x.model, x.config.severity]), [['accepted_values_battalion', 'curated', 'warn']]);
  });

  test('unknown keys and bad values name file:line:column and the model', () => {
    const cases: [string, RegExp][] = [
      [FULL.replace('store_failures: true', 'store_failure: true'), /^models\/x\/p\.yml:27:93: model "m": unknown key "store_failure" in models\[0\]\.columns\[0\]\.tests\[1\]\.unique\.config/],
      [FULL.replace('    description: " a mart "', '    descripton: " a mart "'), /^models\/x\/p\.yml:17:5: model "m": unknown key "descripton" in models\[0\]/],
      [FULL.replace('        description: column a\n', '        description: column a\n        data_type: int\n'), /^models\/x\/p\.yml:24:9: model "m": unknown key "data_type" in models\[0\]\.columns\[0\]/],
      [`${FULL}seeds: []\n`, /^models\/x\/p\.yml:36:1: unknown key "seeds"/],
      [FULL.replace('warn_if: ">10"', 'warn_if: "more than 10"'), /^models\/x\/p\.yml:27:66: model "m": models\[0\]\.columns\[0\]\.tests\[1\]\.unique\.config\.warn_if: must be a comparison/],
      [FULL.replace('severity: warn, warn_if', 'severity: fatal, warn_if'), /^models\/x\/p\.yml:27:51: model "m": .*severity/],
      [FULL.replace('- not_null\n', '- not_nul\n'), /^models\/x\/p\.yml:25:13: model "m": unknown test "not_nul"; supported: not_null, unique/],
      [FULL.replace('values: [1, 2, true], quote: false', 'values: [x, 2], quote: false'), /:28:40: model "m": quote: false takes numbers or booleans only/],
      [FULL.replace(`to: "ref('n')"`, 'to: n'), /:29:34: model "m": relationships\.to must be ref\('<model>'\)/],
      [FULL.replace('expression: "> 0"', 'expression: "> 0; DROP TABLE x"'), /:30:47: model "m": expression test contains ";"/],
      [FULL.replace('where: "a > 0"', 'where: "a > (SELECT 1)"'), /:27:32: model "m": where .*subquer/i],
      [FULL.replace('- name: curated', '- name: incidents'), /:5:15: source "socrata": .*name it "curated"/],
      [FULL.replace('version: 2', 'version: 1'), /^models\/x\/p\.yml:1:10: version: must be 2/],
      [FULL.replace('  - not_null: { column_name: b }', '  - not_null'), /:35:9: model "m": not_null needs a column/],
      [FULL.replace('- not_null\n', '- dbt_utils.unique_combination_of_columns: { combination_of_columns: [a] }\n'), /:25:13: model "m": .* is a model-level test/],
      [FULL.replace('          error_after: { count: 7, period: day }\n', '          error_after: { count: 7, period: week }\n'), /:8:44: source "socrata": .*period/],
      [FULL.replace('        description: column a\n', '        description: column a\n        description: again\n'), /^models\/x\/p\.yml:24:9: Map keys must be unique \(not valid YAML\)/],
      ['version: 2\nmodels:\n  - name: m\n    tests: [not_null: {]\n', /^models\/x\/p\.yml:4:\d+: .*\(not valid YAML\)/],
      [FULL.replace('    tests:\n      - dbt_utils', '    data_tests: []\n    tests:\n      - dbt_utils'), /p\.yml:32:5: model "m": declare tests under "tests" or "data_tests", not both/],
    ];
    for (const [text, re] of cases) assert.match(errorOf(text), re);
  });

  test('a YAML entry without SQL, a model described twice, legacy comment lines and duplicate test names are errors', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'models-'));
    const write = (files: Record<string, string>): string => {
      const root = path.join(dir, String(Math.random()).slice(2));
      mkdirSync(path.join(root, DATASET.name), { recursive: true });
      for (const [f, t] of Object.entries(files)) writeFileSync(path.join(root, DATASET.name, f), t);
      return root;
    };
    const sql = "SELECT battalion FROM {{ ref('curated') }}";
    const err = (files: Record<string, string>): string => {
      try {
        loadProject(DATASET, write(files));
      } catch (e) {
        return (e as Error).message;
      }
      return 'no error';
    };
    assert.match(err({ 'a.sql': sql, 'a.yml': 'version: 2\nmodels:\n  - name: a\n  - name: b\n' }), /a\.yml:4:5: model "b" has no SQL file \(.*b\.sql\); create it or remove the entry/);
    assert.match(err({ 'a.sql': sql, 'a.yml': 'version: 2\nmodels:\n  - name: a\n', 'b.yml': 'version: 2\nmodels:\n  - name: a\n' }), /b\.yml:3:5: model "a" is already described at .*a\.yml:3:5; keep one entry/);
    assert.match(err({ 'a.sql': `-- description: old style\n${sql}` }), /a\.sql:1: "-- description:" lines are no longer read; declare the model's description in YAML beside the SQL/);
    assert.match(err({ 'a.sql': `-- a comment\n-- tests: []\n${sql}` }), /a\.sql:2: "-- tests:" lines/);
    assert.match(
      err({ 'a.sql': sql, 'a.yml': 'version: 2\nmodels:\n  - name: a\n    tests:\n      - not_null: { column_name: x, name: t }\n      - unique: { column_name: x, name: t }\n' }),
      /a\.yml:6:9: test "a\.t" is already declared at .*a\.yml:5:9; give one of them a distinct name/,
    );
    // A YAML source test named like a dataset JSON test collides with it.
    assert.match(
      err({ 's.yml': 'version: 2\nsources:\n  - name: s\n    tables:\n      - name: curated\n        columns:\n          - name: incident_number\n            tests: [not_null]\n' }),
      /s\.yml:8:21: test "not_null_incident_number" is already declared at dataset sf-fire-incidents \(dataTests\)/,
    );
    assert.match(
      err({ 's.yml': 'version: 2\nsources:\n  - name: s\n    tables:\n      - name: curated\n        columns:\n          - name: no_such\n            tests: [not_null]\n' }),
      /"no_such" is not a column of curated/,
    );
    assert.match(
      err({ 's.yml': 'version: 2\nsources:\n  - name: s\n    tables:\n      - name: curated\n        loaded_at_field: battalion\n        freshness: { warn_after: { count: 1, period: hour } }\n' }),
      /s\.yml:5:9: loaded_at_field "battalion" must be a timestamp column of curated \(it is VARCHAR\)/,
    );
    assert.match(err({ 'a.sql': sql, 'a.yml': 'version: 2\nmodels:\n  - name: a\n    columns:\n      - name: battalion\n        tests:\n          - relationships: { to: "ref(\'zz\')", field: x }\n' }), /refers to "zz", which is not a model/);
    // Charts are YAML only: a -- chart: line is refused, meta.chart is validated where it is written.
    assert.match(err({ 'a.sql': `-- chart: {"type":"bar","x":"a","y":"b"}\n${sql}` }), /a\.sql:1: "-- chart:" lines are no longer read; declare the model's chart in YAML beside the SQL \(models: \[\{ name: a, meta: \{ chart: \.\.\. \} \}\]/);
    assert.match(err({ 'a.sql': sql, 'a.yml': 'version: 2\nmodels:\n  - name: a\n    meta: { chart: { type: pie, x: a, y: b } }\n' }), /a\.yml:3:5 \(meta\.chart\): invalid chart spec: type:/);
    const root = write({ 'a.sql': sql, 'b.sql': sql, 'b.yml': 'version: 2\nmodels:\n  - name: b\n    meta: { chart: { type: bar, x: battalion, y: n } }\n' });
    assert.deepEqual(loadMarts(DATASET, root).map((m) => [m.name, m.chart?.type]), [['a', undefined], ['b', 'bar']]);
  });

  test('the shipped marts are described in YAML, with tests and a freshness rule on the default :updated_at column', () => {
    const p = loadProject(DATASET);
    assert.equal(p.marts.length, 4);
    for (const m of p.marts) {
      assert.ok(m.description.length > 20, m.name);
      assert.ok(m.tests.length > 0, m.name);
      assert.ok(m.chart, m.name);
      assert.doesNotMatch(m.template, /^--\s*(description|tests|chart):/m);
    }
    assert.equal(p.curated.freshness?.loadedAtField, '_source_updated_at');
    assert.ok(p.curated.tests.some((t) => t.name === 'primary_key_unique_id'));
  });
});

describe('Athena SQL of every test kind', () => {
  const trino = new TrinoSQL();
  const ok = (sql: string, what: string) => assert.deepEqual(trino.validate(sql), [], `${what} does not parse as Trino SQL:\n${sql}`);

  test('count, failures, store_failures CTAS and freshness parse with the Trino grammar', () => {
    const p = parsePropertiesFile('p.yml', FULL);
    const ref = (m: string) => `"curated_db"."t__${m}"`;
    const all = [...p.models[0]!.tests, ...p.source!.tests];
    assert.deepEqual(new Set(all.map((t) => t.check.kind)), new Set(['not_null', 'unique', 'accepted_values', 'relationships', 'expression', 'accepted_range']));
    for (const t of all) {
      ok(countSql(t, ref), `count ${t.name}`);
      ok(martCtasSql(`"curated_db"."t__${failuresModelName(t)}"`, 's3://c/x/', failuresSql(t, ref)), `store_failures ${t.name}`);
    }
    ok(freshnessSql({ loadedAtField: '_source_updated_at', filter: 'battalion IS NOT NULL' }, '"curated_db"."t"'), 'freshness');
    // Trino compares only like types: quoted values compare the column as text, unquoted ones as is.
    const quoted = p.source!.tests.find((t) => t.check.kind === 'accepted_values')!;
    const unquoted = p.models[0]!.tests.find((t) => t.check.kind === 'accepted_values')!;
    assert.match(countSql(quoted, ref), /CAST\("battalion" AS VARCHAR\) NOT IN \('B01', 'B02'\)/);
    assert.match(countSql(unquoted, ref), /"a" IS NOT NULL AND "a" NOT IN \(1, 2, TRUE\)/);
    // The check can fail.
    assert.notDeepEqual(trino.validate(countSql({ ...all[0]!, config: { ...all[0]!.config, where: 'a >' } }, ref)), []);
  });
});

describe('--select', () => {
  const mart = (name: string, dependsOn: string[] = []): MartModel => ({ name, file: `${name}.sql`, description: '', template: '', dependsOn, tests: [] });
  const marts = [mart('a'), mart('b', ['a']), mart('c', ['b']), mart('d')];
  const sel = (...terms: string[]) => [...selectMarts(marts, terms)].sort();

  test('model, +model, model+, +model+, a union of terms, curated', () => {
    assert.deepEqual(sel('b'), ['b']);
    assert.deepEqual(sel('+b'), ['a', 'b']);
    assert.deepEqual(sel('b+'), ['b', 'c']);
    assert.deepEqual(sel('+b+'), ['a', 'b', 'c']);
    assert.deepEqual(sel('+c'), ['a', 'b', 'c']);
    assert.deepEqual(sel('a+', 'd'), ['a', 'b', 'c', 'd']);
    assert.deepEqual(sel('curated'), []);
    assert.deepEqual(sel('curated+'), ['a', 'b', 'c', 'd']);
    assert.deepEqual([...selectMarts(marts, undefined)].sort(), ['a', 'b', 'c', 'd']);
    assert.throws(() => sel('e'), /--select: "e" is not a model \(known: curated, a, b, c, d\)/);
    assert.throws(() => sel('a,b'), /"a,b" is not a model selector/);
  });
});

describe('transform container flags', () => {
  const env = (dataDir: string) => ({
    DATASET_CONFIG: readFileSync(DATASET_FILE, 'utf8'),
    ENGINE: 'duckdb',
    RAW_LOCATION: path.join(dataDir, 'raw'),
    CURATED_LOCATION: path.join(dataDir, 'curated'),
    RUN_ID: 'run-1',
  });
  const io = () => {
    const out: { stdout: string[]; stderr: string[]; logs: Record<string, unknown>[] } = { stdout: [], stderr: [], logs: [] };
    return { out, io: { log: (r: Record<string, unknown>) => out.logs.push(r), print: (t: string, s: 'stdout' | 'stderr') => out[s].push(t) } };
  };
  const summary = (logs: Record<string, unknown>[]) => (logs.find((l) => l.message === 'transform finished') as { summary: { marts: { name: string }[]; selection: unknown; rawObjects: { new: number } } }).summary;

  test('--help prints the usage and exits 0; an unknown flag or a bad TESTS_ONLY exits 2', async () => {
    const h = io();
    assert.equal(await main({}, h.io, ['--help']), EXIT.ok);
    assert.deepEqual(h.out.stdout, [USAGE]);
    assert.match(USAGE, /--select <models>[\s\S]*--tests-only/);
    const u = io();
    assert.equal(await main({}, u.io, ['--selekt', 'x']), EXIT.config);
    assert.match(u.out.stderr[0]!, /Unknown option '--selekt'[\s\S]*Usage: node dist\/entry\.mjs/);
    const p = io();
    assert.equal(await main({}, p.io, ['extra']), EXIT.config);
    const t = io();
    assert.equal(await main({ ...env('/tmp/none'), TESTS_ONLY: 'maybe', REBUILD: 'true' }, t.io), EXIT.config);
    assert.match(String(t.out.logs.at(-1)!.message), /TESTS_ONLY must be "true" or "false", got "maybe"/);
    const both = io();
    assert.equal(await main({ ...env('/tmp/none'), REBUILD: 'true' }, both.io, ['--tests-only']), EXIT.config);
    assert.match(String(both.out.logs.at(-1)!.message), /TESTS_ONLY and REBUILD exclude each other/);
  });

  test('--select and --tests-only reach the run (flags win over SELECT / TESTS_ONLY); a wrong model exits 2', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'flags-'));
    writeRawObject(path.join(dataDir, 'raw'), DATASET.name, '2024-03-01', 'a', [incident(0), incident(1), incident(2)]);
    const a = io();
    assert.equal(await main({ ...env(dataDir), SELECT: 'battalion_totals' }, a.io, ['--select', '+battalion_totals']), EXIT.ok);
    assert.deepEqual(summary(a.out.logs).marts.map((m) => m.name), ['incidents_by_month_battalion', 'battalion_totals']);
    const b = io();
    assert.equal(await main({ ...env(dataDir), RUN_ID: 'run-2', SELECT: 'battalion_totals, losses_by_primary_situation' }, b.io), EXIT.ok);
    assert.deepEqual(summary(b.out.logs).marts.map((m) => m.name).sort(), ['battalion_totals', 'losses_by_primary_situation']);
    writeRawObject(path.join(dataDir, 'raw'), DATASET.name, '2024-03-02', 'b', [incident(3)]);
    const c = io();
    assert.equal(await main({ ...env(dataDir), RUN_ID: 'run-3' }, c.io, ['--tests-only', '--select', 'battalion_totals']), EXIT.ok);
    assert.deepEqual(summary(c.out.logs).selection, { select: ['battalion_totals'], testsOnly: true });
    assert.equal(summary(c.out.logs).rawObjects.new, 0);
    const d = io();
    assert.equal(await main({ ...env(dataDir), RUN_ID: 'run-4' }, d.io, ['--select', 'nope']), EXIT.config);
    assert.match(String(d.out.logs.at(-1)!.message), /--select: "nope" is not a model/);
  });
});
