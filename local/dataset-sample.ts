/**
 * A bounded sample of a file source, for `npm run dataset -- add <url | s3://prefix/>`: at most
 * `maxBytes` bytes are read (an HTTP Range request, or a body cut off where a server ignores
 * Range; for S3 the first objects in key order, each by a Range GET), and their records are read
 * with the same streaming readers the fetcher uses (runtime/file-formats, gzip auto-detected).
 *
 * A cut sample ends inside a record, which must not be mistaken for a whole one: one more byte
 * than the bound is asked for, so "cut" is known, not guessed; the reader's last record of a cut
 * sample is then dropped, and an error the cut itself causes (a truncated gzip stream, an
 * unclosed quote or array) ends the sample instead of failing it.
 */
import { GetObjectCommand, ListObjectsV2Command, S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { FileFormatError, isProblem, readRecords, type FileFormat } from '../runtime/file-formats';
import { SourceError, UsageError } from '../runtime/pipeline-error';
import { parseS3Url } from '../runtime/s3-location';

export const DEFAULT_SAMPLE_BYTES = 1024 * 1024;
/** The sample is held in memory while it is read twice at most (a .json file may be NDJSON): a typo must not ask for gigabytes. */
export const MAX_SAMPLE_BYTES = 256 * 1024 * 1024;
/** Objects of an S3 prefix read for one sample: tiny objects must not turn the byte bound into thousands of GETs. */
export const MAX_SAMPLE_OBJECTS = 20;
const REQUEST_TIMEOUT_MS = 30_000;

export interface Sample {
  /** Whole records, in file (and key) order. */
  records: Record<string, unknown>[];
  /** Malformed records of the sample ("orders.csv line 7: has 3 fields, the header has 4"). */
  problems: string[];
  /** Bytes read from the source (compressed bytes when the file is gzipped). */
  bytes: number;
  /** The source holds more than was read: the last record read was dropped (see `droppedCut`). */
  cut: boolean;
  /** A record the cut ended was dropped (false when the cut fell inside a structure the reader refused). */
  droppedCut: boolean;
  /** Every record of the source was read (no cut, no object left unread): uniqueness seen is uniqueness. */
  complete: boolean;
  /** The objects read (S3), or the one URL. */
  parts: string[];
  /** The format the records were read as (a `.json` URL may turn out to be NDJSON). */
  format: FileFormat;
  /** Why the format differs from the one asked for, when it does. */
  formatNote?: string;
}

interface BoundedBytes {
  bytes: Buffer;
  cut: boolean;
}

/** Reads at most `maxBytes` of `body` and whether more followed; stops reading (and releases the body) at the bound. */
async function readBounded(body: AsyncIterable<Uint8Array>, maxBytes: number): Promise<BoundedBytes> {
  const chunks: Buffer[] = [];
  let have = 0;
  for await (const piece of body) {
    const chunk = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    const room = maxBytes - have;
    if (chunk.length > room) {
      chunks.push(chunk.subarray(0, room));
      // Leaving the loop returns the iterator: the HTTP body or S3 stream is closed, not drained.
      return { bytes: Buffer.concat(chunks), cut: true };
    }
    chunks.push(chunk);
    have += chunk.length;
  }
  return { bytes: Buffer.concat(chunks), cut: false };
}

interface ParsedPart {
  records: Record<string, unknown>[];
  problems: string[];
  droppedCut: boolean;
}

/** The records of one bounded piece of a file; see the module comment for how a cut is handled. */
async function parsePart(piece: BoundedBytes, format: FileFormat, name: string): Promise<ParsedPart> {
  const items = [];
  let cutError: FileFormatError | undefined;
  try {
    for await (const item of readRecords([piece.bytes], { format, name })) items.push(item);
  } catch (err) {
    // Not cut: the file itself is malformed, which the user must hear about, not a smaller sample.
    if (!(err instanceof FileFormatError) || !piece.cut) throw err;
    cutError = err;
  }
  // A cut sample that read to its end handed out the record the cut ended last (whole by chance or
  // not); one that failed at the cut had handed out only records it had read to their end.
  const droppedCut = piece.cut && !cutError && items.length > 0;
  if (droppedCut) items.pop();
  const records: Record<string, unknown>[] = [];
  const problems: string[] = [];
  for (const item of items) {
    if (isProblem(item)) problems.push(`${name} line ${item.line}: ${item.problem}`);
    else records.push(item.record);
  }
  return { records, problems, droppedCut };
}

/**
 * Reads a `.json` sample as a JSON array, or as NDJSON when it is not one (many `.json` files are
 * one object per line); other formats as asked.
 */
async function parseAs(piece: BoundedBytes, format: FileFormat, name: string, formatGiven: boolean): Promise<ParsedPart & { format: FileFormat; formatNote?: string }> {
  try {
    return { ...(await parsePart(piece, format, name)), format };
  } catch (err) {
    if (format !== 'json' || formatGiven || !(err instanceof FileFormatError)) throw err;
    const asLines = await parsePart(piece, 'ndjson', name).catch(() => undefined);
    if (!asLines || asLines.records.length === 0) throw err;
    return { ...asLines, format: 'ndjson', formatNote: `format: ndjson (the .json file is not one JSON array but one object per line; ${err.message.split('\n')[0]})` };
  }
}

export interface HttpSampleOptions {
  format: FileFormat;
  /** The user chose the format (--format): it is not second-guessed. */
  formatGiven: boolean;
  maxBytes: number;
  timeoutMs?: number;
}

/** Why an HTTP request for the sample failed: the URL is the user's (2) or the network's or the server's (1). */
function httpFailure(url: string, status: number | undefined, err?: unknown): Error {
  if (status === 404 || status === 410) return new UsageError(`no file at ${url} (HTTP ${status}): check the URL`);
  if (status === 401 || status === 403) return new SourceError(`${url} answered HTTP ${status}: the file is not public, or the URL is wrong`);
  if (status !== undefined) return new SourceError(`${url} answered HTTP ${status}: try again later`);
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (err as Error).message;
  const host = new URL(url).host;
  return new SourceError(`cannot reach ${host} (${why}) for ${url}: check the host name and the network`, { cause: err });
}

/** The first `maxBytes` bytes of a file over HTTP(S), as records. */
export async function sampleHttpFile(url: string, options: HttpSampleOptions): Promise<Sample> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`no complete answer within ${(options.timeoutMs ?? REQUEST_TIMEOUT_MS) / 1000} s`)), options.timeoutMs ?? REQUEST_TIMEOUT_MS);
  try {
    let res: Response;
    try {
      res = await fetch(url, {
        signal: abort.signal,
        // One byte past the bound tells a cut sample from a file of exactly maxBytes. identity:
        // the bytes as published (a .gz file stays gzip, which readRecords detects).
        headers: { Range: `bytes=0-${options.maxBytes}`, 'Accept-Encoding': 'identity' },
      });
    } catch (err) {
      throw httpFailure(url, undefined, err);
    }
    // 416: a Range past the end, which an empty file answers.
    if (res.status === 416) {
      await res.body?.cancel();
      throw new UsageError(`${url} is empty (HTTP 416 to a request for its first bytes): there is nothing to sample`);
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel();
      throw httpFailure(url, res.status);
    }
    let piece: BoundedBytes;
    try {
      piece = res.body ? await readBounded(res.body as AsyncIterable<Uint8Array>, options.maxBytes) : { bytes: Buffer.alloc(0), cut: false };
    } catch (err) {
      throw new SourceError(`reading ${url} failed after the response began (${(err as Error).message}): try again`, { cause: err });
    } finally {
      abort.abort();
    }
    const parsed = await parseAs(piece, options.format, url, options.formatGiven);
    return { ...parsed, bytes: piece.bytes.length, cut: piece.cut, complete: !piece.cut, parts: [url] };
  } finally {
    clearTimeout(timer);
  }
}

