/**
 * Streaming pages over real HTTP (issue 12): a connection that drops mid-page resumes after the
 * last row received, never from the page start; deliveries overlap the download with a bounded
 * number of batches in flight.
 */
import { SocrataSource } from '../../lambdas/fetcher/sources/socrata/socrata-source';
import { keysetCheckpoint } from '../support/checkpoint';
import { keysetOrder } from '../support/source-rows';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { MAX_PAGE_SIZE } from '../../runtime/dataset-config';
import { LocalObjectStore } from '../../runtime/object-store';
import type { SocrataServer } from '../../local/socrata-server';
import { startSourceProfileProxy } from '../../local/source-profile';
import { CheckpointStore } from '../../lambdas/fetcher/checkpoint-store';
import { MAX_BATCHES_IN_FLIGHT, runFetch } from '../../lambdas/fetcher/fetch-run';
import { emptyDeliveryStats, type DeliveryStats } from '../../lambdas/fetcher/firehose-delivery';
import { SocrataClient, SocrataRequestError } from '../../lambdas/fetcher/sources/socrata/socrata-client';
import { acceptingFirehose, harness, recordingRetry, sortedIds } from './harness';
import { suiteSocrataServer } from '../support/suite-fixtures';
import { serverIdentity } from '../support/source-identity';
import { startHostileSocrata, type HostileMode, type HostileSocrata } from './hostile-socrata';
import { rowFetchSettings } from '../support/fetch-settings';

const PAGE = 1_000;

