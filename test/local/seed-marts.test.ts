/**
 * The seed datasets' marts and data tests (containers/transform/models/<name>/) on DuckDB over
 * generated rows, turned into raw rows the way the fetcher would (system fields, nested paths as
 * columns, the composite key; keyless events quarantined, so never in raw): every test passes and
 * every mart equals the same figures computed from the generated records in TypeScript. Each mart
 * also parses as Trino SQL, the Athena side.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { TrinoSQL } from 'dt-sql-parser';
import { loadDatasetFile, type DatasetConfig } from '../../runtime/dataset-config';
import { openObjectStore } from '../../runtime/object-store';
import { valueAt } from '../../runtime/file-formats';
import { toRawRow } from '../../lambdas/fetcher/raw-row';
import { RowKeyBuilder } from '../../lambdas/fetcher/sources/s3/row-key';
import { martDir } from '../../containers/transform/src/duckdb-engine';
import { athenaDialect } from '../../containers/transform/src/dialect';
import { loadMarts, renderMart } from '../../containers/transform/src/models';
import { runTransform, type RunSummary } from '../../containers/transform/src/transform';
import { seedRecords, type GeneratedRecord } from '../../local/seed-rows';
import { writeRawObject } from '../transform/raw-fixture';

const EXAMPLES = path.join(import.meta.dirname, '..', '..', 'examples', 'datasets');
const load = (name: string): DatasetConfig => loadDatasetFile(path.join(EXAMPLES, `${name}.json`));
const roots: string[] = [];
after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

type Row = Record<string, unknown>;

/** The rows the fetcher would deliver to raw for these records (nested paths and a composite key, as the S3 adapter computes them). */
function rawRows(dataset: DatasetConfig, records: GeneratedRecord[]): Row[] {
  const source = dataset.source;
  const key = source.type === 's3' && source.key ? new RowKeyBuilder({ parts: source.key, column: dataset.primaryKey }) : undefined;
  const rows: Row[] = [];
  records.forEach(({ record }, i) => {
    const row: Row = { ':updated_at': '2026-12-07T06:00:00.000Z', ':id': String(i + 1), ...record };
    for (const c of dataset.columns) if (c.path) row[c.name] = valueAt(record, c.path);
    if (key) {
      const k = key.of(record);
      if (!k.ok) return; // quarantined by the fetcher (missing_primary_key)
      row[key.column] = k.value;
    }
    rows.push(toRawRow(row, { pointColumns: [], runId: 'seed-1', ingestedAt: '2026-12-07T06:01:00.000Z' }));
  });
  return rows;
}

async function transform(dataset: DatasetConfig, rows: Row[]): Promise<{ summary: RunSummary; mart: (name: string) => Promise<Row[]> }> {
  const root = mkdtempSync(path.join(tmpdir(), `seed-marts-${dataset.name}-`));
  roots.push(root);
  const rawDir = path.join(root, 'raw');
  const curatedDir = path.join(root, 'curated');
  writeRawObject(rawDir, dataset.name, '2026-12-07', 'seed', rows);
  const summary = await runTransform({
    dataset,
    engine: 'duckdb',
    rawStore: openObjectStore(rawDir),
    curatedStore: openObjectStore(curatedDir),
    runId: 'seed-1',
  });
  const mart = async (name: string): Promise<Row[]> => {
    const dir = martDir(curatedDir, dataset, name);
    const files = readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith('.parquet'));
    assert.ok(files.length > 0, `mart ${name} wrote no Parquet under ${dir}`);
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    try {
      const list = files.map((f) => `'${path.join(dir, f)}'`).join(', ');
      return (await conn.runAndReadAll(`SELECT * FROM read_parquet([${list}]) ORDER BY ALL`)).getRowObjectsJS() as Row[];
    } finally {
      conn.closeSync();
      db.closeSync();
    }
  };
  return { summary, mart };
}

/** Every test passed (a failing one is named with its count), every declared mart built. */
function assertAllPassed(summary: RunSummary, marts: string[]): void {
  const failing = summary.tests.results.filter((r) => r.status !== 'pass').map((r) => `${r.name}: ${r.status} (${r.failing})`);
  assert.deepEqual(failing, []);
  assert.equal(summary.status, 'succeeded');
  assert.deepEqual(summary.marts.map((m) => m.name).sort(), [...marts].sort());
}

const month = (iso: string): string => `${iso.slice(0, 7)}-01`;
const day = (iso: string): string => iso.slice(0, 10);
const isoDate = (v: unknown): string => (v instanceof Date ? v.toISOString().slice(0, 10) : String(v).slice(0, 10));
const num = (v: unknown): number => Number(v);

/** Group records by a key, folding each group with `add` from `init()`. */
function groupBy<T>(rows: Row[], keyOf: (r: Row) => string, init: () => T, add: (acc: T, r: Row) => void): Map<string, T> {
  const groups = new Map<string, T>();
  for (const r of rows) {
    const k = keyOf(r);
    if (!groups.has(k)) groups.set(k, init());
    add(groups.get(k)!, r);
  }
  return groups;
}

