/**
 * Formatting for the report and history pages: numbers with thousands separators and one number
 * of decimals per column, dates as the dataset means them (a month is "2018-01", a floating
 * timestamp its wall-clock digits, never re-zoned), mart tables sorted the way their chart reads.
 */
import type { Row } from './engine';
import { periodOf, toNumber, type ChartSpec } from './report-charts';

export const escapeHtml = (v: unknown): string =>
  String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/** Text of a portal's HTML description: tags dropped, entities read, whitespace collapsed. */
export function stripHtml(html: string): string {
  return html
    .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<br\s*\/?>|<\/(p|div|li|h\d)>/gi, ' ')
    .replace(/<[^>]*>/g, '')
    .replace(/&(#\d+|#x[0-9a-f]+|[a-z]+);/gi, (m, e: string) =>
      e[0] === '#' ? String.fromCodePoint(e[1]?.toLowerCase() === 'x' ? parseInt(e.slice(2), 16) : Number(e.slice(1))) : (ENTITIES[e.toLowerCase()] ?? m),
    )
    .replace(/\s+/g, ' ')
    .trim();
}

export const DESCRIPTION_CHARS = 200;

/**
 * A description as a subtitle: its first sentence, or its first ~200 characters cut at a word;
 * `full` is the whole text (HTML stripped) when the short one leaves something out.
 */
