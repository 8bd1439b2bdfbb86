/**
 * The fetcher against sources that break the rules of keyset paging (issue 14): each case ends
 * with exactly the source's rows delivered, or a clear failure in bounded time with the checkpoint
 * never past a row that was not delivered.
 */
import { keysetCheckpoint } from '../support/checkpoint';
import { keysetOrder } from '../support/source-rows';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SocrataServer } from '../../local/socrata-server';
import { MAX_STALLED_INVOCATIONS } from '../../lambdas/fetcher/phase-runner';
import { retryDeadline } from '../../lambdas/fetcher/time-budget';
import { REDACTED, redactError, redactor } from '../../lambdas/fetcher/redact';
import { SocrataClient, SocrataRequestError } from '../../lambdas/fetcher/sources/socrata/socrata-client';
import { acceptingFirehose, capturingLogger, harness, recordingRetry, sortedIds } from './harness';
import { suiteSocrataServer } from '../support/suite-fixtures';
import { startHostileSocrata, type HostileMode } from './hostile-socrata';

async function failure(p: Promise<unknown>): Promise<SocrataRequestError> {
  const err = await p.then(
    () => assert.fail('expected the run to fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof SocrataRequestError, `expected a SocrataRequestError, got ${String(err)}`);
  return err;
}

describe('fetcher: hostile sources', () => {
  let upstream: SocrataServer;
  suiteSocrataServer({ rows: 900, seed: 17 }, (s) => {
    upstream = s;
    // Updated rows move to the end of the keyset order, so `:id` order is no longer keyset order.
    upstream.mutate({ update: 100 });
  });

  const withSource = async (mode: HostileMode, body: (source: Awaited<ReturnType<typeof startHostileSocrata>>) => Promise<void>): Promise<void> => {
    const source = await startHostileSocrata(upstream, mode);
    try {
      await body(source);
    } finally {
      await source.close();
    }
  };

  for (const kind of ['ignore-order', 'reverse-pages'] as const) {
    // A row out of order after others arrived fails at once (no retry): the source is not
    // ordering, and a retry would hand out the same rows again.
    test(`${kind}: the first page is refused at its first out-of-order row, nothing is delivered, no checkpoint`, { timeout: 30_000 }, async () => {
      await withSource({ kind }, async (source) => {
        const delivered = acceptingFirehose();
        const h = harness(source);
        const t0 = Date.now();
        const err = await failure(h.run({ runId: kind }, { retry: recordingRetry(3) }));
        assert.ok(Date.now() - t0 < 30_000);
        assert.match(err.message, /dataset sf-fire-incidents/);
        assert.match(err.message, /the page breaks keyset paging: row \d+ .* is not after row \d+ .*the source ignored \$order/);
        assert.match(err.message, /GET http:\/\/127\.0\.0\.1:\d+\/resource\/wr8u-xric\.json\?\$select=:\*,\*/);
        assert.match(err.message, /after \d+ rows of the page/);
        assert.equal(source.requests.length, 1, 'not re-requested: the rows before the bad one would come again');
        assert.equal(delivered.rows.length, 0);
        assert.equal(await h.checkpoints.read(), undefined);
      });
    });
  }

  test('ignore-where: the repeated first page is refused; the checkpoint stays at the end of the one delivered page', { timeout: 30_000 }, async () => {
    await withSource({ kind: 'ignore-where' }, async (source) => {
      const delivered = acceptingFirehose();
      const h = harness(source, { pageSize: 200 });
      const t0 = Date.now();
      const err = await failure(h.run({ runId: 'where' }, { retry: recordingRetry(3) }));
      assert.ok(Date.now() - t0 < 30_000);
      assert.match(err.message, /row 1 .* is not after the requested position .*the source ignored \$where/);
      const firstPage = keysetOrder(upstream.rows).slice(0, 200);
      assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(firstPage, ':id'));
      assert.equal(keysetCheckpoint(await h.checkpoints.read()).id, firstPage.at(-1)![':id']);
      assert.equal(source.requests.length, 4, 'one good page, then three refused attempts: no loop');
    });
  });

  test('refuse-limit (a SODA 2.0 endpoint): a page above 50,000 is asked again at the cap the 400 names, with a warning; every row once', { timeout: 30_000 }, async () => {
    await withSource({ kind: 'refuse-limit', max: 120 }, async (source) => {
      const delivered = acceptingFirehose();
      const logger = capturingLogger();
      const h = harness(source, { pageSize: 60_000 });
      const out = await h.run({ runId: 'refused' }, { logger });
      assert.equal(out.done, true);
      assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(upstream.rows, ':id'));
      const limits = source.requests.map((r) => r.params.$limit);
      // One refusal, then capped pages (short, so never taken for the end) and the empty page.
      assert.deepEqual(limits, ['60000', ...Array<string>(Math.ceil(900 / 120) + 1).fill('120')]);
      const warning = logger.lines.filter((l) => l.includes('refused $limit'));
      assert.equal(warning.length, 1, 'warned once, not per page');
      assert.match(warning[0]!, /SODA 2\.0 endpoint.*set fetch\.pageSize to 120 in the dataset sf-fire-incidents definition/);
      assert.equal(keysetCheckpoint(await h.checkpoints.read()).id, keysetOrder(upstream.rows).at(-1)![':id']);
    });
  });

  test('refuse-limit: the whole-page reader (repair) falls back the same way', { timeout: 30_000 }, async () => {
    await withSource({ kind: 'refuse-limit', max: 50_000 }, async (source) => {
      const client = new SocrataClient({ datasetName: 'sf-fire-incidents', baseUrl: source.url, datasetId: source.datasetId, timeoutMs: 5_000, retry: recordingRetry(1) });
      const rows = await client.fetchPage({ select: ':*,*', order: ':updated_at,:id', limit: 60_000 });
      assert.equal(rows.length, 900);
      assert.deepEqual(source.requests.map((r) => r.params.$limit), ['60000', '50000']);
    });
  });

  test('a 400 about the page length at or below 50,000 fails with what to set, without a retry loop', { timeout: 30_000 }, async () => {
    await withSource({ kind: 'refuse-limit', max: 120 }, async (source) => {
      acceptingFirehose();
      const h = harness(source, { pageSize: 500 });
      const err = await failure(h.run({ runId: 'refused-small' }));
      assert.equal(err.status, 400);
      assert.match(err.message, /HTTP 400.*length must be <= 120.*set fetch\.pageSize to 50000 \(the SODA 2\.0 cap\) or lower in the dataset sf-fire-incidents definition/);
      assert.equal(source.requests.length, 1);
      assert.equal(await h.checkpoints.read(), undefined);
    });
  });

  test('cap-limit: short pages are not the end; every row arrives exactly once', { timeout: 30_000 }, async () => {
    await withSource({ kind: 'cap-limit', max: 120 }, async (source) => {
      const delivered = acceptingFirehose();
      const h = harness(source, { pageSize: 500 });
      const out = await h.run({ runId: 'capped' });
      assert.equal(out.done, true);
      assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(upstream.rows, ':id'));
      assert.equal(out.stats.pages, Math.ceil(900 / 120));
      assert.equal(source.requests.length, Math.ceil(900 / 120) + 1, 'the end is the empty page after the short one');
      const last = keysetOrder(upstream.rows).at(-1)!;
      assert.equal(keysetCheckpoint(await h.checkpoints.read()).id, last[':id']);
    });
  });
});

