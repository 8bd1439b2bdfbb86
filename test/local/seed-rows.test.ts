/**
 * The seed datasets (examples/datasets/) and their generators (local/seed-rows/): every
 * definition loads; generated records have the shape of the real files they imitate
 * (test/fixtures/files/README.md names their origin); they are deterministic, grow as a
 * publisher's inserts do (S3 events: in new objects only), survive the CSV / NDJSON writers and
 * readers unchanged (quoted commas and quotes included), include the keyless events the S3
 * adapter quarantines, and mutateRecords changes exactly what it reports.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadDatasetFile, type DatasetConfig } from '../../runtime/dataset-config';
import { isProblem, keyExtractor, readRecords, recordLines, type FileFormat } from '../../runtime/file-formats';
import { mutateRecords, SEED_DATASETS, seedColumns, seedRecords, type GeneratedRecord } from '../../local/seed-rows';
import { DFT_ACCIDENT_COLUMNS } from '../../local/seed-rows/road-safety-accidents';
import { ORDER_COLUMNS } from '../../local/seed-rows/store-orders';
import { EVENTS_PER_DAY, keylessEventCount, missingKeyPart } from '../../local/seed-rows/vehicle-events';

const ROOT = path.join(import.meta.dirname, '..', '..');
const EXAMPLES = path.join(ROOT, 'examples', 'datasets');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'files');
const load = (name: string): DatasetConfig => loadDatasetFile(path.join(EXAMPLES, `${name}.json`));
const generate = (name: string, rows: number, seed = 1): GeneratedRecord[] => [...seedRecords(load(name), rows, seed)!];

type Row = Record<string, unknown>;

/** The records of a file's bytes, failing on any problem row. */
async function read(bytes: string | Buffer, format: FileFormat): Promise<Row[]> {
  const rows: Row[] = [];
  for await (const item of readRecords([typeof bytes === 'string' ? Buffer.from(bytes) : bytes], { format, compression: 'none', name: 'seed' })) {
    if (isProblem(item)) assert.fail(`line ${item.line}: ${item.problem}`);
    rows.push(item.record);
  }
  return rows;
}

const readFixture = (file: string): Promise<Row[]> => read(readFileSync(path.join(FIXTURES, file)), 'csv');
const fixtureHeader = (file: string): string[] => readFileSync(path.join(FIXTURES, file), 'utf8').replace(/^\uFEFF/, '').split('\r\n')[0]!.split(',');

/** A publisher's header as an identifier: DfT's 1st/2nd became first/second, anything else an underscore. */
const identifierOf = (name: string): string =>
  name.toLowerCase().replace(/^1st_/, 'first_').replace(/^2nd_/, 'second_').replace(/[()]/g, '').replace(/[^a-z0-9]+/g, '_');

/** Every value of `column` in `rows` (absent ones skipped) matches `pattern`; the offenders are named. */
function assertShape(rows: Row[], patterns: Record<string, RegExp>, what: string): void {
  for (const [column, pattern] of Object.entries(patterns)) {
    const bad = rows.map((r) => r[column]).filter((v) => v !== undefined && !pattern.test(String(v)));
    assert.deepEqual(bad.slice(0, 3), [], `${what}: ${column} values outside ${pattern}`);
  }
}

const INTEGER = /^-?\d+$/;
/** How the DfT accident file writes each value, from the real rows (both vintages of the index). */
const ACCIDENT_SHAPE: Record<string, RegExp> = {
  accident_index: /^\d{4}[0-9A-Z]{9}$/,
  location_easting_osgr: /^\d{5,6}$/,
  location_northing_osgr: /^\d{5,7}$/,
  longitude: /^-?\d\.\d{5,6}$/,
  latitude: /^\d{2}\.\d{5,6}$/,
  date: /^\d{2}\/\d{2}\/\d{4}$/,
  time: /^\d{2}:\d{2}$/,
  local_authority_highway: /^[EWS]\d{8}$/,
  lsoa_of_accident_location: /^[EWS]01\d{6}$/,
  ...Object.fromEntries(
    ['police_force', 'accident_severity', 'number_of_vehicles', 'number_of_casualties', 'day_of_week', 'local_authority_district', 'first_road_class',
      'first_road_number', 'road_type', 'speed_limit', 'junction_detail', 'junction_control', 'second_road_class', 'second_road_number',
      'pedestrian_crossing_human_control', 'pedestrian_crossing_physical_facilities', 'light_conditions', 'weather_conditions',
      'road_surface_conditions', 'special_conditions_at_site', 'carriageway_hazards', 'urban_or_rural_area',
      'did_police_officer_attend_scene_of_accident'].map((c) => [c, INTEGER]),
  ),
};
/** How the Superstore sample writes each value but the dates (ours are ISO: see store-orders.ts). */
const ORDER_SHAPE: Record<string, RegExp> = {
  row_id: /^\d+$/,
  order_id: /^[A-Z]{2}-\d{4}-\d{6}$/,
  ship_mode: /^(Standard Class|Second Class|First Class|Same Day)$/,
  customer_id: /^[A-Z]{2}-\d{5}$/,
  segment: /^(Consumer|Corporate|Home Office)$/,
  country_region: /^(United States|Canada)$/,
  postal_code: /^(\d{5}|[A-Z]\d[A-Z])$/, // US ZIP, or a Canadian forward sortation area
  region: /^(Central|East|West|South)$/,
  product_id: /^(OFF|FUR|TEC)-[A-Z]{2}-\d{8}$/,
  category: /^(Office Supplies|Furniture|Technology)$/,
  sales: /^\d+(\.\d+)?$/,
  quantity: /^\d+$/,
  discount: /^0(\.\d+)?$/,
  profit: /^-?\d+(\.\d+)?$/,
};

