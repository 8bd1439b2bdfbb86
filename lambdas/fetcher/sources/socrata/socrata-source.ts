/**
 * Socrata behind the source boundary (source-adapter.ts): rows in `:updated_at, :id` keyset order
 * (`$select=:*,*`), keys by `:id` (`$select=<primary key>, :id`), rows by key (`$where=<pk> in
 * (...)`), every page checked against the keyset invariants before a row of it is delivered.
 * The HTTP side (retries, resumes, limits, redaction) is socrata-client.ts.
 */
import type { BudgetMs } from '../../time-budget';
import type { KeyPage, PositionOrder, RangePlan, RowPageQuery, SourceAdapter, SourceIdentity, SourceRow, StreamPageResult } from '../source-adapter';
import { KEYSET_ORDER, SELECT_ALL, SOCRATA_KEYSET_FORMAT, keysetUntilWhere, keysetWhere, soqlString, type KeysetPosition } from './keyset';
import { compareKeyset, idPageProblem, pageProblem, rowPosition } from './page-invariants';
import { planRanges } from './parallel-plan';
import type { PageQuery, StreamQuery } from './socrata-client';

/**
 * Bytes of the URL-encoded `$where` key list per repair request. With the resource URL, `$select`,
 * `$order`, `$limit` and the keyset condition of a second page (together under 1.5 KB for a
 * portal URL under 500 characters) a request stays below 8 KB, the URL length portals and
 * proxies commonly accept.
 */
export const MAX_KEY_LIST_BYTES = 6_000;

/** The two requests the adapter makes; SocrataClient, or a test's wrapper around it. */
export interface SocrataRequests {
  streamPage(query: StreamQuery): Promise<StreamPageResult>;
  fetchPage(query: PageQuery): Promise<SourceRow[]>;
}

export const KEYSET_POSITIONS: PositionOrder<KeysetPosition> = {
  format: SOCRATA_KEYSET_FORMAT,
  compare: compareKeyset,
  is: (v: unknown): v is KeysetPosition =>
    typeof v === 'object' && v !== null && typeof (v as KeysetPosition).updatedAt === 'string' && typeof (v as KeysetPosition).id === 'string',
  show: (p) => `(:updated_at ${p.updatedAt}, :id ${p.id})`,
};

/** Where an incremental run starts: the checkpoint, moved back by the lookback window. */
export function startPosition(checkpoint: KeysetPosition | undefined, lookbackMinutes: number): KeysetPosition | null {
  if (!checkpoint) return null;
  if (lookbackMinutes <= 0) return { updatedAt: checkpoint.updatedAt, id: checkpoint.id };
  const t = Date.parse(checkpoint.updatedAt);
  if (Number.isNaN(t)) throw new Error(`Checkpoint updatedAt "${checkpoint.updatedAt}" is not a timestamp; cannot apply the lookback window`);
  // id '' sorts before every id: the whole timestamp group at the lookback start is re-read.
  return { updatedAt: new Date(t - lookbackMinutes * 60_000).toISOString(), id: '' };
}

/** `<pk> in ('a', 'b', ...)` conditions whose URL-encoded form stays within `maxBytes` each. */
export function keyChunks(primaryKey: string, keys: readonly string[], maxBytes = MAX_KEY_LIST_BYTES): string[] {
  const encoded = (s: string): number => new URLSearchParams({ w: s }).toString().length - 2;
  const head = encoded(`${primaryKey} in ()`);
  const chunks: string[] = [];
  let current: string[] = [];
  let size = head;
  for (const k of keys) {
    const item = encoded(`${soqlString(k)}, `);
    if (head + item > maxBytes) {
      throw new Error(`Primary key value ${JSON.stringify(k.slice(0, 100))} is too long to fetch by key within ${maxBytes} URL bytes`);
    }
    if (current.length && size + item > maxBytes) {
      chunks.push(`${primaryKey} in (${current.join(', ')})`);
      current = [];
      size = head;
    }
    current.push(soqlString(k));
    size += item;
  }
  if (current.length) chunks.push(`${primaryKey} in (${current.join(', ')})`);
  return chunks;
}

export class SocrataSource implements SourceAdapter<KeysetPosition> {
  readonly positions = KEYSET_POSITIONS;
  readonly identity: SourceIdentity;

  constructor(
    private readonly requests: SocrataRequests,
    source: { domain: string; datasetId: string },
    private readonly primaryKey: string,
  ) {
    this.identity = { type: 'socrata', domain: source.domain, datasetId: source.datasetId };
  }

  startAfter(checkpoint: KeysetPosition | undefined, lookbackMinutes: number): KeysetPosition | null {
    return startPosition(checkpoint, lookbackMinutes);
  }

  streamPage(query: RowPageQuery<KeysetPosition>): Promise<StreamPageResult> {
    return this.requests.streamPage({
      select: SELECT_ALL,
      order: KEYSET_ORDER,
      limit: query.limit,
      after: query.after,
      where: keysetWhere,
      ...(query.until ? { until: { position: query.until, where: keysetUntilWhere(query.until) } } : {}),
      ...(query.budgetMs ? { budgetMs: query.budgetMs } : {}),
      onRow: query.onRow,
    });
  }

  planRanges(start: KeysetPosition | null, streams: number, minRows: number, budgetMs?: BudgetMs): Promise<RangePlan<KeysetPosition> | undefined> {
    return planRanges(this.requests, start, streams, minRows, budgetMs);
  }

  async readKeys(query: { after: string | null; limit: number; budgetMs?: BudgetMs }): Promise<KeyPage> {
    const { after, limit } = query;
    const rows = await this.requests.fetchPage({
      select: `${this.primaryKey}, :id`,
      order: ':id',
      limit,
      ...(after !== null ? { where: `:id > ${soqlString(after)}` } : {}),
      check: (page) => idPageProblem(page, after, limit),
      ...(query.budgetMs ? { budgetMs: query.budgetMs } : {}),
    });
    return { rows, next: rows.length ? String(rows[rows.length - 1]![':id']) : (after ?? '') };
  }

  keyBatches(keys: readonly string[]): string[] {
    return keyChunks(this.primaryKey, keys);
  }

  async readByKeys(query: { batch: string; after: KeysetPosition | null; limit: number; budgetMs?: BudgetMs }): Promise<{ rows: SourceRow[]; last: KeysetPosition | null }> {
    const { batch, after, limit } = query;
    const rows = await this.requests.fetchPage({
      select: SELECT_ALL,
      order: KEYSET_ORDER,
      limit,
      where: after ? `(${batch}) AND (${keysetWhere(after)})` : batch,
      check: (page) => pageProblem(page, after, limit),
      ...(query.budgetMs ? { budgetMs: query.budgetMs } : {}),
    });
    return { rows, last: rows.length ? (rowPosition(rows[rows.length - 1]!) ?? null) : null };
  }
}
