import assert from 'node:assert/strict';
import { mkdtempSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  AthenaClient,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
  StopQueryExecutionCommand,
} from '@aws-sdk/client-athena';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { HiveSQL, TrinoSQL } from 'dt-sql-parser';
import { curatedColumnNames, loadDatasetFile } from '../../runtime/dataset-config';
import { openObjectStore } from '../../runtime/object-store';
import { AthenaEngine, type AthenaEngineOptions } from '../../containers/transform/src/athena-engine';
import { applyKeyScan, mergeBatch } from '../../containers/transform/src/merge-algorithm';
import { mergePreviewSql } from '../../containers/transform/src/merge-sql';
import { changeExamplesSql, changesMergeSql, changeSummarySql, deleteChangesSql, historyMergeSql, upsertChangesSql } from '../../containers/transform/src/change-history-sql';
import { AthenaQueryError, AthenaQueryRunner } from '../../containers/transform/src/athena-query';
import {
  createChangesTableSql,
  createCuratedTableSql,
  createHistoryTableSql,
  createMergedKeysTableSql,
  dropTableSql,
  martCtasSql,
  mergeSql,
  optimizeSql,
  rawBatchSql,
  recordMergedKeysSql,
  tableColumnsSql,
  tableExistsSql,
} from '../../containers/transform/src/athena-sql';
import { curatedTests, countSql, DEFAULT_CONFIG, runFreshness, runTest } from '../../containers/transform/src/data-tests';
import { athenaDialect, duckdbDialect, ident } from '../../containers/transform/src/dialect';
import { loadMarts, renderMart } from '../../containers/transform/src/models';
import { typedBatchSql, typedProfileSql, typedStagedSql } from '../../containers/transform/src/staging';
import { runTransform } from '../../containers/transform/src/transform';
import { incident, writeRawObject } from './raw-fixture';

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
  // The engine types each group once into a table beside curated, then reads it (staging.ts).
  const typedSelect = typedBatchSql(DATASET, athenaDialect, raw, ident('__source_object'));
  const typed = '"curated_db"."sf_fire_incidents___typed"';
  const staged = typedStagedSql(DATASET, typed, false);

  test('every statement the engine sends parses with the Trino grammar', () => {
    assertTrino(tableExistsSql('curated_db', 'sf_fire_incidents'), 'table lookup');
    assertTrino(createCuratedTableSql(DATASET, target, 's3://curated/curated/sf-fire-incidents/table/'), 'create table');
    assertTrino(martCtasSql(typed, 's3://curated/curated/sf-fire-incidents/staging/r1-0/', typedSelect), 'type raw batch');
    assertTrino(typedProfileSql(DATASET, typed), 'batch profile');
    assertTrino(staged, 'staging');
    assertTrino(typedStagedSql(DATASET, typed, true), 'staging (unique keys)');
    assertTrino(mergePreviewSql(DATASET, athenaDialect, staged, target), 'merge preview');
    assertTrino(mergeSql(DATASET, staged, target, [2022, 2023, -1]), 'merge');
    const history = '"curated_db"."sf_fire_incidents__history"';
    const changes = '"curated_db"."sf_fire_incidents__changes"';
    const deletions = 'SELECT "key", "detected_at" FROM "curated_db"."sf_fire_incidents__deletions"';
    assertTrino(createHistoryTableSql(DATASET, history, 's3://curated/curated/sf-fire-incidents/history/'), 'create history table');
    assertTrino(createChangesTableSql(changes, 's3://curated/curated/sf-fire-incidents/changes/'), 'create changes table');
    assertTrino(historyMergeSql(DATASET, athenaDialect, { target: history, keys: 'SELECT "id" FROM t', versions: typedStagedSql(DATASET, typed, true), deletions }), 'history merge');
    assertTrino(changesMergeSql(changes, upsertChangesSql(DATASET, athenaDialect, staged, target, 'r1', new Date(0))), 'upsert change records');
    assertTrino(changesMergeSql(changes, deleteChangesSql(DATASET, athenaDialect, 'SELECT "id" FROM g', 'r1', new Date(0))), 'delete change records');
    assertTrino(changeSummarySql(DATASET, changes, 'r1'), 'change summary');
    assertTrino(changeExamplesSql(changes, 'r1', 5), 'change examples');
    const marts = loadMarts(DATASET);
    assert.ok(marts.length >= 3);
    for (const m of marts) {
      const select = renderMart(m, athenaDialect, (ref) => (ref === 'curated' ? target : `"curated_db"."sf_fire_incidents__${ref}"`));
      assertTrino(select, `mart ${m.name}`);
      assertTrino(martCtasSql(`"curated_db"."sf_fire_incidents__${m.name}"`, 's3://c/x/', select), `mart ctas ${m.name}`);
      for (const t of m.tests) assertTrino(countSql(t, (ref) => `"db"."${ref}"`), `test ${t.name}`);
    }
    for (const t of curatedTests(DATASET)) assertTrino(countSql(t, () => target), `test ${t.name}`);
  });

  test('the grammar check can fail, and the dialects differ only where they must', () => {
    assert.notDeepEqual(trino.validate('SELECT quantile_cont(x, 0.5) FROM t QUALIFY 1 = 1'), []);
    assert.match(renderMart(loadMarts(DATASET).find((m) => m.name === 'response_time_by_neighborhood')!, athenaDialect, () => 't'), /array_sort\(array_agg\(CAST\(response_seconds AS double\)\)/);
    assert.match(renderMart(loadMarts(DATASET).find((m) => m.name === 'response_time_by_neighborhood')!, duckdbDialect, () => 't'), /quantile_cont/);
    assert.match(typedSelect, /from_iso8601_timestamp/);
    assert.match(typedSelect, /json_format\(CAST\("point" AS json\)\)/);
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
      // The history holds some of the keys: THE history statement is the MERGE.
      if (sql.startsWith('SELECT count(*) AS n FROM (SELECT 1 FROM "curated_db"."sf_fire_incidents__history"')) return result({ n: '1' });
      if (sql.includes('AS staged')) {
        return result({ source_object: 's3://raw-bucket/raw/sf-fire-incidents/ingest_date=2024-03-01/a.gz', staged: '7', inserted: '5', updated: '1', unchanged: '1', years: '2019,2020,2021,2022,2023' });
      }
      return { ResultSet: { Rows: [] } };
    });
    const engine = mockedEngine(athena, { runId: 'r1', partitionsPerWrite: 2 });
    const stats = await mergeBatch(engine, ['raw/sf-fire-incidents/ingest_date=2024-03-01/a.gz']);
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
    const merges = sent.filter((s) => s.startsWith('MERGE INTO "curated_db"."sf_fire_incidents" AS t'));
    assert.equal(merges.length, 3);
    // The history statement (every version of the group) runs before the rows are written.
    const history = sent.findIndex((s) => s.startsWith('MERGE INTO "curated_db"."sf_fire_incidents__history" AS h'));
    assert.ok(history >= 0 && history < sent.indexOf(merges[0]!), sent.map((s) => s.split('\n')[0]).join('\n'));
    assertTrino(sent[history]!, 'history merge');
    assert.match(merges[0]!, /IN \(2019, 2020\)\) AS s/);
    assert.match(merges[2]!, /IN \(2023\)\) AS s/);
    assert.ok(sent.every((s) => !s.includes('ingest_date') || s.includes("ingest_date IN ('2024-03-01')")));
  });
});

