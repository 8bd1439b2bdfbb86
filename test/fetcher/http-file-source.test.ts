/**
 * A file over HTTP as a source (sources/files/http-file-source.ts), through the real row fetch,
 * key scan and repair, against a small HTTP server that serves a file with or without validators
 * (ETag, Last-Modified) and honours or ignores conditional requests: every row once, malformed
 * records quarantined with file and line, an unchanged file read for nothing, a changed one read
 * whole, a run cut short resumed at its next record.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { encodeKeyList } from '../../runtime/key-list';
import { LocalObjectStore } from '../../runtime/object-store';
import { missingKeysKey } from '../../runtime/storage-layout';
import { CheckpointStore } from '../../lambdas/fetcher/checkpoint-store';
import { readFetcherConfig } from '../../lambdas/fetcher/config';
import { runFetch, type FetchSettings } from '../../lambdas/fetcher/fetch-run';
import { runKeyScan } from '../../lambdas/fetcher/key-scan';
import { runRepair } from '../../lambdas/fetcher/repair';
import { openSource } from '../../lambdas/fetcher/sources/registry';
import { HttpFileSource, type FilePosition } from '../../lambdas/fetcher/sources/files/http-file-source';
import { acceptingFirehose, recordingRetry, sortedIds, wholeSourceDeps } from './harness';
import { keyScanSettings, rowFetchSettings } from '../support/fetch-settings';

interface Served {
  body: Buffer;
  etag?: string;
  lastModified?: string;
  /** Answer 200 whatever the conditional headers say. */
  ignoreConditionals?: boolean;
}

