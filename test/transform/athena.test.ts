import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  AthenaClient,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
  StopQueryExecutionCommand,
} from '@aws-sdk/client-athena';
import { mockClient } from 'aws-sdk-client-mock';
import { HiveSQL, TrinoSQL } from 'dt-sql-parser';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { AthenaEngine } from '../../containers/transform/src/athena-engine';
import { AthenaQueryError, AthenaQueryRunner } from '../../containers/transform/src/athena-query';
import {
  createCuratedTableSql,
  dropTableSql,
  martCtasSql,
  mergePreviewSql,
  mergeSql,
  rawBatchSql,
  stagedBatchSql,
  tableExistsSql,
} from '../../containers/transform/src/athena-sql';
import { curatedTests, testQuery } from '../../containers/transform/src/data-tests';
import { athenaDialect, duckdbDialect } from '../../containers/transform/src/dialect';
import { loadMarts, renderMart } from '../../containers/transform/src/models';
import { batchProfileSql } from '../../containers/transform/src/staging';

const DATASET = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'));
const trino = new TrinoSQL();

function assertTrino(sql: string, what: string): void {
  const errors = trino.validate(sql);
  assert.deepEqual(errors, [], `${what} does not parse as Trino SQL:\n${sql}\n${JSON.stringify(errors)}`);
}

describe('Athena SQL', () => {
  const target = '"curated_db"."sf_fire_incidents"';
  const raw = rawBatchSql('"raw_db"."sf_fire_incidents"', [
    { ingestDate: '2024-03-01', path: 's3://raw-bucket/raw/sf-fire-incidents/ingest_date=2024-03-01/x-1.gz' },
    { ingestDate: '2024-03-02', path: "s3://raw-bucket/raw/sf-fire-incidents/ingest_date=2024-03-02/o'brien.gz" },
  ]);
  const staged = stagedBatchSql(DATASET, raw);

  test('every statement the engine sends parses with the Trino grammar', () => {
    assertTrino(tableExistsSql('curated_db', 'sf_fire_incidents'), 'table lookup');
    assertTrino(createCuratedTableSql(DATASET, target, 's3://curated/curated/sf-fire-incidents/table/'), 'create table');
    assertTrino(batchProfileSql(DATASET, athenaDialect, raw), 'batch profile');
    assertTrino(staged, 'staging');
    assertTrino(mergePreviewSql(DATASET, staged, target), 'merge preview');
    assertTrino(mergeSql(DATASET, staged, target, [2022, 2023, -1]), 'merge');
    const marts = loadMarts(DATASET);
    assert.ok(marts.length >= 3);
    for (const m of marts) {
      const select = renderMart(m, athenaDialect, (ref) => (ref === 'curated' ? target : `"curated_db"."sf_fire_incidents__${ref}"`));
      assertTrino(select, `mart ${m.name}`);
      assertTrino(martCtasSql(`"curated_db"."sf_fire_incidents__${m.name}"`, 's3://c/x/', select), `mart ctas ${m.name}`);
      for (const t of m.tests) assertTrino(testQuery(t, m.name, '"db"."m"').sql, `test ${m.name}`);
    }
    for (const t of curatedTests(DATASET, target)) assertTrino(t.sql, `test ${t.name}`);
  });

  test('the grammar check can fail, and the dialects differ only where they must', () => {
    assert.notDeepEqual(trino.validate('SELECT quantile_cont(x, 0.5) FROM t QUALIFY 1 = 1'), []);
    assert.match(renderMart(loadMarts(DATASET).find((m) => m.name === 'response_time_by_neighborhood')!, athenaDialect, () => 't'), /approx_percentile/);
    assert.match(renderMart(loadMarts(DATASET).find((m) => m.name === 'response_time_by_neighborhood')!, duckdbDialect, () => 't'), /quantile_cont/);
    assert.match(staged, /from_iso8601_timestamp/);
    assert.match(staged, /json_format\(CAST\("point" AS json\)\)/);
    assert.match(raw, /'s3:\/\/raw-bucket\/raw\/sf-fire-incidents\/ingest_date=2024-03-02\/o''brien\.gz'/);
  });

  test('DROP TABLE (Hive DDL on Athena) parses with the Hive grammar', () => {
    assert.deepEqual(new HiveSQL().validate(dropTableSql('curated_db', 'sf_fire_incidents__x')), []);
  });
});