describe('fetcher: deadlines and the time budget', () => {
  let upstream: SocrataServer;
  suiteSocrataServer({ rows: 600, seed: 23 }, (s) => (upstream = s));

  test('slow-loris (a byte every 0.5 s never idles the socket): each attempt ends at its total deadline', { timeout: 30_000 }, async () => {
    const source = await startHostileSocrata(upstream, { kind: 'slow-loris', intervalMs: 500 });
    try {
      const delivered = acceptingFirehose();
      const h = harness(source);
      const t0 = Date.now();
      const err = await failure(h.run({ runId: 'loris' }, { retry: recordingRetry(2), timeoutMs: 2_000 }));
      const elapsed = Date.now() - t0;
      assert.ok(elapsed < 15_000, `failed after ${elapsed} ms, not within about 2 x 2 s`);
      assert.match(err.message, /no complete answer within the 2 s deadline/);
      assert.match(err.message, /after 2 attempt\(s\)/);
      assert.equal(delivered.rows.length, 0);
      assert.equal(await h.checkpoints.read(), undefined);
    } finally {
      await source.close();
    }
  });

  test('a Retry-After the budget cannot cover returns the cursor instead of waiting; the next invocation finishes with every row once', async () => {
    const resourceRequests = (): number => upstream.requests.filter((r) => r.path.startsWith('/resource/')).length;
    upstream.setFaults([{ kind: 'status', status: 429, retryAfter: '3600', requests: [resourceRequests() + 2] }]);
    const delivered = acceptingFirehose();
    const h = harness(upstream, { pageSize: 250, timeBudgetMarginMs: 10_000 });
    const retry = recordingRetry(6);
    // 100 s left: enough to start pages, not to wait the 120 s a Retry-After is capped at.
    const first = await h.run({ runId: 'retry-after' }, { retry, remaining: () => 100_000 });
    assert.equal(first.done, false);
    assert.deepEqual(retry.delays, [], 'no wait was started');
    assert.equal(first.stats.timeBudgetDeferrals, 1);
    const order = keysetOrder(upstream.rows);
    assert.equal(first.cursor!.position!.id, order[249]![':id'], 'the cursor is at the last delivered page');
    assert.equal(keysetCheckpoint(await h.checkpoints.read()).id, order[249]![':id']);
    const second = await h.run({ runId: 'retry-after', cursor: JSON.parse(JSON.stringify(first.cursor)) });
    assert.equal(second.done, true);
    assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(upstream.rows, ':id'));
    assert.equal(second.stats.rowsDelivered, 600);
  });

  test('a budget no longer than the request timeout (the local default: 60 s and 60 s) still retries a short wait, with the attempt cut to fit', async () => {
    const resourceRequests = (): number => upstream.requests.filter((r) => r.path.startsWith('/resource/')).length;
    upstream.setFaults([{ kind: 'status', status: 429, retryAfter: '1', requests: [resourceRequests() + 2] }]);
    const delivered = acceptingFirehose();
    const retry = recordingRetry(6);
    const out = await harness(upstream, { pageSize: 250, timeBudgetMarginMs: 0 }).run({ runId: 'tight' }, { retry, timeoutMs: 60_000, remaining: () => 60_000 });
    assert.equal(out.done, true);
    assert.equal(out.stats.timeBudgetDeferrals, 0);
    assert.deepEqual(retry.delays, [1_000]);
    assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(upstream.rows, ':id'));
  });

  test('retryDeadline: the attempt after a wait gets what the budget leaves, or the run defers', () => {
    assert.equal(retryDeadline(() => 60_000, 1_000, 60_000, 'x'), 59_000);
    assert.equal(retryDeadline(() => 600_000, 1_000, 60_000, 'x'), 60_000);
    assert.equal(retryDeadline(undefined, 1_000, 60_000, 'x'), 60_000);
    assert.throws(() => retryDeadline(() => 5_500, 1_000, 60_000, 'GET /x'), /GET \/x: a wait of 1\.0 s and an attempt of at least 5\.0 s do not fit in the 5\.5 s left/);
  });

  test('a source that throttles longer than any invocation can wait fails after a few stalled invocations, not forever', { timeout: 30_000 }, async () => {
    upstream.setFaults([{ kind: 'status', status: 429, retryAfter: '3600', times: 1_000 }]);
    try {
      acceptingFirehose();
      const h = harness(upstream, { timeBudgetMarginMs: 10_000 });
      let out = await h.run({ runId: 'stalled' }, { remaining: () => 100_000 });
      let invocations = 1;
      const err = await (async () => {
        for (;;) {
          assert.equal(out.done, false);
          invocations++;
          out = await h.run({ runId: 'stalled', cursor: out.cursor }, { remaining: () => 100_000 });
        }
      })().then(
        () => assert.fail('expected a failure'),
        (e: unknown) => e as Error,
      );
      assert.equal(invocations, MAX_STALLED_INVOCATIONS, 'the third stalled invocation fails');
      assert.match(err.message, /3 invocations in a row ran out of time budget without completing a page/);
      assert.match(err.message, /HTTP 429/);
      assert.equal(await h.checkpoints.read(), undefined);
    } finally {
      upstream.setFaults([]);
    }
  });
});

