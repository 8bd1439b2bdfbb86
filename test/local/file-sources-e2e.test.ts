/**
 * `npm run local` of file and S3 datasets end to end (issue #19): the generated file served over
 * real HTTP with ETags, the objects served by moto_server, the deployed adapters, the real fetcher
 * handler, the crawl and the DuckDB transform. Expected values come from the source's records, as
 * written to the file or objects; each source is changed between runs the way its publisher would.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import { parseDataset, type DatasetConfig } from '../../runtime/dataset-config';
import { LocalObjectStore } from '../../runtime/object-store';
import { quarantinePrefix } from '../../runtime/storage-layout';
import { genericRecords } from '../../local/generated-records';
import { localFileSource, writeLocalFileVersion } from '../../local/local-file-source';
import { writeLocalObject } from '../../local/local-s3-source';
import { runLocalPipeline, type LocalRunSummary } from '../../local/pipeline';
import { motoAvailable } from '../support/moto-s3';
import { suiteTempDir } from '../support/suite-fixtures';
import { assertCuratedExact, sourceRowsByKey } from '../support/curated-exact';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

let root: string;
suiteTempDir('file-sources-e2e-', (dir) => (root = dir));

const orders = parseDataset(
  {
    name: 'shop-orders',
    description: 'Orders as one gzipped CSV over HTTPS',
    source: { type: 'file', url: 'https://files.example.org/exports/orders.csv.gz', format: 'csv' },
    primaryKey: 'order_id',
    eventTimeColumn: 'ordered_at',
    columns: [
      { name: 'order_id', type: 'integer' },
      { name: 'customer', type: 'text' },
      { name: 'amount', type: 'number' },
      { name: 'quantity', type: 'integer' },
      { name: 'paid', type: 'checkbox' },
      { name: 'ordered_at', type: 'floating_timestamp' },
    ],
  },
  'test',
);

const events = (mode: 'append' | 'snapshot'): DatasetConfig =>
  parseDataset(
    {
      name: `fleet-${mode}`,
      description: 'Vehicle events, NDJSON objects under an S3 prefix',
      source: { type: 's3', url: `s3://fleet-${mode}/events/`, format: 'ndjson', compression: 'gzip', mode, key: ['event', 'data.id', 'seen'] },
      primaryKey: 'event_key',
      eventTimeColumn: 'seen',
      ...(mode === 'append' ? { deletions: { detect: false } } : {}),
      columns: [
        { name: 'event_key', type: 'text' },
        { name: 'event', type: 'text' },
        { name: 'seen', type: 'fixed_timestamp' },
        { name: 'vehicle_id', type: 'text', path: 'data.id' },
        { name: 'lat', type: 'number', path: 'data.location.lat' },
        { name: 'battery', type: 'integer', path: 'data.battery' },
      ],
    },
    'test',
  );

type Records = Record<string, unknown>[];
const records = (dataset: DatasetConfig, n: number, seed = 1): Records => [...genericRecords(dataset, n, seed)].map((r) => r.record);

/** The quarantined records of the dataset (every run's), as stored. */
async function quarantined(dataDir: string, dataset: DatasetConfig): Promise<Record<string, unknown>[]> {
  const store = new LocalObjectStore(path.join(dataDir, 'buckets', 'raw'));
  const out: Record<string, unknown>[] = [];
  for (const key of await store.list(quarantinePrefix(dataset))) {
    const body = (await store.get(key))!.body;
    for (const line of gunzipSync(body).toString().split('\n').filter(Boolean)) out.push(JSON.parse(line) as Record<string, unknown>);
  }
  return out;
}

const assertExact = assertCuratedExact;

const byOrder = (rs: Records): Map<string, Record<string, unknown>> => sourceRowsByKey(orders, rs);

