/**
 * The cast contract, one table of edge cases for both engines. Each case runs through DuckDB's
 * tryCast (executed) and is checked against the Athena dialect's SQL: the same pattern gates the
 * cast there (extracted from the generated SQL, parsed with the Trino grammar), and the pattern,
 * evaluated here with whole-string semantics, accepts exactly the inputs DuckDB casts. What the
 * pattern admits, both engines' casts read the same way (digits, decimals, ISO timestamps,
 * true/false); overflow and impossible dates become NULL on both (TRY_CAST / TRY / is_finite).
 * The table is also executed on Trino through the Athena dialect (the last suite).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { TrinoSQL } from 'dt-sql-parser';
import { athenaDialect, CAST_PATTERNS, duckdbDialect, literal, type CuratedType } from '../../containers/transform/src/dialect';
import { batchProfileSql, stagingSql } from '../../containers/transform/src/staging';
import { TrinoClient } from '../../local/trino-client';
import { columns, testDataset } from '../support/dataset-builder';
import { trinoSkip, trinoUrl } from '../support/trino';

type Cast = Exclude<CuratedType, 'VARCHAR'>;
/** [input, expected value, or null when the value is outside the contract]. */
type Case = [string, string | number | boolean | null];

const MAX = '9223372036854775807';
const MIN = '-9223372036854775808';

const CASES: Record<Cast, Case[]> = {
  BIGINT: [
    ['42', '42'], ['-7', '-7'], ['+5', '5'], ['007', '7'], ['0', '0'], ['-0', '0'], [MAX, MAX], [MIN, MIN],
    ['9223372036854775808', null], ['-9223372036854775809', null], // out of bigint range
    ['2.5', null], ['3.0', null], ['2.4e+07', null], ['1e3', null], ['0x10', null], ['NaN', null], ['Infinity', null],
    ['1,000', null], ['1_000', null], [' 5', null], ['5 ', null], ['5\n', null], ['', null], ['-', null], ['１２', null],
  ],
  DOUBLE: [
    ['3.14', 3.14], ['-0.5', -0.5], ['+2', 2], ['.5', 0.5], ['1.', 1], ['1e3', 1000], ['2.4E+07', 24000000], ['1e-3', 0.001],
    ['1e-400', 0], // underflow reads as 0 on both engines
    ['1e400', null], ['9'.repeat(400), null], // overflow: NULL, never Infinity
    ['1e1000', null], ['1e0005', null], // more than 3 exponent digits
    ['NaN', null], ['nan', null], ['Infinity', null], ['-inf', null], ['0x10', null], ['0x1p3', null], ['1d', null], ['1f', null],
    ['1,000.5', null], [' 1', null], ['1 ', null], ['', null], ['.', null], ['+', null], ['1e', null], ['e3', null], ['1.2.3', null],
    // money and percent columns (column type number) as Socrata serves them, and as a UI shows them
    ['1000000', 1000000], ['66', 66], ['$1,000,000.00', null], ['66%', null],
  ],
  TIMESTAMP: [
    ['2023-06-04T14:16:36.000', '2023-06-04T14:16:36.000Z'],
    ['2023-06-04T14:16:36', '2023-06-04T14:16:36.000Z'],
    ['2023-06-04T14:16:36.5', '2023-06-04T14:16:36.500Z'],
    ['2023-06-04T14:16:36.000Z', '2023-06-04T14:16:36.000Z'], // UTC marker: same wall-clock value
    ['2014-10-14T07:00:00.000Z', '2014-10-14T07:00:00.000Z'], // a fixed_timestamp as Socrata serves it (always UTC)
    ['2014-10-13T00:00:00.000', '2014-10-13T00:00:00.000Z'], // a calendar_date (floating timestamp at midnight)
    ['1999-12-31T23:59:59.999', '1999-12-31T23:59:59.999Z'],
    ['2024-02-29T00:00:00', '2024-02-29T00:00:00.000Z'],
    ['2023-02-29T00:00:00', null], ['2023-02-30T00:00:00', null], ['2023-04-31T00:00:00', null], // impossible dates
    ['2023-06-04T14:16:36+02:00', null], ['2023-06-04T14:16:36-0700', null], // offsets other than Z
    ['2023-06-04T14:16:36.123456', null], // beyond milliseconds
    ['2023-06-04 14:16:36', null], ['2023-06-04', null], ['2023-06-04T14:16', null], ['2023-6-4T14:16:36', null],
    ['2023-06-04T24:00:00', null], ['2023-06-04T14:60:00', null], ['2023-06-04T14:16:60', null], ['0999-01-01T00:00:00', null],
    ['2023-13-01T00:00:00', null], ['2023-06-04t14:16:36', null], [' 2023-06-04T14:16:36', null], ['', null], ['1685888196', null],
  ],
  BOOLEAN: [
    ['true', true], ['false', false],
    ['TRUE', null], ['True', null], ['1', null], ['0', null], ['t', null], ['f', null], ['yes', null], ['no', null], [' true', null], ['', null],
  ],
};

