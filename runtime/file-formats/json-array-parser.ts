/**
 * A top-level JSON array of objects, streamed element by element: a scanner finds where each
 * element ends (strings, escapes, nesting) and only that element is parsed, so memory is one
 * element at most, however long the array.
 *
 * An element that is not valid JSON, or not an object, or not UTF-8, or over maxRecordBytes is a
 * problem row and the next element is read. What breaks the array itself stops the read with the
 * line and byte: no `[` at the start, a bracket closing the wrong kind, a missing comma, an empty
 * element or trailing comma, anything after the closing `]`, and an array that never closes.
 */
import { FileFormatError } from './file-format-error';
import { describe } from './ndjson-parser';
import { cutNote, decodeUtf8, PositionedParser, tooLarge, type ParserStart, type ReadItem } from './record-parser';

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

const BEFORE_ARRAY = 0;
const BEFORE_ELEMENT = 1;
const IN_ELEMENT = 2;
const AFTER_ELEMENT = 3;
const AFTER_ARRAY = 4;

/** Nesting deeper than this is counted but its brackets are not matched (no JSON in practice comes near). */
const MATCHED_DEPTH = 4096;

const isSpace = (b: number): boolean => b === SPACE || b === LF || b === CR || b === TAB;
const show = (b: number): string => (b >= 0x20 && b < 0x7f ? `"${String.fromCharCode(b)}"` : `byte 0x${b.toString(16).padStart(2, '0')}`);

export type JsonArrayOptions = ParserStart;

export class JsonArrayParser extends PositionedParser<JsonArrayOptions> {
  private state = BEFORE_ARRAY;
  private arrayLine = 1;
  /** No element yet: `]` may close the array here. */
  private first = true;

  private elementStart = 0;
  private elementLine = 1;
  private scalar = false;
  private inString = false;
  private escape = false;
  private depth = 0;
  private readonly closers = new Uint8Array(MATCHED_DEPTH);
  private parts: Buffer[] = [];
  private oversize = false;

  push(chunk: Buffer, out: ReadItem[]): void {
    const n = chunk.length;
    let i = 0;
    let seg = 0;
    while (i < n) {
      if (this.state === IN_ELEMENT) {
        const end = this.scan(chunk, i);
        if (end < 0) break;
        this.elementDone(chunk, seg, end, out);
        i = end;
        this.state = AFTER_ELEMENT;
        continue;
      }
      const b = chunk[i]!;
      if (isSpace(b)) {
        if (b === LF) this.line++;
        i++;
        continue;
      }
      if (this.state === BEFORE_ARRAY) {
        if (b !== OPEN_BRACKET) {
          this.fail(i, `expected a JSON array (a file starting with "["), found ${show(b)}` + (b === OPEN_BRACE ? '; for one object per line use format "ndjson"' : ''));
        }
        this.state = BEFORE_ELEMENT;
        this.arrayLine = this.line;
        i++;
      } else if (this.state === BEFORE_ELEMENT) {
        if (b === CLOSE_BRACKET && this.first) {
          this.state = AFTER_ARRAY;
          i++;
        } else if (b === CLOSE_BRACKET || b === COMMA) {
          this.fail(i, b === COMMA ? 'an empty element (two commas, or a comma right after "[")' : 'a trailing comma before "]"');
        } else {
          this.state = IN_ELEMENT;
          this.elementStart = this.base + i;
          this.elementLine = this.line;
          this.scalar = b !== OPEN_BRACE && b !== OPEN_BRACKET;
          this.depth = 0;
          this.inString = false;
          this.escape = false;
          seg = i;
        }
      } else if (this.state === AFTER_ELEMENT) {
        if (b === COMMA) {
          this.state = BEFORE_ELEMENT;
          this.first = false;
        } else if (b === CLOSE_BRACKET) {
          this.state = AFTER_ARRAY;
        } else {
          this.fail(i, `expected "," or "]" after the element starting on line ${this.elementLine}, found ${show(b)}`);
        }
        i++;
      } else {
        this.fail(i, `${show(b)} after the array's closing "]"; a file holds one array`);
      }
    }
    if (this.state === IN_ELEMENT) {
      this.raw.add(chunk, seg, n);
      if (!this.oversize) this.parts.push(chunk.subarray(seg, n));
      if (this.base + n - this.elementStart > this.opts.maxRecordBytes) this.markOversize();
    }
    this.base += n;
  }

