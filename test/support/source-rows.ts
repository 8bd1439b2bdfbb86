/**
 * Source rows as a Socrata portal serves them (system fields `:id`, `:updated_at` beside the
 * columns), for tests that need rows of a shape the generator does not make, and their keyset
 * order (`:updated_at`, then `:id`), the order every fetch reads them in.
 */

export type SourceRow = Record<string, unknown>;

export interface SourceRowsOptions {
  /** `:id` of row i (default `row-<1000 + i>-aaaa`, so ids sort as the rows are numbered). */
  sourceId?: (i: number) => string;
  /** `:updated_at` of row i (default: ten rows a second from 2024-01-01T00:00:00.000Z). */
  updatedAt?: (i: number) => string;
  /** A `:created_at` for every row; absent by default. */
  createdAt?: string;
}

/** `:updated_at` for ten rows a second from `start`: many rows share one, as on a real portal. */
export const tenPerSecond =
  (start: string) =>
  (i: number): string =>
    new Date(Date.parse(start) + Math.floor(i / 10) * 1_000).toISOString();

/** `n` rows: system fields first, then `columns(i)`. */
export function sourceRows(n: number, columns: (i: number) => SourceRow, options: SourceRowsOptions = {}): SourceRow[] {
  const sourceId = options.sourceId ?? ((i: number) => `row-${1000 + i}-aaaa`);
  const updatedAt = options.updatedAt ?? tenPerSecond('2024-01-01T00:00:00.000Z');
  return Array.from({ length: n }, (_, i) => ({
    ':id': sourceId(i),
    ...(options.createdAt === undefined ? {} : { ':created_at': options.createdAt }),
    ':updated_at': updatedAt(i),
    ...columns(i),
  }));
}

/** Rows in keyset order: by `:updated_at`, then by `:id` (compared as text: every timestamp a test serves has one format). */
export const keysetOrder = (rows: readonly SourceRow[]): SourceRow[] =>
  [...rows].sort((a, b) => {
    const ta = String(a[':updated_at']);
    const tb = String(b[':updated_at']);
    if (ta !== tb) return ta < tb ? -1 : 1;
    return String(a[':id']) < String(b[':id']) ? -1 : 1;
  });
