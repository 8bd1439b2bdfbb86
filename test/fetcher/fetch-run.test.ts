import { keysetCheckpoint } from '../support/checkpoint';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { startSocrataServer, type SocrataServer } from '../../local/socrata-server';
import { MAX_BATCH_BYTES, MAX_RECORD_BYTES } from '../../lambdas/fetcher/record-packer';
import { CheckpointConflictError } from '../../lambdas/fetcher/checkpoint-store';
import { SocrataRequestError } from '../../lambdas/fetcher/sources/socrata/socrata-client';
import { acceptingFirehose, harness, recordingRetry, sortedIds } from './harness';
import { suiteSocrataServer } from '../support/suite-fixtures';

const maxKey = (rows: readonly Record<string, unknown>[]): { updatedAt: string; id: string } => {
  const sorted = [...rows].sort((a, b) =>
    Date.parse(String(a[':updated_at'])) - Date.parse(String(b[':updated_at'])) || (String(a[':id']) < String(b[':id']) ? -1 : 1),
  );
  const last = sorted.at(-1)!;
  return { updatedAt: String(last[':updated_at']), id: String(last[':id']) };
};

describe('fetcher against the local Socrata server', () => {
  let server: SocrataServer;
  suiteSocrataServer({ rows: 2_345, seed: 7 }, (s) => (server = s));

  test('pages to the end: every source row delivered once, as raw rows packed in newline-terminated records', async () => {
    const delivered = acceptingFirehose();
    const h = harness(server);
    const out = await h.run({ runId: 'run-1' });
    assert.equal(out.done, true);
    assert.equal(out.cursor, null);
    assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(server.rows, ':id'));
    assert.equal(out.stats.rowsFetched, 2_345);
    assert.equal(out.stats.rowsDelivered, 2_345);
    assert.equal(out.stats.pages, 5);
    for (const r of delivered.records) {
      assert.ok(r.length <= MAX_RECORD_BYTES);
      assert.equal(r.at(-1), 0x0a, 'each record ends with a newline');
    }
    // Raw rows: no system fields, coordinates only where the source has a point, metadata added.
    const byId = new Map(server.rows.map((r) => [String(r[':id']), r]));
    let withoutPoint = 0;
    for (const row of delivered.rows) {
      const src = byId.get(String(row._source_id))!;
      assert.ok(!Object.keys(row).some((k) => k.startsWith(':')));
      assert.equal(row._run_id, 'run-1');
      assert.equal(row._ingested_at, '2025-07-01T12:00:00.000Z');
      assert.equal(row._source_updated_at, src[':updated_at']);
      assert.equal(row.id, src.id);
      const point = src.point as { coordinates: [number, number] } | undefined;
      if (point) {
        assert.deepEqual(row.point, point);
        assert.equal(row.longitude, point.coordinates[0]);
        assert.equal(row.latitude, point.coordinates[1]);
      } else {
        withoutPoint++;
        assert.ok(!('longitude' in row) && !('latitude' in row) && !('point' in row));
      }
    }
    assert.ok(withoutPoint > 0, 'the generated source has rows without a point');
    const cp = await h.checkpoints.read();
    assert.deepEqual({ updatedAt: keysetCheckpoint(cp).updatedAt, id: keysetCheckpoint(cp).id }, maxKey(server.rows));
    // Keyset paging, never $offset.
    assert.ok(server.requests.every((r) => r.params.$offset === undefined));
  });

  test('incremental second run fetches exactly the changed and added rows', async () => {
    const h = harness(server);
    acceptingFirehose();
    await h.run({ runId: 'first' });
    const change = server.mutate({ update: 17, add: 5 });
    const delivered = acceptingFirehose();
    const out = await h.run({ runId: 'second' });
    assert.deepEqual(sortedIds(delivered.rows, '_source_id'), [...change.updated, ...change.added].sort());
    const updated = delivered.rows.find((r) => r._source_id === change.updated[0])!;
    assert.equal(updated._source_updated_at, change.updatedAt);
    assert.equal(out.stats.rowsFetched, 22);
    // Nothing changed since: a third run delivers nothing and keeps the checkpoint.
    const third = acceptingFirehose();
    const before3 = await h.checkpoints.read();
    await h.run({ runId: 'third' });
    assert.equal(third.rows.length, 0);
    assert.equal((await h.checkpoints.read())!.etag, before3!.etag);
  });

  test('full refresh re-reads everything; lookback re-reads the window before the checkpoint', async () => {
    const h = harness(server, { lookbackMinutes: 0 });
    acceptingFirehose();
    await h.run({ runId: 'a' });
    const full = acceptingFirehose();
    await h.run({ runId: 'b', mode: 'full-refresh' });
    assert.equal(full.rows.length, server.rows.length);
    const lb = harness(server, { lookbackMinutes: 60 * 24 * 365 * 10 });
    acceptingFirehose();
    await lb.run({ runId: 'c' });
    const again = acceptingFirehose();
    await lb.run({ runId: 'd' });
    assert.equal(again.rows.length, server.rows.length, 'a lookback longer than the data re-reads every row');
  });

  test('time budget: cuts a page at a row boundary, returns a small cursor and resumes with no gap or duplicate', async () => {
    const delivered = acceptingFirehose();
    const h = harness(server, { pageSize: 300, budgetCheckEveryRows: 1 });
    let calls = 0;
    // The budget is read after each row and before each page but the first: 700 reads pass, so
    // each invocation takes about 700 rows and stops inside a page (700 is not a multiple of 300).
    const invocation = () => {
      let n = 0;
      return () => (++n <= 700 ? 60_000 : 10);
    };
    let out = await h.run({ runId: 'budget' }, { remaining: invocation() });
    calls++;
    const cut = out.cursor!.position!;
    const cp = keysetCheckpoint(await h.checkpoints.read());
    assert.notEqual(cut.id, cp.id, 'the cursor is past the checkpoint: the page was cut mid-way');
    const requestsBefore = server.requests.length;
    while (!out.done) {
      assert.ok(JSON.stringify(out).length < 2_000, 'the output stays tiny');
      const cursor = JSON.parse(JSON.stringify(out.cursor)); // through the state machine: plain JSON
      out = await h.run({ runId: 'budget', cursor }, { remaining: invocation() });
      if (calls === 1) {
        // The next invocation asks for the rows after the cut row, not for the cut page again.
        const resumed = server.requests[requestsBefore]!.params;
        assert.match(resumed.$where!, new RegExp(`:id > '${cut.id}'`));
        assert.equal(resumed.$limit, '300');
      }
      calls++;
    }
    assert.ok(calls >= 3, `expected several invocations, got ${calls}`);
    assert.equal(out.stats.invocations, calls);
    assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(server.rows, ':id'), 'every row once: the cut page is not re-read');
    assert.equal(out.stats.rowsDelivered, server.rows.length);
    assert.equal(out.stats.rowsFetched, server.rows.length);
  });

  test('a checkpoint changed by another run stops this one instead of overwriting it', async () => {
    acceptingFirehose();
    const h = harness(server, { pageSize: 1_000, budgetCheckEveryRows: 1 });
    let n = 0;
    // One budget read after each row of the first page: the budget ends on its last row, which
    // completes the page (a stop on the $limit-th row is not a cut).
    const first = await h.run({ runId: 'mine' }, { remaining: () => (++n <= 999 ? 60_000 : 10) });
    assert.equal(first.done, false);
    const theirs = await h.checkpoints.read();
    await h.checkpoints.write({ ...theirs!.checkpoint, runId: 'theirs' }, theirs!.etag);
    await assert.rejects(h.run({ runId: 'mine', cursor: first.cursor }), CheckpointConflictError);
    assert.equal((await h.checkpoints.read())!.checkpoint.runId, 'theirs');
  });

  test('a stale cursor resumes only from a checkpoint of its own run that is not behind it', async () => {
    acceptingFirehose();
    const h = harness(server, { pageSize: 500, budgetCheckEveryRows: 1 });
    let n = 0;
    const first = await h.run({ runId: 'own' }, { remaining: () => (++n <= 499 ? 60_000 : 10) });
    assert.equal(first.done, false);
    const stored = await h.checkpoints.read();
    const ordered = [...server.rows].sort((a, b) => (String(a[':updated_at']) + String(a[':id']) < String(b[':updated_at']) + String(b[':id']) ? -1 : 1));
    // Same run id, but behind the cursor's position: never resume backwards over a moved checkpoint.
    const behind = ordered[10]!;
    await h.checkpoints.write({ ...stored!.checkpoint, position: { updatedAt: String(behind[':updated_at']), id: String(behind[':id']) } }, stored!.etag);
    await assert.rejects(h.run({ runId: 'own', cursor: first.cursor }), CheckpointConflictError);
    // Same run id and ahead: continue from there with its etag.
    const now = await h.checkpoints.read();
    const ahead = ordered[1_499]!;
    await h.checkpoints.write({ ...now!.checkpoint, position: { updatedAt: String(ahead[':updated_at']), id: String(ahead[':id']) } }, now!.etag);
    const delivered = acceptingFirehose();
    const out = await h.run({ runId: 'own', cursor: first.cursor });
    assert.equal(out.done, true);
    assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(ordered.slice(1_500), ':id'));
  });
});

