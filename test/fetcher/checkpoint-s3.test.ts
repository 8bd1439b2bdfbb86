/** The checkpoint store on a real S3-protocol server (moto_server), which enforces conditional writes. */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { S3ObjectStore } from '../../runtime/object-store';
import { CheckpointConflictError, CheckpointStore, type Checkpoint } from '../../lambdas/fetcher/checkpoint-store';

const motoAvailable = spawnSync('moto_server', ['--help'], { stdio: 'ignore' }).status === 0;
if (!motoAvailable) console.warn('SKIPPED: moto_server is not installed; the S3 checkpoint store test did not run');

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

describe('checkpoint store on S3 (moto_server)', { skip: motoAvailable ? false : 'moto_server not installed' }, () => {
  let moto: ChildProcess | undefined;
  let s3: S3Client;
  before(async () => {
    const port = await freePort();
    moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    s3 = new S3Client({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await s3.send(new CreateBucketCommand({ Bucket: 'raw-bucket' }));
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`moto_server did not start on port ${port}`, { cause: err });
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  });
  after(() => {
    moto?.kill('SIGTERM');
  });

  test('conditional writes: create once, advance with the etag, reject a stale etag', async () => {
    const store = new CheckpointStore(new S3ObjectStore(s3, 'raw-bucket'), 'sf-fire-incidents');
    assert.equal(await store.read(), undefined);
    const cp: Checkpoint = { dataset: 'sf-fire-incidents', updatedAt: '2024-01-02T03:04:05.000Z', id: 'row-aaaa-bbbb', runId: 'r1', writtenAt: '2025-01-01T00:00:00.000Z' };
    const e1 = await store.write(cp, undefined);
    await assert.rejects(store.write({ ...cp, runId: 'other' }, undefined), CheckpointConflictError, 'a second first-write loses');
    const read = await store.read();
    assert.deepEqual(read!.checkpoint, cp);
    assert.equal(read!.etag, e1);
    const e2 = await store.write({ ...cp, id: 'row-cccc-dddd' }, e1);
    assert.notEqual(e2, e1);
    await assert.rejects(store.write({ ...cp, id: 'row-zzzz-zzzz', runId: 'stale' }, e1), CheckpointConflictError);
    assert.equal((await store.read())!.checkpoint.id, 'row-cccc-dddd');
    assert.equal(store.key, 'checkpoints/sf-fire-incidents.json');
  });
});
