/**
 * The run report and the history page, from real transform runs on DuckDB: the fetcher's figures
 * (runs/<dataset>/<run-id>/ in raw) reach the summary and the page, facts are formatted, tests are
 * sorted by outcome, the history page lists every run summary and links each report, and the page
 * renders in headless Chromium without errors.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { fetchStatsRecord, FetchStatsError, readFetchFigures, writeFetchStats } from '../../runtime/fetch-run-stats';
import { openObjectStore } from '../../runtime/object-store';
import { historyKey, reportKey, runSummaryKey } from '../../runtime/storage-layout';
import { historyIndexKey } from '../../containers/transform/src/history';
import { renderReport, sortTests } from '../../containers/transform/src/report';
import { runTransform, type RunSummary } from '../../containers/transform/src/transform';
import { incident, writeRawObject } from './raw-fixture';
import { reportFact } from './report-fixture';

const run$ = promisify(execFile);
const DATASET = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'));
const NAME = DATASET.name;
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

function dirs() {
  const root = mkdtempSync(path.join(tmpdir(), 'report-page-'));
  const rawDir = path.join(root, 'raw');
  const curatedDir = path.join(root, 'curated');
  return { root, rawDir, curatedDir, rawStore: openObjectStore(rawDir), curatedStore: openObjectStore(curatedDir) };
}

const NOW = new Date('2024-02-03T00:00:00.000Z');

/** The fetcher's stats objects of a run, as the handler writes them (cumulative per phase). */
async function fetcherFigures(d: ReturnType<typeof dirs>, runId: string): Promise<void> {
  const rows = (invocations: number, rowsFetched: number, done: boolean) => ({
    done,
    stats: {
      invocations,
      pages: invocations * 2,
      rowsFetched,
      rowsDelivered: rowsFetched - 3,
      rowsQuarantined: 3,
      quarantinedMissingKey: 2,
      quarantinedInvalidKey: 1,
      quarantinedRejected: 0,
      firehoseRecords: 40,
      firehoseCalls: 7,
      bytesDelivered: 2_345_678,
      firehoseRetriedRecords: 0,
      firehoseThrottledCalls: 0,
      sourceRetries: 4,
      timeBudgetDeferrals: 0,
      undeclaredColumns: ['new_col'],
      checkpoint: { updatedAt: '2024-02-01T00:00:00.000Z', id: 'row-59' },
    },
  });
  await writeFetchStats(d.rawStore, fetchStatsRecord(NAME, runId, 'rows', rows(1, 1000, false), NOW));
  await writeFetchStats(d.rawStore, fetchStatsRecord(NAME, runId, 'rows', rows(2, 12_345, true), NOW));
  await writeFetchStats(d.rawStore, fetchStatsRecord(NAME, runId, 'keys', { done: true, skipped: 'not due', stats: { invocations: 0, pages: 0, keys: 0 } }, NOW));
}

describe('fetch figures', () => {
  test('the newest object of each phase is the phase’s figures; a retried invocation rewrites its own object', async () => {
    const d = dirs();
    await fetcherFigures(d, 'r1');
    const again = fetchStatsRecord(NAME, 'r1', 'rows', { done: true, stats: { invocations: 2, rowsFetched: 12_345 } }, NOW);
    await writeFetchStats(d.rawStore, again);
    const f = (await readFetchFigures(d.rawStore, NAME, 'r1'))!;
    assert.equal(f.objects, 3, 'two rows objects (invocations 1 and 2) and the key scan');
    assert.equal(f.rows!.invocations, 2);
    assert.equal(f.rows!.counts.rowsFetched, 12_345);
    assert.equal(f.keys!.skipped, 'not due');
    assert.equal(await readFetchFigures(d.rawStore, NAME, 'other-run'), undefined);
  });
  test('an object that is not a stats object fails with its location named', async () => {
    const d = dirs();
    await d.rawStore.put(`runs/${NAME}/r2/fetch-rows-00001.json`, '{"version":1,"phase":"rows"}');
    await assert.rejects(readFetchFigures(d.rawStore, NAME, 'r2'), (e: Error) => e instanceof FetchStatsError && e.message.includes(`runs/${NAME}/r2/fetch-rows-00001.json`));
    // The transform reads them before it changes anything: the run fails with nothing written.
    writeRawObject(d.rawDir, NAME, '2024-02-01', 'a-1', [incident(1)]);
    await assert.rejects(
      runTransform({ dataset: DATASET, engine: 'duckdb', rawStore: d.rawStore, curatedStore: d.curatedStore, runId: 'r2' }),
      (e: Error) => e instanceof FetchStatsError,
    );
    assert.deepEqual(await d.curatedStore.list(''), []);
  });
});

