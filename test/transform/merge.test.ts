/**
 * THE merge statement (merge-sql.ts) executed on DuckDB through the engine, and the content hash
 * both engines compute. A mutated merge statement (newer-version condition inverted or dropped,
 * content condition dropped) must be caught by the same checks that pass for the real one.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { TrinoSQL } from 'dt-sql-parser';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { openObjectStore } from '../../runtime/object-store';
import { mergeSql as athenaMergeSql } from '../../containers/transform/src/athena-sql';
import { contentHashSql } from '../../containers/transform/src/content-hash';
import { athenaDialect, duckdbDialect } from '../../containers/transform/src/dialect';
import { DuckDbEngine } from '../../containers/transform/src/duckdb-engine';
import { contentChangedCondition, mergeSql, newerCondition } from '../../containers/transform/src/merge-sql';
import type { CuratedColumn } from '../../containers/transform/src/columns';
import { curatedColumns } from '../../containers/transform/src/staging';
import { runTransform } from '../../containers/transform/src/transform';
import { incident, writeRawObject } from './raw-fixture';

const DATASET = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'));
const NAME = DATASET.name;

type Render = typeof mergeSql;

/**
 * Two runs through the DuckDB engine with `render` as the merge statement; returns every way the
 * outcome differs from the merge contract (empty = the contract holds).
 */
async function mergeContractViolations(render: Render): Promise<string[]> {
  const root = mkdtempSync(path.join(tmpdir(), 'merge-'));
  const rawDir = path.join(root, 'raw');
  const curatedDir = path.join(root, 'curated');
  const stores = { rawStore: openObjectStore(rawDir), curatedStore: openObjectStore(curatedDir) };
  const run = async (runId: string) => {
    const engine = await DuckDbEngine.open({ dataset: DATASET, rawDir, curatedDir, runId, renderMerge: render });
    try {
      return await runTransform({ dataset: DATASET, engine, ...stores, runId, marts: [] });
    } finally {
      await engine.close();
    }
  };
  writeRawObject(rawDir, NAME, '2024-03-01', 'a', [0, 1, 2, 3, 4].map((i) => incident(i)));
  await run('r1');
  const older = incident(1, { battalion: 'OLD' });
  older._source_updated_at = '2024-01-01T00:00:00.000Z';
  writeRawObject(rawDir, NAME, '2024-03-02', 'b', [
    incident(0, { battalion: 'NEW' }, 1), // newer, content changed: updated
    older, // older, content changed: ignored
    incident(2, {}, 1), // newer (:updated_at moved), same content: unchanged
    incident(3), // the same version again: unchanged
    incident(5, {}, 1), // new key: inserted
  ]);
  const s = await run('r2');
  const problems: string[] = [];
  const expect = (what: string, actual: unknown, expected: unknown): void => {
    if (JSON.stringify(actual) !== JSON.stringify(expected)) problems.push(`${what}: ${JSON.stringify(actual)} != ${JSON.stringify(expected)}`);
  };
  expect('counts', [s.rowsInserted, s.rowsUpdated, s.rowsUnchanged], [1, 1, 3]);
  const engine = await DuckDbEngine.open({ dataset: DATASET, rawDir, curatedDir, runId: 'read' });
  try {
    await engine.prepare();
    const rows = await engine.rows(`SELECT id, battalion, _source_updated_at AS u FROM ${engine.tableRef('curated')} ORDER BY id`);
    expect('keys', rows.map((r) => r.id), ['1000000', '1000010', '1000020', '1000030', '1000040', '1000050']);
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect('newer changed row applied', byId.get('1000000')?.battalion, 'NEW');
    expect('older row ignored', byId.get('1000010')?.battalion, incident(1).battalion);
    expect('same content not rewritten', byId.get('1000020')?.u, '2024-02-01T00:00:00.000Z');
  } finally {
    await engine.close();
  }
  return problems;
}

