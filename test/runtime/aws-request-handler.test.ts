/**
 * SDK clients built with boundedRequestHandler fail in bounded time against an endpoint that
 * accepts the connection and never answers (the SDK's default is to wait forever).
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { AthenaClient, GetQueryExecutionCommand } from '@aws-sdk/client-athena';
import { S3Client } from '@aws-sdk/client-s3';
import { boundedRequestHandler } from '../../runtime/aws-request-handler';
import { S3ObjectStore } from '../../runtime/object-store';

const sockets = new Set<Socket>();
const silent = createServer((s) => {
  sockets.add(s); // read the request, never answer
  s.on('close', () => sockets.delete(s));
});
let endpoint = '';
before(async () => {
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
});
after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => silent.close(r));
});

const common = () => ({ endpoint, region: 'us-east-1', maxAttempts: 1, credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, requestHandler: boundedRequestHandler(400) });

describe('AWS calls have a deadline', () => {
  test('S3 (the object store behind checkpoints, leases, transform state) gives up on a silent endpoint', { timeout: 15_000 }, async () => {
    const store = new S3ObjectStore(new S3Client({ ...common(), forcePathStyle: true }), 'bucket');
    const t0 = Date.now();
    await assert.rejects(store.get('checkpoints/x.json'), /timeout|timed out|aborted/i);
    assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
  });

  test('Athena (the transform task) gives up on a silent endpoint', { timeout: 15_000 }, async () => {
    const athena = new AthenaClient(common());
    const t0 = Date.now();
    await assert.rejects(athena.send(new GetQueryExecutionCommand({ QueryExecutionId: 'q' })), /timeout|timed out|aborted/i);
    assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
  });
});
