/**
 * RFC 4180 CSV, byte by byte, resumable at any byte: quoted fields, doubled quotes, CR/LF inside
 * quotes, CRLF or LF (or a lone CR) ending a record, a header row naming the columns.
 *
 * Values are strings, typed later. An empty unquoted field (`a,,b`) is absent from the record
 * (null, as the Socrata rows leave nulls out); an empty quoted field (`a,"",b`) is the empty
 * string: the file said so explicitly, and PostgreSQL's COPY ... CSV makes the same distinction.
 * A blank line is no record (a one-column file therefore cannot express a row whose only value is
 * null by an empty line).
 *
 * Malformed records are problem rows and reading goes on at the next record end: a wrong number
 * of fields, a quote inside an unquoted field, text after a closing quote, bytes that are not
 * UTF-8, a record over maxRecordBytes. A header that is malformed, empty, or names a column twice
 * or not at all, and a quoted field still open at the end of the input, stop the read.
 *
 * Line numbers count LF, CRLF and, outside quotes, a lone CR; inside a quoted field only LF.
 */
import { FileFormatError } from './file-format-error';
import { cutNote, decodeUtf8, PositionedParser, tooLarge, type ParserStart, type ReadItem } from './record-parser';

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE_BYTE = Buffer.from('"');

const FIELD_START = 0;
const UNQUOTED = 1;
const QUOTED = 2;
/** A quote inside a quoted field: its end, or the first of a doubled quote. */
const QUOTE_SEEN = 3;
/** A CR ended a record: an LF right after it belongs to it. */
const AFTER_CR = 4;

export interface CsvOptions extends ParserStart {
  /** One ASCII byte (default `,`). */
  delimiter: number;
}

export class CsvParser extends PositionedParser<CsvOptions> {
  private state = FIELD_START;
  private header: string[] | undefined;
  private fields: (string | undefined)[] = [];
  /** Bytes of the current field kept from earlier pieces, or before a doubled quote. */
  private parts: Buffer[] = [];
  private inRecord = false;
  private recordStart = 0;
  private recordLine = 1;
  private problem: string | undefined;
  private oversize = false;

  push(chunk: Buffer, out: ReadItem[]): void {
    const n = chunk.length;
    const delim = this.opts.delimiter;
    let i = 0;
    // Where the current field's bytes start in this piece (UNQUOTED, QUOTED).
    let seg = 0;
    while (i < n) {
      const state = this.state;
      if (state === UNQUOTED) {
        let b = 0;
        while (i < n) {
          b = chunk[i]!;
          if (b === delim || b === LF || b === CR || b === QUOTE) break;
          i++;
        }
        if (i === n) break;
        if (b === QUOTE) {
          this.flag(`a quote inside the unquoted field ${this.fields.length + 1} (quote the whole field and double the quote)`);
          i++;
          continue;
        }
        this.endField(this.unquotedValue(chunk, seg, i));
        if (b === delim) {
          this.state = FIELD_START;
          i++;
        } else {
          this.endRecord(chunk, i, out);
          i = this.afterTerminator(b, i);
        }
      } else if (state === QUOTED) {
        const q = chunk.indexOf(QUOTE, i);
        const stop = q < 0 ? n : q;
        for (let k = i; k < stop; k++) if (chunk[k] === LF) this.line++;
        if (q < 0) break;
        this.keep(chunk, seg, q);
        i = q + 1;
        this.state = QUOTE_SEEN;
      } else if (state === QUOTE_SEEN) {
        const b = chunk[i]!;
        if (b === QUOTE) {
          this.keep(QUOTE_BYTE, 0, 1);
          i++;
          seg = i;
          this.state = QUOTED;
        } else if (b === delim) {
          this.endField(this.quotedValue());
          this.state = FIELD_START;
          i++;
        } else if (b === LF || b === CR) {
          this.endField(this.quotedValue());
          this.endRecord(chunk, i, out);
          i = this.afterTerminator(b, i);
        } else {
          this.flag(`text after the closing quote of field ${this.fields.length + 1}`);
          this.parts = [];
          this.state = UNQUOTED;
          seg = i;
        }
      } else if (state === AFTER_CR) {
        this.state = FIELD_START;
        // CRLF: the CR counted the line already.
        if (chunk[i] === LF) i++;
      } else {
        const b = chunk[i]!;
        if (b === LF || b === CR) {
          // A terminator right after a delimiter ends an empty last field; with no record open it is a blank line.
          if (this.inRecord) {
            this.endField(undefined);
            this.endRecord(chunk, i, out);
          }
          i = this.afterTerminator(b, i);
          continue;
        }
        if (!this.inRecord) {
          this.inRecord = true;
          this.recordStart = this.base + i;
          this.recordLine = this.line;
        }
        if (b === QUOTE) {
          this.state = QUOTED;
          i++;
          seg = i;
        } else if (b === delim) {
          this.endField(undefined);
          i++;
        } else {
          this.state = UNQUOTED;
          seg = i;
        }
      }
    }
    if (this.inRecord) {
      this.raw.add(chunk, Math.max(0, this.recordStart - this.base), n);
      if (this.state === UNQUOTED || this.state === QUOTED) this.keep(chunk, seg, n);
      if (this.base + n - this.recordStart > this.opts.maxRecordBytes) this.markOversize();
    }
    this.base += n;
  }

