/**
 * The synthesized state machine with FetchPage served by the REAL fetcher handler
 * (lambdas/fetcher/handler.ts) over the local Socrata and Firehose endpoints (real HTTP), and
 * Step Functions' own retry of a failed invocation: issue 9 item 3, the stale-cursor retry.
 *
 * Invocation 1 runs out of time budget and returns a cursor. Invocation 2 resumes from it,
 * delivers and checkpoints one page, then fails (the source answers 500 for the next page).
 * Step Functions retries it with the SAME cursor, whose checkpoint etag is now stale: the retry
 * must resume from the stored checkpoint and complete, every row delivered once.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import type { DatasetConfig } from '../../runtime/dataset-config';
import { LocalObjectStore } from '../../runtime/object-store';
import { checkpointKey, rawPrefix } from '../../runtime/storage-layout';
import type { FirehoseServer } from '../../local/firehose-server';
import type { SocrataServer } from '../../local/socrata-server';
import { realFetcherSuite } from './real-fetcher-fixture';
import { EXECUTION_NAME, TaskError, execute, happyHandlers } from './state-machine-harness';

const ROWS = 1000;
const PAGE = 100;

describe('stale-cursor retry with the real fetcher, executed by the synthesized state machine', () => {
  let socrata: SocrataServer;
  let firehose: FirehoseServer;
  let rawDir: string;
  let dataset: DatasetConfig;
  // One attempt per request (the fixture's): the injected 500 fails the invocation at once (no real backoff).
  realFetcherSuite({ fetch: { pageSize: PAGE, lookbackMinutes: 0 }, rows: ROWS, seed: 9, tmpPrefix: 'sfn-real-fetcher-' }, (e) => ({ socrata, firehose, rawDir, dataset } = e));

  // Without the fetcher's stale-cursor resume (lambdas/fetcher) every retry throws
  // CheckpointConflictError and the run fails: exactly issue 9 item 3.
  test('the retried invocation resumes from the stored checkpoint and the run completes, every row delivered once', async () => {
    const { handler } = await import('../../lambdas/fetcher/handler');
    const resourceRequests = () => socrata.requests.filter((r) => r.path.startsWith('/resource/')).length;
    const invocationErrors: string[] = [];
    let invocation = 0;
    const r = await execute({ mode: 'full-refresh' }, happyHandlers({
      FetchPage: async (input) => {
        invocation++;
        let budgetChecks = 0;
        // Invocation 1: time for three pages, then the budget is spent (returns a cursor).
        const remaining = () => (invocation === 1 && ++budgetChecks > 2 ? 0 : 600_000);
        // Invocation 2: its first page is served; the page after it (prefetched) answers 500,
        // after the first page is delivered and checkpointed.
        if (invocation === 2) socrata.setFaults([{ kind: 'status', status: 500, requests: [resourceRequests() + 2] }]);
        if (invocation === 3) socrata.setFaults([]);
        const payload = (input as unknown as { Payload: Parameters<typeof handler>[0] }).Payload;
        try {
          const out = await handler(JSON.parse(JSON.stringify(payload)), { getRemainingTimeInMillis: remaining, awsRequestId: `req-${invocation}` });
          return { StatusCode: 200, Payload: JSON.parse(JSON.stringify(out)) };
        } catch (err) {
          invocationErrors.push((err as Error).name);
          // What Lambda reports for a function error: the error's name as the Step Functions error.
          throw new TaskError((err as Error).name, (err as Error).message);
        }
      },
    }));
    await firehose.flush();

    const payloads = (r.calls.FetchPage ?? []).map((c) => (c as { Payload: { cursor: unknown } }).Payload);
    assert.equal(invocationErrors[0], 'SocrataRequestError', `the injected failure happened: ${invocationErrors.join(', ')}`);
    assert.ok(payloads.length >= 3, `invocations: ${payloads.length}`);
    assert.deepEqual(payloads[2], payloads[1], 'Step Functions retried invocation 2 with the same (now stale) cursor');
    assert.equal(r.status, 'SUCCEEDED', `run ended ${r.error}: ${r.cause}; invocation errors: ${invocationErrors.join(', ')}`);
    assert.deepEqual(invocationErrors, ['SocrataRequestError'], 'only the injected failure; the retry did not conflict');
    assert.equal(r.notices[0]?.message.status, 'SUCCEEDED');

    const store = new LocalObjectStore(rawDir);
    const ids: string[] = [];
    for (const key of await store.list(rawPrefix(dataset))) {
      const text = gunzipSync((await store.get(key))!.body).toString('utf8');
      for (const line of text.split('\n')) if (line) ids.push((JSON.parse(line) as { _source_id: string })._source_id);
    }
    const sourceIds = socrata.rows.map((row) => row[':id'] as string);
    assert.equal(new Set(ids).size, ROWS, 'every source row delivered');
    assert.deepEqual([...new Set(ids)].sort(), [...sourceIds].sort());
    assert.equal(ids.length, ROWS, `every row delivered once (${ids.length - ROWS} re-sent)`);

    const newest = [...socrata.rows].sort((a, b) => String(a[':updated_at']).localeCompare(String(b[':updated_at'])) || String(a[':id']).localeCompare(String(b[':id']))).at(-1)!;
    const checkpoint = JSON.parse(readFileSync(path.join(rawDir, checkpointKey(dataset)), 'utf8')) as { position: { id: string }; runId: string };
    assert.equal(checkpoint.position.id, newest[':id'], 'checkpoint at the last row');
    assert.equal(checkpoint.runId, EXECUTION_NAME);
  });
});