describe('npm run local of a file over HTTPS (snapshot semantics)', () => {
  test('first load exact; unchanged file: nothing fetched; new version: updates, deletions and inserts applied, ragged lines quarantined with the line', async () => {
    const dataDir = path.join(root, 'orders');
    const start = localFileSource();
    const first = records(orders, 1_500);
    let served = await start({ dataset: orders, dataDir, rows: 1_500, seed: 1 });
    let s: LocalRunSummary;
    try {
      s = await runLocalPipeline({ dataset: orders, dataDir, endpoint: served });
      assert.equal(s.fetch.rowsDelivered, 1_500);
      assert.deepEqual(s.sourceIdentity, { type: 'file', url: orders.source.type === 'file' ? orders.source.url : '' });
      assert.deepEqual(s.schemaDrift.undeclared, []);
      await assertExact(dataDir, orders, byOrder(first));

      // The same version again: asked conditionally, answered 304, nothing read or transformed.
      const before = served.requests.length;
      s = await runLocalPipeline({ dataset: orders, dataDir, endpoint: served });
      assert.equal(s.fetch.rowsFetched, 0);
      assert.equal(s.transform?.rowsInserted ?? 0, 0);
      assert.ok(served.requests.slice(before).some((r) => r.conditional && r.status === 304), JSON.stringify(served.requests.slice(before)));
    } finally {
      await served.close();
    }

    // The publisher's next file: 100 rows changed, 100 gone (under the 10% mass-delete guard), 50 new, and two ragged lines.
    const next = first.slice(100).map((r, i) => (i < 100 ? { ...r, amount: '1234.5', paid: 'true', customer: 'changed, "quoted"' } : r));
    next.push(...records(orders, 1_550).slice(1_500));
    const header = orders.columns.map((c) => c.name).join(',');
    const body = [header, ...next.map((r) => orders.columns.map((c) => csvText(r[c.name])).join(','))];
    body.splice(10, 0, '999999,too,few');
    body.splice(20, 0, '999998,a,1,2,true,2020-01-01T00:00:00.000,extra');
    await writeLocalFileVersion(dataDir, orders, { text: `${body.join('\r\n')}\r\n` });
    served = await start({ dataset: orders, dataDir, rows: 1_500, seed: 1 });
    try {
      s = await runLocalPipeline({ dataset: orders, dataDir, endpoint: served });
    } finally {
      await served.close();
    }
    assert.equal(s.fetch.rowsQuarantined, 2);
    assert.equal(s.fetch.quarantinedMalformed, 2);
    assert.equal(s.keys?.keys, 1_450);
    assert.equal(s.transform?.rowsDeleted, 100);
    assert.equal(s.transform?.rowsUpdated, 100);
    assert.equal(s.transform?.rowsInserted, 50);
    await assertExact(dataDir, orders, byOrder(next));
    const bad = await quarantined(dataDir, orders);
    assert.equal(bad.length, 2);
    // The file and line of each: lines 11 and 21 of the file (header is line 1).
    assert.match(JSON.stringify(bad), /orders\.csv\.gz line 11/);
    assert.match(JSON.stringify(bad), /orders\.csv\.gz line 21/);
  });
});

for (const type of ['file', 's3'] as const) {
  test(`${type}: headers that are not identifiers (Row ID, Customer Name) load into the columns that name them (columns[].field), the key too, without drift`, { skip: type === 's3' && !motoAvailable ? 'moto_server is not installed' : false }, async () => {
  const renamed = parseDataset(
    {
      name: `superstore-${type}`,
      description: 'A CSV whose headers are not identifiers',
      source: type === 'file' ? { type, url: 'https://files.example.org/superstore.csv', format: 'csv' } : { type, url: 's3://superstore-drop/lines/', format: 'csv', mode: 'snapshot' },
      primaryKey: 'row_id',
      eventTimeColumn: 'order_date',
      columns: [
        { name: 'row_id', type: 'integer', field: 'Row ID' },
        { name: 'order_date', type: 'floating_timestamp', field: 'Order Date' },
        { name: 'customer_name', type: 'text', field: 'Customer Name' },
        { name: 'sales', type: 'number', field: 'Sales' },
        { name: 'sub_category', type: 'text', field: 'Sub-Category' },
      ],
    },
    'test',
  );
  const dataDir = path.join(root, `renamed-${type}`);
  const s = await runLocalPipeline({ dataset: renamed, dataDir, rows: 800 });
  assert.equal(s.fetch.rowsDelivered, 800);
  assert.equal(s.fetch.rowsQuarantined, 0);
  assert.deepEqual(s.schemaDrift.undeclared, []);
  const served = records(renamed, 800);
  assert.ok('Row ID' in served[0]! && !('row_id' in served[0]!), 'the file holds the headers, not the column names');
  await assertExact(dataDir, renamed, sourceRowsByKey(renamed, served));
});
}

