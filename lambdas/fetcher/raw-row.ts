/** Turns a Socrata row into the raw row format every later stage reads (see CONTRIBUTING.md). */
import { INGESTION_METADATA, pointFieldNames } from '../../runtime/dataset-config';
import type { SourceRow } from './socrata-client';

export interface RawRowContext {
  pointColumns: readonly string[];
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

export function toRawRow(row: SourceRow, ctx: RawRowContext): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    if (!k.startsWith(':') && v !== null && v !== undefined) out[k] = v;
  }
  for (const column of ctx.pointColumns) {
    const coords = pointCoordinates(row[column]);
    // A missing point stays missing: invented coordinates would pass every range check downstream.
    if (!coords) continue;
    const names = pointFieldNames(column);
    out[names.longitude] = coords[0];
    out[names.latitude] = coords[1];
  }
  out[INGESTION_METADATA.ingestedAt] = ctx.ingestedAt;
  out[INGESTION_METADATA.runId] = ctx.runId;
  out[INGESTION_METADATA.sourceUpdatedAt] = row[':updated_at'];
  out[INGESTION_METADATA.sourceId] = row[':id'];
  return out;
}