describe('fetcher: the app token never leaves the request header', () => {
  const TOKEN = 'Tok3n-hostile-0123456789abc';
  let upstream: SocrataServer;
  suiteSocrataServer({ rows: 300, seed: 29 }, (s) => (upstream = s));

  test('a 500 echoing the headers: the failure, its stack and the logs show [REDACTED], never the token', { timeout: 30_000 }, async () => {
    const source = await startHostileSocrata(upstream, { kind: 'echo-headers-500' });
    try {
      acceptingFirehose();
      const logger = capturingLogger();
      const err = await failure(harness(source).run({ runId: 'echo' }, { retry: recordingRetry(2), appToken: TOKEN, logger }));
      assert.equal(source.requests[0]!.headers['x-app-token'], TOKEN, 'the token was sent, so the body echoed it');
      assert.match(err.message, /HTTP 500/);
      assert.match(err.message, /"x-app-token":"\[REDACTED\]"/, 'the echoed header is in the excerpt, redacted');
      for (const text of [err.message, err.stack ?? '', JSON.stringify(err), ...logger.lines]) assert.ok(!text.includes(TOKEN), text);
    } finally {
      await source.close();
    }
  });

  test('an echoed 500 that is retried: the returned output and the logs hold no token', { timeout: 30_000 }, async () => {
    const source = await startHostileSocrata(upstream, { kind: 'echo-headers-500', times: 1 });
    try {
      const delivered = acceptingFirehose();
      const logger = capturingLogger();
      const out = await harness(source).run({ runId: 'echo-once' }, { retry: recordingRetry(3), appToken: TOKEN, logger });
      assert.equal(out.done, true);
      assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(upstream.rows, ':id'));
      assert.ok(logger.lines.some((l) => l.includes('retrying Socrata request')));
      assert.ok(!JSON.stringify(out).includes(TOKEN));
      for (const line of logger.lines) assert.ok(!line.includes(TOKEN), line);
    } finally {
      await source.close();
    }
  });

  test('redactor: raw, URL-encoded and JSON-escaped forms', () => {
    const redact = redactor(['a/b+c"d=e-123']);
    assert.equal(redact('x a/b+c"d=e-123 y'), `x ${REDACTED} y`);
    assert.equal(redact(`q=${encodeURIComponent('a/b+c"d=e-123')}`), `q=${REDACTED}`);
    assert.equal(redact(JSON.stringify({ t: 'a/b+c"d=e-123' })), `{"t":"${REDACTED}"}`);
    // The handler's last line of defence: message, stack and causes of whatever was thrown.
    const err = redactError(new Error('outer a/b+c"d=e-123', { cause: new Error('inner a/b+c"d=e-123') }), redact);
    assert.equal(err.message, `outer ${REDACTED}`);
    assert.ok(!err.stack!.includes('a/b+c"d=e-123'));
    assert.equal((err.cause as Error).message, `inner ${REDACTED}`);
  });
});
