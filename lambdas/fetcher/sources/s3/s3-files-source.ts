/**
 * Files under an S3 prefix as a source: CSV, NDJSON or JSON arrays, gzipped or not, each object's
 * body read as a stream (runtime/file-formats), never held whole. Two ways to read a prefix:
 *
 * - **append** (the default; events landed as new objects): every object is read once, in the
 *   order ListObjectsV2 lists keys. A row's position is its object (key and ETag) and record, so
 *   a run lists only the keys after the checkpoint's object and reads nothing when there are none.
 *   A run cut short goes on at the next record of the same object, and only if the object still
 *   has the ETag it was read at: an object rewritten under the checkpoint fails the run by name
 *   instead of re-reading or skipping rows. Objects are expected to be written once, under keys
 *   that sort after the ones before (a date or sequence in the key); one written later under a
 *   key that sorts earlier, or rewritten after it was read whole, is never read.
 * - **snapshot** (declared): the prefix as a whole is the dataset. Its version is a hash of the
 *   listing's (key, ETag) pairs: an unchanged listing reads nothing; a changed one is read whole,
 *   and the key scan lists every key of it, so keys gone from it are deletions (as for a file over
 *   HTTP). The listing (keys and ETags, not bodies) is held in memory.
 *
 * The primary key may be a nested path or composite (row-key.ts); a row whose key part is missing
 * is handed over with its key field absent, so the fetcher quarantines and counts it as it does a
 * Socrata row without a key, and carries `:object`, `:line` and `:key_problem` into the quarantine
 * file. Nested fields become columns by path (`columns`: `{ "lat": "data.location.lat" }`),
 * beside the record's own (nested) fields. Records that are not rows (a ragged CSV line, an invalid JSON line) go to `onProblem` with
 * the object and line named. An object that cannot be read on (not gzip, truncated) fails the run
 * naming the object; rows before it stay delivered and the checkpoint before its unread records.
 * A body cut by the network is asked for again at the same ETag, its records read skipped.
 *
 * Each row gets the system fields the raw zone and the transform rely on: `:updated_at`, the
 * object's Last-Modified (snapshot: the newest of the listing, so a newer snapshot's values win);
 * `:id`, the object key and record number (`events/2025-07-01.ndjson#17`).
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { fieldEntries, renameFields, type ColumnFields } from '../column-fields';
import { compilePath, FileFormatError, isProblem, readRecords, type Compression, type FileFormat, type ReadItem, type RecordPath } from '../../../../runtime/file-formats';
import type { BudgetMs } from '../../time-budget';
import type { KeyPage, PositionOrder, RowPageQuery, SourceAdapter, SourceIdentity, SourceRow, StreamPageResult } from '../source-adapter';
import { parseS3Url, type S3Location } from '../../../../runtime/s3-location';
import { S3_OBJECT_POSITIONS, S3_SNAPSHOT_POSITIONS, type S3ObjectPosition, type S3SnapshotPosition } from './s3-positions';
import { RowKeyBuilder } from './row-key';
import { SourceError } from '../../../../runtime/pipeline-error';
import { oneKeyBatch, readKeysInOrder, readRowsByKey } from '../rows-by-key';

export type S3SourceMode = 'append' | 'snapshot';

export interface S3FilesSourceOptions {
  datasetName: string;
  /** `s3://bucket/prefix/`: every object whose key starts with the prefix (keys ending in `/` are folders, skipped). */
  url: string;
  format: FileFormat;
  /** Default `auto`: gunzipped when an object starts with gzip's magic bytes. */
  compression?: Compression;
  /** Default `append`. */
  mode?: S3SourceMode;
  /** A field path, or the paths of a composite key in order (`["on", "data.id", "at"]`). */
  primaryKey: string | readonly string[];
  /**
   * The row field the key is written to, which the fetcher checks (its `primaryKey` setting).
   * Default: the key itself when it is one top-level field; required for a nested or composite key.
   */
  keyColumn?: string;
  /**
   * Columns from nested fields: column name → field path (`{ "lat": "data.location.lat" }`), each
   * set on the row from its path (absent when the path is), beside the record's own fields.
   */
  columns?: Readonly<Record<string, string>>;
  /** Columns read from a top-level field of another name (columns[].field): column name → field name. */
  columnFields?: ColumnFields;
  /** Created once per process by the caller; its endpoint comes from AWS_ENDPOINT_URL_S3 when set. */
  s3: S3Client;
  /** Keys per ListObjectsV2 request (default and S3's maximum 1,000; smaller in tests). */
  listPageSize?: number;
}

