import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  DescribeDeliveryStreamCommand,
  FirehoseClient,
  ListDeliveryStreamsCommand,
  PutRecordBatchCommand,
  PutRecordCommand,
} from '@aws-sdk/client-firehose';
import { LocalObjectStore } from '../../runtime/object-store';
import { firehoseDataPrefix, firehoseErrorPrefix } from '../../runtime/storage-layout';
import { evaluatePrefix, formatTimestamp } from '../../local/firehose-prefix';
import {
  localStreamName,
  startFirehoseServer,
  startLocalFirehose,
  streamsFromDatasets,
  type FirehoseServer,
  type FirehoseStreamConfig,
} from '../../local/firehose-server';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { suiteTempDir } from '../support/suite-fixtures';

const DATASET = { name: 'sf-fire-incidents' };
const ARRIVAL = new Date('2024-03-05T23:59:58.123Z');

function stream(overrides: Partial<FirehoseStreamConfig> = {}): FirehoseStreamConfig {
  return {
    name: localStreamName(DATASET),
    dataPrefix: firehoseDataPrefix(DATASET),
    errorPrefix: firehoseErrorPrefix(DATASET),
    bufferingIntervalSeconds: 900,
    bufferingSizeMiB: 64,
    ...overrides,
  };
}

const client = (server: FirehoseServer, maxAttempts = 1): FirehoseClient =>
  new FirehoseClient({
    endpoint: server.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts,
  });

const rows = (n: number, from = 0): Buffer[] =>
  Array.from({ length: n }, (_, i) => Buffer.from(JSON.stringify({ id: String(from + i), text: 'x'.repeat(40) }) + '\n'));

async function readAll(store: LocalObjectStore, keys: string[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const key of keys) {
    const obj = await store.get(key);
    assert.ok(obj, `object ${key} exists`);
    parts.push(gunzipSync(obj.body));
  }
  return Buffer.concat(parts);
}