/** A CSV field as the file writer quotes it. */
function csvText(v: unknown): string {
  const t = v === undefined || v === null ? '' : String(v as string);
  return /[",\r\n]/.test(t) ? `"${t.replaceAll('"', '""')}"` : t;
}

const byEventKey = (rs: Records): Map<string, Record<string, unknown>> => sourceRowsByKey(events('append'), rs);

describe('npm run local of files under an S3 prefix (moto_server)', { skip: motoAvailable ? false : 'moto_server is not installed (pip install "moto[server]")' }, () => {
  test('append: each object once; nothing new reads nothing; a new object is read alone, its bad lines quarantined by object and line', async () => {
    const dataset = events('append');
    const dataDir = path.join(root, 'fleet-append');
    let s = await runLocalPipeline({ dataset, dataDir, rows: 12_000 });
    assert.equal(s.fetch.rowsDelivered, 12_000);
    assert.deepEqual(s.schemaDrift.undeclared, [], 'the nested parent of declared paths is not drift');
    assert.equal(s.keys?.skipped !== undefined, true, 'no key scan for an append source');
    const all = records(dataset, 12_000);
    await assertExact(dataDir, dataset, byEventKey(all));

    s = await runLocalPipeline({ dataset, dataDir, rows: 12_000 });
    assert.equal(s.fetch.rowsFetched, 0);
    assert.equal(s.fetch.pages, 0);

    // A new day's object (after the generated ones in key order): 100 events, then one without
    // its vehicle id (a missing key part) and one line that is not JSON.
    const day = Array.from({ length: 100 }, (_, i) => ({
      event: i % 2 ? 'update' : 'register',
      seen: new Date(Date.UTC(2026, 11, 7, 8, 0, i)).toISOString(),
      data: { id: `v-new-${Math.floor(i / 2)}`, location: { lat: String(51 + i / 1000) }, battery: String(100 - i) },
    }));
    const keyless = { event: 'deregister', seen: '2026-12-07T10:00:00.000Z', data: { location: { lat: '51.7' } } };
    await writeLocalObject(dataDir, dataset, 'generation-9999/day.ndjson.gz', { text: `${[...day, keyless].map((r) => JSON.stringify(r)).join('\n')}\n{"event": "update", broken\n` });
    s = await runLocalPipeline({ dataset, dataDir, rows: 12_000 });
    assert.equal(s.fetch.rowsFetched, 102, 'only the new object is read');
    assert.equal(s.fetch.rowsDelivered, 100);
    assert.equal(s.fetch.quarantinedMissingKey, 1);
    assert.equal(s.fetch.quarantinedMalformed, 1);
    await assertExact(dataDir, dataset, byEventKey([...all, ...day]));
    const bad = JSON.stringify(await quarantined(dataDir, dataset));
    assert.match(bad, /events\/generation-9999\/day\.ndjson\.gz line 102/);
  });

  test('snapshot: a changed prefix is read whole and keys gone from it are deleted; unchanged reads nothing', async () => {
    const dataset = events('snapshot');
    const dataDir = path.join(root, 'fleet-snapshot');
    let s = await runLocalPipeline({ dataset, dataDir, rows: 15_000 });
    assert.equal(s.fetch.rowsDelivered, 15_000);
    s = await runLocalPipeline({ dataset, dataDir, rows: 15_000 });
    assert.equal(s.fetch.rowsFetched, 0);
    // The publisher rewrites the last object without its last 1,000 records (under the 10% guard).
    const all = records(dataset, 15_000);
    await writeLocalObject(dataDir, dataset, 'generation-0001/part-00001.ndjson.gz', { records: all.slice(10_000, 14_000) });
    s = await runLocalPipeline({ dataset, dataDir, rows: 15_000 });
    assert.equal(s.fetch.rowsFetched, 14_000, 'a changed snapshot is read whole');
    assert.equal(s.transform?.rowsDeleted, 1_000);
    await assertExact(dataDir, dataset, byEventKey(all.slice(0, 14_000)));
  });
});
