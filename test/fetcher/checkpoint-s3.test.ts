/** The checkpoint store on a real S3-protocol server (moto_server), which enforces conditional writes. */
import { keysetCheckpoint } from '../support/checkpoint';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { S3ObjectStore } from '../../runtime/object-store';
import { CheckpointConflictError, CheckpointStore, type Checkpoint } from '../../lambdas/fetcher/checkpoint-store';
import { motoAvailable, startMotoS3, type MotoS3 } from '../support/moto-s3';

if (!motoAvailable) console.warn('SKIPPED: moto_server is not installed; the S3 checkpoint store test did not run');

describe('checkpoint store on S3 (moto_server)', { skip: motoAvailable ? false : 'moto_server not installed' }, () => {
  let moto: MotoS3 | undefined;
  let s3: S3Client;
  before(async () => {
    moto = await startMotoS3('raw-bucket');
    s3 = moto.s3;
  });
  after(() => moto?.stop());

  test('conditional writes: create once, advance with the etag, reject a stale etag', async () => {
    const store = new CheckpointStore(new S3ObjectStore(s3, 'raw-bucket'), 'sf-fire-incidents');
    assert.equal(await store.read(), undefined);
    const cp: Checkpoint = { dataset: 'sf-fire-incidents', format: 'socrata-keyset/1', position: { updatedAt: '2024-01-02T03:04:05.000Z', id: 'row-aaaa-bbbb' }, runId: 'r1', writtenAt: '2025-01-01T00:00:00.000Z' };
    const e1 = await store.write(cp, undefined);
    await assert.rejects(store.write({ ...cp, runId: 'other' }, undefined), CheckpointConflictError, 'a second first-write loses');
    const read = await store.read();
    assert.deepEqual(read!.checkpoint, cp);
    assert.equal(read!.etag, e1);
    const e2 = await store.write({ ...cp, position: { updatedAt: '2024-01-02T03:04:05.000Z', id: 'row-cccc-dddd' } }, e1);
    assert.notEqual(e2, e1);
    await assert.rejects(store.write({ ...cp, position: { updatedAt: '2024-01-02T03:04:05.000Z', id: 'row-zzzz-zzzz' }, runId: 'stale' }, e1), CheckpointConflictError);
    assert.equal(keysetCheckpoint(await store.read()).id, 'row-cccc-dddd');
    assert.equal(store.key, 'checkpoints/sf-fire-incidents.json');
  });
});
