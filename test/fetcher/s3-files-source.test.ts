/**
 * Files under an S3 prefix as a source (sources/s3/s3-files-source.ts), through the real row
 * fetch, key scan and repair, against moto_server over the S3 wire protocol (no SDK mocks):
 * append-only runs read each new object once and nothing when there is none (requests counted),
 * a run resumes mid-object only at the same ETag, a snapshot is read whole when its listing
 * changes and lists its keys for deletions, nested and composite keys, quarantine with object and
 * line, gzip auto-detected, a bad gzip object named in the error.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { CreateBucketCommand, DeleteObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { decodeKeyList, encodeKeyList, keyListFormatOf } from '../../runtime/key-list';
import { LocalObjectStore } from '../../runtime/object-store';
import { keysetPrefix, missingKeysKey } from '../../runtime/storage-layout';
import { CheckpointStore } from '../../lambdas/fetcher/checkpoint-store';
import { runFetch, type FetchSettings } from '../../lambdas/fetcher/fetch-run';
import { runKeyScan } from '../../lambdas/fetcher/key-scan';
import { runRepair } from '../../lambdas/fetcher/repair';
import { showSource, type SourceRow } from '../../lambdas/fetcher/sources/source-adapter';
import { S3FilesSource, type S3FilesSourceOptions, type S3Position } from '../../lambdas/fetcher/sources/s3/s3-files-source';
import type { S3ObjectPosition, S3SnapshotPosition } from '../../lambdas/fetcher/sources/s3/s3-positions';
import { motoAvailable, startMotoS3, type MotoS3 } from '../support/moto-s3';
import { acceptingFirehose, fetchInSlices, sortedIds, wholeSourceDeps } from './harness';
import { keyScanSettings, rowFetchSettings } from '../support/fetch-settings';

/**
 * A fault of the wire: the first `times` GetObject bodies of `key` end with a reset connection
 * after `afterBytes` bytes (the SDK's response is real; only its body stream is cut).
 */
function dropBodies(s3: S3Client, key: string, afterBytes: number, times: number): void {
  let dropped = 0;
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args);
      const output = out.output as { Body?: Readable };
      if (context.commandName === 'GetObjectCommand' && (args.input as { Key?: string }).Key === key && dropped < times) {
        dropped++;
        const body = output.Body!;
        output.Body = Readable.from(
          (async function* () {
            let seen = 0;
            // In pieces of 1 KiB, as a network delivers them: records are read before the reset.
            for await (const chunk of body as AsyncIterable<Buffer>) {
              for (let at = 0; at < chunk.length; at += 1024) {
                const piece = chunk.subarray(at, Math.min(chunk.length, at + 1024));
                if (seen + piece.length >= afterBytes) {
                  yield piece.subarray(0, afterBytes - seen);
                  body.destroy();
                  throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
                }
                seen += piece.length;
                yield piece;
              }
            }
          })(),
        );
      }
      return out;
    },
    { step: 'initialize', name: 'dropBodies' },
  );
}

/** An S3 client of its own per source, counting the requests it sends by command. */
function countingClient(endpoint: string): { s3: S3Client; counts: Record<string, number> } {
  const s3 = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const counts: Record<string, number> = {};
  s3.middlewareStack.add(
    (next, context) => (args) => {
      counts[context.commandName as string] = (counts[context.commandName as string] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'countRequests' },
  );
  return { s3, counts };
}

const events = (from: number, to: number): string =>
  Array.from({ length: to - from + 1 }, (_, i) => JSON.stringify({ event_id: `E-${from + i}`, kind: 'update', data: { amount: from + i } })).join('\n') + '\n';

const ids = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `E-${from + i}`).sort();

type Quarantined = { reason: string; detail: string; row: Record<string, unknown> };

