/**
 * A CKAN DataStore resource as a source (sources/ckan/), through the real row fetch and key scan,
 * against the local CKAN server (local/ckan-server.ts) over HTTP: exact through inserts, updates,
 * deletions and a re-upload; a limit CKAN caps silently; a resource changed mid-read; an ignored
 * sort; CKAN's error shape with 4xx/5xx and with 200; a body sent slowly.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { LocalObjectStore } from '../../runtime/object-store';
import { CheckpointStore } from '../../lambdas/fetcher/checkpoint-store';
import { readFetcherConfig } from '../../lambdas/fetcher/config';
import { runFetch, type FetchSettings } from '../../lambdas/fetcher/fetch-run';
import { runKeyScan } from '../../lambdas/fetcher/key-scan';
import { openSource } from '../../lambdas/fetcher/sources/registry';
import { CkanDatastoreSource, type CkanPosition } from '../../lambdas/fetcher/sources/ckan/ckan-source';
import { CkanSourceError } from '../../lambdas/fetcher/sources/ckan/ckan-api';
import { CkanServer, type CkanRecord } from '../../local/ckan-server';
import { acceptingFirehose, recordingRetry, sortedIds, wholeSourceDeps } from './harness';
import { keyScanSettings, rowFetchSettings } from '../support/fetch-settings';

const RESOURCE = '0a1b2c3d-0000-4000-8000-000000000001';
const FIELDS = [
  { id: 'station', type: 'text' },
  { id: 'reading', type: 'numeric' },
  { id: 'count', type: 'int' },
  { id: 'measured_at', type: 'timestamp' },
  { id: 'valid', type: 'bool' },
  { id: 'extra', type: 'json' },
];

function record(i: number): CkanRecord {
  return { station: `S-${i}`, reading: i * 1.25, count: i, measured_at: `2024-03-0${1 + (i % 9)}T10:00:0${i % 10}.123456`, valid: i % 2 === 0, extra: { n: i } };
}

const settings: FetchSettings = rowFetchSettings({ datasetName: 'stations', primaryKey: 'station', pageSize: 1000 });

describe('a CKAN DataStore resource as a source', () => {
  let ckan: CkanServer;
  before(async () => {
    ckan = new CkanServer({ resourceId: RESOURCE, prefix: '/data', fields: FIELDS, records: [], lastModified: '2024-03-01T08:00:00.000000' });
    await ckan.start();
  });
  after(() => ckan.close());

  function setup(records: CkanRecord[], opts: { rowsMax?: number } = {}) {
    ckan.rowsMax = opts.rowsMax ?? 32_000;
    ckan.reset(records, '2024-03-01T08:00:00.000000');
    ckan.requests.length = 0;
    ckan.setFaults([]);
    const store = new LocalObjectStore(mkdtempSync(path.join(tmpdir(), 'ckan-source-')));
    const checkpoints = new CheckpointStore(store, settings.datasetName);
    const retry = recordingRetry(3);
    const source = () =>
      new CkanDatastoreSource({ datasetName: 'stations', url: ckan.datastoreUrl(), endpoint: ckan.origin, primaryKey: 'station', timeoutMs: 2_000, retry, now: () => new Date('2025-07-01T00:00:00Z') });
    const deps = () => wholeSourceDeps(source(), store, checkpoints);
    return { store, checkpoints, deps, source, retry };
  }

  /** Every row a fresh source reads from `after`, page by page, and the last position. */
  async function readAll(source: CkanDatastoreSource, from: CkanPosition | null = null, limit = 1000) {
    const rows: Record<string, unknown>[] = [];
    let at = from;
    for (;;) {
      let n = 0;
      await source.streamPage({ after: at, limit, onRow: (row, p) => void (rows.push(row), (at = p), n++) });
      if (!n) return { rows, at };
    }
  }

  beforeEach(() => ckan.setFaults([]));

  test('a limit capped silently (rows_max 7) still reads every row once: the page size is what came back, the end is total', async () => {
    const { deps, checkpoints } = setup(Array.from({ length: 25 }, (_, i) => record(i + 1)), { rowsMax: 7 });
    const delivered = acceptingFirehose();
    const out = await runFetch({ runId: 'r1' }, settings, deps());
    assert.equal(out.done, true);
    assert.deepEqual(sortedIds(delivered.rows, 'station'), Array.from({ length: 25 }, (_, i) => `S-${i + 1}`).sort());
    assert.equal(delivered.rows.length, 25, 'each row once');
    const searches = ckan.requests.filter((r) => r.action === 'datastore_search');
    assert.ok(searches.every((r) => r.params.sort === '_id asc'));
    assert.equal(searches[0]!.params.limit, '1000', 'asked for the page size, answered 7');
    const s3 = delivered.rows.find((r) => r.station === 'S-3')!;
    assert.deepEqual(
      [s3.reading, s3.count, s3.measured_at, s3.valid, s3.extra, s3._source_id, s3._source_updated_at],
      ['3.75', '3', '2024-03-04T10:00:03.123', 'false', { n: 3 }, '3', '2024-03-01T08:00:00.000Z'],
      'values in the raw zone\'s shape; _id is the source id, last_modified the version time',
    );
    assert.equal('_id' in s3, false);
    const cp = (await checkpoints.read())!.checkpoint;
    assert.deepEqual([cp.format, cp.position, cp.source], ['ckan-datastore/1', { version: 'modified:2024-03-01T08:00:00.000000', offset: 25, lastId: 25, total: 25, end: true }, { type: 'ckan', url: ckan.datastoreUrl() }]);
  });

  test('exact through inserts, updates and deletions: unchanged reads nothing, a changed resource is read whole, the key scan lists only current keys', async () => {
    const { deps, source } = setup(Array.from({ length: 12 }, (_, i) => record(i + 1)), { rowsMax: 5 });
    acceptingFirehose();
    await runFetch({ runId: 'r1' }, settings, deps());

    const before = ckan.requests.length;
    const idle = acceptingFirehose();
    const second = await runFetch({ runId: 'r2' }, settings, deps());
    assert.deepEqual([second.done, second.stats.rowsFetched, idle.rows.length], [true, 0, 0]);
    assert.deepEqual(ckan.requests.slice(before).map((r) => r.action), ['resource_show', 'datastore_search'], 'the cheap check: the version and the last row');

    ckan.insert([record(13)]);
    ckan.update('station', 'S-2', { reading: 99.5 });
    ckan.delete('station', 'S-7');
    const changed = acceptingFirehose();
    const third = await runFetch({ runId: 'r3' }, settings, deps());
    assert.equal(third.stats.rowsFetched, 12, 'read whole: 12 - 1 + 1');
    assert.equal(changed.rows.find((r) => r.station === 'S-2')!.reading, '99.5');
    assert.ok(changed.rows.some((r) => r.station === 'S-13'));

    const scan = await runKeyScan({ runId: 'r3' }, keyScanSettings({ datasetName: 'stations', primaryKey: 'station', keyPageSize: 4 }), deps());
    assert.deepEqual([scan.done, scan.stats.keys], [true, 12]);
    const { rows } = await readAll(source());
    assert.deepEqual(rows.map((r) => r.station).sort(), ckan.records().map((r) => r.station).sort());
    assert.ok(!rows.some((r) => r.station === 'S-7'));
  });

  test('a change that leaves last_modified alone (a quiet datastore_upsert insert) is seen by total; a re-upload renumbering _id is read whole', async () => {
    const { deps } = setup(Array.from({ length: 6 }, (_, i) => record(i + 1)));
    acceptingFirehose();
    await runFetch({ runId: 'r1' }, settings, deps());
    ckan.insert([record(7)], true);
    const quiet = acceptingFirehose();
    const second = await runFetch({ runId: 'r2' }, settings, deps());
    assert.equal(second.stats.rowsFetched, 7);
    assert.ok(quiet.rows.some((r) => r.station === 'S-7'));

    ckan.delete('station', 'S-1', true);
    ckan.reload();
    const reloaded = acceptingFirehose();
    const third = await runFetch({ runId: 'r3' }, settings, deps());
    assert.deepEqual(sortedIds(reloaded.rows, 'station'), ['S-2', 'S-3', 'S-4', 'S-5', 'S-6', 'S-7']);
    assert.equal(third.stats.rowsFetched, 6);
  });

  test('changed between two pages: read again from the first row once; changed again: a clear failure', async () => {
    const { source } = setup(Array.from({ length: 10 }, (_, i) => record(i + 1)));
    const s = source();
    const first: string[] = [];
    let at: CkanPosition | null = null;
    await s.streamPage({ after: null, limit: 4, onRow: (row, p) => void (first.push(row.station as string), (at = p)) });
    assert.deepEqual(first, ['S-1', 'S-2', 'S-3', 'S-4']);
    ckan.delete('station', 'S-2', true); // offsets shift; same last_modified, total 9
    const again: string[] = [];
    await s.streamPage({ after: at, limit: 4, onRow: (row, p) => void (again.push(row.station as string), (at = p)) });
    assert.deepEqual(again, ['S-1', 'S-3', 'S-4', 'S-5'], 'from the first row of the changed table, not S-6 onwards (S-5 would be skipped)');
    ckan.delete('station', 'S-3', true);
    await assert.rejects(
      s.streamPage({ after: at, limit: 4, onRow: () => undefined }),
      (err: Error) => err instanceof CkanSourceError && /changed twice while it was read \(its row count went from 9 to 8\)/.test(err.message),
    );
  });

  test('a resumed read checks the row before its position: a deletion before it (same total after an insert) is not skipped over', async () => {
    const { source } = setup(Array.from({ length: 8 }, (_, i) => record(i + 1)));
    const s = source();
    let at: CkanPosition | null = null;
    await s.streamPage({ after: null, limit: 5, onRow: (_row, p) => void (at = p) });
    ckan.delete('station', 'S-3', true);
    ckan.insert([record(9)], true); // total back to 8
    const next = await readAll(source(), at);
    assert.equal(next.rows[0]!.station, 'S-1', 'the row at offset 4 is no longer _id 5: read again whole');
    assert.equal(next.rows.length, 8);
  });

  test('a portal that ignores sort fails the page before any row of it is taken', async () => {
    const { source } = setup(Array.from({ length: 5 }, (_, i) => record(i + 1)));
    ckan.setFaults([{ kind: 'ignore-sort', times: 1, action: 'datastore_search' }]);
    let taken = 0;
    await assert.rejects(
      source().streamPage({ after: null, limit: 100, onRow: () => void taken++ }),
      (err: Error) => err instanceof CkanSourceError && /_id 4 follows _id 5 \(sort=_id asc was not applied\)/.test(err.message),
    );
    assert.equal(taken, 0);
  });

  test('CKAN errors by type: Internal Server Error (500) retried; Not Found Error with HTTP 200 or 404 not retried; an HTML 502 retried', async () => {
    const { source, retry } = setup(Array.from({ length: 3 }, (_, i) => record(i + 1)));
    ckan.setFaults([
      { kind: 'error', status: 500, type: 'Internal Server Error', message: 'database timeout', times: 1, action: 'datastore_search' },
      { kind: 'html', status: 502, times: 1, action: 'datastore_search' },
    ]);
    const { rows } = await readAll(source());
    assert.equal(rows.length, 3);
    assert.equal(retry.delays.length, 2, 'two retries');

    for (const status of [200, 404]) {
      ckan.requests.length = 0;
      ckan.setFaults([{ kind: 'error', status, type: 'Not Found Error', message: 'Resource "x" was not found.', times: 5, action: 'resource_show' }]);
      await assert.rejects(
        source().streamPage({ after: null, limit: 10, onRow: () => undefined }),
        (err: Error) => err instanceof CkanSourceError && err.message.includes(`HTTP ${status}, CKAN Not Found Error: Resource "x" was not found.`) && /check source\.url/.test(err.message),
      );
      assert.equal(ckan.requests.length, 1, `HTTP ${status}: one request, no retry`);
    }
  });

  test('a body trickled past the deadline fails the attempt, which is retried', async () => {
    const { retry } = setup(Array.from({ length: 3 }, (_, i) => record(i + 1)));
    const slow = new CkanDatastoreSource({ datasetName: 'stations', url: ckan.datastoreUrl(), endpoint: ckan.origin, primaryKey: 'station', timeoutMs: 300, retry });
    ckan.setFaults([{ kind: 'slow', delayMs: 100, times: 1, action: 'datastore_search' }]);
    const { rows } = await readAll(slow);
    assert.equal(rows.length, 3);
    assert.equal(retry.delays.length, 1);
  });

  test('the fetcher configuration selects it: SOURCE_TYPE=ckan with a datastore_search URL, checked', () => {
    const env = { DATASET_NAME: 'stations', PRIMARY_KEY: 'station', PAGE_SIZE: '100', LOOKBACK_MINUTES: '0', REQUEST_TIMEOUT_SECONDS: '30', MAX_ATTEMPTS: '3', DELIVERY_STREAM_NAME: 's', STATE_LOCATION: '/tmp/x' };
    const config = readFetcherConfig({ ...env, SOURCE_TYPE: 'ckan', SOURCE_URL: ckan.datastoreUrl() });
    assert.deepEqual(config.ckan, { url: ckan.datastoreUrl() });
    assert.deepEqual(openSource(config).identity, { type: 'ckan', url: ckan.datastoreUrl() });
    assert.throws(() => readFetcherConfig({ ...env, SOURCE_TYPE: 'ckan', SOURCE_URL: 'https://ckan.example.org/dataset/x' }), /SOURCE_URL=.* must be https:\/\/<portal>\/api\/3\/action\/datastore_search\?resource_id=/);
  });
});
