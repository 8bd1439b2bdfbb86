/**
 * A file over HTTP(S) as a source: CSV, NDJSON or a JSON array, gzipped or not, read as a stream
 * (runtime/file-formats) with constant memory at any size. The file is a snapshot of the dataset:
 *
 * - A row's position is its record number in one version of the file, the version being the
 *   server's ETag (else Last-Modified, else a SHA-256 of the content). The checkpoint therefore
 *   says "records 1..N of version V are delivered": a run that finds the same version asks with
 *   If-None-Match / If-Modified-Since and reads nothing (a server that ignores them is answered
 *   by skipping the N records of the same version); a run cut short goes on at record N + 1 of
 *   the same version; a changed file is read whole from its first record.
 * - Keys absent from the file are deletions through the key scan (readKeys lists the current
 *   version's keys) and the transform's mass-delete guard, as for Socrata.
 * - Records that are not rows (a ragged CSV line, an invalid JSON line) are handed to the fetch as
 *   problems with the file and line named, and quarantined there.
 *
 * Each row gets the system fields the raw zone and the transform rely on: `:updated_at`, the
 * version's time (Last-Modified, else when this run first saw the version), so a newer file's
 * values win; `:id`, the record number.
 */
import { createHash } from 'node:crypto';
import { oneKeyBatch, readKeysInOrder, readRowsByKey } from '../rows-by-key';
import { fieldEntries, renameFields, type ColumnFields } from '../column-fields';
import type { Readable } from 'node:stream';
import axios, { type AxiosInstance, isAxiosError } from 'axios';
import { isProblem, readRecords, type Compression, type FileFormat, type ReadItem } from '../../../../runtime/file-formats';
import { backoffDelay, type RetryPolicy } from '../../retry-policy';
import { retryDeadline, type BudgetMs } from '../../time-budget';
import type { KeyPage, PositionOrder, RowPageQuery, SourceAdapter, SourceIdentity, SourceRow, StreamPageResult } from '../source-adapter';
import { SourceError } from '../../../../runtime/pipeline-error';

/** Records 1..record of the file version `version` are behind this position. */
export interface FilePosition {
  version: string;
  record: number;
  /** `record` is the version's last record: a request conditional on the version may answer "unchanged". */
  end?: true;
}

export const FILE_RECORD_FORMAT = 'file-record/1';

export const FILE_POSITIONS: PositionOrder<FilePosition> = {
  format: FILE_RECORD_FORMAT,
  // Positions of one run's pages are of one version; a changed file starts again at record 1,
  // which is what the record number alone says too.
  compare: (a, b) => a.record - b.record,
  is: (v: unknown): v is FilePosition =>
    typeof v === 'object' &&
    v !== null &&
    typeof (v as FilePosition).version === 'string' &&
    Number.isInteger((v as FilePosition).record) &&
    (v as FilePosition).record >= 0 &&
    ((v as FilePosition).end === undefined || (v as FilePosition).end === true),
  show: (p) => `(record ${p.record} of version ${p.version})`,
};

export interface HttpFileSourceOptions {
  datasetName: string;
  /** The file's URL: its identity, named in messages. */
  url: string;
  /**
   * An origin (`http://127.0.0.1:8080`) requests go to instead of the URL's own, with the URL's
   * path and query: the local pipeline's file server stands in for the publisher's host while
   * the identity, and so the checkpoint, stay the dataset's (config.ts SOURCE_ENDPOINT_URL).
   */
  endpoint?: string;
  format: FileFormat;
  compression?: Compression;
  primaryKey: string;
  /** Columns read from a field of another name (columns[].field). */
  columnFields?: ColumnFields;
  timeoutMs: number;
  retry: RetryPolicy;
  http?: AxiosInstance;
  /** When this run began: the `:updated_at` of a version the server gives no Last-Modified for. */
  now?: () => Date;
  onRetry?: (info: { attempt: number; delayMs: number; reason: string; url: string }) => void;
}

export class FileSourceError extends SourceError {
  override name = 'FileSourceError';
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super(message);
  }
}

const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/** An open read of one version, kept between pages of one invocation so a page never re-reads the file. */
interface OpenRead {
  version: string;
  updatedAt: string;
  /** Records handed out so far (the next is record + 1). */
  record: number;
  items: AsyncIterator<ReadItem>;
  /** The next item, already read (one item of lookahead tells a page's last row it is the file's last). */
  pending: IteratorResult<ReadItem> | undefined;
  close(): void;
}