export type S3Position = S3ObjectPosition | S3SnapshotPosition;

/** Why a run over an S3 prefix cannot go on; the message names the object and what to do. */
export class S3SourceError extends SourceError {
  override name = 'S3SourceError';
}

interface ListedObject {
  key: string;
  etag: string;
  lastModified: Date | undefined;
}

/** One object being read. */
interface OpenObject {
  key: string;
  etag: string;
  updatedAt: string;
  /** Records handed out so far (the next is record + 1). */
  record: number;
  items: AsyncIterator<ReadItem>;
  /** The next item, already read: one item of lookahead tells a row it is the object's last. */
  pending: IteratorResult<ReadItem> | undefined;
  /** Items taken from `items` (handed out, or pending): what a new GET after a dropped body skips. */
  taken: number;
  /** Items of a new GET still to skip before the next is new. */
  skip: number;
  /** New GETs after the body failed mid-object. */
  resumes: number;
  close(): void;
}

/** New GETs of one object after its body fails mid-read, before the run fails. */
const MAX_BODY_RESUMES = 3;

/** Where one invocation is in the prefix, kept between its pages so a page never re-lists or re-reads. */
interface Reading {
  open: OpenObject | undefined;
  /** The next object to open, or undefined when the listing is exhausted. */
  nextObject(): Promise<ListedObject | undefined>;
  /** Snapshot: the listing's version and time; whether the open object is its last. */
  snapshot?: { version: string; updatedAt: string; isLast(key: string): boolean };
  /** The last position handed out (the page after it continues here). */
  last: S3Position | null;
}

const MAX_KEYS = 1000;

export class S3FilesSource implements SourceAdapter<S3Position> {
  readonly positions: PositionOrder<S3Position>;
  readonly identity: SourceIdentity;
  private readonly location: S3Location;
  private readonly mode: S3SourceMode;
  private readonly key: RowKeyBuilder;
  private readonly columns: [string, RecordPath][];
  private readonly fields: [string, string][];
  private reading: Reading | undefined;
  /** New GETs after a body failed mid-object, over this source object's life (a page reports its own). */
  private bodyResumes = 0;

  constructor(private readonly options: S3FilesSourceOptions) {
    this.location = parseS3Url(options.url);
    this.mode = options.mode ?? 'append';
    if (this.mode !== 'append' && this.mode !== 'snapshot') throw new Error(`S3 source mode must be "append" or "snapshot", not ${JSON.stringify(this.mode)}`);
    this.key = new RowKeyBuilder({ parts: options.primaryKey, ...(options.keyColumn !== undefined ? { column: options.keyColumn } : {}) });
    this.columns = Object.entries(options.columns ?? {}).map(([name, path]) => {
      if (!name || name.startsWith(':')) throw new Error(`column ${JSON.stringify(name)} of the S3 source: a name is needed, and none may start with ":"`);
      return [name, compilePath(path)];
    });
    this.fields = fieldEntries(options.columnFields, `the S3 source ${options.url}`);
    this.positions = (this.mode === 'append' ? S3_OBJECT_POSITIONS : S3_SNAPSHOT_POSITIONS) as PositionOrder<S3Position>;
    this.identity = { type: 's3', bucket: this.location.bucket, prefix: this.location.prefix };
  }

  /** The field each row's key is in: the fetcher's `primaryKey` setting must name it. */
  get keyColumn(): string {
    return this.key.column;
  }