describe('fetcher: equal :updated_at across a page boundary', () => {
  test('rows sharing a timestamp are neither skipped nor repeated', async () => {
    const rows = Array.from({ length: 95 }, (_, i) => ({
      ':id': `row-${String(1000 + ((i * 37) % 95)).padStart(4, '0')}-aaaa`,
      ':created_at': '2024-05-01T00:00:00.000Z',
      // Three timestamp groups of 40, 40 and 15 rows; pages of 7 split every group.
      ':updated_at': i < 40 ? '2024-05-01T00:00:00.000Z' : i < 80 ? '2024-05-01T00:00:01.000Z' : '2024-05-02T00:00:00.000Z',
      id: `K${i}`,
      incident_number: String(i),
    }));
    const server = await startSocrataServer({ rows, datasetId: 'abcd-1234' });
    try {
      const delivered = acceptingFirehose();
      const out = await harness(server, { pageSize: 7, pointColumns: [] }).run({ runId: 'eq' });
      assert.equal(out.stats.pages, 14);
      assert.deepEqual(sortedIds(delivered.rows, 'id'), sortedIds(rows, 'id'));
    } finally {
      await server.close();
    }
  });
});

describe('fetcher: faults at the source', () => {
  test('429 with Retry-After, 500, 202, a reset, a timeout and a truncated page are retried; every row arrives once', async () => {
    const server = await startSocrataServer({ rows: 1_200, seed: 3 });
    try {
      server.setFaults([
        { kind: 'status', status: 429, retryAfter: '3', requests: [1] },
        { kind: 'status', status: 500, requests: [2] },
        { kind: 'status', status: 202, requests: [4] },
        { kind: 'reset', requests: [5] },
        { kind: 'slow', delayMs: 1_500, requests: [6] },
        { kind: 'truncate', requests: [8] },
      ]);
      const delivered = acceptingFirehose();
      const retry = recordingRetry(6);
      const out = await harness(server).run({ runId: 'faults' }, { retry, timeoutMs: 500 });
      assert.equal(out.done, true);
      assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(server.rows, ':id'));
      assert.equal(out.stats.sourceRetries, 6);
      assert.ok(retry.delays[0]! >= 3_000, `Retry-After honoured (waited ${retry.delays[0]} ms)`);
      assert.deepEqual(
        server.requests.filter((r) => r.fault).map((r) => r.fault),
        ['status', 'status', 'status', 'reset', 'slow', 'truncate'],
      );
    } finally {
      await server.close();
    }
  });

  test('a client error (400) is not retried, and the error says one attempt was made', async () => {
    const server = await startSocrataServer({ rows: 50, seed: 4 });
    try {
      acceptingFirehose();
      const h = harness(server);
      server.setFaults([{ kind: 'status', status: 400, body: 'query.soql.no-such-column', requests: [1] }]);
      const err = await h.run({ runId: 'bad-query' }, { retry: recordingRetry(5) }).then(
        () => assert.fail('expected the run to fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof SocrataRequestError);
      assert.equal(err.status, 400);
      assert.match(err.message, /after 1 attempt\(s\)/);
      assert.equal(server.requests.filter((r) => r.path.startsWith('/resource/')).length, 1, 'not retried');
      assert.equal(await h.checkpoints.read(), undefined);
    } finally {
      await server.close();
    }
  });

  test('a page that keeps failing ends the run with a clear error and leaves the checkpoint', async () => {
    const server = await startSocrataServer({ rows: 1_200, seed: 4 });
    try {
      acceptingFirehose();
      const h = harness(server);
      server.setFaults([{ kind: 'status', status: 503, body: 'upstream maintenance window', requests: [2, 3, 4] }]);
      const err = await h.run({ runId: 'fail' }, { retry: recordingRetry(3) }).then(
        () => assert.fail('expected the run to fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof SocrataRequestError);
      assert.equal(err.status, 503);
      assert.match(err.message, /dataset sf-fire-incidents/);
      assert.match(err.message, /127\.0\.0\.1:\d+\/resource\/wr8u-xric\.json\?\$select=:\*,\*/);
      assert.match(err.message, /upstream maintenance window/);
      assert.match(err.message, /after 3 attempt/);
      // The first page was delivered and checkpointed; the failed second page did not move it.
      const cp = await h.checkpoints.read();
      const firstPage = [...server.rows].sort((a, b) => Date.parse(String(a[':updated_at'])) - Date.parse(String(b[':updated_at'])) || (String(a[':id']) < String(b[':id']) ? -1 : 1))[499]!;
      assert.equal(keysetCheckpoint(cp).id, firstPage[':id']);
    } finally {
      await server.close();
    }
  });
});

describe('fetcher: Firehose delivery', () => {
  let server: SocrataServer;
  suiteSocrataServer({ rows: 900, seed: 11 }, (s) => (server = s));

  test('partial FailedPutCount: only failed records are re-sent, until every row is accepted exactly once', async () => {
    let calls = 0;
    const seenFailures = new Set<string>();
    // Fail every second record of the first three calls.
    const delivered = acceptingFirehose((record, call) => {
      calls = call;
      const key = record.subarray(0, 64).toString();
      if (call <= 3 && !seenFailures.has(key)) {
        seenFailures.add(key);
        return seenFailures.size % 2 === 0 ? 'ServiceUnavailableException' : undefined;
      }
      return undefined;
    });
    const out = await harness(server, { maxRecordBytes: 64 * 1024, pageSize: 450 }).run({ runId: 'partial' });
    assert.ok(calls > 2);
    assert.ok(out.stats.firehoseRetriedRecords > 0);
    assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(server.rows, ':id'));
    for (const call of delivered.calls) {
      const sizes = (call.Records ?? []).map((r) => r.Data!.length);
      assert.ok(sizes.length <= 500 && sizes.reduce((a, b) => a + b, 0) <= MAX_BATCH_BYTES);
    }
  });

  test('delivery that never succeeds fails the run and does not advance the checkpoint', async () => {
    const h = harness(server);
    acceptingFirehose((_r, call) => (call > 1 ? 'InternalFailure' : undefined));
    await assert.rejects(h.run({ runId: 'broken' }), /did not accept .* after 6 attempts/);
    const cp = await h.checkpoints.read();
    // Only the first page (accepted by call 1) is checkpointed.
    const ids = sortedIds(server.rows, ':id');
    assert.ok(cp);
    assert.ok(ids.includes(keysetCheckpoint(cp).id));
    const out = await (acceptingFirehose(), h.run({ runId: 'resume' }));
    assert.equal(out.stats.rowsFetched, 400, 'the resumed run starts after the last delivered page');
  });
  test('a page that fails delivery stops the checkpoint before it, even when later pages were delivered', async () => {
    const h = harness(server, { pageSize: 200 });
    const keyset = [...server.rows].sort((a, b) =>
      String(a[':updated_at']) < String(b[':updated_at']) ? -1 : String(a[':updated_at']) > String(b[':updated_at']) ? 1 : String(a[':id']) < String(b[':id']) ? -1 : 1,
    );
    const secondPage = new Set(keyset.slice(200, 400).map((r) => String(r[':id'])));
    let laterPagesDelivered = 0;
    acceptingFirehose((record) => {
      const ids = record.toString('utf8').trim().split('\n').map((l) => String((JSON.parse(l) as Record<string, unknown>)._source_id));
      if (ids.some((id) => secondPage.has(id))) return 'InternalFailure';
      if (ids.some((id) => keyset.findIndex((r) => r[':id'] === id) >= 400)) laterPagesDelivered++;
      return undefined;
    });
    await assert.rejects(h.run({ runId: 'hole' }), /did not accept/);
    assert.ok(laterPagesDelivered > 0, 'the next page was delivered while the failing one was retried');
    const cp = await h.checkpoints.read();
    assert.equal(keysetCheckpoint(cp).id, keyset[199]![':id'], 'the checkpoint stays on the last page before the hole');
    const out = await (acceptingFirehose(), h.run({ runId: 'fill' }));
    assert.equal(out.stats.rowsFetched, 700, 'the next run re-reads from the hole on');
  });
});

describe('fetcher: quarantine and large rows', () => {
  test('keyless rows are quarantined with reasons and counted; rows over a Firehose record are written whole as their own raw objects', async () => {
    const server = await startSocrataServer({ rows: 600, seed: 5 });
    try {
      const bad = server.mutate({ addKeyless: 3, addOversize: 2 });
      const delivered = acceptingFirehose();
      const h = harness(server);
      const out = await h.run({ runId: 'q' });
      assert.equal(out.stats.rowsQuarantined, 3);
      assert.equal(out.stats.quarantinedMissingKey, 3);
      assert.equal(out.stats.largeRowObjects, 2);
      assert.equal(out.stats.rowsDelivered, 602);
      assert.equal(delivered.rows.length, 600, 'Firehose gets the rows that fit a record');
      const keys = await h.store.list('quarantine/sf-fire-incidents/');
      assert.equal(keys.length, 1);
      assert.match(keys[0]!, /^quarantine\/sf-fire-incidents\/ingest_date=2025-07-01\/q-00001\.ndjson\.gz$/);
      const lines = gunzipSync((await h.store.get(keys[0]!))!.body).toString().trim().split('\n').map((l) => JSON.parse(l) as { reason: string; row: Record<string, unknown> });
      assert.deepEqual(lines.map((l) => l.reason), ['missing_primary_key', 'missing_primary_key', 'missing_primary_key']);
      assert.deepEqual(lines.map((l) => l.row[':id']).sort(), [...bad.keyless].sort());
      const large = await h.store.list('raw/sf-fire-incidents/');
      assert.equal(large.length, 2);
      for (const k of large) assert.match(k, /^raw\/sf-fire-incidents\/ingest_date=2025-07-01\/large-row-q-[0-9a-f]{20}\.gz$/);
      const rows = await Promise.all(large.map(async (k) => JSON.parse(gunzipSync((await h.store.get(k))!.body).toString()) as Record<string, unknown>));
      assert.deepEqual(rows.map((r) => r._source_id).sort(), [...bad.oversize].sort());
      for (const r of rows) {
        const src = server.rows.find((x) => x[':id'] === r._source_id)!;
        assert.equal(r.action_taken_other, src.action_taken_other, 'the large value whole');
        assert.ok(String(r.action_taken_other).length > 1_000_000);
      }
      // A retry of the run rewrites the same objects (names fixed by run and row), adds none.
      await h.run({ runId: 'q', mode: 'full-refresh' });
      assert.deepEqual(await h.store.list('raw/sf-fire-incidents/'), large);
    } finally {
      await server.close();
    }
  });

  test('the checkpoint never moves past a large row whose object was not written', async () => {
    const server = await startSocrataServer({ rows: 600, seed: 5 });
    try {
      server.mutate({ addOversize: 1 });
      acceptingFirehose();
      const h = harness(server);
      // The partition path is a file: the large row's write fails.
      mkdirSync(path.join(h.store.location, 'raw', 'sf-fire-incidents'), { recursive: true });
      writeFileSync(path.join(h.store.location, 'raw', 'sf-fire-incidents', 'ingest_date=2025-07-01'), 'not a directory');
      await assert.rejects(h.run({ runId: 'large-fails' }));
      const keyset = [...server.rows].sort((a, b) =>
        String(a[':updated_at']) < String(b[':updated_at']) ? -1 : String(a[':updated_at']) > String(b[':updated_at']) ? 1 : String(a[':id']) < String(b[':id']) ? -1 : 1,
      );
      const cp = await h.checkpoints.read();
      assert.equal(keysetCheckpoint(cp).id, keyset[499]![':id'], 'the checkpoint stays on the page before the large row');
    } finally {
      await server.close();
    }
  });
});