/** The pattern with whole-string semantics (JavaScript's `^`/`$` without the m flag match only at the ends). */
const fullMatch = (pattern: string, value: string) => new RegExp(`^(?:${pattern})$`).test(value);

async function duckdb() {
  const db = await DuckDBInstance.create(':memory:');
  return db.connect();
}

function normalize(value: unknown): string | number | boolean | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'number' && Object.is(value, -0)) return 0;
  return value as string | number | boolean;
}

const CASTS_DATASET = testDataset({ name: 'casts-set', columns: columns({ id: 'text', ts: 'floating_timestamp', n: 'integer', x: 'number', b: 'checkbox' }) });

describe('cast contract', () => {
  test('DuckDB casts exactly the table: contract values cast, everything else is NULL', async () => {
    const conn = await duckdb();
    for (const [type, cases] of Object.entries(CASES) as [Cast, Case[]][]) {
      const values = cases.map(([input], i) => `(${i}, ${literal(input)})`).join(', ');
      const sql = `SELECT i, ${duckdbDialect.tryCast('v', type)} AS c FROM (VALUES ${values}) AS t(i, v) ORDER BY i`;
      const rows = (await conn.runAndReadAll(sql)).getRowObjectsJS();
      const got = rows.map((r) => normalize(r.c));
      const want = cases.map(([, expected]) => expected);
      for (let i = 0; i < cases.length; i++) {
        assert.deepEqual(got[i], want[i], `${type} ${JSON.stringify(cases[i]![0])}: got ${String(got[i])}, want ${String(want[i])}`);
      }
    }
    conn.closeSync();
  });

  test('the pattern alone decides which strings are in the contract (both engines gate on it)', () => {
    for (const [type, cases] of Object.entries(CASES) as [Cast, Case[]][]) {
      for (const [input, expected] of cases) {
        // Contract values always match; the only non-matching NULLs allowed are the out-of-range
        // ones below, which both engines' TRY forms turn into NULL after the gate.
        const matches = fullMatch(CAST_PATTERNS[type], input);
        if (expected !== null) assert.ok(matches, `${type} ${JSON.stringify(input)} should match the pattern`);
      }
    }
    const beyondTheGate = ['9223372036854775808', '-9223372036854775809', '1e400', '9'.repeat(400), '1e-400', '2023-02-29T00:00:00', '2023-02-30T00:00:00', '2023-04-31T00:00:00'];
    for (const [type, cases] of Object.entries(CASES) as [Cast, Case[]][]) {
      for (const [input, expected] of cases) {
        if (expected === null && !beyondTheGate.includes(input)) {
          assert.ok(!fullMatch(CAST_PATTERNS[type], input), `${type} ${JSON.stringify(input)} must be refused by the pattern itself`);
        }
      }
    }
  });

  test('the Athena SQL gates every cast with the same pattern, anchored at the string ends, and parses as Trino', () => {
    const trino = new TrinoSQL();
    for (const type of Object.keys(CASES) as Cast[]) {
      const expr = athenaDialect.tryCast('CAST("v" AS varchar)', type);
      const gate = expr.match(/regexp_like\(CAST\("v" AS varchar\), '((?:[^']|'')*)'\)/);
      assert.ok(gate, `${type}: no regexp_like gate in ${expr}`);
      assert.equal(gate[1]!.replace(/''/g, "'"), `\\A(?:${CAST_PATTERNS[type]})\\z`, `${type}: Athena gates with a different pattern`);
      const duck = duckdbDialect.tryCast('CAST("v" AS VARCHAR)', type);
      assert.ok(duck.includes(`regexp_full_match(CAST("v" AS VARCHAR), ${literal(CAST_PATTERNS[type])})`), `${type}: DuckDB gates with a different pattern`);
      const sql = `SELECT ${expr} AS c FROM t`;
      assert.deepEqual(trino.validate(sql), [], sql);
    }
    // Athena cannot run here, so the rest of each Athena cast is pinned exactly: the guards the
    // table relies on (TRY_CAST for bigint overflow, is_finite for double overflow, TRY for
    // impossible dates, UTC reading of floating timestamps).
    const gate = (t: Cast) => `regexp_like(x, ${literal(`\\A(?:${CAST_PATTERNS[t]})\\z`)})`;
    assert.equal(athenaDialect.tryCast('x', 'BIGINT'), `(CASE WHEN ${gate('BIGINT')} THEN TRY_CAST(x AS bigint) END)`);
    assert.equal(athenaDialect.tryCast('x', 'DOUBLE'), `(CASE WHEN ${gate('DOUBLE')} AND is_finite(TRY_CAST(x AS double)) THEN TRY_CAST(x AS double) END)`);
    assert.equal(
      athenaDialect.tryCast('x', 'TIMESTAMP'),
      `(CASE WHEN ${gate('TIMESTAMP')} THEN TRY(CAST(from_iso8601_timestamp((CASE WHEN substr(x, length(x)) = 'Z' THEN x ELSE concat(x, 'Z') END)) AS timestamp(6))) END)`,
    );
    assert.equal(athenaDialect.tryCast('x', 'BOOLEAN'), `(CASE WHEN ${gate('BOOLEAN')} THEN TRY_CAST(x AS boolean) END)`);
  });

  test('the generated Athena staging and profile SQL gate every castable column, and parse as Trino', () => {
    const trino = new TrinoSQL();
    const castable: [string, Cast][] = [['ts', 'TIMESTAMP'], ['n', 'BIGINT'], ['x', 'DOUBLE'], ['b', 'BOOLEAN'], ['_ingested_at', 'TIMESTAMP'], ['_source_updated_at', 'TIMESTAMP']];
    for (const sql of [stagingSql(CASTS_DATASET, athenaDialect, 'raw'), batchProfileSql(CASTS_DATASET, athenaDialect, 'raw')]) {
      assert.deepEqual(trino.validate(sql), [], sql);
      for (const [column, type] of castable) {
        assert.ok(sql.includes(athenaDialect.tryCast(`CAST("${column}" AS varchar)`, type)), `${column} is not cast under the contract in:\n${sql}`);
      }
    }
  });

  test('the staging query uses the contract and counts every value outside it as a cast failure', async () => {
    const conn = await duckdb();
    await conn.run(`CREATE TABLE raw (id VARCHAR, ts VARCHAR, n VARCHAR, x VARCHAR, b VARCHAR, _ingested_at VARCHAR, _run_id VARCHAR, _source_updated_at VARCHAR, _source_id VARCHAR)`);
    await conn.run(`INSERT INTO raw VALUES
      ('a', '2023-06-04T14:16:36.000', '2.5', '1e3', '1', '2026-01-01T00:00:00.000Z', 'r', '2026-01-01T00:00:00.000Z', 's1'),
      ('b', '2023-06-04 14:16:36', '0x10', 'NaN', 'true', '2026-01-01T00:00:00.000Z', 'r', '2026-01-01T00:00:00.000Z', 's2'),
      ('c', '2023-06-04T14:16:36+02:00', '12', '2.5', 'false', '2026-01-01T00:00:00.000Z', 'r', '2026-01-01T00:00:00.000Z', 's3'),
      ('d', NULL, NULL, NULL, NULL, '2026-01-01T00:00:00.000Z', 'r', '2026-01-01T00:00:00.000Z', 's4')`);
    const [profile] = (await conn.runAndReadAll(batchProfileSql(CASTS_DATASET, duckdbDialect, 'raw'))).getRowObjectsJS();
    assert.equal(profile!.cast_failures__n, 2n); // "2.5" (no longer rounded to 3) and "0x10"
    assert.equal(profile!.cast_failures__x, 1n); // "NaN"
    assert.equal(profile!.cast_failures__b, 1n); // "1"
    assert.equal(profile!.cast_failures__ts, 2n); // space separator, +02:00 offset
    assert.equal(profile!.cast_failures___ingested_at, 0n);
    const rows = (await conn.runAndReadAll(`${stagingSql(CASTS_DATASET, duckdbDialect, 'raw')} ORDER BY id`)).getRowObjectsJS();
    assert.deepEqual(rows.map((r) => [r.id, normalize(r.n), normalize(r.x), normalize(r.b)]), [
      ['a', null, 1000, null],
      ['b', null, null, true],
      ['c', '12', 2.5, false],
      ['d', null, null, null],
    ]);
    conn.closeSync();
  });
});

