/**
 * Bookkeeping of which raw objects the transform has merged. Objects, not partitions: Firehose
 * keeps adding objects to today's ingest_date partition across runs. One JSON document per
 * dataset, replaced by compare-and-swap so two concurrent runs cannot both record progress.
 *
 * Besides the object list it keeps what each object contributed (keys staged, keys new to
 * curated), the raw objects quarantined because they cannot be read whole (never listed as
 * processed), and when table maintenance last ran. It is written after the curated commit: a
 * crash in between only means the next run merges those objects again, which changes nothing
 * (the merge replaces a row only by a newer version with different content).
 */
import type { DatasetConfig } from '../../../runtime/dataset-config';
import { PreconditionFailedError, type ObjectStore } from '../../../runtime/object-store';
import { transformStatePrefix } from '../../../runtime/storage-layout';
import type { ObjectContribution } from './engine';

export interface QuarantinedObject {
  error: string;
  /** First and last run that found it unreadable. */
  firstRunId: string;
  lastRunId: string;
}

export interface Maintenance {
  /** ISO time of the last maintenance. */
  lastAt: string;
  /** Runs since then. */
  runsSince: number;
}

export interface ProcessedObjects {
  keys: Set<string>;
  /** Etag of the state document as read (undefined: none yet). */
  etag: string | undefined;
  contributions: Record<string, ObjectContribution>;
  quarantined: Record<string, QuarantinedObject>;
  maintenance?: Maintenance;
}

export interface ProgressUpdate {
  contributions?: Record<string, ObjectContribution>;
  /** The objects unreadable in this run (replaces the previous list). */
  quarantined?: Record<string, QuarantinedObject>;
  maintenance?: Maintenance;
  /** Rebuild: the added objects replace the previous list instead of extending it. */
  replace?: boolean;
}

export const processedObjectsKey = (d: Pick<DatasetConfig, 'name'>): string =>
  `${transformStatePrefix(d)}processed-objects.json`;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export async function readProcessedObjects(store: ObjectStore, dataset: DatasetConfig): Promise<ProcessedObjects> {
  const key = processedObjectsKey(dataset);
  const obj = await store.get(key);
  if (!obj) return { keys: new Set(), etag: undefined, contributions: {}, quarantined: {} };
  let doc: { objects?: unknown; contributions?: unknown; quarantined?: unknown; maintenance?: unknown };
  try {
    doc = JSON.parse(obj.body.toString('utf8')) as typeof doc;
  } catch (err) {
    throw new Error(`Transform state ${store.location}/${key} is not valid JSON (${(err as Error).message}); run the transform with rebuild (npm run local -- --rebuild, or REBUILD=true on AWS) to rewrite it`, { cause: err });
  }
  if (!Array.isArray(doc.objects) || !doc.objects.every((k) => typeof k === 'string')) {
    throw new Error(`Transform state ${store.location}/${key} has no "objects" string array; run the transform with rebuild (npm run local -- --rebuild, or REBUILD=true on AWS) to rewrite it`);
  }
  const maintenance = isRecord(doc.maintenance) && typeof doc.maintenance.lastAt === 'string' && typeof doc.maintenance.runsSince === 'number'
    ? { lastAt: doc.maintenance.lastAt, runsSince: doc.maintenance.runsSince }
    : undefined;
  return {
    keys: new Set(doc.objects as string[]),
    etag: obj.etag,
    contributions: isRecord(doc.contributions) ? (doc.contributions as Record<string, ObjectContribution>) : {},
    quarantined: isRecord(doc.quarantined) ? (doc.quarantined as Record<string, QuarantinedObject>) : {},
    ...(maintenance ? { maintenance } : {}),
  };
}

export async function writeProcessedObjects(
  store: ObjectStore,
  dataset: DatasetConfig,
  previous: ProcessedObjects,
  added: string[],
  runId: string,
  update: ProgressUpdate = {},
): Promise<void> {
  const key = processedObjectsKey(dataset);
  const objects = [...new Set([...(update.replace ? [] : previous.keys), ...added])].sort();
  const contributions = { ...(update.replace ? {} : previous.contributions), ...update.contributions };
  const maintenance = update.maintenance ?? previous.maintenance;
  const body = JSON.stringify(
    {
      dataset: dataset.name,
      lastRunId: runId,
      objects,
      contributions,
      quarantined: update.quarantined ?? previous.quarantined,
      ...(maintenance ? { maintenance } : {}),
    },
    null,
    1,
  );
  try {
    await store.put(key, body, {
      contentType: 'application/json',
      ...(previous.etag === undefined ? { ifNoneMatch: '*' as const } : { ifMatch: previous.etag }),
    });
  } catch (err) {
    if (err instanceof PreconditionFailedError) {
      throw new Error(
        `Another transform run of ${dataset.name} recorded progress while run ${runId} was running; ` +
          `this run's merge is idempotent, so simply run the transform again`,
        { cause: err },
      );
    }
    throw err;
  }
}
