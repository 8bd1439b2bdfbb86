/**
 * Mart charts for the run report, declared per mart as data (a small chart spec), turned into
 * Vega-Lite here and rendered to SVG in Node, so the report stays one self-contained file.
 *
 * The spec is deliberately small, so every chart gets the same readable treatment:
 *   {"type":"line","x":"month","time":"month","y":"incidents","series":"battalion","top":12,"unit":"incidents"}
 *   {"type":"bar","x":"primary_situation","y":"property_loss","top":15,"unit":"USD"}
 * - line: x is a date at `time` grain. One panel per series value (small multiples) unless
 *   `layout: "overlay"`; series beyond `top` are summed into "other". Missing periods are gaps
 *   (null values break the line), single points stay visible (points on the line), and the last
 *   period is left out when the data ends inside it (`partial: "drop"`, the default).
 * - bar: horizontal bars (long category names fit), sorted by value, zero and empty categories
 *   hidden; categories beyond `top` are summed into "other" (`rest: "other"`) or, for measures
 *   that do not add up (percentiles, averages), left out (`rest: "hide"`) with a note.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { Row } from './engine';
import type { ChartSpec } from './chart-spec';

export { chartSpecSchema, ChartSpecError, parseChartSpec, validateMartCharts, type ChartSpec } from './chart-spec';

/** A number from an engine value (DuckDB gives numbers, Athena strings); undefined for null/blank. */
export function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

const DATE_PARTS = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}))?/;

/**
 * The period a date value falls in, as the dataset means it: "2018-01" for a month. Engines
 * return a floating (wall-clock) timestamp as "2018-01-01T00:00:00.000Z" (DuckDB) or
 * "2018-01-01 00:00:00.000" (Athena); the digits are the wall time, never shifted.
 */
export function periodOf(v: unknown, grain: 'year' | 'month' | 'day'): string | undefined {
  const s = v instanceof Date ? v.toISOString() : typeof v === 'string' ? v : undefined;
  const m = s ? DATE_PARTS.exec(s) : null;
  if (!m) return undefined;
  return grain === 'year' ? m[1] : grain === 'month' ? `${m[1]}-${m[2]}` : `${m[1]}-${m[2]}-${m[3]}`;
}

/** The periods from first to last inclusive (so a missing one is visible as a gap). */
export function periodRange(first: string, last: string, grain: 'year' | 'month' | 'day'): string[] {
  const out: string[] = [];
  const start = new Date(`${grain === 'year' ? `${first}-01-01` : grain === 'month' ? `${first}-01` : first}T00:00:00Z`);
  for (let d = start, i = 0; i < 100_000; i++) {
    const p = periodOf(d.toISOString(), grain)!;
    if (p > last) break;
    out.push(p);
    if (grain === 'year') d = new Date(Date.UTC(d.getUTCFullYear() + 1, 0, 1));
    else if (grain === 'month') d = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));
    else d = new Date(d.getTime() + 86_400_000);
  }
  return out;
}

/** The last day of a period, "YYYY-MM-DD". */
function lastDayOf(period: string, grain: 'year' | 'month' | 'day'): string {
  if (grain === 'day') return period;
  if (grain === 'year') return `${period}-12-31`;
  const [y, m] = period.split('-').map(Number) as [number, number];
  return new Date(Date.UTC(y, m, 0)).toISOString().slice(0, 10);
}

export const OTHER = 'other';

export interface BarDatum {
  category: string;
  value: number;
}

/**
 * Bar data: values summed per category, zero/empty categories dropped, sorted by value
 * (descending), the first `top` kept and the rest summed into "other (N)" or left out.
 */
export function barData(rows: Row[], spec: Pick<ChartSpec, 'x' | 'y' | 'top' | 'rest'>): { bars: BarDatum[]; zeroHidden: number; restCount: number } {
  const sums = new Map<string, number>();
  for (const r of rows) {
    const key = r[spec.x] === null || r[spec.x] === undefined ? 'unknown' : String(r[spec.x]);
    const v = toNumber(r[spec.y]);
    sums.set(key, (sums.get(key) ?? 0) + (v ?? 0));
  }
  const all = [...sums].map(([category, value]) => ({ category, value }));
  const nonZero = all.filter((b) => b.value !== 0).sort((a, b) => b.value - a.value || a.category.localeCompare(b.category));
  const zeroHidden = all.length - nonZero.length;
  if (!spec.top || nonZero.length <= spec.top) return { bars: nonZero, zeroHidden, restCount: 0 };
  const kept = nonZero.slice(0, spec.top);
  const rest = nonZero.slice(spec.top);
  if (spec.rest === 'hide') return { bars: kept, zeroHidden, restCount: rest.length };
  return { bars: [...kept, { category: `${OTHER} (${rest.length})`, value: rest.reduce((a, b) => a + b.value, 0) }], zeroHidden, restCount: rest.length };
}

