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
import { escapeHtml, formatDuration, formatInstant, formatNumber, shortDescription } from './report-format';
import type { RunSummary } from './run-summary';
import type { TopLevelSpec } from 'vega-lite';

/** A failed run's error is cut to this in the table (whole in its report and on hover). */
const STATUS_CHARS = 120;

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

/** Tick steps for the run-start axis, finest first: the format shows the step's unit, so no two ticks read alike. */
const TIME_TICKS: { interval: 'second' | 'minute' | 'hour' | 'day' | 'month' | 'year'; step: number; ms: number; format: string }[] = [
  ...[1, 5, 15, 30].map((step) => ({ interval: 'second' as const, step, ms: step * 1000, format: '%H:%M:%S' })),
  ...[1, 5, 15, 30].map((step) => ({ interval: 'minute' as const, step, ms: step * 60_000, format: '%H:%M' })),
  ...[1, 3, 6, 12].map((step) => ({ interval: 'hour' as const, step, ms: step * 3_600_000, format: '%m-%d %H:%M' })),
  ...[1, 2, 7, 14].map((step) => ({ interval: 'day' as const, step, ms: step * 86_400_000, format: '%Y-%m-%d' })),
  ...[1, 3, 6].map((step) => ({ interval: 'month' as const, step, ms: step * 30 * 86_400_000, format: '%Y-%m' })),
  { interval: 'year', step: 1, ms: 365 * 86_400_000, format: '%Y' },
];
const MAX_TICKS = 6;

/**
 * The x axis over the runs' start times: a domain padded by half a step (one run is not a zero-width
 * axis), ticks at whole steps of one unit and a label format that shows that unit, so labels
 * never repeat (vega's own tick choice on a short span labels several ticks "21:00").
 */
export function runTimeAxis(starts: readonly string[]): { domain: [string, string]; ticks: number[]; format: string } {
  const times = starts.map((x) => Date.parse(x)).filter(Number.isFinite);
  const first = times.length ? Math.min(...times) : 0;
  const last = times.length ? Math.max(...times) : 0;
  const tick = TIME_TICKS.find((k) => (last - first + k.ms) / k.ms <= MAX_TICKS) ?? TIME_TICKS.at(-1)!;
  // Formats below a day leave the date out: past a day's span they show it, a step of hours keeps it.
  const format = tick.interval === 'minute' || tick.interval === 'second' ? (new Date(first).toISOString().slice(0, 10) === new Date(last).toISOString().slice(0, 10) ? tick.format : `%m-%d ${tick.format}`) : tick.format;
  const from = first - tick.ms / 2;
  const to = last + tick.ms / 2;
  return { domain: [new Date(from).toISOString(), new Date(to).toISOString()], ticks: tickValues(from, to, tick), format };
}

/** Instants at whole steps of the tick's unit (UTC) within [from, to]: vega's own interval ticks name units it cannot read. */
function tickValues(from: number, to: number, tick: (typeof TIME_TICKS)[number]): number[] {
  const out: number[] = [];
  if (tick.interval === 'month' || tick.interval === 'year') {
    const d = new Date(from);
    const months = tick.interval === 'year' ? 12 * tick.step : tick.step;
    let m = d.getUTCFullYear() * 12 + d.getUTCMonth();
    m = Math.ceil(m / months) * months;
    for (let at = Date.UTC(Math.floor(m / 12), m % 12, 1); at <= to; m += months, at = Date.UTC(Math.floor(m / 12), m % 12, 1)) if (at >= from) out.push(at);
    return out;
  }
  for (let at = Math.ceil(from / tick.ms) * tick.ms; at <= to; at += tick.ms) out.push(at);
  return out;
}

/**
 * A small time chart of several measures of the runs. Each run is a point: a count per run
 * (`perRun`) has no line, since a line between two runs would claim values in between; a level
 * (curated rows) is joined. The legend is never cut (no label limit) and wraps under the title.
 */
export function overTime(rows: HistoryRow[], measures: { field: keyof HistoryRow; title: string }[], unit: string, title: string, perRun: boolean, counts = true): TopLevelSpec {
  const values = rows.flatMap((r) => measures.map((m) => ({ t: r.startedAt, measure: m.title, value: r[m.field] as number })));
  const axis = runTimeAxis(rows.map((r) => r.startedAt));
  const largest = Math.max(0, ...values.map((v) => (Number.isFinite(v.value) ? v.value : 0)));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, anchor: 'start', fontSize: 13 },
    width: 500,
    height: 150,
    config: { font: 'system-ui, sans-serif', view: { stroke: '#ddd' }, legend: { labelLimit: 0, columns: 0, symbolSize: 60 } },
    data: { values },
    mark: perRun ? { type: 'point', filled: true, size: 45, opacity: 0.85 } : { type: 'line', point: { size: 30, filled: true }, strokeWidth: 1.5 },
    encoding: {
      x: {
        field: 't',
        type: 'temporal',
        scale: { type: 'utc', domain: axis.domain },
        title: 'Run start (UTC)',
        axis: { labelOverlap: true, values: axis.ticks, format: axis.format, grid: false },
      },
      y: {
        field: 'value',
        type: 'quantitative',
        title: unit,
        // An all-zero measure still gets an axis from 0 (not one "0" tick in the middle).
        scale: { domain: [0, Math.max(counts ? 1 : 0.1, largest)], nice: true },
        axis: { format: ',~r', tickCount: 4, ...(counts ? { tickMinStep: 1 } : {}) },
      },
      color: { field: 'measure', type: 'nominal', title: null, sort: measures.map((m) => m.title), scale: { domain: measures.map((m) => m.title) }, legend: { orient: 'top', direction: 'horizontal' } },
      ...(perRun && measures.length > 1 ? { shape: { field: 'measure', type: 'nominal', sort: measures.map((m) => m.title), scale: { domain: measures.map((m) => m.title) }, legend: { orient: 'top', direction: 'horizontal' } } } : {}),
    },
  } as TopLevelSpec;
}

