/**
 * A publisher deleting rows and fully replacing the dataset (every row a new `:updated_at`, and
 * with a truncate-and-insert replace a new `:id`), end to end through the embedded pipeline: one
 * ordinary run afterwards leaves curated with exactly the source's keys (the key scan finds the
 * deletions, recorded in curated.<table>__deletions), and an identical replace updates nothing.
 * Also: rows behind the checkpoint are repaired by key, a wrong source URL is refused, a key scan
 * that did not complete deletes nothing, and a mass delete is refused.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadDatasetFile, type DatasetConfig } from '../../runtime/dataset-config';
import { defaultCatalogPath, queryCatalog } from '../../containers/transform/src/catalog';
import { sourceFor } from '../../local/dataset-rows';
import { runLocalPipeline } from '../../local/pipeline';
import { startSocrataServer, type SocrataServer } from '../../local/socrata-server';
import { curatedIds, REPO } from './local-run-fixture';
import { suiteTempDir } from '../support/suite-fixtures';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const fire = loadDatasetFile(path.join(REPO, 'datasets', 'sf-fire-incidents.json'));
// One attempt per request: a fault injected on a request fails the run at once (no backoff waits).
const dataset: DatasetConfig = { ...fire, fetch: { ...fire.fetch, pageSize: 300, maxAttempts: 1 } };

let root: string;
suiteTempDir('local-publisher-', (dir) => (root = dir));

const sourceKeys = (s: SocrataServer): Set<string> => new Set(s.rows.map((r) => String(r.id)));
const deletionKeys = async (dataDir: string): Promise<string[]> =>
  (await queryCatalog(defaultCatalogPath(dataDir), 'SELECT key FROM curated.sf_fire_incidents__deletions ORDER BY key')).rows.map((r) => String(r.key));
const resourceRequests = (s: SocrataServer): number => s.requests.filter((r) => r.path.startsWith('/resource/')).length;

describe('publisher mutations end to end', () => {
  test('rows deleted, then a full replace with identical contents: curated == source keys, nothing updated', async () => {
    const socrata = await startSocrataServer(sourceFor(dataset, 1_500, 21));
    try {
      const dataDir = path.join(root, 'delete-replace');
      const first = await runLocalPipeline({ dataset, dataDir, socrata });
      assert.equal(first.transform?.rowsDeleted, 0);
      assert.equal(first.keys?.keys, 1_500, 'every run scans the source keys (scanEveryHours 0)');
      const { deleted } = socrata.mutate({ delete: 25 });
      socrata.mutate({ replace: { newIds: true } });
      const s = await runLocalPipeline({ dataset, dataDir, socrata });
      assert.equal(s.fetch.rowsFetched, 1_475, 'a full replace re-sends every row');
      const t = s.transform!;
      assert.equal(t.rowsUpdated, 0, 'identical contents update nothing');
      assert.equal(t.rowsUnchanged, 1_475);
      assert.equal(t.rowsDeleted, 25);
      assert.equal(t.missingKeys, 0);
      assert.equal(t.status, 'succeeded');
      const curated = await curatedIds(dataDir);
      assert.equal(curated.length, 1_475);
      assert.deepEqual(new Set(curated), sourceKeys(socrata));
      assert.ok(deleted.every((k) => !curated.includes(k)));
      assert.deepEqual(await deletionKeys(dataDir), [...deleted].sort(), 'each removal is recorded');
    } finally {
      await socrata.close();
    }
  });

  test('a replace with some rows changed updates exactly those', async () => {
    const socrata = await startSocrataServer(sourceFor(dataset, 1_000, 22));
    try {
      const dataDir = path.join(root, 'replace-changed');
      await runLocalPipeline({ dataset, dataDir, socrata });
      const r = socrata.mutate({ replace: { change: 12 } });
      const s = await runLocalPipeline({ dataset, dataDir, socrata });
      const t = s.transform!;
      assert.equal(t.rowsUpdated, r.replacedChanged.length);
      assert.equal(t.rowsDeleted, 0);
      assert.equal((await curatedIds(dataDir)).length, 1_000);
    } finally {
      await socrata.close();
    }
  });

  test('rows the source gained behind the checkpoint are found by the key scan and repaired in the same run', async () => {
    const socrata = await startSocrataServer(sourceFor(dataset, 1_000, 23));
    try {
      const dataDir = path.join(root, 'repair');
      await runLocalPipeline({ dataset, dataDir, socrata });
      // Two rows with an :updated_at far before the checkpoint: an incremental fetch never sees them.
      const template = Object.fromEntries(Object.entries(socrata.rows[0]!).filter(([k]) => !k.startsWith(':')));
      socrata.mutate({ addRows: [{ ...template, id: 'behind-1' }, { ...template, id: 'behind-2' }], at: new Date('2001-01-01T00:00:00Z') });
      const s = await runLocalPipeline({ dataset, dataDir, socrata });
      assert.equal(s.fetch.rowsFetched, 0, 'nothing after the checkpoint');
      assert.deepEqual([s.repair?.keysRequested, s.repair?.rowsDelivered], [2, 2]);
      assert.equal(s.transform?.missingKeys, 0, 'the second transform of the run merged them');
      assert.equal(s.transform?.status, 'succeeded');
      assert.deepEqual(new Set(await curatedIds(dataDir)), sourceKeys(socrata));
    } finally {
      await socrata.close();
    }
  });

  test('a wrong source URL is refused by the source identity guard: nothing fetched, nothing deleted', async () => {
    const socrata = await startSocrataServer(sourceFor(dataset, 600, 24));
    const other = await startSocrataServer({ ...sourceFor(dataset, 50, 25), datasetId: 'abcd-1234' });
    try {
      const dataDir = path.join(root, 'wrong-source');
      await runLocalPipeline({ dataset, dataDir, socrata });
      await assert.rejects(runLocalPipeline({ dataset, dataDir, socrata: other }), /was written reading data\.sfgov\.org\/wr8u-xric, but the dataset now reads data\.sfgov\.org\/abcd-1234/);
      assert.equal((await curatedIds(dataDir)).length, 600);
    } finally {
      await other.close();
      await socrata.close();
    }
  });

  test('a key scan that did not complete deletes nothing; the next complete one does', async () => {
    const socrata = await startSocrataServer(sourceFor(dataset, 800, 26));
    try {
      const dataDir = path.join(root, 'partial-scan');
      await runLocalPipeline({ dataset, dataDir, socrata });
      const { deleted } = socrata.mutate({ delete: 10 });
      // This run: the pipeline's count request, the fetcher's (few rows: one stream), one empty
      // row page, then the key scan's first page fails.
      const n = resourceRequests(socrata);
      socrata.setFaults([{ kind: 'status', status: 503, requests: [n + 4] }]);
      await assert.rejects(runLocalPipeline({ dataset, dataDir, socrata }), /HTTP 503.*\$select=id, :id/);
      socrata.setFaults([]);
      assert.equal((await curatedIds(dataDir)).length, 800, 'no deletion from an incomplete scan');
      const s = await runLocalPipeline({ dataset, dataDir, socrata });
      assert.equal(s.transform?.rowsDeleted, 10);
      assert.deepEqual(new Set(await curatedIds(dataDir)), sourceKeys(socrata));
      assert.deepEqual(await deletionKeys(dataDir), [...deleted].sort());
    } finally {
      await socrata.close();
    }
  });

  test('a mass delete is refused: nothing deleted, the run fails naming the share; raised for one run it goes through', async () => {
    const socrata = await startSocrataServer(sourceFor(dataset, 500, 27));
    try {
      const dataDir = path.join(root, 'mass-delete');
      await runLocalPipeline({ dataset, dataDir, socrata });
      socrata.mutate({ delete: 100 });
      await assert.rejects(runLocalPipeline({ dataset, dataDir, socrata }), (err: Error) => {
        assert.equal(err.name, 'MassDeleteRefusedError');
        assert.match(err.message, /would delete 100 of 500 curated rows \(20\.0%\), above deletions\.maxDeleteShare 0\.1; nothing was deleted/);
        return true;
      });
      assert.equal((await curatedIds(dataDir)).length, 500);
      const raised: DatasetConfig = { ...dataset, deletions: { ...dataset.deletions, maxDeleteShare: 0.25 } };
      const s = await runLocalPipeline({ dataset: raised, dataDir, socrata });
      assert.equal(s.transform?.rowsDeleted, 100);
      assert.equal((await curatedIds(dataDir)).length, 400);
    } finally {
      await socrata.close();
    }
  });
});
