/**
 * The HTML run report: run status, the fetch / deliver / transform / reconcile figures, freshness,
 * schema drift, deletions, data tests, and each mart as a chart and a sorted, formatted table.
 * Charts are declared per mart as data (report-charts.ts), compiled to Vega-Lite and rendered to
 * SVG here in Node, so the page is one self-contained file with no script and no network access;
 * it renders the same from S3 or from disk.
 */
import { sourceLabel, tableName, type DatasetConfig } from '../../../runtime/dataset-config';
import { phaseDurationMs, type PhaseFigures } from '../../../runtime/fetch-run-stats';
import type { Row } from './engine';
import type { MartModel } from './models';
import { buildChart, parseChartSpec, renderSvg, type ChartSpec } from './report-charts';
import { escapeHtml, formatBytes, formatDuration, formatInstant, formatNumber, formatTimestamp, martTable, secondsDisplay, shortDescription, SECONDS_SUFFIX, withoutSecondsSuffix } from './report-format';
import { TRANSFORM_STAGES, type RunSummary, type TransformStage } from './run-summary';
import type { DataTestResult, FailingSamples } from './data-tests';

export interface ReportInput {
  dataset: DatasetConfig;
  summary: RunSummary;
  marts: { mart: Pick<MartModel, 'name' | 'description' | 'chart' | 'file'>; rows: Row[] }[];
  /** Rows of each mart shown as a table (charts use every row given). */
  tableRows?: number;
  /** The marts' sections, already rendered (renderMartSections); `marts` is then not read. */
  martSections?: string[];
}

type Fact = [label: string, value: string, tone?: 'bad' | 'warn' | 'good'];

const n = formatNumber;
const card = (title: string, facts: Fact[], note?: string): string =>
  `<section class="card"><h3>${escapeHtml(title)}</h3><table class="facts">${facts
    .map(([k, v, tone]) => `<tr><th>${escapeHtml(k)}</th><td${tone ? ` class="${tone}"` : ''}>${v}</td></tr>`)
    .join('')}</table>${note ? `<p class="muted">${note}</p>` : ''}</section>`;

/** A value already formatted; text is escaped. */
const t = (v: unknown): string => escapeHtml(v);

function fetchCards(s: RunSummary): string[] {
  const f = s.fetch;
  if (!f?.rows && !f?.keys && !f?.repair) {
    return [
      card(
        'Fetch',
        [['Figures', t('no fetch figures for this run')]],
        escapeHtml('The fetcher left no figures under runs/<dataset>/<run-id>/ in the raw bucket: a transform started by hand, or a run from before they were recorded.'),
      ),
    ];
  }
  const cards: string[] = [];
  const c = (p: PhaseFigures | undefined, k: string): number => p?.counts[k] ?? 0;
  const r = f.rows;
  if (r) {
    const quarantined = c(r, 'rowsQuarantined');
    cards.push(
      card('Fetch', [
        ['Rows fetched', t(n(c(r, 'rowsFetched')))],
        ['Pages / invocations', t(`${n(c(r, 'pages'))} / ${n(r.invocations)}`)],
        ['Reached the end of the source', t(r.done ? 'yes' : 'no (more to fetch next run)'), r.done ? undefined : 'warn'],
        ['Source retries', t(n(c(r, 'sourceRetries'))), c(r, 'sourceRetries') ? 'warn' : undefined],
        ['Time-budget deferrals', t(n(c(r, 'timeBudgetDeferrals')))],
        [
          'Rows quarantined',
          t(
            quarantined
              ? `${n(quarantined)} (no key ${n(c(r, 'quarantinedMissingKey'))}, key not a scalar ${n(c(r, 'quarantinedInvalidKey'))}, refused by Firehose ${n(c(r, 'quarantinedRejected'))})`
              : '0',
          ),
          quarantined ? 'bad' : undefined,
        ],
        ['Checkpoint', r.checkpoint ? `${t(formatInstant(r.checkpoint.updatedAt))} <span class="muted">id ${t(r.checkpoint.id)}</span>` : t('none yet')],
      ]),
    );
    cards.push(
      card('Deliver', [
        ['Rows delivered to Firehose', t(n(c(r, 'rowsDelivered')))],
        ['Firehose records / calls', t(`${n(c(r, 'firehoseRecords'))} / ${n(c(r, 'firehoseCalls'))}`)],
        ['Bytes delivered', t(formatBytes(c(r, 'bytesDelivered')))],
        ['Records retried / throttled calls', t(`${n(c(r, 'firehoseRetriedRecords'))} / ${n(c(r, 'firehoseThrottledCalls'))}`), c(r, 'firehoseThrottledCalls') ? 'warn' : undefined],
        ['Raw objects merged (new / total)', t(`${n(s.rawObjects.new)} / ${n(s.rawObjects.total)}`)],
      ]),
    );
  }
  const k = f.keys;
  const rp = f.repair;
  if (k || rp) {
    const facts: Fact[] = [];
    if (k) {
      facts.push(['Key scan', t(k.skipped ? `skipped (${k.skipped})` : `${n(c(k, 'keys'))} source keys in ${n(c(k, 'pages'))} page(s)`)]);
      if (c(k, 'rowsWithoutKey')) facts.push(['Source rows without a key', t(n(c(k, 'rowsWithoutKey'))), 'warn']);
    }
    if (rp) facts.push(['Repair', t(rp.skipped ? `skipped (${rp.skipped})` : `${n(c(rp, 'rowsDelivered'))} of ${n(c(rp, 'keysRequested'))} missing rows fetched again`)]);
    cards.push(card('Key scan and repair', facts));
  }
  return cards;
}

