/**
 * The key scan and the repair phase against the local Socrata server, over real HTTP: the
 * source's complete key set lands as gzipped key lists with _SUCCESS only when complete, the
 * cadence skips a recent scan, and repair fetches missing rows by key into Firehose.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { FirehoseClient } from '@aws-sdk/client-firehose';
import type { SocrataServer } from '../../local/socrata-server';
import { encodeKeyList } from '../../runtime/key-list';
import { LocalObjectStore } from '../../runtime/object-store';
import { keysetLatestKey, keysetRunPrefix, keysetSuccessKey, missingKeysKey } from '../../runtime/storage-layout';
import { FirehoseDelivery } from '../../lambdas/fetcher/firehose-delivery';
import { runKeyScan, type KeyScanOutput, type KeyScanSettings, type KeysetSuccess } from '../../lambdas/fetcher/key-scan';
import { readMissingKeys, runRepair, type RepairDeps, type RepairOutput } from '../../lambdas/fetcher/repair';
import { keyChunks, KEYSET_POSITIONS, SocrataSource } from '../../lambdas/fetcher/sources/socrata/socrata-source';
import type { FetchSettings } from '../../lambdas/fetcher/fetch-run';
import { SocrataClient } from '../../lambdas/fetcher/sources/socrata/socrata-client';
import { acceptingFirehose, recordingRetry, sortedIds } from './harness';
import { suiteSocrataServer } from '../support/suite-fixtures';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { fetcherEnvironment } from '../../runtime/fetcher-environment';
import { readFetcherConfig } from '../../lambdas/fetcher/config';
import { keyScanSettings, rowFetchSettings } from '../support/fetch-settings';

const DATASET = 'sf-fire-incidents';
const source = { domain: 'data.sfgov.org', datasetId: 'wr8u-xric' };

function client(server: SocrataServer, onRetry?: () => void): SocrataClient {
  return new SocrataClient({
    datasetName: DATASET,
    baseUrl: server.url,
    datasetId: server.datasetId,
    timeoutMs: 5_000,
    retry: recordingRetry(3),
    ...(onRetry ? { onRetry } : {}),
  });
}

/** The Socrata adapter over a client, recording `identity` as the source. */
const adapter = (c: SocrataClient, identity: { domain: string; datasetId: string } = source): SocrataSource => new SocrataSource(c, identity, 'id');

/** A repair's collaborators: deliveries to the test's Firehose (acceptingFirehose), a fixed clock, ample time. */
const repairDeps = <P>(source: RepairDeps<P>['source'], store: LocalObjectStore): RepairDeps<P> => ({
  source,
  delivery: new FirehoseDelivery(new FirehoseClient({ region: 'us-east-1' }), 'test-stream', recordingRetry(3)),
  store,
  clock: () => new Date('2025-07-01T12:00:00Z'),
  remainingTimeMs: () => 600_000,
});

const scanSettings = (o: Partial<KeyScanSettings> = {}): KeyScanSettings => keyScanSettings({ datasetName: DATASET, primaryKey: 'id', keyPageSize: 400, ...o });

async function keysOf(store: LocalObjectStore, runId: string): Promise<string[]> {
  const parts = (await store.list(keysetRunPrefix({ name: DATASET }, runId))).filter((k) => /\/part-\d{5}\.jsonl\.gz$/.test(k));
  const keys: string[] = [];
  for (const p of parts) keys.push(...gunzipSync((await store.get(p))!.body).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as string));
  return keys;
}

