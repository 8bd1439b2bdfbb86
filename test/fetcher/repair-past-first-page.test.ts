/**
 * The repair of a source read whole (sources/rows-by-key.ts) past its first page: readRowsByKey
 * reads a file in pages of at least 10,000 records, and a missing key may sit anywhere in it. The
 * keys repaired here are found only after record 10,000, so a repair that stopped after one page
 * would deliver nothing and call the chunk done. Through the real repair phase, for a file over
 * HTTP (a local server) and a snapshot S3 prefix (moto_server).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { encodeKeyList } from '../../runtime/key-list';
import { LocalObjectStore } from '../../runtime/object-store';
import { missingKeysKey } from '../../runtime/storage-layout';
import { CheckpointStore } from '../../lambdas/fetcher/checkpoint-store';
import { runRepair } from '../../lambdas/fetcher/repair';
import { HttpFileSource } from '../../lambdas/fetcher/sources/files/http-file-source';
import { S3FilesSource } from '../../lambdas/fetcher/sources/s3/s3-files-source';
import { motoAvailable, startMotoS3, type MotoS3 } from '../support/moto-s3';
import { acceptingFirehose, recordingRetry, sortedIds, wholeSourceDeps } from './harness';
import { rowFetchSettings } from '../support/fetch-settings';

/** NDJSON records `id-from` .. `id-to`, each with its number as data. */
const records = (prefix: string, from: number, to: number): string =>
  Array.from({ length: to - from + 1 }, (_, i) => `${JSON.stringify({ id: `${prefix}-${from + i}`, data: { n: from + i } })}\n`).join('');

/** A store holding `keys` as the run's missing keys, and a checkpoint store beside it. */
async function missing(dataset: string, runId: string, keys: string[]) {
  const store = new LocalObjectStore(mkdtempSync(path.join(tmpdir(), 'repair-pages-')));
  await store.put(missingKeysKey({ name: dataset }, runId), gzipSync(encodeKeyList(keys)));
  return { store, checkpoints: new CheckpointStore(store, dataset) };
}

describe('the repair of a file over HTTP reads past its first 10,000 records', () => {
  let server: Server;
  let url = '';
  let gets = 0;
  // 25,000 records: the keys sought are in the second and third page of readRowsByKey.
  const body = Buffer.from(records('N', 1, 25_000));
  before(async () => {
    server = createServer((_req, res) => {
      gets++;
      res.writeHead(200, { ETag: '"big"', 'Content-Length': String(body.length) }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders.ndjson`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('keys at records 10,001, 17,500 and 25,000 are delivered, one unknown key is not; the file is requested once', async () => {
    const settings = rowFetchSettings({ datasetName: 'orders', primaryKey: 'id', pageSize: 50 });
    const { store, checkpoints } = await missing('orders', 'r1', ['N-10001', 'N-17500', 'N-25000', 'N-99999']);
    const source = new HttpFileSource({ datasetName: 'orders', url, format: 'ndjson', primaryKey: 'id', timeoutMs: 5_000, retry: recordingRetry(3) });
    const repaired = acceptingFirehose();
    gets = 0;
    const out = await runRepair({ runId: 'r1' }, settings, wholeSourceDeps(source, store, checkpoints));
    assert.equal(out.done, true);
    assert.deepEqual(sortedIds(repaired.rows, 'id'), ['N-10001', 'N-17500', 'N-25000']);
    assert.deepEqual(repaired.rows.find((r) => r.id === 'N-17500')!.data, { n: 17_500 });
    assert.deepEqual([out.stats.keysRequested, out.stats.rowsDelivered], [4, 3]);
    // The pages after the first go on in the open read: the file is not fetched again per page.
    assert.equal(gets, 1);
  });
});

describe('the repair of a snapshot S3 prefix reads past its first 10,000 records', { skip: !motoAvailable && 'moto_server is not installed' }, () => {
  let moto: MotoS3;
  const bucket = 'repair-pages';
  before(async () => {
    moto = await startMotoS3('repair-pages-setup');
    await moto.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    // 12,000 records, then 3,000 gzipped: record 10,000 falls inside the first object.
    await moto.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'landing/part-1.ndjson', Body: records('E', 1, 12_000) }));
    await moto.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'landing/part-2.ndjson.gz', Body: gzipSync(records('E', 12_001, 15_000)) }));
  });
  after(() => moto?.stop());

  test('keys past record 10,000, in the first object and in the next, are delivered; one unknown key is not', async () => {
    const settings = rowFetchSettings({ datasetName: 'events', primaryKey: 'id', pageSize: 50 });
    const { store, checkpoints } = await missing('events', 'r1', ['E-10001', 'E-11999', 'E-14000', 'E-99999']);
    const source = new S3FilesSource({ datasetName: 'events', url: `s3://${bucket}/landing/`, format: 'ndjson', primaryKey: 'id', mode: 'snapshot', s3: moto.s3 });
    const repaired = acceptingFirehose();
    const out = await runRepair({ runId: 'r1' }, settings, wholeSourceDeps(source, store, checkpoints));
    assert.equal(out.done, true);
    assert.deepEqual(sortedIds(repaired.rows, 'id'), ['E-10001', 'E-11999', 'E-14000']);
    assert.deepEqual(repaired.rows.find((r) => r.id === 'E-14000')!.data, { n: 14_000 });
    assert.deepEqual([out.stats.keysRequested, out.stats.rowsDelivered], [4, 3]);
  });
});
