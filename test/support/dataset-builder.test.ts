/** The test-data builders other tests rely on: what they build is valid, and overrides keep the rest. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { socrataSource, DatasetConfigError, parseDataset } from '../../runtime/dataset-config';
import { columns, datasetInput, fireIncidents, permitsInput, soda3Input, testDataset } from './dataset-builder';
import { keysetOrder, sourceRows, tenPerSecond } from './source-rows';

describe('dataset builder', () => {
  test('the default is the minimal valid definition, with the defaults applied', () => {
    const d = testDataset();
    assert.equal(d.name, 'tiny-set');
    assert.deepEqual(d.columns, [{ name: 'id', type: 'text' }, { name: 'ts', type: 'floating_timestamp' }]);
    assert.equal(d.fetch.pageSize, 200_000, 'parsed: defaults applied');
  });

  test('an invalid override is refused by parseDataset, naming the field', () => {
    assert.throws(() => testDataset({ primaryKey: 'missing' }), (err: unknown) => err instanceof DatasetConfigError && /primaryKey: "missing" is not one of the declared columns/.test(err.message));
    assert.throws(() => testDataset({ columns: columns({ id: 'text', ts: 'text' }) }), /eventTimeColumn: "ts" must be a floating_timestamp/);
  });

  test('a nested override changes its fields and keeps the others', () => {
    const d = testDataset({ source: { datasetId: 'wxyz-0001' }, fetch: { pageSize: 7 } });
    assert.deepEqual(d.source, { domain: 'data.example.org', datasetId: 'wxyz-0001' });
    assert.equal(d.fetch.pageSize, 7);
    assert.equal(d.fetch.maxAttempts, 6);
    const fire = fireIncidents({ fetch: { pageSize: 60 } });
    assert.equal(fire.columns.length, 66);
    assert.equal(fire.fetch.pageSize, 60);
    assert.equal(socrataSource(fire, 'this test').datasetId, 'wr8u-xric', 'the shipped source kept');
  });

  test('the shapes: city permits and SODA 3 are valid bodies', () => {
    const permits = parseDataset(permitsInput(), 'city-permits.json');
    assert.equal(permits.primaryKey, 'permit_number');
    assert.deepEqual(permits.source, { domain: 'data.example.org', datasetId: 'perm-1234' });
    const soda3 = parseDataset(soda3Input({ source: { datasetId: 'efgh-5678' } }), 'soda3.json');
    assert.deepEqual(soda3.source, { domain: 'data.example.org', datasetId: 'efgh-5678', api: 'soda3', appTokenSecretName: 'soda3/token' });
    assert.equal(datasetInput().fetch, undefined, 'the body leaves defaults to the parser');
  });
});

describe('source rows', () => {
  test('n rows with system fields first, ten a second, and the given columns', () => {
    const rows = sourceRows(25, (i) => ({ id: `K${i}` }), { createdAt: '2024-01-01T00:00:00.000Z' });
    assert.equal(rows.length, 25);
    assert.deepEqual(Object.keys(rows[0]!), [':id', ':created_at', ':updated_at', 'id']);
    assert.deepEqual(rows[12], { ':id': 'row-1012-aaaa', ':created_at': '2024-01-01T00:00:00.000Z', ':updated_at': '2024-01-01T00:00:01.000Z', id: 'K12' });
    assert.equal(tenPerSecond('2024-05-01T00:00:00.000Z')(599), '2024-05-01T00:00:59.000Z');
    assert.equal(tenPerSecond('2024-05-01T00:00:00.000Z')(600), '2024-05-01T00:01:00.000Z');
  });

  test('keyset order: by :updated_at, then :id', () => {
    const rows = [
      { ':updated_at': '2024-01-02', ':id': 'a' },
      { ':updated_at': '2024-01-01', ':id': 'c' },
      { ':updated_at': '2024-01-01', ':id': 'b' },
    ];
    assert.deepEqual(keysetOrder(rows).map((r) => r[':id']), ['b', 'c', 'a']);
    assert.deepEqual(rows.map((r) => r[':id']), ['a', 'c', 'b'], 'the input is left as it was');
  });
});
