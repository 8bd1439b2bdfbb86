/**
 * The fetcher against misbehaving Firehose endpoints over real HTTP (the real SDK client, no
 * mock): one that never answers, one that refuses a record (400 for the whole call, or
 * `InvalidArgument` for one entry), and one that throttles a first full load.
 * Deliberately does not import ./harness, whose aws-sdk-client-mock replaces every FirehoseClient.
 */
import { SocrataSource } from '../../lambdas/fetcher/sources/socrata/socrata-source';
import { keysetCheckpoint } from '../support/checkpoint';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { FirehoseClient } from '@aws-sdk/client-firehose';
import type { SocrataServer } from '../../local/socrata-server';
import { LocalObjectStore } from '../../runtime/object-store';
import { CheckpointStore } from '../../lambdas/fetcher/checkpoint-store';
import { runFetch, type FetchInput, type FetchOutput, type FetchSettings } from '../../lambdas/fetcher/fetch-run';
import { FirehoseDelivery, FirehoseDeliveryError } from '../../lambdas/fetcher/firehose-delivery';
import type { RetryPolicy } from '../../lambdas/fetcher/retry-policy';
import { SocrataClient } from '../../lambdas/fetcher/sources/socrata/socrata-client';
import { sourceRows, tenPerSecond } from '../support/source-rows';
import { serverIdentity } from '../support/source-identity';
import { suiteSocrataServer } from '../support/suite-fixtures';

type Behaviour = (records: string[], call: number) => { status: number; body: unknown } | 'hang';

/** A Firehose-protocol endpoint (AWS JSON 1.1) whose answers a test decides; keeps accepted rows. */
async function startFakeFirehose(behaviour: Behaviour) {
  const accepted: Record<string, unknown>[] = [];
  const sockets = new Set<Socket>();
  let calls = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Records: { Data: string }[] };
      const records = input.Records.map((r) => Buffer.from(r.Data, 'base64').toString('utf8'));
      const answer = behaviour(records, ++calls);
      if (answer === 'hang') return; // never answers, keeps the connection open
      if (answer.status === 200) {
        const responses = (answer.body as { RequestResponses: { ErrorCode?: string }[] }).RequestResponses;
        records.forEach((r, i) => {
          if (!responses[i]?.ErrorCode) for (const line of r.split('\n')) if (line) accepted.push(JSON.parse(line) as Record<string, unknown>);
        });
      }
      res.writeHead(answer.status, { 'Content-Type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(answer.body));
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    accepted,
    calls: () => calls,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const ok = (records: string[], codes: (string | undefined)[] = []) => ({
  status: 200,
  body: {
    FailedPutCount: codes.filter(Boolean).length,
    Encrypted: false,
    RequestResponses: records.map((_, i) => (codes[i] ? { ErrorCode: codes[i], ErrorMessage: `refused: ${codes[i]}` } : { RecordId: `r${i}` })),
  },
});
const error = (status: number, type: string, message: string) => ({ status, body: { __type: type, message } });

const fastRetry = (maxAttempts: number): RetryPolicy => ({
  maxAttempts,
  baseDelayMs: 100,
  maxDelayMs: 5_000,
  random: () => 0.5,
  sleep: () => new Promise((r) => setImmediate(r)),
});

function wire(server: SocrataServer, firehoseUrl: string, opts: { callTimeoutMs?: number; attempts?: number; settings?: Partial<FetchSettings> } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'fetcher-firehose-'));
  const store = new LocalObjectStore(dir);
  const settings: FetchSettings = {
    datasetName: 'poisoned',
    primaryKey: 'id',
    pointColumns: [],
    pageSize: 100,
    lookbackMinutes: 0,
    timeBudgetMarginMs: 10_000,
    ...opts.settings,
  };
  const client = new FirehoseClient({
    region: 'us-east-1',
    endpoint: firehoseUrl,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 1_000, requestTimeout: opts.callTimeoutMs ?? 5_000, throwOnRequestTimeout: true },
  });
  const checkpoints = new CheckpointStore(store, settings.datasetName);
  const run = (input: FetchInput, remainingTimeMs: () => number = () => 600_000): Promise<FetchOutput> =>
    runFetch(input, settings, {
      source: new SocrataSource(new SocrataClient({ datasetName: settings.datasetName, baseUrl: server.url, datasetId: server.datasetId, timeoutMs: 5_000, retry: fastRetry(3) }), serverIdentity(server), settings.primaryKey),
      delivery: new FirehoseDelivery(client, 'poisoned-raw', fastRetry(opts.attempts ?? 3), 4, opts.callTimeoutMs ?? 5_000),
      checkpoints,
      stateStore: store,
      clock: () => new Date('2025-07-01T12:00:00.000Z'),
      remainingTimeMs,
    });
  return { store, checkpoints, run };
}