describe('seed dataset definitions', () => {
  test('every examples/datasets file loads, and each is a seed dataset with a generator (a portal example is served from the generic rows of its fields)', () => {
    const all = readdirSync(EXAMPLES).filter((f) => f.endsWith('.json')).sort();
    // A portal's layer or resource serves rows generated from its declared fields (local/arcgis-local-source.ts, local/ckan-local-source.ts), as its dataset add writes them.
    const portal = all.filter((f) => ['arcgis', 'ckan'].includes(loadDatasetFile(path.join(EXAMPLES, f)).source.type ?? 'socrata'));
    assert.deepEqual(portal, ['ontario-covid-vaccinations.json', 'workforce-assignments.json']);
    const files = all.filter((f) => !portal.includes(f));
    assert.deepEqual(files, [...SEED_DATASETS].map((n) => `${n}.json`).sort());
    for (const f of files) {
      const dataset = loadDatasetFile(path.join(EXAMPLES, f));
      assert.ok(seedRecords(dataset, 1, 1), `${dataset.name} has a generator`);
    }
    assert.equal(seedRecords(loadDatasetFile(path.join(ROOT, 'datasets', 'sf-fire-incidents.json')), 1, 1), undefined);
  });

  test('the CSV datasets declare exactly the generated header, in order', () => {
    for (const name of ['road-safety-accidents', 'store-orders']) {
      const dataset = load(name);
      assert.deepEqual(dataset.columns.map((c) => c.name), seedColumns(dataset));
      for (const { record } of generate(name, 200)) {
        const extra = Object.keys(record).filter((k) => !seedColumns(dataset)!.includes(k));
        assert.deepEqual(extra, [], `${name}: fields outside the header`);
      }
    }
  });
});

describe('road-safety accidents: the DfT accident file', () => {
  test('the header is the real 2021+ DfT header plus our ISO datetime; the 2005 file\'s names map onto it', async () => {
    const dataset = load('road-safety-accidents');
    assert.deepEqual(seedColumns(dataset), [...fixtureHeader('dft-accidents-2021-header.csv'), 'datetime']);
    assert.deepEqual([...DFT_ACCIDENT_COLUMNS], fixtureHeader('dft-accidents-2021-header.csv'));
    const old = fixtureHeader('dft-accidents-2005-first-row.csv').map(identifierOf);
    assert.deepEqual(old.filter((c) => !DFT_ACCIDENT_COLUMNS.includes(c as (typeof DFT_ACCIDENT_COLUMNS)[number])), []);
    assert.equal(old.length, 32);
  });

  test('generated values are written as the real file writes them', async () => {
    const real = (await readFixture('dft-accidents-2005-first-row.csv')).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [identifierOf(k), v])));
    assert.equal(real.length, 1);
    assertShape(real, ACCIDENT_SHAPE, 'the real DfT row');
    const generated = generate('road-safety-accidents', 2000).map((g) => g.record);
    assertShape(generated, ACCIDENT_SHAPE, 'generated accidents');
    // datetime is date and time in ISO, the event time the pipeline can read.
    for (const r of generated.slice(0, 50)) {
      const [d, m, y] = String(r.date).split('/');
      assert.equal(r.datetime, `${y}-${m}-${d}T${String(r.time)}:00`);
    }
    const located = generated.filter((r) => r.latitude !== undefined).length;
    assert.ok(located > 1900 && located < 2000, `a few accidents have no location (${2000 - located} of 2000)`);
    assert.equal(new Set(generated.map((r) => r.accident_index)).size, 2000, 'accident_index is unique');
  });
});

