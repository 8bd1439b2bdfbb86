/**
 * The column types added for portal datasets (fixed_timestamp, geometry, json), end to end on a
 * real row: the row Socrata served for "All OBE Column Types" (2asz-g9qq, every type) goes
 * through the fetcher's raw-row code, is read back the way the DuckDB engine reads raw objects
 * (rawColumns, read_ndjson) and through the staging query; the curated values are what the
 * contract in docs/deploy.md promises. The Athena rendering of the same staging query parses as Trino.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { TrinoSQL } from 'dt-sql-parser';
import { toRawRow } from '../../lambdas/fetcher/raw-row';
import { athenaDialect, curatedTypeOf, duckdbDialect, literal } from '../../containers/transform/src/dialect';
import { batchProfileSql, rawColumns, stagingSql } from '../../containers/transform/src/staging';
import { COLUMN_TYPES, parseDataset } from '../../runtime/dataset-config';
import { proposeDataset, readViewDocument } from '../../runtime/socrata-metadata';
import { generateRows } from '../../local/dataset-rows';
import { columns, datasetInput, testDataset } from '../support/dataset-builder';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'socrata-views');
const read = (f: string): unknown => JSON.parse(readFileSync(path.join(FIXTURES, f), 'utf8'));

// The definition `add` proposes, with the fixed timestamp as event time to exercise it there too.
const view = readViewDocument(read('all-column-types-2asz-g9qq.json'), '2asz-g9qq');
const DATASET = parseDataset(
  proposeDataset(view, { domain: 'soda.demo.socrata.com', name: 'all-types', primaryKey: 'plain_text_column', eventTimeColumn: 'date_time_with_timezone_column' }).definition,
  'all-types',
);
const [ROW] = read('all-column-types-2asz-g9qq.rows.json') as Record<string, unknown>[];

async function curatedFromRealRow(): Promise<Record<string, unknown>> {
  const raw = toRawRow({ ':id': 'row-1', ':updated_at': '2025-05-26T01:03:58.000Z', ...ROW }, { pointColumns: [], runId: 'run-1', ingestedAt: '2025-05-26T01:04:00.000Z' });
  const dir = mkdtempSync(path.join(tmpdir(), 'all-types-'));
  const file = path.join(dir, 'raw.ndjson');
  writeFileSync(file, `${JSON.stringify(raw)}\n`);
  const cols = `{${rawColumns(DATASET).map((c) => `${literal(c.name)}: ${literal(c.kind === 'json' ? 'JSON' : 'VARCHAR')}`).join(', ')}}`;
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  await conn.run(`CREATE TABLE raw AS SELECT * FROM read_ndjson(${literal(file)}, columns = ${cols}, format = 'newline_delimited')`);
  const [profile] = (await conn.runAndReadAll(batchProfileSql(DATASET, duckdbDialect, 'raw'))).getRowObjectsJS();
  const failures = Object.entries(profile!).filter(([k, v]) => k.startsWith('cast_failures__') && v !== 0n);
  assert.deepEqual(failures, [], 'every value of the real row is inside the cast contract');
  const [row] = (await conn.runAndReadAll(stagingSql(DATASET, duckdbDialect, 'raw'))).getRowObjectsJS();
  conn.closeSync();
  return row!;
}

describe('column types on a real row of every Socrata type', () => {
  test('each column type has a curated type', () => {
    for (const t of COLUMN_TYPES) assert.ok(curatedTypeOf(t), t);
    assert.equal(curatedTypeOf('fixed_timestamp'), 'TIMESTAMP');
    assert.equal(curatedTypeOf('geometry'), 'VARCHAR');
    assert.equal(curatedTypeOf('json'), 'VARCHAR');
  });

  test('curated values: numbers, both timestamps, checkbox, and JSON objects kept as JSON text', async () => {
    const row = await curatedFromRealRow();
    assert.equal(row.money_column, 1000000);
    assert.equal(row.percent_column, 66);
    assert.equal((row.date_time_column as Date).toISOString(), '2014-10-13T00:00:00.000Z');
    // Served as 2014-10-14T07:00:00.000Z: the curated TIMESTAMP holds the UTC wall clock.
    assert.equal((row.date_time_with_timezone_column as Date).toISOString(), '2014-10-14T07:00:00.000Z');
    assert.equal(row.checkbox_column, true, 'a JSON boolean reads as the checkbox value');
    // Objects keep every field, as JSON (compared parsed: spacing and key order are the engine's).
    assert.deepEqual(JSON.parse(row.location_column as string), ROW!.location_column);
    assert.deepEqual(JSON.parse(row.website_url_column as string), ROW!.website_url_column);
    assert.deepEqual(JSON.parse(row.document as string), ROW!.document);
    // A json column served as a plain string (photo ids) stays that string.
    assert.equal(row.photo_column, ROW!.photo_column);
    assert.equal(row.formatted_text_column, '<p>Sample <strong>Rich Text</strong></p>');
  });

  test('a geometry column keeps its GeoJSON, and a fixed timestamp with an offset is a cast failure, never a shifted value', async () => {
    const d = testDataset({ name: 'shapes', eventTimeColumn: 'at', columns: columns({ id: 'text', at: 'fixed_timestamp', the_geom: 'geometry' }) });
    const geom = { type: 'MultiPolygon', coordinates: [[[[-87.6, 41.8], [-87.5, 41.8], [-87.5, 41.9], [-87.6, 41.8]]]] };
    const dir = mkdtempSync(path.join(tmpdir(), 'shapes-'));
    const file = path.join(dir, 'raw.ndjson');
    writeFileSync(
      file,
      [
        { id: 'a', at: '2020-01-01T12:00:00.000Z', the_geom: geom },
        { id: 'b', at: '2020-01-01T12:00:00+02:00' },
      ]
        .map((r) => JSON.stringify({ ...r, _ingested_at: '2025-01-01T00:00:00.000Z', _run_id: 'r', _source_updated_at: '2025-01-01T00:00:00.000Z', _source_id: r.id }))
        .join('\n'),
    );
    const cols = `{${rawColumns(d).map((c) => `${literal(c.name)}: ${literal(c.kind === 'json' ? 'JSON' : 'VARCHAR')}`).join(', ')}}`;
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    await conn.run(`CREATE TABLE raw AS SELECT * FROM read_ndjson(${literal(file)}, columns = ${cols}, format = 'newline_delimited')`);
    const [profile] = (await conn.runAndReadAll(batchProfileSql(d, duckdbDialect, 'raw'))).getRowObjectsJS();
    assert.equal(profile!.cast_failures__at, 1n);
    const rows = (await conn.runAndReadAll(`${stagingSql(d, duckdbDialect, 'raw')} ORDER BY id`)).getRowObjectsJS();
    conn.closeSync();
    assert.equal((rows[0]!.at as Date).toISOString(), '2020-01-01T12:00:00.000Z');
    assert.deepEqual(JSON.parse(rows[0]!.the_geom as string), geom);
    assert.equal(rows[1]!.at, null);
  });

  test('validation: json and geometry columns cannot be the key or take value tests; a fixed timestamp can be the event time', () => {
    const base = datasetInput({ name: 'typed-set', eventTimeColumn: 'at', columns: columns({ id: 'text', at: 'fixed_timestamp', link: 'json', shape: 'geometry' }) });
    assert.equal(parseDataset(base, 'inline').eventTimeColumn, 'at');
    assert.throws(() => parseDataset({ ...base, primaryKey: 'link' }, 'inline'), /primaryKey: "link" is a json column, which cannot identify a row/);
    assert.throws(() => parseDataset({ ...base, primaryKey: 'shape' }, 'inline'), /primaryKey: "shape" is a geometry column, which cannot identify a row/);
    assert.throws(() => parseDataset({ ...base, eventTimeColumn: 'link' }, 'inline'), /eventTimeColumn: "link" must be a floating_timestamp or fixed_timestamp column, not json/);
    assert.throws(
      () => parseDataset({ ...base, dataTests: [{ kind: 'accepted_values', column: 'link', values: ['x'] }] }, 'inline'),
      /an accepted_values test needs a text, integer or checkbox column; "link" is json/,
    );
  });

  test('the local generator serves every new type the way Socrata does (npm run local on a portal-made definition)', () => {
    const rows = generateRows(DATASET, 50, 7);
    const event = rows.map((r) => r.date_time_with_timezone_column);
    assert.ok(event.every((v) => typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(v)), 'the event time is on every row, in UTC with Z');
    const json = rows.map((r) => r.website_url_column).filter((v) => v !== undefined);
    assert.ok(json.length > 30 && json.every((v) => typeof v === 'object' && v !== null), 'json columns are objects');
  });

  test('the Athena staging and profile SQL for every new type parse as Trino and gate the fixed timestamp', () => {
    const trino = new TrinoSQL();
    for (const sql of [stagingSql(DATASET, athenaDialect, 'raw'), batchProfileSql(DATASET, athenaDialect, 'raw')]) {
      assert.deepEqual(trino.validate(sql), [], sql);
      assert.ok(sql.includes(athenaDialect.tryCast('CAST("date_time_with_timezone_column" AS varchar)', 'TIMESTAMP')));
    }
  });
});
