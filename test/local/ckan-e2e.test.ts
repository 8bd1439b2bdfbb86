/**
 * `npm run local` of a CKAN DataStore resource end to end (issue #21): the local portal
 * (local/ckan-local-source.ts) over real HTTP, the deployed adapter, the real fetcher handler, the
 * key scan, the crawl and the DuckDB transform. Expected values come from the rows the portal
 * serves (remembered in the data directory), changed between runs as a publisher changes a
 * resource: inserts, updates, deletions, a re-upload that renumbers `_id`.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadDatasetFile, parseDataset, type DatasetConfig } from '../../runtime/dataset-config';
import { changeLocalCkanResource, localCkanSource, readLocalCkanRecords } from '../../local/ckan-local-source';
import type { CkanRecord } from '../../local/ckan-server';
import { runLocalPipeline, type LocalRunSummary } from '../../local/pipeline';
import { suiteTempDir } from '../support/suite-fixtures';
import { assertCuratedExact, sourceRowsByKey } from '../support/curated-exact';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

let root: string;
suiteTempDir('ckan-e2e-', (dir) => (root = dir));

const URL_OF = 'https://ckan.example.org/data/api/3/action/datastore_search?resource_id=6f1c2a4e-0b7d-4c3e-9a51-2d8e7f0c1b3a';

const permits = (name: string, { pageSize, instants = false }: { pageSize?: number; instants?: boolean } = {}): DatasetConfig =>
  parseDataset(
    {
      name,
      description: 'Building permits, a CKAN DataStore resource',
      source: { type: 'ckan', url: URL_OF },
      primaryKey: 'permit_id',
      eventTimeColumn: 'issued_at',
      ...(pageSize ? { fetch: { pageSize } } : {}),
      columns: [
        { name: 'permit_id', type: 'integer' },
        { name: 'applicant', type: 'text' },
        { name: 'fee', type: 'number' },
        { name: 'units', type: 'integer' },
        { name: 'approved', type: 'checkbox' },
        { name: 'issued_at', type: 'floating_timestamp' },
        // A timestamptz field: CKAN serves it with an offset (+00:00), see the todo test below.
        ...(instants ? [{ name: 'inspected_at', type: 'fixed_timestamp' }] : []),
        { name: 'details', type: 'json' },
        { name: 'site', type: 'point' },
        { name: 'parcel', type: 'geometry' },
      ],
    },
    'test',
  );

/** The served rows without CKAN's `_id`, by primary key: what curated must hold. */
async function served(dataDir: string, dataset: DatasetConfig): Promise<Map<string, Record<string, unknown>>> {
  const records = (await readLocalCkanRecords(dataDir, dataset)).map(({ _id: _drop, ...r }) => r);
  return sourceRowsByKey(dataset, records);
}

const datastoreSearches = (requests: readonly { action: string }[]): number => requests.filter((r) => r.action === 'datastore_search').length;