/** A chart's measures: each a history field and its legend title. */
const measures = (...pairs: [keyof HistoryRow, string][]): { field: keyof HistoryRow; title: string }[] => pairs.map(([field, title]) => ({ field, title }));

export async function renderHistory(dataset: DatasetConfig, rows: HistoryRow[], totalRuns = rows.length): Promise<string> {
  // A failed run's transform figures are unknown, not zero: it is listed, not charted.
  const chronological = rows.filter((r) => r.status !== 'failed').reverse();
  const failedRuns = rows.length - chronological.length;
  const charts = chronological.length
    ? await Promise.all(
        [
          overTime(chronological, measures(['curatedRows', 'curated rows']), 'rows', 'Curated rows', false),
          overTime(chronological, measures(['rowsInserted', 'inserted'], ['rowsUpdated', 'updated'], ['rowsDeleted', 'deleted']), 'rows per run', 'Changes per run', true),
          overTime(
            chronological,
            measures(['castFailures', 'cast failures'], ['malformedRows', 'malformed lines'], ['rowsQuarantined', 'rows quarantined (fetch)']),
            'rows per run',
            'Rows not loaded as they came',
            true,
          ),
          overTime(chronological, measures(['testsFailed', 'failed (error)'], ['testsWarned', 'warnings']), 'tests', 'Data tests not passing', true),
          overTime(chronological.map((r) => ({ ...r, durationS: r.durationMs / 1000 })) as HistoryRow[], [{ field: 'durationS' as keyof HistoryRow, title: 'transform' }], 'seconds', 'Transform duration', true, false),
        ].map(renderSvg),
      )
    : [];
  const cell = (n: number | undefined): string => `<td class="num">${n === undefined ? '–' : formatNumber(n)}</td>`;
  const statusText = (r: HistoryRow): string =>
    r.status === 'succeeded' ? 'succeeded' : r.status === 'failed' ? `failed: ${r.error ?? 'see the report'}` : `tests failed: ${r.failedErrorTests.join(', ')}`;
  const status = (r: HistoryRow): string => {
    const text = statusText(r);
    // The whole error is in the run's report (and on hover); the table keeps one readable line or two.
    return text.length > STATUS_CHARS ? `<td class="status" title="${escapeHtml(text)}">${escapeHtml(`${text.slice(0, STATUS_CHARS - 1)}…`)}</td>` : `<td class="status">${escapeHtml(text)}</td>`;
  };
  const unknown = '<td class="num muted">–</td>';
  const failedRow = (r: HistoryRow): string =>
    `${cell(r.rowsFetched)}${unknown.repeat(4)}${cell(r.rowsQuarantined)}${unknown.repeat(2)}<td class="num">${escapeHtml(formatDuration(r.durationMs))}</td></tr>`;
  const body = rows
    .map(
      (r) =>
        `<tr class="${r.status === 'succeeded' ? '' : 'fail'}"><td><a href="${encodeURIComponent(r.runId)}.html">${escapeHtml(r.runId)}</a></td>` +
        `<td>${escapeHtml(formatInstant(r.startedAt))}</td>${status(r)}` +
        (r.status === 'failed' ? failedRow(r) : '') +
        (r.status === 'failed' ? '' : `${cell(r.rowsFetched)}${cell(r.rowsRead)}<td class="num">${formatNumber(r.rowsInserted)} / ${formatNumber(r.rowsUpdated)}</td>` +
        `<td class="num">${r.keysetApplied ? formatNumber(r.rowsDeleted) : '<span class="muted">no scan</span>'}</td>` +
        `${cell(r.castFailures)}${cell(r.rowsQuarantined)}${cell(r.curatedRows)}` +
        `<td class="num">${formatNumber(r.testsPassed)} / ${formatNumber(r.testsFailed)} / ${formatNumber(r.testsWarned)}</td>` +
        `<td class="num">${escapeHtml(formatDuration(r.durationMs))}</td></tr>`),
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
tr.fail td{background:#fde8e8}td.status{white-space:normal;min-width:10rem;max-width:19rem}
</style></head><body>
<h1>${escapeHtml(dataset.name)}: run history</h1>
<p class="muted">${escapeHtml(shortDescription(dataset.description).short)} ${rows.length < totalRuns ? `The newest ${formatNumber(rows.length)} of ${formatNumber(totalRuns)} runs.` : `${formatNumber(rows.length)} run(s).`} Each run id links to its report.${failedRuns ? ` Failed runs (${formatNumber(failedRuns)}) are listed in red but not charted: their transform figures are unknown.` : ''}</p>
<div class="charts">${charts.map((svg) => `<figure>${svg}</figure>`).join('\n')}</div>
<div class="scroll"><table><thead><tr><th>Run</th><th>Started</th><th>Status</th><th class="num">Fetched</th><th class="num">Read</th><th class="num">Inserted / updated</th>
<th class="num">Deleted</th><th class="num">Cast failures</th><th class="num">Quarantined</th><th class="num">Curated rows</th>
<th class="num">Tests pass/fail/warn</th><th class="num">Transform</th></tr></thead>
<tbody>${body}</tbody></table></div>
</body></html>
`;
}