const STAGE_LABELS: Record<TransformStage, string> = {
  merge: 'staging and merge',
  'key scan': 'key scan (deletions)',
  history: 'history and changes',
  marts: 'marts',
  tests: 'data tests',
  profile: 'column profile',
  report: 'report and charts',
};

const NOT_KNOWN = 'not known (start not recorded)';

/**
 * How long the run and each phase took. A fetch phase's time runs from its start (recorded by the
 * fetcher) to its newest stats object; the run's from the earliest start known to the transform's end.
 */
export function durationFacts(s: RunSummary): Fact[] {
  const facts: Fact[] = [];
  const f = s.fetch;
  const phases: [string, PhaseFigures | undefined][] = [['Fetch: rows', f?.rows], ['Fetch: key scan', f?.keys], ['Fetch: repair', f?.repair]];
  const starts = [Date.parse(s.startedAt)];
  let unknownStart = false;
  for (const [label, p] of phases) {
    if (!p) continue;
    const ms = phaseDurationMs(p);
    if (p.startedAt) starts.push(Date.parse(p.startedAt));
    else unknownStart = true;
    facts.push([label, t(p.skipped && ms === undefined ? `skipped (${p.skipped})` : ms === undefined ? NOT_KNOWN : formatDuration(ms))]);
  }
  const end = Date.parse(s.finishedAt);
  const runMs = end - Math.min(...starts.filter(Number.isFinite));
  const run = unknownStart && starts.length === 1 ? `at least ${formatDuration(runMs)} (fetch start not recorded)` : formatDuration(runMs);
  facts.unshift(['Run', t(f ? run : `${formatDuration(runMs)} (the transform only: no fetch figures)`)]);
  if (s.status === 'failed') {
    facts.push(['Until it failed', t(formatDuration(s.durationMs))]);
    return facts;
  }
  facts.push(['Transform', t(formatDuration(s.durationMs))]);
  const stages = s.stageMs;
  if (stages) {
    let staged = 0;
    for (const stage of TRANSFORM_STAGES) {
      const ms = stages[stage];
      if (ms === undefined) continue;
      staged += ms;
      facts.push([`\u2003${STAGE_LABELS[stage]}`, t(formatDuration(ms))]);
    }
    facts.push(['\u2003other (state, reconciliation)', t(formatDuration(Math.max(0, s.durationMs - staged)))]);
  } else facts.push(['\u2003stages', t('not recorded (a summary from before stage timings)')]);
  return facts;
}

function durationsCard(s: RunSummary): string {
  return card('Durations', durationFacts(s));
}