  end(): void {
    if (this.state === AFTER_ARRAY) return;
    const at = { line: this.line, byteOffset: this.base };
    if (this.state === BEFORE_ARRAY) throw new FileFormatError('no JSON array: the input is empty', at);
    throw new FileFormatError(
      `the JSON array opened on line ${this.arrayLine} does not close: the input ends on line ${this.line} (byte ${this.base})` +
        (this.state === IN_ELEMENT ? ` inside the element starting on line ${this.elementLine}` : '') +
        '; the file is truncated or not one JSON array',
      at,
    );
  }

  /** Where the element ends in chunk (exclusive), or -1 when it goes on past the piece. */
  private scan(chunk: Buffer, from: number): number {
    const n = chunk.length;
    for (let i = from; i < n; i++) {
      const b = chunk[i]!;
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (b === BACKSLASH) this.escape = true;
        else if (b === QUOTE) this.inString = false;
        else if (b === LF) this.line++;
        continue;
      }
      if (b === QUOTE) {
        this.inString = true;
      } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
        if (this.scalar) return i;
        if (this.depth < MATCHED_DEPTH) this.closers[this.depth] = b === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET;
        this.depth++;
      } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        if (this.scalar) return i;
        this.depth--;
        if (this.depth < MATCHED_DEPTH && this.closers[this.depth] !== b) {
          this.fail(i, `${show(b)} closes a ${show(this.closers[this.depth] === CLOSE_BRACE ? OPEN_BRACE : OPEN_BRACKET)} in the element starting on line ${this.elementLine}`);
        }
        if (this.depth === 0) return i + 1;
      } else if (this.scalar && (b === COMMA || isSpace(b))) {
        return i;
      } else if (b === LF) {
        this.line++;
      }
    }
    return -1;
  }

  private markOversize(): void {
    this.oversize = true;
    this.parts = [];
  }

  private elementDone(chunk: Buffer, start: number, end: number, out: ReadItem[]): void {
    const size = this.base + end - this.elementStart;
    if (this.oversize || size > this.opts.maxRecordBytes) {
      this.raw.add(chunk, start, end);
      this.problem(out, tooLarge(this.opts.maxRecordBytes), size, this.raw.text());
    } else {
      let bytes = chunk.subarray(start, end);
      if (this.parts.length) bytes = Buffer.concat([...this.parts, bytes]);
      this.parse(bytes, out);
    }
    this.parts = [];
    this.oversize = false;
    this.raw.reset();
  }

  private parse(bytes: Buffer, out: ReadItem[]): void {
    const raw = (): string => bytes.toString('utf8', 0, Math.min(bytes.length, this.opts.maxRawBytes));
    const text = decodeUtf8(bytes);
    if (text === undefined) return this.problem(out, 'the element is not valid UTF-8', bytes.length, raw());
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return this.problem(out, `invalid JSON: ${(err as Error).message}`, bytes.length, raw());
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return this.problem(out, `not a JSON object but ${describe(value)}; each element must be one object`, bytes.length, raw());
    }
    out.push({ line: this.elementLine, record: value as Record<string, unknown> });
  }

  private problem(out: ReadItem[], problem: string, size: number, raw: string): void {
    out.push({ line: this.elementLine, problem: problem + cutNote(size, this.opts.maxRawBytes), raw });
  }

  private fail(i: number, what: string): never {
    throw new FileFormatError(`not a valid JSON array: ${what} (line ${this.line}, byte ${this.base + i})`, { line: this.line, byteOffset: this.base + i });
  }
}
