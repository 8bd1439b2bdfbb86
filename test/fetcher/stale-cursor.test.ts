/**
 * Issue 9 item 3, end to end over real HTTP with the real handler: an invocation that moved the
 * checkpoint and then failed is retried by Step Functions with the same (now stale) cursor; the
 * retry continues from the stored checkpoint instead of failing with CheckpointConflictError.
 * Does not import ./harness (its Firehose mock would replace the local Firehose endpoint).
 */
import { keysetCheckpoint } from '../support/checkpoint';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { startLocalFirehose, type FirehoseServer } from '../../local/firehose-server';
import { localFetcherEnv } from '../../local/pipeline';
import { startSocrataServer, type SocrataServer } from '../../local/socrata-server';
import { socrataSource, loadDatasetFile } from '../../runtime/dataset-config';
import { LocalObjectStore } from '../../runtime/object-store';
import { CheckpointConflictError, CheckpointStore } from '../../lambdas/fetcher/checkpoint-store';
import type { FetchCursor } from '../../lambdas/fetcher/fetch-run';

const dataset = loadDatasetFile(path.join(import.meta.dirname, '../../datasets/sf-fire-incidents.json'));
let socrata: SocrataServer;
let firehose: FirehoseServer;
let dataDir: string;

before(async () => {
  socrata = await startSocrataServer({ rows: 1_000, seed: 31 });
  dataDir = mkdtempSync(path.join(tmpdir(), 'fetcher-stale-'));
  firehose = await startLocalFirehose({ dataDir, datasets: [dataset] });
});
after(async () => {
  await firehose.close();
  await socrata.close();
});

const resourceRequests = (): number => socrata.requests.filter((r) => r.path.startsWith('/resource/')).length;

test('a retried invocation with a stale cursor continues from the checkpoint its failed attempt wrote', { timeout: 60_000 }, async () => {
  const rawDir = path.join(dataDir, 'buckets', 'raw');
  Object.assign(process.env, localFetcherEnv({ dataset, datasetId: socrata.datasetId, baseUrl: socrata.url, firehoseUrl: firehose.url, rawDir, marginMs: 1_000 }), {
    PAGE_SIZE: '100',
    MAX_ATTEMPTS: '2',
  });
  const { handler } = await import('../../lambdas/fetcher/handler');
  // `reads` reads of the remaining time get a full budget, later ones none (the page-start check).
  const context = (reads: number) => {
    let n = 0;
    return { awsRequestId: `req-${Math.random()}`, getRemainingTimeInMillis: () => (++n <= reads ? 600_000 : 0) };
  };
  const runId = 'run-stale';

  // Invocation 1: one page, then the cursor.
  const first = await handler({ runId, mode: 'incremental' }, context(1));
  assert.equal(first.done, false);
  const staleCursor = JSON.parse(JSON.stringify(first.cursor)) as FetchCursor;

  // Invocation 2 from that cursor: two more pages are delivered and checkpointed, then the source
  // fails every attempt of the fourth page and the invocation fails.
  const n = resourceRequests();
  socrata.setFaults([{ kind: 'status', status: 503, requests: [n + 3, n + 4] }]);
  await assert.rejects(handler({ runId, cursor: staleCursor }, context(1_000)), /failed \(HTTP 503/);
  const moved = await new CheckpointStore(new LocalObjectStore(rawDir), dataset.name).read();
  assert.notEqual(moved!.etag, staleCursor.checkpointEtag, 'the failed attempt moved the checkpoint');

  // Step Functions retries with the same input, the stale cursor: it resumes and finishes.
  let out = await handler({ runId, cursor: staleCursor }, context(1_000));
  while (!out.done) out = await handler({ runId, cursor: out.cursor }, context(1_000));
  await firehose.flush();

  const delivered: string[] = [];
  const store = new LocalObjectStore(rawDir);
  for (const key of await store.list(`raw/${dataset.name}/`)) {
    const text = gunzipSync((await store.get(key))!.body).toString('utf8');
    for (const line of text.split('\n')) if (line) delivered.push(String((JSON.parse(line) as { _source_id: string })._source_id));
  }
  const sourceIds = socrata.rows.map((r) => String(r[':id'])).sort();
  assert.deepEqual([...new Set(delivered)].sort(), sourceIds, 'no row missing, none foreign');
  // At-least-once: only the page in flight when the attempt failed may arrive twice.
  assert.ok(delivered.length - sourceIds.length <= 100, `${delivered.length - sourceIds.length} rows re-sent`);
  const last = [...socrata.rows].sort((a, b) => (String(a[':updated_at']) + String(a[':id']) < String(b[':updated_at']) + String(b[':id']) ? -1 : 1)).at(-1)!;
  const cp = await new CheckpointStore(store, dataset.name).read();
  assert.equal(keysetCheckpoint(cp).id, last[':id'], 'the checkpoint ends at the last row');
  assert.equal(cp!.checkpoint.runId, runId);
  assert.deepEqual(cp!.checkpoint.source, { type: 'socrata', domain: socrataSource(dataset, 'this test').domain, datasetId: socrata.datasetId });

  // A checkpoint another run wrote is still a conflict, not something to resume from.
  await new CheckpointStore(store, dataset.name).write({ ...cp!.checkpoint, runId: 'someone-else' }, cp!.etag);
  await assert.rejects(handler({ runId, cursor: staleCursor }, context(1_000)), CheckpointConflictError);
});