describe('fetcher: a connection dropped mid-page resumes after the last row received', () => {
  let upstream: SocrataServer;
  suiteSocrataServer({ rows: 2_345, seed: 31 }, (s) => (upstream = s));

  const withSource = async (mode: HostileMode, body: (source: HostileSocrata) => Promise<void>): Promise<void> => {
    const source = await startHostileSocrata(upstream, mode);
    try {
      await body(source);
    } finally {
      await source.close();
    }
  };

  for (const how of ['reset', 'end', 'stall'] as const) {
    test(`${how} after 150 kB of page 1 and of page 2: every row delivered exactly once, each resume asks only for the rest`, { timeout: 30_000 }, async () => {
      await withSource({ kind: 'cut-body', cuts: { 1: 150_000, 3: 150_000 }, how }, async (source) => {
        const delivered = acceptingFirehose();
        // Small records: several are closed (and page 2's batches sent) before each cut.
        const h = harness(source, { pageSize: PAGE, maxRecordBytes: 16 * 1024 });
        const t0 = Date.now();
        const out = await h.run({ runId: `cut-${how}` }, { timeoutMs: 1_500 });
        assert.ok(Date.now() - t0 < 20_000);
        assert.equal(out.done, true);
        // The exact multiset: nothing missing, nothing twice.
        assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(upstream.rows, ':id'));
        assert.equal(out.stats.rowsFetched, 2_345);
        assert.equal(out.stats.pages, 3);
        assert.equal(out.stats.sourceRetries, 2, 'one resume per cut');
        const order = keysetOrder(upstream.rows);
        // Request 2 resumes page 1, request 4 resumes page 2: after the last row received, for the rest.
        for (const [resumed, pageStart] of [
          [1, 0],
          [3, PAGE],
        ] as const) {
          const params = source.requests[resumed]!.params;
          const rest = Number(params.$limit);
          const received = PAGE - rest;
          assert.ok(received > 0 && rest > 0, `the cut fell inside the page (received ${received})`);
          const lastReceived = order[pageStart + received - 1]!;
          assert.match(params.$where!, new RegExp(`:id > '${String(lastReceived[':id'])}'`), params.$where);
          assert.ok(params.$where!.includes(String(lastReceived[':updated_at'])));
        }
        assert.equal(source.requests.length, 3 + 1 + 2, 'three pages, the empty end, two resumes');
        assert.equal(keysetCheckpoint(await h.checkpoints.read()).id, order.at(-1)![':id']);
      });
    });
  }

  test('a drop whose resume does not fit the time budget: the rows received are delivered, the cursor moves past them, the next invocation resumes there', { timeout: 30_000 }, async () => {
    await withSource({ kind: 'cut-body', cuts: { 1: 150_000 }, how: 'reset' }, async (source) => {
      const delivered = acceptingFirehose();
      const h = harness(source, { pageSize: PAGE, timeBudgetMarginMs: 1_000 });
      // 3 s left: enough to start the page, not for a resume's 5 s minimum attempt.
      const first = await h.run({ runId: 'cut-budget' }, { remaining: () => 3_000, timeoutMs: 5_000 });
      assert.equal(first.done, false);
      assert.equal(first.stats.timeBudgetDeferrals, 1);
      const received = first.stats.rowsFetched;
      assert.ok(received > 0 && received < PAGE, `the rows before the cut (${received})`);
      assert.equal(delivered.rows.length, received, 'delivered before returning');
      const order = keysetOrder(upstream.rows);
      assert.equal(first.cursor!.position!.id, order[received - 1]![':id']);
      assert.equal(await h.checkpoints.read(), undefined, 'the cut page did not move the checkpoint');
      const second = await h.run({ runId: 'cut-budget', cursor: JSON.parse(JSON.stringify(first.cursor)) });
      assert.equal(second.done, true);
      assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(upstream.rows, ':id'));
      assert.equal(source.requests.length, 1 + 4, 'the cut request, then the rest of page 1, pages 2 and 3, the empty end');
    });
  });

  test('the largest page a dataset may ask for (all rows in one page) is still cut by the time budget at a row, and the next invocation goes on from there', { timeout: 30_000 }, async () => {
    const delivered = acceptingFirehose();
    const h = harness(upstream, { pageSize: MAX_PAGE_SIZE, budgetCheckEveryRows: 100 });
    let reads = 0;
    // The budget is read every 100 rows: the sixth read finds it spent.
    const first = await h.run({ runId: 'huge-page' }, { remaining: () => (++reads <= 5 ? 600_000 : 0) });
    assert.equal(first.done, false);
    const received = first.stats.rowsFetched;
    assert.ok(received > 0 && received < 2_345 && received % 100 === 0, `cut at a budget check, mid-page (${received} rows)`);
    assert.equal(delivered.rows.length, received);
    assert.equal(first.cursor!.position!.id, keysetOrder(upstream.rows)[received - 1]![':id']);
    assert.equal(await h.checkpoints.read(), undefined, 'the cut page did not move the checkpoint');
    const before = upstream.requests.length;
    const second = await h.run({ runId: 'huge-page', cursor: JSON.parse(JSON.stringify(first.cursor)) });
    assert.equal(second.done, true);
    assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(upstream.rows, ':id'), 'every row exactly once');
    const resumed = upstream.requests.slice(before).filter((r) => r.path.startsWith('/resource/'));
    assert.equal(resumed.length, 2, 'the rest in one page, then the empty end');
    assert.equal(resumed[0]!.params.$limit, String(MAX_PAGE_SIZE));
    assert.match(resumed[0]!.params.$where ?? '', /^:updated_at > /, 'from the cut row, not from the start');
    assert.equal(keysetCheckpoint(await h.checkpoints.read()).id, keysetOrder(upstream.rows).at(-1)![':id']);
  });

  test('resumes that bring no new row fail after the attempts, naming what was received; no checkpoint', { timeout: 30_000 }, async () => {
    // Page 1 is cut mid-way (progress: resumed at once); its resumes are cut before any row.
    await withSource({ kind: 'cut-body', cuts: { 1: 150_000, 2: 5, 3: 5, 4: 5 }, how: 'end' }, async (source) => {
      acceptingFirehose();
      const h = harness(source, { pageSize: PAGE });
      const err = await h.run({ runId: 'no-progress' }, { retry: recordingRetry(3) }).then(
        () => assert.fail('expected the run to fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof SocrataRequestError, String(err));
      assert.match(err.message, /truncated body after 0 rows/);
      assert.match(err.message, /after 3 attempt\(s\) \(\d+ rows of the page received before\)/);
      assert.match(err.message, /\$where=:updated_at > /, 'the failing request is the resume, not the page start');
      assert.equal(source.requests.length, 4, 'the cut request, then three resumes without progress');
      assert.equal(await h.checkpoints.read(), undefined, 'the page never completed: no checkpoint');
    });
  });
});

