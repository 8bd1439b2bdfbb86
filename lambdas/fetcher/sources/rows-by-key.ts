/**
 * Rows by key from a source that can only be read whole (a file, an S3 prefix): its pages after a
 * position are read until enough rows of the wanted keys are found or it ends; rows of other keys
 * are read past. One batch holds every key: a whole pass finds them all. And its key scan: the
 * same pages, each row's key kept.
 */
import type { KeyPage, RowPageQuery, SourceProblem, SourceRow } from './source-adapter';

/** The batches of a read-whole source: all the keys at once (none: no batch). */
export function oneKeyBatch(keys: readonly string[]): string[] {
  return keys.length ? [JSON.stringify(keys)] : [];
}

type PageRequest<P> = Pick<RowPageQuery<P>, 'after' | 'limit'> & {
  onRow: (row: SourceRow, position: P) => boolean;
  onProblem: (problem: SourceProblem, position: P) => void;
};

/**
 * `readPage` reads one page after a position and says whether the source may go on after it.
 * Returns up to `query.limit` rows whose `keyColumn` is one of the batch's keys, and the position
 * of the last one (the next call goes on after it).
 */
export async function readRowsByKey<P>(
  query: { batch: string; after: P | null; limit: number },
  keyColumn: string,
  readPage: (request: PageRequest<P>) => Promise<boolean>,
): Promise<{ rows: SourceRow[]; last: P | null }> {
  const wanted = new Set(JSON.parse(query.batch) as string[]);
  const rows: SourceRow[] = [];
  let last: P | null = null;
  let after = query.after;
  for (;;) {
    let seen = 0;
    const more = await readPage({
      after,
      limit: Math.max(query.limit, 10_000),
      onRow: (row, at) => {
        seen++;
        after = at;
        const key = row[keyColumn];
        if (key !== undefined && key !== null && typeof key !== 'object' && wanted.has(String(key as string))) {
          rows.push(row);
          last = at;
          if (rows.length >= query.limit) return false;
        }
        return true;
      },
      onProblem: (_p, at) => {
        seen++;
        after = at;
      },
    });
    if (rows.length >= query.limit || !seen || !more) break;
  }
  return { rows, last };
}

/**
 * A key-scan page of a source read in pages after a position: each row's key in the order read,
 * and a record that is not a row (the row fetch quarantines it) as a row without a key, so the
 * scan goes on past it. `next` is the last record's position, as JSON.
 */
export async function readKeysInOrder<P>(
  after: P | null,
  keyColumn: string,
  readPage: (request: Pick<RowPageQuery<P>, 'after' | 'onRow'> & { onProblem: (problem: SourceProblem, position: P) => void }) => Promise<unknown>,
): Promise<KeyPage> {
  const rows: SourceRow[] = [];
  let last = after;
  await readPage({
    after,
    onRow: (row, at) => {
      rows.push(row[keyColumn] === undefined ? {} : { [keyColumn]: row[keyColumn] });
      last = at;
    },
    onProblem: (_problem, at) => {
      rows.push({});
      last = at;
    },
  });
  return { rows, next: last === null ? '' : JSON.stringify(last) };
}
