/**
 * Rows larger than a Firehose record (1,000 KiB) are valid source data: each is written whole, as
 * its own gzipped NDJSON object, under the raw zone's partition layout (storage-layout.ts
 * `largeRowKey`), where the transform reads it like any Firehose object.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { ObjectStore } from '../../runtime/object-store';
import { ingestDateOf, largeRowKey } from '../../runtime/storage-layout';
import type { SourceRow } from './sources/source-adapter';

/** Deterministic for the run and the row version: a retry overwrites the same object. */
export function largeRowObjectKey(datasetName: string, runId: string, row: SourceRow, at: Date): string {
  const hash = createHash('sha256').update(JSON.stringify([row[':id'] ?? null, row[':updated_at'] ?? null])).digest('hex').slice(0, 20);
  return largeRowKey({ name: datasetName }, ingestDateOf(at), runId, hash);
}

/** Writes one raw line ("\n"-terminated) as its own object; returns the object key. */
export async function writeLargeRow(store: ObjectStore, datasetName: string, runId: string, row: SourceRow, line: string, at: Date): Promise<string> {
  const key = largeRowObjectKey(datasetName, runId, row, at);
  await store.put(key, gzipSync(line), { contentType: 'application/gzip' });
  return key;
}
