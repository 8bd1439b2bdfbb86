/**
 * Generated source records for the example datasets (examples/datasets/): what the publisher's
 * file or S3 objects hold, deterministic from (rows, seed), for the local pipeline to serve and
 * for tests to compute expected values from.
 *
 * - A larger `rows` with the same seed gives the same first records and then new ones (a
 *   publisher's inserts); for the S3 events, the new ones only in new (later) objects, so `rows`
 *   is rounded up to whole days there (an object is written once, as an S3 landing zone does).
 * - `mutateRecords` gives a publisher's next version of a snapshot file: some records updated,
 *   some gone, some new, and which keys each.
 * - Records are the source's: CSV values are all text as the file holds them (a missing value is
 *   an absent field, which the CSV writer leaves empty); NDJSON records are nested, numbers as
 *   numbers. Write them with runtime/file-formats recordLines(format, records, seedColumns(dataset)).
 */
import type { DatasetConfig } from '../../runtime/dataset-config';
import { ConfigError } from '../../runtime/pipeline-error';
import { ACCIDENT_COLUMNS, accidentChange, accidentRecord, updatedAccident } from './road-safety-accidents';
import { ORDER_COLUMNS, orderChange, orderRecord, updatedOrder } from './store-orders';
import { vehicleEvents } from './vehicle-events';

export interface GeneratedRecord {
  record: Record<string, unknown>;
  /** S3 only: object key relative to the prefix, e.g. '2026-12-01/events.ndjson' */
  object?: string;
}

/** A publisher's next version of a snapshot file, and the primary keys it changed. */
export interface MutatedRecords {
  records: GeneratedRecord[];
  updated: string[];
  deleted: string[];
  inserted: string[];
}

interface SnapshotSeed {
  columns: readonly string[];
  key: string;
  recordAt(index: number, seed: number): Record<string, string>;
  change(position: number): 'update' | 'delete' | undefined;
  updated(record: Record<string, unknown>): Record<string, unknown>;
}

const SNAPSHOT_SEEDS: Record<string, SnapshotSeed> = {
  'road-safety-accidents': { columns: ACCIDENT_COLUMNS, key: 'accident_index', recordAt: accidentRecord, change: accidentChange, updated: updatedAccident },
  'store-orders': { columns: ORDER_COLUMNS, key: 'row_id', recordAt: orderRecord, change: orderChange, updated: updatedOrder },
};

/** The S3 events dataset's name. */
export const VEHICLE_EVENTS = 'vehicle-events';

/** The names of the seed datasets (examples/datasets/<name>.json). */
export const SEED_DATASETS: readonly string[] = [...Object.keys(SNAPSHOT_SEEDS), VEHICLE_EVENTS];

/** Thrown when a generator is asked for something its dataset cannot give. */
export class SeedRowsError extends ConfigError {
  override name = 'SeedRowsError';
}

function checkRows(rows: number, seed: number): void {
  if (!Number.isSafeInteger(rows) || rows < 0) throw new SeedRowsError(`rows must be a whole number >= 0, got ${rows}`);
  if (!Number.isSafeInteger(seed)) throw new SeedRowsError(`seed must be a whole number, got ${seed}`);
}

/** The source records of a seed dataset, or undefined when `dataset` is not one. */
export function seedRecords(dataset: DatasetConfig, rows: number, seed: number): Iterable<GeneratedRecord> | undefined {
  const snapshot = SNAPSHOT_SEEDS[dataset.name];
  if (snapshot) {
    checkRows(rows, seed);
    return (function* () {
      for (let i = 0; i < rows; i++) yield { record: snapshot.recordAt(i, seed) };
    })();
  }
  if (dataset.name === VEHICLE_EVENTS) {
    checkRows(rows, seed);
    return (function* () {
      for (const e of vehicleEvents(rows, seed)) yield { record: e.record as unknown as Record<string, unknown>, object: e.object };
    })();
  }
  return undefined;
}

/** The field order of a seed dataset's CSV header (the declared columns, in order), or undefined. */
export function seedColumns(dataset: DatasetConfig): readonly string[] | undefined {
  return SNAPSHOT_SEEDS[dataset.name]?.columns ?? (dataset.name === VEHICLE_EVENTS ? dataset.columns.map((c) => c.name) : undefined);
}

/**
 * A publisher's next version of a seed snapshot file: records at positions 3, 13, 23, ... updated
 * (accidents: one more casualty, now serious; orders: one more unit, first class), at positions 7,
 * 27, 47, ... deleted (5%, under the default mass-delete guard of 10%), and max(1, 4%) new records
 * appended, the generator's next ones. Deterministic from its arguments. The S3 events are
 * append-only: their changes are new days, `seedRecords` with more rows.
 */
export function mutateRecords(dataset: DatasetConfig, records: readonly GeneratedRecord[], seed: number): MutatedRecords {
  const snapshot = SNAPSHOT_SEEDS[dataset.name];
  if (!snapshot) {
    const why = dataset.name === VEHICLE_EVENTS ? 'an append-only S3 source changes by new objects only: call seedRecords with more rows' : 'it is not a seed snapshot dataset';
    throw new SeedRowsError(`Cannot mutate the records of ${dataset.name}: ${why}`);
  }
  const out: MutatedRecords = { records: [], updated: [], deleted: [], inserted: [] };
  let next = 0;
  records.forEach(({ record }, position) => {
    const key = String(record[snapshot.key]);
    next = Math.max(next, generatedIndex(dataset.name, key) + 1);
    const change = snapshot.change(position);
    if (change === 'delete') {
      out.deleted.push(key);
    } else if (change === 'update') {
      out.updated.push(key);
      out.records.push({ record: snapshot.updated(record) });
    } else out.records.push({ record });
  });
  const inserts = Math.max(1, Math.floor(records.length * 0.04));
  for (let i = 0; i < inserts; i++) {
    const record = snapshot.recordAt(next + i, seed);
    out.inserted.push(String(record[snapshot.key]));
    out.records.push({ record });
  }
  return out;
}

/** The generator index a key was made from (inserts continue after the largest). */
function generatedIndex(name: string, key: string): number {
  // accident_index is the year (4 digits), the police force (2) and the record number; row_id is the record number + 1.
  const index = name === 'store-orders' ? Number(key) - 1 : Number(key.slice(6));
  if (!Number.isSafeInteger(index) || index < 0) throw new SeedRowsError(`${name}: key ${JSON.stringify(key)} was not made by the generator; mutateRecords takes seedRecords' output`);
  return index;
}
