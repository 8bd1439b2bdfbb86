import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { socrataSource,
  DatasetConfigError,
  curatedColumnNames,
  loadDatasetDir,
  loadDatasetFile,
  parseDataset,
  tableName,
} from '../../runtime/dataset-config';
import { columns, datasetInput } from '../support/dataset-builder';

const datasetsDir = path.join(import.meta.dirname, '..', '..', 'datasets');

const minimal = datasetInput({ columns: columns({ id: 'text', ts: 'floating_timestamp', location: 'point' }) });

describe('dataset definitions', () => {
  test('the shipped SF Fire Incidents definition declares all 66 real columns', () => {
    const [fire] = loadDatasetDir(datasetsDir).filter((d) => d.name === 'sf-fire-incidents');
    assert.ok(fire);
    assert.equal(fire.columns.length, 66);
    assert.equal(fire.primaryKey, 'id');
    assert.equal(fire.eventTimeColumn, 'incident_date');
    assert.equal(socrataSource(fire, 'this test').datasetId, 'wr8u-xric');
    const types = Object.fromEntries(fire.columns.map((c) => [c.name, c.type]));
    assert.equal(types.point, 'point');
    assert.equal(types.alarm_dttm, 'floating_timestamp');
    assert.equal(types.estimated_property_loss, 'number');
    assert.equal(types.automatic_extinguishing_sytem_perfomance, 'text'); // the real misspelling
    assert.equal(tableName(fire), 'sf_fire_incidents');
  });

  test('defaults are applied', () => {
    const d = parseDataset(minimal, 'inline');
    assert.equal(d.changeCursor, ':updated_at');
    // Sized for latency (streamed pages): above SODA 2.0's 50,000 cap, which the client falls back to.
    assert.equal(d.fetch.pageSize, 200_000);
    assert.equal(d.delivery.bufferingIntervalSeconds, 60);
    assert.deepEqual(d.dataTests, []);
    assert.deepEqual(d.deletions, { detect: true, scanEveryHours: 0, maxDeleteShare: 0.1 });
  });

  test('curated columns expand points and append ingestion metadata, then the content hash', () => {
    const d = parseDataset(minimal, 'inline');
    assert.deepEqual(curatedColumnNames(d), [
      'id', 'ts', 'location', 'location_longitude', 'location_latitude',
      '_ingested_at', '_run_id', '_source_updated_at', '_source_id', '_content_hash',
    ]);
  });

  test('errors name the source and every bad field', () => {
    const bad = { ...minimal, primaryKey: 'nope', eventTimeColumn: 'id', dataTests: [{ kind: 'not_null', column: 'ghost' }] };
    assert.throws(
      () => parseDataset(bad, 'datasets/tiny-set.json'),
      (err: Error) =>
        err instanceof DatasetConfigError &&
        err.message.includes('datasets/tiny-set.json') &&
        err.message.includes('primaryKey: "nope" is not one of the declared columns') &&
        err.message.includes('eventTimeColumn: "id" must be a floating_timestamp or fixed_timestamp column, not text') &&
        err.message.includes('dataTests.0.column: "ghost"'),
    );
    assert.throws(() => parseDataset({ ...minimal, fetch: { pageSize: 0 } }, 'x.json'), /fetch\.pageSize/);
    assert.throws(() => parseDataset({ ...minimal, surprise: true }, 'x.json'), /surprise/);
    assert.throws(() => parseDataset({ ...minimal, deletions: { maxDeleteShare: 1.5 } }, 'x.json'), /x\.json.*deletions\.maxDeleteShare/s);
    assert.throws(() => parseDataset({ ...minimal, deletions: { scanEveryHours: -1 } }, 'x.json'), /deletions\.scanEveryHours/);
  });

  test('a file must be JSON and its name must match the dataset name', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'datasets-'));
    await writeFile(path.join(dir, 'broken.json'), '{ not json');
    assert.throws(() => loadDatasetFile(path.join(dir, 'broken.json')), /broken\.json is not valid JSON/);
    await writeFile(path.join(dir, 'other-name.json'), JSON.stringify(minimal));
    assert.throws(() => loadDatasetFile(path.join(dir, 'other-name.json')), /must match the file name "other-name"/);
  });
});
