/**
 * Mart charts and tables of the run report: the chart spec is validated with the mart file named,
 * zero categories are hidden, top-N + "other" keeps the total, gaps stay gaps in the drawn line,
 * the last partial period is left out, single points are drawn, months read as months, tables
 * are sorted and formatted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { barData, buildChart, ChartSpecError, lineData, parseChartSpec, periodOf, renderSvg, type ChartSpec } from '../../containers/transform/src/report-charts';
import { formatNumber, martTable, sortMartRows } from '../../containers/transform/src/report-format';
import { defaultModelsDir, loadMarts, ModelError, parseMart } from '../../containers/transform/src/models';
import { runTransform } from '../../containers/transform/src/transform';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { openObjectStore } from '../../runtime/object-store';

const DATASET = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'));

describe('chart spec', () => {
  test('a bad spec fails with the mart file and the field named', () => {
    assert.throws(
      () => parseChartSpec({ type: 'line', x: 'month', y: 'incidents' }, 'models/ds/by_month.sql'),
      // A ModelError: the container exits 2 (configuration), as for any bad mart file.
      (e: Error) => e instanceof ChartSpecError && e instanceof ModelError && /^models\/ds\/by_month\.sql: invalid chart spec: time: a line chart needs "time"/.test(e.message),
    );
    assert.throws(() => parseChartSpec({ type: 'pie', x: 'a', y: 'b' }, 'm.sql'), { message: /^m\.sql: invalid chart spec: type:/ });
    assert.throws(() => parseChartSpec({ type: 'bar', x: 'a', y: 'b', colour: 'red' }, 'm.sql'), { message: /^m\.sql: invalid chart spec: .*colour/ });
    assert.throws(() => parseChartSpec({ type: 'bar', x: 'a', y: 'b', series: 'c' }, 'm.sql'), /series: only a line chart/);
  });

  test('every mart of the repository declares a valid spec', () => {
    const marts = loadMarts(DATASET);
    assert.equal(marts.length, readdirSync(path.join(defaultModelsDir(), DATASET.name)).filter((x) => x.endsWith('.sql')).length);
    for (const mart of marts) {
      assert.ok(mart.chart, `${mart.name} has a chart`);
      parseChartSpec(mart.chart, mart.file);
    }
  });

  test('the transform refuses a bad chart before it does any work, naming the mart file', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'chart-spec-'));
    const mart = {
      ...parseMart('by_battalion', '/models/sf-fire-incidents/by_battalion.sql', "SELECT battalion, count(*) AS n FROM {{ ref('curated') }} GROUP BY battalion"),
      chart: { type: 'bar', x: 'battalion' },
    };
    await assert.rejects(
      runTransform({ dataset: DATASET, engine: 'duckdb', rawStore: openObjectStore(path.join(root, 'raw')), curatedStore: openObjectStore(path.join(root, 'cur')), runId: 'r1', marts: [mart] }),
      /\/models\/sf-fire-incidents\/by_battalion\.sql: invalid chart spec: y:/,
    );
    assert.deepEqual(readdirSync(root), [], 'nothing was written');
  });
});

describe('bar data', () => {
  const rows = [
    { cat: 'a', v: 50 },
    { cat: 'b', v: 0 },
    { cat: 'c', v: 30 },
    { cat: 'd', v: null },
    { cat: 'e', v: 5 },
    { cat: 'f', v: 7 },
    { cat: 'g', v: '8' }, // Athena returns numbers as text
  ];
  test('zero and empty categories are absent; sorted largest first', () => {
    const { bars, zeroHidden } = barData(rows, { x: 'cat', y: 'v', rest: 'other' });
    assert.deepEqual(bars.map((b) => b.category), ['a', 'c', 'g', 'f', 'e']);
    assert.equal(zeroHidden, 2);
  });
  test('top-N + other sums to the total; "hide" leaves the rest out', () => {
    const { bars, restCount } = barData(rows, { x: 'cat', y: 'v', top: 2, rest: 'other' });
    assert.deepEqual(bars, [
      { category: 'a', value: 50 },
      { category: 'c', value: 30 },
      { category: 'other (3)', value: 20 },
    ]);
    assert.equal(restCount, 3);
    assert.equal(bars.reduce((a, b) => a + b.value, 0), 100, 'the chart total equals the mart total');
    assert.deepEqual(barData(rows, { x: 'cat', y: 'v', top: 2, rest: 'hide' }).bars.map((b) => b.category), ['a', 'c']);
  });
});

describe('line data', () => {
  const spec: ChartSpec = parseChartSpec({ type: 'line', x: 'month', time: 'month', y: 'n', series: 's' }, 'm.sql');
  // DuckDB gives "…T00:00:00.000Z" (wall time), Athena "… 00:00:00.000": both are that month.
  const rows = [
    { month: '2018-01-01T00:00:00.000Z', s: 'A', n: 3 },
    { month: '2018-02-01 00:00:00.000', s: 'A', n: 4 },
    // no 2018-03 for A: a gap
    { month: '2018-04-01T00:00:00.000Z', s: 'A', n: 5 },
    { month: '2018-05-01T00:00:00.000Z', s: 'A', n: 9 },
    { month: '2018-02-01T00:00:00.000Z', s: 'B', n: 2 }, // a single point
  ];
  test('months are months, not instants', () => {
    assert.equal(periodOf('2018-01-01T00:00:00.000Z', 'month'), '2018-01');
    assert.equal(periodOf('2017-12-31 23:30:00.000', 'month'), '2017-12', 'wall time, never shifted by a zone');
    const html = martTable(rows, 10, spec);
    assert.match(html, /<td>2018-05<\/td>/);
    assert.doesNotMatch(html, /T00:00:00/);
  });
  test('missing periods are nulls (a gap), every series spans the whole range', () => {
    const { points } = lineData(rows, spec);
    const a = points.filter((p) => p.series === 'A').map((p) => [p.period, p.value]);
    assert.deepEqual(a, [
      ['2018-01', 3],
      ['2018-02', 4],
      ['2018-03', null],
      ['2018-04', 5],
      ['2018-05', 9],
    ]);
    assert.equal(points.filter((p) => p.series === 'B' && p.value !== null).length, 1);
  });
  test('the last period is left out when the data ends inside it, kept when it is complete', () => {
    assert.equal(lineData(rows, spec, '2018-05-14T08:00:00').droppedPartial, '2018-05');
    assert.ok(!lineData(rows, spec, '2018-05-14T08:00:00').points.some((p) => p.period === '2018-05'));
    assert.equal(lineData(rows, spec, '2018-05-31T23:00:00').droppedPartial, undefined);
    assert.equal(lineData(rows, { ...spec, partial: 'keep' }, '2018-05-14T08:00:00').droppedPartial, undefined);
  });
  test('series beyond top are summed into "other", per period', () => {
    const many = ['A', 'B', 'C', 'D'].flatMap((s, i) => [1, 2].map((m) => ({ month: `2018-0${m}-01T00:00:00.000Z`, s, n: (i + 1) * 10 })));
    const { points, series } = lineData(many, { ...spec, top: 2 });
    assert.deepEqual(series, ['D', 'C', 'other (2)']);
    assert.deepEqual(points.filter((p) => p.series === 'other (2)').map((p) => p.value), [30, 30]);
    const total = (ps: { value: number | null }[]) => ps.reduce((a, p) => a + (p.value ?? 0), 0);
    assert.equal(total(points), total(many.map((r) => ({ value: r.n }))));
  });
  test('the drawn line breaks at the gap, and a single-point series is drawn as a point', async () => {
    const built = buildChart({ ...spec, layout: 'overlay' }, rows);
    const values = (built.spec as { data: { values: { series: string; value: number | null }[] } }).data.values;
    assert.ok(values.some((v) => v.series === 'A' && v.value === null), 'the spec carries the gap as null');
    const svg = await renderSvg(built.spec);
    // The line marks: one path per series; A's has two sub-paths (a second moveto after the gap).
    const lines = [...svg.matchAll(/aria-roledescription="line mark" d="([^"]+)"/g)].map((m) => m[1]!);
    assert.equal(lines.length, 2);
    assert.deepEqual(lines.map((d) => (d.match(/M/g) ?? []).length).sort(), [1, 2]);
    // Points: one per value present (4 for A, and B's single month), so B is visible.
    assert.equal((svg.match(/aria-roledescription="point"/g) ?? []).length, 5);
  });
});

describe('mart tables', () => {
  test('sorted as the chart reads, thousands separators, one decimals count per column', () => {
    const spec = parseChartSpec({ type: 'bar', x: 'situation', y: 'loss', unit: 'USD' }, 'm.sql');
    const rows = [
      { situation: 'small', loss: 1500, p: 0.5 },
      { situation: 'big', loss: 1006634000, p: 0.25 },
      { situation: 'mid', loss: 250000.5, p: 1 },
    ];
    assert.deepEqual(sortMartRows(rows, spec).map((r) => r.situation), ['big', 'mid', 'small']);
    const html = martTable(rows, 10, spec);
    const cells = [...html.matchAll(/<td class="num">([^<]+)<\/td>/g)].map((m) => m[1]);
    assert.deepEqual(cells, ['1,006,634,000.0', '0.25', '250,000.5', '1.00', '1,500.0', '0.50']);
    assert.match(html, /<th class="num">loss \(USD\)<\/th>/);
    assert.equal(formatNumber(1006634000), '1,006,634,000');
  });
  test('a time series table is newest period first', () => {
    const spec = parseChartSpec({ type: 'line', x: 'month', time: 'month', y: 'n', series: 's' }, 'm.sql');
    const rows = [
      { month: '2018-01-01T00:00:00.000Z', s: 'B', n: 1 },
      { month: '2018-03-01T00:00:00.000Z', s: 'B', n: 1 },
      { month: '2018-03-01T00:00:00.000Z', s: 'A', n: 1 },
    ];
    assert.deepEqual(sortMartRows(rows, spec).map((r) => `${periodOf(r.month, 'month')} ${r.s}`), ['2018-03 A', '2018-03 B', '2018-01 B']);
  });
});
