/**
 * `npm run local` as a user runs it (a child process), `npm run query` on what it left, and the
 * HTML report rendered by headless Chromium.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';

const run = promisify(execFile);
const REPO = path.join(import.meta.dirname, '..', '..');
const TSX = path.join(REPO, 'node_modules', '.bin', 'tsx');
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

let root: string;
let dataDir: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'local-cli-'));
  dataDir = path.join(root, 'data');
});
after(() => rm(root, { recursive: true, force: true }));

async function cli(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(TSX, [path.join(REPO, 'local', script), ...args], { cwd: root, maxBuffer: 32 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('npm run local (CLI)', () => {
  let summary: {
    fetch: { rowsFetched: number; rowsDelivered: number; rowsQuarantined: number };
    transform: { curatedRows: number; tests: { failed: number; passed: number } };
    reportPath: string;
    timings: Record<string, number>;
  };

  test('--json prints the run summary as one JSON object on the last line', async () => {
    const r = await cli('cli.ts', ['--rows', '1500', '--data-dir', dataDir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const last = r.stdout.trim().split('\n').at(-1)!;
    summary = JSON.parse(last);
    assert.equal(summary.fetch.rowsFetched, 1500);
    assert.equal(summary.fetch.rowsDelivered, 1500);
    assert.equal(summary.fetch.rowsQuarantined, 0);
    assert.equal(summary.transform.curatedRows, 1500);
    assert.equal(summary.transform.tests.failed, 0);
    assert.ok(summary.transform.tests.passed > 0);
    for (const k of ['fetchMs', 'crawlMs', 'transformMs', 'totalMs']) assert.equal(typeof summary.timings[k], 'number');
    assert.ok((await stat(summary.reportPath)).size > 10_000);
  });

  test('npm run query reads the catalog it left, in both output formats', async () => {
    const json = await cli('query-cli.ts', ['--data-dir', dataDir, '--json', 'SELECT count(*) AS n FROM curated.sf_fire_incidents']);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), [{ n: 1500 }]);
    const raw = await cli('query-cli.ts', ['--data-dir', dataDir, 'SELECT count(*) AS raw_rows FROM raw.sf_fire_incidents']);
    assert.match(raw.stdout, /raw_rows/);
    assert.match(raw.stdout, /1500/);
  });

  test('the human summary names the report and a re-run fetches nothing new', async () => {
    const r = await cli('cli.ts', ['--rows', '1500', '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /fetch\s+0 rows/);
    assert.match(r.stdout, /curated\s+1,500 rows/);
    assert.match(r.stdout, /Report: .*\.html/);
    // The history page beside the reports, listing both runs of this data directory.
    const history = /History: (.*index\.html)/.exec(r.stdout)?.[1];
    assert.ok(history, r.stdout);
    assert.equal((await readFile(history, 'utf8')).match(/<a href="local-[^"]+\.html">/g)?.length, 2);
  });

  test('bad input is one clear line and a usage exit code', async () => {
    const r = await cli('cli.ts', ['--rows', 'lots', '--data-dir', dataDir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: --rows must be a whole number/);
    const unknown = await cli('cli.ts', ['--dataset', 'no-such-dataset', '--data-dir', dataDir]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /No dataset "no-such-dataset".*known: sf-fire-incidents/);
    const q = await cli('query-cli.ts', ['--data-dir', dataDir, 'SELECT * FROM curated.nope']);
    assert.equal(q.code, 1);
    // One error line, then the tables there are (what the person meant is among them).
    const [error, heading, ...tables] = q.stderr.trim().split('\n');
    assert.match(error!, /^query: .*nope does not exist/);
    assert.equal(heading, `tables in ${dataDir}:`);
    assert.deepEqual(tables, [
      '  raw.sf_fire_incidents',
      '  curated.sf_fire_incidents',
      '  curated.sf_fire_incidents__battalion_totals',
      '  curated.sf_fire_incidents__changes',
      '  curated.sf_fire_incidents__history',
      '  curated.sf_fire_incidents__incidents_by_month_battalion',
      '  curated.sf_fire_incidents__losses_by_primary_situation',
      '  curated.sf_fire_incidents__response_time_by_neighborhood',
    ]);
    const typo = await cli('query-cli.ts', ['--data-dri', dataDir, 'SELECT 1']);
    assert.equal(typo.code, 2);
    assert.equal(typo.stderr, 'query: unknown option --data-dri; did you mean --data-dir? (npm run query -- --help)\n');
  });

  test('the HTML report renders in headless Chromium with its charts', { skip: CHROMIUM ? false : 'SKIPPED: chromium is not installed (apt-get install chromium); .ci/run installs it' }, async () => {
    const html = await readFile(summary.reportPath, 'utf8');
    assert.doesNotMatch(html, /<script[^>]+src=|https?:\/\/(?!vega\.github\.io|www\.w3\.org)/, 'self-contained: no external resources');
    const profile = path.join(root, 'chromium-profile');
    const flags = [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`,
    ];
    const { stdout: dom } = await run(CHROMIUM!, [...flags, '--dump-dom', `file://${summary.reportPath}`], { maxBuffer: 64 << 20, timeout: 60_000 });
    // One chart per mart, each an SVG with drawn marks.
    const svgs = dom.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
    assert.ok(svgs.length >= 4, `expected a chart per mart, got ${svgs.length}`);
    for (const svg of svgs) assert.match(svg, /<path|<rect|<line/);
    assert.match(dom, /incidents_by_month_battalion/);
    assert.match(dom, /response_time_by_neighborhood/);
    const png = path.join(root, 'report.png');
    await run(CHROMIUM!, [...flags, '--window-size=1200,2000', `--screenshot=${png}`, `file://${summary.reportPath}`], { timeout: 60_000 });
    assert.ok((await stat(png)).size > 20_000, 'the screenshot has content');
  });
});
