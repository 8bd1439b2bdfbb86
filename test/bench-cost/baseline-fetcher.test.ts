import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { FirehoseClient } from '@aws-sdk/client-firehose';
import { LocalObjectStore } from '../../runtime/object-store';
import { startFirehoseServer } from '../../local/firehose-server';
import { startSocrataServer } from '../../local/socrata-server';
import { runBaselineFetch } from '../../bench/baseline-fetcher';
import { billedIngestionBytes, billedRecordBytes } from '../../local/firehose-billing';

describe('Firehose billing', () => {
  test('each record is rounded up to the next 5 KB (5,120 bytes)', () => {
    assert.equal(billedRecordBytes(1), 5120);
    assert.equal(billedRecordBytes(5120), 5120);
    assert.equal(billedRecordBytes(5121), 10240);
    assert.equal(billedRecordBytes(0), 5120);
    // The pricing page's examples: a 3 KB record bills as 5 KB, a 12 KB one as 15 KB, 42 KB as 45 KB.
    assert.equal(billedRecordBytes(3 * 1024), 5 * 1024);
    assert.equal(billedRecordBytes(12 * 1024), 15 * 1024);
    assert.equal(billedRecordBytes(42 * 1024), 45 * 1024);
    // Per record, not per call: two 1 KB records are 10 KB.
    assert.equal(billedIngestionBytes([1024, 1024]), 10240);
    // A packed 1,000 KiB record wastes under 0.5%.
    assert.equal(billedIngestionBytes([1_024_000]), 1_024_000);
    assert.throws(() => billedRecordBytes(-1));
  });
});

/** Rows shaped like the SF source: incident_number not unique (exposures share it). */
function sourceRows(n: number): Array<Record<string, string>> {
  return Array.from({ length: n }, (_, i) => ({
    incident_number: String(23000000 + Math.floor(i / 2)),
    exposure_number: String(i % 2),
    id: `${23000000 + Math.floor(i / 2)}${i % 2}`,
    battalion: `B0${(i % 9) + 1}`,
  }));
}

/** A minimal Socrata responder: $limit, $offset, $order=incident_number (stable), records the URLs asked. */
async function startSource(rows: Array<Record<string, string>>) {
  const sorted = [...rows].sort((a, b) => a.incident_number!.localeCompare(b.incident_number!));
  const urls: string[] = [];
  const server = createServer((req, res) => {
    urls.push(req.url ?? '');
    const u = new URL(req.url ?? '/', 'http://x');
    const limit = Number(u.searchParams.get('$limit') ?? 1000);
    const offset = Number(u.searchParams.get('$offset') ?? 0);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(sorted.slice(offset, offset + limit)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, urls, close: () => new Promise((r) => server.close(r)) };
}

describe('baseline fetcher (the earlier design)', () => {
  test('offset pages of 50,000 ordered by incident_number, one record per row, 500 per call, failures ignored', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'baseline-'));
    const rows = sourceRows(100_250);
    const source = await startSource(rows);
    const store = new LocalObjectStore(dir);
    const firehose = await startFirehoseServer({
      store,
      streams: [{ name: 'sf-fire-incidents-raw', dataPrefix: 'raw/sf-fire-incidents/ingest_date=!{timestamp:yyyy-MM-dd}/', errorPrefix: 'errors/!{firehose:error-output-type}/', bufferingIntervalSeconds: 900, bufferingSizeMiB: 128 }],
      faults: { failEveryNthRecord: 1000 },
    });
    try {
      const client = new FirehoseClient({ endpoint: firehose.url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
      const stats = await runBaselineFetch({ sourceUrl: source.url, datasetId: 'wr8u-xric', firehose: client, streamName: 'sf-fire-incidents-raw' });

      assert.deepEqual(
        source.urls.map((u) => decodeURIComponent(u)),
        [0, 50_000, 100_000].map((o) => `/resource/wr8u-xric.json?$limit=50000&$offset=${o}&$order=incident_number`),
      );
      assert.equal(stats.rows, 100_250);
      assert.equal(stats.pages, 3);
      assert.equal(stats.records, 100_250);
      assert.equal(stats.putCalls, 100 + 100 + 1);
      const expectedLines = [...rows].sort((a, b) => a.incident_number!.localeCompare(b.incident_number!)).map((r) => JSON.stringify(r) + '\n');
      const payload = expectedLines.reduce((s, l) => s + Buffer.byteLength(l), 0);
      assert.equal(stats.payloadBytes, payload);
      assert.equal(stats.billedBytes, 100_250 * 5120, 'every small row billed as 5 KB');
      assert.equal(firehose.counters().putRecordBatchCalls, 201);
      // FailedPutCount was ignored: every 1000th row is lost, and the run still "succeeds".
      assert.equal(stats.failedRecordsIgnored, 100);
      await firehose.flush();
      const delivered = Buffer.concat(await Promise.all((await store.list('raw/')).map(async (k) => gunzipSync((await store.get(k))!.body)))).toString();
      const lines = delivered.split('\n').filter(Boolean);
      assert.equal(lines.length, 100_250 - 100);
    } finally {
      await firehose.close();
      await source.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('baseline fetcher against the local Socrata server', () => {
  test('delivers every generated row once (no concurrent changes) and bills each as at least 5 KB', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'baseline-socrata-'));
    const source = await startSocrataServer({ rows: 3_000, seed: 7 });
    const store = new LocalObjectStore(dir);
    const firehose = await startFirehoseServer({
      store,
      streams: [{ name: 's', dataPrefix: 'raw/x/ingest_date=!{timestamp:yyyy-MM-dd}/', errorPrefix: 'errors/!{firehose:error-output-type}/', bufferingIntervalSeconds: 900, bufferingSizeMiB: 64 }],
    });
    try {
      const client = new FirehoseClient({ endpoint: firehose.url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
      const stats = await runBaselineFetch({ sourceUrl: source.url, datasetId: source.datasetId, firehose: client, streamName: 's' });
      assert.equal(stats.rows, 3_000);
      assert.equal(stats.pages, 1);
      assert.equal(stats.putCalls, 6);
      assert.ok(stats.billedBytes / stats.payloadBytes >= 2, `billed/payload ${(stats.billedBytes / stats.payloadBytes).toFixed(2)} on SF-shaped rows`);
      await firehose.flush();
      const delivered = Buffer.concat(await Promise.all((await store.list('raw/')).map(async (k) => gunzipSync((await store.get(k))!.body)))).toString();
      const ids = delivered.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id);
      const sourceIds = source.rows.map((r) => String(r.id));
      assert.deepEqual([...ids].sort(), [...sourceIds].sort());
      assert.equal(Buffer.byteLength(delivered), stats.payloadBytes);
    } finally {
      await firehose.close();
      await source.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