/** The production AthenaEngine over a mocked client: the test's databases and buckets, no real waits. */
function mockedEngine(athena: AwsClientStub<AthenaClient>, options: Pick<AthenaEngineOptions, 'runId'> & Partial<AthenaEngineOptions>): AthenaEngine {
  return new AthenaEngine({
    dataset: DATASET,
    client: athena as unknown as AthenaClient,
    workgroup: 'wg',
    rawDatabase: 'raw_db',
    curatedDatabase: 'curated_db',
    rawLocation: 's3://raw-bucket',
    curatedLocation: 's3://curated-bucket',
    sleep: async () => {},
    ...options,
  });
}

/** An Athena mock answering by statement text; records every statement sent, in order. */
function scriptedAthena(answer: (sql: string) => Record<string, string> | Record<string, string>[] | undefined | Error) {
  const athena = mockClient(AthenaClient);
  const sent: string[] = [];
  athena.on(StartQueryExecutionCommand).callsFake((input: { QueryString: string }) => {
    sent.push(input.QueryString);
    return { QueryExecutionId: `q${sent.length - 1}` };
  });
  athena.on(GetQueryExecutionCommand).callsFake((input: { QueryExecutionId: string }) => {
    const a = answer(sent[Number(input.QueryExecutionId.slice(1))]!);
    return a instanceof Error
      ? { QueryExecution: { Status: { State: 'FAILED', AthenaError: { ErrorMessage: a.message } } } }
      : { QueryExecution: { Status: { State: 'SUCCEEDED' } } };
  });
  athena.on(GetQueryResultsCommand).callsFake((input: { QueryExecutionId: string }) => {
    const answered = answer(sent[Number(input.QueryExecutionId.slice(1))]!);
    if (!answered || answered instanceof Error) return { ResultSet: { Rows: [] } };
    const rows = Array.isArray(answered) ? answered : [answered];
    const a = rows[0] ?? {};
    return {
      ResultSet: {
        ResultSetMetadata: { ColumnInfo: Object.keys(a).map((c) => ({ Name: c, Type: /^(n|staged|inserted|updated|unchanged|rows_read|malformed_rows|rows_without_key|distinct_keys)$/.test(c) ? 'bigint' : 'varchar' })) },
        Rows: [{ Data: Object.keys(a).map((c) => ({ VarCharValue: c })) }, ...rows.map((r) => ({ Data: Object.values(r).map((v) => ({ VarCharValue: v })) }))],
      },
    };
  });
  const engine = mockedEngine(athena, { runId: 'r9' });
  return { engine, sent };
}

