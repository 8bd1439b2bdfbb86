/**
 * Guards against a wrong or broken source (issue 10): the checkpoint belongs to its source, a run
 * that quarantines too much fails without moving the checkpoint past those rows, and source
 * columns the dataset does not declare are reported.
 */
import { keysetCheckpoint } from '../support/checkpoint';
import { keysetOrder, sourceRows } from '../support/source-rows';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { fetcherEnvironment } from '../../runtime/fetcher-environment';
import { startSocrataServer, type SocrataServer } from '../../local/socrata-server';
import { socrataSource, loadDatasetFile } from '../../runtime/dataset-config';
import { readFetcherConfig } from '../../lambdas/fetcher/config';
import { CheckpointSourceMismatchError, QuarantineShareError } from '../../lambdas/fetcher/fetch-run';
import { acceptingFirehose, harness, sortedIds } from './harness';
import { suiteSocrataServer } from '../support/suite-fixtures';

const SF = { domain: 'data.sfgov.org', datasetId: 'wr8u-xric' };

async function rejection<T extends Error>(p: Promise<unknown>, type: new (...a: never[]) => T): Promise<T> {
  const err = await p.then(
    () => assert.fail('expected the run to fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
  return err;
}

describe('fetcher: the checkpoint belongs to its source', () => {
  let server: SocrataServer;
  suiteSocrataServer({ rows: 300, seed: 41 }, (s) => (server = s));

  test('records its source; a run against another source refuses it and says what to do', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fetcher-source-'));
    acceptingFirehose();
    const h = harness(server, { source: SF }, { dir });
    await h.run({ runId: 'sf' });
    assert.deepEqual((await h.checkpoints.read())!.checkpoint.source, { type: 'socrata', ...SF });
    assert.equal(keysetCheckpoint(await h.checkpoints.read()).id, keysetOrder(server.rows).at(-1)![':id']);

    const delivered = acceptingFirehose();
    const other = harness(server, { source: { domain: 'data.sfgov.org', datasetId: 'abcd-1234' } }, { dir });
    const before = await other.checkpoints.read();
    for (const mode of ['incremental', 'full-refresh'] as const) {
      const err = await rejection(other.run({ runId: `other-${mode}`, mode }), CheckpointSourceMismatchError);
      assert.match(err.message, /written reading data\.sfgov\.org\/wr8u-xric, but the dataset now reads data\.sfgov\.org\/abcd-1234/);
      assert.match(err.message, /new data directory .* or delete the checkpoint/);
    }
    assert.equal(delivered.rows.length, 0, 'nothing fetched from the other source');
    assert.equal((await other.checkpoints.read())!.etag, before!.etag, 'the checkpoint is untouched');
  });

  test('a checkpoint written before sources were recorded is used, and gains its source', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fetcher-legacy-'));
    const h = harness(server, { source: SF }, { dir });
    const last = keysetOrder(server.rows)[199]!;
    // As the fetcher wrote it then: the keyset position's fields at the top, no format, no source.
    await h.store.put(h.checkpoints.key, JSON.stringify({ dataset: 'sf-fire-incidents', updatedAt: String(last[':updated_at']), id: String(last[':id']), runId: 'old', writtenAt: 'x' }));
    const delivered = acceptingFirehose();
    const out = await h.run({ runId: 'after-upgrade' });
    assert.equal(out.stats.rowsFetched, 100);
    assert.equal(delivered.rows.length, 100);
    assert.deepEqual((await h.checkpoints.read())!.checkpoint.source, { type: 'socrata', ...SF });
    assert.equal(keysetCheckpoint(await h.checkpoints.read()).id, keysetOrder(server.rows).at(-1)![':id']);
  });
});

