/**
 * Both engines stage in two steps (typedBatchSql, typedProfileSql, typedStagedSql: one cast pass,
 * the version ranking only when a key repeats); the one-statement form (stagingSql,
 * batchProfileSql) is the definition they must match. Same rows and counters: this runs both on one
 * batch holding every case (duplicates, ties between objects, keys that cast alike or not at all,
 * keyless and malformed rows, cast failures).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { duckdbDialect, ident } from '../../containers/transform/src/dialect';
import { batchProfileSql, rawColumns, stagingSql, typedBatchSql, typedProfileSql, typedStagedSql } from '../../containers/transform/src/staging';
import { columns, testDataset } from '../support/dataset-builder';

const DATASET = testDataset({
  name: 'two-step',
  primaryKey: 'k',
  columns: columns({ k: 'integer', ts: 'floating_timestamp', x: 'number', b: 'checkbox', t: 'text', p: 'point' }),
});

const U1 = '2024-01-01T00:00:00.000Z';
const U2 = '2024-02-01T00:00:00.000Z';
const I1 = '2024-03-01T00:00:00.000Z';
const I2 = '2024-03-02T00:00:00.000Z';
type Raw = [k: string | null, ts: string | null, x: string | null, b: string | null, t: string | null, updated: string | null, ingested: string | null, object: string];

/** Rows with unique keys (the ranking keeps every one). */
const UNIQUE: Raw[] = [
  ['1', '2023-06-04T14:16:36', '1.5', 'true', 'one', U1, I1, 'a'],
  ['2', '2023-06-04 14:16:36', 'NaN', '1', 'two', U1, I1, 'a'], // ts, x and b fail to cast
  ['3', null, null, null, null, null, I1, 'b'],
  ['4', '2022-01-01T00:00:00', '0x10', 'false', 'four', U2, null, 'b'],
];
/** Rows that make the ranking matter. */
const DUPLICATES: Raw[] = [
  ['5', '2023-01-01T00:00:00', '1', 'true', 'old', U1, I1, 'a'],
  ['5', '2023-01-01T00:00:00', '2', 'true', 'new', U2, I1, 'b'], // newer :updated_at wins
  ['6', '2023-01-01T00:00:00', '1', 'true', 'first', U1, I1, 'a'],
  ['6', '2023-01-01T00:00:00', '2', 'true', 'later', U1, I2, 'a'], // same :updated_at, newer ingest wins
  ['8', '2023-01-01T00:00:00', '1', 'true', 'in a', U1, I1, 'a'],
  ['8', '2023-01-01T00:00:00', '2', 'true', 'in c', U1, I1, 'c'], // exact tie: the later object wins
  ['007', '2023-01-01T00:00:00', '1', 'true', 'seven padded', U1, I1, 'a'],
  ['7', '2023-01-01T00:00:00', '2', 'true', 'seven', U2, I1, 'b'], // same typed key as "007"
  ['abc', '2023-01-01T00:00:00', '1', 'true', 'no integer key', U1, I1, 'a'],
  ['xyz', '2023-01-01T00:00:00', '2', 'true', 'no integer key either', U2, I1, 'b'], // both keys cast to NULL: one group
  [null, '2023-01-01T00:00:00', '1', 'true', 'keyless', U1, I1, 'a'],
  [null, null, null, null, null, null, null, 'c'], // a malformed line reads as all NULL
];

const q = (v: string | null): string => (v === null ? 'NULL' : `'${v}'`);