/** Answers for table lookups: the tables in `existing` exist. */
const lookup = (sql: string, existing: string[]): Record<string, string> | undefined => {
  const m = /table_name = '([^']+)'/.exec(sql);
  return m ? { n: existing.includes(m[1]!) ? '1' : '0' } : undefined;
};

describe('Athena marts, rebuild, reconciliation and maintenance', () => {
  const mart = 'sf_fire_incidents__battalion_totals';

  test('a mart is built aside and swapped in; the old one is dropped only once the new one is live', async () => {
    const { engine, sent } = scriptedAthena((sql) => lookup(sql, [mart]) ?? (sql.startsWith('SELECT count(*) AS n FROM') ? { n: '4' } : undefined));
    assert.equal(await engine.materializeMart('battalion_totals', 'SELECT 1 AS x'), 4);
    const ddl = sent.filter((s) => !s.includes('information_schema'));
    assert.deepEqual(ddl.map((s) => s.split('\n')[0]), [
      `DROP TABLE IF EXISTS \`curated_db\`.\`${mart}___next\``,
      `CREATE TABLE "curated_db"."${mart}___next"`,
      `ALTER TABLE \`curated_db\`.\`${mart}\` RENAME TO \`curated_db\`.\`${mart}___old\``,
      `ALTER TABLE \`curated_db\`.\`${mart}___next\` RENAME TO \`curated_db\`.\`${mart}\``,
      `DROP TABLE IF EXISTS \`curated_db\`.\`${mart}___old\``,
      `SELECT count(*) AS n FROM "curated_db"."${mart}"`,
    ]);
    assert.ok(!ddl.some((s) => s === `DROP TABLE IF EXISTS \`curated_db\`.\`${mart}\``), 'the live mart is never dropped');
    for (const s of ddl.filter((x) => x.startsWith('ALTER') || x.startsWith('DROP'))) assert.deepEqual(new HiveSQL().validate(s), [], s);
    for (const s of ddl.filter((x) => x.startsWith('ALTER'))) assertTrino(s, 'rename');
  });

  test('YAML tests on Athena: store_failures is a CTAS built aside and swapped in, existing marts are looked up, freshness reads Athena timestamps', async () => {
    const failures = `${mart}__dbt_test__known`;
    const { engine, sent } = scriptedAthena(
      (sql) =>
        lookup(sql, [mart, failures]) ??
        (sql.startsWith(`SELECT count(*) AS n FROM "curated_db"."${failures}"`) ? { n: '2' } : undefined) ??
        (sql.startsWith('SELECT max(') ? { newest: '2024-02-01 00:00:00.000' } : undefined),
    );
    const t = {
      name: 'battalion_totals.known',
      model: 'battalion_totals',
      check: { kind: 'accepted_values' as const, column: 'battalion', values: ['B01'], quote: true },
      config: { ...DEFAULT_CONFIG, storeFailures: true },
      origin: 'x.yml:1:1',
    };
    const r = await runTest(engine, t);
    assert.deepEqual([r.status, r.failing, r.failuresTable], ['fail', 2, `"curated_db"."${failures}"`]);
    const ctas = sent.find((q) => q.startsWith(`CREATE TABLE "curated_db"."${failures}___next"`));
    assert.ok(ctas, sent.join('\n'));
    assert.match(ctas, /AS SELECT \* FROM "curated_db"\."sf_fire_incidents__battalion_totals" AS model_rows WHERE "battalion" IS NOT NULL AND CAST\("battalion" AS VARCHAR\) NOT IN \('B01'\)/);
    assertTrino(ctas, 'store_failures CTAS');
    assert.ok(sent.some((q) => q.startsWith(`ALTER TABLE \`curated_db\`.\`${failures}___next\` RENAME TO`)));
    assert.equal(await engine.existingModel('battalion_totals'), true);
    assert.equal(await engine.existingModel('losses_by_primary_situation'), false);
    // Athena prints timestamps without a zone; they are UTC whatever the task's time zone.
    const tz = process.env.TZ;
    process.env.TZ = 'America/Los_Angeles';
    const f = await runFreshness(engine, { loadedAtField: '_source_updated_at', warnAfter: { count: 1, period: 'day' } }, new Date('2024-02-03T00:00:00.000Z')).finally(() => {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    });
    assert.deepEqual([f.status, f.freshness?.newest, f.freshness?.lagSeconds], ['warn', '2024-02-01T00:00:00.000Z', 2 * 86_400]);
    assertTrino(sent.find((q) => q.startsWith('SELECT max('))!, 'freshness');
  });

  test('a failing CTAS leaves the previous mart in place', async () => {
    const { engine, sent } = scriptedAthena((sql) => lookup(sql, [mart]) ?? (sql.startsWith('CREATE TABLE') ? new Error('HIVE_BAD_DATA: boom') : undefined));
    await assert.rejects(engine.materializeMart('battalion_totals', 'SELECT 1 AS x'), /build mart battalion_totals .*FAILED: HIVE_BAD_DATA/);
    assert.ok(!sent.some((s) => s.includes('RENAME') || s === `DROP TABLE IF EXISTS \`curated_db\`.\`${mart}\``), sent.join('\n'));
  });

  test('a swap interrupted between its renames is completed from the aside copy on the next run', async () => {
    const { engine, sent } = scriptedAthena((sql) => lookup(sql, [`${mart}___old`]));
    await engine.materializeMart('battalion_totals', 'SELECT 1 AS x');
    assert.equal(sent.filter((s) => !s.includes('information_schema'))[0], `ALTER TABLE \`curated_db\`.\`${mart}___old\` RENAME TO \`curated_db\`.\`${mart}\``);
  });

  test('rebuild merges every object into a new table, swaps it in, then resets the recorded keys', async () => {
    const { engine, sent } = scriptedAthena(
      (sql) =>
        lookup(sql, ['sf_fire_incidents', 'sf_fire_incidents___merged_keys']) ??
        (sql.includes('rows_read') ? { rows_read: '3', malformed_rows: '0', rows_without_key: '0', distinct_keys: '3' } : undefined) ??
        (sql.includes('AS staged') ? { source_object: 's3://raw-bucket/raw/sf-fire-incidents/ingest_date=2024-03-01/a.gz', staged: '3', inserted: '3', updated: '0', unchanged: '0', years: '2022' } : undefined),
    );
    const stats = await mergeBatch(engine, ['raw/sf-fire-incidents/ingest_date=2024-03-01/a.gz'], { rebuild: true });
    assert.equal(stats.rowsInserted, 3);
    const steps = sent.filter((s) => !s.includes('information_schema')).map((s) => s.split('\n')[0]!);
    const at = (prefix: string): number => steps.findIndex((s) => s.startsWith(prefix));
    assert.ok(at('CREATE TABLE "curated_db"."sf_fire_incidents___next"') >= 0, steps.join('\n'));
    assert.ok(at('MERGE INTO "curated_db"."sf_fire_incidents___next"') > at('CREATE TABLE "curated_db"."sf_fire_incidents___next"'));
    assert.ok(at('INSERT INTO "curated_db"."sf_fire_incidents___merged_keys"') >= 0);
    assert.ok(at('ALTER TABLE `curated_db`.`sf_fire_incidents` RENAME TO `curated_db`.`sf_fire_incidents___old`') > at('MERGE INTO'));
    assert.ok(at('ALTER TABLE `curated_db`.`sf_fire_incidents___next` RENAME TO') > at('ALTER TABLE `curated_db`.`sf_fire_incidents` RENAME'));
    assert.ok(at('DROP TABLE IF EXISTS `curated_db`.`sf_fire_incidents___old`') > at('ALTER TABLE `curated_db`.`sf_fire_incidents___next`'));
    assert.ok(at('DELETE FROM "curated_db"."sf_fire_incidents___merged_keys"') > at('DROP TABLE IF EXISTS `curated_db`.`sf_fire_incidents___old`'));
    assert.ok(!sent.some((s) => s.startsWith('MERGE INTO "curated_db"."sf_fire_incidents" ')), 'the live table is never merged into during a rebuild');
    for (const s of sent.filter((x) => /^(CREATE|INSERT|DELETE|MERGE|SELECT)/.test(x))) assertTrino(s, s.slice(0, 40));
  });

  test('a curated table created before _content_hash gets the column added, once', async () => {
    const older = curatedColumnNames(DATASET).filter((c) => c !== '_content_hash');
    const { engine, sent } = scriptedAthena((sql) =>
      sql.includes('information_schema.columns') ? older.map((c) => ({ column_name: c })) : lookup(sql, ['sf_fire_incidents', 'sf_fire_incidents___merged_keys']),
    );
    await engine.prepare();
    const alters = sent.filter((s) => s.startsWith('ALTER TABLE'));
    assert.deepEqual(alters, ['ALTER TABLE `curated_db`.`sf_fire_incidents` ADD COLUMNS (`_content_hash` string)']);
    assert.deepEqual(new HiveSQL().validate(alters[0]!), []);
    assertTrino(tableColumnsSql('curated_db', 'sf_fire_incidents'), 'columns lookup');
    const current = scriptedAthena((sql) =>
      sql.includes('information_schema.columns') ? curatedColumnNames(DATASET).map((c) => ({ column_name: c })) : lookup(sql, ['sf_fire_incidents', 'sf_fire_incidents___merged_keys']),
    );
    await current.engine.prepare();
    assert.ok(!current.sent.some((s) => s.startsWith('ALTER TABLE')));
  });

  test('reconciliation counts the recorded keys, never the raw table', async () => {
    const { engine, sent } = scriptedAthena((sql) => (sql.includes('count(DISTINCT') ? { n: '42' } : undefined));
    assert.equal(await engine.mergedKeys(), 42);
    assert.deepEqual(sent, ['SELECT count(DISTINCT "key") AS n FROM "curated_db"."sf_fire_incidents___merged_keys"']);
    assertTrino(sent[0]!, 'reconciliation');
    assertTrino(createMergedKeysTableSql('"curated_db"."k"', 's3://c/k/'), 'create keys table');
    assertTrino(recordMergedKeysSql(DATASET, 'SELECT * FROM s', '"curated_db"."k"', 'r1'), 'record keys');
  });

  test('a key scan: deletions recorded, then THE delete MERGE per year group, merged keys forgotten, missing keys listed', async () => {
    const { engine, sent } = scriptedAthena(
      (sql) =>
        lookup(sql, ['sf_fire_incidents', 'sf_fire_incidents___merged_keys']) ??
        (sql.includes('AS curated_rows') ? { curated_rows: '1000', source_keys: '990', gone: '12' } : undefined) ??
        (sql.includes('AS y FROM') ? [{ y: '2021' }, { y: '2022' }, { y: '2023' }] : undefined) ??
        (sql.startsWith('SELECT s.text AS key') ? [{ key: 'k1' }, { key: "k'2" }] : undefined) ??
        (sql.startsWith('SELECT count(*) AS n FROM (SELECT c.') ? { n: '0' } : undefined) ??
        // The deleted keys have history rows: THE history statement is the MERGE.
        (sql.startsWith('SELECT count(*) AS n FROM (SELECT 1 FROM "curated_db"."sf_fire_incidents__history"') ? { n: '1' } : undefined),
    );
    (engine as unknown as { opts: { partitionsPerWrite: number } }).opts.partitionsPerWrite = 2;
    const r = await applyKeyScan(
      engine,
      { partKeys: ['keysets/sf-fire-incidents/r1/part-00001.txt.gz', 'keysets/sf-fire-incidents/r1/part-00002.txt.gz'] },
      { maxDeleteShare: 0.1, detectedAt: new Date('2026-01-02T03:04:05.678Z'), runId: 'r1' },
    );
    assert.deepEqual(r, { sourceKeys: 990, curatedRowsBefore: 1000, goneKeys: 12, rowsDeleted: 12, refused: false, missingKeys: ['k1', "k'2"], extraKeys: 0 });
    const steps = sent.filter((x) => !x.includes('information_schema'));
    const first = steps.map((x) => x.split('\n')[0]!);
    const at = (prefix: string): number => first.findIndex((x) => x.startsWith(prefix));
    assert.match(steps[0]!, /^CREATE EXTERNAL TABLE IF NOT EXISTS `curated_db`\.`sf_fire_incidents___keyset` \(`key` string\)/);
    assert.match(steps[0]!, /LOCATION 's3:\/\/raw-bucket\/keysets\/sf-fire-incidents\/'/);
    assert.deepEqual(new HiveSQL().validate(steps[0]!), [], steps[0]);
    assert.ok(at('CREATE TABLE "curated_db"."sf_fire_incidents__deletions"') > 0);
    assert.ok(at('INSERT INTO "curated_db"."sf_fire_incidents__deletions"') > at('DELETE FROM "curated_db"."sf_fire_incidents__deletions"'));
    const merges = steps.filter((x) => x.startsWith('MERGE INTO "curated_db"."sf_fire_incidents" AS t'));
    assert.equal(merges.length, 2, 'years 2021, 2022 | 2023');
    assert.ok(merges.every((m) => /WHEN MATCHED THEN DELETE$/.test(m)));
    assert.match(merges[0]!, /IN \(2021, 2022\)/);
    const deleting = at('MERGE INTO "curated_db"."sf_fire_incidents" AS t');
    assert.ok(deleting > at('INSERT INTO "curated_db"."sf_fire_incidents__deletions"'), 'recorded before deleted');
    // The change records and the history of the deleted keys too, after the deletion record (the history reads it).
    const changes = at('MERGE INTO "curated_db"."sf_fire_incidents__changes" AS c');
    const history = at('MERGE INTO "curated_db"."sf_fire_incidents__history" AS h');
    assert.ok(changes > at('INSERT INTO "curated_db"."sf_fire_incidents__deletions"') && changes < deleting, first.join('\n'));
    assert.ok(history > at('INSERT INTO "curated_db"."sf_fire_incidents__deletions"') && history < deleting, first.join('\n'));
    assert.match(steps[changes]!, /'delete' AS "change"/);
    assert.ok(at('DELETE FROM "curated_db"."sf_fire_incidents___merged_keys"') > deleting);
    assert.ok(steps.some((x) => x.includes(`"$path" IN ('s3://raw-bucket/keysets/sf-fire-incidents/r1/part-00001.txt.gz', 's3://raw-bucket/keysets/sf-fire-incidents/r1/part-00002.txt.gz')`)));
    assert.ok(steps.some((x) => x.includes("TIMESTAMP '2026-01-02 03:04:05.678'")));
    for (const x of steps.filter((y) => /^(CREATE TABLE|INSERT|DELETE|MERGE|SELECT)/.test(y))) assertTrino(x, x.slice(0, 60));
  });

  test('a key scan over maxDeleteShare deletes nothing on Athena', async () => {
    const { engine, sent } = scriptedAthena(
      (sql) =>
        lookup(sql, ['sf_fire_incidents', 'sf_fire_incidents___merged_keys', 'sf_fire_incidents__deletions']) ??
        (sql.includes('AS curated_rows') ? { curated_rows: '1000', source_keys: '0', gone: '1000' } : undefined) ??
        (sql.startsWith('SELECT count(*) AS n FROM (SELECT c.') ? { n: '1000' } : undefined),
    );
    const r = await applyKeyScan(engine, { partKeys: ['keysets/sf-fire-incidents/r1/part-00001.txt.gz'] }, { maxDeleteShare: 0.1, detectedAt: new Date(), runId: 'r1' });
    assert.deepEqual([r.refused, r.rowsDeleted, r.extraKeys], [true, 0, 1000]);
    assert.ok(!sent.some((x) => x.startsWith('MERGE') || x.startsWith('INSERT') || x.startsWith('DELETE')), sent.join('\n'));
  });

  test('Iceberg maintenance runs on its cadence from the same runner, recorded in the transform state', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'maint-'));
    const stores = { rawStore: openObjectStore(path.join(root, 'raw')), curatedStore: openObjectStore(path.join(root, 'curated')) };
    const { engine, sent } = scriptedAthena((sql) => lookup(sql, ['sf_fire_incidents', 'sf_fire_incidents___merged_keys']) ?? (/count\(/.test(sql) ? { n: '0' } : undefined));
    let t = Date.parse('2026-01-01T00:00:00Z');
    const maintenanceRuns: string[][] = [];
    for (let i = 0; i < 5; i++) {
      const s = await runTransform({ dataset: DATASET, engine, ...stores, runId: `m${i}`, marts: [], maintenanceEveryRuns: 3, maintenanceIntervalHours: 24, now: () => new Date(t) });
      maintenanceRuns.push(s.maintenance);
      t += i === 3 ? 25 * 3_600_000 : 60_000;
    }
    // Run 0 starts the record; 3 runs later it is due; then a day passing makes it due again.
    assert.deepEqual(maintenanceRuns.map((m) => m.length > 0), [false, false, false, true, true]);
    const target = '"curated_db"."sf_fire_incidents"';
    assert.deepEqual(maintenanceRuns[3], [`OPTIMIZE ${target} REWRITE DATA USING BIN_PACK`, 'VACUUM curated_db.`sf_fire_incidents`']);
    assert.equal(sent.filter((s) => s.startsWith('OPTIMIZE')).length, 2);
    // Athena-only statements (no Trino grammar has them): their table reference parses.
    assertTrino(`SELECT * FROM ${optimizeSql(target).replace(/^OPTIMIZE (.*) REWRITE DATA USING BIN_PACK$/, '$1')}`, 'optimize target');
  });
});

