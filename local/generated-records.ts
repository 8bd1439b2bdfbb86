/**
 * Records of a generated file or S3 source: the rows the local Socrata server would serve for the
 * dataset (dataset-rows.ts generateRows: typed by the declared columns, obeying its data tests),
 * placed where the source's records hold them: a column with a `path` at that nested path, one
 * with a `field` under that name, the
 * parts of a composite `source.key` at theirs. The example datasets have generators of their own
 * (seed-rows), used when one exists.
 */
import { gzipSync } from 'node:zlib';
import { recordLines, type FileFormat } from '../runtime/file-formats';
import { sourceFieldNames, type DatasetConfig } from '../runtime/dataset-config';
import { generateRows } from './dataset-rows';

import type { GeneratedRecord } from './seed-rows';

export type { GeneratedRecord };

/** Sets `value` at a dotted path, creating the objects on the way. */
function setAt(record: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let at = record;
  for (const p of parts.slice(0, -1)) at = (at[p] ??= {}) as Record<string, unknown>;
  at[parts.at(-1)!] = value;
}

/**
 * `count` records, the first ones the same for every larger count of the same seed (growing a
 * source adds records, as a publisher's inserts). A composite key's declared parts keep their
 * generated values and one text part holds the record number, so every record's key is distinct.
 */
export function* genericRecords(dataset: DatasetConfig, count: number, seed: number): Generator<GeneratedRecord> {
  const source = dataset.source;
  const compositeKey = source.type === 's3' ? source.key : undefined;
  const paths = new Map(dataset.columns.map((c) => [c.name, c.path ?? c.name]));
  // A renamed column's field (columns[].field) is a name, never split at its dots.
  const fields = new Map(dataset.columns.filter((c) => c.field).map((c) => [c.name, c.field!]));
  const byPath = new Map(dataset.columns.map((c) => [c.path ?? c.name, c]));
  // Key parts are never left out (a record without one is quarantined, as tests show on purpose).
  const keyColumns = dataset.columns.filter((c) => compositeKey?.includes(c.path ?? c.name));
  const rows = generateRows({ ...dataset, dataTests: [...dataset.dataTests, ...keyColumns.map((c) => ({ kind: 'not_null' as const, column: c.name, severity: 'error' as const }))] }, count, seed);
  for (const [i, row] of rows.entries()) {
    const record: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(row)) {
      // The adapter writes a composite key into the primary key column itself.
      if (compositeKey && name === dataset.primaryKey) continue;
      const field = fields.get(name);
      if (field !== undefined) record[field] = value;
      else setAt(record, paths.get(name) ?? name, value);
    }
    if (compositeKey) {
      // Parts that are declared columns keep their typed values; one text part is made unique per record.
      const unique = compositeKey.find((p) => (byPath.get(p)?.type ?? 'text') === 'text') ?? compositeKey[0]!;
      for (const p of compositeKey) {
        const column = byPath.get(p);
        if (p === unique) setAt(record, p, column && column.type !== 'text' ? String(i) : `${dataset.name}-${String(i).padStart(8, '0')}`);
        else if (!column) setAt(record, p, `part-${compositeKey.indexOf(p)}`);
      }
    }
    yield { record };
  }
}

/** The source's records: an example dataset's own generator when it has one (examples/), else genericRecords. */
export type RecordGenerator = (dataset: DatasetConfig, count: number, seed: number) => Iterable<GeneratedRecord> | undefined;

/** What a test or a generator writes into a local file or object: records, or raw text (malformed on purpose). */
export type SourceContent = { records: Iterable<Record<string, unknown>> } | { text: string };

/** The bytes of a local file or S3 object: the records in `format` under the source's field names (a header's), gzipped or not. */
export function sourceBytes(dataset: DatasetConfig, format: FileFormat, gzip: boolean, content: SourceContent): Buffer {
  const text = 'text' in content ? content.text : [...recordLines(format, content.records, sourceFieldNames(dataset))].join('');
  return gzip ? gzipSync(text) : Buffer.from(text);
}