describe('local Firehose endpoint with a real FirehoseClient', () => {
  let dir: string;
  suiteTempDir('firehose-server-', (made) => (dir = made));

  const open = async (name: string, streams: FirehoseStreamConfig[] = [stream()], clock = () => ARRIVAL) => {
    const store = new LocalObjectStore(path.join(dir, name));
    const server = await startFirehoseServer({ store, streams, clock });
    return { store, server, fh: client(server) };
  };

  test('records land gzipped under the evaluated prefix and decompress to exactly the bytes sent', async () => {
    const { store, server, fh } = await open('roundtrip');
    try {
      const batch1 = rows(500);
      const batch2 = rows(3, 500);
      // No delimiter added by the service: a record without a trailing newline runs into the next.
      const noNewline = Buffer.from('tail-without-newline');
      const r1 = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'sf-fire-incidents-raw', Records: batch1.map((Data) => ({ Data })) }));
      assert.equal(r1.FailedPutCount, 0);
      assert.equal(r1.RequestResponses?.length, 500);
      assert.ok(r1.RequestResponses?.every((r) => typeof r.RecordId === 'string' && !r.ErrorCode));
      await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'sf-fire-incidents-raw', Records: batch2.map((Data) => ({ Data })) }));
      const single = await fh.send(new PutRecordCommand({ DeliveryStreamName: 'sf-fire-incidents-raw', Record: { Data: noNewline } }));
      assert.ok(single.RecordId);
      assert.equal(server.counters().objectsWritten, 0, 'buffered until flush');
      await server.flush();

      const keys = await store.list('raw/');
      assert.equal(keys.length, 1);
      assert.match(keys[0]!, /^raw\/sf-fire-incidents\/ingest_date=2024-03-05\/sf-fire-incidents-raw-1-2024-03-05-23-59-58-[0-9a-f-]{36}\.gz$/);
      const expected = Buffer.concat([...batch1, ...batch2, noNewline]);
      assert.deepEqual(await readAll(store, keys), expected);
      const c = server.counters();
      assert.equal(c.recordsAccepted, 504);
      assert.equal(c.bytesAccepted, expected.length);
      assert.equal(c.calls, 3);
      assert.equal(c.putRecordBatchCalls, 2);
      assert.equal(c.putRecordCalls, 1);
      assert.equal(c.objectsWritten, 1);
      assert.deepEqual(server.objectKeys(), keys);
    } finally {
      await server.close();
    }
  });

  test('limits are rejected with the service error names and nothing is buffered', async () => {
    const { server, fh } = await open('limits');
    try {
      const name = 'sf-fire-incidents-raw';
      await assert.rejects(
        fh.send(new PutRecordBatchCommand({ DeliveryStreamName: name, Records: rows(501).map((Data) => ({ Data })) })),
        (err: Error) => err.name === 'InvalidArgumentException' && /at most 500/.test(err.message),
      );
      // 1,000 KiB is allowed, one byte more is not.
      const max = Buffer.alloc(1_000 * 1024, 0x61);
      const ok = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: name, Records: [{ Data: max }] }));
      assert.equal(ok.FailedPutCount, 0);
      await assert.rejects(
        fh.send(new PutRecordCommand({ DeliveryStreamName: name, Record: { Data: Buffer.alloc(1_000 * 1024 + 1, 0x61) } })),
        (err: Error) => err.name === 'InvalidArgumentException' && /1,000 KiB/.test(err.message),
      );
      // Five records of 900 KiB: each is legal, together they exceed 4 MiB.
      const big = Array.from({ length: 5 }, () => ({ Data: Buffer.alloc(900 * 1024, 0x62) }));
      await assert.rejects(
        fh.send(new PutRecordBatchCommand({ DeliveryStreamName: name, Records: big })),
        (err: Error) => err.name === 'InvalidArgumentException' && /4 MiB/.test(err.message),
      );
      await assert.rejects(
        fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'no-such-stream', Records: [{ Data: Buffer.from('x') }] })),
        (err: Error) => err.name === 'ResourceNotFoundException' && /no-such-stream/.test(err.message),
      );
      const c = server.counters();
      assert.equal(c.recordsAccepted, 1, 'only the legal 1,000 KiB record was accepted');
      assert.equal(c.bytesAccepted, 1_000 * 1024);
      assert.equal(c.rejectedCalls, 4);
      assert.equal(c.calls, 5);
    } finally {
      await server.close();
    }
  });

  test('partial failures: every Nth record fails with FailedPutCount and per-entry errors; only accepted bytes are delivered', async () => {
    const store = new LocalObjectStore(path.join(dir, 'partial'));
    const server = await startFirehoseServer({ store, streams: [stream()], clock: () => ARRIVAL, faults: { failEveryNthRecord: 7 } });
    try {
      const fh = client(server);
      const batch = rows(50);
      const res = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'sf-fire-incidents-raw', Records: batch.map((Data) => ({ Data })) }));
      const failedIdx = [6, 13, 20, 27, 34, 41, 48];
      assert.equal(res.FailedPutCount, failedIdx.length);
      res.RequestResponses!.forEach((r, i) => {
        if (failedIdx.includes(i)) {
          assert.equal(r.ErrorCode, 'ServiceUnavailableException');
          assert.ok(r.ErrorMessage);
          assert.equal(r.RecordId, undefined);
        } else {
          assert.ok(r.RecordId, `record ${i} accepted`);
          assert.equal(r.ErrorCode, undefined);
        }
      });
      await server.flush();
      const delivered = await readAll(store, await store.list('raw/'));
      assert.deepEqual(delivered, Buffer.concat(batch.filter((_, i) => !failedIdx.includes(i))));
      assert.equal(server.counters().recordsFailed, 7);
      assert.equal(server.counters().recordsAccepted, 43);
    } finally {
      await server.close();
    }
  });

  test('seeded failure probability is deterministic', async () => {
    const failures = async (seed: number): Promise<number[]> => {
      const server = await startFirehoseServer({
        store: new LocalObjectStore(path.join(dir, `prob-${seed}`)),
        streams: [stream()],
        faults: { failProbability: 0.3, seed },
      });
      try {
        const res = await client(server).send(
          new PutRecordBatchCommand({ DeliveryStreamName: 'sf-fire-incidents-raw', Records: rows(200).map((Data) => ({ Data })) }),
        );
        const idx = res.RequestResponses!.flatMap((r, i) => (r.ErrorCode ? [i] : []));
        assert.equal(res.FailedPutCount, idx.length);
        return idx;
      } finally {
        await server.close();
      }
    };
    const a = await failures(42);
    assert.deepEqual(await failures(42), a);
    assert.ok(a.length > 30 && a.length < 90, `about 30% of 200 failed (${a.length})`);
    assert.notDeepEqual(await failures(43), a);
  });

  test('throttling surfaces as ServiceUnavailableException for the next N calls, then calls succeed', async () => {
    const { server, fh } = await open('throttle');
    try {
      server.setFaults({ throttleNextCalls: 2 });
      const put = () => fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'sf-fire-incidents-raw', Records: rows(2).map((Data) => ({ Data })) }));
      for (let i = 0; i < 2; i += 1) {
        await assert.rejects(put(), (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
          assert.equal(err.name, 'ServiceUnavailableException');
          assert.equal(err.$metadata?.httpStatusCode, 503);
          return true;
        });
      }
      const ok = await put();
      assert.equal(ok.FailedPutCount, 0);
      assert.equal(server.counters().throttledCalls, 2);
      assert.equal(server.counters().recordsAccepted, 2);

      // The SDK's standard retry strategy retries it transparently.
      server.setFaults({ throttleNextCalls: 1 });
      const retried = await client(server, 3).send(
        new PutRecordBatchCommand({ DeliveryStreamName: 'sf-fire-incidents-raw', Records: rows(1).map((Data) => ({ Data })) }),
      );
      assert.equal(retried.FailedPutCount, 0);
      assert.equal(server.counters().throttledCalls, 3);
    } finally {
      await server.close();
    }
  });

  test('buffering by size writes several objects, each at least the size hint, in order', async () => {
    const { store, server, fh } = await open('size', [stream({ bufferingSizeMiB: 1 })]);
    try {
      const sent: Buffer[] = [];
      for (let call = 0; call < 5; call += 1) {
        // 5 calls × 4 records × 200 KiB = 4,000 KiB → three 1 MiB deliveries, the rest on flush.
        const batch = Array.from({ length: 4 }, (_, i) => Buffer.alloc(200 * 1024, 0x41 + ((call * 4 + i) % 26)));
        sent.push(...batch);
        await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'sf-fire-incidents-raw', Records: batch.map((Data) => ({ Data })) }));
      }
      assert.equal(server.counters().objectsWritten, 3, 'three objects delivered by size before any flush');
      await server.flush();
      const keys = server.objectKeys();
      assert.equal(keys.length, 4);
      const sizes = await Promise.all(keys.map(async (k) => gunzipSync((await store.get(k))!.body).length));
      assert.deepEqual(sizes, [1200, 1200, 1200, 400].map((k) => k * 1024));
      assert.deepEqual(await readAll(store, keys), Buffer.concat(sent));
    } finally {
      await server.close();
    }
  });

  test('buffering by interval delivers without a flush', async () => {
    const { store, server, fh } = await open('interval', [stream({ bufferingIntervalSeconds: 1 })]);
    try {
      await fh.send(new PutRecordCommand({ DeliveryStreamName: 'sf-fire-incidents-raw', Record: { Data: Buffer.from('a\n') } }));
      for (let i = 0; i < 100 && server.counters().objectsWritten === 0; i += 1) await new Promise((r) => setTimeout(r, 50));
      assert.equal(server.counters().objectsWritten, 1);
      assert.deepEqual(await readAll(store, await store.list('raw/')), Buffer.from('a\n'));
    } finally {
      await server.close();
    }
  });

  test('the timestamp partition is the arrival time of the oldest record in the object', async () => {
    let now = new Date('2024-12-31T23:59:59.900Z');
    const { store, server, fh } = await open('oldest', [stream()], () => now);
    try {
      await fh.send(new PutRecordCommand({ DeliveryStreamName: 'sf-fire-incidents-raw', Record: { Data: Buffer.from('old\n') } }));
      now = new Date('2025-01-01T00:00:01Z');
      await fh.send(new PutRecordCommand({ DeliveryStreamName: 'sf-fire-incidents-raw', Record: { Data: Buffer.from('new\n') } }));
      await server.flush();
      const keys = await store.list('raw/');
      assert.equal(keys.length, 1);
      assert.match(keys[0]!, /ingest_date=2024-12-31\/sf-fire-incidents-raw-1-2024-12-31-23-59-59-/);
      assert.equal((await readAll(store, keys)).toString(), 'old\nnew\n');
    } finally {
      await server.close();
    }
  });

  test('DescribeDeliveryStream and ListDeliveryStreams answer for streams built from dataset files', async () => {
    const dataset = loadDatasetFile(path.join(import.meta.dirname, '../../datasets/sf-fire-incidents.json'));
    const { server, fh } = await open('describe', streamsFromDatasets([dataset]));
    try {
      const list = await fh.send(new ListDeliveryStreamsCommand({}));
      assert.deepEqual(list.DeliveryStreamNames, ['sf-fire-incidents-raw']);
      const d = await fh.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: 'sf-fire-incidents-raw' }));
      const s3 = d.DeliveryStreamDescription?.Destinations?.[0]?.ExtendedS3DestinationDescription;
      assert.equal(d.DeliveryStreamDescription?.DeliveryStreamStatus, 'ACTIVE');
      assert.equal(s3?.Prefix, 'raw/sf-fire-incidents/ingest_date=!{timestamp:yyyy-MM-dd}/');
      assert.equal(s3?.BufferingHints?.SizeInMBs, dataset.delivery.bufferingSizeMiB);
      assert.equal(s3?.BufferingHints?.IntervalInSeconds, dataset.delivery.bufferingIntervalSeconds);
      assert.equal(s3?.CompressionFormat, 'GZIP');
      assert.ok(d.DeliveryStreamDescription?.CreateTimestamp instanceof Date);
    } finally {
      await server.close();
    }
  });
});

