/**
 * Source types in the dataset definition (issue #19): `source` is a union keyed by `type`
 * (absent: Socrata, so existing definitions keep working), and each type reaches the fetcher
 * through the environment the CDK writes, as the adapter the registry opens, with the identity the
 * transform checks a key scan against.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { S3Client } from '@aws-sdk/client-s3';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { readFetcherConfig } from '../../lambdas/fetcher/config';
import { openSource } from '../../lambdas/fetcher/sources/registry';
import { FetcherFunction } from '../../lib/constructs/fetcher-function';
import { DatasetConfigError, parseDataset, sourceLabel, type DatasetConfig } from '../../runtime/dataset-config';
import { UsageError } from '../../runtime/pipeline-error';
import { fetcherEnvironment } from '../../runtime/fetcher-environment';
import { sameSource, showSource, sourceIdentity } from '../../runtime/source-identity';

const columns = [
  { name: 'id', type: 'text' },
  { name: 'at', type: 'fixed_timestamp' },
];
const socrata = { name: 'permits', source: { domain: 'data.example.org', datasetId: 'abcd-1234' }, primaryKey: 'id', eventTimeColumn: 'at', columns };
const file = { ...socrata, name: 'orders', source: { type: 'file', url: 'https://example.org/data/orders.csv', format: 'csv' } };
const events = {
  ...socrata,
  name: 'vehicle-events',
  source: { type: 's3', url: 's3://fleet-landing/events/', format: 'ndjson', key: ['on', 'data.id', 'at'] },
  columns: [...columns, { name: 'lat', type: 'number', path: 'data.location.lat' }],
  deletions: { detect: false },
};

/** The first line of the validation error for `value` (parse must fail). */
function refusal(value: unknown): string {
  try {
    parseDataset(value, 'inline');
  } catch (err) {
    assert.ok(err instanceof DatasetConfigError);
    return err.message;
  }
  assert.fail('the definition validated, but should not have');
}

