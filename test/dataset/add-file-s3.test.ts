/**
 * `npm run dataset -- add s3://bucket/prefix/` against moto_server: nested NDJSON events become
 * columns by path, the key is composite when no single field identifies an event, the definition
 * is append-only with deletion detection off, and the fetcher's S3 adapter reads it back with the
 * key column filled; the sample is bounded; ambiguity is a question (exit 2, nothing written).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { readFetcherConfig } from '../../lambdas/fetcher/config';
import { openSource } from '../../lambdas/fetcher/sources/registry';
import type { SourceRow } from '../../lambdas/fetcher/sources/source-adapter';
import { fetcherEnvironment } from '../../runtime/fetcher-environment';
import { runAdd, writtenDefinition, type AddRun } from '../support/dataset-add';
import { motoAvailable, startMotoS3, type MotoS3 } from '../support/moto-s3';

const bucket = 'fleet-landing';

/**
 * Vehicle events shaped like the seed system's: an event kind, a time and a vehicle with a nested
 * location. No pair of fields identifies an event: V1 is registered and updated in the same second
 * at the same place (id+at, at+location, at+make repeat), updated twice at that place (event+id,
 * event+location), and registered in the same second as V2 (event+at). One event has no vehicle id.
 */
function vehicleEvents(): Record<string, unknown>[] {
  const T1 = '2025-07-01T08:00:00Z';
  const at = (i: number) => `2025-07-0${1 + Math.floor(i / 10)}T09:${String(i % 60).padStart(2, '0')}:00Z`;
  const vehicle = (id: string | undefined, make: string, lat: number, lon: number) => ({ ...(id ? { id } : {}), make, location: { lat, lon } });
  const events = [
    { event: 'register', at: T1, data: vehicle('V1', 'Volvo', 55.95, -3.19) },
    { event: 'update', at: T1, data: vehicle('V1', 'Volvo', 55.95, -3.19) },
    { event: 'update', at: '2025-07-01T08:05:00Z', data: vehicle('V1', 'Volvo', 55.95, -3.19) },
    { event: 'register', at: T1, data: vehicle('V2', 'Ford', 55.9, -3.2) },
  ];
  for (let i = 0; i < 25; i++) events.push({ event: ['register', 'update', 'deregister'][i % 3]!, at: at(i), data: vehicle(`V${10 + i}`, `Make${i}`, 55 + i / 100, -3 - i / 100) });
  events.push({ event: 'update', at: at(40), data: vehicle(undefined, 'Seat', 56.1, -3.5) });
  return events;
}

