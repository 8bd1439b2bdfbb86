/**
 * Incremental parser of a Socrata JSON response body: a JSON array of flat objects (values are
 * strings, or nested objects for point/location columns). Bytes are consumed chunk by chunk as
 * they arrive and each row is handed out as soon as its closing brace arrives, with its exact raw
 * bytes and its parsed value. Memory is bounded by one row plus one chunk, never the page.
 *
 * How: a scanner of the array framing only. It walks the bytes tracking three things (inside a
 * string, after a backslash, nesting depth) to find where each row starts and ends, then hands the
 * row's bytes to JSON.parse, which does the real validation of the row. Row boundaries are ASCII
 * bytes (`{`, `}`), so a multi-byte UTF-8 character split across chunks is simply reassembled
 * with the rest of its row before decoding. Measured against a general streaming JSON parser in
 * bench/row-stream-bench.ts (docs/bench.md, "Parsing a page as it arrives").
 */
import { SourceError } from '../../runtime/pipeline-error';

/** One row of the page, as soon as its closing brace arrived. */
export interface StreamedRow {
  /** The row as JSON.parse gives it. */
  row: Record<string, unknown>;
  /**
   * The row's exact bytes as the server sent them (`{` … `}`). May be a view into the network
   * chunk: copy it (Buffer.from) if it must outlive the chunk's other uses.
   */
  raw: Buffer;
  /** 0-based position of the row in the page. */
  index: number;
}

export type RowStreamErrorKind = 'truncated' | 'malformed' | 'oversize';

/**
 * Why a body could not be read to its end. `rowsComplete` rows were handed out before it; a fetcher
 * resumes after the last of them (keyset `$where` from that row), never from the page start.
 */
export class RowStreamError extends SourceError {
  constructor(
    readonly kind: RowStreamErrorKind,
    message: string,
    /** Rows completely received (and handed out) before the error. */
    readonly rowsComplete: number,
    /** Bytes of the body consumed before the error. */
    readonly byteOffset: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RowStreamError';
  }
}

export interface RowStreamOptions {
  /** Prefix of every error message saying where the body came from, e.g. `dataset wr8u-xric, page 3 (https://…)` (no token). */
  context?: string;
  /**
   * A row larger than this fails the body ("oversize") instead of growing memory without bound:
   * a body that is not row-shaped (one giant value) must not take the process down. Default 16 MiB,
   * far above Firehose's 1,000 KiB record limit, so the fetcher's own oversize handling still sees
   * every row it could deliver.
   */
  maxRowBytes?: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const BOM = [0xef, 0xbb, 0xbf];

const isWhitespace = (b: number): boolean => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

/** Where the scanner is in the framing `[ row , row , … ]`. */
const enum Frame {
  /** Before the opening `[` (only whitespace or a UTF-8 byte-order mark allowed). */
  Start,
  /** After `[`: a row or `]`. */
  FirstRow,
  /** After a `,`: a row (not `]`: no trailing commas in JSON). */
  NextRow,
  /** After a row: `,` or `]`. */
  AfterRow,
  /** Inside a row. */
  InRow,
  /** After the closing `]`: only whitespace. */
  Done,
}

const DEFAULT_MAX_ROW_BYTES = 16 * 2 ** 20;

function describeByte(b: number): string {
  if (b === QUOTE) return `'"'`;
  return b >= 0x20 && b < 0x7f ? `"${String.fromCharCode(b)}"` : `byte 0x${b.toString(16).padStart(2, '0')}`;
}

/**
 * The parser's state between chunks. Call `push(chunk)` for each chunk (it returns the rows the
 * chunk completed, in order) and `end()` when the body ends; both throw RowStreamError.
 */
export class RowStreamParser {
  private frame = Frame.Start;
  private inString = false;
  private escaped = false;
  private depth = 0;
  /** Parts of the current row from earlier chunks (the row started before this chunk). */
  private carry: Buffer[] = [];
  private carryBytes = 0;
  private rows = 0;
  private consumed = 0;
  private bomBytesSeen = 0;
  private readonly context: string;
  private readonly maxRowBytes: number;

  constructor(options: RowStreamOptions = {}) {
    this.context = options.context ? `${options.context}: ` : '';
    this.maxRowBytes = options.maxRowBytes ?? DEFAULT_MAX_ROW_BYTES;
  }

  /** Rows handed out so far. */
  get rowsComplete(): number {
    return this.rows;
  }

  /** Bytes consumed so far. */
  get bytesConsumed(): number {
    return this.consumed;
  }

  /** Bytes of the unfinished row held between chunks: never more than one row. */
  get bufferedBytes(): number {
    return this.carryBytes;
  }

  /** True once the closing `]` has been read. */
  get complete(): boolean {
    return this.frame === Frame.Done;
  }

  private fail(kind: RowStreamErrorKind, what: string, at: number): never {
    throw new RowStreamError(kind, `${this.context}${what}`, this.rows, at);
  }

  private malformed(b: number, at: number, expected: string): never {
    this.fail('malformed', `response body is not a JSON array of rows: ${describeByte(b)} at byte ${at} where ${expected} was expected (after ${this.rows} complete rows); check the URL answers with a Socrata .json resource`, at);
  }