describe('store orders: the Superstore sample', () => {
  test('the header is the real one lower-cased into identifiers; values are written as the real file writes them', async () => {
    assert.deepEqual(fixtureHeader('superstore-orders-head.csv').map(identifierOf), [...ORDER_COLUMNS]);
    const real = (await readFixture('superstore-orders-head.csv')).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [identifierOf(k), v])));
    assert.equal(real.length, 175);
    assertShape(real, ORDER_SHAPE, 'the real Superstore rows');
    const generated = generate('store-orders', 500).map((g) => g.record);
    assertShape(generated, { ...ORDER_SHAPE, order_date: /^\d{4}-\d{2}-\d{2}T00:00:00$/, ship_date: /^\d{4}-\d{2}-\d{2}T00:00:00$/ }, 'generated orders');
    // Like the real file: product names with commas and inch marks, a customer name with a comma.
    assert.ok(generated.some((r) => /,.*"/.test(String(r.product_name))));
    assert.ok(generated.some((r) => String(r.customer_name).includes(',')));
    // The lines of one order agree on what belongs to the order.
    const orders = new Map<string, string>();
    for (const r of generated) {
      const shared = [r.order_date, r.ship_date, r.ship_mode, r.customer_id, r.city].join('|');
      assert.equal(orders.get(String(r.order_id)) ?? shared, shared, `order ${String(r.order_id)}`);
      orders.set(String(r.order_id), shared);
    }
    assert.ok(orders.size > 150 && orders.size < 300, `${orders.size} orders of one to three lines`);
  });
});

describe('vehicle events: daily NDJSON objects', () => {
  test('nested records with every declared path; one object per day of 100 events', () => {
    const dataset = load('vehicle-events');
    const events = generate('vehicle-events', 300);
    assert.equal(events.length, 300);
    assert.deepEqual([...new Set(events.map((e) => e.object))], ['2026-12-01/events.ndjson', '2026-12-02/events.ndjson', '2026-12-03/events.ndjson']);
    const first = events[0]!.record as { data: { location: { lat: unknown } } };
    assert.equal(typeof first.data.location.lat, 'number');
    for (const c of dataset.columns.filter((col) => col.path)) {
      const absent = events.filter(({ record }) => c.path!.split('.').reduce<unknown>((v, k) => (v as Row | undefined)?.[k], record) === undefined);
      assert.ok(absent.length <= 1, `${c.path} is absent from ${absent.length} events`);
    }
    // Within a day, times increase: the day's object is in event order.
    const times = events.map((e) => String(e.record.at ?? ''));
    for (let i = 1; i < times.length; i++) if (times[i] && times[i - 1] && i % EVENTS_PER_DAY !== 0) assert.ok(times[i]! > times[i - 1]!, `event ${i}`);
  });

  test('every 97th event lacks one key part, in turn: the adapter quarantines exactly keylessEventCount of them', () => {
    const dataset = load('vehicle-events');
    const source = dataset.source;
    assert.ok(source.type === 's3' && source.key);
    const keyOf = keyExtractor(source.key);
    const events = generate('vehicle-events', 1000);
    const keyless = events.flatMap(({ record }, i) => {
      const k = keyOf(record);
      return k.ok ? [] : [[i, k.problems.map((p) => p.part).join()]];
    });
    assert.equal(keyless.length, keylessEventCount(events.length));
    assert.deepEqual(keyless.slice(0, 4), [[96, 'event'], [193, 'data.id'], [290, 'at'], [387, 'event']]);
    assert.deepEqual(keyless.map(([i]) => missingKeyPart(i as number)), keyless.map(([, part]) => part));
    // The well-formed events' keys are unique: curated holds one row per event.
    const keys = events.map(({ record }) => keyOf(record)).filter((k) => k.ok).map((k) => JSON.stringify(k.ok && k.values));
    assert.equal(new Set(keys).size, keys.length);
  });

  test('a vehicle registers before it reports and reports nothing after it is deregistered', () => {
    const state = new Map<string, string>();
    for (const { record } of generate('vehicle-events', 2000)) {
      const r = record as { event?: string; data: { id?: string } };
      if (!r.event || !r.data.id || !('at' in record)) continue;
      const before = state.get(r.data.id);
      if (r.event === 'register') assert.equal(before, undefined, `${r.data.id} registered twice`);
      else assert.ok(before === 'register' || before === 'update', `${r.data.id}: ${r.event} after ${before ?? 'nothing'}`);
      state.set(r.data.id, r.event);
    }
    assert.ok([...state.values()].includes('deregister'));
  });
});

