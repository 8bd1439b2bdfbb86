/**
 * The local Athena endpoint through the real @aws-sdk/client-athena over HTTP, executing on the
 * shared Trino (TRINO_URL), with the transform's own statements where it has them.
 */
import {
  AthenaClient,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
  StopQueryExecutionCommand,
  type GetQueryResultsCommandOutput,
  type QueryExecution,
  type Row,
} from '@aws-sdk/client-athena';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  addColumnsSql,
  createDeletionsTableSql,
  createKeyScanTableSql,
  dropTableSql,
  optimizeSql,
  renameTableSql,
  vacuumSql,
} from '../../containers/transform/src/athena-sql';
import { AthenaQueryRunner } from '../../containers/transform/src/athena-query';
import { startAthenaServer, type AthenaServer } from '../../local/athena-server';
import { TrinoClient } from '../../local/trino-client';
import { trinoSkip, trinoUrl, uniqueSuffix } from '../support/trino';

interface Harness {
  client: AthenaClient;
  server: AthenaServer;
}

async function startHarness(dir: string, extra: { vacuumMaxSnapshotAgeSeconds?: number } = {}): Promise<Harness> {
  const server = await startAthenaServer({
    trino: new TrinoClient(trinoUrl!),
    workgroups: {
      primary: { outputDir: path.join(dir, 'results') },
      capped: { outputDir: path.join(dir, 'capped'), bytesScannedCutoffPerQuery: 1 },
    },
    ...extra,
  });
  const client = new AthenaClient({ endpoint: server.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  return { client, server };
}

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED']);

async function start(h: Harness, sql: string, database?: string, workgroup?: string): Promise<string> {
  const out = await h.client.send(
    new StartQueryExecutionCommand({ QueryString: sql, ...(workgroup ? { WorkGroup: workgroup } : {}), ...(database ? { QueryExecutionContext: { Database: database } } : {}) }),
  );
  return out.QueryExecutionId!;
}

/** Poll until `until` holds; fails (never hangs) after 5 minutes, naming the last state. */
async function waitFor(h: Harness, id: string, until: (q: QueryExecution) => boolean = (q) => TERMINAL.has(q.Status!.State!)): Promise<QueryExecution> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const q = (await h.client.send(new GetQueryExecutionCommand({ QueryExecutionId: id }))).QueryExecution!;
    if (until(q)) return q;
    assert.ok(Date.now() < deadline, `query ${id} still ${q.Status?.State} after 5 minutes: ${q.Query}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Run a statement to its end; throws with the reason unless it SUCCEEDED. */
async function run(h: Harness, sql: string, database?: string, workgroup?: string): Promise<QueryExecution> {
  const q = await waitFor(h, await start(h, sql, database, workgroup));
  if (q.Status?.State !== 'SUCCEEDED') throw new Error(`${q.Status?.State}: ${q.Status?.StateChangeReason}\n${sql}`);
  return q;
}

async function allPages(h: Harness, id: string, maxResults?: number): Promise<GetQueryResultsCommandOutput[]> {
  const pages: GetQueryResultsCommandOutput[] = [];
  let token: string | undefined;
  do {
    const page = await h.client.send(new GetQueryResultsCommand({ QueryExecutionId: id, NextToken: token, ...(maxResults ? { MaxResults: maxResults } : {}) }));
    pages.push(page);
    token = page.NextToken;
  } while (token);
  return pages;
}

/** Data rows (header row dropped) as VarCharValue arrays. */
async function rows(h: Harness, sql: string, database?: string): Promise<(string | undefined)[][]> {
  const q = await run(h, sql, database);
  const pages = await allPages(h, q.QueryExecutionId!);
  return pages.flatMap((p) => p.ResultSet!.Rows!).slice(1).map((r: Row) => r.Data!.map((d) => d.VarCharValue));
}

async function expectInvalid(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: Error & { AthenaErrorCode?: string; $metadata?: { httpStatusCode?: number } }) => {
    assert.equal(err.name, 'InvalidRequestException');
    assert.equal(err.$metadata?.httpStatusCode, 400);
    assert.match(err.message, message);
    return true;
  });
}

describe('local Athena endpoint: API', { skip: trinoSkip }, () => {
  let dir: string;
  let h: Harness;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'athena-api-'));
    h = await startHarness(dir);
  });
  after(async () => {
    await h?.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('pages a 2,500-row SELECT: header row once, every row once, NULLs without VarCharValue, CSV written', async () => {
    const sql = `SELECT x, IF(x % 10 = 0, NULL, 'v"' || CAST(x AS varchar)) AS s FROM UNNEST(sequence(1, 2500)) AS t(x) ORDER BY x`;
    const q = await run(h, sql);
    const id = q.QueryExecutionId!;
    assert.equal(q.StatementType, 'DML');
    assert.equal(q.WorkGroup, 'primary');
    assert.equal(q.EngineVersion?.EffectiveEngineVersion, 'Athena engine version 3');
    assert.equal(q.ResultConfiguration?.OutputLocation, `local://${path.join(dir, 'results')}/${id}.csv`);
    assert.ok(q.Status?.CompletionDateTime instanceof Date);

    const pages = await allPages(h, id);
    assert.deepEqual(pages.map((p) => p.ResultSet!.Rows!.length), [1000, 1000, 501]);
    const [first] = pages;
    assert.deepEqual(first!.ResultSet!.ResultSetMetadata!.ColumnInfo!.map((c) => [c.Name, c.Type, c.Nullable]), [
      ['x', 'bigint', 'UNKNOWN'],
      ['s', 'varchar', 'UNKNOWN'],
    ]);
    const all = pages.flatMap((p) => p.ResultSet!.Rows!);
    assert.deepEqual(all[0]!.Data, [{ VarCharValue: 'x' }, { VarCharValue: 's' }]);
    const data = all.slice(1);
    assert.deepEqual(
      data.map((r) => Number(r.Data![0]!.VarCharValue)),
      Array.from({ length: 2500 }, (_, i) => i + 1),
    );
    assert.deepEqual(data[9]!.Data![1], {});
    assert.equal(data[0]!.Data![1]!.VarCharValue, 'v"1');

    // Smaller pages: the header counts toward the first page, as on Athena.
    const small = await allPages(h, id, 700);
    assert.deepEqual(small.map((p) => p.ResultSet!.Rows!.length), [700, 700, 700, 401]);

    const csv = (await readFile(path.join(dir, 'results', `${id}.csv`), 'utf8')).split('\n');
    assert.equal(csv[0], '"x","s"');
    assert.equal(csv[1], '"1","v""1"');
    assert.equal(csv[10], '"10",');
    assert.equal(csv.length, 2502);
  });

  it('renders each type as Athena does', async () => {
    const sql = `SELECT 1.0E0 AS d1, 1e-5 AS d2, 12345678.9E0 AS d3, 0.5E0 AS d4, REAL '1.5' AS r, 9223372036854775807 AS big, 7 AS i,
      TRUE AS b, DATE '2020-01-02' AS dt, TIMESTAMP '2020-01-01 00:00:00' AS ts, TIMESTAMP '2020-01-01 00:00:00.123456' AS ts6,
      CAST(1.50 AS decimal(10,2)) AS dec, ARRAY[1, 2] AS arr, ARRAY['a', NULL] AS arrs,
      CAST(ROW('Point', ARRAY[1.5E0, 2E0]) AS ROW(type varchar, coordinates array(double))) AS geo,
      MAP(ARRAY['a'], ARRAY[1]) AS m, JSON '{"a":1}' AS j, X'0aff' AS bin, nan() AS n, CAST(NULL AS varchar) AS nul`;
    const q = await run(h, sql);
    const [page] = await allPages(h, q.QueryExecutionId!);
    const values = page!.ResultSet!.Rows![1]!.Data!.map((d) => d.VarCharValue);
    const types = page!.ResultSet!.ResultSetMetadata!.ColumnInfo!.map((c) => c.Type);
    assert.deepEqual(values, [
      '1.0',
      '1.0E-5',
      '1.23456789E7',
      '0.5',
      '1.5',
      '9223372036854775807',
      '7',
      'true',
      '2020-01-02',
      '2020-01-01 00:00:00',
      '2020-01-01 00:00:00.123456',
      '1.50',
      '[1, 2]',
      '[a, null]',
      '{type=Point, coordinates=[1.5, 2.0]}',
      '{a=1}',
      '{"a":1}',
      '0a ff',
      'NaN',
      undefined,
    ]);
    assert.deepEqual(types, [
      'double', 'double', 'double', 'double', 'float', 'bigint', 'integer', 'boolean', 'date', 'timestamp', 'timestamp',
      'decimal', 'array', 'array', 'row', 'map', 'json', 'varbinary', 'double', 'varchar',
    ]);
    const dec = page!.ResultSet!.ResultSetMetadata!.ColumnInfo![11]!;
    assert.deepEqual([dec.Precision, dec.Scale], [10, 2]);
  });

  it('reports a FAILED statement as Athena v3 does, and refuses its results with the reason', async () => {
    const id = await start(h, 'SELECT nope FROM (VALUES 1) AS t(x)');
    const q = await waitFor(h, id);
    assert.equal(q.Status?.State, 'FAILED');
    assert.equal(q.Status?.StateChangeReason, "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved");
    assert.deepEqual(q.Status?.AthenaError, {
      ErrorCategory: 2,
      ErrorType: 1000,
      Retryable: false,
      ErrorMessage: "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved",
    });
    await expectInvalid(h.client.send(new GetQueryResultsCommand({ QueryExecutionId: id })), /^COLUMN_NOT_FOUND: line 1:8/);
  });

  it('refuses results before completion and cancels a long query on Trino', async () => {
    const marker = uniqueSuffix();
    const id = await start(h, `SELECT count(*) /* ${marker} */ FROM UNNEST(sequence(1, 10000)) a(x) CROSS JOIN UNNEST(sequence(1, 10000)) b(y) CROSS JOIN UNNEST(sequence(1, 1000)) c(z) WHERE x + y + z > 3`);
    await waitFor(h, id, (q) => q.Status?.State === 'RUNNING');
    await expectInvalid(h.client.send(new GetQueryResultsCommand({ QueryExecutionId: id })), /^Query has not yet finished\. Current state: RUNNING$/);
    await h.client.send(new StopQueryExecutionCommand({ QueryExecutionId: id }));
    const q = await waitFor(h, id);
    assert.equal(q.Status?.State, 'CANCELLED');
    // Trino itself stopped it (not only the endpoint's bookkeeping).
    const trino = new TrinoClient(trinoUrl!);
    for (let i = 0; ; i += 1) {
      const r = await trino.execute(`SELECT state, error_code FROM system.runtime.queries WHERE query LIKE '%${marker}%' AND query NOT LIKE '%system.runtime%'`);
      if (r.rows[0]?.[0] === 'FAILED') {
        assert.equal(r.rows[0][1], 'USER_CANCELED');
        break;
      }
      assert.ok(i < 100, `Trino query state ${String(r.rows[0]?.[0])}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  });

  it('refuses what Athena refuses at the API: unknown workgroup, oversize query, unknown id, unknown operation', async () => {
    await expectInvalid(h.client.send(new StartQueryExecutionCommand({ QueryString: 'SELECT 1', WorkGroup: 'nope' })), /^WorkGroup nope is not found\.$/);
    await expectInvalid(h.client.send(new StartQueryExecutionCommand({ QueryString: `SELECT '${'x'.repeat(262_144)}'` })), /less than or equal to 262144/);
    await expectInvalid(h.client.send(new GetQueryExecutionCommand({ QueryExecutionId: '00000000-0000-0000-0000-000000000000' })), /was not found/);
    const res = await fetch(h.server.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonAthena.CreateNotebook' },
      body: '{}',
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { __type: string }).__type, 'UnknownOperationException');
  });

  it('answers the same ClientRequestToken with the same query', async () => {
    const token = `tok-${uniqueSuffix()}-${uniqueSuffix()}-${uniqueSuffix()}`;
    const a = await h.client.send(new StartQueryExecutionCommand({ QueryString: 'SELECT 42', ClientRequestToken: token }));
    const b = await h.client.send(new StartQueryExecutionCommand({ QueryString: 'SELECT 42', ClientRequestToken: token }));
    assert.equal(a.QueryExecutionId, b.QueryExecutionId);
    await waitFor(h, a.QueryExecutionId!);
  });

  it('serves the transform’s own AthenaQueryRunner', async () => {
    const runner = new AthenaQueryRunner(h.client, { workgroup: 'primary', pollInitialMs: 20, pollMaxMs: 100 });
    assert.deepEqual(await runner.execute("SELECT 1 AS n, 'a' AS s, CAST(NULL AS double) AS d UNION ALL SELECT 2, 'b', 2.5E0 ORDER BY n"), [
      { n: 1, s: 'a', d: null },
      { n: 2, s: 'b', d: 2.5 },
    ]);
    await assert.rejects(runner.execute('SELECT nope', 'probe'), /Athena probe .* FAILED: COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved/);
  });

  it('keeps a statement Trino rejects rejected (no fixing beyond the listed rules)', async () => {
    for (const [sql, reason] of [
      ['SELECT `x` FROM (VALUES 1) AS t(x)', /^SYNTAX_ERROR: .*backquoted identifiers are not supported/],
      ['OPTIMIZE nope', /^SYNTAX_ERROR: line 1:1: mismatched input 'OPTIMIZE'/],
    ] as const) {
      const q = await waitFor(h, await start(h, sql));
      assert.equal(q.Status?.State, 'FAILED');
      assert.match(q.Status?.StateChangeReason ?? '', reason);
    }
  });
});

describe('local Athena endpoint: translated statements on Trino', { skip: trinoSkip }, () => {
  let dir: string;
  let h: Harness;
  let db: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'athena-ddl-'));
    h = await startHarness(dir, { vacuumMaxSnapshotAgeSeconds: 1 });
    db = `athena_${uniqueSuffix()}`;
    const q = await run(h, `CREATE SCHEMA hive.${db} WITH (location = 'local://${dir}/warehouse')`);
    assert.equal(q.StatementType, 'DDL');
    assert.match(q.ResultConfiguration!.OutputLocation!, /\.txt$/);
  });
  after(async () => {
    // The shared Trino's metastore outlives the run: drop what this suite made (hive's DROP
    // SCHEMA ... CASCADE refuses Iceberg tables, so table by table).
    const trino = new TrinoClient(trinoUrl!);
    const tables = await trino.execute(`SELECT table_name FROM hive.information_schema.tables WHERE table_schema = '${db}'`);
    for (const [t] of tables.rows) await trino.execute(`DROP TABLE hive."${db}"."${String(t)}"`);
    await trino.execute(`DROP SCHEMA IF EXISTS hive."${db}"`);
    await h?.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const tableSql = (t: string): string => `"${db}"."${t}"`;
  const newIcebergTable = async (t: string): Promise<void> => {
    await run(h, createDeletionsTableSql(tableSql(t), `local://${dir}/tables/${t}/`));
  };

  it('Iceberg CTAS (the transform’s) lands in the iceberg catalog; OPTIMIZE compacts several INSERTs', async () => {
    await newIcebergTable('d');
    const props = await rows(h, `SELECT key, value FROM "${db}"."d$properties" WHERE key = 'write.format.default'`);
    assert.deepEqual(props, [['write.format.default', 'PARQUET']]);
    for (let i = 0; i < 3; i += 1) {
      const q = await run(h, `INSERT INTO ${tableSql('d')} VALUES ('k${i}', TIMESTAMP '2020-01-01 00:00:00', 'r')`);
      assert.equal((await h.client.send(new GetQueryResultsCommand({ QueryExecutionId: q.QueryExecutionId }))).UpdateCount, 1);
    }
    const files = async (): Promise<number> => Number((await rows(h, `SELECT count(*) FROM "${db}"."d$files"`))[0]![0]);
    assert.equal(await files(), 3);
    await run(h, optimizeSql(tableSql('d')));
    assert.equal(await files(), 1);
    assert.deepEqual(await rows(h, `SELECT key, detected_at FROM ${tableSql('d')} ORDER BY key`), [
      ['k0', '2020-01-01 00:00:00.000000'],
      ['k1', '2020-01-01 00:00:00.000000'],
      ['k2', '2020-01-01 00:00:00.000000'],
    ]);
    // Workgroup data usage control: the scan is over the 1-byte cutoff, so Athena cancels it.
    const capped = await waitFor(h, await start(h, `SELECT * FROM ${tableSql('d')}`, undefined, 'capped'));
    assert.equal(capped.Status?.State, 'CANCELLED');
    assert.match(capped.Status?.StateChangeReason ?? '', /Bytes scanned limit was exceeded/);
  });

  it('VACUUM expires snapshots older than the (1 s) retention', async () => {
    await newIcebergTable('v');
    for (let i = 0; i < 3; i += 1) await run(h, `INSERT INTO ${tableSql('v')} VALUES ('k${i}', NULL, 'r')`);
    const snapshots = async (): Promise<number> => Number((await rows(h, `SELECT count(*) FROM "${db}"."v$snapshots"`))[0]![0]);
    assert.equal(await snapshots(), 4);
    await new Promise((r) => setTimeout(r, 1500));
    await run(h, vacuumSql(db, 'v'));
    assert.equal(await snapshots(), 1);
    assert.equal((await rows(h, `SELECT count(*) FROM ${tableSql('v')}`))[0]![0], '3');
  });

  it('RENAME TO (Hive DDL, backticks) then the table answers under its new name; DROP removes it', async () => {
    await newIcebergTable('r1');
    await run(h, `INSERT INTO ${tableSql('r1')} VALUES ('a', NULL, 'r')`);
    const renamed = await run(h, renameTableSql(db, 'r1', 'r2'));
    assert.equal(renamed.StatementType, 'DDL');
    assert.deepEqual(await rows(h, `SELECT key FROM ${tableSql('r2')}`), [['a']]);
    await run(h, dropTableSql(db, 'r2'));
    await run(h, dropTableSql(db, 'r2')); // IF EXISTS: a second drop succeeds
    assert.deepEqual(await rows(h, `SELECT count(*) FROM information_schema.tables WHERE table_schema = '${db}' AND table_name IN ('r1', 'r2')`, db), [['0']]);
  });

  it('ADD COLUMNS then the new columns read NULL on existing rows', async () => {
    await newIcebergTable('c');
    await run(h, `INSERT INTO ${tableSql('c')} VALUES ('a', NULL, 'r')`);
    await run(h, addColumnsSql(db, 'c', [
      { name: '_content_hash', type: 'VARCHAR' },
      { name: 'seen_at', type: 'TIMESTAMP' },
    ]));
    assert.deepEqual(await rows(h, `SELECT key, _content_hash, seen_at FROM c`, db), [['a', undefined, undefined]]);
    await run(h, `INSERT INTO ${tableSql('c')} (key, seen_at) VALUES ('b', TIMESTAMP '2021-05-06 07:08:09.123456')`);
    assert.deepEqual(await rows(h, `SELECT seen_at FROM c WHERE key = 'b'`, db), [['2021-05-06 07:08:09.123456']]);
  });

  it('CREATE EXTERNAL TABLE ... STORED AS TEXTFILE reads the key lists', async () => {
    const keys = path.join(dir, 'keysets', 'd');
    await mkdir(keys, { recursive: true });
    await writeFile(path.join(keys, 'part-1'), 'a\nb\n');
    await writeFile(path.join(keys, 'part-2'), 'c\n');
    const sql = createKeyScanTableSql(db, 'k', `local://${keys}/`);
    await run(h, sql);
    await run(h, sql); // IF NOT EXISTS
    assert.deepEqual(await rows(h, `SELECT key, "$path" FROM ${tableSql('k')} ORDER BY key`), [
      ['a', `local://${keys}/part-1`],
      ['b', `local://${keys}/part-1`],
      ['c', `local://${keys}/part-2`],
    ]);
  });
});