describe('raw objects that cannot be read whole, on the Athena path', () => {
  test('a truncated .gz is quarantined before any query reads it; the rest is merged', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'athena-raw-'));
    const rawDir = path.join(root, 'raw');
    const good = writeRawObject(rawDir, DATASET.name, '2024-03-01', 'good', [incident(0)]);
    const bad = writeRawObject(rawDir, DATASET.name, '2024-03-01', 'bad', Array.from({ length: 300 }, (_, i) => incident(i + 1)));
    truncateSync(path.join(rawDir, bad), Math.floor(statSync(path.join(rawDir, bad)).size / 2));
    const { engine, sent } = scriptedAthena((sql) => lookup(sql, ['sf_fire_incidents', 'sf_fire_incidents___merged_keys']) ?? (/count\(/.test(sql) ? { n: '0' } : undefined));
    const s = await runTransform({ dataset: DATASET, engine, rawStore: openObjectStore(rawDir), curatedStore: openObjectStore(path.join(root, 'curated')), runId: 'a1', marts: [] });
    assert.deepEqual(s.quarantinedObjects.map((q) => q.key), [bad]);
    assert.deepEqual(s.failedErrorTests, ['raw_objects_readable']);
    const merged = sent.filter((q) => q.includes('"$path" IN'));
    assert.ok(merged.length > 0 && merged.every((q) => q.includes(`${good}'`) && !q.includes(bad)), 'only the readable object is queried');
  });
});