describe('run report and history page', () => {
  const d = dirs();
  const runs: RunSummary[] = [];
  const transform = (runId: string, at: Date) =>
    runTransform({ dataset: DATASET, engine: 'duckdb', rawStore: d.rawStore, curatedStore: d.curatedStore, runId, now: () => at });

  test('the fetch figures reach the run summary and the report, formatted', async () => {
    writeRawObject(d.rawDir, NAME, '2024-02-01', 'a-1', Array.from({ length: 60 }, (_, i) => incident(i)));
    await fetcherFigures(d, 'run-a');
    const s = await transform('run-a', NOW);
    runs.push(s);
    assert.equal(s.fetch?.rows?.counts.rowsFetched, 12_345);
    assert.deepEqual(s.schemaDrift.undeclared, ['new_col'], 'drift recorded by the fetcher reaches the summary');
    assert.equal(s.freshness?.newestUpdatedAt, '2024-02-01T00:00:00.000Z');
    assert.equal(s.freshness?.lagMs, 2 * 86_400_000);
    assert.equal(s.freshness?.behindSourceMs, 0, 'the fetch read to the end: curated holds the source’s newest change');
    assert.equal(s.historyLocation, `${d.curatedStore.location}/${historyKey(DATASET)}`);
    const html = (await d.curatedStore.get(reportKey(DATASET, 'run-a')))!.body.toString();
    const fact = (label: string) => reportFact(html, label);
    assert.equal(fact('Rows fetched'), '12,345');
    assert.equal(fact('Pages / invocations'), '4 / 2');
    assert.equal(fact('Source retries'), '4');
    assert.equal(fact('Rows quarantined'), '3 (no key 2, key not a scalar 1, refused by Firehose 0)');
    assert.equal(fact('Bytes delivered'), '2.3 MB');
    assert.equal(fact('Key scan'), 'skipped (not due)');
    assert.equal(fact('Newest :updated_at in curated'), '2024-02-01 00:00 UTC ');
    assert.equal(fact('Behind the source'), 'no: curated holds the source’s newest change');
    assert.equal(fact('Undeclared source columns'), 'new_col');
    assert.equal(fact('Rows deleted'), 'no key scan this run');
    assert.match(html, /class="banner ok">Succeeded/);
    // The monthly mart: months as months, the newest first.
    const monthly = /id="mart-incidents_by_month_battalion"[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/.exec(html)![1]!;
    const months = [...monthly.matchAll(/<tr><td>(\d{4}-\d{2})/g)].map((m) => m[1]!);
    assert.equal(months[0], '2024-12');
    assert.deepEqual(months, [...months].sort().reverse());
    assert.doesNotMatch(html, /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z<\/td>/, 'no ISO instants in tables');
    assert.doesNotMatch(html, /<script/);
  });

  test('a run that succeeded with warnings is amber, not green', async () => {
    const s = runs[0]!;
    const html = await renderReport({ dataset: DATASET, summary: { ...s, tests: { ...s.tests, warned: 4 } }, marts: [] });
    assert.match(html, /class="banner warn">Succeeded with 4 warning\(s\)</);
    assert.doesNotMatch(html, /class="banner ok"/);
  });

  test('a run with only the row fetch (no key scan) shows its figures', async () => {
    const s = runs[0]!;
    const html = await renderReport({ dataset: DATASET, summary: { ...s, fetch: { rows: s.fetch!.rows!, objects: 2 } }, marts: [] });
    assert.match(html, /<th>Rows fetched<\/th><td[^>]*>12,345</);
    assert.doesNotMatch(html, /no fetch figures|Key scan and repair/);
  });

  test('without fetch figures the report says so', async () => {
    writeRawObject(d.rawDir, NAME, '2024-02-02', 'b-1', Array.from({ length: 5 }, (_, i) => incident(100 + i)));
    const s = await transform('run-b', new Date(NOW.getTime() + 3_600_000));
    runs.push(s);
    assert.equal(s.fetch, undefined);
    const html = (await d.curatedStore.get(reportKey(DATASET, 'run-b')))!.body.toString();
    assert.match(html, /no fetch figures for this run/);
  });

  test('data tests are listed failed errors first, then warnings, then skipped, then passes', () => {
    const r = (name: string, severity: 'error' | 'warn', status: 'pass' | 'fail' | 'warn' | 'skipped') => ({ name, severity, status, model: 'curated', description: '', failing: status === 'pass' ? 0 : 1 });
    const sorted = sortTests([r('a', 'error', 'pass'), r('b', 'warn', 'fail'), r('e', 'error', 'skipped'), r('c', 'warn', 'pass'), r('f', 'error', 'warn'), r('d', 'error', 'fail')]);
    assert.deepEqual(sorted.map((x) => x.name), ['d', 'b', 'f', 'e', 'a', 'c']);
  });

  test('warnings, skipped tests and models, failing-row tables and the freshness lag are shown as such', async () => {
    const s = runs[0]!;
    const results: RunSummary['tests']['results'] = [
      { name: 'source_freshness', severity: 'error', model: 'curated', description: 'newest row within the limits', status: 'warn', failing: 1, freshness: { loadedAtField: '_source_updated_at', newest: '2024-02-01T00:00:00.000Z', lagSeconds: 3 * 86_400, warnAfterSeconds: 2 * 86_400, errorAfterSeconds: 7 * 86_400 } },
      { name: 'm.unique_x', severity: 'error', model: 'm', description: 'one row per x', status: 'fail', failing: 2, failuresTable: 'curated.t__m__dbt_test__unique_x' },
      { name: 'n.not_null_y', severity: 'error', model: 'n', description: 'y is never null', status: 'skipped', failing: 0, skipReason: 'model n was not built' },
    ];
    const html = await renderReport({
      dataset: DATASET,
      summary: { ...s, status: 'tests_failed', failedErrorTests: ['m.unique_x'], skippedModels: [{ name: 'n', reason: 'm.unique_x failed' }], tests: { passed: 0, failed: 1, warned: 1, skipped: 1, results } },
      marts: [],
    });
    const row = (name: string) => new RegExp(`<tr class="(\\w+)"><td>(\\w+)</td><td>${name.replace('.', '\\.')}</td>[\\s\\S]*?</tr>`).exec(html);
    assert.deepEqual(row('source_freshness')?.slice(1, 3), ['warn', 'warn'], 'a warning is not shown as a failure');
    assert.match(row('source_freshness')![0], /3 d 0 h ago \(warn after 2 d 0 h, error after 7 d 0 h\)/);
    assert.deepEqual(row('m.unique_x')?.slice(1, 3), ['fail', 'FAIL']);
    assert.match(row('m.unique_x')![0], /failing rows kept in <code>curated\.t__m__dbt_test__unique_x<\/code>/);
    assert.deepEqual(row('n.not_null_y')?.slice(1, 3), ['skip', 'skipped']);
    assert.match(row('n.not_null_y')![0], /not run: model n was not built/);
    assert.match(html, /Models not built \(an upstream error test failed\): <b>n<\/b> \(m\.unique_x failed\)/);
    assert.match(html, /1 skipped<\/span>/);
  });

  test('the history page lists every run summary, newest first, each linking to its report', async () => {
    // A third run, and a summary written by an older version (fewer fields) in the store.
    runs.push(await transform('run-c', new Date(NOW.getTime() + 7_200_000)));
    await d.curatedStore.put(runSummaryKey(DATASET, 'old-run'), JSON.stringify({ runId: 'old-run', startedAt: '2023-01-01T00:00:00.000Z', status: 'succeeded', curatedRows: 1 }));
    // The history index is only a cache: drop it, and the page is rebuilt from the summaries.
    await d.curatedStore.put(historyIndexKey(DATASET), 'not json');
    runs.push(await transform('run-d', new Date(NOW.getTime() + 10_800_000)));
    const html = (await d.curatedStore.get(historyKey(DATASET)))!.body.toString();
    const linked = [...html.matchAll(/<a href="([^"]+)\.html">/g)].map((m) => m[1]);
    assert.deepEqual(linked, ['run-d', 'run-c', 'run-b', 'run-a', 'old-run']);
    for (const id of linked.filter((x) => x !== 'old-run')) assert.ok(await d.curatedStore.get(reportKey(DATASET, id!)), `report of ${id} exists beside the page`);
    const rowOf = (id: string) => new RegExp(`<a href="${id}\\.html">[\\s\\S]*?</tr>`).exec(html)![0];
    assert.match(rowOf('run-a'), /<td class="num">12,345<\/td>/, 'rows fetched of run-a');
    assert.match(rowOf('run-a'), /<td class="num">60<\/td><td class="num">60 \/ 0<\/td>/, 'read, inserted / updated');
    assert.match(rowOf('run-b'), /<td class="num">–<\/td>/, 'no fetch figures: a dash, not 0');
    assert.equal((html.match(/<svg/g) ?? []).length, 5, 'five charts over time');
    const index = JSON.parse((await d.curatedStore.get(historyIndexKey(DATASET)))!.body.toString()) as { runs: { runId: string }[] };
    assert.equal(index.runs.length, 5);
  });

  test('the report links to the history page and renders in headless Chromium without errors', { skip: CHROMIUM ? false : 'SKIPPED: chromium is not installed (apt-get install chromium); .ci/run installs it' }, async () => {
    const file = path.join(d.curatedDir, reportKey(DATASET, 'run-a'));
    const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', `--user-data-dir=${path.join(d.root, 'chromium')}`];
    const { stdout: dom, stderr } = await run$(CHROMIUM!, [...flags, '--enable-logging=stderr', '--v=0', '--dump-dom', `file://${file}`], { maxBuffer: 64 << 20, timeout: 90_000 });
    assert.doesNotMatch(stderr, /Uncaught|CONSOLE\(\d+\)\].*error/i);
    assert.match(dom, /<a href="index\.html">/);
    const svgs = dom.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
    assert.equal(svgs.length, 4, 'a chart per mart');
    const png = path.join(d.root, 'report.png');
    await run$(CHROMIUM!, [...flags, '--window-size=1400,3000', `--screenshot=${png}`, `file://${file}`], { timeout: 90_000 });
    assert.ok(existsSync(png));
    writeFileSync(path.join(d.root, 'done'), '');
  });
});