export interface LinePoint {
  period: string;
  series: string;
  /** null: no row for this period (a gap, not a zero). */
  value: number | null;
}

/**
 * Line data: x as periods, series beyond `top` (by total) summed into "other", every period
 * between the first and the last present for every series (null where the mart has no row),
 * and the last period left out when `asOf` (the newest event time) falls inside it.
 */
export function lineData(
  rows: Row[],
  spec: Pick<ChartSpec, 'x' | 'y' | 'series' | 'top' | 'rest' | 'time' | 'partial'>,
  asOf?: string,
): { points: LinePoint[]; series: string[]; droppedPartial?: string; restCount: number } {
  const grain = spec.time ?? 'month';
  const cells = new Map<string, Map<string, number>>();
  const totals = new Map<string, number>();
  for (const r of rows) {
    const period = periodOf(r[spec.x], grain);
    if (!period) continue;
    const series = spec.series ? (r[spec.series] === null || r[spec.series] === undefined ? 'unknown' : String(r[spec.series])) : spec.y;
    const v = toNumber(r[spec.y]) ?? 0;
    const byPeriod = cells.get(series) ?? new Map<string, number>();
    byPeriod.set(period, (byPeriod.get(period) ?? 0) + v);
    cells.set(series, byPeriod);
    totals.set(series, (totals.get(series) ?? 0) + v);
  }
  let order = [...totals].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([s]) => s);
  let restCount = 0;
  if (spec.top && order.length > spec.top) {
    const rest = order.slice(spec.top);
    restCount = rest.length;
    order = order.slice(0, spec.top);
    if (spec.rest === 'other') {
      const other = new Map<string, number>();
      for (const s of rest) for (const [p, v] of cells.get(s)!) other.set(p, (other.get(p) ?? 0) + v);
      const name = `${OTHER} (${rest.length})`;
      cells.set(name, other);
      order.push(name);
    }
  }
  const periods = [...new Set(order.flatMap((s) => [...cells.get(s)!.keys()]))].sort();
  if (!periods.length) return { points: [], series: order, restCount };
  let range = periodRange(periods[0]!, periods.at(-1)!, grain);
  let droppedPartial: string | undefined;
  const last = range.at(-1)!;
  const asOfDay = asOf ? periodOf(asOf, 'day') : undefined;
  if (spec.partial === 'drop' && asOfDay && periodOf(asOfDay, grain) === last && asOfDay < lastDayOf(last, grain) && range.length > 1) {
    droppedPartial = last;
    range = range.slice(0, -1);
  }
  const points = order.flatMap((s) => range.map((period) => ({ period, series: s, value: cells.get(s)!.get(period) ?? null })));
  return { points, series: order, ...(droppedPartial ? { droppedPartial } : {}), restCount };
}

export interface ChartOptions {
  /** The newest event time in curated (the partial last period is judged against it). */
  asOf?: string;
  /** Drawing width in px (the SVG scales down with the page). */
  width?: number;
}

export interface BuiltChart {
  spec: TopLevelSpec;
  /** Caption lines: what was left out or grouped, so nothing is hidden silently. */
  notes: string[];
  /** line: the last period, left out of the chart because the data ends inside it. */
  partialPeriod?: string;
}

const timeUnit = { year: 'utcyear', month: 'utcyearmonth', day: 'utcyearmonthdate' } as const;
const isoOf = (period: string, grain: 'year' | 'month' | 'day'): string =>
  `${grain === 'year' ? `${period}-01-01` : grain === 'month' ? `${period}-01` : period}T00:00:00Z`;

const axisTitle = (title: string, unit?: string): string => (unit ? `${title} (${unit})` : title);
const humanize = (name: string): string => name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());

