/**
 * The history page of a dataset, `reports/<dataset>/index.html`: one row per run (newest first,
 * the last HISTORY_RUNS), each linking to its report, and the figures over time (rows, changes,
 * deletions, cast failures and quarantine, test results, durations). Rebuilt at the end of every
 * run from the run summaries in `curated/_runs/<dataset>/`.
 *
 * Bounded: run ids (Step Functions execution names) do not sort by time, so picking the newest
 * runs would mean reading every summary on every run. A compact row per run is kept in
 * `curated/_state/<dataset>/history.json`; each run reads only the summaries that file lacks
 * (normally just its own), and a missing or unreadable file is rebuilt from all of them once.
 */
import type { DatasetConfig } from '../../../runtime/dataset-config';
import type { ObjectStore } from '../../../runtime/object-store';
import { historyKey, runSummaryPrefix, transformStatePrefix } from '../../../runtime/storage-layout';
import { renderSvg } from './report-charts';
import { escapeHtml, formatDuration, formatInstant, formatNumber } from './report-format';
import type { RunSummary } from './run-summary';
import type { TopLevelSpec } from 'vega-lite';

/** Runs shown on the page (and charted). */
export const HISTORY_RUNS = 200;

export interface HistoryRow {
  runId: string;
  startedAt: string;
  durationMs: number;
  status: string;
  engine: string;
  rowsFetched?: number;
  rowsQuarantined?: number;
  rowsRead: number;
  rowsInserted: number;
  rowsUpdated: number;
  rowsDeleted: number;
  keysetApplied: boolean;
  castFailures: number;
  malformedRows: number;
  quarantinedObjects: number;
  curatedRows: number;
  testsPassed: number;
  testsFailed: number;
  testsWarned: number;
  failedErrorTests: string[];
  /** A failed run's reason. */
  error?: string;
}

export const historyIndexKey = (d: Pick<DatasetConfig, 'name'>): string => `${transformStatePrefix(d)}history.json`;

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** The compact history row of a run summary (tolerant of summaries written by older versions). */
export function historyRow(s: Partial<RunSummary> & { runId: string }): HistoryRow {
  const fetchRows = s.fetch?.rows?.counts;
  return {
    runId: s.runId,
    startedAt: String(s.startedAt ?? ''),
    durationMs: num(s.durationMs),
    status: String(s.status ?? 'unknown'),
    engine: String(s.engine ?? ''),
    ...(fetchRows ? { rowsFetched: num(fetchRows.rowsFetched), rowsQuarantined: num(fetchRows.rowsQuarantined) } : {}),
    rowsRead: num(s.rowsRead),
    rowsInserted: num(s.rowsInserted),
    rowsUpdated: num(s.rowsUpdated),
    rowsDeleted: num(s.rowsDeleted),
    keysetApplied: s.keysetApplied === true,
    castFailures: Object.values(s.castFailures ?? {}).reduce((a, b) => a + num(b), 0),
    malformedRows: num(s.malformedRows),
    quarantinedObjects: num(s.rawObjects?.quarantined),
    curatedRows: num(s.curatedRows),
    testsPassed: num(s.tests?.passed),
    testsFailed: num(s.tests?.failed),
    testsWarned: num(s.tests?.warned),
    failedErrorTests: Array.isArray(s.failedErrorTests) ? s.failedErrorTests.map(String) : [],
    ...(typeof s.error === 'string' ? { error: s.error } : {}),
  };
}

async function readIndex(store: ObjectStore, dataset: DatasetConfig, log: (line: string) => void): Promise<Map<string, HistoryRow>> {
  const obj = await store.get(historyIndexKey(dataset));
  if (!obj) return new Map();
  try {
    const rows = JSON.parse(obj.body.toString('utf8')) as { runs?: HistoryRow[] };
    if (!Array.isArray(rows.runs)) throw new Error('no "runs" array');
    return new Map(rows.runs.map((r) => [r.runId, r]));
  } catch (err) {
    log(`${dataset.name}: history index ${store.location}/${historyIndexKey(dataset)} is unreadable (${(err as Error).message}); rebuilding it from the run summaries`);
    return new Map();
  }
}