describe('files under an S3 prefix as a source', { skip: !motoAvailable && 'moto_server is not installed' }, () => {
  let moto: MotoS3;
  let buckets = 0;
  before(async () => {
    moto = await startMotoS3('s3-source-setup');
  });
  after(() => moto?.stop());

  /** A bucket of its own, a state directory and fetch dependencies around a source made by `source()`. */
  async function setup(options: Partial<S3FilesSourceOptions> & { settings?: Partial<FetchSettings>; client?: (s3: S3Client) => void } = {}) {
    const bucket = `landing-${++buckets}`;
    await moto.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const put = (key: string, body: string | Buffer) => moto.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    const store = new LocalObjectStore(mkdtempSync(path.join(tmpdir(), 's3-source-')));
    const checkpoints = new CheckpointStore(store, 'events');
    const { settings: overrides, client, ...sourceOptions } = options;
    const counts: Record<string, number>[] = [];
    const source = () => {
      const c = countingClient(moto.endpoint);
      client?.(c.s3);
      counts.push(c.counts);
      return new S3FilesSource({ datasetName: 'events', url: `s3://${bucket}/landing/`, format: 'ndjson', primaryKey: 'event_id', s3: c.s3, ...sourceOptions });
    };
    const keyColumn = source().keyColumn;
    counts.length = 0;
    const settings: FetchSettings = rowFetchSettings({ datasetName: 'events', primaryKey: keyColumn, pageSize: 25, ...overrides });
    const deps = (remaining?: () => number) => wholeSourceDeps(source(), store, checkpoints, remaining);
    /** The requests of the last source made. */
    const requests = () => counts.at(-1)!;
    const quarantined = () =>
      store
        .list('quarantine/')
        .then((keys) => keys.flatMap((k) => gunzipSync(readFileSync(path.join(store.location, k))).toString().trim().split('\n').map((l) => JSON.parse(l) as Quarantined)));
    return { bucket, put, store, checkpoints, settings, deps, source, requests, quarantined };
  }

  test('append-only: three runs read each new object once, in key order; a fourth with nothing new lists once and GETs nothing', async () => {
    const { bucket, put, checkpoints, settings, deps, requests } = await setup();
    // Plain and gzipped objects side by side: each is auto-detected by its first bytes.
    await put('landing/2025-07-01.ndjson', events(1, 30));
    await put('landing/2025-07-02.ndjson.gz', gzipSync(events(31, 70)));
    await put('landing/folder/', ''); // a folder marker is not an object to read
    const first = acceptingFirehose();
    const one = await runFetch({ runId: 'r1' }, settings, deps());
    assert.equal(one.done, true);
    assert.deepEqual(sortedIds(first.rows, 'event_id'), ids(1, 70));
    assert.deepEqual(first.rows.find((r) => r.event_id === 'E-40')!.data, { amount: 40 }, 'gunzipped, nested values kept');
    assert.equal(first.rows.find((r) => r.event_id === 'E-40')!._source_id, 'landing/2025-07-02.ndjson.gz#10');
    assert.deepEqual(requests().GetObjectCommand, 2);

    await put('landing/2025-07-03.ndjson', events(71, 95));
    const second = acceptingFirehose();
    const two = await runFetch({ runId: 'r2' }, settings, deps());
    assert.deepEqual(sortedIds(second.rows, 'event_id'), ids(71, 95), 'only the new object');
    assert.equal(two.stats.rowsFetched, 25);
    assert.deepEqual(requests().GetObjectCommand, 1);

    await put('landing/2025-07-04.ndjson.gz', gzipSync(events(96, 100)));
    await put('landing/2025-07-05.ndjson', events(101, 140));
    const third = acceptingFirehose();
    await runFetch({ runId: 'r3' }, settings, deps());
    assert.deepEqual(sortedIds(third.rows, 'event_id'), ids(96, 140));
    const cp = (await checkpoints.read())!.checkpoint;
    assert.equal(cp.format, 's3-objects/1');
    assert.deepEqual(cp.source, { type: 's3', bucket, prefix: 'landing/' });
    assert.equal(showSource(cp.source!), `s3:bucket=${bucket},prefix=landing/`);
    const position = cp.position as S3ObjectPosition;
    assert.deepEqual([position.key, position.record, position.end], ['landing/2025-07-05.ndjson', 40, true]);
    assert.match(position.etag, /^"[0-9a-f]{32}"$/);

    const fourth = acceptingFirehose();
    const four = await runFetch({ runId: 'r4' }, settings, deps());
    assert.deepEqual([four.done, four.stats.rowsFetched, fourth.rows.length], [true, 0, 0]);
    assert.deepEqual(requests(), { ListObjectsV2Command: 1 }, 'one listing after the checkpoint\'s key, no GetObject');
  });

  test('append-only over listing pages of 2 keys: the runs page through the listing after the checkpoint\'s key; empty objects and folders are passed over without a GET', async () => {
    const { put, settings, deps, requests } = await setup({ listPageSize: 2 });
    for (let day = 1; day <= 5; day++) await put(`landing/2025-07-0${day}.ndjson`, events(day * 10 + 1, day * 10 + 5));
    await put('landing/_SUCCESS', '');
    const first = acceptingFirehose();
    await runFetch({ runId: 'r1' }, settings, deps());
    assert.deepEqual(sortedIds(first.rows, 'event_id'), [1, 2, 3, 4, 5].flatMap((d) => ids(d * 10 + 1, d * 10 + 5)).sort());
    assert.deepEqual(requests(), { ListObjectsV2Command: 3, GetObjectCommand: 5 }, '6 objects in pages of 2, the empty one not read');

    for (let day = 6; day <= 8; day++) await put(`landing/2025-07-0${day}.ndjson`, events(day * 10 + 1, day * 10 + 5));
    const second = acceptingFirehose();
    await runFetch({ runId: 'r2' }, settings, deps());
    assert.deepEqual(sortedIds(second.rows, 'event_id'), [6, 7, 8].flatMap((d) => ids(d * 10 + 1, d * 10 + 5)).sort(), 'only the new objects');
    assert.deepEqual(requests(), { ListObjectsV2Command: 2, GetObjectCommand: 3 }, 'listed from the checkpoint\'s key on: 3 new objects and _SUCCESS');
  });

  test('append-only: a run cut mid-object goes on at its next record in the next invocation, and a new run at the checkpoint\'s record; every row once', async () => {
    const { bucket, put, settings, deps, source, requests } = await setup();
    await put('landing/a.ndjson', gzipSync(events(1, 120)));
    await put('landing/b.ndjson', events(121, 150));
    const delivered = acceptingFirehose();
    // Each invocation has the budget for about two pages of 25 rows.
    const { out, invocations } = await fetchInSlices(settings, deps);
    assert.ok(out.done && invocations >= 3, `${invocations} invocations`);
    assert.deepEqual(sortedIds(delivered.rows, 'event_id'), ids(1, 150), 'every row once');

    // A fresh source object (a new run) at a checkpoint mid-object: one GET of that object at
    // the checkpoint's ETag, its first 100 records skipped, then the listing after its key.
    const aEtag = (await moto.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'landing/a.ndjson' }))).ETag!;
    const s = source();
    const rows: SourceRow[] = [];
    const positions: S3Position[] = [];
    const result = await s.streamPage({ after: { key: 'landing/a.ndjson', etag: aEtag, record: 100 }, limit: 1000, onRow: (row, at) => void (rows.push(row), positions.push(at)) });
    assert.deepEqual(rows.map((r) => r.event_id), [...Array.from({ length: 20 }, (_, i) => `E-${101 + i}`), ...Array.from({ length: 30 }, (_, i) => `E-${121 + i}`)], 'records 101.. of a, then b');
    assert.deepEqual([result.rows, result.stopped], [50, false]);
    assert.deepEqual(positions[0], { key: 'landing/a.ndjson', etag: aEtag, record: 101 });
    assert.deepEqual(positions[19], { key: 'landing/a.ndjson', etag: aEtag, record: 120, end: true });
    assert.deepEqual(requests(), { GetObjectCommand: 2, ListObjectsV2Command: 1 });
  });

  test('append-only: an object rewritten under a checkpoint mid-object fails the next run, naming the object; nothing is re-read or skipped', async () => {
    const { bucket, put, settings, deps, checkpoints } = await setup();
    await put('landing/a.ndjson', events(1, 100));
    acceptingFirehose();
    let n = 0;
    const cut = await runFetch({ runId: 'r1' }, settings, deps(() => (++n <= 2 ? 600_000 : 10)));
    assert.equal(cut.done, false);
    const at = (await checkpoints.read())!.checkpoint.position as S3ObjectPosition;
    assert.ok(at.key === 'landing/a.ndjson' && at.record > 0 && at.record < 100 && !at.end, JSON.stringify(at));

    await put('landing/a.ndjson', events(1, 101));
    const after = acceptingFirehose();
    await assert.rejects(runFetch({ runId: 'r2' }, settings, deps()), (err: Error) => {
      assert.equal(err.name, 'S3SourceError');
      assert.ok(err.message.startsWith(`s3://${bucket}/landing/a.ndjson changed since dataset events read part of it (its ETag is no longer ${at.etag})`), err.message);
      assert.match(err.message, /must not be rewritten/);
      return true;
    });
    assert.equal(after.rows.length, 0);
    assert.deepEqual((await checkpoints.read())!.checkpoint.position, at, 'the checkpoint stays');
  });

  test('snapshot: an unchanged listing reads nothing; a changed one is read whole; the key scan lists its keys (deletions) and the repair reads by key', async () => {
    const { bucket, put, store, settings, deps, checkpoints, source, requests } = await setup({ mode: 'snapshot' });
    await put('landing/part-1.ndjson', events(1, 40));
    await put('landing/part-2.ndjson.gz', gzipSync(events(41, 60)));
    const first = acceptingFirehose();
    await runFetch({ runId: 'r1' }, settings, deps());
    assert.deepEqual(sortedIds(first.rows, 'event_id'), ids(1, 60));
    const cp = (await checkpoints.read())!.checkpoint;
    const position = cp.position as S3SnapshotPosition;
    assert.equal(cp.format, 's3-snapshot/1');
    assert.match(position.version, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual([position.key, position.record, position.end], ['landing/part-2.ndjson.gz', 20, true]);

    const unchanged = acceptingFirehose();
    const two = await runFetch({ runId: 'r2' }, settings, deps());
    assert.deepEqual([two.done, two.stats.rowsFetched, unchanged.rows.length], [true, 0, 0]);
    assert.deepEqual(requests(), { ListObjectsV2Command: 1 }, 'the listing only');

    const scanKeys = async (runId: string) => {
      const scan = await runKeyScan({ runId }, keyScanSettings({ datasetName: 'events', primaryKey: settings.primaryKey, keyPageSize: 15 }), deps());
      assert.equal(scan.done, true);
      const parts = (await store.list(`${keysetPrefix({ name: 'events' })}${runId}/`)).filter((k) => !k.endsWith('.json'));
      return parts.flatMap((k) => decodeKeyList(gunzipSync(readFileSync(path.join(store.location, k))).toString('utf8'), keyListFormatOf(k), k)).sort();
    };
    assert.deepEqual(await scanKeys('r2'), ids(1, 60));

    // part-2 replaced by part-3 with fewer events: E-51..E-60 are gone from the snapshot.
    await moto.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'landing/part-2.ndjson.gz' }));
    await put('landing/part-3.ndjson', events(41, 50));
    const changed = acceptingFirehose();
    const three = await runFetch({ runId: 'r3' }, settings, deps());
    assert.equal(three.stats.rowsFetched, 50, 'a changed listing is read whole');
    assert.deepEqual(sortedIds(changed.rows, 'event_id'), ids(1, 50));
    assert.deepEqual(await scanKeys('r3'), ids(1, 50), 'keys gone from the prefix are not listed: the transform deletes them');

    // The same keys, one object rewritten: its ETag changes the version, and the whole prefix is read.
    await put('landing/part-1.ndjson', events(1, 40).replace('"amount":7}', '"amount":700}'));
    const rewritten = acceptingFirehose();
    assert.equal((await runFetch({ runId: 'r4' }, settings, deps())).stats.rowsFetched, 50);
    assert.deepEqual(rewritten.rows.find((r) => r.event_id === 'E-7')!.data, { amount: 700 });

    await store.put(missingKeysKey({ name: 'events' }, 'r3'), gzipSync(encodeKeyList(['E-5', 'E-45'])));
    const repaired = acceptingFirehose();
    const repair = await runRepair({ runId: 'r3' }, settings, deps());
    assert.equal(repair.done, true);
    assert.deepEqual(sortedIds(repaired.rows, 'event_id'), ['E-45', 'E-5']);

    // A key scan that goes on after the listing changed would mix two snapshots: it fails.
    const stale = JSON.stringify({ ...position, end: undefined, record: 3, key: 'landing/part-1.ndjson' });
    await assert.rejects(source().readKeys({ after: stale, limit: 10 }), /changed while dataset events was reading it as one snapshot/);
    await assert.rejects(source().readKeys({ after: '{"record":3}', limit: 10 }), /Key scan cursor \{"record":3\} of dataset events is not a position of s3:\/\/.* \(format s3-snapshot\/1\)/);
  });

  test('snapshot: a run cut mid-object goes on at its next record in the next invocation, every row once', async () => {
    const { put, settings, deps } = await setup({ mode: 'snapshot' });
    await put('landing/part-1.ndjson.gz', gzipSync(events(1, 70)));
    await put('landing/part-2.ndjson', events(71, 130));
    const delivered = acceptingFirehose();
    const { out, invocations } = await fetchInSlices(settings, deps);
    assert.ok(out.done && invocations >= 3, `${invocations} invocations`);
    assert.deepEqual(delivered.rows.map((r) => r.event_id).sort(), ids(1, 130), 'every row once');
  });

  test('keys are read in S3\'s order, by UTF-8 bytes, and positions compare the same way', async () => {
    const { put, source } = await setup();
    await put('landing/\u{1F600}.ndjson', events(2, 2)); // UTF-8 F0 9F 98 80, UTF-16 D83D DE00
    await put('landing/\uFF61.ndjson', events(1, 1)); // UTF-8 EF BD A1
    await put('landing/z.ndjson', events(0, 0));
    const seen: { id: unknown; at: S3Position }[] = [];
    await source().streamPage({ after: null, limit: 10, onRow: (row, at) => void seen.push({ id: row.event_id, at }) });
    assert.deepEqual(seen.map((s) => s.id), ['E-0', 'E-1', 'E-2']);
    const order = source().positions;
    assert.ok(order.compare(seen[0]!.at, seen[1]!.at) < 0 && order.compare(seen[1]!.at, seen[2]!.at) < 0);
    // From the middle object's end, the listing after it holds only the last.
    const after: string[] = [];
    await source().streamPage({ after: seen[1]!.at, limit: 10, onRow: (row) => void after.push(String(row.event_id)) });
    assert.deepEqual(after, ['E-2']);
  });

  test('a body reset mid-object is asked for again at the same ETag and goes on after the records read; one that keeps failing fails the run by name', async () => {
    const plain = events(1, 3000);
    const { put, source } = await setup({ client: (s3) => dropBodies(s3, 'landing/a.ndjson', Math.floor(plain.length / 3), 2) });
    await put('landing/a.ndjson', plain);
    const rows: string[] = [];
    const result = await source().streamPage({ after: null, limit: 10_000, onRow: (row) => void rows.push(String(row.event_id)) });
    assert.equal(result.resumes, 2);
    assert.deepEqual(rows, Array.from({ length: 3000 }, (_, i) => `E-${i + 1}`), 'every record once, in order');

    const again = await setup({ client: (s3) => dropBodies(s3, 'landing/a.ndjson.gz', 100, 4) });
    await again.put('landing/a.ndjson.gz', gzipSync(plain));
    await assert.rejects(again.source().streamPage({ after: null, limit: 10_000, onRow: () => undefined }), (err: Error) => {
      assert.equal(err.name, 'S3SourceError');
      assert.match(err.message, new RegExp(`^s3://${again.bucket}/landing/a\\.ndjson\\.gz: reading the object failed after record \\d+ and 3 new requests \\(socket hang up\\)`));
      return true;
    });
  });

  test('append-only sources have no key scan: it fails with what to set instead', async () => {
    const { source } = await setup();
    await assert.rejects(source().readKeys({ after: null, limit: 10 }), /append-only[\s\S]*deletions\.detect: false/);
  });

  test('nested and composite keys: one key text per tuple; a missing or invalid part quarantined and counted with the object and line; an invalid JSON line quarantined', async () => {
    const { bucket, put, settings, deps, quarantined } = await setup({ primaryKey: ['on', 'data.id', 'at'], keyColumn: 'event_key', columns: { lat: 'data.location.lat', vehicle: 'data.id' }, settings: { maxQuarantineShare: 1 } });
    const at = '2025-07-01T08:00:00Z';
    const lines = [
      { on: 'register', data: { id: 'V-1', location: { lat: 55.95, lon: -3.19 } }, at },
      { on: 'a,b', data: { id: 'c' }, at },
      { on: 'a', data: { id: 'b,c' }, at },
      { on: 'update', data: { id: 1 }, at },
      { on: 'update', data: { id: '1' }, at },
      { on: 'update', data: { location: { lat: 1 } }, at }, // line 6: data.id absent
      { on: 'update', data: { id: 'V-2' }, at: '' }, // line 7: at empty
      { on: 'update', data: { id: { nested: true } }, at }, // line 8: not a scalar
    ].map((l) => JSON.stringify(l));
    lines.push('{"on": "deregister", "data": {'); // line 9: not JSON
    await put('landing/2025-07-01.ndjson', `${lines.join('\n')}\n`);
    const delivered = acceptingFirehose();
    const out = await runFetch({ runId: 'r1' }, settings, deps());
    const keys = delivered.rows.map((r) => r.event_key);
    assert.deepEqual(keys, [
      JSON.stringify(['register', 'V-1', at]),
      JSON.stringify(['a,b', 'c', at]),
      JSON.stringify(['a', 'b,c', at]),
      JSON.stringify(['update', 1, at]),
      JSON.stringify(['update', '1', at]),
    ]);
    assert.equal(new Set(keys).size, 5, 'different tuples, different keys');
    assert.deepEqual(delivered.rows[0]!.data, { id: 'V-1', location: { lat: 55.95, lon: -3.19 } }, 'the nested fields as they are');
    assert.deepEqual([delivered.rows[0]!.lat, delivered.rows[0]!.vehicle], [55.95, 'V-1'], 'and columns by path');
    assert.ok(!('lat' in delivered.rows[1]!), 'a path that is absent gives no column');
    assert.deepEqual([out.stats.quarantinedMissingKey, out.stats.quarantinedInvalidKey, out.stats.quarantinedMalformed, out.stats.rowsQuarantined], [2, 1, 1, 4]);
    const q = await quarantined();
    const byLine = (line: number) => q.find((r) => r.row[':line'] === line)!;
    const object = `s3://${bucket}/landing/2025-07-01.ndjson`;
    assert.deepEqual([byLine(6).reason, byLine(6).row[':object'], byLine(6).row[':key_problem']], ['missing_primary_key', object, 'key part "data.id" is absent']);
    assert.deepEqual([byLine(7).reason, byLine(7).row[':key_problem']], ['missing_primary_key', 'key part "at" is empty']);
    assert.equal(byLine(8).reason, 'invalid_primary_key');
    assert.match(String(byLine(8).row[':key_problem']), /key part "data.id" is an object/);
    const malformed = q.find((r) => r.reason === 'malformed_record')!;
    assert.match(malformed.detail, new RegExp(`^${object.replace(/[./]/g, '\\$&')} line 9: `));
  });

  test('CSV, plain and gzipped: a ragged line quarantined with the object and line', async () => {
    const { bucket, put, settings, deps, quarantined } = await setup({ format: 'csv', primaryKey: 'order_id', mode: 'snapshot', settings: { maxQuarantineShare: 1 } });
    await put('landing/orders-1.csv', 'order_id,customer,price\r\nO-1,"Smith, Jo",1.50\r\nO-2,"Line\nbreak",2.00\r\nO-x,too,many,fields\r\nO-3,Ann,3.00\r\n');
    await put('landing/orders-2.csv.gz', gzipSync('order_id,customer,price\nO-4,Bo,4.00\n'));
    const delivered = acceptingFirehose();
    const out = await runFetch({ runId: 'r1' }, settings, deps());
    assert.deepEqual(sortedIds(delivered.rows, 'order_id'), ['O-1', 'O-2', 'O-3', 'O-4']);
    assert.equal(delivered.rows.find((r) => r.order_id === 'O-1')!.customer, 'Smith, Jo');
    assert.equal(out.stats.quarantinedMalformed, 1);
    const [q] = await quarantined();
    // O-2's quoted newline puts the ragged record on line 5.
    assert.match(q!.detail, new RegExp(`^s3://${bucket}/landing/orders-1\\.csv line 5: .*4 fields.*header has 3`));
    assert.equal(q!.row._raw, 'O-x,too,many,fields');
  });

  test('an object that is not valid gzip, or is truncated, fails the run naming it; the objects before it stay delivered', async () => {
    // Pages of 5: a's two pages are delivered before the page that opens b fails (a failed page delivers nothing).
    const { bucket, put, settings, deps, checkpoints } = await setup({ settings: { pageSize: 5 } });
    await put('landing/a.ndjson', events(1, 10));
    await put('landing/b.ndjson.gz', Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.from('definitely not deflate data')]));
    const delivered = acceptingFirehose();
    await assert.rejects(runFetch({ runId: 'r1' }, settings, deps()), (err: Error) => {
      assert.equal(err.name, 'S3SourceError');
      assert.ok(err.message.startsWith(`s3://${bucket}/landing/b.ndjson.gz: not valid gzip`), err.message);
      assert.match(err.message, /replace or remove the object and re-run/);
      return true;
    });
    assert.deepEqual(sortedIds(delivered.rows, 'event_id'), ids(1, 10));
    assert.deepEqual((await checkpoints.read())!.checkpoint.position, { key: 'landing/a.ndjson', etag: (await moto.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'landing/a.ndjson' }))).ETag, record: 10, end: true });

    const whole = gzipSync(events(11, 20));
    await put('landing/b.ndjson.gz', whole.subarray(0, whole.length - 12));
    acceptingFirehose();
    await assert.rejects(runFetch({ runId: 'r2' }, settings, deps()), new RegExp(`s3://${bucket}/landing/b\\.ndjson\\.gz: the gzip stream is truncated`));
  });

  test('a bucket that does not exist is named in the error', async () => {
    const { s3 } = countingClient(moto.endpoint);
    const source = new S3FilesSource({ datasetName: 'events', url: 's3://no-such-landing/events/', format: 'ndjson', primaryKey: 'event_id', s3 });
    await assert.rejects(source.streamPage({ after: null, limit: 10, onRow: () => undefined }), (err: Error) => {
      assert.equal(err.name, 'S3SourceError');
      assert.match(err.message, /^ListObjectsV2 of s3:\/\/no-such-landing\/events\/ for dataset events failed \(NoSuchBucket: .*\); check the bucket name/);
      return true;
    });
  });

  test('the SDK client reaches the endpoint in AWS_ENDPOINT_URL_S3 (as the handler\'s does) without an endpoint of its own', async () => {
    const { bucket, put } = await setup();
    await put('landing/a.ndjson', events(1, 3));
    const saved = process.env.AWS_ENDPOINT_URL_S3;
    process.env.AWS_ENDPOINT_URL_S3 = moto.endpoint;
    try {
      const s3 = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
      const rows: SourceRow[] = [];
      await new S3FilesSource({ datasetName: 'events', url: `s3://${bucket}/landing/`, format: 'ndjson', primaryKey: 'event_id', s3 }).streamPage({ after: null, limit: 10, onRow: (r) => void rows.push(r) });
      assert.deepEqual(rows.map((r) => r.event_id), ['E-1', 'E-2', 'E-3']);
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_S3;
      else process.env.AWS_ENDPOINT_URL_S3 = saved;
    }
  });
});