describe('fetcher: quarantine share guard', () => {
  test('a wrong source (every row without the primary key) fails on its first page; rows quarantined, no checkpoint', async () => {
    const rows = Array.from({ length: 50 }, (_, i) => ({
      ':id': `row-${1000 + i}-bbbb`,
      ':updated_at': '2024-01-01T00:00:00.000Z',
      case_id: `C${i}`,
    }));
    const server = await startSocrataServer({ rows, datasetId: 'zzzz-9999', primaryKey: 'case_id' });
    try {
      const delivered = acceptingFirehose();
      const h = harness(server, { pageSize: 20 });
      const err = await rejection(h.run({ runId: 'wrong' }), QuarantineShareError);
      assert.match(err.message, /Dataset sf-fire-incidents: every row of a page \(20\) was quarantined, above fetch\.maxQuarantineShare 0\.05/);
      assert.match(err.message, /missing primary key 20/);
      assert.match(err.message, /check the source \(127\.0\.0\.1:\d+\/zzzz-9999\) and primaryKey/);
      assert.equal(delivered.rows.length, 0);
      assert.equal(await h.checkpoints.read(), undefined);
      const keys = await h.store.list('quarantine/sf-fire-incidents/');
      // The refused page, and the next one if it was already prepared while the first was delivered.
      assert.ok(keys.length >= 1 && keys.length <= 2, `${keys.length} quarantine objects`);
      assert.equal(gunzipSync((await h.store.get(keys[0]!))!.body).toString().trim().split('\n').length, 20);
    } finally {
      await server.close();
    }
  });

  test('quarantined rows above the share fail the run before the checkpoint passes them; a higher share lets it finish', async () => {
    const server = await startSocrataServer({ rows: 400, seed: 43 });
    try {
      // 30 keyless rows, newer than the rest: they land in the last page with 100 good ones; 30 of 430 is 7%.
      server.mutate({ addKeyless: 30 });
      acceptingFirehose();
      const h = harness(server, { pageSize: 150 });
      const err = await rejection(h.run({ runId: 'share' }), QuarantineShareError);
      assert.match(err.message, /30 of 430 fetched rows were quarantined, above fetch\.maxQuarantineShare 0\.05/);
      const order = keysetOrder(server.rows);
      assert.equal(keysetCheckpoint(await h.checkpoints.read()).id, order[299]![':id'], 'the checkpoint stays before the page with the quarantined rows');

      // Under a 10% share, a page made only of quarantined rows still fails the run.
      acceptingFirehose();
      const whole = await rejection(harness(server, { pageSize: 100, maxQuarantineShare: 0.1 }).run({ runId: 'whole-page' }), QuarantineShareError);
      assert.match(whole.message, /every row of a page \(30\) was quarantined/);

      const delivered = acceptingFirehose();
      const lenient = harness(server, { pageSize: 150, maxQuarantineShare: 0.1 });
      const out = await lenient.run({ runId: 'lenient' });
      assert.equal(out.done, true);
      assert.equal(out.stats.rowsQuarantined, 30);
      assert.equal(delivered.rows.length, 400);
    } finally {
      await server.close();
    }
  });
});