/** Serves `served` at /data.*; records each request's headers. */
class FileServer {
  served: Served = { body: Buffer.alloc(0) };
  requests: IncomingHttpHeaders[] = [];
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.requests.push(req.headers);
      const s = this.served;
      const unchanged = !s.ignoreConditionals && ((s.etag && req.headers['if-none-match'] === s.etag) || (s.lastModified && req.headers['if-modified-since'] === s.lastModified));
      const headers: Record<string, string> = {};
      if (s.etag) headers.ETag = s.etag;
      if (s.lastModified) headers['Last-Modified'] = s.lastModified;
      if (unchanged) {
        res.writeHead(304, headers).end();
        return;
      }
      res.writeHead(200, { ...headers, 'Content-Length': String(s.body.length) }).end(s.body);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/data.csv`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server!.close(() => resolve()));
  }
}

/** Orders with a header, quoted commas and a quoted newline; `ragged` adds a line with a field too many. */
function ordersCsv(n: number, opts: { ragged?: boolean; price?: (i: number) => string } = {}): string {
  const lines = ['order_id,customer,note,price'];
  for (let i = 1; i <= n; i++) {
    lines.push(`O-${i},"Smith, Jo ${i}","line one\nline two",${opts.price?.(i) ?? (i * 1.5).toFixed(2)}`);
    if (opts.ragged && i === 7) lines.push('O-x,too,many,fields,here');
  }
  return `${lines.join('\r\n')}\r\n`;
}

const settings: FetchSettings = rowFetchSettings({ datasetName: 'orders', primaryKey: 'order_id', pageSize: 50 });

describe('a file over HTTP as a source', () => {
  const files = new FileServer();
  before(() => files.start());
  after(() => files.close());

  function setup() {
    const store = new LocalObjectStore(mkdtempSync(path.join(tmpdir(), 'file-source-')));
    const checkpoints = new CheckpointStore(store, settings.datasetName);
    const source = (format: 'csv' | 'ndjson' = 'csv') =>
      new HttpFileSource({ datasetName: 'orders', url: files.url, format, primaryKey: 'order_id', timeoutMs: 5_000, retry: recordingRetry(3), now: () => new Date('2025-07-01T00:00:00Z') });
    const deps = (remaining?: () => number, format: 'csv' | 'ndjson' = 'csv') => wholeSourceDeps(source(format), store, checkpoints, remaining);
    return { store, checkpoints, deps };
  }

  const quarantined = (store: LocalObjectStore) =>
    store.list('quarantine/').then((keys) => keys.flatMap((k) => gunzipSync(readFileSync(path.join(store.location, k))).toString().trim().split('\n').map((l) => JSON.parse(l) as { reason: string; detail: string; row: { _raw: string } })));

  test('every row once with the file\'s fields and system fields; a ragged line quarantined with file and line; the version in the checkpoint', async () => {
    const { store, checkpoints, deps } = setup();
    files.served = { body: Buffer.from(ordersCsv(120, { ragged: true })), etag: '"v1"', lastModified: 'Tue, 01 Jul 2025 08:00:00 GMT' };
    const delivered = acceptingFirehose();
    const out = await runFetch({ runId: 'r1' }, settings, deps());
    assert.equal(out.done, true);
    assert.equal(delivered.rows.length, 120);
    assert.deepEqual(sortedIds(delivered.rows, 'order_id'), Array.from({ length: 120 }, (_, i) => `O-${i + 1}`).sort());
    const o3 = delivered.rows.find((r) => r.order_id === 'O-3')!;
    assert.deepEqual([o3.customer, o3.note, o3.price], ['Smith, Jo 3', 'line one\nline two', '4.50']);
    assert.equal(o3._source_updated_at, '2025-07-01T08:00:00.000Z', 'the version\'s Last-Modified');
    assert.deepEqual([out.stats.rowsQuarantined, out.stats.quarantinedMalformed, out.stats.rowsFetched], [1, 1, 121]);
    const q = await quarantined(store);
    assert.equal(q.length, 1);
    assert.equal(q[0]!.reason, 'malformed_record');
    // Each order spans two lines (a quoted newline): the ragged one follows order 7, on line 16.
    assert.match(q[0]!.detail, /data\.csv line 16: .*5 fields.*header has 4/);
    assert.equal(q[0]!.row._raw, 'O-x,too,many,fields,here');
    const cp = (await checkpoints.read())!.checkpoint;
    assert.deepEqual([cp.format, cp.position, cp.source], ['file-record/1', { version: 'etag:"v1"', record: 121, end: true }, { type: 'file', url: files.url }]);
  });

  test('an unchanged file is read for nothing: a 304 to If-None-Match, or a 200 of the same version skipped; a changed file is read whole', async () => {
    const { deps } = setup();
    files.served = { body: Buffer.from(ordersCsv(80)), etag: '"v1"', lastModified: 'Tue, 01 Jul 2025 08:00:00 GMT' };
    acceptingFirehose();
    await runFetch({ runId: 'r1' }, settings, deps());
    const n = files.requests.length;
    const again = acceptingFirehose();
    const second = await runFetch({ runId: 'r2' }, settings, deps());
    assert.deepEqual([second.done, second.stats.rowsFetched, again.rows.length], [true, 0, 0]);
    assert.deepEqual(files.requests.slice(n).map((h) => h['if-none-match']), ['"v1"'], 'one conditional request');

    files.served = { ...files.served, ignoreConditionals: true };
    const ignored = acceptingFirehose();
    const third = await runFetch({ runId: 'r3' }, settings, deps());
    assert.deepEqual([third.stats.rowsFetched, ignored.rows.length], [0, 0], 'the same version\'s records are skipped');

    files.served = { body: Buffer.from(ordersCsv(90, { price: (i) => (i % 10 === 0 ? '99.00' : (i * 1.5).toFixed(2)) })), etag: '"v2"', lastModified: 'Wed, 02 Jul 2025 08:00:00 GMT' };
    const changed = acceptingFirehose();
    const fourth = await runFetch({ runId: 'r4' }, settings, deps());
    assert.equal(fourth.stats.rowsFetched, 90, 'a changed file is read whole');
    assert.equal(changed.rows.find((r) => r.order_id === 'O-10')!.price, '99.00');
    assert.ok(changed.rows.every((r) => r._source_updated_at === '2025-07-02T08:00:00.000Z'));
  });

  test('without validators the content is the version: an unchanged file delivers nothing, a changed one everything', async () => {
    const { deps, checkpoints } = setup();
    files.served = { body: Buffer.from(ordersCsv(30)) };
    acceptingFirehose();
    await runFetch({ runId: 'r1' }, settings, deps());
    assert.match(String(((await checkpoints.read())!.checkpoint.position as FilePosition).version), /^sha256:[0-9a-f]{64}$/);
    const again = acceptingFirehose();
    const second = await runFetch({ runId: 'r2' }, settings, deps());
    assert.deepEqual([second.stats.rowsFetched, again.rows.length], [0, 0]);
    files.served = { body: Buffer.from(ordersCsv(31)) };
    const changed = acceptingFirehose();
    assert.equal((await runFetch({ runId: 'r3' }, settings, deps())).stats.rowsFetched, 31);
    assert.equal(changed.rows.length, 31);
  });

  test('a run cut by the time budget goes on at its next record in the next invocation, every row once', async () => {
    const { deps } = setup();
    files.served = { body: gzipSync(ordersCsv(500)), etag: '"gz"' };
    const delivered = acceptingFirehose();
    let n = 0;
    // Each invocation has the budget for about two pages of 50 rows.
    const invocation = () => {
      n = 0;
      return () => (++n <= 2 ? 600_000 : 10);
    };
    const perInvocation: number[] = [];
    let out = await runFetch({ runId: 'r1' }, settings, deps(invocation()));
    perInvocation.push(out.stats.rowsFetched);
    let invocations = 1;
    // Bounded: a resume that re-read from the start would otherwise deliver forever.
    while (!out.done && invocations < 30) {
      out = await runFetch({ runId: 'r1', cursor: JSON.parse(JSON.stringify(out.cursor)) }, settings, deps(invocation()));
      perInvocation.push(out.stats.rowsFetched);
      invocations++;
    }
    assert.ok(out.done && invocations > 3, `${invocations} invocations: ${perInvocation.join(', ')} rows`);
    assert.ok(files.requests.slice(-invocations + 1).every((h) => h['if-none-match'] === undefined), 'a resumed read mid-file is not conditional');
    assert.deepEqual(sortedIds(delivered.rows, 'order_id'), Array.from({ length: 500 }, (_, i) => `O-${i + 1}`).sort(), 'gunzipped, every row once');
  });

  test('NDJSON: an invalid line is quarantined with its line; the key scan lists the file\'s keys; the repair reads rows by key', async () => {
    const { store, deps } = setup();
    const lines = Array.from({ length: 60 }, (_, i) => JSON.stringify({ order_id: `N-${i}`, data: { amount: i } }));
    lines.splice(10, 0, '{"order_id": "broken"');
    files.served = { body: Buffer.from(`${lines.join('\n')}\n`), etag: '"nd"' };
    acceptingFirehose();
    const out = await runFetch({ runId: 'r1' }, settings, deps(undefined, 'ndjson'));
    assert.deepEqual([out.stats.rowsDelivered, out.stats.quarantinedMalformed], [60, 1]);
    assert.match((await quarantined(store))[0]!.detail, /line 11: /);

    const scan = await runKeyScan({ runId: 'r1' }, keyScanSettings({ datasetName: 'orders', primaryKey: 'order_id', keyPageSize: 25 }), deps(undefined, 'ndjson'));
    assert.deepEqual([scan.done, scan.stats.keys, scan.stats.rowsWithoutKey], [true, 60, 1]);

    await store.put(missingKeysKey({ name: 'orders' }, 'r1'), gzipSync(encodeKeyList(['N-5', 'N-59'])));
    const repaired = acceptingFirehose();
    const repair = await runRepair({ runId: 'r1' }, settings, deps(undefined, 'ndjson'));
    assert.equal(repair.done, true);
    assert.deepEqual(sortedIds(repaired.rows, 'order_id'), ['N-5', 'N-59']);
    assert.deepEqual(repaired.rows.find((r) => r.order_id === 'N-5')!.data, { amount: 5 });
  });

  test('the fetcher configuration selects it: SOURCE_TYPE=file with SOURCE_URL and SOURCE_FORMAT, each checked', () => {
    const env = { DATASET_NAME: 'orders', PRIMARY_KEY: 'order_id', PAGE_SIZE: '100', LOOKBACK_MINUTES: '0', REQUEST_TIMEOUT_SECONDS: '30', MAX_ATTEMPTS: '3', DELIVERY_STREAM_NAME: 's', STATE_LOCATION: '/tmp/x' };
    const config = readFetcherConfig({ ...env, SOURCE_TYPE: 'file', SOURCE_URL: files.url, SOURCE_FORMAT: 'csv' });
    assert.deepEqual(config.file, { url: files.url, format: 'csv', compression: 'auto' });
    assert.ok(openSource(config) instanceof HttpFileSource);
    assert.throws(() => readFetcherConfig({ ...env, SOURCE_TYPE: 'file', SOURCE_URL: 'ftp://x/y', SOURCE_FORMAT: 'xml' }), /SOURCE_URL="ftp:\/\/x\/y" must be an http\(s\) URL[\s\S]*SOURCE_FORMAT must be csv, ndjson or json, not "xml"/);
  });
});