function runner(client: AthenaClient, clock = { t: 0 }) {
  const sleeps: number[] = [];
  const r = new AthenaQueryRunner(client, {
    workgroup: 'wg',
    pollInitialMs: 100,
    pollMaxMs: 400,
    timeoutMs: 1_000,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock.t += ms;
    },
    now: () => clock.t,
  });
  return { r, sleeps };
}

describe('Athena query lifecycle', () => {
  test('success: polls with backoff in the workgroup and follows result pages', async () => {
    const athena = mockClient(AthenaClient);
    athena.on(StartQueryExecutionCommand).resolves({ QueryExecutionId: 'q1' });
    athena
      .on(GetQueryExecutionCommand)
      .resolvesOnce({ QueryExecution: { Status: { State: 'QUEUED' } } })
      .resolvesOnce({ QueryExecution: { Status: { State: 'RUNNING' } } })
      .resolvesOnce({ QueryExecution: { Status: { State: 'RUNNING' } } })
      .resolves({ QueryExecution: { Status: { State: 'SUCCEEDED' } } });
    const meta = { ColumnInfo: [{ Name: 'battalion', Type: 'varchar' }, { Name: 'n', Type: 'bigint' }] };
    athena
      .on(GetQueryResultsCommand, { QueryExecutionId: 'q1', NextToken: undefined })
      .resolves({
        ResultSet: { ResultSetMetadata: meta, Rows: [{ Data: [{ VarCharValue: 'battalion' }, { VarCharValue: 'n' }] }, { Data: [{ VarCharValue: 'B01' }, { VarCharValue: '3' }] }] },
        NextToken: 'p2',
      })
      .on(GetQueryResultsCommand, { QueryExecutionId: 'q1', NextToken: 'p2' })
      .resolves({ ResultSet: { ResultSetMetadata: meta, Rows: [{ Data: [{}, { VarCharValue: '5' }] }] } });
    const { r, sleeps } = runner(athena as unknown as AthenaClient);
    const rows = await r.execute('SELECT 1');
    assert.deepEqual(rows, [{ battalion: 'B01', n: 3 }, { battalion: null, n: 5 }]);
    assert.deepEqual(sleeps, [100, 200, 400]);
    assert.equal(athena.commandCalls(StartQueryExecutionCommand)[0]!.args[0].input.WorkGroup, 'wg');
    assert.equal(athena.commandCalls(GetQueryResultsCommand).length, 2);
  });

  test('FAILED surfaces the reason', async () => {
    const athena = mockClient(AthenaClient);
    athena.on(StartQueryExecutionCommand).resolves({ QueryExecutionId: 'q2' });
    athena.on(GetQueryExecutionCommand).resolves({
      QueryExecution: { Status: { State: 'FAILED', StateChangeReason: 'x', AthenaError: { ErrorMessage: 'TABLE_NOT_FOUND: line 1:15: Table does not exist' } } },
    });
    const { r } = runner(athena as unknown as AthenaClient);
    await assert.rejects(r.execute('SELECT 1', 'merge'), (err: AthenaQueryError) => {
      assert.equal(err.state, 'FAILED');
      assert.equal(err.queryExecutionId, 'q2');
      assert.match(err.message, /merge q2 FAILED: TABLE_NOT_FOUND/);
      return true;
    });
  });

  test('CANCELLED is an error too', async () => {
    const athena = mockClient(AthenaClient);
    athena.on(StartQueryExecutionCommand).resolves({ QueryExecutionId: 'q3' });
    athena.on(GetQueryExecutionCommand).resolves({ QueryExecution: { Status: { State: 'CANCELLED', StateChangeReason: 'Query cancelled by user' } } });
    const { r } = runner(athena as unknown as AthenaClient);
    await assert.rejects(r.execute('SELECT 1'), /q3 CANCELLED: Query cancelled by user/);
  });

  test('a query past the timeout is stopped and reported', async () => {
    const athena = mockClient(AthenaClient);
    athena.on(StartQueryExecutionCommand).resolves({ QueryExecutionId: 'q4' });
    athena.on(GetQueryExecutionCommand).resolves({ QueryExecution: { Status: { State: 'RUNNING' } } });
    athena.on(StopQueryExecutionCommand).resolves({});
    const { r } = runner(athena as unknown as AthenaClient);
    await assert.rejects(r.execute('SELECT 1'), (err: AthenaQueryError) => err.state === 'TIMEOUT' && /still RUNNING/.test(err.message));
    assert.equal(athena.commandCalls(StopQueryExecutionCommand)[0]!.args[0].input.QueryExecutionId, 'q4');
  });
});

