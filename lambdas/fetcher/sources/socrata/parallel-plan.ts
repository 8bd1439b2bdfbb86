/**
 * Splits the rows after a start position into K ranges of about equal row counts, for parallel
 * keyset streams. One `count(*)` and K-1 one-row probes at `$offset` quantiles in keyset order,
 * all answered by the source's own index: equal rows per range whatever the shape of
 * `:updated_at` (a portal's bulk re-publish puts most rows on a few timestamps, so quantiles of
 * min..max would leave one range with nearly everything).
 *
 * Ranges are (after, until], the last one open-ended: rows updated while the backfill runs move
 * past every edge into the last range, which reads to the end of the data as a single stream would.
 */
import { KEYSET_ORDER, keysetWhere, type KeysetPosition } from './keyset';
import { compareKeyset, rowPosition } from './page-invariants';
import type { PageQuery, SourceRow } from './socrata-client';
import type { RangePlan } from '../source-adapter';
import type { BudgetMs } from '../../time-budget';
import { SourceError } from '../../../../runtime/pipeline-error';

export interface PlanSource {
  fetchPage(query: PageQuery): Promise<SourceRow[]>;
}

/** The count came back as something other than one row with a non-negative integer. */
export class RangePlanError extends SourceError {
  override name = 'RangePlanError';
}

/** Rows after `start` in keyset order (one aggregate request). */
export async function countAfter(source: PlanSource, start: KeysetPosition | null, budgetMs?: BudgetMs): Promise<number> {
  const rows = await source.fetchPage({ select: 'count(*) AS n', limit: 1, ...(start ? { where: keysetWhere(start) } : {}), ...(budgetMs ? { budgetMs } : {}) });
  const n = Number(rows[0]?.n);
  if (rows.length !== 1 || !Number.isInteger(n) || n < 0) {
    throw new RangePlanError(`count(*) of the rows to fetch answered ${JSON.stringify(rows).slice(0, 200)}, not one row with a count`);
  }
  return n;
}

/**
 * The plan for `streams` ranges after `start`, or undefined when fewer than `minRows` rows are
 * to be read (one stream is then as fast: the parallel requests would each wait the source's
 * first-byte latency for little data).
 */
export async function planRanges(source: PlanSource, start: KeysetPosition | null, streams: number, minRows: number, budgetMs?: BudgetMs): Promise<RangePlan<KeysetPosition> | undefined> {
  const rows = await countAfter(source, start, budgetMs);
  if (streams < 2 || rows < Math.max(minRows, streams)) return undefined;
  const probes = Array.from({ length: streams - 1 }, (_, i) => Math.floor(((i + 1) * rows) / streams) - 1);
  const edges = await Promise.all(
    probes.map(async (offset) => {
      const page = await source.fetchPage({
        select: ':updated_at,:id',
        order: KEYSET_ORDER,
        limit: 1,
        offset,
        ...(start ? { where: keysetWhere(start) } : {}),
        ...(budgetMs ? { budgetMs } : {}),
        // A probe must be a row after the start: an ignored $where or $order would make ranges
        // that overlap or leave a gap.
        check: (r) => (r.length > 1 ? 'more than one row for $limit=1' : r[0] && !rowPosition(r[0]) ? 'no :updated_at/:id in the probe row' : undefined),
      });
      return page[0] ? rowPosition(page[0]) : undefined;
    }),
  );
  // Edges strictly increasing and after the start; a probe past the end (rows deleted since the
  // count) or out of order ends the list early: fewer, still disjoint and covering, ranges.
  const until: KeysetPosition[] = [];
  for (const edge of edges) {
    const previous = until.at(-1) ?? start;
    if (!edge || (previous && compareKeyset(edge, previous) <= 0)) break;
    until.push({ updatedAt: edge.updatedAt, id: edge.id });
  }
  if (!until.length) return undefined;
  const ranges: RangePlan<KeysetPosition>['ranges'] = until.map((u, i) => ({ after: i === 0 ? start : until[i - 1]!, until: u }));
  ranges.push({ after: until.at(-1)!, until: null });
  return { rows, ranges };
}