  push(chunk: Buffer): StreamedRow[] {
    const out: StreamedRow[] = [];
    const n = chunk.length;
    const base = this.consumed;
    let i = 0;
    // Start of the current row inside this chunk (0 when the row began in an earlier chunk).
    let rowStart = 0;
    // Next backslash at or after i, found once per chunk region: strings are skipped with
    // indexOf('"'), which is only right if no backslash precedes the quote.
    let nextBackslash = -1;

    while (i < n) {
      if (this.frame === Frame.InRow) {
        if (this.escaped) {
          // The byte after a backslash (possibly the first of this chunk) never ends a string.
          this.escaped = false;
          i++;
          continue;
        }
        if (this.inString) {
          let quote = chunk.indexOf(QUOTE, i);
          if (quote === -1) quote = n;
          if (nextBackslash < i) {
            nextBackslash = chunk.indexOf(BACKSLASH, i);
            // "None left in this chunk" is remembered as n, so it is not searched for again.
            if (nextBackslash === -1) nextBackslash = n;
          }
          if (nextBackslash < quote) {
            // Skip the escape: `\"` and `\\` must not end or confuse the string.
            this.escaped = true;
            i = nextBackslash + 1;
            continue;
          }
          // The string goes on in the next chunk.
          if (quote === n) break;
          this.inString = false;
          i = quote + 1;
          continue;
        }
        const b = chunk[i]!;
        if (b === QUOTE) this.inString = true;
        else if (b === LBRACE || b === LBRACKET) this.depth++;
        else if (b === RBRACE || b === RBRACKET) {
          this.depth--;
          if (this.depth === 0) {
            out.push(this.finishRow(chunk, rowStart, i + 1, base + i));
            this.frame = Frame.AfterRow;
          }
        }
        i++;
        continue;
      }

      const b = chunk[i]!;
      if (isWhitespace(b)) {
        i++;
        continue;
      }
      switch (this.frame) {
        case Frame.Start:
          // A UTF-8 byte-order mark (EF BB BF) at the very start is tolerated, as res.text() strips it.
          if (base + i === this.bomBytesSeen && this.bomBytesSeen < 3 && b === BOM[this.bomBytesSeen]) {
            this.bomBytesSeen++;
            break;
          }
          if (b !== LBRACKET) this.malformed(b, base + i, '"[" (the start of the array of rows)');
          this.frame = Frame.FirstRow;
          break;
        case Frame.FirstRow:
        case Frame.NextRow:
          if (b === RBRACKET && this.frame === Frame.FirstRow) {
            this.frame = Frame.Done;
            break;
          }
          if (b !== LBRACE) this.malformed(b, base + i, this.frame === Frame.FirstRow ? '"{" (a row) or "]"' : '"{" (a row)');
          this.frame = Frame.InRow;
          this.depth = 1;
          rowStart = i;
          break;
        case Frame.AfterRow:
          if (b === COMMA) this.frame = Frame.NextRow;
          else if (b === RBRACKET) this.frame = Frame.Done;
          else this.malformed(b, base + i, '"," or "]" (after a row)');
          break;
        case Frame.Done:
          this.malformed(b, base + i, 'nothing (after the closing "]")');
      }
      i++;
    }

    if (this.frame === Frame.InRow) {
      // Keep the unfinished row's bytes: at most one row is ever carried.
      const part = chunk.subarray(rowStart);
      this.carryBytes += part.length;
      if (this.carryBytes > this.maxRowBytes) {
        this.fail('oversize', `row ${this.rows + 1} is larger than ${this.maxRowBytes} bytes and still not closed at byte ${base + n}; the body is not an array of rows, or raise maxRowBytes`, base + n);
      }
      this.carry.push(part);
    }
    this.consumed = base + n;
    return out;
  }

  private finishRow(chunk: Buffer, start: number, end: number, at: number): StreamedRow {
    let raw: Buffer;
    if (this.carry.length) {
      raw = Buffer.concat([...this.carry, chunk.subarray(0, end)], this.carryBytes + end);
      this.carry = [];
      this.carryBytes = 0;
    } else raw = chunk.subarray(start, end);
    if (raw.length > this.maxRowBytes) {
      this.fail('oversize', `row ${this.rows + 1} is ${raw.length} bytes, larger than ${this.maxRowBytes} bytes; the body is not an array of rows, or raise maxRowBytes`, at);
    }
    let row: unknown;
    try {
      row = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      const preview = raw.subarray(0, 120).toString('utf8');
      this.fail('malformed', `row ${this.rows + 1} (ending at byte ${at}) is not valid JSON: ${(err as Error).message}; row starts ${JSON.stringify(preview)}`, at);
    }
    const index = this.rows++;
    return { row: row as Record<string, unknown>, raw, index };
  }

  /** The body ended: throws "truncated" unless the closing `]` was read. */
  end(): void {
    if (this.frame === Frame.Done) return;
    const where =
      this.frame === Frame.InRow
        ? `inside row ${this.rows + 1} (${this.carryBytes} bytes of it received)`
        : this.frame === Frame.Start
          ? 'before the opening "["'
          : 'between rows, before the closing "]"';
    this.fail('truncated', `response body truncated after ${this.rows} complete rows (${this.consumed} bytes), ${where}; resume after the last complete row`, this.consumed);
  }
}

/**
 * The rows of a response body, each yielded as soon as it is complete. A body that ends early
 * (or a connection error while reading it) throws RowStreamError "truncated" after yielding every
 * complete row, with the original error as `cause`.
 */
export async function* streamRows(body: AsyncIterable<Uint8Array>, options: RowStreamOptions = {}): AsyncGenerator<StreamedRow, void, undefined> {
  const parser = new RowStreamParser(options);
  const iterator = body[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<Uint8Array>;
    try {
      next = await iterator.next();
    } catch (err) {
      const context = options.context ? `${options.context}: ` : '';
      throw new RowStreamError(
        'truncated',
        `${context}connection failed while reading the response after ${parser.rowsComplete} complete rows (${parser.bytesConsumed} bytes): ${(err as Error).message ?? String(err)}; resume after the last complete row`,
        parser.rowsComplete,
        parser.bytesConsumed,
        { cause: err },
      );
    }
    if (next.done) break;
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    for (const row of parser.push(chunk)) yield row;
  }
  parser.end();
}