  startAfter(checkpoint: S3Position | undefined): S3Position | null {
    // No lookback: objects have no change time to go back by; the listing decides.
    return checkpoint ?? null;
  }

  async streamPage(query: RowPageQuery<S3Position>): Promise<StreamPageResult> {
    return this.stream(query, false);
  }

  /**
   * Snapshot only: every key of the current listing, object by object. A listing that changes
   * between pages of one scan fails it (its keys would be of two snapshots).
   */
  async readKeys(query: { after: string | null; limit: number; budgetMs?: BudgetMs }): Promise<KeyPage> {
    this.snapshotOnly('a key scan');
    const after = query.after === null ? null : this.keyScanPosition(query.after);
    return readKeysInOrder(after, this.key.column, (page) => this.stream({ ...page, limit: query.limit }, true));
  }

  keyBatches(keys: readonly string[]): string[] {
    this.snapshotOnly('a repair');
    return oneKeyBatch(keys);
  }

  async readByKeys(query: { batch: string; after: S3Position | null; limit: number; budgetMs?: BudgetMs }): Promise<{ rows: SourceRow[]; last: S3Position | null }> {
    this.snapshotOnly('a repair');
    return readRowsByKey(query, this.key.column, async (page) => {
      await this.stream(page, true);
      return true;
    });
  }

  /** A key scan's `next` read back: a position of this source, or a clear refusal. */
  private keyScanPosition(text: string): S3Position {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (!this.positions.is(value)) {
      throw new S3SourceError(`Key scan cursor ${text.slice(0, 200)} of dataset ${this.options.datasetName} is not a position of ${this.options.url} (format ${this.positions.format})`);
    }
    return value;
  }

  private snapshotOnly(what: string): void {
    if (this.mode === 'snapshot') return;
    throw new S3SourceError(
      `Dataset ${this.options.datasetName} reads ${this.options.url} append-only (each new object once), which has no key set to scan for ${what}: ` +
        'objects read before are never read again, so keys absent from the prefix are not deletions. Turn deletion detection off for this ' +
        'dataset (deletions.detect: false), or declare the source a snapshot if the prefix as a whole is the dataset.',
    );
  }

  private async stream(query: RowPageQuery<S3Position>, sameVersion: boolean): Promise<StreamPageResult> {
    const resumesBefore = this.bodyResumes;
    const reading = await this.readingAt(query.after, sameVersion);
    if (!reading) return { rows: 0, stopped: false, resumes: this.bodyResumes - resumesBefore };
    let rows = 0;
    let keep: boolean | void = true;
    while (rows < query.limit && keep !== false) {
      const open = reading.open ?? (await this.openNext(reading));
      if (!open) break;
      const item = open.pending ?? (await this.next(open));
      open.pending = undefined;
      if (item.done) {
        open.close();
        reading.open = undefined;
        continue;
      }
      const following = await this.next(open);
      open.pending = following;
      open.record++;
      rows++;
      const at = this.positionOf(reading, open, following.done === true);
      reading.last = at;
      const value = item.value;
      if (isProblem(value)) {
        keep = await query.onProblem?.({ detail: `${this.nameOf(open.key)} line ${value.line}: ${value.problem}`, raw: value.raw }, at);
      } else {
        keep = await query.onRow(this.rowOf(open, value.record, value.line), at);
      }
    }
    return { rows, stopped: keep === false && rows < query.limit, resumes: this.bodyResumes - resumesBefore };
  }

  /** The record as a row: system fields first (the raw-row serializer's fast path), then the key field when computed. */
  private rowOf(open: OpenObject, record: Record<string, unknown>, line: number): SourceRow {
    const row: SourceRow = { ':updated_at': open.updatedAt, ':id': `${open.key}#${open.record}` };
    const key = this.key.of(record);
    if (!key.ok) {
      // Kept in the quarantine file with the row, which the fetcher writes under the key's reason.
      row[':object'] = this.nameOf(open.key);
      row[':line'] = line;
      row[':key_problem'] = key.problems.map((p) => p.detail).join('; ');
    }
    Object.assign(row, renameFields(record, this.fields));
    for (const [name, at] of this.columns) {
      const value = at(record);
      if (value === undefined) delete row[name];
      else row[name] = value;
    }
    if (this.key.computed) {
      if (key.value === undefined) delete row[this.key.column];
      else row[this.key.column] = key.value;
    }
    return row;
  }