const rows = sourceRows(300, (i) => ({ id: `K${i}`, note: i === 123 ? 'POISON' : `row ${i}` }), {
  createdAt: '2024-05-01T00:00:00.000Z',
  updatedAt: tenPerSecond('2024-05-01T00:00:00.000Z'),
});
const ids = (xs: readonly Record<string, unknown>[]): string[] => xs.map((r) => String(r.id)).sort();

describe('fetcher: hostile Firehose endpoints', () => {
  let source: SocrataServer;
  suiteSocrataServer({ rows, datasetId: 'pois-0001' }, (s) => (source = s));

  test('an endpoint that never answers fails the run in bounded time; no checkpoint', { timeout: 30_000 }, async () => {
    const firehose = await startFakeFirehose(() => 'hang');
    try {
      const h = wire(source, firehose.url, { callTimeoutMs: 1_000, attempts: 2 });
      const t0 = Date.now();
      const err = await h.run({ runId: 'hang' }).then(
        () => assert.fail('expected a failure'),
        (e: unknown) => e,
      );
      assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`);
      assert.ok(err instanceof FirehoseDeliveryError, String(err));
      assert.match(err.message, /did not accept .* after 2 attempts: no answer within the 1 s call deadline/);
      assert.equal(await h.checkpoints.read(), undefined);
    } finally {
      await firehose.close();
    }
  });

  for (const shape of ['whole call refused with 400 InvalidArgumentException', 'one entry refused with InvalidArgument'] as const) {
    test(`${shape}: only the poisoned row is quarantined with the error code; every other row delivered`, { timeout: 30_000 }, async () => {
      const firehose = await startFakeFirehose((records) => {
        const poisoned = records.map((r) => r.includes('POISON'));
        if (!poisoned.some(Boolean)) return ok(records);
        return shape.startsWith('whole') ? error(400, 'InvalidArgumentException', 'Record contains invalid data') : ok(records, poisoned.map((p) => (p ? 'InvalidArgument' : undefined)));
      });
      try {
        const h = wire(source, firehose.url);
        const out = await h.run({ runId: 'poison' });
        assert.equal(out.done, true);
        assert.deepEqual(ids(firehose.accepted), ids(rows.filter((r) => r.id !== 'K123')));
        assert.equal(out.stats.quarantinedRejected, 1);
        assert.equal(out.stats.rowsQuarantined, 1);
        assert.equal(out.stats.rowsDelivered, 299);
        assert.equal(out.stats.rowsFetched, 300);
        const keys = await h.store.list('quarantine/poisoned/');
        assert.equal(keys.length, 1);
        const lines = gunzipSync((await h.store.get(keys[0]!))!.body).toString().trim().split('\n').map((l) => JSON.parse(l) as { reason: string; detail: string; row: Record<string, unknown> });
        assert.equal(lines.length, 1);
        assert.equal(lines[0]!.reason, 'firehose_rejected');
        assert.match(lines[0]!.detail, shape.startsWith('whole') ? /^InvalidArgumentException: / : /^InvalidArgument: /);
        assert.equal(lines[0]!.row.id, 'K123');
        assert.equal(keysetCheckpoint(await h.checkpoints.read()).id, rows.at(-1)![':id']);
      } finally {
        await firehose.close();
      }
    });
  }

  test('throttling is retried past the attempt limit while the budget lasts, and counted', { timeout: 30_000 }, async () => {
    const firehose = await startFakeFirehose((records, call) => (call <= 5 ? error(503, 'ServiceUnavailableException', 'Slow down.') : ok(records)));
    try {
      const h = wire(source, firehose.url, { attempts: 2 });
      const out = await h.run({ runId: 'throttled' });
      assert.equal(out.done, true);
      assert.deepEqual(ids(firehose.accepted), ids(rows));
      assert.equal(out.stats.firehoseThrottledCalls, 5);
    } finally {
      await firehose.close();
    }
  });

  test('throttling beyond the time budget returns the cursor; the next invocation delivers the rest', { timeout: 30_000 }, async () => {
    let throttle = true;
    const firehose = await startFakeFirehose((records) => (throttle ? error(503, 'ServiceUnavailableException', 'Slow down.') : ok(records)));
    try {
      const h = wire(source, firehose.url, { attempts: 2 });
      // Each read of the remaining time is 2 s later: the budget runs out after a number of waits.
      let remaining = 100_000;
      const first = await h.run({ runId: 'backfill' }, () => (remaining -= 2_000));
      assert.equal(first.done, false);
      assert.equal(firehose.accepted.length, 0);
      assert.ok(first.stats.firehoseThrottledCalls > 2, `kept backing off past the 2 attempts other errors get (${JSON.stringify(first.stats)})`);
      assert.equal(first.stats.timeBudgetDeferrals, 1);
      assert.equal(await h.checkpoints.read(), undefined, 'nothing was accepted, nothing checkpointed');
      throttle = false;
      const second = await h.run({ runId: 'backfill', cursor: first.cursor });
      assert.equal(second.done, true);
      assert.deepEqual(ids(firehose.accepted), ids(rows));
    } finally {
      await firehose.close();
    }
  });
});
