/**
 * The HTML run report: run summary, data-test results, and each mart as a chart and a table.
 * Charts are Vega-Lite specs rendered to SVG here in Node, so the page is one self-contained file
 * with no script and no network access; it renders the same from S3 or from disk.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { DatasetConfig } from '../../../runtime/dataset-config';
import type { Row } from './engine';
import type { MartModel } from './models';
import type { RunSummary } from './transform';

export interface ReportInput {
  dataset: DatasetConfig;
  summary: RunSummary;
  marts: { mart: Pick<MartModel, 'name' | 'description' | 'chart'>; rows: Row[] }[];
  /** Rows of each mart shown as a table (charts use every row given). */
  tableRows?: number;
}

const escapeHtml = (v: unknown): string =>
  String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Render a Vega-Lite spec fragment over rows to an SVG string. */
export async function renderChartSvg(chart: Record<string, unknown>, rows: Row[], title: string): Promise<string> {
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 640,
    height: 280,
    ...chart,
    data: { values: rows },
  } as unknown as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function table(rows: Row[], limit: number): string {
  const first = rows[0];
  if (!first) return '<p class="muted">No rows.</p>';
  const cols = Object.keys(first);
  const fmt = (v: unknown): string => (typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(2) : escapeHtml(v));
  const body = rows
    .slice(0, limit)
    .map((r) => `<tr>${cols.map((c) => `<td>${fmt(r[c])}</td>`).join('')}</tr>`)
    .join('\n');
  const more = rows.length > limit ? `<p class="muted">First ${limit} of ${rows.length} rows.</p>` : '';
  return `<table><thead><tr>${cols.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead><tbody>${body}</tbody></table>${more}`;
}

export async function renderReport(input: ReportInput): Promise<string> {
  const { dataset, summary } = input;
  const s = summary;
  const facts: [string, unknown][] = [
    ['Status', s.status === 'succeeded' ? 'succeeded' : `data tests failed: ${s.failedErrorTests.join(', ')}`],
    ['Engine', s.engine],
    ['Started', s.startedAt],
    ['Duration', `${(s.durationMs / 1000).toFixed(1)} s`],
    ['Raw objects (new / total)', `${s.rawObjects.new} / ${s.rawObjects.total}`],
    ['Rows read', s.rowsRead],
    ['Malformed lines skipped', s.malformedRows],
    ['Rows without key skipped', s.rowsWithoutKey],
    ['Duplicates removed', s.duplicatesRemoved],
    ['Rows inserted / updated / unchanged', `${s.rowsInserted} / ${s.rowsUpdated} / ${s.rowsUnchanged}`],
    ['Curated rows', s.curatedRows],
    ['Cast failures', Object.entries(s.castFailures).map(([c, n]) => `${c}: ${n}`).join(', ') || 'none'],
    [
      'Schema drift (source columns not declared: kept in raw, not in curated)',
      s.schemaDrift.undeclared.join(', ') || 'none',
    ],
    ['Quarantined raw objects (cannot be read whole)', s.quarantinedObjects.map((q) => `${q.key}: ${q.error}`).join('; ') || 'none'],
    ['Rows deleted (keys gone at the source)', s.keysetApplied ? s.rowsDeleted : 'no key scan this run'],
    ...(s.reconciliation.source
      ? [
          [
            'Reconciliation (source keys / curated rows / missing / extra)',
            `${s.reconciliation.source.sourceKeys} / ${s.curatedRows} / ${s.reconciliation.source.missingKeys} / ${s.reconciliation.source.extraKeys}`,
          ] as [string, unknown],
        ]
      : [['Reconciliation (keys merged / curated rows)', `${s.reconciliation.mergedKeys} / ${s.reconciliation.curatedRows}`] as [string, unknown]]),
    ...(s.rebuild ? [['Rebuild', 'curated rebuilt from the whole raw zone'] as [string, unknown]] : []),
    ...(s.maintenance.length ? [['Table maintenance', s.maintenance.join('; ')] as [string, unknown]] : []),
  ];
  const tests = s.tests.results
    .map(
      (r) =>
        `<tr class="${r.status === 'pass' ? 'pass' : r.severity === 'error' ? 'fail' : 'warn'}"><td>${escapeHtml(r.name)}</td>` +
        `<td>${escapeHtml(r.model)}</td><td>${r.severity}</td><td>${r.status === 'pass' ? 'pass' : 'FAIL'}</td>` +
        `<td>${r.failing}</td><td>${escapeHtml(r.description)}</td></tr>`,
    )
    .join('\n');
  const sections: string[] = [];
  for (const { mart, rows } of input.marts) {
    const chart = mart.chart && rows.length ? await renderChartSvg(mart.chart, rows, mart.name) : '';
    sections.push(
      `<section class="mart" id="mart-${escapeHtml(mart.name)}"><h3>${escapeHtml(mart.name)}</h3>` +
        `<p>${escapeHtml(mart.description)}</p><figure class="chart">${chart}</figure>${table(rows, input.tableRows ?? 25)}</section>`,
    );
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(dataset.name)} transform run ${escapeHtml(s.runId)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f4f4f4}.pass td:nth-child(4){color:#176f2c}.fail td{background:#fde8e8}.warn td{background:#fff6dd}
.muted{color:#777}figure.chart{margin:0;overflow-x:auto}
</style></head><body>
<h1>${escapeHtml(dataset.name)}: transform run ${escapeHtml(s.runId)}</h1>
<p>${escapeHtml(dataset.description)}</p>
<h2>Run summary</h2>
<table class="summary">${facts.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('\n')}</table>
<h2>Data tests (${s.tests.passed} passed, ${s.tests.failed} failed, ${s.tests.warned} warnings)</h2>
<table class="tests"><thead><tr><th>Test</th><th>Model</th><th>Severity</th><th>Result</th><th>Failing</th><th>Rule</th></tr></thead>
<tbody>${tests}</tbody></table>
<h2>Marts</h2>
${sections.join('\n') || '<p class="muted">This dataset has no marts.</p>'}
</body></html>
`;
}
