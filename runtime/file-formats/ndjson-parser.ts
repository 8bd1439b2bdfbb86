/**
 * NDJSON (one JSON object per line, LF or CRLF). A blank (or whitespace-only) line is skipped;
 * a line that is not JSON, or is JSON but not an object (an array, a number, null), or is not
 * UTF-8, or is longer than maxRecordBytes, is a problem row, and the next line is read as usual.
 * Nothing here stops a read: every line is independent.
 */
import { cutNote, decodeUtf8, PositionedParser, tooLarge, type ParserStart, type ReadItem } from './record-parser';

const LF = 0x0a;
const CR = 0x0d;

export type NdjsonOptions = ParserStart;

export class NdjsonParser extends PositionedParser<NdjsonOptions> {
  /** The current line's bytes from earlier pieces (none once it is over the limit). */
  private parts: Buffer[] = [];
  private partBytes = 0;
  private oversize = false;

  push(chunk: Buffer, out: ReadItem[]): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      const nl = chunk.indexOf(LF, i);
      if (nl < 0) {
        this.carry(chunk, i, n);
        break;
      }
      if (!this.partBytes && !this.oversize && nl - i <= this.opts.maxRecordBytes) {
        this.lineDone(chunk, i, nl, out);
      } else {
        this.carry(chunk, i, nl);
        this.spanningLineDone(out);
      }
      this.line++;
      i = nl + 1;
    }
    this.base += n;
  }

  end(out: ReadItem[]): void {
    if (this.partBytes || this.oversize) this.spanningLineDone(out);
  }

  /** Bytes of a line that continues in a later piece (or is too long to parse). */
  private carry(chunk: Buffer, start: number, end: number): void {
    if (end <= start) return;
    this.raw.add(chunk, start, end);
    if (this.oversize) {
      this.partBytes += end - start;
      return;
    }
    this.parts.push(chunk.subarray(start, end));
    this.partBytes += end - start;
    if (this.partBytes > this.opts.maxRecordBytes) {
      this.oversize = true;
      this.parts = [];
    }
  }

  private spanningLineDone(out: ReadItem[]): void {
    if (this.oversize) {
      out.push({ line: this.line, problem: tooLarge(this.opts.maxRecordBytes) + cutNote(this.partBytes, this.opts.maxRawBytes), raw: this.raw.text() });
    } else {
      const bytes = Buffer.concat(this.parts);
      this.lineDone(bytes, 0, bytes.length, out);
    }
    this.parts = [];
    this.partBytes = 0;
    this.oversize = false;
    this.raw.reset();
  }

  private lineDone(bytes: Buffer, start: number, end: number, out: ReadItem[]): void {
    if (end > start && bytes[end - 1] === CR) end--;
    const text = decodeUtf8(bytes, start, end);
    if (text === undefined) {
      this.problem(out, 'the line is not valid UTF-8', bytes, start, end);
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      if (text.trim() === '') return;
      this.problem(out, `invalid JSON: ${(err as Error).message}`, bytes, start, end);
      return;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.problem(out, `not a JSON object but ${describe(value)}; each line must be one object`, bytes, start, end);
      return;
    }
    out.push({ line: this.line, record: value as Record<string, unknown> });
  }

  private problem(out: ReadItem[], problem: string, bytes: Buffer, start: number, end: number): void {
    const cut = Math.min(end, start + this.opts.maxRawBytes);
    out.push({ line: this.line, problem: problem + cutNote(end - start, this.opts.maxRawBytes), raw: bytes.toString('utf8', start, cut) });
  }
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}
