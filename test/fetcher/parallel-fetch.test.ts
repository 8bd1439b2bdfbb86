/**
 * Parallel backfills against the local Socrata server: K keyset ranges read at once, exact at
 * their edges (ties on :updated_at included), resumable after any one stream fails, and the
 * checkpoint moved only once every range is complete.
 */
import { KEYSET_POSITIONS } from '../../lambdas/fetcher/sources/socrata/socrata-source';
import { keysetCheckpoint } from '../support/checkpoint';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startSocrataServer, type SocrataServer } from '../../local/socrata-server';
import { compareKeyset, rowProblem } from '../../lambdas/fetcher/sources/socrata/page-invariants';
import { planRanges } from '../../lambdas/fetcher/sources/socrata/parallel-plan';
import { RangeProgressStore } from '../../lambdas/fetcher/range-progress';
import { SocrataRequestError } from '../../lambdas/fetcher/sources/socrata/socrata-client';
import { acceptingFirehose, harness, planRequest, rawObjectRows, sortedIds, type TestSource } from './harness';
import { suiteSocrataServer } from '../support/suite-fixtures';

const PARALLEL = { streams: 4, parallelMinRows: 100, pageSize: 300 };

const lastKey = (rows: readonly Record<string, unknown>[]): { updatedAt: string; id: string } => {
  const positions = rows.map((r) => ({ updatedAt: String(r[':updated_at']), id: String(r[':id']) }));
  return positions.reduce((m, p) => (compareKeyset(p, m) > 0 ? p : m));
};