/** The Vega-Lite spec (with its data inlined) for one mart's chart. */
export function buildChart(chart: ChartSpec, rows: Row[], options: ChartOptions = {}): BuiltChart {
  const width = options.width ?? 1300;
  const notes: string[] = [];
  const yTitle = axisTitle(chart.yTitle ?? humanize(chart.y), chart.unit);
  const base = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...(chart.title ? { title: chart.title } : {}),
    config: {
      font: 'system-ui, sans-serif',
      axis: { labelFontSize: 11, titleFontSize: 12, labelLimit: 400 },
      header: { labelFontSize: 12 },
      view: { stroke: '#ddd' },
    },
  };
  if (chart.type === 'bar') {
    const { bars, zeroHidden, restCount } = barData(rows, chart);
    if (zeroHidden) notes.push(`${zeroHidden} categor${zeroHidden === 1 ? 'y' : 'ies'} with ${chart.y} 0 or empty not drawn.`);
    if (restCount) {
      notes.push(
        chart.rest === 'other'
          ? `Top ${chart.top} of ${chart.top! + restCount}; the other ${restCount} summed as "${OTHER} (${restCount})".`
          : `Top ${chart.top} of ${chart.top! + restCount} shown; the other ${restCount} are in the table.`,
      );
    }
    return {
      notes,
      spec: {
        ...base,
        title: { text: chart.title ?? `${yTitle} by ${(chart.xTitle ?? humanize(chart.x)).toLowerCase()}`, anchor: 'start', fontSize: 13 },
        width: Math.min(width, 900),
        height: { step: 20 },
        data: { values: bars },
        mark: { type: 'bar', color: '#4c78a8', tooltip: true },
        encoding: {
          // The category axis has no title (it is in the chart title): the title's offset is computed
          // from label widths estimated in Node, which long labels in the browser's font overrun.
          y: { field: 'category', type: 'nominal', sort: null, title: null, axis: { labelLimit: 1000 } },
          x: { field: 'value', type: 'quantitative', title: yTitle, axis: { format: ',~r', tickCount: 6, labelOverlap: true } },
        },
      } as TopLevelSpec,
    };
  }
  const grain = chart.time!;
  const { points, series, droppedPartial, restCount } = lineData(rows, chart, options.asOf);
  if (droppedPartial) notes.push(`${droppedPartial} left out: the data ends inside it (newest event ${String(options.asOf).slice(0, 10)}), so it would show a false drop.`);
  if (restCount) {
    notes.push(
      chart.rest === 'other'
        ? `${series.length - 1} largest ${chart.series} shown; the other ${restCount} summed as "${OTHER} (${restCount})".`
        : `${series.length} largest ${chart.series} shown; ${restCount} more are in the table.`,
    );
  }
  notes.push('Gaps in a line are periods without rows; points mark each period with data.');
  const values = points.map((p) => ({ t: isoOf(p.period, grain), series: p.series, value: p.value }));
  const x = { field: 't', type: 'temporal', timeUnit: timeUnit[grain], title: chart.xTitle ?? humanize(chart.x), axis: { labelOverlap: true, tickCount: 6 } };
  const y = { field: 'value', type: 'quantitative', title: yTitle, axis: { format: ',~r', tickCount: 4 } };
  // Null values break the line (a gap): Vega-Lite's default for lines, asserted by the tests.
  // Points stay visible (a single-period series is only a point) but small when periods are many.
  const periodCount = new Set(points.map((p) => p.period)).size;
  const mark = { type: 'line', point: { size: periodCount > 48 ? 8 : 24, filled: true }, strokeWidth: periodCount > 48 ? 1 : 1.5, tooltip: true };
  const facet = chart.series && chart.layout === 'facet' && series.length > 1;
  if (facet) {
    // 3 to 5 panels a row, whichever leaves the fewest empty cells (wider rows win ties): empty
    // cells still get an x axis under them.
    const columns = series.length <= 5 ? series.length : [5, 4, 3].reduce((best, c) => ((c - (series.length % c)) % c < (best - (series.length % best)) % best ? c : best));
    return {
      notes,
      ...(droppedPartial ? { partialPeriod: droppedPartial } : {}),
      spec: {
        ...base,
        data: { values },
        facet: { field: 'series', type: 'nominal', sort: series, title: null, header: { labelFontWeight: 'bold' } },
        columns,
        // One y title for the grid (above it), not one per row of panels.
        title: { text: `${yTitle} by ${humanize(chart.series!).toLowerCase()}`, anchor: 'start', fontSize: 13 },
        spec: { width: Math.floor((width - 60 * columns) / columns), height: 110, mark, encoding: { x, y: { ...y, title: null } } },
      } as TopLevelSpec,
    };
  }
  return {
    notes,
    ...(droppedPartial ? { partialPeriod: droppedPartial } : {}),
    spec: {
      ...base,
      width,
      height: 280,
      data: { values },
      mark,
      encoding: { x, y, ...(chart.series ? { color: { field: 'series', type: 'nominal', sort: series, title: humanize(chart.series) } } : {}) },
    } as TopLevelSpec,
  };
}

/** Render a Vega-Lite spec (data inlined) to an SVG string. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
