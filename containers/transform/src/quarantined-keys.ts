/**
 * The keys of the source rows the fetcher knowingly quarantined in a run (its quarantine files,
 * `quarantine/<dataset>/ingest_date=*\/<run>-NNNNN.ndjson.gz` and `<run>-repair-NNNNN...`, see
 * lambdas/fetcher/quarantine.ts). A source key missing from curated for this reason is accounted
 * for: re-fetching or rebuilding cannot load it, so it is reported, not failed on or repaired again.
 */
import { gunzipSync } from 'node:zlib';
import type { DatasetConfig } from '../../../runtime/dataset-config';
import type { ObjectStore } from '../../../runtime/object-store';
import { quarantinePrefix } from '../../../runtime/storage-layout';

export interface QuarantinedKeys {
  /** Key text (as the key scan lists it) of each quarantined row that has a scalar key. */
  keys: Set<string>;
  /** The run's quarantine files. */
  files: string[];
}

export async function readQuarantinedKeys(rawStore: ObjectStore, dataset: DatasetConfig, runId: string): Promise<QuarantinedKeys> {
  // Exactly this run's names (row fetch and repair): run `r1` is not run `r1-2`.
  const own = new RegExp(`^${runId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(?:repair-)?\\d{5}\\.ndjson\\.gz$`);
  const ofRun = (k: string): boolean => own.test(k.slice(k.lastIndexOf('/') + 1));
  const files = (await rawStore.list(quarantinePrefix(dataset))).filter(ofRun);
  const keys = new Set<string>();
  for (const file of files) {
    const obj = await rawStore.get(file);
    if (!obj) continue;
    for (const line of gunzipSync(obj.body).toString('utf8').split('\n')) {
      if (!line) continue;
      const record = JSON.parse(line) as { row?: Record<string, unknown> };
      const v = record.row?.[dataset.primaryKey];
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') keys.add(String(v));
    }
  }
  return { keys, files };
}
