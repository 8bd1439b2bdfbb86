/**
 * What the run report tells beyond the counts: how long the run and each phase took, a few values
 * that fail each failing test, a column profile when there are no marts, units that read
 * naturally and a short description; and the history page's charts (a point per run, x labels
 * that never repeat, whole legends). Sample values and the profile run on DuckDB here and on both
 * engines (Trino) in report-details-engines.test.ts, from the same fixture (report-fixture.ts).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { fetchStatsRecord, phaseDurationMs, readFetchFigures, writeFetchStats } from '../../runtime/fetch-run-stats';
import { openObjectStore } from '../../runtime/object-store';
import { reportKey } from '../../runtime/storage-layout';
import { historyRow, overTime, renderHistory, runTimeAxis, type HistoryRow } from '../../containers/transform/src/history';
import { renderReport } from '../../containers/transform/src/report';
import { renderSvg } from '../../containers/transform/src/report-charts';
import { martTable, shortDescription } from '../../containers/transform/src/report-format';
import { runTransform, type RunSummary } from '../../containers/transform/src/transform';
import { incident, writeRawObject } from './raw-fixture';
import { EXPECTED_SAMPLES, profiledDataset, profiledRows, reportFact } from './report-fixture';

const DATASET_FILE = path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json');
const DATASET = loadDatasetFile(DATASET_FILE);

function dirs() {
  const root = mkdtempSync(path.join(tmpdir(), 'report-details-'));
  const rawDir = path.join(root, 'raw');
  const curatedDir = path.join(root, 'curated');
  return { root, rawDir, curatedDir, rawStore: openObjectStore(rawDir), curatedStore: openObjectStore(curatedDir) };
}

const T0 = Date.parse('2024-02-03T00:00:00.000Z');
const at = (s: number): Date => new Date(T0 + s * 1000);

describe('durations', () => {
  test('each fetch phase lasts from its recorded start to its newest stats object; the run from the earliest start to the transform’s end', async () => {
    const d = dirs();
    const rows = (invocations: number) => ({ done: invocations === 2, startedAt: at(0).toISOString(), stats: { invocations, rowsFetched: 100 * invocations } });
    await writeFetchStats(d.rawStore, fetchStatsRecord(DATASET.name, 'r1', 'rows', rows(1), at(30)));
    await writeFetchStats(d.rawStore, fetchStatsRecord(DATASET.name, 'r1', 'rows', rows(2), at(90)));
    await writeFetchStats(d.rawStore, fetchStatsRecord(DATASET.name, 'r1', 'keys', { done: true, startedAt: at(95).toISOString(), stats: { invocations: 1, keys: 60 } }, at(100)));
    // A stats object from a fetcher that did not pass the start: its duration is not known.
    await writeFetchStats(d.rawStore, fetchStatsRecord(DATASET.name, 'r1', 'repair', { done: true, stats: { invocations: 1, rowsDelivered: 0 } }, at(110)));
    const f = (await readFetchFigures(d.rawStore, DATASET.name, 'r1'))!;
    assert.equal(f.rows!.startedAt, at(0).toISOString());
    assert.equal(phaseDurationMs(f.rows!), 90_000);
    assert.equal(phaseDurationMs(f.keys!), 5_000);
    assert.equal(phaseDurationMs(f.repair!), undefined);

    writeRawObject(d.rawDir, DATASET.name, '2024-02-01', 'a', Array.from({ length: 10 }, (_, i) => incident(i)));
    const s = await runTransform({ dataset: DATASET, engine: 'duckdb', rawStore: d.rawStore, curatedStore: d.curatedStore, runId: 'r1', now: () => at(120) });
    assert.equal(s.fetch?.rows?.startedAt, at(0).toISOString(), 'the start reaches the run summary');
    const html = (await d.curatedStore.get(reportKey(DATASET, 'r1')))!.body.toString();
    const fact = (label: string) => reportFact(html, label);
    assert.equal(fact('Fetch: rows'), '1 min 30 s');
    assert.equal(fact('Fetch: key scan'), '5.0 s');
    assert.equal(fact('Fetch: repair'), 'not known (start not recorded)');
    assert.equal(fact('Run'), '2 min 0 s');
  });

  test('the transform’s stages are timed where they run, and add up to no more than its duration', async () => {
    const d = dirs();
    writeRawObject(d.rawDir, DATASET.name, '2024-02-01', 'a', Array.from({ length: 20 }, (_, i) => incident(i)));
    // Every reading of the clock advances it a second: each stage that runs takes time.
    let tick = 0;
    const s = await runTransform({ dataset: DATASET, engine: 'duckdb', rawStore: d.rawStore, curatedStore: d.curatedStore, runId: 'r2', now: () => at(tick++) });
    const stages = s.stageMs!;
    for (const stage of ['merge', 'history', 'marts', 'tests', 'report'] as const) assert.ok((stages[stage] ?? 0) > 0, `${stage} timed: ${JSON.stringify(stages)}`);
    assert.equal(stages.profile, undefined, 'a dataset with marts is not profiled');
    const staged = Object.values(stages).reduce((a, b) => a + b, 0);
    assert.ok(staged <= s.durationMs, `stages ${staged} ms within the run's ${s.durationMs} ms`);
    assert.equal(s.durationMs, Date.parse(s.finishedAt) - Date.parse(s.startedAt));
    const html = (await d.curatedStore.get(reportKey(DATASET, 'r2')))!.body.toString();
    assert.match(html, new RegExp(`<th>\u2003staging and merge</th><td>[^<]+ s</td>`));
    assert.match(html, /<th>\u2003marts<\/th>/);
  });
});

describe('failing values and the column profile (DuckDB)', () => {
  test('a failing test shows a few failing values, most frequent first, escaped; a dataset without marts gets a column profile', async () => {
    const d = dirs();
    const dataset = profiledDataset();
    writeRawObject(d.rawDir, dataset.name, '2024-02-01', 'a', profiledRows());
    const s = await runTransform({ dataset, engine: 'duckdb', rawStore: d.rawStore, curatedStore: d.curatedStore, runId: 'p1', now: () => at(0) });
    const result = (name: string) => s.tests.results.find((r) => r.name === name)!;
    assert.equal(result('accepted_values_battalion').status, 'warn');
    assert.equal(result('accepted_values_battalion').failing, 37);
    assert.deepEqual(result('accepted_values_battalion').samples, EXPECTED_SAMPLES.accepted_values_battalion, 'at most five, most frequent first');
    assert.deepEqual(result('not_null_neighborhood_district').samples, EXPECTED_SAMPLES.not_null_neighborhood_district, 'rows: the key and the column');
    assert.equal(result('primary_key_unique_id').samples, undefined, 'a passing test costs no sample query');

    const p = s.columnProfile!;
    assert.equal(p.rows, 46);
    assert.equal(p.distinctFunction, 'approx_count_distinct');
    const col = (name: string) => p.columns.find((c) => c.column === name)!;
    assert.deepEqual({ ...col('battalion'), distinct: undefined }, { column: 'battalion', type: 'VARCHAR', nulls: 0, distinct: undefined, min: '<b>X</b>', max: 'Z5' });
    // DuckDB's HyperLogLog is coarse on few values (9 for these 11): an estimate, and said so.
    assert.ok(Math.abs(col('battalion').distinct - 11) <= 3, `about 11 battalions, estimated ${col('battalion').distinct}`);
    assert.equal(col('neighborhood_district').nulls, 2);
    assert.deepEqual([col('suppression_units').min, col('suppression_units').max], [0, 3]);
    assert.equal(col('alarm_dttm').min, '2022-01-01T10:00:00.000000');
    assert.equal(col('point').min, null, 'a point has no smallest value');
    assert.ok(col('longitude'), 'point coordinates are profiled');
    assert.equal(p.columns.some((c) => c.column.startsWith('_')), false, 'the pipeline’s own columns are not');

    const html = (await d.curatedStore.get(reportKey(dataset, 'p1')))!.body.toString();
    assert.match(html, /<td>&lt;b&gt;X&lt;\/b&gt;<\/td><td>1<\/td>/, 'a failing value is escaped');
    assert.doesNotMatch(html, /<td><b>X<\/b>/);
    assert.match(html, /failing values, most frequent first/);
    assert.match(html, /<h2 id="profile">Column profile/);
    assert.match(html, /approx_count_distinct/);
    assert.match(html, /<tr><td>neighborhood_district<\/td><td>varchar<\/td><td class="num">2<\/td><td class="num">4\.3%<\/td>/);
  });
});

describe('units and the description', () => {
  const rows = [{ neighborhood_district: 'Mission', p50_seconds: 500, p90_seconds: 832.4 }, { neighborhood_district: 'Nob Hill', p50_seconds: 400, p90_seconds: 700 }];
  const spec = { type: 'bar', x: 'neighborhood_district', y: 'p90_seconds', unit: 's', rest: 'hide', layout: 'facet', partial: 'drop' } as const;

  test('seconds that run to minutes are shown in minutes, and a _seconds name never gets "(s)"', () => {
    const html = martTable(rows, 10, spec);
    assert.doesNotMatch(html, /_seconds|\(s\)/);
    assert.match(html, /<th class="num">p90 \(min\)<\/th>/);
    assert.match(html, /<td class="num">13\.9<\/td>/, '832.4 s is 13.9 min');
    const short = martTable([{ x: 'a', p90_seconds: 42 }], 10);
    assert.match(short, /<th class="num">p90 \(s\)<\/th>/, 'under two minutes, seconds');
  });

  test('the response-time chart is drawn in minutes', async () => {
    const html = await renderReport({
      dataset: DATASET,
      summary: { ...(await emptySummary()) },
      marts: [{ mart: { name: 'response_time_by_neighborhood', description: 'r', chart: { ...spec }, file: 'r.yml' }, rows }],
    });
    const chart = /<figure class="chart">([\s\S]*?)<\/figure>/.exec(html)![1]!;
    assert.match(chart, />p90 \(min\)<\/text>/, 'the axis says minutes');
    const ticks = axisLabels(chart).flat().map((x) => Number(x.replace(/,/g, ''))).filter(Number.isFinite);
    assert.ok(ticks.length && Math.max(...ticks) <= 20, `the axis runs in minutes (to ~14), not seconds: ${ticks.join(' ')}`);
    assert.doesNotMatch(html, /_seconds \(s\)|p90 \(s\)/);
  });

  test('the portal’s description is shortened to its first sentence, HTML stripped, the whole text one click away', async () => {
    const long = '<p>Fire incidents &amp; responses. <b>Disclaimer</b>: the City and County of San Francisco makes no representation as to the accuracy of the information.</p>';
    assert.deepEqual(shortDescription(long), {
      short: 'Fire incidents & responses.',
      full: 'Fire incidents & responses. Disclaimer: the City and County of San Francisco makes no representation as to the accuracy of the information.',
    });
    const oneSentence = 'x'.repeat(150) + ' ' + 'y'.repeat(150);
    assert.ok(shortDescription(oneSentence).short.length <= 201, 'no sentence end: about 200 characters');
    assert.deepEqual(shortDescription('Short.'), { short: 'Short.' });
    const html = await renderReport({ dataset: { ...DATASET, description: long }, summary: await emptySummary(), marts: [] });
    assert.match(html, /<details class="desc"><summary>Fire incidents &amp; responses\.<\/summary>Fire incidents &amp; responses\. Disclaimer: /);
    assert.doesNotMatch(html, /&lt;p&gt;|&lt;b&gt;/, 'no HTML tags shown as text');
  });
});

/** A summary of a run that read nothing (from a real transform of an empty raw zone). */
async function emptySummary(): Promise<RunSummary> {
  const d = dirs();
  return runTransform({ dataset: DATASET, engine: 'duckdb', rawStore: d.rawStore, curatedStore: d.curatedStore, runId: 'e', now: () => at(0) });
}

