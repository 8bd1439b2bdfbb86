/**
 * The local Socrata server's row queries: SODA 2 parameters parsed against the dataset's columns,
 * answered from the rows sorted per requested order, a keyset `$where` binary-searched, the page
 * built as a JSON array while it is sent.
 */
import {
  compileWhere,
  keysetLowerBound,
  parseOrder,
  parseSelect,
  parseWhere,
  SoqlError,
  type OrderKey,
  type Row,
  type WhereNode,
} from './soql';
import { SYSTEM_KIND, whereFields, type Dataset } from './socrata-dataset';
import type { RequestRecord } from './socrata-requests';

const SUPPORTED_PARAMS = new Set(['$select', '$where', '$order', '$limit', '$offset', '$$app_token']);

export interface ParsedQuery {
  select: ReturnType<typeof parseSelect>;
  where: WhereNode | undefined;
  order: OrderKey[];
  limit: number;
  offset: number;
  predicate: ((row: Row) => boolean) | undefined;
  /** The keyset lower bound of `where` on the leading order keys (binary-searched). */
  bound: WhereNode | undefined;
  /** The predicate reads fields the compact store keeps only in its file. */
  wholeRows: boolean;
}

/** Queries over one dataset. */
export class RowQueries {
  constructor(private readonly dataset: Dataset) {}

  parse(params: Record<string, string>): ParsedQuery {
    const { dataset } = this;
    for (const p of Object.keys(params)) {
      if (p.startsWith('$') && !SUPPORTED_PARAMS.has(p)) {
        throw new SoqlError(`Unsupported query parameter ${p} (supported: ${[...SUPPORTED_PARAMS].join(', ')})`, 'query.soql.unsupported');
      }
    }
    const select = parseSelect(params.$select);
    const where = params.$where ? parseWhere(params.$where) : undefined;
    const order = parseOrder(params.$order);
    const limit = params.$limit === undefined ? 1000 : Number(params.$limit);
    const offset = params.$offset === undefined ? 0 : Number(params.$offset);
    if (!Number.isInteger(limit) || limit < 0) throw new SoqlError(`$limit must be a non-negative integer, not "${params.$limit}"`);
    if (!Number.isInteger(offset) || offset < 0) throw new SoqlError(`$offset must be a non-negative integer, not "${params.$offset}"`);
    if (select.kind === 'columns') for (const c of select.columns) dataset.kindOf(c.field);
    const predicate = where ? compileWhere(where, dataset.kindOf) : undefined;
    const effectiveOrder = order.length ? order : [{ field: ':id', desc: false }];
    const bound = where && SYSTEM_KIND[effectiveOrder[0]!.field] ? keysetLowerBound(where, effectiveOrder) : undefined;
    return { select, where, order: effectiveOrder, limit, offset, predicate, bound, wholeRows: where ? dataset.needsFull(whereFields(where)) : false };
  }

  /** Index of the first sorted row matching the keyset lower bound: those rows form a suffix. */
  suffixStart(rows: Row[], bound: WhereNode | undefined): number {
    const { dataset } = this;
    if (!bound) return 0;
    const compiled = compileWhere(bound, dataset.kindOf);
    const test = dataset.needsFull(whereFields(bound)) ? (row: Row) => compiled(dataset.full(row)) : compiled;
    let lo = 0;
    let hi = rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (test(rows[mid]!)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /**
   * While rows are still being generated: a keyset page (the fetcher's query) waits only for the
   * rows it needs, a plain count is known in advance, anything else waits for every row.
   */
  async untilServable(q: ParsedQuery): Promise<void> {
    const { dataset } = this;
    if (!dataset.pending) return;
    if (q.select.kind === 'count' && !q.where) return;
    const keysetPage =
      q.select.kind !== 'count' && q.offset === 0 && q.order.length === 2 &&
      q.order[0]!.field === ':updated_at' && !q.order[0]!.desc && q.order[1]!.field === ':id' && !q.order[1]!.desc &&
      (!q.where || q.bound === q.where);
    if (keysetPage) {
      await dataset.until(() => dataset.rows.length - this.suffixStart(dataset.rows, q.bound) >= q.limit);
      return;
    }
    await dataset.until(() => false);
  }

  /** The page's body: rows counted in `record.rows` as they are sent. */
  *page(q: ParsedQuery, record?: RequestRecord): Generator<string | Buffer> {
    const { dataset } = this;
    const { select, predicate, limit, offset } = q;
    const rows = dataset.sortedBy(q.order);
    const start = this.suffixStart(rows, q.bound);
    // The bound alone needs no check past `start`; a fuller $where is checked row by row.
    const check = predicate && q.bound !== q.where ? predicate : undefined;
    const values = (row: Row): Row => (q.wholeRows ? dataset.full(row) : row);

    if (select.kind === 'count') {
      let n = 0;
      if (!q.where && dataset.pending) n = dataset.plannedRows;
      else for (let i = start; i < rows.length; i++) if (!check || check(values(rows[i]!))) n++;
      yield JSON.stringify([{ [select.alias]: String(n) }]);
      return;
    }
    const wholeForColumns = select.kind === 'columns' && dataset.needsFull(select.columns.map((c) => c.field));
    let sent = 0;
    const items = function* (): Generator<string | Buffer> {
      let skipped = 0;
      // The rows as they were when asked: rows generated while this page is sent belong to later pages.
      const end = rows.length;
      for (let i = start; i < end && sent < limit; i++) {
        const row = rows[i]!;
        if (check && !check(values(row))) continue;
        if (skipped < offset) {
          skipped++;
          continue;
        }
        sent++;
        if (record) record.rows = sent;
        if (select.kind === 'all') yield dataset.json(row, select.system);
        else if (select.kind === 'columns') {
          const v = wholeForColumns ? dataset.full(row) : row;
          const projected: Row = {};
          for (const c of select.columns) if (v[c.field] !== undefined && v[c.field] !== null) projected[c.alias] = v[c.field];
          yield JSON.stringify(projected);
        }
      }
    };
    if (record) record.rows = 0;
    yield* jsonArrayChunks(items());
  }
}

/** A JSON array body in ~64 KiB chunks, built as it is sent (a large page is never one string). */
function* jsonArrayChunks(items: Iterable<string | Buffer>): Generator<string | Buffer> {
  let parts: (string | Buffer)[] = ['['];
  let size = 1;
  let strings = true;
  let first = true;
  const take = (): string | Buffer => {
    const out = strings ? (parts as string[]).join('') : Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
    parts = [];
    size = 0;
    strings = true;
    return out;
  };
  for (const item of items) {
    parts.push(first ? '\n' : ',\n', item);
    first = false;
    size += 2 + item.length;
    if (typeof item !== 'string') strings = false;
    if (size > 65_536) yield take();
  }
  parts.push('\n]');
  yield take();
}
