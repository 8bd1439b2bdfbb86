/**
 * What the three format parsers share: the items they produce, the push/end contract readRecords
 * drives them with, their position, and the bounded keeping of a malformed record's raw text.
 */
import { isUtf8 } from 'node:buffer';
import type { FilePosition } from './file-format-error';

/** A record read whole. CSV values are strings (see csv-parser.ts for empty fields); JSON as parsed. */
export interface RecordItem {
  /** 1-based line where the record starts in the decompressed text. */
  line: number;
  record: Record<string, unknown>;
}

/** A record that cannot be loaded; reading went on after it. */
export interface ProblemItem {
  /** 1-based line where the record starts in the decompressed text. */
  line: number;
  /** What is wrong, for a person: "has 3 fields, the header has 4". */
  problem: string;
  /** The record's text as read, cut to maxRawBytes (the problem says when it was cut). */
  raw: string;
}

export type ReadItem = RecordItem | ProblemItem;

export const isProblem = (item: ReadItem): item is ProblemItem => 'problem' in item;

export interface ParserLimits {
  /** A record longer than this (bytes of its text) is a problem row; nothing larger is ever held. */
  maxRecordBytes: number;
  /** A problem row's raw text is cut to this many bytes. */
  maxRawBytes: number;
}

/**
 * A format parser: fed the decompressed bytes in order, in pieces of any size, it appends what
 * each piece completes to `out`. State carries over between pieces, so a record, a quoted field,
 * a CRLF or a multi-byte character may be split anywhere. Throws FileFormatError when the file
 * cannot be read on.
 */
export interface RecordParser {
  push(chunk: Buffer, out: ReadItem[]): void;
  /** The input ended: the last record, or the error of a file that ends mid-structure. */
  end(out: ReadItem[]): void;
  /** Where the parser is (for an error raised outside it, e.g. by gunzip). */
  position(): FilePosition;
}

/** A parser's limits and where its input starts. */
export interface ParserStart extends ParserLimits {
  /** Offset of the first byte the parser sees in the decompressed text (after a skipped BOM). */
  startOffset: number;
}

/** Where a parser stands and the raw text of its record: the bookkeeping every format keeps alike. */
export abstract class PositionedParser<Options extends ParserStart> implements RecordParser {
  /** Offset, in the decompressed text, of the current piece's first byte. */
  protected base: number;
  protected line = 1;
  protected readonly raw: RawCapture;

  constructor(protected readonly opts: Options) {
    this.base = opts.startOffset;
    this.raw = new RawCapture(opts.maxRawBytes);
  }

  position(): FilePosition {
    return { line: this.line, byteOffset: this.base };
  }

  abstract push(chunk: Buffer, out: ReadItem[]): void;
  abstract end(out: ReadItem[]): void;
}

/**
 * The first maxRawBytes of a record that spans pieces: slices are kept only until the bound, so
 * an oversized record costs at most that much here.
 */
export class RawCapture {
  private parts: Buffer[] = [];
  private kept = 0;

  constructor(private readonly maxBytes: number) {}

  add(chunk: Buffer, start: number, end: number): void {
    if (this.kept >= this.maxBytes || end <= start) return;
    const take = Math.min(end - start, this.maxBytes - this.kept);
    this.parts.push(chunk.subarray(start, start + take));
    this.kept += take;
  }

  /** What was captured, as text (a character cut at the bound shows as U+FFFD). */
  text(): string {
    return (this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts)).toString('utf8');
  }

  reset(): void {
    if (this.kept) {
      this.parts = [];
      this.kept = 0;
    }
  }
}

/** "(raw text cut to the first 4096 of 20000 bytes)" when it was cut, else ''. */
export function cutNote(totalBytes: number, maxRawBytes: number): string {
  return totalBytes > maxRawBytes ? ` (raw text cut to the first ${maxRawBytes} of ${totalBytes} bytes)` : '';
}

/**
 * Bytes to text, or undefined when they are not valid UTF-8. The decoder would put U+FFFD in
 * silently; checking the bytes only when a U+FFFD appears keeps the common case one pass.
 */
export function decodeUtf8(bytes: Buffer, start = 0, end = bytes.length): string | undefined {
  const s = bytes.toString('utf8', start, end);
  if (s.includes('\uFFFD') && !isUtf8(bytes.subarray(start, end))) return undefined;
  return s;
}

export const tooLarge = (maxRecordBytes: number): string =>
  `record larger than maxRecordBytes (${maxRecordBytes} bytes); it was skipped without being held in memory`;
