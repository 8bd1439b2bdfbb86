/**
 * A CKAN DataStore resource as a source, read with `datastore_search` sorted by `_id` and paged by
 * offset. The resource is a snapshot of the dataset, as a file is (files/http-file-source.ts):
 *
 * - The version is the resource's `last_modified` (else its `metadata_modified`, else the
 *   package's), from `resource_show`: the cheap "changed?" check. A position says "rows 1..offset
 *   of version V are delivered, the last being `_id` lastId, of a table of `total` rows". A run
 *   whose checkpoint is at the end of the current version, with the same total and the same last
 *   row, reads nothing; a changed resource is read whole from its first row.
 * - Keys absent from the resource are deletions through the key scan (readKeys reads every key).
 * - `_id` orders the read but identifies nothing: CKAN reassigns it when a resource is loaded
 *   again (DataPusher and XLoader drop and recreate the table), so the primary key is a declared field.
 *
 * Paging. CKAN caps `limit` at `ckan.datastore.search.rows_max` (32000 by default) without saying
 * so, so a page's size is what the server returned: a short page is not the end, `total` and an
 * empty page are. Offsets are only consistent on a table that does not change during the read, so
 * every page after the first asks from one row before its position and checks that row is the one
 * the position names (its `_id`), and that `total` is the one the read started with. A resource
 * that changed mid-read is read again from its first row under its new state, once per source
 * object (rows already delivered are upserted again, which is harmless; a deletion is found only by
 * a whole pass, the key scan); a second change in the same invocation fails the run clearly, since
 * a resource that changes faster than it can be read has no consistent snapshot to deliver.
 * Within a page `_id`s must strictly increase: a portal that ignored `sort` would skip or repeat rows.
 */
import { oneKeyBatch, readKeysInOrder, readRowsByKey } from '../rows-by-key';
import type { KeyPage, PositionOrder, RowPageQuery, SourceAdapter, SourceIdentity, SourceRow, StreamPageResult } from '../source-adapter';
import type { BudgetMs } from '../../time-budget';
import { CkanApi, CkanSourceError, parseDatastoreUrl, type CkanApiOptions, type CkanResource } from './ckan-api';
import { rowOf, type CkanField } from './ckan-values';

/** Rows 1..offset of the resource in version `version` are delivered; the row at `offset` has `_id` lastId. */
export interface CkanPosition {
  version: string;
  offset: number;
  /** `_id` of the row at `offset` (null at offset 0). */
  lastId: number | null;
  /** The table's row count when the read of this version began. */
  total: number;
  /** `offset` reached `total`: the version is read to its end. */
  end?: true;
}

export const CKAN_POSITION_FORMAT = 'ckan-datastore/1';

/** The version of a resource whose portal gives no modification time. */
const UNKNOWN_VERSION = 'unknown';

export const CKAN_POSITIONS: PositionOrder<CkanPosition> = {
  format: CKAN_POSITION_FORMAT,
  // One run's pages are of one version; a changed resource starts again at offset 0, which is
  // what the offset alone says too.
  compare: (a, b) => a.offset - b.offset,
  is: (v: unknown): v is CkanPosition => {
    const p = v as CkanPosition;
    return (
      typeof v === 'object' &&
      v !== null &&
      typeof p.version === 'string' &&
      Number.isInteger(p.offset) &&
      p.offset >= 0 &&
      (p.lastId === null || Number.isInteger(p.lastId)) &&
      Number.isInteger(p.total) &&
      (p.end === undefined || p.end === true)
    );
  },
  show: (p) => `(row ${p.offset} of ${p.total}, _id ${p.lastId ?? '-'}, version ${p.version})`,
};

/**
 * Rows asked for per request: CKAN's default `rows_max`. A portal allowing more would answer
 * pages whose size the fetcher's memory pays for (a page is JSON, read whole); one allowing less
 * answers shorter pages, which is handled.
 */
export const CKAN_MAX_REQUEST_ROWS = 32_000;

export interface CkanSourceOptions extends Omit<CkanApiOptions, 'declared'> {
  /** The declared `.../api/3/action/datastore_search?resource_id=<id>` URL: the identity. */
  url: string;
  primaryKey: string;
  /** When this run began: the `:updated_at` of a version the portal gives no time for. */
  now?: () => Date;
}

interface SearchPage {
  fields: CkanField[];
  records: Record<string, unknown>[];
  total: number;
}

/** What `resource_show` (and, when it lacks both times, `package_show`) says of the version. */
interface Version {
  name: string;
  /** The version's time as ISO UTC, or undefined when the portal gives none. */
  at?: string;
}