describe('add s3://bucket/prefix/', { skip: !motoAvailable && 'moto_server is not installed' }, () => {
  let moto: MotoS3;
  const put = (key: string, body: string | Buffer) => moto.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));

  before(async () => {
    moto = await startMotoS3(bucket);
    const events = vehicleEvents().map((e) => JSON.stringify(e));
    await put('events/2025-07-01.ndjson', `${events.slice(0, 15).join('\n')}\n`);
    await put('events/2025-07-02.ndjson.gz', gzipSync(`${events.slice(15).join('\n')}\n`));
    await put('events/archive/', '');
    const pings = Array.from({ length: 30 }, (_, i) => JSON.stringify({ device_id: `D${i}`, reading_id: i, at: `2025-01-01T00:00:${String(i).padStart(2, '0')}Z`, value: i % 3 }));
    await put('pings/2025-01-01.jsonl', `${pings.join('\n')}\n`);
  });
  after(() => moto?.stop());

  const add = (target: string, ...flags: string[]) => runAdd(target, flags, { s3: () => moto.s3 });
  const written = writtenDefinition;

  test('nested NDJSON events: leaf paths as columns, a composite key, append-only without deletion detection; the S3 adapter reads it with the key filled', async () => {
    const r = await add('s3://fleet-landing/events/');
    const d = written(r);
    assert.equal(d.name, 'events');
    assert.deepEqual(d.source, { type: 's3', url: 's3://fleet-landing/events/', format: 'ndjson', key: ['event', 'at', 'data.id'] });
    assert.equal(d.deletions.detect, false);
    assert.equal(d.primaryKey, 'row_key');
    assert.equal(d.eventTimeColumn, 'at');
    assert.deepEqual(
      d.columns.map((c) => [c.name, c.type, c.path]),
      [
        ['event', 'text', undefined],
        ['at', 'fixed_timestamp', undefined],
        ['data_id', 'text', 'data.id'],
        ['data_make', 'text', 'data.make'],
        ['data_location_lat', 'number', 'data.location.lat'],
        ['data_location_lon', 'number', 'data.location.lon'],
        ['row_key', 'text', undefined],
      ],
    );
    // Both objects were read (the second gzipped), the folder key skipped.
    assert.match(r.out, /sampled: 30 record\(s\), \d+ bytes of 2 object\(s\) in key order, first s3:\/\/fleet-landing\/events\/2025-07-01\.ndjson; the whole source/);
    assert.match(r.out, /key: \[event, at, data\.id\], a composite key: no single field is present and distinct in all 30 sampled records, these together are \(1 sampled record\(s\) lack a part: the loader quarantines and counts such rows\)/);
    assert.match(r.out, /mode: append, the S3 default .* pass --mode snapshot/);

    const env = fetcherEnvironment({ dataset: d, deliveryStreamName: 'stream', stateLocation: 's3://raw', metricsNamespace: 'Test' });
    const source = openSource(readFetcherConfig(env), { s3: () => moto.s3 });
    const rows: SourceRow[] = [];
    await source.streamPage({ after: null, limit: 1000, onRow: (row) => void rows.push(row) });
    assert.equal(rows.length, 30);
    assert.equal(rows[0]!.row_key, '["register","2025-07-01T08:00:00Z","V1"]');
    assert.equal(rows[0]!.data_location_lat, 55.95);
    assert.equal(rows[0]!.data_id, 'V1');
    const keys = rows.map((row) => row.row_key).filter((k) => k !== undefined);
    assert.equal(new Set(keys).size, 29, 'distinct keys for every event with all its parts; the one without a vehicle id has none (quarantined)');
  });

  test('snapshot mode and a key named by --key are written as given', async () => {
    const d = written(await add('s3://fleet-landing/events/', '--mode', 'snapshot', '--key', 'data.id,at,event', '--name', 'vehicle-events'));
    assert.equal(d.name, 'vehicle-events');
    assert.deepEqual(d.source, { type: 's3', url: 's3://fleet-landing/events/', format: 'ndjson', mode: 'snapshot', key: ['data.id', 'at', 'event'] });
    assert.equal(d.deletions.detect, true, 'a snapshot prefix has a key set to scan');
  });

  test('two identifier-like fields are a question: exit 2, nothing written; the answer writes a single-field key', async () => {
    const r = await add('s3://fleet-landing/pings/');
    assert.equal(r.code, 2);
    assert.deepEqual(readdirSync(r.dir), []);
    assert.match(r.err, /QUESTION primary key: 2 columns named like row identifiers are present and distinct in all 30 sampled records \(device_id, reading_id\): name the one that identifies a row with --primary-key <column>, or a composite key with --key <field,field,\.\.\.>/);
    const d = written(await add('s3://fleet-landing/pings/', '--primary-key', 'reading_id'));
    assert.equal(d.primaryKey, 'reading_id');
    assert.equal(d.source.type === 's3' ? d.source.key : 'not s3', undefined, 'a top-level field is its own key column');
  });

  test('the sample is bounded: the first object read by a Range GET, the record the cut ended dropped; too few records is a question', async () => {
    const ranges: (string | undefined)[] = [];
    moto.s3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'GetObjectCommand') ranges.push((args.input as { Range?: string }).Range);
        return next(args);
      },
      { step: 'initialize', name: 'recordRanges' },
    );
    let r: AddRun;
    try {
      r = await add('s3://fleet-landing/events/', '--sample-bytes', '700');
    } finally {
      moto.s3.middlewareStack.remove('recordRanges');
    }
    assert.deepEqual(ranges, ['bytes=0-700'], 'one GET, for the bound and one byte more');
    assert.equal(r.code, 2);
    assert.match(r.err, /sampled: \d record\(s\), 700 bytes of 1 object\(s\) in key order, first s3:\/\/fleet-landing\/events\/2025-07-01\.ndjson; the source is larger, cut at --sample-bytes 700 \(the record the cut ended was dropped\)/);
    assert.match(r.err, /QUESTION key: only \d record\(s\) of a larger source were sampled, too few to trust that values are distinct; raise --sample-bytes, or name the key with --key <field,field,\.\.\.> \(e\.g\. --key /);
  });

  test('through AWS_ENDPOINT_URL_S3 (the default client); a missing bucket is exit 2, an unreachable endpoint exit 1', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_ENDPOINT_URL_S3: moto.endpoint, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' });
    try {
      const run = (target: string) => runAdd(target, ['--dry-run']);
      assert.equal((await run('s3://fleet-landing/events/')).code, 0);
      const missing = await run('s3://no-such-bucket/events/');
      assert.equal(missing.code, 2);
      assert.match(missing.err, /^dataset: listing s3:\/\/no-such-bucket\/events\/: no such bucket \(check the s3:\/\/ URL\)\n$/);
      process.env.AWS_ENDPOINT_URL_S3 = 'http://127.0.0.1:9';
      const unreachable = await run('s3://fleet-landing/events/');
      assert.equal(unreachable.code, 1);
      assert.match(unreachable.err, /^dataset: listing s3:\/\/fleet-landing\/events\/: ECONNREFUSED \(is the S3 endpoint reachable\? AWS_ENDPOINT_URL_S3=http:\/\/127\.0\.0\.1:9\)\n$/);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});
