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
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { loadDatasetFile, type DatasetConfig } from '../../runtime/dataset-config';
import { LocalObjectStore } from '../../runtime/object-store';
import { rawPrefix } from '../../runtime/storage-layout';
import { CheckpointStore } from '../../lambdas/fetcher/checkpoint-store';
import { planRanges } from '../../lambdas/fetcher/sources/socrata/parallel-plan';
import { RangeProgressStore } from '../../lambdas/fetcher/range-progress';
import { startFirehoseServer, streamsFromDatasets, type FirehoseServer } from '../../local/firehose-server';
import { localFetcherEnv } from '../../local/pipeline';
import { startSocrataServer, type SocrataServer } from '../../local/socrata-server';
import { planRequest } from '../fetcher/harness';
import { REPO_ROOT } from './app-fixture';
import { TaskError, execute, happyHandlers } from './state-machine-harness';

const ROWS = 1_200;

describe('a parallel backfill whose stream fails, executed by the synthesized state machine', () => {
  let socrata: SocrataServer;
  let firehose: FirehoseServer;
  let rawDir: string;
  let dataset: DatasetConfig;
  const savedEnv = { ...process.env };

  before(async () => {
    const base = loadDatasetFile(path.join(REPO_ROOT, 'datasets', 'sf-fire-incidents.json'));
    dataset = { ...base, fetch: { ...base.fetch, pageSize: 100, lookbackMinutes: 0, streams: 4, parallelMinRows: 100 } };
    rawDir = mkdtempSync(path.join(os.tmpdir(), 'sfn-parallel-'));
    socrata = await startSocrataServer({ rows: ROWS, seed: 21 });
    firehose = await startFirehoseServer({ store: new LocalObjectStore(rawDir), streams: streamsFromDatasets([dataset]) });
    Object.assign(process.env, localFetcherEnv({ dataset, datasetId: socrata.datasetId, baseUrl: socrata.url, firehoseUrl: firehose.url, rawDir, marginMs: 0 }), {
      // One attempt per request: an injected 500 fails its stream at once (no real backoff).
      MAX_ATTEMPTS: '1',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
    });
  });
  after(async () => {
    await firehose?.close();
    await socrata?.close();
    process.env = savedEnv;
  });

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
