/**
 * How fresh curated is after a run: the newest `:updated_at` it holds (the source's change time)
 * and the newest event time, how far the former lags behind now, and, when this run's fetch read
 * to the end of the source, how far curated is behind the source's newest change.
 */
import { INGESTION_METADATA, type DatasetConfig } from '../../../runtime/dataset-config';
import type { FetchFigures } from '../../../runtime/fetch-run-stats';
import { ident } from './dialect';
import type { TransformEngine } from './engine';

export interface Freshness {
  /** Newest source `:updated_at` in curated (UTC instant, ISO). */
  newestUpdatedAt?: string;
  /** Newest value of the dataset's event-time column in curated, as the engine prints it (wall clock). */
  newestEventTime?: string;
  /** The source's newest `:updated_at`, known when this run's fetch read to the end (its checkpoint). */
  sourceNewestUpdatedAt?: string;
  /** measuredAt − newestUpdatedAt. */
  lagMs?: number;
  /** sourceNewestUpdatedAt − newestUpdatedAt (0 when curated holds the source's newest change). */
  behindSourceMs?: number;
  measuredAt: string;
}

/**
 * A timestamp as the engines return it, as a UTC instant: a Date, ISO text, or the engines' text
 * form (`YYYY-MM-DD HH:MM:SS[.fff]`, DuckDB's cast to VARCHAR and Athena's result rows); text
 * without a zone is UTC (curated timestamps are), never the reader's local time; other values are
 * read as their text. Undefined for null, blank or what does not parse.
 */
export function instantOf(v: unknown): Date | undefined {
  if (v === null || v === undefined) return undefined;
  if (v instanceof Date) return v;
  const text = String(v).trim().replace(' ', 'T');
  if (!text) return undefined;
  const d = new Date(/(Z|[+-]\d\d:?\d\d)$/.test(text) ? text : `${text}Z`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export async function measureFreshness(engine: TransformEngine, dataset: DatasetConfig, fetch: FetchFigures | undefined, now: Date): Promise<Freshness> {
  const [row] = await engine.rows(
    `SELECT CAST(max(${ident(INGESTION_METADATA.sourceUpdatedAt)}) AS VARCHAR) AS newest_updated_at, ` +
      `CAST(max(${ident(dataset.eventTimeColumn)}) AS VARCHAR) AS newest_event FROM ${engine.tableRef('curated')}`,
  );
  return freshnessOf(row?.newest_updated_at, row?.newest_event, fetch, now);
}

export function freshnessOf(newestUpdated: unknown, newestEvent: unknown, fetch: FetchFigures | undefined, now: Date): Freshness {
  const newest = instantOf(newestUpdated);
  // A wall-clock time, in one form whichever engine answered (DuckDB "2024-12-24 00:00:00",
  // Trino "2024-12-24 00:00:00.000000"): "YYYY-MM-DD HH:MM:SS.mmm".
  const event = instantOf(newestEvent);
  const rows = fetch?.rows;
  const source = rows?.done && rows.checkpoint ? instantOf(rows.checkpoint.updatedAt) : undefined;
  return {
    ...(newest ? { newestUpdatedAt: newest.toISOString(), lagMs: Math.max(0, now.getTime() - newest.getTime()) } : {}),
    ...(event ? { newestEventTime: event.toISOString().slice(0, 23).replace('T', ' ') } : {}),
    ...(source ? { sourceNewestUpdatedAt: source.toISOString() } : {}),
    ...(source && newest ? { behindSourceMs: Math.max(0, source.getTime() - newest.getTime()) } : {}),
    measuredAt: now.toISOString(),
  };
}
