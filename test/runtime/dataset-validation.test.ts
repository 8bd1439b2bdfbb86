/**
 * A dataset definition that would fail after fetching fails validation instead, naming the file
 * and the field: names that collide with the columns the pipeline adds, names the engines cannot
 * take, numeric settings outside their real ranges, schedules Scheduler would refuse, and data
 * tests that are not one expression. Each bad file is loaded through loadDatasetFile, the loader
 * `npm run local` and `cdk synth` use; both entry points are also exercised end to end below.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { App } from 'aws-cdk-lib';
import { TrinoSQL } from 'dt-sql-parser';
import { countSql, fromDatasetTest } from '../../containers/transform/src/data-tests';
import { buildPipelineApp } from '../../lib/pipeline-app';
import { curatedColumnNames, loadDatasetFile, parseDataset, pointFieldNames, pointFieldNamesOf } from '../../runtime/dataset-config';
import { columns, datasetInput } from '../support/dataset-builder';

const REPO_ROOT = path.join(import.meta.dirname, '..', '..');

const base = datasetInput({ columns: columns({ id: 'text', ts: 'floating_timestamp', point: 'point' }) });

/** Writes `<dir>/<name>.json` and returns its path. */
function datasetFile(body: Record<string, unknown>, dir = mkdtempSync(path.join(tmpdir(), 'bad-dataset-'))): string {
  const file = path.join(dir, `${String(body.name)}.json`);
  writeFileSync(file, JSON.stringify(body, null, 2));
  return file;
}

/** Loads `body` from a file and returns the error message (the test fails if it loads). */
function loadError(overrides: Record<string, unknown>): { file: string; message: string } {
  const body = { ...base, ...overrides };
  const file = datasetFile(body);
  try {
    loadDatasetFile(file);
  } catch (err) {
    return { file, message: (err as Error).message };
  }
  assert.fail(`${JSON.stringify(overrides)} validated, but should not have`);
}