/** CKAN writes naive UTC times (`2021-02-22T04:43:49.368545`). */
function isoUtc(text: string): string | undefined {
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);
  return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
}

export class CkanDatastoreSource implements SourceAdapter<CkanPosition> {
  readonly positions = CKAN_POSITIONS;
  readonly identity: SourceIdentity;
  private readonly resource: CkanResource;
  private readonly api: CkanApi;
  /** The version this source object read (one resource_show per invocation, and again after a change). */
  private version: Version | undefined;
  /** Where this source object last read the version to its end: the page after it needs no request. */
  private ended: CkanPosition | undefined;
  private restarts = 0;
  private readonly firstSeen = new Map<string, string>();

  constructor(private readonly options: CkanSourceOptions) {
    this.identity = { type: 'ckan', url: options.url };
    this.resource = parseDatastoreUrl(options.url);
    this.api = new CkanApi({ ...options, declared: options.url });
  }

  startAfter(checkpoint: CkanPosition | undefined): CkanPosition | null {
    // No lookback: a snapshot has no change time to go back by; the version decides.
    return checkpoint ?? null;
  }

  async streamPage(query: RowPageQuery<CkanPosition>): Promise<StreamPageResult> {
    const { after, budgetMs } = query;
    if (after?.end && this.ended && this.ended.version === after.version && this.ended.offset === after.offset) return { rows: 0, stopped: false, resumes: 0 };
    const version = await this.currentVersion(budgetMs);
    // A version without a time cannot say "unchanged": a read at its end is read again whole.
    let from = after && after.version === version.name && !(after.end && version.name === UNKNOWN_VERSION) ? after : null;
    let page = await this.search(from, Math.min(query.limit, CKAN_MAX_REQUEST_ROWS), budgetMs);
    if (from && !this.continues(from, page)) {
      // The table changed under the position: read it again from its first row, under what the portal says now.
      if (this.restarts++ > 0) {
        throw new CkanSourceError(
          `${this.options.url} (dataset ${this.options.datasetName}) changed twice while it was read (${this.changeOf(from, page)}): ` +
            'offset paging has no consistent snapshot of a resource that changes faster than it is read. Re-run when the publisher has finished loading it.',
        );
      }
      this.version = undefined;
      await this.currentVersion(budgetMs);
      from = null;
      page = await this.search(null, Math.min(query.limit, CKAN_MAX_REQUEST_ROWS), budgetMs);
    }
    const records = from && from.offset > 0 ? page.records.slice(1) : page.records;
    const total = from ? from.total : page.total;
    const updatedAt = this.updatedAt(this.version!);
    const types = new Map(page.fields.map((f) => [f.id, f.type]));
    let offset = from?.offset ?? 0;
    let lastId = from?.lastId ?? null;
    let rows = 0;
    let stopped = false;
    for (const record of records) {
      if (rows >= query.limit) break;
      const id = record._id as number;
      offset++;
      rows++;
      lastId = id;
      const at: CkanPosition = { version: this.version!.name, offset, lastId: id, total, ...(offset >= total ? { end: true as const } : {}) };
      const keep = await query.onRow({ ...rowOf(record, types), ':updated_at': updatedAt, ':id': String(id) }, at);
      if (keep === false) {
        stopped = rows < records.length;
        break;
      }
    }
    if (offset >= total && !stopped) this.ended = { version: this.version!.name, offset, lastId, total };
    return { rows, stopped, resumes: 0 };
  }

  /** Every key of the resource, in `_id` order; `next` is the position of the page's last row. */
  async readKeys(query: { after: string | null; limit: number; budgetMs?: BudgetMs }): Promise<KeyPage> {
    const budget = query.budgetMs ? { budgetMs: query.budgetMs } : {};
    const after = query.after === null ? null : (JSON.parse(query.after) as CkanPosition);
    return readKeysInOrder(after, this.options.primaryKey, (page) => this.streamPage({ ...page, limit: query.limit, ...budget }));
  }

  keyBatches(keys: readonly string[]): string[] {
    return oneKeyBatch(keys);
  }

  async readByKeys(query: { batch: string; after: CkanPosition | null; limit: number; budgetMs?: BudgetMs }): Promise<{ rows: SourceRow[]; last: CkanPosition | null }> {
    const budget = query.budgetMs ? { budgetMs: query.budgetMs } : {};
    return readRowsByKey(query, this.options.primaryKey, async (page) => (await this.streamPage({ ...page, ...budget })).rows > 0);
  }

