/**
 * The generated local source behaves like a real one across runs of a data directory: growing it
 * with `--rows` inserts the new rows with a new `:updated_at`, after the checkpoint, so an
 * incremental run picks up every one of them (regenerated, some would sort behind it and be lost).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runLocalPipeline } from '../../local/pipeline';
import { curatedIds, generatedSource } from './local-run-fixture';
import { localSourceFile } from '../../local/local-source-state';
import { fireIncidents } from '../support/dataset-builder';
import { suiteTempDir } from '../support/suite-fixtures';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const dataset = fireIncidents({ fetch: { pageSize: 250 } });

let root: string;
suiteTempDir('local-growth-', (dir) => (root = dir));

test('growing the source with --rows: every new row is fetched by the next incremental run', async () => {
  const dataDir = path.join(root, 'grow');
  const before1 = Date.now();
  const first = await runLocalPipeline({ dataset, dataDir, rows: 1_000 });
  assert.equal(first.transform?.curatedRows, 1_000);
  // A new local source was loaded recently, never in the future: its freshness test passes.
  const newest1 = Date.parse(first.transform!.freshness!.newestUpdatedAt!);
  assert.ok(newest1 < before1, `newest :updated_at ${new Date(newest1).toISOString()} is in the past`);
  assert.ok(before1 - newest1 < 3 * 3_600_000, `newest :updated_at ${new Date(newest1).toISOString()} is within hours, not years`);
  assert.equal(first.transform!.tests.results.find((r) => r.name === 'source_freshness')?.status, 'pass');
  const before2 = Date.now();
  const second = await runLocalPipeline({ dataset, dataDir, rows: 1_300 });
  assert.equal(second.fetch.rowsFetched, 300, 'exactly the new rows');
  // The grown rows carry the time they were added (after every earlier row, not in the future).
  const newest2 = Date.parse(second.transform!.freshness!.newestUpdatedAt!);
  assert.ok(newest2 >= before2 && newest2 <= Date.now(), `grown rows' :updated_at ${new Date(newest2).toISOString()} is the time of the growth`);
  const curated = await curatedIds(dataDir);
  assert.equal(curated.length, 1_300);
  assert.deepEqual(new Set(curated), new Set(generatedSource(1_300).map((r) => r.id)));
  // The same data directory replays the same growth: a third run finds nothing new.
  const third = await runLocalPipeline({ dataset, dataDir, rows: 1_300 });
  assert.equal(third.fetch.rowsFetched, 0);
  const state = JSON.parse(await readFile(localSourceFile(dataDir, dataset.name), 'utf8'));
  assert.deepEqual(state.rows, [1_000, 1_300]);
  assert.equal(state.grownAt.length, 1, 'one growth, one time');
  // The same URL each run (a free port is reused), so the source a checkpoint belongs to stays the same.
  assert.equal(third.source, second.source);
  assert.equal(third.source, `http://127.0.0.1:${state.port}/resource/wr8u-xric.json`);
});
