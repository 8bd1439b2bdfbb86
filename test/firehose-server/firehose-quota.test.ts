/**
 * The local Firehose's Direct PUT quota, through a real FirehoseClient over HTTP: the answer a
 * producer gets when a stream's bytes/s, records/s or requests/s are spent (the service's own
 * shapes), the buckets refilling with time (a pinned clock, so nothing here is timed), and
 * LOCAL_FIREHOSE_QUOTA reaching the endpoint `npm run local` starts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { FirehoseClient, PutRecordBatchCommand, PutRecordCommand } from '@aws-sdk/client-firehose';
import { LocalObjectStore } from '../../runtime/object-store';
import { firehoseDataPrefix, firehoseErrorPrefix } from '../../runtime/storage-layout';
import { localStreamName, startFirehoseServer, startLocalFirehose, type FirehoseServer } from '../../local/firehose-server';
import { quotaFromEnv, regionQuota, type FirehoseQuota } from '../../local/firehose-quota';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { suiteTempDir } from '../support/suite-fixtures';

const STREAM = localStreamName({ name: 'sf-fire-incidents' });
const KIB = 1024;
const MIB = 1024 * KIB;

const client = (server: FirehoseServer): FirehoseClient =>
  new FirehoseClient({ endpoint: server.url, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 1 });

/** Records of `bytes` each, every one distinct (its index in its first byte). */
const records = (n: number, bytes: number, tag = 0): Buffer[] => Array.from({ length: n }, (_, i) => Buffer.alloc(bytes, 0x41 + ((tag + i) % 26)));

describe('local Firehose Direct PUT quota', () => {
  let dir: string;
  suiteTempDir('firehose-quota-', (made) => (dir = made));

  /** A server whose quota buckets read `clock.ms`. */
  const open = async (name: string, quota: FirehoseQuota) => {
    const clock = { ms: 0 };
    const store = new LocalObjectStore(path.join(dir, name));
    const server = await startFirehoseServer({
      store,
      streams: [{ name: STREAM, dataPrefix: firehoseDataPrefix({ name: 'sf-fire-incidents' }), errorPrefix: firehoseErrorPrefix({ name: 'sf-fire-incidents' }), bufferingIntervalSeconds: 900, bufferingSizeMiB: 64 }],
      quota,
      quotaClock: () => clock.ms,
    });
    const delivered = async (): Promise<Buffer> => {
      await server.flush();
      const parts: Buffer[] = [];
      for (const key of await store.list('raw/')) parts.push(gunzipSync((await store.get(key))!.body));
      return Buffer.concat(parts);
    };
    return { clock, server, fh: client(server), delivered };
  };

  test('bytes/s spent mid-call: 200 with FailedPutCount and "Slow down." entries for the tail; only the admitted records are delivered', async () => {
    const { clock, server, fh, delivered } = await open('bytes', { bytesPerSecond: MIB });
    try {
      // Five records of 300 KiB: three fit in one second's 1 MiB, the fourth would not.
      const first = records(5, 300 * KIB);
      const r1 = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: STREAM, Records: first.map((Data) => ({ Data })) }));
      assert.equal(r1.FailedPutCount, 2);
      assert.deepEqual(
        r1.RequestResponses!.map((r) => r.ErrorCode ?? 'ok'),
        ['ok', 'ok', 'ok', 'ServiceUnavailableException', 'ServiceUnavailableException'],
      );
      assert.ok(r1.RequestResponses!.slice(3).every((r) => r.ErrorMessage === 'Slow down.' && r.RecordId === undefined));
      // Still spent at the same instant: everything is refused, still with a 200.
      const r2 = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: STREAM, Records: first.slice(3).map((Data) => ({ Data })) }));
      assert.equal(r2.FailedPutCount, 2);
      // Half a second later 512 KiB more (plus 124 KiB left over): the two retried records fit.
      clock.ms = 500;
      const r3 = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: STREAM, Records: first.slice(3).map((Data) => ({ Data })) }));
      assert.equal(r3.FailedPutCount, 0);
      assert.deepEqual(await delivered(), Buffer.concat(first));
      const c = server.counters();
      assert.equal(c.recordsAccepted, 5);
      assert.equal(c.throttledRecords, 4);
      assert.equal(c.recordsFailed, 4);
      assert.equal(c.throttledCalls, 0, 'a spent byte quota answers 200, not a failed call');
    } finally {
      await server.close();
    }
  });

  test('a bucket saves up at most one second: after an idle minute the burst is still one second of quota', async () => {
    const { clock, server, fh } = await open('burst', { bytesPerSecond: MIB });
    try {
      clock.ms = 60_000;
      const r = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: STREAM, Records: records(4, 500 * KIB).map((Data) => ({ Data })) }));
      assert.equal(r.FailedPutCount, 2, 'two records of 500 KiB fit in 1 MiB, not four');
    } finally {
      await server.close();
    }
  });

  test('records/s: the records beyond the quota are refused per entry', async () => {
    const { clock, server, fh } = await open('records', { recordsPerSecond: 3 });
    try {
      const r1 = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: STREAM, Records: records(5, 10).map((Data) => ({ Data })) }));
      assert.equal(r1.FailedPutCount, 2);
      assert.deepEqual(r1.RequestResponses!.map((r) => Boolean(r.ErrorCode)), [false, false, false, true, true]);
      clock.ms = 1_000;
      const r2 = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: STREAM, Records: records(3, 10).map((Data) => ({ Data })) }));
      assert.equal(r2.FailedPutCount, 0);
    } finally {
      await server.close();
    }
  });

  test('requests/s: the call beyond the quota fails whole with ServiceUnavailableException (HTTP 503), PutRecord too', async () => {
    const { clock, server, fh } = await open('requests', { requestsPerSecond: 2 });
    try {
      const put = () => fh.send(new PutRecordBatchCommand({ DeliveryStreamName: STREAM, Records: records(1, 10).map((Data) => ({ Data })) }));
      assert.equal((await put()).FailedPutCount, 0);
      assert.equal((await fh.send(new PutRecordCommand({ DeliveryStreamName: STREAM, Record: { Data: Buffer.from('x') } }))).RecordId !== undefined, true);
      const slowDown = (err: Error & { $metadata?: { httpStatusCode?: number } }): boolean =>
        err.name === 'ServiceUnavailableException' && err.message === 'Slow down.' && err.$metadata?.httpStatusCode === 503;
      await assert.rejects(put(), slowDown);
      await assert.rejects(fh.send(new PutRecordCommand({ DeliveryStreamName: STREAM, Record: { Data: Buffer.from('x') } })), slowDown);
      clock.ms = 500;
      assert.equal((await put()).FailedPutCount, 0, 'half a second later: one more request');
      const c = server.counters();
      assert.equal(c.throttledCalls, 2);
      assert.equal(c.recordsAccepted, 3);
    } finally {
      await server.close();
    }
  });

  test('PutRecord whose record does not fit the byte quota fails whole, as PutRecord has no per-entry answer', async () => {
    const { server, fh } = await open('put-record', { bytesPerSecond: MIB });
    try {
      await fh.send(new PutRecordCommand({ DeliveryStreamName: STREAM, Record: { Data: records(1, 900 * KIB)[0]! } }));
      await assert.rejects(
        fh.send(new PutRecordCommand({ DeliveryStreamName: STREAM, Record: { Data: records(1, 900 * KIB)[0]! } })),
        (err: Error) => err.name === 'ServiceUnavailableException' && err.message === 'Slow down.',
      );
    } finally {
      await server.close();
    }
  });

  test('a quota under which a legal call could never pass is refused at start', async () => {
    await assert.rejects(
      startFirehoseServer({ store: new LocalObjectStore(path.join(dir, 'bad')), streams: [], quota: { bytesPerSecond: 0 } }).then(async (s) => s.close()),
      /positive number/,
    );
    const store = new LocalObjectStore(path.join(dir, 'small'));
    const streams = [{ name: STREAM, dataPrefix: 'raw/', errorPrefix: 'errors/', bufferingIntervalSeconds: 0, bufferingSizeMiB: 1 }];
    await assert.rejects(startFirehoseServer({ store, streams, quota: { bytesPerSecond: 512 * KIB } }), /below the largest legal record/);
  });
});

