/** Rows the pipeline cannot load are written, with the reason, to the quarantine prefix and counted. */
import { gzipSync } from 'node:zlib';
import { PreconditionFailedError, type ObjectStore } from '../../runtime/object-store';
import { ingestDateOf, quarantineKey } from '../../runtime/storage-layout';
import type { SourceRow } from './sources/source-adapter';

/** `row_too_large` is no longer written (large-row.ts); older quarantine files may hold it. */
export type QuarantineReason = 'missing_primary_key' | 'invalid_primary_key' | 'row_too_large' | 'firehose_rejected' | 'malformed_record';

export interface QuarantinedRow {
  reason: QuarantineReason;
  detail: string;
  row: SourceRow;
}

/**
 * Why a row's primary key cannot be loaded, or undefined when it can: absent (or null, or ''), or
 * not a scalar (an object or array has no text the key scan, curated or a `$where` could hold).
 * The row fetch, the key scan and the repair apply this one rule, so a row they skip is the same.
 */
export function keyProblem(row: SourceRow, primaryKey: string): QuarantinedRow | undefined {
  const key = row[primaryKey];
  if (key === undefined || key === null || key === '') return { reason: 'missing_primary_key', detail: `primary key "${primaryKey}" is absent`, row };
  if (typeof key === 'object') {
    return { reason: 'invalid_primary_key', detail: `primary key "${primaryKey}" is ${Array.isArray(key) ? 'an array' : 'an object'}, not a text or number: ${JSON.stringify(key).slice(0, 100)}`, row };
  }
  return undefined;
}

/** The key text of a row whose keyProblem is undefined (as the key scan lists it). */
export const keyText = (row: SourceRow, primaryKey: string): string => String(row[primaryKey] as string | number | boolean);

/**
 * Writes one gzipped NDJSON object; returns its key and the sequence number used. Never
 * overwrites (If-None-Match): a retried invocation that reuses a sequence takes the next free one.
 */
export async function writeQuarantine(
  store: ObjectStore,
  datasetName: string,
  runId: string,
  sequence: number,
  now: Date,
  rows: QuarantinedRow[],
): Promise<{ key: string; sequence: number }> {
  const body = rows
    .map((r) => JSON.stringify({ reason: r.reason, detail: r.detail, quarantined_at: now.toISOString(), run_id: runId, row: r.row }))
    .join('\n');
  const data = gzipSync(`${body}\n`);
  for (let seq = sequence; seq < sequence + 1000; seq++) {
    const key = quarantineKey({ name: datasetName }, ingestDateOf(now), runId, seq);
    try {
      await store.put(key, data, { ifNoneMatch: '*', contentType: 'application/gzip' });
      return { key, sequence: seq };
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
  }
  throw new Error(`No free quarantine key for run ${runId} of dataset ${datasetName} near sequence ${sequence}`);
}