describe('prefix expressions', () => {
  const t = new Date('2024-03-05T07:08:09.045Z');
  test('the deployed data and error prefixes', () => {
    assert.equal(evaluatePrefix(firehoseDataPrefix(DATASET), { timestamp: t }), 'raw/sf-fire-incidents/ingest_date=2024-03-05/');
    assert.equal(
      evaluatePrefix(firehoseErrorPrefix(DATASET), { timestamp: t, errorOutputType: 'processing-failed' }),
      'errors/sf-fire-incidents/processing-failed/ingest_date=2024-03-05/',
    );
    assert.throws(() => evaluatePrefix(firehoseErrorPrefix(DATASET), { timestamp: t }), /error output/);
  });
  test('other timestamp patterns, quoted literals and random strings', () => {
    assert.equal(formatTimestamp("yyyy'-'MM'-'dd", t), '2024-03-05');
    assert.equal(formatTimestamp('yyyy/MM/dd/HH', t), '2024/03/05/07');
    assert.equal(formatTimestamp("yy-M-d H:mm:ss.SSS 'at' ''", t), "24-3-5 7:08:09.045 at '");
    assert.equal(evaluatePrefix('h=!{timestamp:HH}/m=!{timestamp:mm}/', { timestamp: t }), 'h=07/m=08/');
    const r = evaluatePrefix('x/!{firehose:random-string}/', { timestamp: t });
    assert.match(r, /^x\/[A-Za-z0-9]{11}\/$/);
    assert.throws(() => evaluatePrefix('!{partitionKeyFromQuery:k}/', { timestamp: t }), /Unsupported/);
    assert.throws(() => formatTimestamp('yyyy-ww', t), /Unsupported letter "w"/);
  });
});

describe('startLocalFirehose', () => {
  test('writes into <data-dir>/buckets/raw under the dataset prefix', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'firehose-local-'));
    const dataset = loadDatasetFile(path.join(import.meta.dirname, '../../datasets/sf-fire-incidents.json'));
    const server = await startLocalFirehose({ dataDir: dir, datasets: [dataset], clock: () => ARRIVAL });
    try {
      await client(server).send(new PutRecordCommand({ DeliveryStreamName: 'sf-fire-incidents-raw', Record: { Data: Buffer.from('{"id":"1"}\n') } }));
      await server.flush();
      const store = new LocalObjectStore(path.join(dir, 'buckets', 'raw'));
      const keys = await store.list('raw/sf-fire-incidents/ingest_date=2024-03-05/');
      assert.equal(keys.length, 1);
      assert.equal((await readAll(store, keys)).toString(), '{"id":"1"}\n');
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