describe('fetcher: deliveries overlap the download, with a bounded number of batches in flight', () => {
  let upstream: SocrataServer;
  suiteSocrataServer({ rows: 6_000, seed: 37 }, (s) => (upstream = s));

  test(`at most ${MAX_BATCHES_IN_FLIGHT} batches under way; held deliveries hold the download (backpressure), released ones let it finish`, { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fetcher-stream-'));
    const store = new LocalObjectStore(dir);
    const checkpoints = new CheckpointStore(store, 'sf-fire-incidents');
    let pending = 0;
    let maxPending = 0;
    let calls = 0;
    let hold = true;
    const waiting: (() => void)[] = [];
    const rows: string[] = [];
    const delivery = {
      deliver: async (records: Buffer[]): Promise<DeliveryStats> => {
        calls++;
        pending++;
        maxPending = Math.max(maxPending, pending);
        if (hold) await new Promise<void>((resolve) => waiting.push(resolve));
        pending--;
        for (const r of records) for (const line of r.toString('utf8').split('\n')) if (line) rows.push(String((JSON.parse(line) as Record<string, unknown>)._source_id));
        return { ...emptyDeliveryStats(), records: records.length, bytes: records.reduce((n, r) => n + r.length, 0), calls: 1 };
      },
    };
    const source = new SocrataSource(
      new SocrataClient({ datasetName: 'sf-fire-incidents', baseUrl: upstream.url, datasetId: upstream.datasetId, timeoutMs: 20_000, retry: recordingRetry(3) }),
      serverIdentity(upstream),
      'id',
    );
    let finished = false;
    const run = runFetch(
      { runId: 'bounded' },
      // One or two rows per record: about 3,000 records, so one page needs several 500-record batches.
      rowFetchSettings({ datasetName: 'sf-fire-incidents', primaryKey: 'id', pointColumns: ['point'], pageSize: 6_000, maxRecordBytes: 2_600 }),
      { source, delivery, checkpoints, stateStore: store, clock: () => new Date('2025-07-01T12:00:00.000Z'), remainingTimeMs: () => 600_000 },
    ).finally(() => {
      finished = true;
    });
    // Wait until the limit of batches is under way, then a little longer: no further batch starts.
    const t0 = Date.now();
    while (pending < MAX_BATCHES_IN_FLIGHT && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(pending, MAX_BATCHES_IN_FLIGHT, 'the limit is reached while the page streams');
    assert.equal(calls, MAX_BATCHES_IN_FLIGHT, 'no batch beyond the limit was started');
    assert.equal(finished, false, 'the run waits for Firehose instead of buffering the page');
    hold = false;
    for (const release of waiting.splice(0)) release();
    const out = await run;
    assert.equal(out.done, true);
    assert.ok(maxPending <= MAX_BATCHES_IN_FLIGHT);
    assert.ok(calls > MAX_BATCHES_IN_FLIGHT);
    assert.deepEqual(rows.sort(), sortedIds(upstream.rows, ':id'));
    assert.equal(out.stats.pages, 1);
  });
});

describe('SocrataClient.fetchPage (whole pages, kept for callers that need a page at once)', () => {
  let upstream: SocrataServer;
  suiteSocrataServer({ rows: 120, seed: 41 }, (s) => (upstream = s));

  test('retries a 500, returns the whole page, and refuses a page its check rejects after the attempts', { timeout: 30_000 }, async () => {
    const resourceRequests = (): number => upstream.requests.filter((r) => r.path.startsWith('/resource/')).length;
    upstream.setFaults([{ kind: 'status', status: 500, requests: [resourceRequests() + 1] }]);
    const retries: string[] = [];
    const client = new SocrataClient({
      datasetName: 'sf-fire-incidents',
      baseUrl: upstream.url,
      datasetId: upstream.datasetId,
      timeoutMs: 5_000,
      retry: recordingRetry(3),
      onRetry: ({ reason }) => retries.push(reason),
    });
    const rows = await client.fetchPage({ select: ':*,*', order: ':updated_at,:id', limit: 100 });
    assert.equal(rows.length, 100);
    assert.deepEqual(retries, ['HTTP 500']);
    assert.deepEqual(
      rows.map((r) => r[':id']),
      keysetOrder(upstream.rows)
        .slice(0, 100)
        .map((r) => r[':id']),
    );
    const refused = await client.fetchPage({ select: ':*,*', order: ':updated_at,:id', limit: 10, check: () => 'always wrong' }).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(refused instanceof SocrataRequestError);
    assert.match(refused.message, /the page breaks keyset paging: always wrong; status 200\) after 3 attempt\(s\)/);
  });
});