describe('the merge statement, executed on DuckDB', () => {
  test('the real statement keeps the contract: insert new keys, replace only by newer different content', async () => {
    assert.deepEqual(await mergeContractViolations(mergeSql), []);
  });

  const mutations: [string, (sql: string) => string][] = [
    ['newer-version condition inverted', (sql) => sql.replace(newerCondition(), `NOT ${newerCondition()}`)],
    ['newer-version condition dropped', (sql) => sql.replace(`${newerCondition()} AND `, '')],
    ['content condition dropped', (sql) => sql.replace(` AND ${contentChangedCondition()}`, '')],
  ];
  for (const [what, mutate] of mutations) {
    test(`a merge with the ${what} is caught`, async () => {
      const mutated: Render = (...args) => {
        const sql = mergeSql(...args);
        const out = mutate(sql);
        assert.notEqual(out, sql, 'the mutation applies to the rendered statement');
        return out;
      };
      const problems = await mergeContractViolations(mutated);
      assert.ok(problems.length > 0, `a merge with the ${what} passed the contract checks`);
    });
  }

  test('Athena runs the same statement, rendered in Trino and parsed by its grammar', () => {
    const staged = 'SELECT * FROM staged_rows';
    const athena = athenaMergeSql(DATASET, staged, '"db"."t"', [2023]);
    assert.deepEqual(new TrinoSQL().validate(athena), []);
    assert.ok(athena.includes(`WHEN MATCHED AND coalesce(${newerCondition()} AND ${contentChangedCondition()}, false) THEN UPDATE`));
    // Same clauses as the DuckDB rendering; only the year filter on the staged rows is added.
    const duck = mergeSql(DATASET, duckdbDialect, staged, '"db"."t"');
    assert.equal(athena.split('\n').slice(2).join('\n'), duck.split('\n').slice(2).join('\n'));
  });
});

/** The canonical serialization of content-hash.ts, written independently in TypeScript. */
function referenceHash(values: { type: CuratedColumn['type']; value: unknown }[]): string {
  const text = (type: CuratedColumn['type'], v: unknown): string => {
    switch (type) {
      case 'VARCHAR':
        return String(v);
      case 'BIGINT':
        return String(v);
      case 'BOOLEAN':
        return v ? 'true' : 'false';
      case 'DOUBLE':
        return (v as number).toFixed(9);
      case 'TIMESTAMP':
        return `${(v as string).slice(0, 19)}.${((v as string).split('.')[1] ?? '').padEnd(6, '0')}`;
    }
  };
  const fields = values.map(({ type, value }) => {
    if (value === null) return '-';
    const t = text(type, value);
    return `${[...t].length}:${t}`;
  });
  return createHash('md5').update(fields.join(','), 'utf8').digest('hex');
}