function freshnessCard(s: RunSummary): string {
  const f = s.freshness;
  if (!f) return card('Freshness', [['Measured', t('not measured in this run')]]);
  const ago = (ms: number | undefined): string => (ms === undefined ? '' : ` <span class="muted">(${t(formatDuration(ms))} before the run ended)</span>`);
  return card('Freshness', [
    ['Newest :updated_at in curated', f.newestUpdatedAt ? t(formatInstant(f.newestUpdatedAt)) + ago(f.lagMs) : t('none (curated is empty)')],
    ['Newest event time (wall clock)', t(f.newestEventTime ? formatTimestamp(f.newestEventTime) : 'none')],
    [
      'Behind the source',
      f.behindSourceMs === undefined
        ? t('unknown (the fetch did not read to the end of the source)')
        : t(f.behindSourceMs === 0 ? 'no: curated holds the source’s newest change' : formatDuration(f.behindSourceMs)),
      f.behindSourceMs ? 'warn' : undefined,
    ],
  ]);
}

function transformCards(s: RunSummary, dataset: DatasetConfig): string[] {
  const casts = Object.entries(s.castFailures).filter(([, v]) => v > 0);
  const transform = card('Transform', [
    ['Engine / duration', t(`${s.engine} / ${formatDuration(s.durationMs)}`)],
    ['Rows read', t(n(s.rowsRead))],
    ['Inserted / updated / unchanged', t(`${n(s.rowsInserted)} / ${n(s.rowsUpdated)} / ${n(s.rowsUnchanged)}`)],
    ['Duplicates removed', t(n(s.duplicatesRemoved))],
    ['Malformed lines / rows without key', t(`${n(s.malformedRows)} / ${n(s.rowsWithoutKey)}`), s.malformedRows || s.rowsWithoutKey ? 'warn' : undefined],
    ['Cast failures (kept as null)', t(casts.map(([col, v]) => `${col}: ${n(v)}`).join(', ') || '0'), casts.length ? 'warn' : undefined],
    [
      'Raw objects quarantined',
      t(s.quarantinedObjects.map((q) => `${q.key}: ${q.error}`).join('; ') || '0'),
      s.quarantinedObjects.length ? 'bad' : undefined,
    ],
    ['Curated rows', t(n(s.curatedRows))],
    ...(s.rebuild ? ([['Rebuild', t('curated rebuilt from the whole raw zone')]] as Fact[]) : []),
    ...(s.maintenance.length ? ([['Table maintenance', t(s.maintenance.join('; '))]] as Fact[]) : []),
  ]);
  const src = s.reconciliation.source;
  const reconcile = src
    ? card('Reconcile (against the source’s keys)', [
        ['Source keys', t(n(src.sourceKeys))],
        ['Curated rows', t(n(s.curatedRows))],
        ['Missing from curated', t(n(src.missingKeys)), src.missingKeys ? 'bad' : 'good'],
        ['In curated, not at the source', t(n(src.extraKeys)), src.extraKeys ? 'bad' : 'good'],
        ...(src.missingKeysLocation ? ([['Missing keys listed in', t(src.missingKeysLocation)]] as Fact[]) : []),
        // Summaries written before quarantined keys were counted have no such field.
        ...(src.quarantinedKeys ? ([['Not in curated: rows the fetcher quarantined', t(`${n(src.quarantinedKeys)} (${src.quarantineLocation ?? ''})`), 'warn']] as Fact[]) : []),
      ])
    : card('Reconcile (merged keys)', [
        ['Distinct keys merged', t(n(s.reconciliation.mergedKeys))],
        ['Curated rows', t(n(s.reconciliation.curatedRows))],
        ['Agree', t(s.reconciliation.mergedKeys === s.reconciliation.curatedRows ? 'yes' : 'NO'), s.reconciliation.mergedKeys === s.reconciliation.curatedRows ? 'good' : 'bad'],
      ], escapeHtml('No key scan this run: curated is checked against what the merges recorded, not against the source.'));
  const guard = `${n(dataset.deletions.maxDeleteShare * 100, 1)}% of curated`;
  const deletions = card(
    'Deletions',
    dataset.deletions.detect
      ? s.keysetApplied
        ? [
            ['Rows deleted (keys gone at the source)', t(n(s.rowsDeleted)), s.rowsDeleted ? 'warn' : undefined],
            ['Curated rows before', t(n(src?.curatedRowsBefore ?? s.curatedRows))],
            ['Guard', t(`a scan that would delete more than ${guard} deletes nothing and fails the run`)],
          ]
        : [
            ['Rows deleted', t('no key scan this run')],
            ['Guard', t(`a scan that would delete more than ${guard} deletes nothing and fails the run`)],
          ]
      : [['Detection', t('off (deletions.detect is false): rows deleted at the source stay in curated')]],
  );
  const drift = card(
    'Schema drift',
    [['Undeclared source columns', t(s.schemaDrift.undeclared.join(', ') || 'none'), s.schemaDrift.undeclared.length ? 'warn' : 'good']],
    s.schemaDrift.undeclared.length ? escapeHtml('Kept in raw, not loaded into curated until declared in the dataset file.') : undefined,
  );
  return [transform, reconcile, deletions, ...changesCard(s, dataset), drift];
}

