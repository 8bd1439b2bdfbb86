/**
 * A failed `npm run local` leaves what a finished one leaves: its run summary (status failed, the
 * error), its report and a row on the history page, and says where they are.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runCli } from './local-run-fixture';
import { suiteTempDir } from '../support/suite-fixtures';

let root: string;
suiteTempDir('cli-failed-run-', (dir) => (root = dir));

test('a refused mass delete writes the failed run\'s summary, report and history row', async () => {
  const dataDir = path.join(root, 'data');
  const ok = await runCli(['--rows', '3000', '--data-dir', dataDir, '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  const r = await runCli(['--rows', '1000', '--data-dir', dataDir, '--json']);
  assert.equal(r.code, 4, r.stderr);
  const o = JSON.parse(r.stdout.trim()) as { status: string; error: string; reportPath: string; summaryPath: string; historyPath: string };
  assert.equal(o.status, 'failed');

  const summary = JSON.parse(await readFile(o.summaryPath, 'utf8')) as { status: string; error: string; runId: string; fetch?: { rows?: { counts: { rowsFetched: number } } } };
  assert.equal(summary.status, 'failed');
  assert.match(summary.error, /would delete 2000 of 3000 curated rows/);
  // The new, smaller source's rows past the old checkpoint: some, not all.
  assert.ok((summary.fetch?.rows?.counts.rowsFetched ?? 0) > 0, 'the fetch figures of the failed run are kept');
  assert.equal(path.basename(o.summaryPath), `${summary.runId}.json`);

  const report = await readFile(o.reportPath, 'utf8');
  assert.match(report, /<div class="banner bad">Run FAILED: Dataset sf-fire-incidents: the key scan/);
  assert.doesNotMatch(report, />curated rows</, 'no made-up transform figures');

  const history = await readFile(o.historyPath, 'utf8');
  assert.equal(history.match(/<a href="local-[^"]+\.html">/g)?.length, 2, 'both runs are on the history page');
  assert.match(history, new RegExp(`<a href="${summary.runId}\\.html">[^]*?<td class="status"[^>]*>failed: Dataset sf-fire-incidents: the key scan`));
  // The person at the terminal is told where they are too.
  assert.match(r.stderr, new RegExp(`\\nReport: {2}${o.reportPath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\nHistory: `));
});
