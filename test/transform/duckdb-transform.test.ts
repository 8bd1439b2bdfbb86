import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { loadDatasetFile, parseDataset } from '../../runtime/dataset-config';
import { openObjectStore } from '../../runtime/object-store';
import { reportKey, runSummaryKey } from '../../runtime/storage-layout';
import { manifestFiles, readManifest } from '../../containers/transform/src/curated-manifest';
import { runTransform, type RunSummary } from '../../containers/transform/src/transform';
import { incident, writeRawObject, type RawRow } from './raw-fixture';

const DATASET = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'));
const NAME = DATASET.name;

async function readCurated(curatedDir: string, sql: (t: string) => string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    // Only what the manifest names is the table (older versions stay on disk until the next run).
    const files = manifestFiles(path.join(curatedDir, 'curated', NAME, 'table'));
    const t = `read_parquet([${files.map((f) => `'${f}'`).join(', ')}], hive_partitioning = true)`;
    const reader = await conn.runAndReadAll(sql(t));
    return reader.getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

function dirs() {
  const root = mkdtempSync(path.join(tmpdir(), 'transform-'));
  const rawDir = path.join(root, 'raw');
  const curatedDir = path.join(root, 'curated');
  return { rawDir, curatedDir, rawStore: openObjectStore(rawDir), curatedStore: openObjectStore(curatedDir) };
}

const run = (d: ReturnType<typeof dirs>, runId: string, dataset = DATASET): Promise<RunSummary> =>
  runTransform({ dataset, engine: 'duckdb', rawStore: d.rawStore, curatedStore: d.curatedStore, runId });

/** Percentile with linear interpolation (what quantile_cont computes), done by hand. */
function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

describe('transform on DuckDB', () => {
  // 60 incidents; 0..9 delivered twice: an older version (other partition) and a newer one.
  const d = dirs();
  const first: RawRow[] = [];
  for (let i = 0; i < 60; i++) first.push(incident(i));
  const newerVersions = Array.from({ length: 10 }, (_, i) => incident(i, { battalion: 'B99', address: `NEW ${i}` }, 1));
  // An older version arriving later must not win over the newer one.
  const staleVersion = incident(20, { battalion: 'B98' }, 0);
  staleVersion._source_updated_at = '2024-01-15T00:00:00.000Z';
  const badCasts = incident(60, { exposure_number: 'x1', estimated_property_loss: 'lots', alarm_dttm: 'not a time' });
  const keyless = incident(61);
  delete keyless.id;

  let summary1: RunSummary;
  let finalRows: RawRow[];

  test('first run: casts types, removes duplicates across partitions, counts malformed, keyless and cast failures', async () => {
    writeRawObject(d.rawDir, NAME, '2024-03-01', 'a-1', [...first.slice(0, 30), '{"id": "broken', staleVersion]);
    writeRawObject(d.rawDir, NAME, '2024-03-02', 'b-1', [...first.slice(30), ...newerVersions, badCasts, keyless, first[5]!]);
    summary1 = await run(d, 'run-1');

    assert.equal(summary1.rawObjects.new, 2);
    assert.equal(summary1.rowsRead, 30 + 1 + 1 + 30 + 10 + 1 + 1 + 1);
    assert.equal(summary1.malformedRows, 1);
    assert.equal(summary1.rowsWithoutKey, 1);
    // 0..9: two versions each (10), 5: a third copy (1), 20: stale copy (1).
    assert.equal(summary1.duplicatesRemoved, 12);
    assert.equal(summary1.rowsInserted, 61);
    assert.equal(summary1.curatedRows, 61);
    assert.deepEqual(summary1.castFailures, { exposure_number: 1, estimated_property_loss: 1, alarm_dttm: 1 });

    const rows = await readCurated(d.curatedDir, (t) => `SELECT * FROM ${t} ORDER BY id`);
    assert.equal(rows.length, 61);
    const byId = new Map(rows.map((r) => [String(r.id), r]));
    const r0 = byId.get('1000000')!;
    assert.equal(r0.battalion, 'B99', 'newest version wins across partitions');
    assert.equal(r0.address, 'NEW 0');
    assert.equal(byId.get('1000200')!.battalion, first[20]!.battalion, 'a stale version does not win');
    assert.equal(typeof r0.exposure_number, 'bigint');
    assert.ok(r0.incident_date instanceof Date);
    assert.equal((r0.incident_date as Date).toISOString(), '2022-01-01T00:00:00.000Z');
    assert.equal(r0.longitude, -122.45);
    assert.equal(typeof r0.estimated_property_loss, 'number');
    assert.equal(byId.get('1000030')!.longitude, null, 'absent point stays null, never invented');
    const bad = byId.get('1000600')!;
    assert.equal(bad.exposure_number, null);
    assert.equal(bad.estimated_property_loss, null);
    assert.equal(bad.alarm_dttm, null);

    // Partitioned by event year, zstd Parquet.
    const years = Object.keys(readManifest(path.join(d.curatedDir, 'curated', NAME, 'table')).partitions).sort();
    assert.deepEqual(years, ['event_year=2022', 'event_year=2023', 'event_year=2024']);
    const meta = await readCurated(d.curatedDir, () =>
      `SELECT DISTINCT compression FROM parquet_metadata('${path.join(d.curatedDir, 'curated', NAME, 'table', '**', '*.parquet')}')`);
    assert.deepEqual(meta.map((m) => m.compression), ['ZSTD']);

    // Summary and report written to the curated store.
    const stored = JSON.parse((await d.curatedStore.get(runSummaryKey(DATASET, 'run-1')))!.body.toString());
    assert.equal(stored.curatedRows, 61);
    const html = (await d.curatedStore.get(reportKey(DATASET, 'run-1')))!.body.toString();
    assert.match(html, /<svg/);
    assert.doesNotMatch(html, /<script/);
    assert.match(html, /primary_key_unique_id/);
    finalRows = [...first.slice(10), ...newerVersions, badCasts].filter((r) => r.id !== undefined);
  });

  test('marts match values computed independently', async () => {
    assert.equal(summary1.status, 'succeeded', JSON.stringify(summary1.failedErrorTests));
    const martRows = async (mart: string) => {
      const db = await DuckDBInstance.create(':memory:');
      const conn = await db.connect();
      const r = await conn.runAndReadAll(`SELECT * FROM read_parquet('${path.join(d.curatedDir, 'curated', NAME, 'marts', mart, 'data.parquet')}')`);
      const rows = r.getRowObjectsJS() as Record<string, unknown>[];
      conn.closeSync();
      db.closeSync();
      return rows;
    };
    // incidents per month and battalion
    const expectMonthly = new Map<string, number>();
    for (const r of finalRows) {
      const k = `${String(r.incident_date).slice(0, 7)}|${r.battalion}`;
      expectMonthly.set(k, (expectMonthly.get(k) ?? 0) + 1);
    }
    const monthly = await martRows('incidents_by_month_battalion');
    assert.equal(monthly.length, expectMonthly.size);
    for (const m of monthly) {
      const k = `${(m.month as Date).toISOString().slice(0, 7)}|${m.battalion}`;
      assert.equal(Number(m.incidents), expectMonthly.get(k), k);
    }
    // response time percentiles by neighborhood
    const secs = new Map<string, number[]>();
    for (const r of finalRows) {
      if (!r.alarm_dttm || r.alarm_dttm === 'not a time') continue;
      const s = (Date.parse(`${r.arrival_dttm}Z`) - Date.parse(`${r.alarm_dttm}Z`)) / 1000;
      const n = String(r.neighborhood_district);
      secs.set(n, [...(secs.get(n) ?? []), s]);
    }
    const response = await martRows('response_time_by_neighborhood');
    assert.equal(response.length, secs.size);
    for (const r of response) {
      const v = secs.get(String(r.neighborhood_district))!;
      assert.equal(Number(r.incidents), v.length);
      assert.ok(Math.abs(Number(r.p50_seconds) - percentile(v, 0.5)) < 1e-6);
      assert.ok(Math.abs(Number(r.p90_seconds) - percentile(v, 0.9)) < 1e-6);
    }
    // losses and casualties by primary situation
    const losses = await martRows('losses_by_primary_situation');
    for (const l of losses) {
      const rows = finalRows.filter((r) => r.primary_situation === l.primary_situation);
      assert.equal(Number(l.incidents), rows.length);
      const loss = rows.reduce((a, r) => a + (Number.isFinite(Number(r.estimated_property_loss)) ? Number(r.estimated_property_loss) : 0), 0);
      assert.equal(l.property_loss, loss);
      assert.equal(Number(l.fire_fatalities), rows.reduce((a, r) => a + Number(r.fire_fatalities), 0));
      assert.equal(Number(l.civilian_injuries), rows.reduce((a, r) => a + Number(r.civilian_injuries), 0));
    }
    // A mart built on another mart (ref between models).
    const totals = await martRows('battalion_totals');
    const b99 = totals.find((t) => t.battalion === 'B99');
    assert.equal(Number(b99?.incidents), 10);
  });

  test('incremental second run reads only the new object and merges updates', async () => {
    const update = incident(40, { battalion: 'B42' }, 2);
    const moved = incident(41, { incident_date: '2030-06-01T00:00:00.000' }, 2); // changes event year
    const brandNew = incident(100, {}, 2);
    writeRawObject(d.rawDir, NAME, '2024-03-02', 'b-2', [update, moved, brandNew]);
    const s = await run(d, 'run-2');
    assert.equal(s.rawObjects.new, 1);
    assert.equal(s.rawObjects.alreadyProcessed, 2);
    assert.equal(s.rowsRead, 3);
    assert.equal(s.rowsInserted, 1);
    assert.equal(s.rowsUpdated, 2);
    assert.equal(s.curatedRows, 62);
    const rows = await readCurated(d.curatedDir, (t) => `SELECT id, battalion, event_year FROM ${t} WHERE id IN ('1000400', '1000410', '1001000') ORDER BY id`);
    assert.deepEqual(
      rows.map((r) => [r.id, r.battalion, r.event_year]),
      [['1000400', 'B42', 2023n], ['1000410', first[41]!.battalion, 2030n], ['1001000', 'B01', 2023n]],
    );
    const count = await readCurated(d.curatedDir, (t) => `SELECT count(*) AS n, count(DISTINCT id) AS k FROM ${t}`);
    assert.equal(count[0]!.n, 62n, 'the moved key left its old year partition');
    assert.equal(count[0]!.k, 62n);
    assert.equal(s.status, 'succeeded');
  });

  test('re-running on the same input changes nothing', async () => {
    const tableDir = path.join(d.curatedDir, 'curated', NAME, 'table');
    const files = (dir: string): string[] => readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.parquet')).sort();
    const before = files(tableDir).map((f) => [f, statSync(path.join(tableDir, f)).mtimeMs, readFileSync(path.join(tableDir, f)).length]);
    const s = await run(d, 'run-3');
    assert.equal(s.rawObjects.new, 0);
    assert.equal(s.rowsRead, 0);
    assert.equal(s.rowsWritten, 0);
    assert.equal(s.curatedRows, 62);
    const after = files(tableDir).map((f) => [f, statSync(path.join(tableDir, f)).mtimeMs, readFileSync(path.join(tableDir, f)).length]);
    assert.deepEqual(after, before);
  });

  test('re-delivering already merged rows in a new object is a no-op on the table', async () => {
    writeRawObject(d.rawDir, NAME, '2024-03-03', 'c-1', [incident(40, { battalion: 'B42' }, 2), first[50]!]);
    const s = await run(d, 'run-4');
    assert.equal(s.rowsRead, 2);
    assert.equal(s.rowsUnchanged, 2);
    assert.equal(s.rowsWritten, 0);
    assert.equal(s.curatedRows, 62);
  });
});

describe('data tests on DuckDB', () => {
  test('a failing error-severity test fails the run and names the test; warnings are only reported', async () => {
    const d = dirs();
    const dataset = parseDataset(
      {
        ...JSON.parse(readFileSync(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'), 'utf8')),
        dataTests: [
          { kind: 'accepted_values', column: 'battalion', values: ['B01', 'B02'], name: 'known_battalions' },
          { kind: 'expression', name: 'arrival_not_before_alarm', expression: 'arrival_dttm >= alarm_dttm', severity: 'warn' },
        ],
      },
      'test',
    );
    const backwards = incident(1, { arrival_dttm: '2020-01-01T00:00:00.000' });
    writeRawObject(d.rawDir, NAME, '2024-03-01', 'a', [incident(0), backwards, incident(2), incident(3)]);
    const s = await run(d, 'run-t', dataset);
    assert.equal(s.status, 'tests_failed');
    assert.deepEqual(s.failedErrorTests, ['known_battalions']);
    const known = s.tests.results.find((r) => r.name === 'known_battalions')!;
    assert.equal(known.failing, 2); // B03 and B10
    const warn = s.tests.results.find((r) => r.name === 'arrival_not_before_alarm')!;
    assert.deepEqual([warn.status, warn.severity, warn.failing], ['warn', 'warn', 1]);
    const recon = s.tests.results.find((r) => r.name === 'reconciliation_merged_keys_equal_curated_rows')!;
    assert.equal(recon.status, 'pass');
  });
});

describe('content-aware upserts on DuckDB', () => {
  test('a full replace with identical contents (new :updated_at and :id on every row) updates nothing; a changed row is updated', async () => {
    const d = dirs();
    const ids = Array.from({ length: 12 }, (_, i) => i);
    writeRawObject(d.rawDir, NAME, '2024-03-01', 'a', ids.map((i) => incident(i)));
    await run(d, 'r1');
    const replaced = ids.map((i) => ({ ...incident(i, i === 7 ? { battalion: 'B55' } : {}, 1), _source_id: `row-new-${i}` }));
    writeRawObject(d.rawDir, NAME, '2024-03-02', 'b', replaced);
    const s = await run(d, 'r2');
    assert.deepEqual([s.rowsInserted, s.rowsUpdated, s.rowsUnchanged, s.rowsWritten], [0, 1, 11, 1]);
    const rows = await readCurated(d.curatedDir, (t) => `SELECT id, battalion, _source_id FROM ${t} WHERE id IN ('1000060', '1000070') ORDER BY id`);
    assert.deepEqual(rows.map((r) => [r.id, r.battalion, r._source_id]), [['1000060', incident(6).battalion, 'row-6'], ['1000070', 'B55', 'row-new-7']]);
  });
});

describe('curated layout migration and marts on DuckDB', () => {
  test('a table written before manifests is read, then moves to the manifest layout at its next commit', async () => {
    const d = dirs();
    writeRawObject(d.rawDir, NAME, '2024-03-01', 'a', [incident(0), incident(1), incident(2)]);
    await run(d, 'r1');
    // Rewrite the table in the old layout: year directories directly under table/, no manifest.
    const tableDir = path.join(d.curatedDir, 'curated', NAME, 'table');
    const files = manifestFiles(tableDir);
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const legacy = mkdtempSync(path.join(tmpdir(), 'legacy-'));
    await conn.run(`COPY (SELECT * EXCLUDE (_content_hash) FROM read_parquet([${files.map((f) => `'${f}'`).join(', ')}], hive_partitioning = true)) TO '${legacy}' (FORMAT parquet, PARTITION_BY (event_year))`);
    conn.closeSync();
    db.closeSync();
    rmSync(tableDir, { recursive: true, force: true });
    cpSync(legacy, tableDir, { recursive: true });
    assert.equal(readManifest(tableDir).version, 'legacy');

    writeRawObject(d.rawDir, NAME, '2024-03-02', 'b', [incident(1, { battalion: 'B66' }, 1), incident(3)]);
    const s = await run(d, 'r2');
    assert.deepEqual([s.rowsInserted, s.rowsUpdated, s.curatedRows], [1, 1, 4]);
    assert.ok(readManifest(tableDir).version.startsWith('v-'));
    const rows = await readCurated(d.curatedDir, (t) => `SELECT id, battalion FROM ${t} ORDER BY id`);
    assert.deepEqual(rows.map((r) => r.id), ['1000000', '1000010', '1000020', '1000030']);
    assert.equal(rows[1]!.battalion, 'B66');
  });

  test('a mart whose query fails leaves the previous mart file in place', async () => {
    const d = dirs();
    writeRawObject(d.rawDir, NAME, '2024-03-01', 'a', [incident(0), incident(1)]);
    const mart = (sql: string) => [{ name: 'by_battalion', file: 'x.sql', description: '', template: sql, dependsOn: [], tests: [] }];
    await runTransform({ dataset: DATASET, engine: 'duckdb', rawStore: d.rawStore, curatedStore: d.curatedStore, runId: 'r1', marts: mart("SELECT battalion, count(*) AS n FROM {{ ref('curated') }} GROUP BY 1") });
    const file = path.join(d.curatedDir, 'curated', NAME, 'marts', 'by_battalion', 'data.parquet');
    const before = readFileSync(file);
    await assert.rejects(
      runTransform({ dataset: DATASET, engine: 'duckdb', rawStore: d.rawStore, curatedStore: d.curatedStore, runId: 'r2', marts: mart("SELECT no_such_column FROM {{ ref('curated') }}") }),
      /no_such_column/,
    );
    assert.deepEqual(readFileSync(file), before);
  });
});