describe('seed generators', () => {
  test('deterministic: the same rows and seed give the same records, another seed others', () => {
    for (const name of SEED_DATASETS) {
      assert.deepEqual(generate(name, 300, 5), generate(name, 300, 5), name);
      assert.notDeepEqual(generate(name, 300, 5), generate(name, 300, 6), name);
    }
  });

  test('a larger rows is a publisher\'s inserts: the same first records, then new ones', () => {
    for (const name of ['road-safety-accidents', 'store-orders']) {
      const small = generate(name, 120, 9);
      const large = generate(name, 500, 9);
      assert.equal(large.length, 500);
      assert.deepEqual(large.slice(0, 120), small, name);
    }
  });

  test('S3 events: whole days, and new events only in new objects', () => {
    const first = generate('vehicle-events', 250, 9);
    assert.equal(first.length, 300, 'rounded up to whole days: an object is never appended to');
    const later = generate('vehicle-events', 520, 9);
    assert.equal(later.length, 600);
    assert.deepEqual(later.slice(0, 300), first);
    const before = new Set(first.map((e) => e.object));
    assert.deepEqual(later.slice(300).filter((e) => before.has(e.object)), []);
    assert.ok([...new Set(later.slice(300).map((e) => e.object!))].every((o) => o > [...before].sort().at(-1)!), 'new objects sort after the old ones');
  });

  test('rows and seed are checked', () => {
    assert.throws(() => seedRecords(load('store-orders'), -1, 1), /rows must be a whole number >= 0, got -1/);
    assert.throws(() => seedRecords(load('vehicle-events'), 10, 1.5), /seed must be a whole number, got 1.5/);
  });
});

describe('writers and readers round trip', () => {
  test('CSV: every generated record reads back equal, quoted commas and quotes included', async () => {
    for (const name of ['road-safety-accidents', 'store-orders']) {
      const dataset = load(name);
      const records = generate(name, 600).map((g) => g.record);
      const text = [...recordLines('csv', records, seedColumns(dataset)!)].join('');
      // The DfT file has no field to quote; the orders have commas and quotes in names.
      if (name === 'store-orders') assert.match(text, /,"[^"]*,[^"]*""[^\r\n]*",/, 'some field is quoted for its comma and doubled quote');
      assert.deepEqual(await read(text, 'csv'), records, name);
    }
  });

  test('NDJSON: nested events read back equal, numbers as numbers', async () => {
    const dataset = load('vehicle-events');
    const records = generate('vehicle-events', 300).map((g) => g.record);
    assert.deepEqual(await read([...recordLines('ndjson', records, seedColumns(dataset)!)].join(''), 'ndjson'), records);
  });
});

describe('mutateRecords: a publisher\'s next snapshot', () => {
  test('updates, deletes and inserts exactly the keys it reports, under the mass-delete guard', () => {
    for (const [name, key] of [['road-safety-accidents', 'accident_index'], ['store-orders', 'row_id']] as const) {
      const dataset = load(name);
      const records = generate(name, 400, 4);
      const next = mutateRecords(dataset, records, 4);
      const keyOf = (g: GeneratedRecord): string => String(g.record[key]);
      const before = new Map(records.map((g) => [keyOf(g), g.record]));
      const after = new Map(next.records.map((g) => [keyOf(g), g.record]));
      assert.deepEqual([next.updated.length, next.deleted.length, next.inserted.length], [40, 20, 16], name);
      assert.ok(next.deleted.length / records.length <= dataset.deletions.maxDeleteShare, 'a real run would apply these deletions');
      assert.deepEqual([...after.keys()].sort(), [...before.keys()].filter((k) => !next.deleted.includes(k)).concat(next.inserted).sort(), name);
      for (const [k, r] of after) {
        if (next.updated.includes(k)) assert.notDeepEqual(r, before.get(k), `${name} ${k} updated`);
        else if (!next.inserted.includes(k)) assert.deepEqual(r, before.get(k), `${name} ${k} unchanged`);
      }
      // The inserts are the generator's next records: the same as a larger file would hold.
      assert.deepEqual(next.records.slice(-16), generate(name, 416, 4).slice(400), name);
      assert.deepEqual(mutateRecords(dataset, records, 4), next, 'deterministic');
    }
  });

  test('the S3 events are append-only: their changes are new days', () => {
    assert.throws(() => mutateRecords(load('vehicle-events'), generate('vehicle-events', 100), 1), /append-only S3 source changes by new objects only: call seedRecords with more rows/);
  });
});