export interface S3SampleOptions extends HttpSampleOptions {
  maxObjects?: number;
}

/** One line for a failed S3 call: a missing bucket is the user's input (2), the rest 1. */
function s3Failure(what: string, err: unknown): Error {
  if (err instanceof S3ServiceException) {
    if (err.name === 'NoSuchBucket') return new UsageError(`${what}: no such bucket (check the s3:// URL)`);
    if (err.name === 'AccessDenied' || err.$metadata.httpStatusCode === 403) return new SourceError(`${what}: access denied (the credentials in use may not read it)`);
    return new SourceError(`${what}: ${err.name} (${err.message})`);
  }
  const e = err as { code?: string; message?: string };
  return new SourceError(`${what}: ${e.code ?? e.message ?? String(err)} (is the S3 endpoint reachable? AWS_ENDPOINT_URL_S3=${process.env.AWS_ENDPOINT_URL_S3 ?? '(unset: AWS)'})`, { cause: err });
}

/** Object keys to sample: what the S3 source would read first (key order; folders skipped). */
export async function listSampleObjects(s3: S3Client, url: string, maxObjects: number): Promise<{ objects: { key: string; size: number }[]; more: boolean }> {
  const { bucket, prefix } = parseS3Url(url);
  let listed;
  try {
    listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1000 }));
  } catch (err) {
    throw s3Failure(`listing ${url}`, err);
  }
  const all = (listed.Contents ?? [])
    .filter((o) => o.Key !== undefined && !o.Key.endsWith('/') && (o.Size ?? 0) > 0)
    .map((o) => ({ key: o.Key!, size: o.Size ?? 0 }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { objects: all.slice(0, maxObjects), more: all.length > maxObjects || listed.IsTruncated === true };
}

/** The first objects of an S3 prefix, in key order, until `maxBytes` bytes are read, as records. */
export async function sampleS3Prefix(s3: S3Client, url: string, options: S3SampleOptions): Promise<Sample> {
  const { bucket } = parseS3Url(url);
  const { objects, more } = await listSampleObjects(s3, url, options.maxObjects ?? MAX_SAMPLE_OBJECTS);
  if (!objects.length) throw new UsageError(`no objects under ${url} (folders and empty objects skipped): check the prefix, or land a first file there`);
  const sample: Sample = { records: [], problems: [], bytes: 0, cut: false, droppedCut: false, complete: false, parts: [], format: options.format };
  for (const object of objects) {
    const room = options.maxBytes - sample.bytes;
    if (room <= 0) {
      sample.cut = true;
      break;
    }
    const name = `s3://${bucket}/${object.key}`;
    let piece: BoundedBytes;
    try {
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: object.key, ...(object.size > room ? { Range: `bytes=0-${room}` } : {}) }));
      piece = await readBounded(res.Body as Readable, room);
    } catch (err) {
      throw s3Failure(`reading ${name}`, err);
    }
    const parsed = await parseAs(piece, sample.format, name, options.formatGiven || sample.parts.length > 0);
    sample.format = parsed.format;
    if (parsed.formatNote) sample.formatNote = parsed.formatNote;
    sample.records.push(...parsed.records);
    sample.problems.push(...parsed.problems);
    sample.bytes += piece.bytes.length;
    sample.parts.push(name);
    if (piece.cut) {
      sample.cut = true;
      sample.droppedCut = parsed.droppedCut;
      break;
    }
  }
  sample.complete = !sample.cut && !more && sample.parts.length === objects.length;
  return sample;
}
