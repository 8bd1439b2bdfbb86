/**
 * The two ways an ArcGIS layer is read, and their positions:
 *
 * - Editor tracking on (`editFieldsInfo.editDateField`): incremental, in (edit date, object id)
 *   order. A position is the last row's edit date (epoch ms, as ArcGIS serves dates) and object
 *   id; -1 stands for "no edit date" (features from before tracking was turned on), read first
 *   in object id order.
 * - Otherwise a snapshot: the whole layer in object id order, under a version (the layer's
 *   `editingInfo` last edit date, else a content hash). A run that finds the version it read to
 *   its end reads nothing; a changed layer is read whole; keys gone from it are deletions.
 */
import type { PositionOrder } from '../source-adapter';

export interface EditPosition {
  /** Epoch milliseconds; -1: the feature has no edit date. */
  editDate: number;
  oid: number;
}

export interface SnapshotPosition {
  version: string;
  oid: number;
  /** The version's last row: a run that finds the same version reads nothing. */
  end?: true;
}

export const ARCGIS_EDIT_FORMAT = 'arcgis-edit/1';
export const ARCGIS_SNAPSHOT_FORMAT = 'arcgis-snapshot/1';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

export const compareEdit = (a: EditPosition, b: EditPosition): number => (a.editDate !== b.editDate ? a.editDate - b.editDate : a.oid - b.oid);

export const ARCGIS_EDIT_POSITIONS: PositionOrder<EditPosition> = {
  format: ARCGIS_EDIT_FORMAT,
  compare: compareEdit,
  is: (v: unknown): v is EditPosition => isObject(v) && Number.isInteger(v.editDate) && (v.editDate as number) >= -1 && Number.isInteger(v.oid) && !('version' in v),
  show: (p) => `(edit date ${p.editDate < 0 ? 'none' : new Date(p.editDate).toISOString()}, object id ${p.oid})`,
};

export const ARCGIS_SNAPSHOT_POSITIONS: PositionOrder<SnapshotPosition> = {
  format: ARCGIS_SNAPSHOT_FORMAT,
  // One run reads one version; a changed layer starts again from the first object id, as the id alone says.
  compare: (a, b) => a.oid - b.oid,
  is: (v: unknown): v is SnapshotPosition =>
    isObject(v) && typeof v.version === 'string' && Number.isInteger(v.oid) && (v.end === undefined || v.end === true),
  show: (p) => `(object id ${p.oid} of version ${p.version}${p.end ? ', its last' : ''})`,
};

/** `timestamp 'YYYY-MM-DD HH:MI:SS'`: the one date-time literal standardized queries accept (whole seconds, UTC). */
export function timestampLiteral(epochMs: number): string {
  return `timestamp '${new Date(Math.floor(epochMs / 1000) * 1000).toISOString().slice(0, 19).replace('T', ' ')}'`;
}

/** A where-clause literal of a key: numbers as they are, text quoted. */
export function whereLiteral(value: string, numeric: boolean): string {
  if (numeric && /^-?\d+(\.\d+)?$/.test(value)) return value;
  return `'${value.replace(/'/g, "''")}'`;
}
