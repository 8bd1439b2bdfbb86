/**
 * The Athena dialect's percentile, executed on Trino, equals DuckDB's quantile_cont to the last
 * bit: a user sees the same p50/p90/p99 locally and deployed (Athena's approx_percentile would not).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { athenaDialect, duckdbDialect, type Dialect } from '../../containers/transform/src/dialect';
import { seededRandom } from '../../local/fire-incidents-generator';
import { TrinoClient } from '../../local/trino-client';
import { trinoSkip, trinoUrl } from '../support/trino';

describe('exact percentile: Athena dialect on Trino = DuckDB', { skip: trinoSkip }, () => {
  test('200 random groups (NULLs, single values, wide magnitudes) at five fractions: identical doubles', async () => {
    const rnd = seededRandom(7);
    const rows: string[] = [];
    for (let g = 0; g < 200; g++) {
      const n = g === 0 ? 0 : 1 + Math.floor(rnd() * 40);
      if (g === 0) rows.push('(0, CAST(NULL AS double))');
      for (let i = 0; i < n; i++) {
        const v = rnd() < 0.1 ? 'CAST(NULL AS double)' : (rnd() * 10 ** Math.floor(rnd() * 8)).toPrecision(1 + Math.floor(rnd() * 15));
        rows.push(`(${g}, ${v})`);
      }
    }
    const fractions = [0, 0.25, 0.5, 0.9, 0.99, 1];
    const sql = (d: Dialect): string =>
      `SELECT g, ${fractions.map((f, i) => `${d.percentile('x', f)} AS p${i}`).join(', ')} FROM (VALUES ${rows.join(', ')}) AS t(g, x) GROUP BY g ORDER BY g`;
    const trino = await new TrinoClient(trinoUrl!).execute(sql(athenaDialect));
    assert.equal(trino.error, undefined, trino.error?.message);
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const duck = (await conn.runAndReadAll(sql(duckdbDialect))).getRows().map((r) => r.map((v) => (v === null ? null : Number(v))));
    conn.closeSync();
    db.closeSync();
    assert.equal(trino.rows.length, 200);
    assert.deepEqual(trino.rows, duck);
    assert.equal(trino.rows[0]![1], null, 'a group of NULLs has no percentile');
  });
});
