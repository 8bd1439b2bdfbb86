/**
 * readRecords: the records of a CSV, NDJSON or JSON-array file, gzipped or not, streamed with
 * constant memory whatever the file's size. Every record comes out with the line it starts on;
 * a malformed record comes out as a problem row (line, what is wrong, its raw text cut to a
 * bound) and reading goes on; a file that cannot be read on throws FileFormatError naming the
 * line and byte offset. Memory is bounded by maxRecordBytes plus one input piece: a record over
 * the bound is skipped (a problem row), never held.
 *
 * Streaming means a throw can come after records were handed out: a truncated gzip stream or an
 * unclosed quote is found at the end. Every record handed out is whole and correct, but a caller
 * that loads a file as one snapshot must not commit (advance a checkpoint, apply deletions) until
 * the iteration has completed.
 */
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { drainedOrClosed } from '../back-pressure';
import { CsvParser } from './csv-parser';
import { FileFormatError } from './file-format-error';
import { JsonArrayParser } from './json-array-parser';
import { NdjsonParser } from './ndjson-parser';
import type { ReadItem, RecordParser } from './record-parser';
import { DataError } from '../pipeline-error';

export type FileFormat = 'csv' | 'ndjson' | 'json';
export type Compression = 'gzip' | 'none' | 'auto';

export const DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_RAW_BYTES = 4096;

export interface ReadRecordsOptions {
  format: FileFormat;
  /** `auto` (the default) gunzips when the input starts with gzip's magic bytes 1f 8b. */
  compression?: Compression;
  /** A record whose text is longer is a problem row (default 16 MiB). */
  maxRecordBytes?: number;
  /** A problem row's raw text is cut to this many bytes (default 4096). */
  maxRawBytes?: number;
  /** CSV only: the field delimiter, one ASCII character (default `,`). */
  delimiter?: string;
  /** Named at the start of every error message: the file's URL or key. */
  name?: string;
}

/** The pieces the parsers are fed: a caller's 100 MB Buffer must not become one array of 10^6 rows. */
const PIECE_BYTES = 64 * 1024;

/** Input pieces: a Node Readable (a file, an HTTP body, an S3 object's Body), or any (async) iterable of bytes. */
export type ByteInput = Readable | AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array | string>;

export async function* readRecords(input: ByteInput, options: ReadRecordsOptions): AsyncGenerator<ReadItem> {
  const opts = checkOptions(options);
  const prefix = opts.name ? `${opts.name}: ` : '';
  const compressed = await takeHead(bytesOf(input), 2);
  const gzipMagic = compressed.head[0] === 0x1f && compressed.head[1] === 0x8b;
  if (opts.compression === 'none' && gzipMagic) {
    throw new FileFormatError(`${prefix}the input starts with gzip's magic bytes (1f 8b) but compression is "none"; use "gzip" or "auto"`, undefined);
  }
  const gunzip = opts.compression === 'gzip' || (opts.compression === 'auto' && gzipMagic);
  const counter = { compressedBytes: 0 };
  const text = await takeHead(gunzip ? gunzipped(compressed.rest, counter) : compressed.rest, 3).catch((err: unknown) => {
    throw gzipFailure(err, prefix, counter.compressedBytes, undefined);
  });
  const head = text.head;
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) {
    throw new FileFormatError(`${prefix}the file is UTF-16 (it starts with a UTF-16 byte order mark); only UTF-8 is read`, { line: 1, byteOffset: 0 });
  }
  const bom = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  const parser = makeParser(opts, bom);
  const out: ReadItem[] = [];
  let skip = bom;
  try {
    for await (const chunk of text.rest) {
      let from = Math.min(skip, chunk.length);
      skip -= from;
      for (; from < chunk.length; from += PIECE_BYTES) {
        parser.push(chunk.subarray(from, Math.min(chunk.length, from + PIECE_BYTES)), out);
        for (const item of out) yield item;
        out.length = 0;
      }
    }
    parser.end(out);
  } catch (err) {
    if (err instanceof FileFormatError) {
      if (prefix) err.message = prefix + err.message;
      throw err;
    }
    throw gzipFailure(err, prefix, counter.compressedBytes, parser);
  }
  for (const item of out) yield item;
}

interface CheckedOptions {
  format: FileFormat;
  compression: Compression;
  maxRecordBytes: number;
  maxRawBytes: number;
  delimiter: number;
  name: string | undefined;
}

