/**
 * Progress as a person watching `npm run local` sees it: rows counted as they stream in (a page is
 * up to 200,000 rows, one request), and a line for each step after the fetch.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { progressPrinter } from '../../local/cli-progress';
import { runLocalPipeline, type FetchProgress, type RunStep } from '../../local/pipeline';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { REPO } from './local-run-fixture';
import { suiteTempDir } from '../support/suite-fixtures';

let root: string;
suiteTempDir('cli-progress-', (dir) => (root = dir));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the pipeline reports', () => {
  test('rows as they stream in, before the one page ends, then the steps after the fetch in order', async () => {
    const updates: FetchProgress[] = [];
    const steps: RunStep[] = [];
    const summary = await runLocalPipeline({
      dataset: loadDatasetFile(path.join(REPO, 'datasets', 'sf-fire-incidents.json')),
      dataDir: path.join(root, 'run'),
      rows: 15_000,
      onProgress: (p) => updates.push(p),
      onStep: (s) => steps.push(s),
      // Often enough that a page streaming in well under a second is seen mid-way on a fast machine.
      progressEveryMs: 10,
    });
    // Under the parallel-streams threshold (20,000 rows): one stream, one page.
    assert.equal(summary.fetch.pages, 1, 'one page: finished pages alone would show 0 rows until the end');
    const midPage = updates.filter((u) => !u.done && u.pages === 0 && u.rowsFetched > 0 && u.rowsFetched < 15_000);
    assert.ok(midPage.length > 0, `rows counted while the page streams: ${updates.map((u) => u.rowsFetched).join(', ')}`);
    for (let i = 1; i < updates.length; i++) assert.ok(updates[i]!.rowsFetched >= updates[i - 1]!.rowsFetched, 'never goes back');
    assert.deepEqual(steps, ['key scan', 'crawl', 'transform']);
  });
});

describe('the printer', () => {
  test('not a terminal: a line as each step starts and one per interval while it lasts; no fetch line after', async () => {
    let out = '';
    const p = progressPrinter({ isTTY: false, write: (t) => (out += t) }, 30);
    p.update({ rowsFetched: 10, rowsDelivered: 10, rowsQuarantined: 0, pages: 0, retries: 0, elapsedMs: 1000 });
    p.step('key scan');
    await sleep(100);
    p.step('transform');
    await sleep(100);
    p.done();
    const ended = out;
    await sleep(80);
    assert.equal(out, ended, 'nothing after done');
    const lines = out.trim().split('\n');
    assert.equal(lines[0], 'key scan: started');
    assert.ok(lines.includes('transform: started'));
    assert.ok(lines.some((l) => /^key scan: 0 s so far$/.test(l)), out);
    assert.ok(lines.some((l) => /^transform: 0 s so far$/.test(l)), out);
    assert.ok(!lines.some((l) => l.startsWith('fetch progress')), 'the fetch line stops when the steps begin');
    assert.ok(lines.indexOf('transform: started') > lines.lastIndexOf('key scan: 0 s so far'), 'the key scan line stops when the transform starts');
  });

  test('on a terminal: a spinner with the step and its seconds, ended before a log line and at the end', async () => {
    let out = '';
    const p = progressPrinter({ isTTY: true, write: (t) => (out += t) }, 5_000);
    p.update({ rowsFetched: 10, rowsDelivered: 10, rowsQuarantined: 0, pages: 0, retries: 0, elapsedMs: 1000, done: true });
    p.step('crawl');
    await sleep(250);
    assert.match(out, /\n\r⠋ crawl 0 s \r⠙ crawl 0 s /);
    p.log('schema drift: x');
    assert.match(out, / \nschema drift: x\n$/);
    p.done();
    const ended = out;
    await sleep(150);
    assert.equal(out, ended, 'the spinner stops');
  });
});
