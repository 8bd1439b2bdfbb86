/**
 * The fetcher against sources that break the rules of keyset paging (issue 14): each case ends
 * with exactly the source's rows delivered, or a clear failure in bounded time with the checkpoint
 * never past a row that was not delivered.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startSocrataServer, type SocrataServer } from '../../local/socrata-server';
import { SocrataRequestError } from '../../lambdas/fetcher/socrata-client';
import { acceptingFirehose, harness, recordingRetry, sortedIds } from './harness';
import { startHostileSocrata, type HostileMode } from './hostile-socrata';

/** The source's rows in `:updated_at, :id` order (all generated timestamps share one format). */
const keysetOrder = (rows: readonly Record<string, unknown>[]): Record<string, unknown>[] =>
  [...rows].sort((a, b) => {
    const ta = String(a[':updated_at']);
    const tb = String(b[':updated_at']);
    if (ta !== tb) return ta < tb ? -1 : 1;
    return String(a[':id']) < String(b[':id']) ? -1 : 1;
  });

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
  before(async () => {
    upstream = await startSocrataServer({ rows: 900, seed: 17 });
    // Updated rows move to the end of the keyset order, so `:id` order is no longer keyset order.
    upstream.mutate({ update: 100 });
  });
  after(() => upstream.close());

  const withSource = async (mode: HostileMode, body: (source: Awaited<ReturnType<typeof startHostileSocrata>>) => Promise<void>): Promise<void> => {
    const source = await startHostileSocrata(upstream, mode);
    try {
      await body(source);
    } finally {
      await source.close();
    }
  };

  for (const kind of ['ignore-order', 'reverse-pages'] as const) {
    test(`${kind}: the first page is refused after its retries, nothing is delivered, no checkpoint`, { timeout: 30_000 }, async () => {
      await withSource({ kind }, async (source) => {
        const delivered = acceptingFirehose();
        const h = harness(source);
        const t0 = Date.now();
        const err = await failure(h.run({ runId: kind }, { retry: recordingRetry(3) }));
        assert.ok(Date.now() - t0 < 30_000);
        assert.match(err.message, /dataset sf-fire-incidents/);
        assert.match(err.message, /the page breaks keyset paging: row \d+ .* is not after row \d+ .*the source ignored \$order/);
        assert.match(err.message, /GET http:\/\/127\.0\.0\.1:\d+\/resource\/wr8u-xric\.json\?\$select=:\*,\*/);
        assert.match(err.message, /after 3 attempt\(s\)/);
        assert.equal(source.requests.length, 3, 're-requested, then given up');
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
      assert.equal((await h.checkpoints.read())!.checkpoint.id, firstPage.at(-1)![':id']);
      assert.equal(source.requests.length, 4, 'one good page, then three refused attempts: no loop');
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
      assert.equal((await h.checkpoints.read())!.checkpoint.id, last[':id']);
    });
  });
});