describe('LOCAL_FIREHOSE_QUOTA', () => {
  test('off by default; a region name gives that region\'s default quota; explicit limits per second', () => {
    assert.equal(quotaFromEnv({}), undefined);
    assert.equal(quotaFromEnv({ LOCAL_FIREHOSE_QUOTA: '' }), undefined);
    assert.equal(quotaFromEnv({ LOCAL_FIREHOSE_QUOTA: 'off' }), undefined);
    assert.deepEqual(quotaFromEnv({ LOCAL_FIREHOSE_QUOTA: 'us-east-1' }), { bytesPerSecond: 5 * MIB, requestsPerSecond: 2_000, recordsPerSecond: 500_000 });
    assert.deepEqual(quotaFromEnv({ LOCAL_FIREHOSE_QUOTA: 'eu-central-1' }), { bytesPerSecond: MIB, requestsPerSecond: 1_000, recordsPerSecond: 100_000 });
    assert.deepEqual(regionQuota('eu-west-1').bytesPerSecond, 5 * MIB);
    assert.deepEqual(quotaFromEnv({ LOCAL_FIREHOSE_QUOTA: 'bytes=1.5MiB, requests=10' }), { bytesPerSecond: 1.5 * MIB, requestsPerSecond: 10 });
    assert.deepEqual(quotaFromEnv({ LOCAL_FIREHOSE_QUOTA: 'bytes=2000KiB,records=7' }), { bytesPerSecond: 2000 * KIB, recordsPerSecond: 7 });
  });

  test('a value it cannot read fails naming the variable and the accepted forms', () => {
    for (const bad of ['5MB', 'bytes=1MB', 'records=2KiB', 'requests=0', 'bytes=100']) {
      assert.throws(() => quotaFromEnv({ LOCAL_FIREHOSE_QUOTA: bad }), (err: Error) => err.message.includes('LOCAL_FIREHOSE_QUOTA'), bad);
    }
    assert.throws(() => quotaFromEnv({ LOCAL_FIREHOSE_QUOTA: 'bytes=1MB' }), /"off", a region name/);
  });

  test('the endpoint `npm run local` starts (startLocalFirehose) enforces it', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'firehose-quota-env-'));
    const dataset = loadDatasetFile(path.join(import.meta.dirname, '../../datasets/sf-fire-incidents.json'));
    const saved = process.env.LOCAL_FIREHOSE_QUOTA;
    process.env.LOCAL_FIREHOSE_QUOTA = 'requests=1';
    let server: FirehoseServer | undefined;
    try {
      server = await startLocalFirehose({ dataDir, datasets: [dataset] });
      const put = () => client(server!).send(new PutRecordCommand({ DeliveryStreamName: localStreamName(dataset), Record: { Data: Buffer.from('{"id":"1"}\n') } }));
      await put();
      // Two calls back to back inside one second on a 1-request/s quota (the second waits for
      // nothing, so it lands well within the second).
      await assert.rejects(put(), (err: Error) => err.name === 'ServiceUnavailableException');
    } finally {
      if (saved === undefined) delete process.env.LOCAL_FIREHOSE_QUOTA;
      else process.env.LOCAL_FIREHOSE_QUOTA = saved;
      await server?.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
