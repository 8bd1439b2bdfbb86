/**
 * A parallel backfill executed by the synthesized state machine, FetchPage served by the REAL
 * fetcher handler over the local Socrata and Firehose endpoints: one range's stream fails.
 *
 * The ranges run inside one invocation (docs/fetcher.md says why, not a Map state), so "a failed
 * iteration" is a failed invocation: Step Functions retries it, and when every retry fails the
 * run fails. Either way the next attempt resumes each range from its last saved page and the
 * backfill ends with every source row in the raw zone and the checkpoint at the last row.
 */
import { keysetCheckpoint } from '../support/checkpoint';
import { KEYSET_POSITIONS } from '../../lambdas/fetcher/sources/socrata/socrata-source';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import type { DatasetConfig } from '../../runtime/dataset-config';
import { LocalObjectStore } from '../../runtime/object-store';
import { rawPrefix } from '../../runtime/storage-layout';
import { CheckpointStore } from '../../lambdas/fetcher/checkpoint-store';
import { planRanges } from '../../lambdas/fetcher/sources/socrata/parallel-plan';
import { RangeProgressStore } from '../../lambdas/fetcher/range-progress';
import type { FirehoseServer } from '../../local/firehose-server';
import type { SocrataServer } from '../../local/socrata-server';
import { planRequest } from '../fetcher/harness';
import { realFetcherSuite } from './real-fetcher-fixture';
import { TaskError, execute, happyHandlers } from './state-machine-harness';

const ROWS = 1_200;

describe('a parallel backfill whose stream fails, executed by the synthesized state machine', () => {
  let socrata: SocrataServer;
  let firehose: FirehoseServer;
  let rawDir: string;
  let dataset: DatasetConfig;
  // One attempt per request (the fixture's): an injected 500 fails its stream at once (no real backoff).
  realFetcherSuite(
    { fetch: { pageSize: 100, lookbackMinutes: 0, streams: 4, parallelMinRows: 100 }, rows: ROWS, seed: 21, tmpPrefix: 'sfn-parallel-' },
    (e) => ({ socrata, firehose, rawDir, dataset } = e),
  );

  /** FetchPage served by the real handler; its errors reported as Lambda reports a function error. */
  const realFetchPage = (errors: string[]) => async (input: unknown) => {
    const { handler } = await import('../../lambdas/fetcher/handler');
    const payload = (input as { Payload: Parameters<typeof handler>[0] }).Payload;
    try {
      const out = await handler(JSON.parse(JSON.stringify(payload)), { getRemainingTimeInMillis: () => 600_000, awsRequestId: 'req' });
      return { StatusCode: 200, Payload: JSON.parse(JSON.stringify(out)) };
    } catch (err) {
      errors.push((err as Error).name);
      throw new TaskError((err as Error).name, (err as Error).message);
    }
  };

  const rawIds = async (): Promise<string[]> => {
    const store = new LocalObjectStore(rawDir);
    const ids: string[] = [];
    for (const key of await store.list(rawPrefix(dataset))) {
      for (const line of gunzipSync((await store.get(key))!.body).toString('utf8').split('\n')) if (line) ids.push((JSON.parse(line) as { _source_id: string })._source_id);
    }
    return ids;
  };

  test('every attempt of the run fails on one range: the run fails, the checkpoint stays; the next run resumes the ranges and completes', async () => {
    // The second range's requests all end at its upper edge: fail every one of them.
    const plan = (await planRanges({ fetchPage: (q) => planRequest(socrata, q) }, null, 4, 100))!;
    const secondEnd = `:id <= '${plan.ranges[1]!.until!.id}'`;
    socrata.setFaults([{ kind: 'status', status: 500, whereIncludes: secondEnd, times: 100 }]);
    const errors: string[] = [];
    const failed = await execute({ mode: 'full-refresh' }, happyHandlers({ FetchPage: realFetchPage(errors) }));
    await firehose.flush();
    assert.equal(failed.status, 'FAILED', `the run should fail: ${failed.status}`);
    assert.ok(errors.length >= 2 && errors.every((e) => e === 'SocrataRequestError'), `Step Functions retried the failed invocation: ${errors.join(', ')}`);
    const store = new LocalObjectStore(rawDir);
    assert.equal(await new CheckpointStore(store, dataset.name).read(), undefined, 'no checkpoint while a range is unfinished');
    const saved = (await new RangeProgressStore(store, dataset.name, KEYSET_POSITIONS).read())!.progress;
    assert.equal(saved.ranges[1]!.position, null, 'the failing range delivered nothing');
    assert.ok(saved.ranges.filter((r) => r.done).length >= 1, 'the other ranges went on and were saved');

    // The source recovers; the next run resumes the plan and completes.
    socrata.setFaults([]);
    const next = await execute({ mode: 'full-refresh' }, happyHandlers({ FetchPage: realFetchPage(errors) }));
    await firehose.flush();
    assert.equal(next.status, 'SUCCEEDED', `${next.error}: ${next.cause}`);
    const ids = await rawIds();
    assert.deepEqual([...new Set(ids)].sort(), socrata.rows.map((r) => r[':id'] as string).sort(), 'every source row in the raw zone');
    const checkpoint = keysetCheckpoint(await new CheckpointStore(store, dataset.name).read());
    const newest = [...socrata.rows].sort((a, b) => String(a[':updated_at']).localeCompare(String(b[':updated_at'])) || String(a[':id']).localeCompare(String(b[':id']))).at(-1)!;
    assert.equal(checkpoint.id, newest[':id'], 'checkpoint at the last row');
    assert.equal((await new RangeProgressStore(store, dataset.name, KEYSET_POSITIONS).read())!.progress.done, true);
  });
});
