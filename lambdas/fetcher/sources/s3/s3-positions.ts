/**
 * Positions of an S3 prefix's rows: the object (its key and ETag) and the record in it. Keys are
 * ordered as ListObjectsV2 lists them, by their UTF-8 bytes; JavaScript's `<` compares UTF-16
 * code units, which disagrees for characters beyond U+FFFF.
 */
import type { PositionOrder } from '../source-adapter';

/** Append-only: records 1..record of the object `key` (at ETag `etag`) are behind this position. */
export interface S3ObjectPosition {
  key: string;
  etag: string;
  record: number;
  /** `record` is the object's last: the next run lists only keys after `key`. */
  end?: true;
}

/** Snapshot: as S3ObjectPosition, within the listing whose (key, ETag) set hashes to `version`. */
export interface S3SnapshotPosition extends Omit<S3ObjectPosition, 'end'> {
  version: string;
  /** `record` is the last record of the version's last object: an unchanged listing reads nothing. */
  end?: true;
}

export const S3_OBJECTS_FORMAT = 's3-objects/1';
export const S3_SNAPSHOT_FORMAT = 's3-snapshot/1';

/** < 0 when S3 lists `a` before `b`. */
export const compareKeys = (a: string, b: string): number => (a === b ? 0 : Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));

const compareObjectRecords = (a: S3ObjectPosition | S3SnapshotPosition, b: S3ObjectPosition | S3SnapshotPosition): number => compareKeys(a.key, b.key) || a.record - b.record;

const isObjectPosition = (v: unknown): v is S3ObjectPosition => {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as S3ObjectPosition;
  return typeof p.key === 'string' && p.key !== '' && typeof p.etag === 'string' && Number.isInteger(p.record) && p.record >= 0 && (p.end === undefined || p.end === true);
};

export const S3_OBJECT_POSITIONS: PositionOrder<S3ObjectPosition> = {
  format: S3_OBJECTS_FORMAT,
  compare: compareObjectRecords,
  is: isObjectPosition,
  show: (p) => `(record ${p.record}${p.end ? ', the last' : ''} of ${p.key}, ETag ${p.etag})`,
};

export const S3_SNAPSHOT_POSITIONS: PositionOrder<S3SnapshotPosition> = {
  format: S3_SNAPSHOT_FORMAT,
  // Positions compared are of one run, so of one version: a changed listing is read from its start.
  compare: compareObjectRecords,
  is: (v: unknown): v is S3SnapshotPosition => isObjectPosition(v) && typeof (v as S3SnapshotPosition).version === 'string',
  show: (p) => `(record ${p.record}${p.end ? ', the last' : ''} of ${p.key} in listing ${p.version})`,
};