describe('cast contract executed on Trino (the Athena dialect)', { skip: trinoSkip }, () => {
  test('Trino casts exactly the table, as DuckDB does: contract values cast, everything else is NULL', async () => {
    const trino = new TrinoClient(trinoUrl!);
    for (const [type, cases] of Object.entries(CASES) as [Cast, Case[]][]) {
      const values = cases.map(([input], i) => `(${i}, ${literal(input)})`).join(', ');
      const r = await trino.execute(`SELECT i, ${athenaDialect.tryCast('v', type)} AS c FROM (VALUES ${values}) AS t(i, v) ORDER BY i`);
      assert.equal(r.error, undefined, r.error?.message);
      const got = r.rows.map(([, c]) => {
        if (c === null) return null;
        if (type === 'BIGINT') return String(c);
        if (type === 'TIMESTAMP') return `${String(c).replace(' ', 'T').slice(0, 23)}Z`;
        return normalize(c);
      });
      for (let i = 0; i < cases.length; i++) {
        assert.deepEqual(got[i], cases[i]![1], `${type} ${JSON.stringify(cases[i]![0])}: Trino gave ${String(got[i])}, the contract says ${String(cases[i]![1])}`);
      }
    }
  });

  test('the Athena staging and profile SQL, executed on Trino, count and cast as DuckDB does', async () => {
    const trino = new TrinoClient(trinoUrl!);
    const raw = `(SELECT * FROM (VALUES
      ('a', '2023-06-04T14:16:36.000', '2.5', '1e3', '1', '2026-01-01T00:00:00.000Z', 'r', '2026-01-01T00:00:00.000Z', 's1'),
      ('b', '2023-06-04 14:16:36', '0x10', 'NaN', 'true', '2026-01-01T00:00:00.000Z', 'r', '2026-01-01T00:00:00.000Z', 's2'),
      ('c', '2023-06-04T14:16:36+02:00', '12', '2.5', 'false', '2026-01-01T00:00:00.000Z', 'r', '2026-01-01T00:00:00.000Z', 's3'),
      ('d', NULL, NULL, NULL, NULL, '2026-01-01T00:00:00.000Z', 'r', '2026-01-01T00:00:00.000Z', 's4')
    ) AS v(id, ts, n, x, b, _ingested_at, _run_id, _source_updated_at, _source_id))`;
    const profile = await trino.execute(batchProfileSql(CASTS_DATASET, athenaDialect, raw));
    assert.equal(profile.error, undefined, profile.error?.message);
    const p = Object.fromEntries(profile.columns.map((c, i) => [c.name, profile.rows[0]![i]]));
    assert.deepEqual([p.cast_failures__n, p.cast_failures__x, p.cast_failures__b, p.cast_failures__ts, p.cast_failures___ingested_at], [2, 1, 1, 2, 0]);
    const staged = await trino.execute(`SELECT id, n, x, b FROM (${stagingSql(CASTS_DATASET, athenaDialect, raw)}) AS s ORDER BY id`);
    assert.equal(staged.error, undefined, staged.error?.message);
    assert.deepEqual(staged.rows, [
      ['a', null, 1000, null],
      ['b', null, null, true],
      ['c', 12, 2.5, false],
      ['d', null, null, null],
    ]);
  });
});