function checkOptions(o: ReadRecordsOptions): CheckedOptions {
  const bad = (what: string): never => {
    throw new FileFormatError(`readRecords: ${what}`, undefined);
  };
  if (!['csv', 'ndjson', 'json'].includes(o.format)) bad(`format must be "csv", "ndjson" or "json", got ${JSON.stringify(o.format)}`);
  const compression = o.compression ?? 'auto';
  if (!['gzip', 'none', 'auto'].includes(compression)) bad(`compression must be "gzip", "none" or "auto", got ${JSON.stringify(compression)}`);
  const maxRecordBytes = o.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  const maxRawBytes = o.maxRawBytes ?? DEFAULT_MAX_RAW_BYTES;
  if (!Number.isSafeInteger(maxRecordBytes) || maxRecordBytes < 1) bad(`maxRecordBytes must be a positive integer, got ${maxRecordBytes}`);
  if (!Number.isSafeInteger(maxRawBytes) || maxRawBytes < 1) bad(`maxRawBytes must be a positive integer, got ${maxRawBytes}`);
  const delimiter = o.delimiter ?? ',';
  const code = delimiter.charCodeAt(0);
  if (delimiter.length !== 1 || code > 0x7f || delimiter === '"' || delimiter === '\r' || delimiter === '\n') {
    bad(`delimiter must be one ASCII character other than a quote, CR or LF, got ${JSON.stringify(delimiter)}`);
  }
  return { format: o.format, compression, maxRecordBytes, maxRawBytes, delimiter: code, name: o.name };
}

function makeParser(o: CheckedOptions, startOffset: number): RecordParser {
  const limits = { maxRecordBytes: o.maxRecordBytes, maxRawBytes: o.maxRawBytes, startOffset };
  if (o.format === 'csv') return new CsvParser({ ...limits, delimiter: o.delimiter });
  if (o.format === 'ndjson') return new NdjsonParser(limits);
  return new JsonArrayParser(limits);
}

async function* bytesOf(input: ByteInput): AsyncGenerator<Buffer> {
  for await (const chunk of input as AsyncIterable<Buffer | Uint8Array | string>) {
    if (Buffer.isBuffer(chunk)) yield chunk;
    else if (typeof chunk === 'string') yield Buffer.from(chunk, 'utf8');
    else yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
}

/**
 * The first n bytes (fewer at the end of the input), and every byte again from the start: the
 * magic bytes and the BOM are looked at before deciding how to read the rest.
 */
async function takeHead(source: AsyncIterable<Buffer>, n: number): Promise<{ head: Buffer; rest: AsyncIterable<Buffer> }> {
  const it = source[Symbol.asyncIterator]();
  const seen: Buffer[] = [];
  let have = 0;
  let done = false;
  while (have < n) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    seen.push(r.value);
    have += r.value.length;
  }
  const head = Buffer.concat(seen).subarray(0, n);
  async function* rest(): AsyncGenerator<Buffer> {
    let finished = done;
    try {
      yield* seen.splice(0);
      while (!finished) {
        const r = await it.next();
        if (r.done) finished = true;
        else yield r.value;
      }
    } finally {
      // A consumer that stops early (or fails) releases the source: a socket or file is closed.
      if (!finished) await it.return?.();
    }
  }
  return { head, rest: rest() };
}

/** zlib's own errors, told apart from the source's (which pass through unchanged). */
class GunzipError extends DataError {
  override name = 'GunzipError';
}

async function* gunzipped(source: AsyncIterable<Buffer>, counter: { compressedBytes: number }): AsyncGenerator<Buffer> {
  const gunzip = createGunzip();
  let sourceError: unknown;
  // Fed by its own loop so that gunzip's backpressure, not this generator's consumer, paces the source.
  const feeding = (async () => {
    try {
      for await (const chunk of source) {
        if (gunzip.destroyed) return;
        counter.compressedBytes += chunk.length;
        if (!gunzip.write(chunk)) await drainedOrClosed(gunzip);
      }
      gunzip.end();
    } catch (err) {
      sourceError = err;
      gunzip.destroy();
    }
  })();
  try {
    for await (const out of gunzip) yield out as Buffer;
  } catch (err) {
    if (sourceError === undefined) throw new GunzipError((err as Error).message, { cause: err });
  } finally {
    gunzip.destroy();
  }
  // The feeding loop never rejects; awaiting it here (not in finally) cannot hang a consumer that stopped early.
  await feeding;
  if (sourceError !== undefined) throw sourceError;
}

function gzipFailure(err: unknown, prefix: string, compressedBytes: number, parser: RecordParser | undefined): unknown {
  if (!(err instanceof GunzipError)) return err;
  const at = parser?.position();
  const where = at ? `; the text before it was read to line ${at.line} (byte ${at.byteOffset})` : '';
  const truncated = /unexpected end of file/i.test(err.message);
  return new FileFormatError(
    `${prefix}${truncated ? 'the gzip stream is truncated' : 'not valid gzip'} (${err.message}) after ${compressedBytes} compressed bytes${where}` +
      (truncated ? '' : '; if the file is not gzipped, use compression "none" or "auto"'),
    at,
    { cause: err.cause },
  );
}