function assertRejected(overrides: Record<string, unknown>, field: string, ...fragments: (string | RegExp)[]): void {
  const { file, message } = loadError(overrides);
  assert.ok(message.includes(file), `message names the file:\n${message}`);
  const line = message.split('\n').find((l) => l.startsWith(`  - ${field}: `));
  assert.ok(line, `message names the field ${field}:\n${message}`);
  for (const f of fragments) assert.match(line, typeof f === 'string' ? new RegExp(f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : f);
}

const withColumns = (...extra: Record<string, unknown>[]) => ({ columns: [...base.columns, ...extra] });

describe('names are validated where they are declared', () => {
  test('declared columns cannot take the columns the pipeline adds', () => {
    assertRejected(withColumns({ name: '_ingested_at', type: 'text' }), 'columns.3.name', '"_ingested_at"', 'ingestion metadata');
    assertRejected(withColumns({ name: '_run_id', type: 'text' }), 'columns.3.name', '"_run_id"');
    assertRejected(withColumns({ name: '_source_updated_at', type: 'text' }), 'columns.3.name', '"_source_updated_at"');
    assertRejected(withColumns({ name: '_source_anything', type: 'text' }), 'columns.3.name', '_source_*');
    assertRejected(withColumns({ name: '_content_hash', type: 'text' }), 'columns.3.name', 'content hash');
    assertRejected(withColumns({ name: 'event_year', type: 'integer' }), 'columns.3.name', 'partition column');
    assertRejected(withColumns({ name: 'ingest_date', type: 'text' }), 'columns.3.name', '"ingest_date"', "raw table's partition key");
    assertRejected(withColumns({ name: 'spot', type: 'point', coordinates: { longitude: 'ingest_date', latitude: 'lat' } }), 'columns.3.coordinates.longitude', "raw table's partition key");
    assertRejected(withColumns({ name: '__tie', type: 'text' }), 'columns.3.name', '__*');
  });

  test('other leading underscores and ordinary names stay allowed', () => {
    const d = parseDataset({ ...base, ...withColumns({ name: '_id', type: 'text' }, { name: 'source_updated', type: 'text' }) }, 'inline');
    assert.equal(d.columns.length, 5);
  });

  test('duplicates are refused, naming the later declaration and the first', () => {
    assertRejected(withColumns({ name: 'id', type: 'number' }), 'columns.3.name', 'declared at columns.0.name');
  });

  test('reserved words of either engine and over-long names are refused', () => {
    assertRejected(withColumns({ name: 'order', type: 'text' }), 'columns.3.name', 'reserved word in Athena (Trino) and DuckDB');
    assertRejected(withColumns({ name: 'limit', type: 'text' }), 'columns.3.name', 'reserved word in DuckDB');
    assertRejected(withColumns({ name: 'uescape', type: 'text' }), 'columns.3.name', 'reserved word in Athena (Trino)');
    assertRejected(withColumns({ name: `c${'x'.repeat(255)}`, type: 'text' }), 'columns.3.name', 'at most 255 characters');
    assertRejected(withColumns({ name: 'Mixed', type: 'text' }), 'columns.3.name', 'lower-case');
  });

  test('a point whose derived columns collide fails naming the point and suggesting coordinates', () => {
    const cols = [...base.columns, { name: 'longitude', type: 'number' }, { name: 'latitude', type: 'number' }];
    const { message } = loadError({ columns: cols });
    assert.match(message, /columns\.2\.name: point column "point" derives the longitude column "longitude", which is already a column .*declared at columns\.3\.name.*"coordinates"/);
    assert.match(message, /columns\.2\.name: point column "point" derives the latitude column "latitude"/);
    // Named apart, the same columns validate and the curated table holds all of them.
    const fixed = parseDataset(
      { ...base, columns: [...base.columns.slice(0, 2), { name: 'point', type: 'point', coordinates: { longitude: 'point_lon', latitude: 'point_lat' } }, ...cols.slice(3)] },
      'inline',
    );
    assert.deepEqual(curatedColumnNames(fixed).slice(0, 7), ['id', 'ts', 'point', 'point_lon', 'point_lat', 'longitude', 'latitude']);
  });

  test('coordinates must themselves be free, valid names, and only on point columns', () => {
    const point = (coordinates: unknown) => ({ columns: [...base.columns.slice(0, 2), { name: 'point', type: 'point', coordinates }] });
    assertRejected(point({ longitude: 'id', latitude: 'lat' }), 'columns.2.coordinates.longitude', '"id"', 'declared at columns.0.name');
    assertRejected(point({ longitude: 'lon', latitude: 'lon' }), 'columns.2.coordinates.latitude', '"lon"');
    assertRejected(point({ longitude: 'lon', latitude: '_run_id' }), 'columns.2.coordinates.latitude', 'ingestion metadata');
    assertRejected(point({ longitude: 'select', latitude: 'lat' }), 'columns.2.coordinates.longitude', 'reserved word');
    assertRejected(withColumns({ name: 'x', type: 'text', coordinates: { longitude: 'a', latitude: 'b' } }), 'columns.3.coordinates', 'only point columns');
  });

  test('pointFieldNamesOf honours coordinates; pointFieldNames keeps the defaults', () => {
    assert.deepEqual(pointFieldNamesOf({ name: 'point' }), { longitude: 'longitude', latitude: 'latitude' });
    assert.deepEqual(pointFieldNamesOf({ name: 'location' }), pointFieldNames('location'));
    assert.deepEqual(pointFieldNamesOf({ name: 'location', coordinates: { longitude: 'lng', latitude: 'lat' } }), { longitude: 'lng', latitude: 'lat' });
  });

  test('the primary key must be a declared column that can identify a row', () => {
    assertRejected({ primaryKey: 'point' }, 'primaryKey', '"point" is a point column, which cannot identify a row');
    assertRejected({ primaryKey: 'flag', ...withColumns({ name: 'flag', type: 'checkbox' }) }, 'primaryKey', 'checkbox column');
    assertRejected({ primaryKey: 'ghost' }, 'primaryKey', 'not one of the declared columns');
  });

  test('dataset names Glue/Athena cannot take are refused', () => {
    const { file, message } = loadError({ name: 'cfg--x' });
    assert.ok(message.includes(file));
    assert.match(message, /- name: must not contain "--"/);
    assert.match(loadError({ name: 'table' }).message, /- name: its table name "table" is a reserved word/);
  });
});

describe('data tests must run on both engines', () => {
  test('range needs a numeric column, accepted_values a text, integer or checkbox one', () => {
    assertRejected({ dataTests: [{ kind: 'range', column: 'id', min: 0 }] }, 'dataTests.0.column', 'range test needs a number or integer column; "id" is text');
    assertRejected({ dataTests: [{ kind: 'range', column: 'ts', min: 0 }] }, 'dataTests.0.column', '"ts" is floating_timestamp');
    assertRejected({ dataTests: [{ kind: 'accepted_values', column: 'ts', values: ['x'] }] }, 'dataTests.0.column', 'accepted_values test needs a text, integer or checkbox column');
    assertRejected({ dataTests: [{ kind: 'not_null', column: 'ghost' }] }, 'dataTests.0.column', '"ghost" is not one of the declared columns');
    // Derived coordinates are numbers; metadata columns are testable too.
    const d = parseDataset(
      { ...base, dataTests: [{ kind: 'range', column: 'latitude', min: -90, max: 90 }, { kind: 'accepted_values', column: '_run_id', values: ['r'] }, { kind: 'not_null', column: '_ingested_at' }] },
      'inline',
    );
    assert.equal(d.dataTests.length, 3);
  });

  test('accepted_values compares as text, so integer and checkbox columns work on Athena too', async () => {
    const t = { sql: countSql(fromDatasetTest({ kind: 'accepted_values', column: 'approved', values: ['true'], severity: 'error' }, 'test'), () => 't') };
    assert.match(t.sql, /CAST\("approved" AS VARCHAR\) NOT IN \('true'\)/);
    assert.deepEqual(new TrinoSQL().validate(t.sql), []);
    const conn = await (await DuckDBInstance.create(':memory:')).connect();
    await conn.run(`CREATE TABLE t AS SELECT * FROM (VALUES (true), (false), (NULL)) AS v(approved)`);
    const [row] = (await conn.runAndReadAll(t.sql)).getRowObjectsJS();
    assert.equal(row!.failing, 1n);
    conn.closeSync();
  });

  test('test names are unique, explicit or default', () => {
    assertRejected({ dataTests: [{ kind: 'not_null', column: 'id' }, { kind: 'not_null', column: 'id' }] }, 'dataTests.1.name', 'data test "not_null_id" is already declared at dataTests.0');
    assertRejected(
      { dataTests: [{ kind: 'expression', name: 'same', expression: 'true' }, { kind: 'not_null', name: 'same', column: 'ts' }] },
      'dataTests.1.name',
      '"same" is already declared',
    );
  });
});

describe('the app token secret name is one Secrets Manager takes', () => {
  test('names with spaces or other characters are refused', () => {
    assertRejected({ source: { ...base.source, appTokenSecretName: 'my token' } }, 'source.appTokenSecretName', 'Secrets Manager secret name');
    assert.deepEqual(parseDataset({ ...base, source: { ...base.source, appTokenSecretName: 'socrata/app-token_1' } }, 'inline').source, { ...base.source, appTokenSecretName: 'socrata/app-token_1' });
  });
});

describe('numeric settings are bounded by their real ranges', () => {
  test('lookbackMinutes at most 366 days, maxQuarantineShare within 0..1', () => {
    assertRejected({ fetch: { lookbackMinutes: 1e9 } }, 'fetch.lookbackMinutes', 'at most 527040 (366 days)');
    assert.equal(parseDataset({ ...base, fetch: { lookbackMinutes: 527_040 } }, 'inline').fetch.lookbackMinutes, 527_040);
    assertRejected({ fetch: { maxQuarantineShare: 1.5 } }, 'fetch.maxQuarantineShare');
    assertRejected({ fetch: { maxQuarantineShare: -0.1 } }, 'fetch.maxQuarantineShare');
    assertRejected({ fetch: { pageSize: 1_000_001 } }, 'fetch.pageSize');
    // SODA 2.1 has no $limit cap: pages above 2.0's 50,000 are accepted up to the bound.
    assert.equal(parseDataset({ ...base, fetch: { pageSize: 1_000_000 } }, 'inline').fetch.pageSize, 1_000_000);
    assertRejected({ fetch: { requestTimeoutSeconds: 301 } }, 'fetch.requestTimeoutSeconds');
    assertRejected({ delivery: { bufferingIntervalSeconds: 901 } }, 'delivery.bufferingIntervalSeconds');
    assertRejected({ delivery: { bufferingSizeMiB: 129 } }, 'delivery.bufferingSizeMiB');
  });

  test('maxQuarantineShare defaults to 5% and takes the bounds themselves', () => {
    assert.equal(parseDataset(base, 'inline').fetch.maxQuarantineShare, 0.05);
    assert.equal(parseDataset({ ...base, fetch: { pageSize: 100 } }, 'inline').fetch.maxQuarantineShare, 0.05);
    assert.equal(parseDataset({ ...base, fetch: { maxQuarantineShare: 0 } }, 'inline').fetch.maxQuarantineShare, 0);
    assert.equal(parseDataset({ ...base, fetch: { maxQuarantineShare: 1 } }, 'inline').fetch.maxQuarantineShare, 1);
  });
});

describe('schedules are checked as EventBridge Scheduler reads them', () => {
  test('a 5-field-style cron and an unknown time zone fail with the file and field named', () => {
    assertRejected({ schedule: { expression: 'cron(0 6 * * * *)' } }, 'schedule.expression', 'exactly one of day-of-month');
    assertRejected({ schedule: { expression: 'cron(0 6 * * ?)' } }, 'schedule.expression', 'has 5 fields');
    assertRejected({ schedule: { expression: 'cron(0 6 * * ? *)', timezone: 'Mars/Olympus' } }, 'schedule.timezone', '"Mars/Olympus" is not an IANA time zone');
  });

  test('bad rates and one-time schedules fail', () => {
    assertRejected({ schedule: { expression: 'rate(1 hours)' } }, 'schedule.expression', 'write "1 hour"');
    assertRejected({ schedule: { expression: 'rate(0 hours)' } }, 'schedule.expression', 'at least 1');
    assertRejected({ schedule: { expression: 'rate(5 weeks)' } }, 'schedule.expression', 'minute(s), hour(s) or day(s)');
    assertRejected({ schedule: { expression: 'at(2030-02-30T06:00:00)' } }, 'schedule.expression', 'real date');
    assertRejected({ schedule: { expression: 'every day' } }, 'schedule.expression', 'cron(...), rate(...) or at(...)');
  });
});

describe('data-test expressions are single SQL expressions', () => {
  test('the COPY attack fails validation naming the file and the test', () => {
    const attack = "1=1); COPY (SELECT * FROM curated.tiny_set) TO '/tmp/x.csv'; SELECT (1";
    assertRejected(
      { dataTests: [{ kind: 'not_null', column: 'id' }, { kind: 'expression', name: 'exfiltrate', expression: attack }] },
      'dataTests.1.expression',
      'data test "exfiltrate"',
      'contains ";"',
    );
  });

  test('an expression that would escape its parentheses without a separator fails too', () => {
    assertRejected({ dataTests: [{ kind: 'expression', name: 'escape', expression: 'true) OR (true' }] }, 'dataTests.0.expression', 'data test "escape"', 'closes a parenthesis');
  });
});

describe('every validation applies at cdk synth and at npm run local', () => {
  const bad = { ...base, name: 'bad-set', columns: [...base.columns, { name: 'event_year', type: 'integer' }] };

  test('cdk synth (buildPipelineApp) fails naming the file and field', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'synth-datasets-'));
    const file = datasetFile(bad, dir);
    const app = new App({ outdir: mkdtempSync(path.join(tmpdir(), 'cdk-out-')), context: { env: 'dev', datasetsDir: dir, 'aws:cdk:bundling-stacks': [] } });
    assert.throws(() => buildPipelineApp(app), (err: Error) => err.message.includes(file) && /columns\.3\.name: column "event_year" is the curated table's partition column/.test(err.message));
  });

  test('npm run local refuses the file before starting anything, exit 2', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'local-datasets-'));
    mkdirSync(path.join(dir, 'data'));
    const file = datasetFile({ ...bad, schedule: { expression: 'cron(0 6 * * * *)', timezone: 'Mars/Olympus' } }, dir);
    const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'local', 'cli.ts'), '--dataset-file', file, '--data-dir', path.join(dir, 'data'), '--rows', '10'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(run.status, 2, run.stderr);
    assert.ok(run.stderr.includes(file), run.stderr);
    assert.match(run.stderr, /columns\.3\.name: column "event_year"/);
    assert.match(run.stderr, /schedule\.expression: cron\(0 6 \* \* \* \*\)/);
    assert.match(run.stderr, /schedule\.timezone: "Mars\/Olympus"/);
  });
});
