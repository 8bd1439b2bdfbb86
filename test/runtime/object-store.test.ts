import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { LocalObjectStore, PreconditionFailedError, openObjectStore, S3ObjectStore } from '../../runtime/object-store';

describe('LocalObjectStore', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'object-store-'));
  after(() => rm(root, { recursive: true, force: true }));
  const store = new LocalObjectStore(root);

  test('round-trips bytes and reports a missing key as undefined', async () => {
    assert.equal(await store.get('a/missing.json'), undefined);
    const { etag } = await store.put('a/b/c.json', '{"x":1}');
    const got = await store.get('a/b/c.json');
    assert.equal(got?.body.toString(), '{"x":1}');
    assert.equal(got?.etag, etag);
  });

  test('If-None-Match: * refuses to overwrite', async () => {
    await store.put('cas/new.json', 'first', { ifNoneMatch: '*' });
    await assert.rejects(store.put('cas/new.json', 'second', { ifNoneMatch: '*' }), PreconditionFailedError);
    assert.equal((await store.get('cas/new.json'))?.body.toString(), 'first');
  });

  test('If-Match writes only over the version that was read', async () => {
    const v1 = await store.put('cas/doc.json', 'v1');
    const v2 = await store.put('cas/doc.json', 'v2', { ifMatch: v1.etag });
    await assert.rejects(store.put('cas/doc.json', 'stale', { ifMatch: v1.etag }), PreconditionFailedError);
    assert.equal((await store.get('cas/doc.json'))?.body.toString(), 'v2');
    await store.put('cas/doc.json', 'v3', { ifMatch: v2.etag });
    assert.equal((await store.get('cas/doc.json'))?.body.toString(), 'v3');
  });

  test('concurrent compare-and-swap writers: exactly one wins', async () => {
    const base = await store.put('race/doc.json', 'base');
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => store.put('race/doc.json', `writer-${i}`, { ifMatch: base.etag })),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    assert.ok(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof PreconditionFailedError));
  });

  test('lists keys under a prefix, sorted, without temp or lock files', async () => {
    await store.put('list/x/2.txt', '2');
    await store.put('list/x/1.txt', '1');
    await store.put('list/y.txt', 'y');
    await store.put('listing.txt', 'not under list/');
    assert.deepEqual(await store.list('list/x/'), ['list/x/1.txt', 'list/x/2.txt']);
    assert.deepEqual(await store.list('list/'), ['list/x/1.txt', 'list/x/2.txt', 'list/y.txt']);
    assert.deepEqual(await store.list('nothing-here/'), []);
  });

  test('rejects keys that escape the root', async () => {
    await assert.rejects(store.put('../escape.txt', 'x'), /Invalid object key/);
    await assert.rejects(store.get('/etc/passwd'), /Invalid object key/);
  });
});

describe('openObjectStore', () => {
  test('s3://bucket opens S3, a path opens a directory, a prefix is refused', () => {
    assert.ok(openObjectStore('s3://my-bucket') instanceof S3ObjectStore);
    assert.equal(openObjectStore('s3://my-bucket').location, 's3://my-bucket');
    assert.ok(openObjectStore('/tmp/somewhere') instanceof LocalObjectStore);
    assert.throws(() => openObjectStore('s3://my-bucket/prefix'), /bare bucket/);
  });
});
