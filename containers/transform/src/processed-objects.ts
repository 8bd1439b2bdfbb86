/**
 * Bookkeeping of which raw objects the transform has merged. Objects, not partitions: Firehose
 * keeps adding objects to today's ingest_date partition across runs. One JSON document per
 * dataset, replaced by compare-and-swap so two concurrent runs cannot both record progress.
 */
import type { DatasetConfig } from '../../../runtime/dataset-config';
import { PreconditionFailedError, type ObjectStore } from '../../../runtime/object-store';
import { transformStatePrefix } from '../../../runtime/storage-layout';

export interface ProcessedObjects {
  keys: Set<string>;
  /** Etag of the state document as read (undefined: none yet). */
  etag: string | undefined;
}

export const processedObjectsKey = (d: Pick<DatasetConfig, 'name'>): string =>
  `${transformStatePrefix(d)}processed-objects.json`;

export async function readProcessedObjects(store: ObjectStore, dataset: DatasetConfig): Promise<ProcessedObjects> {
  const key = processedObjectsKey(dataset);
  const obj = await store.get(key);
  if (!obj) return { keys: new Set(), etag: undefined };
  let doc: { objects?: unknown };
  try {
    doc = JSON.parse(obj.body.toString('utf8')) as { objects?: unknown };
  } catch (err) {
    throw new Error(`Transform state ${store.location}/${key} is not valid JSON (${(err as Error).message}); delete it to reprocess the raw zone`, { cause: err });
  }
  if (!Array.isArray(doc.objects) || !doc.objects.every((k) => typeof k === 'string')) {
    throw new Error(`Transform state ${store.location}/${key} has no "objects" string array; delete it to reprocess the raw zone`);
  }
  return { keys: new Set(doc.objects as string[]), etag: obj.etag };
}

export async function writeProcessedObjects(
  store: ObjectStore,
  dataset: DatasetConfig,
  previous: ProcessedObjects,
  added: string[],
  runId: string,
): Promise<void> {
  const key = processedObjectsKey(dataset);
  const objects = [...new Set([...previous.keys, ...added])].sort();
  const body = JSON.stringify({ dataset: dataset.name, lastRunId: runId, objects }, null, 1);
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
