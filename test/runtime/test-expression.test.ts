/**
 * validateTestExpression accepts exactly one row-level boolean expression: everything it accepts
 * parses as ONE statement in the Trino grammar (dt-sql-parser) when spliced into the data-test
 * query, and runs as one statement in DuckDB; everything that could end the parenthesis, the
 * statement or the query early, or reach beyond the row, is refused with a reason.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { TrinoSQL } from 'dt-sql-parser';
import { parsePropertiesFile } from '../../containers/transform/src/model-yaml';
import { validateTestExpression } from '../../runtime/test-expression';

/** The query the transform builds around a test expression (containers/transform/src/data-tests.ts). */
const wrap = (expr: string) => `SELECT count(*) AS failing FROM t WHERE NOT (${expr})`;

const ACCEPTED = [
  'arrival_dttm >= alarm_dttm',
  'suppression_units BETWEEN 0 AND 500',
  "battalion IN ('B01', 'B02') OR battalion IS NULL",
  "address LIKE '%STREET%' AND NOT (city = 'it''s fine')",
  "city <> 'it''s) OR (true'", // a doubled quote stays inside the literal: nothing escapes
  '"order" > 0',
  'arrival_dttm IS DISTINCT FROM alarm_dttm',
  'extract(year FROM alarm_dttm) >= 2000',
  "substring(battalion FROM 1 FOR 1) = 'B'",
  'CASE WHEN suppression_units > 0 THEN suppression_personnel >= suppression_units ELSE true END',
  'coalesce(suppression_units, 0) + coalesce(ems_units, 0) >= 0',
  'abs(estimated_property_loss) < 1e12',
  'length(trim(battalion)) <= 3',
];

const REJECTED: [string, RegExp][] = [
  ["1=1); COPY (SELECT * FROM t) TO '/tmp/x.csv'; SELECT (1", /contains ";"/],
  ["city = 'a;b'", /contains ";"/],
  ['true -- AND false', /comment/],
  ['true /* ) OR (true */', /comment/],
  ['true) OR (true', /closes a parenthesis it did not open/],
  ['(true', /unclosed parenthesis/],
  ['(SELECT count(*) FROM t) > 0', /keyword SELECT/],
  ["(FROM read_text('/etc/passwd')) IS NOT NULL", /keyword FROM/],
  ['extract(year FROM (FROM t)) > 0', /keyword FROM/],
  ['true UNION ALL SELECT 1', /keyword UNION/],
  ['a, b', /top-level ","/],
  ["city = 'unterminated", /unterminated string literal/],
  ['"order > 0', /unterminated quoted identifier/],
  ['$$x$$ = 1', /contains "\$"/],
  ['city = ?', /contains "\?"/],
  ["E'\\'' ) OR (true OR 'x' = E'\\''", /backslash/], // DuckDB E-strings escape quotes with \
  ["regexp_matches(city, '\\d+')", /backslash/],
  ['   ', /is empty/],
  ['pragma_version() IS NOT NULL OR true', /^$/], // a function name is fine: only whole keywords are refused
];

describe('data-test expressions', () => {
  test('accepted expressions are one statement in the Trino grammar and run in DuckDB', async () => {
    const trino = new TrinoSQL();
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    await conn.run(`CREATE TABLE t (arrival_dttm TIMESTAMP, alarm_dttm TIMESTAMP, suppression_units BIGINT, suppression_personnel BIGINT,
      ems_units BIGINT, battalion VARCHAR, address VARCHAR, city VARCHAR, "order" BIGINT, estimated_property_loss DOUBLE)`);
    await conn.run(`INSERT INTO t VALUES ('2023-06-04 14:21:40', '2023-06-04 14:16:36', 1, 5, 0, 'B01', 'PINE STREET', 'San Francisco', 1, 100)`);
    for (const expr of ACCEPTED) {
      assert.equal(validateTestExpression(expr), undefined, expr);
      const sql = wrap(expr);
      assert.deepEqual(trino.validate(sql).map((e) => e.message), [], sql);
      assert.equal(trino.splitSQLByStatement(sql)?.length, 1, sql);
      const rows = (await conn.runAndReadAll(sql)).getRowObjectsJS();
      assert.equal(rows.length, 1, sql);
    }
    conn.closeSync();
  });

  test('anything that is not one row-level expression is refused with its reason', () => {
    for (const [expr, reason] of REJECTED) {
      const problem = validateTestExpression(expr) ?? '';
      assert.match(problem, reason, `${expr} -> ${problem || 'accepted'}`);
    }
  });

  test('the COPY attack is indeed several statements to Trino: the lexer refuses what the grammar splits', () => {
    const [attack] = REJECTED[0]!;
    const trino = new TrinoSQL();
    assert.notDeepEqual(trino.validate(wrap(attack)), []);
  });

  test('mart tests get the same check, naming the mart file and the test', () => {
    const attack = "1=1); COPY (SELECT 1) TO '/tmp/x.csv'; SELECT (1";
    const text = `version: 2\nmodels:\n  - name: m\n    tests:\n      - expression_is_true:\n          name: evil\n          expression: ${JSON.stringify(attack)}\n`;
    assert.throws(() => parsePropertiesFile('models/x/m.yml', text), /models\/x\/m\.yml:7:23: model "m": expression test "evil" contains ";"/);
  });
});