export function shortDescription(description: string): { short: string; full?: string } {
  const text = stripHtml(description);
  const sentence = /^.*?[.!?](?=\s+[A-Z0-9("“]|$)/.exec(text)?.[0];
  let short = sentence && sentence.length <= DESCRIPTION_CHARS ? sentence : text;
  if (short.length > DESCRIPTION_CHARS) {
    const cut = short.slice(0, DESCRIPTION_CHARS);
    const space = cut.lastIndexOf(' ');
    short = `${(space > DESCRIPTION_CHARS / 2 ? cut.slice(0, space) : cut).replace(/[\s,;:.]+$/, '')}…`;
  }
  return short === text ? { short } : { short, full: text };
}

/**
 * Columns holding seconds (`*_seconds`) are shown in minutes when their values run to minutes (a
 * response time of 832 s reads as 13.9 min); the name loses its unit suffix and the header says
 * the unit once: `p90 (min)`, never `p90_seconds (s)`.
 */
export const SECONDS_SUFFIX = '_seconds';
export interface SecondsDisplay {
  unit: 'min' | 's';
  divisor: 1 | 60;
}
export function secondsDisplay(rows: readonly Row[], columns: readonly string[]): SecondsDisplay | undefined {
  const cols = columns.filter((c) => c.endsWith(SECONDS_SUFFIX));
  if (!cols.length) return undefined;
  const largest = Math.max(0, ...rows.flatMap((r) => cols.map((c) => Math.abs(toNumber(r[c]) ?? 0))));
  // One unit for every seconds column of a table, so p50 and p99 compare at a glance.
  return largest >= 120 ? { unit: 'min', divisor: 60 } : { unit: 's', divisor: 1 };
}
export const withoutSecondsSuffix = (name: string): string => (name.endsWith(SECONDS_SUFFIX) ? name.slice(0, -SECONDS_SUFFIX.length) : name);

const intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 1234567 → "1,234,567"; with decimals, always that many ("12.50"). */
export function formatNumber(n: number, decimals = 0): string {
  if (!decimals) return intFormat.format(n);
  return new Intl.NumberFormat('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals }).format(n);
}

/** Bytes as "12.3 MB" (decimal units, like the CLI). */
export function formatBytes(n: number): string {
  if (n < 1e3) return `${formatNumber(n)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1e3;
  let i = 0;
  while (v >= 1e3 && i < units.length - 1) {
    v /= 1e3;
    i++;
  }
  return `${formatNumber(v, 1)} ${units[i]}`;
}

/** Milliseconds as "42.0 s", "3 min 5 s", "2 h 10 min", "3 d 4 h". */
export function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${formatNumber(s, 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m - h * 60} min`;
  const d = Math.floor(h / 24);
  // Past ten days the hours are noise.
  return d >= 10 ? `${formatNumber(d)} d` : `${formatNumber(d)} d ${h - d * 24} h`;
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** "2018-01-01T14:05:00.000Z" → "2018-01-01 14:05"; a midnight → just the date. */
export function formatTimestamp(v: string): string {
  const m = TIMESTAMP.exec(v);
  if (!m) return v;
  return m[2] === '00:00' && !m[3]?.slice(1).match(/[1-9]/) ? m[1]! : `${m[1]} ${m[2]}`;
}

/** An instant (UTC) for operators: "2026-11-23 20:41 UTC". */
export function formatInstant(v: string | Date): string {
  const d = typeof v === 'string' ? new Date(v) : v;
  if (Number.isNaN(d.getTime())) return String(v);
  return `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

interface Column {
  name: string;
  kind: 'number' | 'period' | 'timestamp' | 'text';
  decimals: number;
  /** A seconds column shown in another unit (see secondsDisplay). */
  seconds?: SecondsDisplay;
}

/** Column kinds from the values: numbers get one decimals count per column (0 if all whole). */
function columnsOf(rows: Row[], spec?: ChartSpec): Column[] {
  const names = Object.keys(rows[0] ?? {});
  const seconds = secondsDisplay(rows, names);
  return names.map((name) => {
    const values = rows.map((r) => r[name]).filter((v) => v !== null && v !== undefined && v !== '');
    if (spec?.type === 'line' && name === spec.x) return { name, kind: 'period', decimals: 0 };
    if (values.length && values.every((v) => typeof v === 'number' || typeof v === 'bigint')) {
      if (seconds && name.endsWith(SECONDS_SUFFIX)) return { name, kind: 'number', decimals: 1, seconds };
      const whole = values.every((v) => Number.isInteger(Number(v)));
      const small = values.every((v) => Math.abs(Number(v)) < 100);
      return { name, kind: 'number', decimals: whole ? 0 : small ? 2 : 1 };
    }
    if (values.length && values.every((v) => typeof v === 'string' && TIMESTAMP.test(v))) return { name, kind: 'timestamp', decimals: 0 };
    return { name, kind: 'text', decimals: 0 };
  });
}

/**
 * Mart rows in the order their chart reads: bars by value (largest first), time series newest
 * period first, then by series; without a chart, by the first numeric column, largest first.
 */
export function sortMartRows(rows: Row[], spec?: ChartSpec): Row[] {
  const copy = [...rows];
  const num = (r: Row, f: string): number => toNumber(r[f]) ?? Number.NEGATIVE_INFINITY;
  const text = (r: Row, f: string): string => String(r[f] ?? '');
  if (spec?.type === 'line') {
    const grain = spec.time ?? 'month';
    return copy.sort(
      (a, b) =>
        (periodOf(b[spec.x], grain) ?? '').localeCompare(periodOf(a[spec.x], grain) ?? '') ||
        (spec.series ? text(a, spec.series).localeCompare(text(b, spec.series)) : 0),
    );
  }
  if (spec?.type === 'bar') return copy.sort((a, b) => num(b, spec.y) - num(a, spec.y) || text(a, spec.x).localeCompare(text(b, spec.x)));
  const firstNumeric = Object.keys(rows[0] ?? {}).find((k) => rows.every((r) => r[k] === null || typeof r[k] === 'number'));
  return firstNumeric ? copy.sort((a, b) => num(b, firstNumeric) - num(a, firstNumeric)) : copy;
}

/** A mart table: sorted, formatted, numbers right-aligned, the chart's unit in its header. */
export function martTable(rows: Row[], limit: number, spec?: ChartSpec, partialPeriod?: string): string {
  if (!rows.length) return '<p class="muted">No rows.</p>';
  const sorted = sortMartRows(rows, spec);
  const cols = columnsOf(sorted, spec);
  const cell = (c: Column, v: unknown): string => {
    if (v === null || v === undefined) return '<td class="null">–</td>';
    if (c.kind === 'number') return `<td class="num">${formatNumber(Number(v) / (c.seconds?.divisor ?? 1), c.decimals)}</td>`;
    if (c.kind === 'period') {
      const p = periodOf(v, spec?.time ?? 'month') ?? String(v);
      return `<td>${escapeHtml(p)}${p === partialPeriod ? ' <span class="muted">(partial)</span>' : ''}</td>`;
    }
    if (c.kind === 'timestamp') return `<td>${escapeHtml(formatTimestamp(String(v)))}</td>`;
    return `<td>${escapeHtml(v)}</td>`;
  };
  const header = (c: Column): string => {
    if (c.seconds) return `<th class="num">${escapeHtml(withoutSecondsSuffix(c.name))} (${c.seconds.unit})</th>`;
    const unit = spec?.unit && c.name === spec.y ? ` (${spec.unit})` : '';
    return `<th class="${c.kind === 'number' ? 'num' : ''}">${escapeHtml(c.name)}${escapeHtml(unit)}</th>`;
  };
  const body = sorted
    .slice(0, limit)
    .map((r) => `<tr>${cols.map((c) => cell(c, r[c.name])).join('')}</tr>`)
    .join('\n');
  const more = sorted.length > limit ? `<p class="muted">First ${formatNumber(limit)} of ${formatNumber(sorted.length)} rows, in the order above.</p>` : '';
  return `<div class="scroll"><table class="mart"><thead><tr>${cols.map(header).join('')}</tr></thead><tbody>${body}</tbody></table></div>${more}`;
}