describe('key scan', () => {
  let server: SocrataServer;
  suiteSocrataServer({ rows: 1_234, seed: 11 }, (s) => (server = s));

  test('lists every source key once, ids only, keyset-paged on :id, and writes _SUCCESS last', async () => {
    const store = new LocalObjectStore(mkdtempSync(path.join(tmpdir(), 'keys-')));
    const firstRequest = server.requests.length;
    const out = await runKeyScan({ runId: 'r1' }, scanSettings(), { source: adapter(client(server)), store, clock: () => new Date('2025-07-01T12:00:00Z'), remainingTimeMs: () => 600_000 });
    assert.equal(out.done, true);
    assert.equal(out.stats.keys, 1_234);
    assert.deepEqual((await keysOf(store, 'r1')).sort(), sortedIds(server.rows, 'id'));
    const success = JSON.parse((await store.get(keysetSuccessKey({ name: DATASET }, 'r1')))!.body.toString()) as KeysetSuccess;
    assert.deepEqual({ keys: success.keys, parts: success.parts, source: success.source, runId: success.runId }, { keys: 1_234, parts: 4, source: { type: 'socrata', ...source }, runId: 'r1' });
    assert.ok(await store.get(keysetLatestKey({ name: DATASET })), 'the cadence pointer is written');
    const requests = server.requests.slice(firstRequest);
    assert.equal(requests.length, 5, 'four pages and the empty page that ends the scan');
    for (const r of requests) {
      assert.equal(r.params.$select, 'id, :id', 'ids only');
      assert.equal(r.params.$order, ':id');
      assert.equal(r.params.$limit, '400');
    }
    assert.equal(requests[0]!.params.$where, undefined);
    assert.match(requests[1]!.params.$where!, /^:id > '/);
  });

  test('a scan cut short by the time budget resumes from its cursor; no _SUCCESS until it completes', async () => {
    const store = new LocalObjectStore(mkdtempSync(path.join(tmpdir(), 'keys-')));
    let remaining = 600_000;
    const c = client(server);
    const deps = { source: adapter(c), store, clock: () => new Date(), remainingTimeMs: () => remaining };
    // After the first page the budget is gone: the invocation returns its cursor.
    const realFetch = c.fetchPage.bind(c);
    c.fetchPage = async (q) => {
      const rows = await realFetch(q);
      remaining = 500;
      return rows;
    };
    let out: KeyScanOutput = await runKeyScan({ runId: 'r2' }, scanSettings(), deps);
    assert.equal(out.done, false);
    assert.equal(out.stats.pages, 1);
    assert.equal(await store.get(keysetSuccessKey({ name: DATASET }, 'r2')), undefined, 'an incomplete scan has no _SUCCESS');
    let invocations = 1;
    while (!out.done) {
      remaining = 600_000;
      out = await runKeyScan({ runId: 'r2', cursor: out.cursor }, scanSettings(), deps);
      invocations++;
    }
    assert.equal(invocations, 5);
    assert.deepEqual((await keysOf(store, 'r2')).sort(), sortedIds(server.rows, 'id'));
    assert.ok(await store.get(keysetSuccessKey({ name: DATASET }, 'r2')));
  });

  test('a source failing mid-scan leaves the scan without _SUCCESS (it deletes nothing) and names the URL', async () => {
    const store = new LocalObjectStore(mkdtempSync(path.join(tmpdir(), 'keys-')));
    const n = server.requests.length;
    server.setFaults([{ kind: 'status', status: 503, requests: [n + 2, n + 3, n + 4] }]);
    try {
      await assert.rejects(
        runKeyScan({ runId: 'r3' }, scanSettings(), { source: adapter(client(server)), store, clock: () => new Date(), remainingTimeMs: () => 600_000 }),
        /Socrata request for dataset sf-fire-incidents failed \(HTTP 503.*\$select=id, :id/,
      );
    } finally {
      server.setFaults([]);
    }
    assert.equal(await store.get(keysetSuccessKey({ name: DATASET }, 'r3')), undefined);
    assert.equal((await keysOf(store, 'r3')).length, 400, 'the first page was listed, nothing more');
  });

  test('a source that ignores $where on :id fails the page invariants instead of looping', async () => {
    const store = new LocalObjectStore(mkdtempSync(path.join(tmpdir(), 'keys-')));
    const c = client(server);
    const real = c.fetchPage.bind(c);
    c.fetchPage = (q) => real({ ...q, where: undefined } as typeof q);
    // Bounded, so a scan without the invariant ends (and fails the assertion) instead of hanging.
    let calls = 0;
    await assert.rejects(
      runKeyScan({ runId: 'r4' }, scanSettings(), { source: adapter(c), store, clock: () => new Date(), remainingTimeMs: () => (++calls > 20 ? 0 : 600_000) }),
      /breaks keyset paging: row 1 \(:id .*\) is not after the requested position/,
    );
  });

  test('cadence: a scan younger than scanEveryHours is skipped quickly; an older one, another source, or detect false', async () => {
    const store = new LocalObjectStore(mkdtempSync(path.join(tmpdir(), 'keys-')));
    const at = (iso: string, identity = source) => ({ source: adapter(client(server), identity), store, clock: () => new Date(iso), remainingTimeMs: () => 600_000 });
    const s = scanSettings({ scanEveryHours: 24 });
    assert.equal((await runKeyScan({ runId: 'a' }, s, at('2025-07-01T00:00:00Z'))).skipped, undefined, 'no scan yet: due');
    const before = server.requests.length;
    const skipped = await runKeyScan({ runId: 'b' }, s, at('2025-07-01T23:00:00Z'));
    assert.deepEqual([skipped.done, skipped.skipped], [true, 'not due']);
    assert.equal(server.requests.length, before, 'a skipped scan asks the source nothing');
    assert.equal(await store.get(keysetSuccessKey({ name: DATASET }, 'b')), undefined);
    assert.equal((await runKeyScan({ runId: 'c' }, s, at('2025-07-02T00:00:01Z'))).skipped, undefined, '24 hours later: due');
    const other = { domain: 'data.example.org', datasetId: 'abcd-1234' };
    assert.equal((await runKeyScan({ runId: 'd' }, s, at('2025-07-02T00:00:02Z', other))).skipped, undefined, 'a scan of another source does not count');
    const off = await runKeyScan({ runId: 'e' }, scanSettings({ detect: false }), at('2025-07-03T00:00:00Z'));
    assert.deepEqual([off.done, off.skipped], [true, 'disabled']);
  });
});

describe('repair', () => {
  let server: SocrataServer;
  suiteSocrataServer({ rows: 900, seed: 12 }, (s) => (server = s));

  const settings: FetchSettings = rowFetchSettings({ datasetName: DATASET, primaryKey: 'id', pointColumns: ['point'], pageSize: 50 });

  test('fetches exactly the missing keys by key, in URLs under 8 KB, into Firehose as raw rows; the checkpoint is not touched', async () => {
    const store = new LocalObjectStore(mkdtempSync(path.join(tmpdir(), 'repair-')));
    const wanted = server.rows.filter((_, i) => i % 3 === 0).map((r) => String(r.id));
    await store.put(missingKeysKey({ name: DATASET }, 'r1'), gzipSync(encodeKeyList(wanted)));
    const delivered = acceptingFirehose();
    const n = server.requests.length;
    let out: RepairOutput = await runRepair({ runId: 'r1' }, settings, repairDeps(adapter(client(server)), store));
    assert.equal(out.done, true);
    assert.equal(out.stats.keysRequested, 300);
    assert.equal(out.stats.rowsDelivered, 300);
    assert.deepEqual(sortedIds(delivered.rows, 'id'), [...wanted].sort());
    assert.ok(delivered.rows.every((r) => r._run_id === 'r1' && typeof r._source_id === 'string'), 'raw rows like the row fetch writes');
    const requests = server.requests.slice(n);
    assert.ok(requests.length > 1, 'several key chunks');
    for (const r of requests) {
      const url = `${server.url}/resource/${server.datasetId}.json?${new URLSearchParams(r.params).toString()}`;
      assert.ok(url.length < 8_192, `URL of ${url.length} bytes`);
      assert.match(r.params.$where!, /^\(?id in \(/);
      assert.equal(r.params.$select, ':*,*');
    }
    assert.deepEqual(await store.list('checkpoints/'), [], 'no checkpoint written');
    // No file for a run: nothing to repair, no request.
    const m = server.requests.length;
    out = await runRepair({ runId: 'none' }, settings, { source: adapter(client(server)), delivery: { deliver: () => assert.fail('no delivery') }, store, clock: () => new Date(), remainingTimeMs: () => 600_000 });
    assert.deepEqual([out.done, out.skipped], [true, 'nothing to repair']);
    assert.equal(server.requests.length, m);
  });

  test('key chunks: every key once, each chunk within the byte limit, quotes escaped', () => {
    const keys = Array.from({ length: 2_000 }, (_, i) => `k'${i}`);
    const chunks = keyChunks('id', keys, 1_000);
    assert.ok(chunks.length > 10);
    for (const c of chunks) assert.ok(new URLSearchParams({ w: c }).toString().length - 2 <= 1_000);
    const back = chunks.flatMap((c) => [...c.matchAll(/'((?:[^']|'')*)'/g)].map((m) => m[1]!.replace(/''/g, "'")));
    assert.deepEqual(back, keys);
    assert.throws(() => keyChunks('id', ['x'.repeat(2_000)], 1_000), /too long to fetch by key/);
  });
});

test('the CDK passes the dataset\'s deletions cadence to the fetcher in exactly the variables it reads', () => {
  const fire = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'));
  const env = (deletions: typeof fire.deletions) =>
    readFetcherConfig(fetcherEnvironment({ dataset: { ...fire, deletions }, deliveryStreamName: 's', stateLocation: 's3://raw', metricsNamespace: 'ns' }));
  assert.deepEqual(env({ detect: false, scanEveryHours: 12, maxDeleteShare: 0.3 }).deletions, { detect: false, scanEveryHours: 12 });
  assert.deepEqual(env(fire.deletions).deletions, { detect: true, scanEveryHours: 0 });
});

describe('keys of any text, and keys that are no scalar', () => {
  // A newline, a NUL, a quote (SoQL's and JSON's), an emoji outside the BMP, a CR and Hive's \x01.
  const ODD_KEYS = ['pk-new\nline', 'pk-nul\u0000end', `pk-'quote"`, 'pk-emoji-\u{1F680}', 'pk-cr\r\x01'];
  let server: SocrataServer;
  let oversize: string[] = [];
  suiteSocrataServer({ rows: 40, seed: 21 }, (s) => {
    server = s;
    server.mutate({ addRows: [...ODD_KEYS.map((id) => ({ id, battalion: 'B01' })), { id: { k: 1 }, battalion: 'B02' }, { id: ['a'], battalion: 'B03' }] });
    oversize = server.mutate({ addOversize: 1 }).oversize;
  });
  const settings: FetchSettings = rowFetchSettings({ datasetName: DATASET, primaryKey: 'id', pointColumns: ['point'], pageSize: 50 });

  test('travel exactly through the key scan and the repair; object and array keys are counted, never stop the scan, and are quarantined by the repair', async () => {
    const store = new LocalObjectStore(mkdtempSync(path.join(tmpdir(), 'odd-keys-')));
    const scan = await runKeyScan({ runId: 'r1' }, scanSettings({ keyPageSize: 7 }), { source: adapter(client(server)), store, clock: () => new Date('2025-07-01T12:00:00Z'), remainingTimeMs: () => 600_000 });
    assert.equal(scan.done, true, 'the scan completes');
    assert.equal(scan.stats.rowsWithInvalidKey, 2);
    assert.equal(scan.stats.keys, 41 + ODD_KEYS.length);
    const listed = await keysOf(store, 'r1');
    for (const k of ODD_KEYS) assert.equal(listed.filter((x) => x === k).length, 1, `key ${JSON.stringify(k)} listed exactly`);
    // Each part line is one JSON string: nothing a line reader splits on.
    for (const p of (await store.list(keysetRunPrefix({ name: DATASET }, 'r1'))).filter((k) => k.includes('/part-'))) {
      for (const line of gunzipSync((await store.get(p))!.body).toString('utf8').split('\n').filter(Boolean)) {
        assert.ok(![...line].some((c) => c.charCodeAt(0) < 0x20), `no control character in ${line}`);
        assert.equal(typeof JSON.parse(line), 'string');
      }
    }

    // The transform lists the odd keys (and a row over a Firehose record) as missing; the repair
    // fetches exactly those rows by key, the large one written whole as its own raw object.
    const largeRow = server.rows.find((r) => r[':id'] === oversize[0])!;
    await store.put(missingKeysKey({ name: DATASET }, 'r1'), gzipSync(encodeKeyList([...ODD_KEYS, String(largeRow.id)])));
    const delivered = acceptingFirehose();
    const out = await runRepair({ runId: 'r1' }, settings, repairDeps(adapter(client(server)), store));
    assert.equal(out.done, true);
    assert.equal(out.stats.keysRequested, ODD_KEYS.length + 1);
    assert.deepEqual(delivered.rows.map((r) => r.id as string).sort(), [...ODD_KEYS].sort());
    assert.deepEqual([out.stats.largeRowObjects, out.stats.rowsDelivered, out.stats.rowsQuarantined], [1, ODD_KEYS.length + 1, 0]);
    const objects = await store.list('raw/');
    assert.equal(objects.length, 1);
    assert.match(objects[0]!, /^raw\/sf-fire-incidents\/ingest_date=2025-07-01\/large-row-r1-[0-9a-f]{20}\.gz$/);
    assert.equal((JSON.parse(gunzipSync(readFileSync(path.join(store.location, objects[0]!))).toString()) as { id: unknown }).id, largeRow.id);

    // A page the repair fetches with an object key in it (a source that matched it anyway): quarantined, counted.
    const objectRow = server.rows.find((r) => typeof r.id === 'object' && !Array.isArray(r.id))!;
    const okRow = server.rows.find((r) => r.id === ODD_KEYS[0])!;
    const pages = [[okRow, objectRow]] as Record<string, unknown>[][];
    const fake = { positions: KEYSET_POSITIONS, keyBatches: (keys: readonly string[]) => [keys.join()], readByKeys: () => Promise.resolve({ rows: pages.shift() ?? [], last: null }) };
    acceptingFirehose();
    const repaired = await runRepair({ runId: 'r1' }, settings, repairDeps(fake, store));
    assert.equal(repaired.done, true);
    assert.deepEqual([repaired.stats.rowsDelivered, repaired.stats.rowsQuarantined], [1, 1]);
    const q = (await store.list('quarantine/')).filter((k) => k.includes('/r1-repair-'));
    const lines = q.flatMap((k) => gunzipSync(readFileSync(path.join(store.location, k))).toString().trim().split('\n')).map((l) => JSON.parse(l) as { reason: string; row: { id: unknown } });
    assert.deepEqual(lines.map((l) => [l.reason, l.row.id]), [['invalid_primary_key', { k: 1 }]]);
  });

  test('the earlier missing-keys format (.txt.gz, a key per line) is still read', async () => {
    const store = new LocalObjectStore(mkdtempSync(path.join(tmpdir(), 'old-keys-')));
    const wanted = server.rows.slice(0, 3).map((r) => String(r.id));
    await store.put(missingKeysKey({ name: DATASET }, 'r1', 'text-lines'), gzipSync(`${wanted.join('\n')}\n`));
    assert.deepEqual(await readMissingKeys(store, DATASET, 'r1'), wanted);
  });
});