  private positionOf(reading: Reading, open: OpenObject, lastOfObject: boolean): S3Position {
    const base = { key: open.key, etag: open.etag, record: open.record };
    if (!reading.snapshot) return lastOfObject ? { ...base, end: true } : base;
    const end = lastOfObject && reading.snapshot.isLast(open.key);
    return { version: reading.snapshot.version, ...base, ...(end ? { end: true as const } : {}) };
  }

  /** The next item of the open object; a failure to read it names the object. */
  /**
   * The next item of the open object. A body that fails mid-read (a reset connection) is asked
   * for again at the same ETag and its items taken before are skipped, a few times; a failure to
   * read the content itself (FileFormatError), or one that persists, fails the run naming the object.
   */
  private async next(open: OpenObject): Promise<IteratorResult<ReadItem>> {
    for (;;) {
      try {
        for (; open.skip > 0; open.skip--) {
          if ((await open.items.next()).done) throw this.shorter(open.key, open.etag, open.taken - open.skip, open.taken);
        }
        const item = await open.items.next();
        if (!item.done) open.taken++;
        return item;
      } catch (err) {
        open.close();
        if (err instanceof FileFormatError || err instanceof S3SourceError || open.resumes >= MAX_BODY_RESUMES) throw this.readFailure(open, err);
        open.resumes++;
        this.bodyResumes++;
        const again = await this.openObject({ key: open.key, etag: open.etag, lastModified: undefined }, open.etag, open.updatedAt).catch((e: unknown) => {
          throw this.readFailure(open, e);
        });
        open.items = again.items;
        open.close = again.close;
        open.skip = open.taken;
      }
    }
  }

  private readFailure(open: OpenObject, err: unknown): Error {
    this.reading = undefined;
    if (err instanceof S3SourceError) return err;
    const what = err instanceof FileFormatError ? err.message : `${this.nameOf(open.key)}: reading the object failed after record ${open.record}${open.resumes ? ` and ${open.resumes} new requests` : ''} (${(err as Error).message})`;
    return new S3SourceError(
      `${what}. Dataset ${this.options.datasetName}: the rows before it are delivered and the checkpoint stays before the rest; ` +
        'replace or remove the object and re-run (a transient network failure: re-run).',
      { cause: err },
    );
  }

  private shorter(key: string, etag: string, has: number, read: number): S3SourceError {
    return new S3SourceError(
      `${this.nameOf(key)} (ETag ${etag}) has ${has} records, fewer than the ${read} dataset ${this.options.datasetName} read of it before, ` +
        'though its ETag is the same: the source format or compression setting changed since. Restore them, or delete the checkpoint to read the prefix again from its start.',
    );
  }

  private async openNext(reading: Reading): Promise<OpenObject | undefined> {
    const object = await reading.nextObject();
    if (!object) return undefined;
    // Append: what was read is what the position names (the response's ETag). Snapshot: the
    // listed version or nothing, so the version's rows are all of one listing.
    reading.open = await this.openObject(object, reading.snapshot ? object.etag : undefined, reading.snapshot?.updatedAt);
    return reading.open;
  }

  /**
   * Where the page after `after` is read from: this invocation's reading when it stands exactly
   * there, else a new listing (and, mid-object, the object read again to its next record).
   * Undefined when there is nothing after `after`.
   */
  private async readingAt(after: S3Position | null, sameVersion: boolean): Promise<Reading | undefined> {
    if (this.reading && samePosition(this.reading.last, after)) return this.reading;
    this.reading?.open?.close();
    this.reading = undefined;
    const reading = this.mode === 'append' ? await this.appendReading(after as S3ObjectPosition | null) : await this.snapshotReading(after as S3SnapshotPosition | null, sameVersion);
    if (reading) this.reading = reading;
    return reading;
  }