describe('parallel backfill', () => {
  let server: SocrataServer;
  suiteSocrataServer({ rows: 2_345, seed: 11 }, (s) => (server = s));

  test('four ranges read every row exactly once, straight to the raw zone, and move the checkpoint once at the end', async () => {
    const firehose = acceptingFirehose();
    const h = harness(server, PARALLEL, { parallel: true });
    const before = server.requests.length;
    const out = await h.run({ runId: 'backfill-1' });
    assert.equal(out.done, true);
    assert.equal(out.stats.streams, 4);
    const raw = await rawObjectRows(h.store);
    // Exactly once: the multiset of ids equals the source's (a duplicated edge row would show twice).
    assert.deepEqual(sortedIds(raw, '_source_id'), sortedIds(server.rows, ':id'));
    assert.equal(out.stats.rowsDelivered, 2_345);
    assert.equal(firehose.calls.length, 0, 'a backfill does not stand behind Firehose');
    assert.ok(out.stats.directObjects >= 4);
    const cp = await h.checkpoints.read();
    assert.deepEqual({ updatedAt: keysetCheckpoint(cp).updatedAt, id: keysetCheckpoint(cp).id }, lastKey(server.rows));
    const progress = (await new RangeProgressStore(h.store, 'sf-fire-incidents', KEYSET_POSITIONS).read())!.progress;
    assert.equal(progress.done, true);
    assert.equal(progress.ranges.length, 4);
    assert.equal(progress.rows, 2_345);
    // The edges fall inside groups of rows sharing one :updated_at: ties are split by :id, not lost.
    const edges = progress.ranges.slice(0, -1).map((r) => r.until!);
    const tied = edges.filter((e) => server.rows.filter((r) => r[':updated_at'] === e.updatedAt).length > 1);
    assert.ok(tied.length > 0, `no range edge inside a tie group (edges ${JSON.stringify(edges)}): the test would not show ties are split`);
    // One count and three one-row probes plan it; the streams then read by keyset, never $offset.
    const requests = server.requests.slice(before);
    assert.equal(requests.filter((r) => r.params.$select === 'count(*) AS n').length, 1);
    assert.equal(requests.filter((r) => r.params.$offset !== undefined).length, 3);
    assert.ok(requests.filter((r) => r.params.$select === ':*,*').every((r) => r.params.$offset === undefined));
  });

  test('an incremental run with a few changed rows stays one stream, through Firehose', async () => {
    const h = harness(server, PARALLEL, { parallel: true });
    acceptingFirehose();
    await h.run({ runId: 'first' });
    const change = server.mutate({ update: 20, add: 10 });
    const firehose = acceptingFirehose();
    const out = await h.run({ runId: 'second' });
    assert.equal(out.stats.streams, 1);
    assert.deepEqual(sortedIds(firehose.rows, '_source_id'), [...change.updated, ...change.added].sort());
  });

  test('one stream failing stops the run; the next run resumes each range where it stopped and ends exact', async () => {
    const source = await startSocrataServer({ rows: 1_800, seed: 5 });
    try {
      const h = harness(source, { ...PARALLEL, pageSize: 150 }, { parallel: true });
      acceptingFirehose();
      // Plan first (the run plans the same ranges from the same rows) to know the second range,
      // then fail that range's requests after its first page: its stream dies mid-backfill.
      const plan = (await planRanges({ fetchPage: (q) => planRequest(source, q) }, null, 4, 100))!;
      const secondUntil = plan.ranges[1]!.until!.id;
      let secondPages = 0;
      const failing = (s: TestSource): TestSource => ({
        fetchPage: (q) => s.fetchPage(q),
        streamPage: async (q) => {
          if (q.until?.position.id === secondUntil && secondPages++ >= 1) throw new SocrataRequestError('injected: range 2 stream lost', 503, 'test');
          return s.streamPage(q);
        },
      });
      await assert.rejects(h.run({ runId: 'dies' }, { wrapSource: failing }), /range 2 stream lost/);
      assert.equal(await h.checkpoints.read(), undefined, 'the checkpoint does not move while a range is unfinished');
      const saved = (await new RangeProgressStore(h.store, 'sf-fire-incidents', KEYSET_POSITIONS).read())!.progress;
      assert.equal(saved.done, false);
      assert.ok(saved.ranges[1]!.position, 'the failed range kept its first delivered page');
      assert.ok(!saved.ranges[1]!.done);

      const before = source.requests.length;
      const out = await h.run({ runId: 'next' });
      assert.equal(out.done, true);
      // Resumed, not re-planned: no count, no probes; the failed range restarted after its saved page.
      const requests = source.requests.slice(before);
      assert.equal(requests.filter((r) => r.params.$select === 'count(*) AS n').length, 0);
      assert.ok(requests.some((r) => r.params.$where?.includes(saved.ranges[1]!.position!.id)));
      for (const [i, r] of saved.ranges.entries()) {
        if (r.done) assert.ok(!requests.some((q) => q.params.$where?.includes(`<= '${r.until?.id}'`)), `range ${i + 1} was done and is not read again`);
      }
      const raw = await rawObjectRows(h.store);
      assert.deepEqual([...new Set(sortedIds(raw, '_source_id'))], sortedIds(source.rows, ':id'));
      const cp = await h.checkpoints.read();
      assert.deepEqual({ updatedAt: keysetCheckpoint(cp).updatedAt, id: keysetCheckpoint(cp).id }, lastKey(source.rows));
      assert.equal((await new RangeProgressStore(h.store, 'sf-fire-incidents', KEYSET_POSITIONS).read())!.progress.done, true);
    } finally {
      await source.close();
    }
  });

  test('out of time: the cursor carries every range; a retried invocation with a stale cursor loses nothing', async () => {
    const source = await startSocrataServer({ rows: 1_500, seed: 3 });
    try {
      const h = harness(source, { ...PARALLEL, pageSize: 100 }, { parallel: true });
      acceptingFirehose();
      // About four pages of time, then the budget is spent.
      let pages = 0;
      const counting = (s: TestSource): TestSource => ({ fetchPage: (q) => s.fetchPage(q), streamPage: (q) => (pages++, s.streamPage(q)) });
      const first = await h.run({ runId: 'slow' }, { wrapSource: counting, remaining: () => (pages < 4 ? 600_000 : 0) });
      assert.equal(first.done, false);
      assert.equal(first.cursor!.ranges!.length, 4);
      // The second invocation fails after more pages; Step Functions retries it with the first cursor.
      pages = 0;
      const second = await h.run({ runId: 'slow', cursor: first.cursor }, { wrapSource: counting, remaining: () => (pages < 6 ? 600_000 : 0) });
      assert.equal(second.done, false);
      // The retry goes on from each range's last saved page, not from the stale cursor's positions.
      const saved = (await new RangeProgressStore(h.store, 'sf-fire-incidents', KEYSET_POSITIONS).read())!.progress;
      assert.ok(saved.ranges.some((r, i) => r.position && (!first.cursor!.ranges![i]!.position || compareKeyset(r.position, first.cursor!.ranges![i]!.position!) > 0)), 'the second invocation saved pages past the first cursor');
      const startedAfter = new Map<string, { updatedAt: string; id: string } | null>();
      const firstRequests = (s: TestSource): TestSource => ({
        fetchPage: (q) => s.fetchPage(q),
        streamPage: (q) => {
          const range = q.until?.position.id ?? 'last';
          if (!startedAfter.has(range)) startedAfter.set(range, q.after);
          return s.streamPage(q);
        },
      });
      let out = await h.run({ runId: 'slow', cursor: first.cursor }, { wrapSource: firstRequests });
      for (const r of saved.ranges) {
        if (r.done || !r.position) continue;
        const from = startedAfter.get(r.until?.id ?? 'last');
        assert.ok(from && compareKeyset(from, r.position) >= 0, `range ending ${r.until?.id ?? 'at the end'} restarted at ${JSON.stringify(from)}, before its saved page ${JSON.stringify(r.position)}`);
      }
      for (let i = 0; !out.done && i < 10; i++) out = await h.run({ runId: 'slow', cursor: out.cursor });
      assert.equal(out.done, true);
      const raw = await rawObjectRows(h.store);
      assert.deepEqual([...new Set(sortedIds(raw, '_source_id'))], sortedIds(source.rows, ':id'));
      const cp = await h.checkpoints.read();
      assert.deepEqual({ updatedAt: keysetCheckpoint(cp).updatedAt, id: keysetCheckpoint(cp).id }, lastKey(source.rows));
    } finally {
      await source.close();
    }
  });

  test('a run that took over the unfinished backfill stops the first one: its next invocation conflicts, writing nothing', async () => {
    const source = await startSocrataServer({ rows: 900, seed: 13 });
    try {
      const h = harness(source, { ...PARALLEL, pageSize: 100 }, { parallel: true });
      acceptingFirehose();
      let pages = 0;
      const counting = (s: TestSource): TestSource => ({ fetchPage: (q) => s.fetchPage(q), streamPage: (q) => (pages++, s.streamPage(q)) });
      const first = await h.run({ runId: 'first' }, { wrapSource: counting, remaining: () => (pages < 4 ? 600_000 : 0) });
      assert.equal(first.done, false);
      // A second run starts while the first is between invocations (the lease would prevent it;
      // the conditional writes are the last line): it resumes the unfinished plan as its own.
      pages = 0;
      const second = await h.run({ runId: 'second' }, { wrapSource: counting, remaining: () => (pages < 2 ? 600_000 : 0) });
      assert.equal(second.done, false);
      assert.equal(await h.checkpoints.read(), undefined, 'no checkpoint yet: only the range progress tells the runs apart');
      const progress = await new RangeProgressStore(h.store, 'sf-fire-incidents', KEYSET_POSITIONS).read();
      await assert.rejects(h.run({ runId: 'first', cursor: first.cursor }), (err: Error) => err.name === 'CheckpointConflictError' && /changed by another run/.test(err.message));
      assert.deepEqual(await new RangeProgressStore(h.store, 'sf-fire-incidents', KEYSET_POSITIONS).read(), progress, 'the stopped run wrote nothing');
    } finally {
      await source.close();
    }
  });

  test('maxConcurrentStreams bounds the ranges read at once', async () => {
    const source = await startSocrataServer({ rows: 1_200, seed: 9 });
    try {
      const h = harness(source, { ...PARALLEL, streams: 6, maxConcurrentStreams: 2, pageSize: 100 }, { parallel: true });
      acceptingFirehose();
      let open = 0;
      let most = 0;
      const gauge = (s: TestSource): TestSource => ({
        fetchPage: (q) => s.fetchPage(q),
        streamPage: async (q) => {
          most = Math.max(most, ++open);
          try {
            await new Promise((r) => setTimeout(r, 5));
            return await s.streamPage(q);
          } finally {
            open--;
          }
        },
      });
      const out = await h.run({ runId: 'bounded' }, { wrapSource: gauge });
      assert.equal(out.done, true);
      assert.equal(out.stats.streams, 6);
      assert.equal(most, 2);
      assert.deepEqual(sortedIds(await rawObjectRows(h.store), '_source_id'), sortedIds(source.rows, ':id'));
    } finally {
      await source.close();
    }
  });

  test('a row past a range end breaks the page invariants (it belongs to the next range)', () => {
    const until = { updatedAt: '2024-01-02T03:04:05.000', id: 'row-m' };
    const row = (updatedAt: string, id: string) => ({ ':updated_at': updatedAt, ':id': id });
    assert.equal(rowProblem(row('2024-01-02T03:04:05.000', 'row-m'), 0, null, 10, until), undefined);
    assert.match(rowProblem(row('2024-01-02T03:04:05.000', 'row-n'), 0, null, 10, until)!, /past the range's end/);
    assert.match(rowProblem(row('2024-01-02T03:04:06.000', 'row-a'), 0, null, 10, until)!, /past the range's end/);
  });
});
