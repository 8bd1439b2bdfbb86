/** Turns a Socrata row into the raw row format every later stage reads (see CONTRIBUTING.md). */
import { INGESTION_METADATA, pointFieldNames } from '../../runtime/dataset-config';
import type { SourceRow } from './sources/source-adapter';

/** A point column with the names of its derived coordinate columns (the dataset's `coordinates`). */
export interface PointColumn {
  name: string;
  longitude: string;
  latitude: string;
}

/** A point column by name (default derived names, `pointFieldNames`) or with explicit names. */
export type PointColumnSpec = string | PointColumn;

export const pointColumnOf = (c: PointColumnSpec): PointColumn => (typeof c === 'string' ? { name: c, ...pointFieldNames(c) } : c);

export interface RawRowContext {
  pointColumns: readonly PointColumnSpec[];
  runId: string;
  /** ISO-8601 UTC. */
  ingestedAt: string;
}

/** [longitude, latitude] of a GeoJSON point, or undefined when absent or malformed. */
export function pointCoordinates(value: unknown): [number, number] | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const coords = (value as { coordinates?: unknown }).coordinates;
  if (!Array.isArray(coords) || coords.length < 2) return undefined;
  const lon = Number(coords[0]);
  const lat = Number(coords[1]);
  if (coords[0] === null || coords[1] === null || !Number.isFinite(lon) || !Number.isFinite(lat)) return undefined;
  return [lon, lat];
}

/** Names the fetcher writes itself: a source field of the same name is dropped, never mixed in. */
export function writtenFieldNames(pointColumns: readonly PointColumnSpec[]): Set<string> {
  return new Set([
    ...Object.values(INGESTION_METADATA),
    ...pointColumns.flatMap((c) => {
      const p = pointColumnOf(c);
      return [p.longitude, p.latitude];
    }),
  ]);
}

/** The raw row as an object: the definition of the format (RawRowSerializer is its fast path). */
export function toRawRow(row: SourceRow, ctx: RawRowContext, written = writtenFieldNames(ctx.pointColumns)): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    if (!k.startsWith(':') && !written.has(k) && v !== null && v !== undefined) out[k] = v;
  }
  for (const spec of ctx.pointColumns) {
    const names = pointColumnOf(spec);
    const coords = pointCoordinates(row[names.name]);
    // A missing point stays missing: invented coordinates would pass every range check downstream.
    if (!coords) continue;
    out[names.longitude] = coords[0];
    out[names.latitude] = coords[1];
  }
  out[INGESTION_METADATA.ingestedAt] = ctx.ingestedAt;
  out[INGESTION_METADATA.runId] = ctx.runId;
  out[INGESTION_METADATA.sourceUpdatedAt] = row[':updated_at'];
  out[INGESTION_METADATA.sourceId] = row[':id'];
  return out;
}

/**
 * Serializes raw rows straight to NDJSON lines without building a new object per row. The source
 * row is stringified natively (V8's fast path) and its system fields are cut off the front: Socrata
 * serves them first with `$select=:*,*`, and the cut is checked against the exact text they
 * stringify to. A row shaped otherwise (system fields later, nulls, a field named like one the
 * fetcher writes) goes through `toRawRow`. Coordinates and ingestion metadata are appended as
 * text. Same content as `JSON.stringify(toRawRow(row))` at a fraction of the CPU and garbage,
 * which is most of the fetcher's own work.
 */
export class RawRowSerializer {
  /** Constant for the page: `,"_ingested_at":"…","_run_id":"…"`. */
  private readonly suffix: string;
  private readonly written: Set<string>;
  private readonly points: { column: string; longitude: string; latitude: string }[];

  constructor(private readonly ctx: RawRowContext) {
    this.suffix =
      `,${JSON.stringify(INGESTION_METADATA.ingestedAt)}:${JSON.stringify(ctx.ingestedAt)}` +
      `,${JSON.stringify(INGESTION_METADATA.runId)}:${JSON.stringify(ctx.runId)}`;
    this.points = ctx.pointColumns.map((c) => {
      const p = pointColumnOf(c);
      return { column: p.name, longitude: p.longitude, latitude: p.latitude };
    });
    this.written = writtenFieldNames(ctx.pointColumns);
  }

  /** One line, ending in "\n". */
  line(row: SourceRow): string {
    const body = this.sourceFieldsText(row);
    if (body === undefined) return `${JSON.stringify(toRawRow(row, this.ctx, this.written))}\n`;
    let extra = '';
    for (const p of this.points) {
      const coords = pointCoordinates(row[p.column]);
      // A missing point stays missing: invented coordinates would pass every range check downstream.
      if (coords) extra += `,"${p.longitude}":${JSON.stringify(coords[0])},"${p.latitude}":${JSON.stringify(coords[1])}`;
    }
    // Socrata rows always carry both (the page invariants require them); a source without
    // system fields leaves them out, as toRawRow's JSON.stringify does, never writes `undefined`.
    const updatedAt = row[':updated_at'];
    const id = row[':id'];
    if (updatedAt !== undefined) extra += `,${JSON.stringify(INGESTION_METADATA.sourceUpdatedAt)}:${JSON.stringify(updatedAt)}`;
    if (id !== undefined) extra += `,${JSON.stringify(INGESTION_METADATA.sourceId)}:${JSON.stringify(id)}`;
    extra += this.suffix;
    return body === '{}' ? `{${extra.slice(1)}}\n` : `${body.slice(0, -1)}${extra}}\n`;
  }

  /** The row's JSON minus its leading `:` fields; undefined when the row is not of that shape. */
  private sourceFieldsText(row: SourceRow): string | undefined {
    let prefix = '';
    let systemDone = false;
    for (const k in row) {
      const v = row[k];
      if (k.startsWith(':') && !systemDone) {
        prefix += `${JSON.stringify(k)}:${JSON.stringify(v)},`;
        continue;
      }
      systemDone = true;
      if (k.startsWith(':') || this.written.has(k) || v === null) return undefined;
    }
    const text = JSON.stringify(row);
    if (!prefix) return text;
    if (!text.startsWith(prefix, 1)) return undefined;
    return text.length === prefix.length + 1 ? '{}' : `{${text.slice(prefix.length + 1)}`;
  }
}