/**
 * Every run's history row: the index, plus the summaries it lacks. A summary that does not parse
 * is skipped with a log line naming it (one bad file must not hide the history of every run).
 */
export async function collectHistory(store: ObjectStore, dataset: DatasetConfig, current: RunSummary, log: (line: string) => void = () => {}): Promise<HistoryRow[]> {
  const index = await readIndex(store, dataset, log);
  const prefix = runSummaryPrefix(dataset);
  const keys = (await store.list(prefix)).filter((k) => k.endsWith('.json') && !k.slice(prefix.length).includes('/'));
  const listed = new Set<string>();
  for (const key of keys) {
    const runId = key.slice(prefix.length, -'.json'.length);
    listed.add(runId);
    if (index.has(runId) && runId !== current.runId) continue;
    if (runId === current.runId) {
      index.set(runId, historyRow(current));
      continue;
    }
    const obj = await store.get(key);
    if (!obj) continue;
    try {
      index.set(runId, historyRow({ ...(JSON.parse(obj.body.toString('utf8')) as Partial<RunSummary>), runId }));
    } catch (err) {
      log(`${dataset.name}: run summary ${store.location}/${key} is not JSON (${(err as Error).message}); left out of the history page`);
    }
  }
  index.set(current.runId, historyRow(current));
  // Summaries removed by hand (or by a lifecycle rule) leave the page too.
  for (const runId of [...index.keys()]) if (!listed.has(runId) && runId !== current.runId) index.delete(runId);
  return [...index.values()].sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.runId.localeCompare(a.runId));
}

/** Reads the summaries, writes the index and the page; returns the page's key. */
export async function writeHistory(store: ObjectStore, dataset: DatasetConfig, current: RunSummary, log?: (line: string) => void): Promise<string> {
  const rows = await collectHistory(store, dataset, current, log);
  await store.put(historyIndexKey(dataset), JSON.stringify({ version: 1, runs: rows }), { contentType: 'application/json' });
  const key = historyKey(dataset);
  await store.put(key, await renderHistory(dataset, rows.slice(0, HISTORY_RUNS), rows.length), { contentType: 'text/html; charset=utf-8' });
  return key;
}

/** A small time chart of several measures of the runs (one panel per measure). */
function overTime(rows: HistoryRow[], measures: { field: keyof HistoryRow; title: string }[], unit: string, title: string): TopLevelSpec {
  const values = rows.flatMap((r) => measures.map((m) => ({ t: r.startedAt, measure: m.title, value: r[m.field] as number })));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 500,
    height: 150,
    config: { font: 'system-ui, sans-serif', view: { stroke: '#ddd' } },
    data: { values },
    mark: { type: 'line', point: { size: 20, filled: true }, strokeWidth: 1.5 },
    encoding: {
      x: { field: 't', type: 'temporal', scale: { type: 'utc' }, title: 'Run start (UTC)', axis: { labelOverlap: true, tickCount: 5, format: '%m-%d %H:%M' } },
      y: { field: 'value', type: 'quantitative', title: unit, axis: { format: ',~r', tickCount: 4 } },
      color: { field: 'measure', type: 'nominal', title: null, sort: measures.map((m) => m.title), legend: { orient: 'top' } },
    },
  } as TopLevelSpec;
}