describe('Athena engine', () => {
  test('merges in groups of at most partitionsPerWrite event years and sums the batch statistics', async () => {
    const athena = mockClient(AthenaClient);
    const sent: string[] = [];
    let n = 0;
    athena.on(StartQueryExecutionCommand).callsFake((input: { QueryString: string }) => {
      sent.push(input.QueryString);
      return { QueryExecutionId: `q${n++}` };
    });
    athena.on(GetQueryExecutionCommand).resolves({ QueryExecution: { Status: { State: 'SUCCEEDED' } } });
    athena.on(GetQueryResultsCommand).callsFake((input: { QueryExecutionId: string }) => {
      const sql = sent[Number(input.QueryExecutionId.slice(1))]!;
      const result = (cols: Record<string, string>) => ({
        ResultSet: {
          ResultSetMetadata: { ColumnInfo: Object.keys(cols).map((c) => ({ Name: c, Type: c === 'years' || c === 'source_object' ? 'varchar' : 'bigint' })) },
          Rows: [{ Data: Object.keys(cols).map((c) => ({ VarCharValue: c })) }, { Data: Object.values(cols).map((v) => ({ VarCharValue: v })) }],
        },
      });
      if (sql.includes('rows_read')) return result({ rows_read: '10', malformed_rows: '1', rows_without_key: '1', distinct_keys: '7', cast_failures__longitude: '2' });
      if (sql.includes('AS staged')) {
        return result({ source_object: 's3://raw-bucket/raw/sf-fire-incidents/ingest_date=2024-03-01/a.gz', staged: '7', inserted: '5', updated: '1', unchanged: '1', years: '2019,2020,2021,2022,2023' });
      }
      return { ResultSet: { Rows: [] } };
    });
    const engine = new AthenaEngine({
      dataset: DATASET,
      client: athena as unknown as AthenaClient,
      workgroup: 'wg',
      rawDatabase: 'raw_db',
      curatedDatabase: 'curated_db',
      rawLocation: 's3://raw-bucket',
      curatedLocation: 's3://curated-bucket',
      runId: 'r1',
      partitionsPerWrite: 2,
      sleep: async () => {},
    });
    const stats = await engine.mergeBatch(['raw/sf-fire-incidents/ingest_date=2024-03-01/a.gz']);
    assert.deepEqual(
      { ...stats },
      {
        rowsRead: 10,
        malformedRows: 1,
        rowsWithoutKey: 1,
        duplicatesRemoved: 1,
        rowsInserted: 5,
        rowsUpdated: 1,
        rowsUnchanged: 1,
        castFailures: { longitude: 2 },
        partitionsWritten: 5,
        contributions: { 'raw/sf-fire-incidents/ingest_date=2024-03-01/a.gz': { keys: 7, inserted: 5 } },
      },
    );
    const merges = sent.filter((s) => s.startsWith('MERGE INTO'));
    assert.equal(merges.length, 3);
    assert.match(merges[0]!, /IN \(2019, 2020\)\) AS s/);
    assert.match(merges[2]!, /IN \(2023\)\) AS s/);
    assert.ok(sent.every((s) => !s.includes('ingest_date') || s.includes("ingest_date IN ('2024-03-01')")));
  });
});
