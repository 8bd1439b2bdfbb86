/**
 * SODA 3 (`source.api: "soda3"`): the same keyset reads as SODA 2, sent as one SoQL string in a
 * POST to /api/v3/views/<id>/query.json with the app token, against the local server's SODA 3
 * route (which serves the same rows as its SODA 2 one). Row fetch, parallel plan, key scan and
 * repair; the token is required and never shown.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { FirehoseClient } from '@aws-sdk/client-firehose';
import type { SocrataServer } from '../../local/socrata-server';
import { encodeKeyList } from '../../runtime/key-list';
import { LocalObjectStore } from '../../runtime/object-store';
import { missingKeysKey } from '../../runtime/storage-layout';
import { parseDataset } from '../../runtime/dataset-config';
import { fetcherEnvironment } from '../../runtime/fetcher-environment';
import { readFetcherConfig } from '../../lambdas/fetcher/config';
import { FirehoseDelivery } from '../../lambdas/fetcher/firehose-delivery';
import { runKeyScan } from '../../lambdas/fetcher/key-scan';
import { runRepair } from '../../lambdas/fetcher/repair';
import { SocrataClient, soqlQuery } from '../../lambdas/fetcher/sources/socrata/socrata-client';
import { SocrataSource } from '../../lambdas/fetcher/sources/socrata/socrata-source';
import { columns, datasetInput, type DatasetOverrides } from '../support/dataset-builder';
import { serverIdentity } from '../support/source-identity';
import { acceptingFirehose, harness, rawObjectRows, recordingRetry, sortedIds } from './harness';
import { suiteSocrataServer } from '../support/suite-fixtures';
import { keyScanSettings, rowFetchSettings } from '../support/fetch-settings';

const TOKEN = 'soda3-test-token-5d41402abc';

describe('SODA 3', () => {
  let server: SocrataServer;
  suiteSocrataServer({ rows: 1_300, seed: 31 }, (s) => (server = s));

  const soda3Requests = (from: number) => server.requests.slice(from).filter((r) => r.path.startsWith('/api/v3/'));

  test('the row fetch reads every row once through POST query.json with the token, and only through it', async () => {
    const h = harness(server, { pageSize: 250 });
    const delivered = acceptingFirehose();
    const n = server.requests.length;
    const out = await h.run({ runId: 'r1' }, { api: 'soda3', appToken: TOKEN });
    assert.equal(out.done, true);
    assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(server.rows, ':id'));
    const requests = server.requests.slice(n);
    assert.ok(requests.length >= 6, `${requests.length} requests`);
    assert.deepEqual(soda3Requests(n), requests, 'no request went to /resource/');
    assert.ok(requests.every((r) => r.appToken === TOKEN));
    assert.match(requests[0]!.soql!, /^SELECT \* ORDER BY :updated_at,:id LIMIT 250$/);
    assert.match(requests[1]!.soql!, /^SELECT \* WHERE :updated_at > '.+' OR \(:updated_at = '.+' AND :id > '.+'\) ORDER BY :updated_at,:id LIMIT 250$/);
  });

  test('a parallel backfill plans with count(*) and OFFSET probes in SoQL, then reads its ranges, every row once', async () => {
    const h = harness(server, { pageSize: 200, streams: 3, parallelMinRows: 100 }, { parallel: true });
    acceptingFirehose();
    const n = server.requests.length;
    const out = await h.run({ runId: 'p1', mode: 'full-refresh' }, { api: 'soda3', appToken: TOKEN });
    assert.equal(out.done, true);
    assert.equal(out.stats.streams, 3);
    assert.deepEqual(sortedIds(await rawObjectRows(h.store), '_source_id'), sortedIds(server.rows, ':id'));
    const soql = soda3Requests(n).map((r) => r.soql!);
    assert.equal(soql.filter((q) => q.startsWith('SELECT count(*) AS n')).length, 1);
    assert.equal(soql.filter((q) => / LIMIT 1 OFFSET \d+$/.test(q)).length, 2);
  });

  test('the key scan and the repair read through SODA 3 too', async () => {
    const store = new LocalObjectStore(mkdtempSync(path.join(tmpdir(), 'soda3-')));
    const client = new SocrataClient({ datasetName: 'sf-fire-incidents', baseUrl: server.url, datasetId: server.datasetId, timeoutMs: 5_000, retry: recordingRetry(3), api: 'soda3', appToken: () => Promise.resolve(TOKEN) });
    const source = new SocrataSource(client, serverIdentity(server), 'id');
    const deps = { source, store, clock: () => new Date('2025-07-01T12:00:00Z'), remainingTimeMs: () => 600_000 };
    const n = server.requests.length;
    const scan = await runKeyScan({ runId: 'k1' }, keyScanSettings({ datasetName: 'sf-fire-incidents', primaryKey: 'id', keyPageSize: 500 }), deps);
    assert.deepEqual([scan.done, scan.stats.keys], [true, server.rows.length]);
    const wanted = server.rows.filter((_, i) => i % 50 === 0).map((r) => String(r.id));
    await store.put(missingKeysKey({ name: 'sf-fire-incidents' }, 'k1'), gzipSync(encodeKeyList(wanted)));
    const delivered = acceptingFirehose();
    const settings = rowFetchSettings({ datasetName: 'sf-fire-incidents', primaryKey: 'id', pointColumns: ['point'], pageSize: 100 });
    const repair = await runRepair({ runId: 'k1' }, settings, { ...deps, delivery: new FirehoseDelivery(new FirehoseClient({ region: 'us-east-1' }), 'test-stream', recordingRetry(3)) });
    assert.equal(repair.done, true);
    assert.deepEqual(sortedIds(delivered.rows, 'id'), [...wanted].sort());
    const requests = server.requests.slice(n);
    assert.deepEqual(soda3Requests(n), requests, 'no request went to /resource/');
    assert.ok(requests.some((r) => /^SELECT id, :id ORDER BY :id LIMIT 500$/.test(r.soql!)));
    assert.ok(requests.some((r) => /^SELECT \* WHERE id in \(/.test(r.soql!)));
  });

  test('without a token the server refuses, and the error says SODA 3 needs one; a token never appears in a message', async () => {
    const h = harness(server, { pageSize: 250 });
    acceptingFirehose();
    await assert.rejects(h.run({ runId: 'no-token' }, { api: 'soda3', retry: recordingRetry(1) }), (e: Error) => {
      assert.match(e.message, /HTTP 403.*POST .*\/api\/v3\/views\/.*query\.json.*SODA 3 answers only requests with a valid app token/s);
      return true;
    });
    server.setFaults([{ kind: 'status', status: 500, body: `echo ${TOKEN}`, times: 5 }]);
    try {
      await assert.rejects(h.run({ runId: 'echo' }, { api: 'soda3', appToken: TOKEN, retry: recordingRetry(1) }), (e: Error) => {
        assert.ok(!e.message.includes(TOKEN), e.message);
        return true;
      });
    } finally {
      server.setFaults([]);
    }
  });

  test('soqlQuery: clauses in SoQL order, :*,* as * (SODA 3 includes system fields)', () => {
    assert.equal(soqlQuery({ select: ':*,*', where: "a = 'x'", order: ':id', limit: 5, offset: 10 }), "SELECT * WHERE a = 'x' ORDER BY :id LIMIT 5 OFFSET 10");
    assert.equal(soqlQuery({ select: 'count(*) AS n', limit: 1 }), 'SELECT count(*) AS n LIMIT 1');
  });
});

describe('SODA 3 in a dataset definition', () => {
  const definition = (source: DatasetOverrides['source']) => datasetInput({ name: 'soda3-events', source, eventTimeColumn: 'at', columns: columns({ id: 'text', at: 'floating_timestamp' }) });

  test('api "soda3" needs an app token secret, and reaches the fetcher as SOURCE_API', () => {
    assert.throws(() => parseDataset(definition({ api: 'soda3' }), 'soda3-events.json'), /source\.appTokenSecretName.*api "soda3" needs appTokenSecretName/s);
    const dataset = parseDataset(definition({ api: 'soda3', appTokenSecretName: 'soda3/token' }), 'soda3-events.json');
    const env = fetcherEnvironment({ dataset, deliveryStreamName: 's', stateLocation: 's3://b', metricsNamespace: 'm' });
    assert.equal(env.SOURCE_API, 'soda3');
    assert.equal(readFetcherConfig(env).sourceApi, 'soda3');
    const soda2 = fetcherEnvironment({ dataset: parseDataset(definition({}), 'soda3-events.json'), deliveryStreamName: 's', stateLocation: 's3://b', metricsNamespace: 'm' });
    assert.equal('SOURCE_API' in soda2, false, 'a SODA 2 dataset\'s environment is as before');
    assert.equal(readFetcherConfig(soda2).sourceApi, 'soda2');
    const { APP_TOKEN_SECRET_NAME: _, ...withoutSecret } = env;
    assert.throws(() => readFetcherConfig(withoutSecret), /SOURCE_API soda3 needs APP_TOKEN_SECRET_NAME/);
    assert.equal(readFetcherConfig({ ...withoutSecret, SOCRATA_APP_TOKEN: 'local' }).appToken, 'local');
  });
});