/** The file's validators and version from a response's headers. */
function versionOf(headers: Record<string, unknown>): { etag?: string; lastModified?: string } {
  const etag = typeof headers.etag === 'string' && headers.etag ? headers.etag : undefined;
  const lm = typeof headers['last-modified'] === 'string' ? headers['last-modified'] : undefined;
  const lastModified = lm && !Number.isNaN(Date.parse(lm)) ? lm : undefined;
  return { ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) };
}

export class HttpFileSource implements SourceAdapter<FilePosition> {
  readonly positions = FILE_POSITIONS;
  readonly identity: SourceIdentity;
  private readonly http: AxiosInstance;
  private readonly fields: [string, string][];
  private open: OpenRead | undefined;
  /** Where this source object last read a version to its end: the page after it needs no request. */
  private ended: FilePosition | undefined;
  /** When each version was first seen by this source object (a version without Last-Modified). */
  private readonly firstSeen = new Map<string, string>();

  constructor(private readonly options: HttpFileSourceOptions) {
    this.identity = { type: 'file', url: options.url };
    this.fields = fieldEntries(options.columnFields, `the file source ${options.url}`);
    this.http = options.http ?? axios.create();
  }

  startAfter(checkpoint: FilePosition | undefined): FilePosition | null {
    // No lookback: a snapshot has no change time to go back by; the version decides.
    return checkpoint ?? null;
  }

  async streamPage(query: RowPageQuery<FilePosition>): Promise<StreamPageResult> {
    const read = await this.readFrom(query.after, query.budgetMs);
    if (!read) return { rows: 0, stopped: false, resumes: 0 };
    let rows = 0;
    let next = read.pending ?? (await read.items.next());
    read.pending = undefined;
    while (!next.done && rows < query.limit) {
      const following = await read.items.next();
      read.record++;
      rows++;
      const at: FilePosition = { version: read.version, record: read.record, ...(following.done ? { end: true as const } : {}) };
      const item = next.value;
      const keep = isProblem(item)
        ? await query.onProblem?.({ detail: `${this.options.url} line ${item.line}: ${item.problem}`, raw: item.raw }, at)
        : await query.onRow({ ...renameFields(item.record, this.fields), ':updated_at': read.updatedAt, ':id': String(read.record) }, at);
      next = following;
      if (keep === false) break;
    }
    if (next.done) {
      this.ended = { version: read.version, record: read.record };
      this.closeOpen();
    } else read.pending = next;
    return { rows, stopped: !next.done && rows < query.limit, resumes: 0 };
  }

  /** Keys of the current version: each record's primary key, in file order; `next` is the record number. */
  async readKeys(query: { after: string | null; limit: number; budgetMs?: BudgetMs }): Promise<KeyPage> {
    const budget = query.budgetMs ? { budgetMs: query.budgetMs } : {};
    const after = query.after === null ? null : (JSON.parse(query.after) as FilePosition);
    return readKeysInOrder(after, this.options.primaryKey, (page) => this.streamPage({ ...page, limit: query.limit, ...budget }));
  }

  keyBatches(keys: readonly string[]): string[] {
    return oneKeyBatch(keys);
  }

  async readByKeys(query: { batch: string; after: FilePosition | null; limit: number; budgetMs?: BudgetMs }): Promise<{ rows: SourceRow[]; last: FilePosition | null }> {
    const budget = query.budgetMs ? { budgetMs: query.budgetMs } : {};
    return readRowsByKey(query, this.options.primaryKey, async (page) => (await this.streamPage({ ...page, ...budget })).rows > 0);
  }

  private closeOpen(): void {
    this.open?.close();
    this.open = undefined;
  }

  /**
   * The read to take the next page from: the open one when it stands exactly at `after`, else a
   * new request. Undefined when the file is the version `after` read to its end (nothing new).
   */
  private async readFrom(after: FilePosition | null, budgetMs: BudgetMs | undefined): Promise<OpenRead | undefined> {
    if (after && this.open && this.open.version === after.version && this.open.record === after.record) return this.open;
    if (after?.end && this.ended?.version === after.version && this.ended.record === after.record) return undefined;
    this.closeOpen();
    // Only a position at the version's end may be answered "unchanged": one mid-file still has records to read.
    const response = await this.get(after?.end ? after.version : undefined, budgetMs);
    if (!response) return undefined; // 304: the version the checkpoint read, unchanged
    let { version, updatedAt } = response;
    let body = response.body;
    if (!version) {
      // No validator: the content is the version. One pass to hash it, then the read itself.
      version = await sha256(body);
      if (after?.end && after.version === version) return undefined;
      const again = await this.get(undefined, budgetMs);
      if (!again) return undefined;
      body = again.body;
    }
    if (!updatedAt) {
      updatedAt = this.firstSeen.get(version) ?? (this.options.now?.() ?? new Date()).toISOString();
      this.firstSeen.set(version, updatedAt);
    }
    const items = readRecords(body, { format: this.options.format, compression: this.options.compression ?? 'auto', name: this.options.url })[Symbol.asyncIterator]();
    const read: OpenRead = { version, updatedAt, record: 0, items, pending: undefined, close: () => void items.return?.(undefined) };
    if (after?.end && after.version === version) {
      // A server that ignores the conditional request, serving the version read to its end.
      read.close();
      return undefined;
    }
    // The same version read before: its first `after.record` records are delivered already.
    if (after && after.version === version) {
      while (read.record < after.record) {
        const next = await items.next();
        if (next.done) {
          throw new FileSourceError(
            `${this.options.url} (version ${version}) has ${read.record} records, fewer than the ${after.record} the checkpoint says were delivered; ` +
              'the server served different content under the same version. Delete the checkpoint to read the file whole again.',
            200,
          );
        }
        read.record++;
      }
    }
    this.open = read;
    return read;
  }