describe('content hash', () => {
  const cols: CuratedColumn[] = [
    { name: 's', type: 'VARCHAR', source: 's', castable: false },
    { name: 'i', type: 'BIGINT', source: 'i', castable: true },
    { name: 'd', type: 'DOUBLE', source: 'd', castable: true },
    { name: 't', type: 'TIMESTAMP', source: 't', castable: true },
    { name: 'b', type: 'BOOLEAN', source: 'b', castable: true },
  ];
  const rows = [
    ["'Nob Hill'", 42, 1000.5, "'2023-06-04 14:16:36.123'", 'true'],
    ["'café 🔥 \u{1F468}\u200D\u{1F469}\u200D\u{1F467} e\u0301, 3:x'", -7, -0.25, "'2023-06-04 14:16:36'", 'false'],
    ['NULL', 'NULL', 'NULL', 'NULL', 'NULL'],
    ["''", 0, 37.7749, "'1999-12-31 23:59:59.5'", 'NULL'],
    ["'-'", 'NULL', 0, 'NULL', 'true'],
  ];
  const js: { type: CuratedColumn['type']; value: unknown }[][] = [
    [{ type: 'VARCHAR', value: 'Nob Hill' }, { type: 'BIGINT', value: 42 }, { type: 'DOUBLE', value: 1000.5 }, { type: 'TIMESTAMP', value: '2023-06-04T14:16:36.123' }, { type: 'BOOLEAN', value: true }],
    [{ type: 'VARCHAR', value: 'café 🔥 \u{1F468}\u200D\u{1F469}\u200D\u{1F467} e\u0301, 3:x' }, { type: 'BIGINT', value: -7 }, { type: 'DOUBLE', value: -0.25 }, { type: 'TIMESTAMP', value: '2023-06-04T14:16:36' }, { type: 'BOOLEAN', value: false }],
    cols.map((c) => ({ type: c.type, value: null })),
    [{ type: 'VARCHAR', value: '' }, { type: 'BIGINT', value: 0 }, { type: 'DOUBLE', value: 37.7749 }, { type: 'TIMESTAMP', value: '1999-12-31T23:59:59.5' }, { type: 'BOOLEAN', value: null }],
    [{ type: 'VARCHAR', value: '-' }, { type: 'BIGINT', value: null }, { type: 'DOUBLE', value: 0 }, { type: 'TIMESTAMP', value: null }, { type: 'BOOLEAN', value: true }],
  ];

  test('DuckDB computes the documented canonical hash (checked against an independent implementation)', async () => {
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    try {
      await conn.run('CREATE TABLE x (n INTEGER, s VARCHAR, i BIGINT, d DOUBLE, t TIMESTAMP, b BOOLEAN)');
      for (const [n, r] of rows.entries()) await conn.run(`INSERT INTO x VALUES (${n}, ${r.join(', ')})`);
      const got = (await conn.runAndReadAll(`SELECT ${contentHashSql(cols, duckdbDialect)} AS h FROM x ORDER BY n`)).getRowObjectsJS().map((r) => r.h);
      assert.deepEqual(got, js.map(referenceHash));
      assert.equal(new Set(got).size, got.length, 'different contents, different hashes');
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  });

  test('the Athena expression is the same serialization with Trino spellings, and parses', () => {
    const athena = contentHashSql(cols, athenaDialect);
    assert.deepEqual(new TrinoSQL().validate(`SELECT ${athena} AS h FROM x`), []);
    const normalized = athena
      .replace(/^lower\(to_hex\(md5\(to_utf8\((.*)\)\)\)\)$/, 'md5($1)')
      .replace(/to_iso8601\(CAST\(("t") AS timestamp\(6\)\)\)/g, "strftime($1, '%Y-%m-%dT%H:%M:%S.%f')")
      .replace(/AS varchar\)/g, 'AS VARCHAR)');
    assert.equal(normalized, contentHashSql(cols, duckdbDialect));
  });

  test('the hash covers the declared columns (points by coordinates), not the ingestion metadata', () => {
    const sql = contentHashSql(curatedColumns(DATASET), duckdbDialect);
    for (const c of ['battalion', 'incident_date', 'longitude', 'latitude']) assert.ok(sql.includes(`"${c}"`), c);
    for (const c of ['_ingested_at', '_source_updated_at', '_source_id', '_run_id', '_content_hash', '"point"']) assert.ok(!sql.includes(c.startsWith('"') ? c : `"${c}"`), c);
  });

  test('a wide row (more pieces than one Trino concat takes) hashes the same serialization', async () => {
    // 90 columns: 269 concat arguments, past Trino's 254, so the expression is grouped.
    const wide: CuratedColumn[] = Array.from({ length: 90 }, (_, i) => ({ name: `c${i}`, type: i % 2 ? 'BIGINT' : 'VARCHAR', source: `c${i}`, castable: i % 2 === 1 }));
    const value = (i: number): unknown => (i % 7 === 3 ? null : i % 2 ? i * 11 : `v,${i}:-`);
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    try {
      await conn.run(`CREATE TABLE x AS SELECT ${wide.map((c, i) => `CAST(${value(i) === null ? 'NULL' : typeof value(i) === 'string' ? `'${String(value(i))}'` : String(value(i))} AS ${c.type}) AS ${c.name}`).join(', ')}`);
      const [row] = (await conn.runAndReadAll(`SELECT ${contentHashSql(wide, duckdbDialect)} AS h FROM x`)).getRowObjectsJS();
      assert.equal(row!.h, referenceHash(wide.map((c, i) => ({ type: c.type, value: value(i) }))));
    } finally {
      conn.closeSync();
      db.closeSync();
    }
    const athena = contentHashSql(wide, athenaDialect);
    assert.deepEqual(new TrinoSQL().validate(`SELECT ${athena} AS h FROM x`), []);
    const maxArgs = Math.max(...[...athena.matchAll(/concat\(/g)].map((m) => topLevelArgs(athena, m.index + 'concat('.length)));
    assert.ok(maxArgs <= 254, `a concat with ${maxArgs} arguments (Trino takes at most 254)`);
  });
});

/** Number of top-level comma-separated arguments of the call whose argument list starts at `start`. */
function topLevelArgs(sql: string, start: number): number {
  let depth = 0;
  let inString = false;
  let args = 1;
  for (let i = start; i < sql.length; i++) {
    const ch = sql[i];
    if (inString) {
      if (ch === "'") inString = false;
      continue;
    }
    if (ch === "'") inString = true;
    else if (ch === '(') depth++;
    else if (ch === ')') {
      if (depth === 0) return args;
      depth--;
    } else if (ch === ',' && depth === 0) args++;
  }
  return args;
}