export async function renderHistory(dataset: DatasetConfig, rows: HistoryRow[], totalRuns = rows.length): Promise<string> {
  const chronological = [...rows].reverse();
  const charts = rows.length
    ? await Promise.all(
        [
          overTime(chronological, [{ field: 'curatedRows', title: 'curated rows' }], 'rows', 'Curated rows'),
          overTime(
            chronological,
            [
              { field: 'rowsInserted', title: 'inserted' },
              { field: 'rowsUpdated', title: 'updated' },
              { field: 'rowsDeleted', title: 'deleted' },
            ],
            'rows per run',
            'Changes per run',
          ),
          overTime(
            chronological,
            [
              { field: 'castFailures', title: 'cast failures' },
              { field: 'malformedRows', title: 'malformed lines' },
              { field: 'rowsQuarantined', title: 'rows quarantined (fetch)' },
            ],
            'rows per run',
            'Rows not loaded as they came',
          ),
          overTime(
            chronological,
            [
              { field: 'testsFailed', title: 'failed (error)' },
              { field: 'testsWarned', title: 'warnings' },
            ],
            'tests',
            'Data tests not passing',
          ),
          overTime(chronological.map((r) => ({ ...r, durationS: r.durationMs / 1000 })) as HistoryRow[], [{ field: 'durationS' as keyof HistoryRow, title: 'transform' }], 'seconds', 'Transform duration'),
        ].map(renderSvg),
      )
    : [];
  const cell = (n: number | undefined): string => `<td class="num">${n === undefined ? '–' : formatNumber(n)}</td>`;
  const body = rows
    .map(
      (r) =>
        `<tr class="${r.status === 'succeeded' ? '' : 'fail'}"><td><a href="${encodeURIComponent(r.runId)}.html">${escapeHtml(r.runId)}</a></td>` +
        `<td>${escapeHtml(formatInstant(r.startedAt))}</td><td>${escapeHtml(r.status === 'succeeded' ? 'succeeded' : r.status === 'failed' ? `failed: ${r.error ?? 'see the report'}` : `tests failed: ${r.failedErrorTests.join(', ')}`)}</td>` +
        `${cell(r.rowsFetched)}${cell(r.rowsRead)}<td class="num">${formatNumber(r.rowsInserted)} / ${formatNumber(r.rowsUpdated)}</td>` +
        `<td class="num">${r.keysetApplied ? formatNumber(r.rowsDeleted) : '<span class="muted">no scan</span>'}</td>` +
        `${cell(r.castFailures)}${cell(r.rowsQuarantined)}${cell(r.curatedRows)}` +
        `<td class="num">${formatNumber(r.testsPassed)} / ${formatNumber(r.testsFailed)} / ${formatNumber(r.testsWarned)}</td>` +
        `<td class="num">${escapeHtml(formatDuration(r.durationMs))}</td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(dataset.name)}: run history</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem 2rem;color:#222}
h1{margin:.2rem 0}.muted{color:#777}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:1rem;margin:1rem 0}
.charts svg{max-width:100%;height:auto}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:12px;width:100%}td,th{border-bottom:1px solid #e4e4e4;padding:4px 6px;text-align:left;white-space:nowrap}
th{background:#f4f4f4;position:sticky;top:0;vertical-align:bottom;white-space:normal}.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#fde8e8}
</style></head><body>
<h1>${escapeHtml(dataset.name)}: run history</h1>
<p class="muted">${escapeHtml(dataset.description)} ${rows.length < totalRuns ? `The newest ${formatNumber(rows.length)} of ${formatNumber(totalRuns)} runs.` : `${formatNumber(rows.length)} run(s).`} Each run id links to its report.</p>
<div class="charts">${charts.map((svg) => `<figure>${svg}</figure>`).join('\n')}</div>
<div class="scroll"><table><thead><tr><th>Run</th><th>Started</th><th>Status</th><th class="num">Fetched</th><th class="num">Read</th><th class="num">Inserted / updated</th>
<th class="num">Deleted</th><th class="num">Cast failures</th><th class="num">Quarantined</th><th class="num">Curated rows</th>
<th class="num">Tests pass/fail/warn</th><th class="num">Transform</th></tr></thead>
<tbody>${body}</tbody></table></div>
</body></html>
`;
}