describe('fetcher: schema drift', () => {
  test('source columns the dataset does not declare are reported, sorted, across invocations', async () => {
    // `early_extra` only in the first page, `late_extra` only in the last: the union needs every invocation.
    const rows = sourceRows(
      300,
      (i) => ({ id: `K${i}`, incident_number: String(i), ...(i < 50 ? { early_extra: 'x' } : {}), ...(i >= 250 ? { late_extra: 'y', box: '12' } : {}) }),
      { sourceId: (i) => `row-${1000 + i}-cccc` },
    );
    const server = await startSocrataServer({ rows, datasetId: 'drft-0001' });
    try {
      const delivered = acceptingFirehose();
      const h = harness(server, { pageSize: 100, pointColumns: [], declaredColumns: ['id', 'incident_number'] });
      let n = 0;
      let out = await h.run({ runId: 'drift' }, { remaining: () => (++n <= 1 ? 60_000 : 10) });
      assert.equal(out.done, false);
      assert.deepEqual(out.stats.undeclaredColumns, ['early_extra']);
      while (!out.done) out = await h.run({ runId: 'drift', cursor: JSON.parse(JSON.stringify(out.cursor)) });
      assert.deepEqual(out.stats.undeclaredColumns, ['box', 'early_extra', 'late_extra']);
      assert.equal(delivered.rows.length, 300, 'undeclared columns are kept in raw, not dropped');
      assert.equal(delivered.rows.filter((r) => r.late_extra === 'y').length, 50);
      const clean = await harness(server, { pointColumns: [], declaredColumns: ['id', 'incident_number', 'early_extra', 'late_extra', 'box'] }).run({ runId: 'clean' });
      assert.deepEqual(clean.stats.undeclaredColumns, []);
      const unchecked = await harness(server, { pointColumns: [] }).run({ runId: 'unchecked' });
      assert.deepEqual(unchecked.stats.undeclaredColumns, [], 'without a declared list nothing is reported');
    } finally {
      await server.close();
    }
  });
});

describe('fetcher environment for the guards', () => {
  test('the CDK passes the share and the declared columns; the fetcher reads them', () => {
    const dataset = loadDatasetFile(path.join(import.meta.dirname, '../../datasets/sf-fire-incidents.json'));
    const env = fetcherEnvironment({ dataset, deliveryStreamName: 's', stateLocation: 's3://raw', metricsNamespace: 'ns' });
    assert.equal(env.DECLARED_COLUMNS, dataset.columns.map((c) => c.name).join(','));
    assert.equal(env.MAX_QUARANTINE_SHARE, '0.05');
    assert.ok(Object.values(env).join('').length < 4_000, 'within the 4 KB Lambda environment limit');
    const config = readFetcherConfig(env);
    assert.deepEqual(config.declaredColumns, dataset.columns.map((c) => c.name));
    assert.equal(config.maxQuarantineShare, 0.05);
    const { domain, datasetId } = socrataSource(dataset, 'this test');
    assert.deepEqual(config.source, { domain, datasetId });
    assert.throws(() => readFetcherConfig({ ...env, MAX_QUARANTINE_SHARE: '5' }), /MAX_QUARANTINE_SHARE="5" must be a number between 0 and 1/);
    const { DECLARED_COLUMNS: _unused, MAX_QUARANTINE_SHARE: _unused2, ...older } = env;
    const legacy = readFetcherConfig(older);
    assert.equal(legacy.maxQuarantineShare, 0.05);
    assert.equal(legacy.declaredColumns, undefined);
    void sortedIds;
  });

  test('point coordinates named in the dataset reach the fetcher', () => {
    const dataset = loadDatasetFile(path.join(import.meta.dirname, '../../datasets/sf-fire-incidents.json'));
    const renamed = { ...dataset, columns: dataset.columns.map((c) => (c.type === 'point' ? { ...c, coordinates: { longitude: 'point_lon', latitude: 'point_lat' } } : c)) };
    const env = fetcherEnvironment({ dataset: renamed, deliveryStreamName: 's', stateLocation: 's3://raw', metricsNamespace: 'ns' });
    assert.equal(env.POINT_COLUMNS, 'point:point_lon:point_lat');
    assert.deepEqual(readFetcherConfig(env).pointColumns, [{ name: 'point', longitude: 'point_lon', latitude: 'point_lat' }]);
    assert.deepEqual(readFetcherConfig(fetcherEnvironment({ dataset, deliveryStreamName: 's', stateLocation: 's3://raw', metricsNamespace: 'ns' })).pointColumns, ['point']);
    assert.throws(() => readFetcherConfig({ ...env, POINT_COLUMNS: 'point:only_lon' }), /POINT_COLUMNS entry "point:only_lon" must be <column> or <column>:<longitude name>:<latitude name>/);
  });
});
