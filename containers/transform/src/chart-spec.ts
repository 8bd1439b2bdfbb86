/**
 * The chart spec of a mart (YAML `meta.chart`): a small JSON object, validated when the models
 * are loaded, so a typo fails before any work with the properties file, line and field named.
 * report-charts.ts turns a valid spec into Vega-Lite; this file has no rendering dependency so
 * loading the models does not load vega.
 */
import { z } from 'zod';
import { ModelError } from './model-error';

const field = z.string().regex(/^[a-z_][a-z0-9_]*$/, 'a column name of the mart (lower snake_case)');

export const chartSpecSchema = z
  .strictObject({
    type: z.enum(['line', 'bar']),
    /** line: the date column; bar: the category column. */
    x: field,
    /** The measure. */
    y: field,
    /** line only: the date grain of x. */
    time: z.enum(['year', 'month', 'day']).optional(),
    /** line only: one line per value of this column. */
    series: field.optional(),
    /** line with series: one panel per series (default) or all lines in one panel. */
    layout: z.enum(['facet', 'overlay']).default('facet'),
    /** Categories (bar) or series (line) shown; the rest go to "other" or are hidden (see rest). */
    top: z.number().int().min(1).max(40).optional(),
    /** "other": the rest summed into one "other" entry (additive measures only); "hide": left out. */
    rest: z.enum(['other', 'hide']).default('other'),
    /** line: drop the last period when the data ends inside it (a false drop otherwise). */
    partial: z.enum(['drop', 'keep']).default('drop'),
    title: z.string().optional(),
    xTitle: z.string().optional(),
    yTitle: z.string().optional(),
    /** Unit of y, shown in the axis title and the table header (e.g. "USD", "s", "incidents"). */
    unit: z.string().max(20).optional(),
  })
  .superRefine((s, ctx) => {
    if (s.type === 'line' && !s.time) ctx.addIssue({ code: 'custom', path: ['time'], message: 'a line chart needs "time": "year" | "month" | "day" (the grain of x)' });
    if (s.type === 'bar' && (s.time || s.series)) ctx.addIssue({ code: 'custom', path: [s.time ? 'time' : 'series'], message: 'only a line chart takes "time" and "series"' });
    if (s.type === 'line' && s.top && !s.series) ctx.addIssue({ code: 'custom', path: ['top'], message: '"top" on a line chart limits its series: add "series"' });
  });
export type ChartSpec = z.infer<typeof chartSpecSchema>;

/** A ModelError: the container reports it as a configuration error (exit 2), like a bad mart file. */
export class ChartSpecError extends ModelError {
  override name = 'ChartSpecError';
}

/** A mart's `meta.chart` object, validated; the error names where it was declared and each bad field. */
export function parseChartSpec(value: unknown, file: string): ChartSpec {
  const parsed = chartSpecSchema.safeParse(value);
  if (!parsed.success) {
    throw new ChartSpecError(
      `${file}: invalid chart spec: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(spec)'}: ${i.message}`).join('; ')} ` +
        '(see docs/transform.md "Chart spec")',
    );
  }
  return parsed.data;
}

/** Every mart's chart, checked before the run does any work, so a typo fails fast and by file name. */
export function validateMartCharts(marts: readonly { file: string; chart?: Record<string, unknown> }[]): void {
  for (const m of marts) if (m.chart) parseChartSpec(m.chart, m.file);
}