/** What changed this run (its records in the change feed); summaries without them show nothing. */
function changesCard(s: RunSummary, dataset: DatasetConfig): string[] {
  const c = s.changes;
  if (!c) return [];
  const keys = (list: string[], total: number): string => t(list.length ? `${list.join(', ')}${total > list.length ? `, … (${n(total - list.length)} more)` : ''}` : 'none');
  const table = tableName(dataset);
  return [
    card(
      'What changed this run',
      [
        ['Inserted / updated / deleted', t(`${n(c.inserted)} / ${n(c.updated)} / ${n(c.deleted)}`)],
        ['Most-changed columns', t(c.columns.map((x) => `${x.column} (${n(x.updates)})`).join(', ') || 'none')],
        ['Inserted keys', keys(c.examples.insert, c.inserted)],
        ['Updated keys', keys(c.examples.update, c.updated)],
        ['Deleted keys', keys(c.examples.delete, c.deleted)],
      ],
      escapeHtml(`Every change in ${table}__changes (run_id = '${s.runId}'); every version of every key in ${table}__history.`),
    ),
  ];
}

/** Failed errors first, then warnings, then skipped, then passes; by model and name within each. */
export function sortTests(results: readonly DataTestResult[]): DataTestResult[] {
  const rank = (r: DataTestResult): number =>
    r.status === 'pass' ? 3 : r.status === 'skipped' ? 2 : r.status === 'warn' || r.severity === 'warn' ? 1 : 0;
  return [...results].sort((a, b) => rank(a) - rank(b) || a.model.localeCompare(b.model) || a.name.localeCompare(b.name));
}

/** What the test measured, beyond its rule: the failing rows' table, the freshness lag, why it was skipped. */
function testDetail(r: DataTestResult): string {
  const parts: string[] = [t(r.description)];
  const f = r.freshness;
  if (f) {
    const limits = [f.warnAfterSeconds !== undefined ? `warn after ${formatDuration(f.warnAfterSeconds * 1000)}` : '', f.errorAfterSeconds !== undefined ? `error after ${formatDuration(f.errorAfterSeconds * 1000)}` : '']
      .filter(Boolean)
      .join(', ');
    parts.push(`<br><span class="muted">newest ${t(f.loadedAtField)}: ${t(f.newest ?? 'no rows')}${f.lagSeconds !== null ? `, ${t(formatDuration(f.lagSeconds * 1000))} ago` : ''}${limits ? ` (${t(limits)})` : ''}</span>`);
  }
  if (r.skipReason) parts.push(`<br><span class="muted">not run: ${t(r.skipReason)}</span>`);
  if (r.failuresTable && r.status !== 'pass') parts.push(`<br><span class="muted">failing rows kept in <code>${t(r.failuresTable)}</code></span>`);
  if (r.samples?.rows.length && r.status !== 'pass') parts.push(samplesTable(r.samples, r.failing));
  return parts.join('');
}