describe('a host name that does not resolve', () => {
  test('is not retried: one attempt, one clear error naming ENOTFOUND (whole and streamed pages)', { timeout: 30_000 }, async () => {
    const retries: string[] = [];
    const client = new SocrataClient({
      datasetName: 'sf-fire-incidents',
      // RFC 2606: .invalid never resolves.
      baseUrl: 'http://no-such-portal.invalid',
      datasetId: 'wr8u-xric',
      timeoutMs: 5_000,
      retry: recordingRetry(6),
      onRetry: ({ reason }) => retries.push(reason),
    });
    const whole = await client.fetchPage({ select: ':*,*', order: ':updated_at,:id', limit: 10 }).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(whole instanceof SocrataRequestError);
    assert.match(whole.message, /ENOTFOUND.*after 1 attempt\(s\)/);
    const streamed = await client
      .streamPage({ select: ':*,*', order: ':updated_at,:id', limit: 10, after: null, where: () => 'true', onRow: () => {} })
      .then(
        () => assert.fail('expected a failure'),
        (e: unknown) => e,
      );
    assert.ok(streamed instanceof SocrataRequestError);
    assert.match(streamed.message, /ENOTFOUND.*after 1 attempt\(s\)/);
    assert.deepEqual(retries, []);
  });
});

describe('fetcher: gzipped pages', () => {
  let upstream: SocrataServer;
  suiteSocrataServer({ rows: 1_500, seed: 37 }, (s) => (upstream = s));

  // Socrata gzips an answer when asked (`Vary: Accept-Encoding`); the client asks by default
  // (axios's Accept-Encoding) and the stream is parsed as it is gunzipped.
  test('a source that gzips when asked: the client asks, every row arrives once, the wire carries compressed bytes', { timeout: 30_000 }, async () => {
    const proxy = await startSourceProfileProxy(upstream.url, { name: 'gzip', latencyMs: 0, bandwidthBytesPerSecond: 1e9, gzip: true });
    try {
      const delivered = acceptingFirehose();
      const out = await harness({ url: proxy.url, datasetId: upstream.datasetId }, { pageSize: 600 }).run({ runId: 'gzip' });
      assert.equal(out.done, true);
      assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(upstream.rows, ':id'));
      assert.equal(proxy.counters().requests, Math.ceil(1_500 / 600) + 1);
      // ~1,250 bytes a row as JSON; gzipped it is several times smaller.
      assert.ok(proxy.counters().bodyBytes < (1_500 * 1_250) / 3, `${proxy.counters().bodyBytes} bytes on the wire for 1,500 rows`);
    } finally {
      await proxy.close();
    }
  });
});