async function load(conn: DuckDBConnection, rows: Raw[]): Promise<void> {
  // The raw reader's columns in order: k, ts, x, b, t, p, its longitude and latitude, the metadata.
  const columns = rawColumns(DATASET).map((c) => `${ident(c.name)} ${c.kind === 'json' ? 'JSON' : 'VARCHAR'}`);
  await conn.run(`CREATE OR REPLACE TABLE raw (${columns.join(', ')}, __source_object VARCHAR)`);
  const values = rows.map(([k, ts, x, b, t, u, i, o], n) => {
    const point = n % 3 === 0 && k !== null ? [`'{"type":"Point","coordinates":[-122.4,37.7]}'`, `'-122.4'`, `'37.7'`] : ['NULL', 'NULL', 'NULL'];
    const meta = k === null && t === null ? ['NULL', 'NULL', 'NULL', 'NULL'] : [q(i), `'run'`, q(u), `'row-${n}'`];
    return `(${[q(k), q(ts), q(x), q(b), q(t), ...point, meta[0], meta[1], meta[2], meta[3], q(o)].join(', ')})`;
  });
  await conn.run(`INSERT INTO raw VALUES ${values.join(', ')}`);
  await conn.run(`CREATE OR REPLACE TABLE typed AS ${typedBatchSql(DATASET, duckdbDialect, 'raw', '__source_object')}`);
}

const all = async (conn: DuckDBConnection, sql: string): Promise<string[]> =>
  (await conn.runAndReadAll(`SELECT * FROM (${sql}) AS s ORDER BY ALL`)).getRowsJS().map((r) => JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));

async function profiles(conn: DuckDBConnection) {
  const [one] = (await conn.runAndReadAll(batchProfileSql(DATASET, duckdbDialect, 'raw'))).getRowObjectsJS();
  const [two] = (await conn.runAndReadAll(typedProfileSql(DATASET, 'typed'))).getRowObjectsJS();
  return { one: one!, two: two! };
}

/** Runs `body` on a fresh in-memory DuckDB, closed after. */
async function withDuckDb(body: (conn: DuckDBConnection) => Promise<void>): Promise<void> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    await body(conn);
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

describe('staging in two steps (both engines) = the one-statement definition', () => {
  test('a batch with duplicates: same staged rows and counters; the keys are not unique', async () => {
    await withDuckDb(async (conn) => {
      await load(conn, [...UNIQUE, ...DUPLICATES]);
      const expected = await all(conn, stagingSql(DATASET, duckdbDialect, 'raw', '__source_object'));
      assert.deepEqual(await all(conn, typedStagedSql(DATASET, 'typed', false)), expected);
      assert.equal(expected.length, 4 + 5, 'four unique keys, then 5, 6, 8, 7 and the one group of keys that do not cast');
      const { one, two } = await profiles(conn);
      for (const [k, v] of Object.entries(one)) if (k !== 'distinct_keys') assert.equal(two[k], v, k);
      assert.equal(two.cast_failures__ts, 1n);
      assert.equal(two.cast_failures__x, 2n);
      assert.equal(two.cast_failures__k, 2n);
      assert.equal(two.rows_without_key, 1n);
      assert.equal(two.malformed_rows, 1n);
      assert.ok(Number(two.key_partitions) < Number(two.keyed_rows), 'repeated keys are seen');
    });
  });

  test('repeats only among keys that do not cast still count as repeats', async () => {
    await withDuckDb(async (conn) => {
      await load(conn, [...UNIQUE, ...DUPLICATES.filter(([k]) => k === 'abc' || k === 'xyz')]);
      const { two } = await profiles(conn);
      assert.equal(Number(two.key_partitions), Number(two.keyed_rows) - 1);
    });
  });

  test('unique keys: the unranked form gives the same staged rows', async () => {
    await withDuckDb(async (conn) => {
      await load(conn, [...UNIQUE, DUPLICATES.at(-2)!, DUPLICATES.at(-1)!]);
      const { one, two } = await profiles(conn);
      for (const [k, v] of Object.entries(one)) if (k !== 'distinct_keys') assert.equal(two[k], v, k);
      assert.equal(two.key_partitions, two.keyed_rows);
      const expected = await all(conn, stagingSql(DATASET, duckdbDialect, 'raw', '__source_object'));
      assert.equal(expected.length, UNIQUE.length);
      assert.deepEqual(await all(conn, typedStagedSql(DATASET, 'typed', true)), expected);
    });
  });
});
