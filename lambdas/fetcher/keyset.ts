/**
 * The keyset order every row fetch reads in (`:updated_at, :id`, a total order: `:id` is unique)
 * and the SoQL that selects a slice of it. Shared by the single stream, the parallel ranges and
 * their planner, so a range edge is spelled exactly as the stream that reads up to it.
 */
import type { KeysetPosition } from './checkpoint-store';

export const SELECT_ALL = ':*,*';
export const KEYSET_ORDER = ':updated_at,:id';

const quote = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** `$where` selecting rows strictly after a keyset position in `:updated_at, :id` order. */
export function keysetWhere(p: KeysetPosition): string {
  const t = quote(p.updatedAt);
  return `:updated_at > ${t} OR (:updated_at = ${t} AND :id > ${quote(p.id)})`;
}

/**
 * `$where` selecting rows at or before a keyset position: a range (after, until] is
 * `keysetWhere(after) AND keysetUntilWhere(until)`, so adjacent ranges share no row and miss
 * none, ties on `:updated_at` included (they are split by `:id`).
 */
export function keysetUntilWhere(p: KeysetPosition): string {
  const t = quote(p.updatedAt);
  return `:updated_at < ${t} OR (:updated_at = ${t} AND :id <= ${quote(p.id)})`;
}