/** A few failing values or rows, as a small table under the test. */
function samplesTable(samples: FailingSamples, failing: number): string {
  const value = (v: unknown): string =>
    v === null ? '<span class="muted">null</span>' : typeof v === 'number' ? t(n(v, Number.isInteger(v) ? 0 : 2)) : typeof v === 'string' ? t(formatTimestamp(v)) : t(v);
  const head = samples.columns.map((c) => `<th>${t(c)}</th>`).join('');
  const body = samples.rows.map((r) => `<tr>${r.map((v) => `<td>${value(v)}</td>`).join('')}</tr>`).join('');
  const label =
    samples.kind === 'values' ? 'failing values, most frequent first' : samples.kind === 'groups' ? 'duplicated, most repeated first' : samples.rows.length < failing ? `the first ${samples.rows.length} of ${n(failing)} failing rows` : 'failing rows';
  return `<div class="samples"><span class="muted">${t(label)}:</span><table class="sample"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

/** Curated's declared columns: nulls, distinct values (approximate), smallest and largest. */
function profileSection(s: RunSummary): string {
  const p = s.columnProfile;
  if (!p) return '';
  const bound = (v: unknown, type: string): string =>
    v === null || v === undefined ? '<span class="muted">–</span>' : type === 'DOUBLE' || type === 'BIGINT' ? t(n(Number(v), Number.isInteger(Number(v)) ? 0 : 4)) : t(truncate(formatTimestamp(String(v)), 40));
  const rows = p.columns
    .map(
      (c) =>
        `<tr><td>${t(c.column)}</td><td>${t(c.type.toLowerCase())}</td><td class="num">${t(n(c.nulls))}</td><td class="num">${t(p.rows ? `${n((100 * c.nulls) / p.rows, 1)}%` : '–')}</td>` +
        `<td class="num">${t(`≈ ${n(c.distinct)}`)}</td><td>${bound(c.min, c.type)}</td><td>${bound(c.max, c.type)}</td></tr>`,
    )
    .join('');
  return (
    `<h2 id="profile">Column profile <span class="counts muted">${t(`${n(p.rows)} curated rows`)}</span></h2>` +
    `<p class="muted">${t(`This dataset has no marts, so its declared columns are profiled instead. Distinct counts are estimates (${p.distinctFunction}, HyperLogLog): a few percent off on many values, more on a handful, and the two engines' estimates differ.`)}</p>` +
    `<div class="scroll"><table class="mart"><thead><tr><th>Column</th><th>Type</th><th class="num">Nulls</th><th class="num">Null share</th><th class="num">Distinct (approx.)</th><th>Smallest</th><th>Largest</th></tr></thead><tbody>${rows}</tbody></table></div>`
  );
}

const truncate = (v: string, max: number): string => (v.length > max ? `${v.slice(0, max - 1)}…` : v);

function testsSection(s: RunSummary): string {
  const rows = sortTests(s.tests.results)
    .map((r) => {
      // A failed warn-severity test is a warning whatever status it was recorded with (summaries
      // before dbt's vocabulary said 'fail').
      const warned = r.status === 'warn' || (r.status === 'fail' && r.severity === 'warn');
      const cls = r.status === 'pass' ? 'pass' : r.status === 'skipped' ? 'skip' : warned ? 'warn' : 'fail';
      const result = r.status === 'pass' ? 'pass' : r.status === 'skipped' ? 'skipped' : warned ? 'warn' : 'FAIL';
      return `<tr class="${cls}"><td>${t(result)}</td><td>${t(r.name)}</td><td>${t(r.model)}</td><td>${t(r.severity)}</td><td class="num">${r.status === 'skipped' ? '' : t(n(r.failing))}</td><td>${testDetail(r)}</td></tr>`;
    })
    .join('\n');
  const skippedModels = s.skippedModels ?? [];
  const skippedNote = skippedModels.length
    ? `<p class="warn-c">Models not built (an upstream error test failed): ${skippedModels.map((m) => `<b>${t(m.name)}</b> (${t(m.reason)})`).join('; ')}</p>`
    : '';
  return (
    `<h2 id="tests">Data tests <span class="counts"><span class="fail-c">${n(s.tests.failed)} failed</span> · <span class="warn-c">${n(s.tests.warned)} warnings</span> · ` +
    `${s.tests.skipped ? `<span class="muted">${n(s.tests.skipped)} skipped</span> · ` : ''}<span class="pass-c">${n(s.tests.passed)} passed</span></span></h2>` +
    skippedNote +
    `<div class="scroll"><table class="tests"><thead><tr><th>Result</th><th>Test</th><th>Model</th><th>Severity</th><th class="num">Failing</th><th>Rule</th></tr></thead><tbody>${rows}</tbody></table></div>`
  );
}

async function martSection(mart: ReportInput['marts'][number]['mart'], rows: Row[], asOf: string | undefined, tableRows: number): Promise<string> {
  let spec: ChartSpec | undefined;
  let chart = '';
  let notes: string[] = [];
  let partial: string | undefined;
  const seconds = secondsDisplay(rows, Object.keys(rows[0] ?? {}));
  if (mart.chart) {
    spec = parseChartSpec(mart.chart, mart.file);
    if (rows.length) {
      // A seconds measure is drawn in the unit its table shows (minutes for response times).
      const inUnit = seconds && spec.y.endsWith(SECONDS_SUFFIX);
      const drawn = inUnit ? { ...spec, unit: seconds.unit, ...(spec.yTitle ? {} : { yTitle: withoutSecondsSuffix(spec.y) }) } : spec;
      const drawnRows = inUnit ? rows.map((r) => ({ ...r, [spec!.y]: r[spec!.y] === null || r[spec!.y] === undefined ? r[spec!.y] : Number(r[spec!.y]) / seconds.divisor })) : rows;
      const built = buildChart(drawn, drawnRows, asOf ? { asOf } : {});
      notes = built.notes;
      partial = built.partialPeriod;
      chart = await renderSvg(built.spec);
    }
  }
  if (seconds?.unit === 'min') notes.push(`Times in minutes (the mart's ${SECONDS_SUFFIX} columns divided by 60).`);
  return (
    `<section class="mart" id="mart-${t(mart.name)}"><h3>${t(mart.name)}</h3><p>${t(mart.description)}</p>` +
    (chart ? `<figure class="chart">${chart}${notes.length ? `<figcaption>${notes.map(t).join(' ')}</figcaption>` : ''}</figure>` : '') +
    `${martTable(rows, tableRows, spec, partial)}</section>`
  );
}

/** Each mart's section (chart, caption, table): the costly part of the page, rendered first. */
export async function renderMartSections(marts: ReportInput['marts'], summary: Pick<RunSummary, 'freshness'>, tableRows = 25): Promise<string[]> {
  const sections: string[] = [];
  const asOf = summary.freshness?.newestEventTime;
  for (const { mart, rows } of marts) sections.push(await martSection(mart, rows, asOf, tableRows));
  return sections;
}

/** The dataset's description as a subtitle: shortened, the whole text one click away. */
function descriptionHtml(description: string): string {
  const d = shortDescription(description);
  return d.full ? `<details class="desc"><summary>${t(d.short)}</summary>${t(d.full)}</details>` : `<p class="desc">${t(d.short)}</p>`;
}

export async function renderReport(input: ReportInput): Promise<string> {
  const { dataset, summary: s } = input;
  const ok = s.status === 'succeeded';
  // A run with warnings succeeded but is not green: the banner says so in amber.
  const failed = s.status === 'failed';
  const banner = ok
    ? `Succeeded${s.tests.warned ? ` with ${n(s.tests.warned)} warning(s)` : ''}`
    : failed
      ? `Run FAILED: ${s.error ?? 'see the run log'}`
      : `Data tests FAILED: ${s.failedErrorTests.join(', ')}`;
  // A failed run's transform figures are unknown, not zero: only what the fetch recorded is shown.
  const tiles: [string, string][] = failed ? [['rows fetched', s.fetch?.rows ? n(s.fetch.rows.counts.rowsFetched ?? 0) : '–']] : [
    ['curated rows', n(s.curatedRows)],
    ['inserted', n(s.rowsInserted)],
    ['updated', n(s.rowsUpdated)],
    ['deleted', s.keysetApplied ? n(s.rowsDeleted) : '–'],
    ['rows fetched', s.fetch?.rows ? n(s.fetch.rows.counts.rowsFetched ?? 0) : '–'],
    ['newest change', s.freshness?.lagMs !== undefined ? `${formatDuration(s.freshness.lagMs)} ago` : '–'],
  ];
  const sections = input.martSections ?? (await renderMartSections(input.marts, s, input.tableRows));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${t(dataset.name)} run ${t(s.runId)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem 2rem;color:#222}
h1{margin:.2rem 0;font-size:1.6rem}h2{margin:1.8rem 0 .6rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}h3{margin:.2rem 0 .4rem}
a{color:#1f5fa8}.muted{color:#777}.scroll{overflow-x:auto}
.banner{padding:.7rem 1rem;border-radius:6px;font-size:1.1rem;font-weight:600;margin:.8rem 0}
.banner.ok{background:#e3f4e6;color:#145a24;border:1px solid #9bd3a6}.banner.warn{background:#fff4d6;color:#6b4a00;border:1px solid #e6c46b}.banner.bad{background:#fde8e8;color:#8a1c1c;border:1px solid #f0a8a8}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:.6rem;margin:.8rem 0}
.tile{background:#f6f7f9;border-radius:6px;padding:.5rem .8rem}.tile b{display:block;font-size:1.35rem;font-variant-numeric:tabular-nums}.tile span{color:#666}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:.8rem}
.card{border:1px solid #e2e2e2;border-radius:6px;padding:.6rem .8rem}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;text-align:left;vertical-align:top}
table.facts th{font-weight:normal;color:#555;width:45%}table.facts td{font-variant-numeric:tabular-nums}
td.bad{color:#a11;font-weight:600}td.warn{color:#8a5a00;font-weight:600}td.good{color:#176f2c}
table.tests{width:100%}table.mart{min-width:50%}table.tests td,table.tests th,table.mart td,table.mart th{border-bottom:1px solid #e8e8e8}
table.tests th,table.mart th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#fde8e8}tr.warn td{background:#fff6dd}tr.skip td{color:#666;background:#f3f3f3}tr.pass td:first-child{color:#176f2c}
.counts{font-size:.9rem;font-weight:normal}.fail-c{color:#a11}.warn-c{color:#8a5a00}.pass-c{color:#176f2c}
section.mart{margin:1.5rem 0 2rem}figure.chart{margin:.5rem 0;overflow-x:auto}figure.chart svg{max-width:100%;height:auto}
figcaption{color:#666;font-size:12px}td.null{color:#aaa;text-align:center}
.desc{color:#555;margin:.2rem 0;max-width:60rem}details.desc summary{cursor:pointer}
.samples{margin-top:.3rem}table.sample{margin-top:.15rem;font-size:12px}table.sample th{background:#f4f4f4;font-weight:600}table.sample td,table.sample th{border:1px solid #e4e4e4;padding:1px 6px}
</style></head><body>
<p class="muted"><a href="index.html">← all runs of ${t(dataset.name)}</a></p>
<h1>${t(dataset.name)}: run ${t(s.runId)}</h1>
${descriptionHtml(dataset.description)}
<p class="muted">Source ${t(sourceLabel(dataset.source))}. Started ${t(formatInstant(s.startedAt))}, finished ${t(formatInstant(s.finishedAt))}.</p>
<div class="banner ${ok ? (s.tests.warned ? 'warn' : 'ok') : 'bad'}">${t(banner)}</div>
<div class="tiles">${tiles.map(([k, v]) => `<div class="tile"><b>${t(v)}</b><span>${t(k)}</span></div>`).join('')}</div>
<h2>Run</h2>
<div class="cards">${[...fetchCards(s), ...(failed ? [] : [...transformCards(s, dataset), freshnessCard(s)]), durationsCard(s)].join('\n')}</div>
${failed ? '' : testsSection(s)}
${failed ? '' : profileSection(s)}
<h2>Marts</h2>
${sections.join('\n') || '<p class="muted">This dataset has no marts.</p>'}
</body></html>
`;
}