  private async appendReading(after: S3ObjectPosition | null): Promise<Reading> {
    const reading: Reading = { open: undefined, nextObject: lister(this.options.s3, this.location, after?.key, this.listPageSize, this.options.datasetName), last: after };
    if (after && !after.end) reading.open = await this.resumeObject(after, undefined);
    return reading;
  }

  private async snapshotReading(after: S3SnapshotPosition | null, sameVersion: boolean): Promise<Reading | undefined> {
    const objects: ListedObject[] = [];
    const next = lister(this.options.s3, this.location, undefined, this.listPageSize, this.options.datasetName);
    for (let o = await next(); o; o = await next()) objects.push(o);
    const hash = createHash('sha256');
    let newest = 0;
    for (const o of objects) {
      hash.update(`${o.key}\n${o.etag}\n`);
      newest = Math.max(newest, o.lastModified?.getTime() ?? 0);
    }
    const version = `sha256:${hash.digest('hex')}`;
    if (after && sameVersion && after.version !== version) {
      throw new S3SourceError(
        `${this.options.url} changed while dataset ${this.options.datasetName} was reading it as one snapshot (listing ${after.version}, now ${version}); re-run to read the new snapshot.`,
      );
    }
    if (after?.end && after.version === version) return undefined;
    const lastKey = objects.at(-1)?.key;
    const snapshot = { version, updatedAt: new Date(newest).toISOString(), isLast: (key: string) => key === lastKey };
    const resume = after && after.version === version ? after : null;
    let index = resume ? objects.findIndex((o) => o.key === resume.key) + 1 : 0;
    const reading: Reading = { open: undefined, nextObject: () => Promise.resolve(objects[index++]), snapshot, last: after };
    // The same listing: its objects before the position's are read, and so are its first records.
    if (resume) reading.open = await this.resumeObject(resume, snapshot.updatedAt);
    return reading;
  }

  /** The object a position is in, read again up to its next record; only at the ETag it was read at. */
  private async resumeObject(at: S3Position, updatedAt: string | undefined): Promise<OpenObject> {
    const open = await this.openObject({ key: at.key, etag: at.etag, lastModified: undefined }, at.etag, updatedAt);
    while (open.record < at.record) {
      const item = await this.next(open);
      if (item.done) {
        open.close();
        throw this.shorter(at.key, at.etag, open.record, at.record);
      }
      open.record++;
    }
    return open;
  }

  /** A GET of the object, streamed; `ifMatch`: only at that ETag (a position or listing names it). */
  private async openObject(object: ListedObject, ifMatch: string | undefined, updatedAt: string | undefined): Promise<OpenObject> {
    const { bucket } = this.location;
    let res;
    try {
      res = await this.options.s3.send(new GetObjectCommand({ Bucket: bucket, Key: object.key, ...(ifMatch ? { IfMatch: ifMatch } : {}) }));
    } catch (err) {
      throw this.getFailure(err, object.key, ifMatch);
    }
    const body = res.Body as Readable | undefined;
    if (!body) throw new S3SourceError(`GET ${this.nameOf(object.key)} answered without a body`);
    const items = readRecords(body, { format: this.options.format, compression: this.options.compression ?? 'auto', name: this.nameOf(object.key) })[Symbol.asyncIterator]();
    return {
      key: object.key,
      etag: res.ETag ?? object.etag,
      updatedAt: updatedAt ?? (res.LastModified ?? object.lastModified ?? new Date(0)).toISOString(),
      record: 0,
      items,
      pending: undefined,
      taken: 0,
      skip: 0,
      resumes: 0,
      close: () => {
        void items.return?.(undefined);
        body.destroy();
      },
    };
  }

