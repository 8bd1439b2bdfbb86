/**
 * The run lease: mutual exclusion by conditional writes, on the local object store and on a real
 * S3-protocol server (moto_server, which enforces If-None-Match / If-Match), through the handler.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { LocalObjectStore, S3ObjectStore, type ObjectStore } from '../../runtime/object-store';
import { acquireLease, LeaseFormatError, releaseLease, type RunLeaseDeps } from '../../lambdas/run-lease/run-lease';
import { motoAvailable, startMotoS3, type MotoS3 } from '../support/moto-s3';

const KEY = 'leases/sf-fire-incidents.json';
const T0 = Date.parse('2026-01-01T06:00:00.000Z');

function depsFor(store: ObjectStore, clock: { now: number }): RunLeaseDeps {
  return { store, key: KEY, dataset: 'sf-fire-incidents', leaseSeconds: 3600, clock: () => new Date(clock.now) };
}

/** The protocol, run against any object store. */
function protocolTests(makeStore: () => ObjectStore): void {
  test('first run takes the lease; a second is refused and told who holds it until when', async () => {
    const clock = { now: T0 };
    const deps = depsFor(makeStore(), clock);
    assert.deepEqual(await acquireLease('run-a', deps), { acquired: true, holder: 'run-a', expiresAt: '2026-01-01T07:00:00.000Z' });
    clock.now += 60_000;
    assert.deepEqual(await acquireLease('run-b', deps), { acquired: false, holder: 'run-a', expiresAt: '2026-01-01T07:00:00.000Z' });
    // A retried acquire of the holder (its first answer was lost) keeps the lease.
    assert.equal((await acquireLease('run-a', deps)).acquired, true);
  });

  test('only the holder releases; after release the next run takes it', async () => {
    const clock = { now: T0 };
    const deps = depsFor(makeStore(), clock);
    assert.deepEqual(await releaseLease('run-a', deps), { released: false, reason: 'absent' });
    await acquireLease('run-a', deps);
    assert.deepEqual(await releaseLease('run-b', deps), { released: false, reason: 'not-held' });
    assert.equal((await acquireLease('run-b', deps)).acquired, false, 'a refused release left the lease held');
    assert.deepEqual(await releaseLease('run-a', deps), { released: true, reason: 'released' });
    assert.deepEqual(await releaseLease('run-a', deps), { released: false, reason: 'already-released' });
    clock.now += 60_000;
    assert.deepEqual(await acquireLease('run-b', deps), { acquired: true, holder: 'run-b', expiresAt: '2026-01-01T07:01:00.000Z' });
    assert.equal((await acquireLease('run-a', deps)).acquired, false);
  });

  test('an expired lease (a run killed before its release) is taken over; until then it blocks', async () => {
    const clock = { now: T0 };
    const deps = depsFor(makeStore(), clock);
    await acquireLease('run-killed', deps);
    clock.now = T0 + 3600_000 - 1;
    assert.equal((await acquireLease('run-next', deps)).acquired, false);
    clock.now = T0 + 3600_000;
    assert.deepEqual(await acquireLease('run-next', deps), { acquired: true, holder: 'run-next', expiresAt: '2026-01-01T08:00:00.000Z' });
    assert.deepEqual(await releaseLease('run-killed', deps), { released: false, reason: 'not-held' });
  });

  test('ten runs starting at the same instant: exactly one wins', async () => {
    const clock = { now: T0 };
    const store = makeStore();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => acquireLease(`run-${i}`, depsFor(store, clock))));
    const winners = results.filter((r) => r.acquired);
    assert.equal(winners.length, 1, JSON.stringify(results));
    assert.ok(results.every((r) => r.holder === winners[0]!.holder));
  });

  test('ten runs racing for an expired lease: exactly one takes it over', async () => {
    const clock = { now: T0 };
    const store = makeStore();
    await acquireLease('run-old', depsFor(store, clock));
    clock.now = T0 + 2 * 3600_000;
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => acquireLease(`run-${i}`, depsFor(store, clock))));
    assert.equal(results.filter((r) => r.acquired).length, 1, JSON.stringify(results));
  });
}

describe('run lease on the local object store', () => {
  protocolTests(() => new LocalObjectStore(mkdtempSync(path.join(os.tmpdir(), 'lease-'))));

  test('a lease object that is not a lease fails with its location and what to do', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lease-'));
    mkdirSync(path.join(dir, 'leases'));
    writeFileSync(path.join(dir, KEY), '{"holder": 3}');
    const deps = depsFor(new LocalObjectStore(dir), { now: T0 });
    await assert.rejects(acquireLease('run-a', deps), (err: Error) => err instanceof LeaseFormatError && err.message.includes(`${dir}/${KEY}`) && /fix or remove/.test(err.message));
    writeFileSync(path.join(dir, KEY), 'not json');
    await assert.rejects(releaseLease('run-a', deps), /is not JSON: fix or remove/);
  });
});

if (!motoAvailable) console.warn('SKIPPED: moto_server is not installed; the S3 run-lease tests did not run');

describe('run lease on S3 (moto_server)', { skip: motoAvailable ? false : 'moto_server not installed' }, () => {
  let moto: MotoS3 | undefined;
  let s3: S3Client;
  let endpoint = '';
  let bucketCount = 0;
  before(async () => {
    moto = await startMotoS3('probe');
    ({ s3, endpoint } = moto);
  });
  after(() => moto?.stop());

  const freshBucket = (): ObjectStore => {
    const name = `raw-${++bucketCount}`;
    void s3.send(new CreateBucketCommand({ Bucket: name }));
    return new S3ObjectStore(s3, name);
  };

  describe('protocol', () => {
    // Bucket creation is awaited lazily: the first call of each test waits for it.
    protocolTests(() => {
      const store = freshBucket();
      const ready = new Promise((r) => setTimeout(r, 300));
      return {
        location: store.location,
        get: async (k) => (await ready, store.get(k)),
        put: async (k, b, o) => (await ready, store.put(k, b, o)),
        list: async (p) => (await ready, store.list(p)),
      };
    });
  });

  test('the handler acquires and releases through S3 (AWS_ENDPOINT_URL_S3), never deleting', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'raw-handler' }));
    Object.assign(process.env, {
      DATASET_NAME: 'sf-fire-incidents',
      STATE_LOCATION: 's3://raw-handler',
      LEASE_SECONDS: '11400',
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: 'ERROR',
    });
    const { handler } = await import('../../lambdas/run-lease/handler');
    assert.deepEqual(await handler({ action: 'acquire', runId: 'exec-1' }), { acquired: true, holder: 'exec-1', expiresAt: (await handler({ action: 'acquire', runId: 'exec-1' }) as { expiresAt: string }).expiresAt });
    assert.equal((await handler({ action: 'acquire', runId: 'exec-2' }) as { acquired: boolean; holder: string }).holder, 'exec-1');
    assert.deepEqual(await handler({ action: 'release', runId: 'exec-1' }), { released: true, reason: 'released' });
    const stored = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: 'raw-handler', Key: KEY }))).Body!.transformToString());
    assert.equal(stored.holder, 'exec-1');
    assert.equal(stored.released, true);
    assert.equal(Date.parse(stored.expiresAt) - Date.parse(stored.acquiredAt), 11400_000);
    await assert.rejects(handler({ action: 'steal' as 'acquire', runId: 'x' }), /must be \{ action: "acquire" \| "release", runId \}/);
    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: 'raw-handler' })).catch(() => undefined);
    if (versions) assert.equal(versions.DeleteMarkers?.length ?? 0, 0);
  });
});