  end(out: ReadItem[]): void {
    if (this.state === QUOTED) {
      throw new FileFormatError(
        `the quoted field ${this.fields.length + 1} of the record starting on line ${this.recordLine} is not closed: ` +
          `the input ends inside it (line ${this.line}, byte ${this.base}); a quote is missing or the file is truncated`,
        { line: this.recordLine, byteOffset: this.recordStart },
      );
    }
    if (this.inRecord) {
      if (this.state === UNQUOTED) this.endField(this.unquotedValue(EMPTY, 0, 0));
      else if (this.state === QUOTE_SEEN) this.endField(this.quotedValue());
      else this.endField(undefined);
      this.endRecord(EMPTY, 0, out);
    }
    if (!this.header) {
      throw new FileFormatError('no header row: the input is empty, and a CSV file needs a first row naming its columns', {
        line: this.line,
        byteOffset: this.base,
      });
    }
  }

  private afterTerminator(b: number, i: number): number {
    this.line++;
    this.state = b === CR ? AFTER_CR : FIELD_START;
    return i + 1;
  }

  private flag(problem: string): void {
    this.problem ??= problem;
  }

  private keep(chunk: Buffer, start: number, end: number): void {
    if (!this.oversize && end > start) this.parts.push(chunk.subarray(start, end));
  }

  private endField(value: string | undefined): void {
    if (!this.oversize) this.fields.push(value);
  }

  private markOversize(): void {
    if (this.oversize) return;
    this.oversize = true;
    this.fields = [];
    this.parts = [];
    this.problem = tooLarge(this.opts.maxRecordBytes);
  }

  private unquotedValue(chunk: Buffer, start: number, end: number): string | undefined {
    if (this.oversize) return undefined;
    let value: string | undefined;
    if (!this.parts.length) {
      if (end === start) return undefined;
      value = decodeUtf8(chunk, start, end);
    } else {
      this.parts.push(chunk.subarray(start, end));
      value = decodeUtf8(Buffer.concat(this.parts));
      this.parts = [];
    }
    if (value === undefined) this.flag(`field ${this.fields.length + 1} is not valid UTF-8`);
    return value;
  }

  private quotedValue(): string | undefined {
    if (this.oversize) return undefined;
    const parts = this.parts;
    this.parts = [];
    if (!parts.length) return '';
    const value = decodeUtf8(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    if (value === undefined) this.flag(`field ${this.fields.length + 1} is not valid UTF-8`);
    return value;
  }

  /** The record ends before chunk[end] (a terminator, or the end of the input). */
  private endRecord(chunk: Buffer, end: number, out: ReadItem[]): void {
    const size = this.base + end - this.recordStart;
    if (size > this.opts.maxRecordBytes) this.markOversize();
    if (!this.header) {
      this.header = this.takeHeader();
    } else if (this.problem !== undefined || this.fields.length !== this.header.length) {
      const problem = this.problem ?? `has ${this.fields.length} field${this.fields.length === 1 ? '' : 's'}, the header has ${this.header.length}`;
      this.raw.add(chunk, Math.max(0, this.recordStart - this.base), end);
      out.push({ line: this.recordLine, problem: problem + cutNote(size, this.opts.maxRawBytes), raw: this.raw.text() });
    } else {
      const header = this.header;
      const fields = this.fields;
      const record: Record<string, unknown> = {};
      for (let k = 0; k < header.length; k++) {
        const value = fields[k];
        if (value !== undefined) record[header[k]!] = value;
      }
      out.push({ line: this.recordLine, record });
    }
    this.fields = [];
    this.parts = [];
    this.problem = undefined;
    this.oversize = false;
    this.inRecord = false;
    this.raw.reset();
  }

  private takeHeader(): string[] {
    const at = { line: this.recordLine, byteOffset: this.recordStart };
    if (this.problem !== undefined) throw new FileFormatError(`the header row (line ${this.recordLine}) is malformed: ${this.problem}`, at);
    const names = this.fields;
    const seen = new Map<string, number>();
    for (const [k, name] of names.entries()) {
      if (name === undefined || name.trim() === '') {
        throw new FileFormatError(`the header row (line ${this.recordLine}) has no name for column ${k + 1}; every column needs a name`, at);
      }
      if (name === '__proto__') throw new FileFormatError(`the header row (line ${this.recordLine}) names column ${k + 1} "__proto__", which a record cannot hold`, at);
      const first = seen.get(name);
      if (first !== undefined) {
        throw new FileFormatError(`the header row (line ${this.recordLine}) names "${name}" twice (columns ${first + 1} and ${k + 1}); column names must be unique`, at);
      }
      seen.set(name, k);
    }
    return names as string[];
  }
}

const EMPTY = Buffer.alloc(0);