  /** Does `page` (asked from one row before `from`) go on from exactly where `from` stands? */
  private continues(from: CkanPosition, page: SearchPage): boolean {
    if (page.total !== from.total) return false;
    if (from.offset === 0) return true;
    return page.records[0]?._id === from.lastId;
  }

  private changeOf(from: CkanPosition, page: SearchPage): string {
    if (page.total !== from.total) return `its row count went from ${from.total} to ${page.total}`;
    return `the row at offset ${from.offset} is no longer _id ${from.lastId}`;
  }

  private updatedAt(version: Version): string {
    if (version.at) return version.at;
    const seen = this.firstSeen.get(version.name) ?? (this.options.now?.() ?? new Date()).toISOString();
    this.firstSeen.set(version.name, seen);
    return seen;
  }

  /** The resource's version, asked once per source object (and again after a change mid-read). */
  private async currentVersion(budgetMs: BudgetMs | undefined): Promise<Version> {
    if (this.version) return this.version;
    const { actionBase, resourceId } = this.resource;
    const shown = (await this.api.get(actionBase, 'resource_show', { id: resourceId }, budgetMs)) as Record<string, unknown> | null;
    if (typeof shown !== 'object' || shown === null) throw new CkanSourceError(`resource_show of ${resourceId} answered no resource object`);
    if (shown.datastore_active === false) {
      throw new CkanSourceError(`${this.options.url}: resource ${resourceId} has no DataStore table (datastore_active is false); it can be read as a file source instead`);
    }
    const text = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
    let time = text(shown.last_modified) ?? text(shown.metadata_modified);
    if (!time && typeof shown.package_id === 'string') {
      const pkg = (await this.api.get(actionBase, 'package_show', { id: shown.package_id }, budgetMs)) as Record<string, unknown> | null;
      time = text(pkg?.metadata_modified);
    }
    const at = time ? isoUtc(time) : undefined;
    // Without a time the version cannot tell a change; `unknown` still lets a cut-short read go on
    // (total and last row are checked), and a read at its end is read again (streamPage).
    this.version = { name: time ? `modified:${time}` : UNKNOWN_VERSION, ...(at ? { at } : {}) };
    return this.version;
  }

  /** One `datastore_search` page after `from` (from one row before it, to check it), checked. */
  private async search(from: CkanPosition | null, limit: number, budgetMs: BudgetMs | undefined): Promise<SearchPage> {
    const { actionBase, resourceId } = this.resource;
    const overlap = from && from.offset > 0 ? 1 : 0;
    const offset = (from?.offset ?? 0) - overlap;
    const params = { resource_id: resourceId, sort: '_id asc', limit: String(limit + overlap), offset: String(offset), include_total: 'true' };
    const result = (await this.api.get(actionBase, 'datastore_search', params, budgetMs)) as Record<string, unknown> | null;
    const where = `datastore_search of ${resourceId} at offset ${offset} (dataset ${this.options.datasetName})`;
    const records = result?.records;
    const fields = result?.fields;
    const total = result?.total;
    if (!Array.isArray(records) || !Array.isArray(fields)) throw new CkanSourceError(`${where} answered no records/fields lists; is records_format forced to something other than objects?`);
    if (!Number.isInteger(total) || (total as number) < 0) {
      throw new CkanSourceError(`${where} answered no total (the portal may estimate totals: total_was_estimated); a read by offset needs the exact row count`);
    }
    if (result?.total_was_estimated === true) throw new CkanSourceError(`${where} answered an estimated total; a read by offset needs the exact row count`);
    let previous = -Infinity;
    for (const [i, r] of records.entries()) {
      const id = (r as Record<string, unknown> | null)?._id;
      if (!Number.isInteger(id)) throw new CkanSourceError(`${where}: record ${i + 1} has no integer _id; the read is ordered by it`);
      // The overlap row is compared with the position (continues()), not ordered against it.
      if (i > 0 && (id as number) <= previous) {
        throw new CkanSourceError(
          `${where}: _id ${String(id)} follows _id ${previous} (sort=_id asc was not applied); reading on would skip or repeat rows. ` +
            'The checkpoint was not advanced past the last delivered page.',
        );
      }
      previous = id as number;
    }
    if (records.length > limit + overlap) throw new CkanSourceError(`${where} answered ${records.length} records for a limit of ${limit + overlap}`);
    return { fields: fields as CkanField[], records: records as Record<string, unknown>[], total: total as number };
  }
}