describe('seed dataset marts on DuckDB', () => {
  test('road-safety-accidents: accidents and casualties by severity and month, by speed limit', async () => {
    const dataset = load('road-safety-accidents');
    const records = [...seedRecords(dataset, 1500, 7)!];
    const { summary, mart } = await transform(dataset, rawRows(dataset, records));
    assertAllPassed(summary, ['accidents_by_severity_month', 'casualties_by_speed_limit']);
    assert.equal(summary.curatedRows, 1500);
    const severity: Record<string, string> = { '1': 'fatal', '2': 'serious', '3': 'slight' };
    const rs = records.map((r) => r.record);
    const expected = groupBy(rs, (r) => `${month(String(r.datetime))}|${severity[String(r.accident_severity)]}`, () => ({ accidents: 0, casualties: 0 }), (a, r) => {
      a.accidents++;
      a.casualties += num(r.number_of_casualties);
    });
    const got = await mart('accidents_by_severity_month');
    assert.equal(got.length, expected.size);
    for (const g of got) {
      const e = expected.get(`${isoDate(g.month)}|${String(g.severity)}`);
      assert.deepEqual([num(g.accidents), num(g.casualties)], [e?.accidents, e?.casualties], `${isoDate(g.month)} ${String(g.severity)}`);
    }
    const bySpeed = groupBy(rs, (r) => String(r.speed_limit), () => ({ accidents: 0, casualties: 0, ksi: 0 }), (a, r) => {
      a.accidents++;
      a.casualties += num(r.number_of_casualties);
      if (r.accident_severity !== '3') a.ksi++;
    });
    const speed = await mart('casualties_by_speed_limit');
    assert.deepEqual(
      speed.map((s) => [String(s.speed_limit), num(s.accidents), num(s.casualties), num(s.killed_or_seriously_injured)]),
      [...bySpeed].map(([k, a]) => [k, a.accidents, a.casualties, a.ksi]).sort((a, b) => Number(a[0]) - Number(b[0])),
    );
  });

  test('store-orders: revenue per day and by category', async () => {
    const dataset = load('store-orders');
    const records = [...seedRecords(dataset, 400, 3)!];
    const { summary, mart } = await transform(dataset, rawRows(dataset, records));
    assertAllPassed(summary, ['revenue_per_day', 'revenue_by_category']);
    assert.equal(summary.curatedRows, 400);
    const rs = records.map((r) => r.record);
    const perDay = groupBy(rs, (r) => day(String(r.order_date)), () => ({ orders: new Set<string>(), lines: 0, units: 0, revenue: 0 }), (a, r) => {
      a.orders.add(String(r.order_id));
      a.lines++;
      a.units += num(r.quantity);
      a.revenue += num(r.sales);
    });
    const got = await mart('revenue_per_day');
    assert.equal(got.length, perDay.size);
    for (const g of got) {
      const e = perDay.get(isoDate(g.day));
      assert.ok(e, `no expected day ${isoDate(g.day)}`);
      assert.deepEqual([num(g.orders), num(g.lines), num(g.units)], [e.orders.size, e.lines, e.units]);
      assert.ok(Math.abs(num(g.revenue) - e.revenue) < 0.006, `${isoDate(g.day)}: revenue ${num(g.revenue)} vs ${e.revenue}`);
    }
    const byCategory = groupBy(rs, (r) => `${String(r.category)}|${String(r.sub_category)}`, () => ({ lines: 0, units: 0 }), (a, r) => {
      a.lines++;
      a.units += num(r.quantity);
    });
    const categories = await mart('revenue_by_category');
    assert.deepEqual(
      new Map(categories.map((c) => [`${String(c.category)}|${String(c.sub_category)}`, { lines: num(c.lines), units: num(c.units) }])),
      byCategory,
    );
  });

  test('vehicle-events: events per day and type, current fleet per provider; keyless events never reach curated', async () => {
    const dataset = load('vehicle-events');
    const records = [...seedRecords(dataset, 600, 11)!];
    const raw = rawRows(dataset, records);
    assert.equal(records.length - raw.length, 6, '600 records: 6 keyless (every 97th)');
    const { summary, mart } = await transform(dataset, raw);
    assertAllPassed(summary, ['events_per_day', 'current_fleet_by_provider']);
    assert.equal(summary.curatedRows, raw.length);
    const events = raw;
    const perDay = groupBy(events, (r) => `${day(String(r.at))}|${String(r.event)}`, () => ({ events: 0, vehicles: new Set<string>() }), (a, r) => {
      a.events++;
      a.vehicles.add(String(r.vehicle_id));
    });
    const got = await mart('events_per_day');
    assert.deepEqual(
      new Map(got.map((g) => [`${isoDate(g.day)}|${String(g.event)}`, [num(g.events), num(g.vehicles)]])),
      new Map([...perDay].map(([k, a]) => [k, [a.events, a.vehicles.size]])),
    );
    // Each vehicle's newest event; in service unless it is a deregister.
    const newest = new Map<string, Row>();
    for (const e of events) {
      const id = String(e.vehicle_id);
      const seen = newest.get(id);
      if (!seen || String(e.at) > String(seen.at)) newest.set(id, e);
    }
    const fleet = groupBy([...newest.values()].filter((e) => e.event !== 'deregister'), (e) => String(e.provider), () => ({ vehicles: 0 }), (a) => void a.vehicles++);
    const providers = await mart('current_fleet_by_provider');
    assert.deepEqual(new Map(providers.map((p) => [String(p.provider), num(p.vehicles)])), new Map([...fleet].map(([k, a]) => [k, a.vehicles])));
    assert.ok([...newest.values()].some((e) => e.event === 'deregister'), 'some vehicle left the fleet, so the filter is exercised');
  });

  test('every seed mart parses as Trino SQL (the Athena side)', () => {
    const trino = new TrinoSQL();
    for (const name of ['road-safety-accidents', 'store-orders', 'vehicle-events']) {
      const marts = loadMarts(load(name));
      assert.equal(marts.length, 2, `${name} has two marts`);
      for (const m of marts) {
        const sql = renderMart(m, athenaDialect, () => '"curated_db"."t"');
        assert.deepEqual(trino.validate(sql), [], `${name}/${m.name} does not parse as Trino SQL:\n${sql}`);
      }
    }
  });
});
