/**
 * The keyset order every row fetch reads in (`:updated_at, :id`, a total order: `:id` is unique)
 * and the SoQL that selects a slice of it. Shared by the single stream, the parallel ranges and
 * their planner, so a range edge is spelled exactly as the stream that reads up to it.
 */
import { stringLiteral } from '../../../../runtime/sql-names';
/** A row's place in the keyset order: its `:updated_at` exactly as served, and its `:id`. */
export interface KeysetPosition {
  updatedAt: string;
  id: string;
}

/** What a checkpoint of this order is stored with (source-adapter.ts PositionOrder.format). */
export const SOCRATA_KEYSET_FORMAT = 'socrata-keyset/1';

export const SELECT_ALL = ':*,*';
export const KEYSET_ORDER = ':updated_at,:id';

/** A SoQL string literal. */
export const soqlString = stringLiteral;

/** `$where` selecting rows strictly after a keyset position in `:updated_at, :id` order. */
export function keysetWhere(p: KeysetPosition): string {
  const t = soqlString(p.updatedAt);
  return `:updated_at > ${t} OR (:updated_at = ${t} AND :id > ${soqlString(p.id)})`;
}

/**
 * `$where` selecting rows at or before a keyset position: a range (after, until] is
 * `keysetWhere(after) AND keysetUntilWhere(until)`, so adjacent ranges share no row and miss
 * none, ties on `:updated_at` included (they are split by `:id`).
 */
export function keysetUntilWhere(p: KeysetPosition): string {
  const t = soqlString(p.updatedAt);
  return `:updated_at < ${t} OR (:updated_at = ${t} AND :id <= ${soqlString(p.id)})`;
}