/** The x-axis labels of each chart in an SVG (vega's axis labels, the x axis first). */
function axisLabels(svg: string): string[][] {
  return [...svg.matchAll(/<g class="mark-text role-axis-label"[^>]*>([\s\S]*?)<\/g>/g)].map((m) => [...m[1]!.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((t) => t[1]!));
}

describe('history page charts', () => {
  const run = (runId: string, startedAt: string, extra: Partial<RunSummary> = {}): HistoryRow =>
    historyRow({ runId, startedAt, durationMs: 2000, status: 'succeeded', curatedRows: 100, rowsInserted: 5, rowsRead: 5, ...extra } as Partial<RunSummary> & { runId: string });

  test('a count per run is a point per run, never a line; the level of curated rows is joined', async () => {
    const runs = [run('a', '2024-02-03T10:00:00.000Z'), run('b', '2024-02-03T10:00:40.000Z'), run('c', '2024-02-03T10:01:30.000Z')];
    const perRun = overTime(runs, [{ field: 'rowsInserted', title: 'inserted' }, { field: 'rowsUpdated', title: 'updated' }], 'rows per run', 'Changes per run', true);
    assert.equal((perRun as { mark: { type: string } }).mark.type, 'point');
    const svg = await renderSvg(perRun);
    assert.doesNotMatch(svg, /role-line|mark-line/, 'no line drawn between runs');
    assert.equal((svg.match(/<path[^>]*aria-roledescription="point"/g) ?? []).length, 6, 'two measures of three runs: six points');
    const level = await renderSvg(overTime(runs, [{ field: 'curatedRows', title: 'curated rows' }], 'rows', 'Curated rows', false));
    assert.match(level, /mark-line/);
    const page = await renderHistory(DATASET, [...runs].reverse());
    assert.equal((page.match(/mark-line/g) ?? []).length, 1, 'only the curated rows chart has a line');
  });

  test('x-axis labels never repeat, over seconds, minutes, hours or months of runs; legends are whole', async () => {
    const spans = [
      ['2024-02-03T10:00:00.000Z', '2024-02-03T10:00:20.000Z', '2024-02-03T10:01:10.000Z'],
      ['2024-02-03T10:00:00.000Z', '2024-02-03T10:40:00.000Z'],
      ['2024-02-03T23:10:00.000Z', '2024-02-04T09:00:00.000Z', '2024-02-04T22:00:00.000Z'],
      ['2024-01-03T10:00:00.000Z', '2024-06-30T10:00:00.000Z'],
      ['2024-02-03T10:00:00.000Z'],
    ];
    for (const starts of spans) {
      const axis = runTimeAxis(starts);
      assert.ok(axis.ticks.length >= 1 && axis.ticks.length <= 7, `${starts.join(', ')}: ${axis.ticks.length} ticks`);
      const runs = starts.map((s, i) => run(`r${i}`, s, { rowsQuarantined: 1 } as Partial<RunSummary>));
      const svg = await renderSvg(overTime(runs, [{ field: 'castFailures', title: 'cast failures' }, { field: 'malformedRows', title: 'malformed lines' }, { field: 'rowsQuarantined', title: 'rows quarantined (fetch)' }], 'rows per run', 'Rows not loaded as they came', true));
      const [x] = axisLabels(svg);
      assert.ok(x && x.length >= 1, `x labels drawn for ${starts.join(', ')}`);
      assert.equal(new Set(x).size, x.length, `x labels repeat for ${starts.join(', ')}: ${x.join(' | ')}`);
      assert.match(svg, />rows quarantined \(fetch\)</, 'the legend label is whole');
      assert.doesNotMatch(svg, /…/, 'nothing in the chart is cut');
    }
  });

  test('failed runs are listed with their error, their unknown figures as dashes, and left out of the charts', async () => {
    const long = `source <down>: ${'x'.repeat(300)}`;
    const page = await renderHistory(DATASET, [
      run('ok', '2024-02-03T11:00:00.000Z'),
      run('broken', '2024-02-03T10:30:00.000Z', { status: 'failed', error: 'source <down>', curatedRows: 0 }),
      run('ok0', '2024-02-03T10:00:00.000Z'),
      run('long', '2024-02-03T09:00:00.000Z', { status: 'failed', error: long }),
    ]);
    const row = (id: string) => new RegExp(`<tr class="fail"><td><a href="${id}\\.html">${id}</a></td>[\\s\\S]*?</tr>`).exec(page)?.[0] ?? '';
    assert.match(row('broken'), /<td class="status">failed: source &lt;down&gt;<\/td>/);
    assert.equal((row('broken').match(/<td class="num muted">–<\/td>/g) ?? []).length, 6, 'read, changes, deletions, casts, curated rows, tests: unknown');
    assert.match(row('long'), /<td class="status" title="failed: source &lt;down&gt;: x{300}">failed: source &lt;down&gt;: x+…<\/td>/, 'a long error is cut, whole on hover');
    const curatedChart = /<figure>([\s\S]*?)<\/figure>/.exec(page)![1]!;
    assert.equal((curatedChart.match(/aria-roledescription="point"/g) ?? []).length, 2, 'the two succeeded runs only: the failed one’s 0 rows are not a value');
    assert.match(page, /Failed runs \(2\) are listed in red but not charted/);
  });
});