  /** A GET of the file, conditional on `known` (a version read before); undefined when unchanged (304). */
  private async get(known: string | undefined, budgetMs: BudgetMs | undefined): Promise<{ body: Readable; version?: string; updatedAt?: string } | undefined> {
    const { retry, timeoutMs } = this.options;
    const url = requestUrl(this.options.url, this.options.endpoint);
    const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
    if (known?.startsWith('etag:')) headers['If-None-Match'] = known.slice('etag:'.length);
    else if (known?.startsWith('modified:')) headers['If-Modified-Since'] = known.slice('modified:'.length);
    let last: string;
    let status: number | undefined;
    let deadlineMs = timeoutMs;
    for (let attempt = 1; ; attempt++) {
      let retryAfterMs: number | undefined;
      try {
        // The deadline bounds the wait for the response headers; the body streams for as long as
        // the file takes, its idle gaps bounded by `timeout`.
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), deadlineMs);
        const res = await this.http
          .get<Readable>(url, { headers, responseType: 'stream', timeout: deadlineMs, signal: controller.signal, validateStatus: () => true, decompress: false })
          .finally(() => clearTimeout(timer));
        status = res.status;
        if (res.status === 304) {
          res.data.destroy();
          return undefined;
        }
        if (res.status === 200) {
          const v = versionOf(res.headers as Record<string, unknown>);
          const version = v.etag ? `etag:${v.etag}` : v.lastModified ? `modified:${v.lastModified}` : undefined;
          return { body: res.data, ...(version ? { version } : {}), ...(v.lastModified ? { updatedAt: new Date(v.lastModified).toISOString() } : {}) };
        }
        const text = await readCapped(res.data);
        last = `HTTP ${res.status}${text ? `: ${text}` : ''}`;
        if (!RETRYABLE_STATUS.has(res.status)) break;
        const ra = Number(res.headers['retry-after']);
        if (Number.isFinite(ra) && ra >= 0) retryAfterMs = ra * 1000;
      } catch (err) {
        if (!isAxiosError(err)) throw err;
        last = err.code === 'ERR_CANCELED' ? `no answer within the ${deadlineMs / 1000} s deadline` : `${err.code ?? 'network error'}: ${err.message}`;
        status = undefined;
        if (err.code === 'ENOTFOUND') break;
      }
      if (attempt >= retry.maxAttempts) break;
      const delayMs = Math.max(retryAfterMs ?? 0, backoffDelay(retry, attempt));
      deadlineMs = retryDeadline(budgetMs, delayMs, timeoutMs, `GET ${url} for dataset ${this.options.datasetName} (${last}, attempt ${attempt})`);
      this.options.onRetry?.({ attempt, delayMs, reason: last, url });
      await retry.sleep(delayMs);
    }
    throw new FileSourceError(
      `GET ${url} for dataset ${this.options.datasetName} failed (${last}). The checkpoint was not advanced past the last delivered page; ` +
        're-run to resume, or check the file URL (source.url) and that the server serves it.',
      status,
    );
  }
}

/** SHA-256 of a stream's bytes, as a version name. */
async function sha256(body: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of body) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** At most 300 characters of an error body. */
async function readCapped(body: Readable): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      parts.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size > 300) break;
    }
  } catch {
    // The error body is only for the message.
  } finally {
    body.destroy();
  }
  return Buffer.concat(parts).toString('utf8').slice(0, 300).replace(/\s+/g, ' ').trim();
}

/** `url` with its origin replaced by `endpoint`'s (path and query kept); `url` itself without one. */
export function requestUrl(url: string, endpoint: string | undefined): string {
  if (!endpoint) return url;
  const u = new URL(url);
  return `${new URL(endpoint).origin}${u.pathname}${u.search}`;
}