describe('npm run local of a CKAN DataStore resource (snapshot semantics)', () => {
  test('first load exact; nothing new: nothing fetched; a larger --rows inserts; inserts, updates and deletions exact', async () => {
    const dataset = permits('permits');
    const dataDir = path.join(root, 'permits');
    const start = localCkanSource();
    let portal = await start({ dataset, dataDir, rows: 1_500, seed: 1 });
    let s: LocalRunSummary;
    try {
      s = await runLocalPipeline({ dataset, dataDir, endpoint: portal });
      assert.equal(s.fetch.rowsDelivered, 1_500);
      assert.deepEqual(s.sourceIdentity, { type: 'ckan', url: URL_OF });
      assert.deepEqual(s.schemaDrift.undeclared, []);
      assert.equal(s.transform?.status, 'succeeded');
      await assertCuratedExact(dataDir, dataset, await served(dataDir, dataset));
      // The requests went to the declared path, under the portal's /data prefix.
      assert.ok(portal.server.requests.some((r) => r.action === 'datastore_search' && r.params.resource_id === '6f1c2a4e-0b7d-4c3e-9a51-2d8e7f0c1b3a'));

      // Unchanged: resource_show and one datastore_search from the last row read, no row fetched.
      const before = portal.server.requests.length;
      s = await runLocalPipeline({ dataset, dataDir, endpoint: portal });
      assert.equal(s.fetch.rowsFetched, 0);
      assert.equal(s.transform?.rowsInserted ?? 0, 0);
      assert.equal(s.transform?.rowsUpdated ?? 0, 0);
      assert.ok(datastoreSearches(portal.server.requests.slice(before)) <= 2, JSON.stringify(portal.server.requests.slice(before)));
    } finally {
      await portal.close();
    }

    // A new start from what is remembered: the same table, still nothing to fetch.
    portal = await start({ dataset, dataDir, rows: 1_500, seed: 1 });
    try {
      s = await runLocalPipeline({ dataset, dataDir, endpoint: portal });
      assert.equal(s.fetch.rowsFetched, 0, 'a restarted portal serves the remembered table and last_modified');
    } finally {
      await portal.close();
    }

    // The publisher: 100 rows updated, 100 deleted (under the 10% mass-delete guard), 50 inserted.
    const records = await readLocalCkanRecords(dataDir, dataset);
    await changeLocalCkanResource(dataDir, dataset, (resource) => {
      for (const r of records.slice(0, 100)) resource.update('permit_id', r.permit_id, { fee: 1234.5, approved: true, applicant: 'changed, "quoted" — ü', units: null }, true);
      for (const r of records.slice(200, 300)) resource.delete('permit_id', r.permit_id, true);
      resource.insert(newPermits(900_000, 50));
    });
    portal = await start({ dataset, dataDir, rows: 1_500, seed: 1 });
    try {
      s = await runLocalPipeline({ dataset, dataDir, endpoint: portal });
    } finally {
      await portal.close();
    }
    assert.equal(s.fetch.rowsDelivered, 1_450, 'a changed resource is read whole');
    assert.equal(s.keys?.keys, 1_450);
    assert.equal(s.transform?.rowsDeleted, 100);
    assert.equal(s.transform?.rowsUpdated, 100);
    assert.equal(s.transform?.rowsInserted, 50);
    await assertCuratedExact(dataDir, dataset, await served(dataDir, dataset));

    // A larger --rows: the generator's next 100 rows inserted after the others.
    s = await runLocalPipeline({ dataset, dataDir, rows: 1_600 });
    assert.equal(s.transform?.rowsInserted, 100);
    assert.equal(s.transform?.rowsUpdated ?? 0, 0);
    assert.equal(s.transform?.rowsDeleted ?? 0, 0);
    assert.equal((await readLocalCkanRecords(dataDir, dataset)).length, 1_550);
    await assertCuratedExact(dataDir, dataset, await served(dataDir, dataset));
    s = await runLocalPipeline({ dataset, dataDir, rows: 1_600 });
    assert.equal(s.fetch.rowsFetched, 0, 'the grown table is remembered');
  });

  test('a limit the portal caps silently (rows_max below the page size) is read whole, numbers served as text included', async () => {
    const dataset = permits('permits-capped', { pageSize: 1_000 });
    const dataDir = path.join(root, 'permits-capped');
    // rows_max 300: every page the fetcher asks 1,000 rows of comes back with 300 and no word.
    const portal = await localCkanSource(undefined, { rowsMax: 300, textFields: ['fee', 'units'] })({ dataset, dataDir, rows: 2_000, seed: 3 });
    try {
      const s = await runLocalPipeline({ dataset, dataDir, endpoint: portal });
      assert.equal(s.fetch.rowsDelivered, 2_000);
      const searches = portal.server.requests.filter((r) => r.action === 'datastore_search');
      assert.ok(searches.every((r) => Number(r.params.limit) >= 1_000), 'the fetcher asked for its page size');
      assert.ok(searches.length >= 7, `2,000 rows in pages of 300 take at least 7 requests (${searches.length})`);
      await assertCuratedExact(dataDir, dataset, await served(dataDir, dataset));
      const first = (await readLocalCkanRecords(dataDir, dataset)).find((r) => r.fee !== null)!;
      assert.equal(typeof first.fee, 'string', 'the XLoader-style field serves its numbers as text');
    } finally {
      await portal.close();
    }
  });

  test('a re-upload that renumbers every _id (with a row gone and one changed) is exact, and only the real changes count', async () => {
    const dataset = permits('permits-reloaded');
    const dataDir = path.join(root, 'permits-reloaded');
    let s = await runLocalPipeline({ dataset, dataDir, rows: 1_000 });
    assert.equal(s.fetch.rowsDelivered, 1_000);
    const before = await readLocalCkanRecords(dataDir, dataset);
    await changeLocalCkanResource(dataDir, dataset, (resource) => {
      resource.delete('permit_id', before[0]!.permit_id, true);
      resource.update('permit_id', before[500]!.permit_id, { applicant: 'renamed' }, true);
      resource.reload();
    });
    const after = await readLocalCkanRecords(dataDir, dataset);
    assert.equal(after[0]!._id, 1, 'the table is numbered from 1 again');
    assert.equal(after[0]!.permit_id, before[1]!.permit_id, 'every _id moved');
    s = await runLocalPipeline({ dataset, dataDir, rows: 1_000 });
    assert.equal(s.fetch.rowsDelivered, 999);
    assert.equal(s.transform?.rowsDeleted, 1);
    assert.equal(s.transform?.rowsUpdated, 1);
    assert.equal(s.transform?.rowsInserted ?? 0, 0);
    await assertCuratedExact(dataDir, dataset, await served(dataDir, dataset));
  });

  test('the example definition (dataset add of the saved Ontario answer) runs exact, its timestamp key one day per row, and again with nothing to fetch', async () => {
    const dataset = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'examples', 'datasets', 'ontario-covid-vaccinations.json'));
    const dataDir = path.join(root, 'ontario');
    let s = await runLocalPipeline({ dataset, dataDir, rows: 400 });
    assert.equal(s.fetch.rowsDelivered, 400);
    assert.deepEqual(s.transform?.castFailures, {});
    const rows = await readLocalCkanRecords(dataDir, dataset);
    assert.deepEqual([rows[0]!.report_date, rows[399]!.report_date], ['2020-12-14T00:00:00', '2022-01-17T00:00:00']);
    await assertCuratedExact(dataDir, dataset, await served(dataDir, dataset));
    s = await runLocalPipeline({ dataset, dataDir, rows: 400 });
    assert.equal(s.fetch.rowsFetched, 0);
  });

  // CKAN serves a timestamptz field with its offset (`2023-08-07T10:29:08.651+00:00`); the adapter
  // (lambdas/fetcher/sources/ckan/ckan-values.ts rawValue) passes it on as is and the cast
  // contract refuses offsets other than Z, so the curated value is NULL (castFailures). Left to
  // the adapter's owner; this test turns green when rawValue writes timestamptz values in UTC with Z.
  test('a timestamptz field (fixed_timestamp) is exact', async () => {
    const dataset = permits('permits-instants', { instants: true });
    const dataDir = path.join(root, 'permits-instants');
    const s = await runLocalPipeline({ dataset, dataDir, rows: 200 });
    assert.equal(s.fetch.rowsDelivered, 200);
    await assertCuratedExact(dataDir, dataset, await served(dataDir, dataset));
  });
});

/** `count` new permits from key `from`, in the DataStore's served shape. */
function newPermits(from: number, count: number): CkanRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    permit_id: from + i,
    applicant: `new applicant ${i}`,
    fee: i + 0.25,
    units: i,
    approved: i % 2 === 0,
    issued_at: `2026-03-0${1 + (i % 9)}T10:00:0${i % 10}.125000`,
    details: { url: `https://example.org/permits/${from + i}`, tags: ['new', i] },
    site: { type: 'Point', coordinates: [-122.4 + i / 1000, 37.75] },
    parcel: { type: 'MultiPoint', coordinates: [[-122.41, 37.76], [-122.409, 37.761]] },
  }));
}