  private getFailure(err: unknown, key: string, ifMatch: string | undefined): Error {
    const name = this.nameOf(key);
    const code = err instanceof S3ServiceException ? err.name : undefined;
    const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
    if (code === 'PreconditionFailed' || status === 412) {
      return new S3SourceError(
        this.mode === 'append'
          ? `${name} changed since dataset ${this.options.datasetName} read part of it (its ETag is no longer ${ifMatch}): objects of an append-only S3 source ` +
              'must not be rewritten, and reading it again or skipping its rest would load the wrong rows. Restore the object, or delete the checkpoint ' +
              'to read every object again (rows are merged by key, so rows read twice are not duplicated).'
          : `${name} changed while dataset ${this.options.datasetName} was reading the prefix as one snapshot (its ETag is no longer ${ifMatch}); re-run to read the new snapshot.`,
        { cause: err },
      );
    }
    if (code === 'NoSuchKey' || status === 404) {
      return new S3SourceError(
        `${name} is gone: dataset ${this.options.datasetName} had listed it${ifMatch ? ` (ETag ${ifMatch})` : ''} and was to read it. ` +
          (this.mode === 'append' && ifMatch
            ? 'An object of an append-only source was deleted before its every record was read; restore it, or delete the checkpoint to read every object again.'
            : 'Re-run to read the prefix as it is now.'),
        { cause: err },
      );
    }
    return this.requestFailure(err, `GET ${name}`);
  }

  private requestFailure(err: unknown, what: string): Error {
    return s3Failure(err, what, this.options.datasetName, this.location);
  }

  private get listPageSize(): number {
    return this.options.listPageSize ?? MAX_KEYS;
  }

  private nameOf(key: string): string {
    return `s3://${this.location.bucket}/${key}`;
  }
}

/** The same place in the source (ETag and version included); both null counts. */
function samePosition(a: S3Position | null, b: S3Position | null): boolean {
  if (a === null || b === null) return a === b;
  return a.key === b.key && a.etag === b.etag && a.record === b.record && (a as S3SnapshotPosition).version === (b as S3SnapshotPosition).version;
}

/**
 * The prefix's objects after `startAfter` (all when undefined), one ListObjectsV2 page at a time.
 * Folder markers (keys ending in `/`) and empty objects (a `_SUCCESS` marker) have no rows: they
 * are passed over without a GET.
 */
function lister(s3: S3Client, location: S3Location, startAfter: string | undefined, pageSize: number, datasetName: string): () => Promise<ListedObject | undefined> {
  let page: ListedObject[] = [];
  let token: string | undefined;
  let more = true;
  return async () => {
    while (!page.length && more) {
      let res;
      try {
        res = await s3.send(
          new ListObjectsV2Command({
            Bucket: location.bucket,
            ...(location.prefix ? { Prefix: location.prefix } : {}),
            MaxKeys: pageSize,
            ...(token ? { ContinuationToken: token } : startAfter !== undefined ? { StartAfter: startAfter } : {}),
          }),
        );
      } catch (err) {
        throw s3Failure(err, `ListObjectsV2 of s3://${location.bucket}/${location.prefix}`, datasetName, location);
      }
      page = (res.Contents ?? [])
        .filter((o): o is typeof o & { Key: string } => typeof o.Key === 'string' && !o.Key.endsWith('/') && o.Size !== 0)
        .map((o) => ({ key: o.Key, etag: o.ETag ?? '', lastModified: o.LastModified }));
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
      more = token !== undefined;
    }
    return page.shift();
  };
}

function s3Failure(err: unknown, what: string, datasetName: string, location: S3Location): Error {
  if (!(err instanceof S3ServiceException)) return new S3SourceError(`${what} for dataset ${datasetName} failed (${(err as Error).message})`, { cause: err });
  const hint =
    err.name === 'AccessDenied' || err.$metadata.httpStatusCode === 403
      ? `; the fetcher needs s3:ListBucket on bucket ${location.bucket} (prefix ${location.prefix || '(any)'}) and s3:GetObject on ${location.prefix}*`
      : err.name === 'NoSuchBucket'
        ? `; check the bucket name in the source URL`
        : '';
  return new S3SourceError(`${what} for dataset ${datasetName} failed (${err.name}: ${err.message})${hint}`, { cause: err });
}
