/**
 * What a keyset page must look like, checked before any of its rows is delivered. A source that
 * ignores `$order`, `$where` or `$limit`, or serves a page reversed, would otherwise make the
 * fetcher skip rows (a checkpoint past rows never seen) or loop forever (the same page again).
 *
 * Positions compare the way Socrata orders `:updated_at, :id` (and the local server, local/soql.ts):
 * `:updated_at` by instant (a zone-less timestamp read as UTC), `:id` as text.
 */
import type { SourceRow } from '../source-adapter';
import type { KeysetPosition } from './keyset';

function instantOf(ts: string): number | undefined {
  const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(ts) || ts.length <= 10 ? ts : `${ts}Z`);
  return Number.isNaN(t) ? undefined : t;
}

/** < 0 when `a` comes before `b` in `:updated_at, :id` order, 0 when equal, > 0 after. */
export function compareKeyset(a: KeysetPosition, b: KeysetPosition): number {
  if (a.updatedAt !== b.updatedAt) {
    const ta = instantOf(a.updatedAt);
    const tb = instantOf(b.updatedAt);
    // Two spellings of one instant are equal; only unparseable timestamps fall back to text.
    if (ta === undefined || tb === undefined) return a.updatedAt < b.updatedAt ? -1 : 1;
    if (ta !== tb) return ta < tb ? -1 : 1;
  }
  return a.id === b.id ? 0 : a.id < b.id ? -1 : 1;
}

/** The row's keyset position; undefined when its system fields are missing. */
export function rowPosition(row: SourceRow): KeysetPosition | undefined {
  const updatedAt = row[':updated_at'];
  const id = row[':id'];
  return typeof updatedAt === 'string' && typeof id === 'string' ? { updatedAt, id } : undefined;
}

const show = (p: KeysetPosition): string => `(:updated_at ${p.updatedAt}, :id ${p.id})`;

/** How one keyset order reads a row: its position, how positions compare, how to show one. */
interface KeysetOrder<P> {
  position(row: SourceRow): P | undefined;
  compare(a: P, b: P): number;
  show(p: P): string;
  /** What a row lacks when `position` is undefined, and why the request should have it. */
  missing: string;
  order: string;
}

const UPDATED_AT_ID: KeysetOrder<KeysetPosition> = {
  position: rowPosition,
  compare: compareKeyset,
  show,
  missing: 'no :updated_at/:id system fields (the request asks for them with $select=:*,*)',
  order: ':updated_at,:id',
};

/** The key scan's order: `:id` alone (text order, as Socrata and the local server sort it). */
const ID_ONLY: KeysetOrder<string> = {
  position: (row) => (typeof row[':id'] === 'string' ? row[':id'] : undefined),
  compare: (a, b) => (a === b ? 0 : a < b ? -1 : 1),
  show: (id) => `(:id ${id})`,
  missing: 'no :id system field (the key scan asks for it in $select)',
  order: ':id',
};

function orderedPageProblem<P>(rows: readonly SourceRow[], after: P | null, limit: number, o: KeysetOrder<P>): string | undefined {
  if (rows.length > limit) return `${rows.length} rows for $limit=${limit} (the source ignored $limit)`;
  let previous = after;
  for (let i = 0; i < rows.length; i++) {
    const p = o.position(rows[i]!);
    if (p === undefined) return `row ${i + 1} has ${o.missing}`;
    if (previous !== null && o.compare(p, previous) <= 0) {
      return i === 0
        ? `row 1 ${o.show(p)} is not after the requested position ${o.show(previous)} (the source ignored $where)`
        : `row ${i + 1} ${o.show(p)} is not after row ${i} ${o.show(previous)} (the page is not in ${o.order} order: the source ignored $order)`;
    }
    previous = p;
  }
  return undefined;
}

/**
 * Why this page cannot be the answer to "up to `limit` rows strictly after `after`, in keyset
 * order"; undefined when it can. Every non-empty page that passes moves the position forward.
 */
export function pageProblem(rows: readonly SourceRow[], after: KeysetPosition | null, limit: number): string | undefined {
  return orderedPageProblem(rows, after, limit, UPDATED_AT_ID);
}

/** The same invariants for a key-scan page: up to `limit` rows strictly after `afterId` in `:id` order. */
export function idPageProblem(rows: readonly SourceRow[], afterId: string | null, limit: number): string | undefined {
  return orderedPageProblem(rows, afterId, limit, ID_ONLY);
}

/**
 * Why `row`, the page's row number `index + 1`, cannot come next: `previous` is the row before it
 * (or the page's start position), `until` the last position the request may return. The
 * streaming form of pageProblem, checked as each row arrives.
 */
export function rowProblem(row: SourceRow, index: number, previous: KeysetPosition | null, limit: number, until?: KeysetPosition): string | undefined {
  if (index >= limit) return `more than ${limit} rows for $limit=${limit} (the source ignored $limit)`;
  const p = rowPosition(row);
  if (!p) return `row ${index + 1} has no :updated_at/:id system fields (the request asks for them with $select=:*,*)`;
  if (previous && compareKeyset(p, previous) <= 0) {
    return index === 0
      ? `row 1 ${show(p)} is not after the requested position ${show(previous)} (the source ignored $where)`
      : `row ${index + 1} ${show(p)} is not after row ${index} ${show(previous)} (the page is not in :updated_at,:id order: the source ignored $order)`;
  }
  // A parallel range's rows past its end belong to the next range: taking them would deliver them twice.
  if (until && compareKeyset(p, until) > 0) return `row ${index + 1} ${show(p)} is past the range's end ${show(until)} (the source ignored $where)`;
  return undefined;
}