describe('the source union', () => {
  test('a definition without type is Socrata and parses as it did; file and S3 definitions parse', () => {
    assert.deepEqual(parseDataset(socrata, 'inline').source, socrata.source);
    assert.equal(sourceLabel(parseDataset(socrata, 'inline').source), 'data.example.org/abcd-1234');
    assert.deepEqual(parseDataset(file, 'inline').source, file.source);
    const e = parseDataset(events, 'inline');
    assert.deepEqual(e.source, events.source);
    assert.equal(e.columns[2]!.path, 'data.location.lat');
  });

  test('each wrong shape is refused naming the field and what to do', () => {
    assert.match(refusal({ ...socrata, source: { type: 'ftp', url: 'x' } }), /source\.type: type must be socrata, file, s3/);
    // A file source's fields are its own: Socrata's are not accepted beside them, nor a missing format.
    assert.match(refusal({ ...file, source: { ...file.source, domain: 'data.example.org' } }), /source: Unrecognized key: "domain"/);
    assert.match(refusal({ ...file, source: { type: 'file', url: 'https://example.org/a.csv' } }), /source\.format/);
    assert.match(refusal({ ...file, source: { ...file.source, url: 'ftp://example.org/a.csv' } }), /source\.url: must be the http\(s\):\/\/ URL of one file/);
    assert.match(refusal({ ...events, source: { ...events.source, url: 's3:/fleet' } }), /source\.url: must be s3:\/\/<bucket>\/<prefix>\//);
    // Append-only objects have no key set to scan; the default (detect) is refused with the way out.
    assert.match(refusal({ ...events, deletions: {} }), /deletions\.detect: an append-only S3 source .* set deletions\.detect to false, or source\.mode to "snapshot"/);
    assert.doesNotThrow(() => parseDataset({ ...events, source: { ...events.source, mode: 'snapshot' }, deletions: {} }, 'inline'));
    assert.match(refusal({ ...events, columns: [{ name: 'id', type: 'integer' }, columns[1], events.columns[2]] }), /primaryKey: source\.key makes "id" from on, data\.id, at: declare it as a text column/);
    assert.match(refusal({ ...file, columns: [...columns, { name: 'lat', type: 'number', path: 'data.lat' }] }), /columns\.2\.path: column "lat": path is for S3 sources/);
    assert.match(refusal({ ...events, source: { ...events.source, key: [':id'] } }), /source\.key\.0: must not start with ":"/);
  });
});

describe('from the definition to the adapter', () => {
  const adapterFor = (value: unknown) => {
    const dataset: DatasetConfig = parseDataset(value, 'inline');
    const env = fetcherEnvironment({ dataset, deliveryStreamName: 'stream', stateLocation: 's3://raw', metricsNamespace: 'Test' });
    const config = readFetcherConfig(env);
    return { dataset, env, config, source: openSource(config, { s3: () => new S3Client({ region: 'us-east-1' }) }) };
  };

  test('each source type opens its adapter, whose identity is the one the transform expects of the definition', () => {
    for (const value of [socrata, file, events]) {
      const { dataset, source } = adapterFor(value);
      assert.ok(sameSource(source.identity, sourceIdentity(dataset.source)), `${dataset.name}: ${showSource(source.identity)} vs ${showSource(sourceIdentity(dataset.source))}`);
    }
    assert.equal(showSource(adapterFor(events).source.identity), 's3:bucket=fleet-landing,prefix=events/');
    assert.equal(showSource(adapterFor(file).source.identity), 'file:url=https://example.org/data/orders.csv');
  });

  test('a Socrata definition writes the variables it always did; the S3 one its mode, key and column paths', () => {
    const s = adapterFor(socrata).env;
    assert.deepEqual([s.SOURCE_DOMAIN, s.SOURCE_DATASET_ID, s.SOURCE_TYPE, s.SOURCE_URL], ['data.example.org', 'abcd-1234', undefined, undefined]);
    const { env, config } = adapterFor(events);
    assert.deepEqual([env.SOURCE_TYPE, env.SOURCE_URL, env.SOURCE_MODE, env.SOURCE_DOMAIN], ['s3', 's3://fleet-landing/events/', 'append', undefined]);
    assert.deepEqual(config.s3, { url: 's3://fleet-landing/events/', format: 'ndjson', compression: 'auto', mode: 'append', key: ['on', 'data.id', 'at'], columnPaths: { lat: 'data.location.lat' } });
    assert.equal((adapterFor(events).source as unknown as { keyColumn: string }).keyColumn, 'id', 'the composite key is written to the primary key column');
  });

  test('a bad S3 variable is named', () => {
    const { env } = adapterFor(events);
    assert.throws(() => readFetcherConfig({ ...env, SOURCE_MODE: 'stream' }), /SOURCE_MODE must be append or snapshot, not "stream"/);
    assert.throws(() => readFetcherConfig({ ...env, SOURCE_KEY: '"id"' }), /SOURCE_KEY="id" must be a JSON array of field paths/);
    assert.throws(() => readFetcherConfig({ ...env, SOURCE_URL: 'https://x/y' }), /SOURCE_URL="https:\/\/x\/y" must be an s3:\/\/bucket\/prefix\/ URL/);
  });
});

describe('deployed: the fetcher of an S3 source', () => {
  test('may list the declared prefix and read objects under it, and gets no app-token secret', () => {
    const stack = new Stack(new App(), 'Test');
    const rawBucket = new s3.Bucket(stack, 'Raw');
    const stream = firehose.DeliveryStream.fromDeliveryStreamName(stack, 'Stream', 'raw-stream');
    new FetcherFunction(stack, 'Fetcher', {
      dataset: parseDataset(events, 'inline'),
      functionName: 'fetcher',
      deliveryStream: stream,
      rawBucket,
      key: undefined,
      memoryMiB: 512,
      timeoutSeconds: 900,
      logRetention: logs.RetentionDays.ONE_MONTH,
      environmentName: 'test',
    });
    const statements = Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy')).flatMap(
      (p) => (p as { Properties: { PolicyDocument: { Statement: { Sid?: string; Action: unknown; Resource: unknown; Condition?: unknown }[] } } }).Properties.PolicyDocument.Statement,
    );
    const list = statements.find((s) => s.Sid === 'ListSourcePrefix');
    const read = statements.find((s) => s.Sid === 'ReadSourceObjects');
    assert.deepEqual(list?.Condition, { StringLike: { 's3:prefix': ['events/*'] } });
    assert.equal(list?.Action, 's3:ListBucket');
    assert.equal(read?.Action, 's3:GetObject');
    assert.match(JSON.stringify(read?.Resource), /:s3:::fleet-landing\/events\/\*/);
    assert.ok(!statements.some((s) => JSON.stringify(s.Action).includes('secretsmanager')), 'no app-token secret');
  });
});

describe('locally', () => {
  // Running them locally: test/local/file-sources-e2e.test.ts.
  test('npm run local refuses --source (a Socrata URL) for a file or S3 dataset before it starts anything', async () => {
    const { runLocalPipeline } = await import('../../local/pipeline');
    const dataDir = path.join(tmpdir(), `source-types-${process.pid}`);
    await assert.rejects(
      runLocalPipeline({ dataset: parseDataset(events, 'inline'), dataDir, source: 'https://data.example.org/resource/abcd-1234.json' }),
      (err: Error) => err instanceof UsageError && /^--source names a Socrata dataset; vehicle-events reads s3:\/\/fleet-landing\/events\//.test(err.message),
    );
    assert.equal(existsSync(dataDir), false, 'nothing was started or written');
  });
});

