/** columns[].field: a file or S3 column read from a source field of another name (a CSV header such as "Order ID"). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDataset, declaredSourceFields, sourceFieldNames } from '../../runtime/dataset-config';
import { fetcherEnvironment } from '../../runtime/fetcher-environment';
import { readFetcherConfig } from '../../lambdas/fetcher/config';
import { renameFields } from '../../lambdas/fetcher/sources/column-fields';

const file = {
  name: 'orders',
  description: 'orders',
  source: { type: 'file', url: 'https://example.org/orders.csv', format: 'csv' },
  primaryKey: 'order_id',
  eventTimeColumn: 'ordered_at',
  columns: [
    { name: 'order_id', type: 'text', field: 'Order ID' },
    { name: 'ship_mode', type: 'text', field: 'Ship Mode' },
    { name: 'sales', type: 'number' },
    { name: 'ordered_at', type: 'floating_timestamp' },
  ],
};

const refusal = (value: unknown): string => {
  try {
    parseDataset(value, 'test');
  } catch (err) {
    return (err as Error).message;
  }
  return 'accepted';
};

test('field is accepted for file and S3 sources, and refused where it cannot be read', () => {
  const d = parseDataset(file, 'test');
  assert.deepEqual(sourceFieldNames(d), ['Order ID', 'Ship Mode', 'sales', 'ordered_at']);
  assert.deepEqual(declaredSourceFields(d).sort(), ['Order ID', 'Ship Mode', 'order_id', 'ordered_at', 'sales', 'ship_mode'].sort());
  const socrata = { ...file, source: { domain: 'data.example.org', datasetId: 'abcd-1234' } };
  assert.match(refusal(socrata), /columns\.0\.field: column "order_id": field is for file and S3 sources/);
  const s3 = { ...file, source: { type: 's3', url: 's3://bucket/orders/', format: 'csv', mode: 'snapshot' } };
  assert.equal(refusal(s3), 'accepted');
  assert.match(refusal({ ...s3, columns: [{ ...file.columns[0], path: 'a.b' }, ...file.columns.slice(1)] }), /give field .* or path .*, not both/);
  assert.match(refusal({ ...file, columns: [...file.columns, { name: 'mode2', type: 'text', field: 'Ship Mode' }] }), /columns "ship_mode" and "mode2" both read field "Ship Mode"/);
});

test('the fields reach the fetcher (COLUMN_FIELDS) and its config', () => {
  const env = fetcherEnvironment({ dataset: parseDataset(file, 'test'), deliveryStreamName: 's', stateLocation: '/tmp/x', metricsNamespace: 'n' });
  assert.equal(env.COLUMN_FIELDS, JSON.stringify({ order_id: 'Order ID', ship_mode: 'Ship Mode' }));
  const config = readFetcherConfig({ ...env, PAGE_SIZE: '1000', LOOKBACK_MINUTES: '0', REQUEST_TIMEOUT_SECONDS: '30', MAX_ATTEMPTS: '3' });
  assert.deepEqual(config.file?.columnFields, { order_id: 'Order ID', ship_mode: 'Ship Mode' });
  assert.throws(() => readFetcherConfig({ ...env, COLUMN_FIELDS: '["Order ID"]' }), /COLUMN_FIELDS=\["Order ID"\] must be a JSON object of column name to source field name/);
});

test('renameFields moves each field to its column, reading the record as it came', () => {
  assert.deepEqual(renameFields({ 'Order ID': 'A-1', Sales: '3', 'Ship Mode': undefined }, [['order_id', 'Order ID'], ['ship_mode', 'Ship Mode']]), { order_id: 'A-1', Sales: '3' });
  // Two columns swapping names: neither value is lost.
  assert.deepEqual(renameFields({ a: 1, b: 2 }, [['a', 'b'], ['b', 'a']]), { a: 2, b: 1 });
});
