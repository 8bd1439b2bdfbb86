/**
 * The example datasets (examples/datasets/, issue #19 item 6) run end to end with `npm run local`
 * as a person would run them: their own generated files and objects, the deployed adapters, the
 * transform, their marts and data tests. Exact against the records the source served, through a
 * publisher's next snapshot (updates, deletions, inserts) or new days of events.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { localFileSource, writeLocalFileVersion } from '../../local/local-file-source';
import { runLocalPipeline } from '../../local/pipeline';
import { keylessEventCount } from '../../local/seed-rows/vehicle-events';
import { mutateRecords, seedRecords, type GeneratedRecord } from '../../local/seed-rows';
import { motoAvailable } from '../support/moto-s3';
import { suiteTempDir } from '../support/suite-fixtures';
import { assertCuratedExact, sourceRowsByKey } from '../support/curated-exact';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

let root: string;
suiteTempDir('examples-e2e-', (dir) => (root = dir));

const example = (name: string) => loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'examples', 'datasets', `${name}.json`));
const plain = (rs: Iterable<GeneratedRecord>) => [...rs].map((r) => r.record);

describe('example file datasets: snapshot semantics end to end', () => {
  for (const name of ['store-orders', 'road-safety-accidents']) {
    test(`${name}: exact, then nothing new, then a publisher's next file (updates, deletions, inserts), marts and tests green`, async () => {
      const dataset = example(name);
      const dataDir = path.join(root, name);
      const rows = 1_000;
      const first = [...seedRecords(dataset, rows, 1)!];
      let s = await runLocalPipeline({ dataset, dataDir, rows });
      assert.equal(s.fetch.rowsDelivered, rows);
      assert.deepEqual(s.schemaDrift.undeclared, []);
      assert.equal(s.transform?.status, 'succeeded');
      await assertCuratedExact(dataDir, dataset, sourceRowsByKey(dataset, plain(first)));

      s = await runLocalPipeline({ dataset, dataDir, rows });
      assert.equal(s.fetch.rowsFetched, 0, 'the same file is not read again');

      const next = mutateRecords(dataset, first, 1);
      await writeLocalFileVersion(dataDir, dataset, { records: plain(next.records) });
      const served = await localFileSource(seedRecords)({ dataset, dataDir, rows, seed: 1 });
      try {
        s = await runLocalPipeline({ dataset, dataDir, endpoint: served });
      } finally {
        await served.close();
      }
      assert.equal(s.transform?.rowsDeleted, next.deleted.length);
      assert.equal(s.transform?.rowsInserted, next.inserted.length);
      assert.equal(s.transform?.rowsUpdated, next.updated.length);
      assert.equal(s.transform?.status, 'succeeded');
      await assertCuratedExact(dataDir, dataset, sourceRowsByKey(dataset, plain(next.records)));
    });
  }
});

describe('example S3 dataset: append-only events end to end', { skip: motoAvailable ? false : 'moto_server is not installed (pip install "moto[server]")' }, () => {
  test('vehicle-events: keyless events quarantined and counted, new days read alone, nothing new reads nothing', async () => {
    const dataset = example('vehicle-events');
    const dataDir = path.join(root, 'vehicle-events');
    let s = await runLocalPipeline({ dataset, dataDir, rows: 1_000 });
    assert.equal(s.fetch.rowsQuarantined, keylessEventCount(1_000));
    assert.equal(s.fetch.rowsDelivered, 1_000 - keylessEventCount(1_000));
    assert.deepEqual(s.schemaDrift.undeclared, [], 'the nested parent of the declared paths is not drift');
    assert.equal(s.transform?.status, 'succeeded');
    await assertCuratedExact(dataDir, dataset, sourceRowsByKey(dataset, plain(seedRecords(dataset, 1_000, 1)!)));

    s = await runLocalPipeline({ dataset, dataDir, rows: 1_000 });
    assert.equal(s.fetch.rowsFetched, 0);

    // Five more days: only their objects are read.
    s = await runLocalPipeline({ dataset, dataDir, rows: 1_500 });
    assert.equal(s.fetch.rowsFetched, 500);
    assert.equal(s.fetch.rowsQuarantined, keylessEventCount(1_500) - keylessEventCount(1_000));
    await assertCuratedExact(dataDir, dataset, sourceRowsByKey(dataset, plain(seedRecords(dataset, 1_500, 1)!)));
  });
});
