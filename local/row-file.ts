/**
 * The compact storage of the local Socrata server: each row's JSON, exactly as served with
 * `$select=:*,*`, appended to one file; the server keeps in memory only what its queries compare
 * (system fields, the primary key) and where each row's text is. A 650,000-row source is then
 * ~800 MB on disk and ~100 MB in memory instead of ~2 GB of objects.
 *
 * Reads are sequential in the common case (pages in keyset order, written in that order), so a
 * read that continues the previous one fills a 1 MiB window; a jump reads just the row.
 */
import { closeSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

const WRITE_BATCH_BYTES = 1 << 20;
const READ_WINDOW_BYTES = 1 << 20;
/** A read starting this close after the previous one's end is taken as sequential. */
const SEQUENTIAL_GAP_BYTES = 64 << 10;

export class RowFile {
  private readonly fd: number;
  /** Bytes appended (written or still pending). */
  private size = 0;
  private written = 0;
  private pending: string[] = [];
  private pendingBytes = 0;
  private window: Buffer = Buffer.alloc(0);
  private windowAt = 0;
  private lastEnd = Number.NEGATIVE_INFINITY;
  private closed = false;

  constructor(readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.fd = openSync(file, 'w+');
  }

  /** Appends one row's text; returns where it is: [offset, byte length]. */
  append(json: string): [number, number] {
    // A closed file's descriptor number may already belong to another file: never write through it.
    if (this.closed) throw new Error(`local Socrata row file ${this.file} is closed`);
    const len = Buffer.byteLength(json);
    const off = this.size;
    this.pending.push(json);
    this.pendingBytes += len;
    this.size += len;
    if (this.pendingBytes >= WRITE_BATCH_BYTES) this.flush();
    return [off, len];
  }

  private flush(): void {
    if (!this.pending.length) return;
    const buf = Buffer.from(this.pending.join(''), 'utf8');
    let done = 0;
    while (done < buf.length) done += writeSync(this.fd, buf, done, buf.length - done, this.written + done);
    this.written += buf.length;
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** The bytes of one row. The returned Buffer stays valid after later reads (windows are never reused). */
  read(off: number, len: number): Buffer {
    if (this.closed) throw new Error(`local Socrata row file ${this.file} is closed`);
    if (off + len > this.written) this.flush();
    if (off >= this.windowAt && off + len <= this.windowAt + this.window.length) {
      this.lastEnd = off + len;
      return this.window.subarray(off - this.windowAt, off - this.windowAt + len);
    }
    const sequential = off >= this.lastEnd && off - this.lastEnd < SEQUENTIAL_GAP_BYTES;
    const size = sequential ? Math.max(len, Math.min(READ_WINDOW_BYTES, this.written - off)) : len;
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = readSync(this.fd, buf, got, size - got, off + got);
      if (n === 0) throw new Error(`local Socrata row file ${this.file} ends at byte ${off + got}, expected ${off + size}: was it deleted or truncated while the server ran?`);
      got += n;
    }
    this.window = buf;
    this.windowAt = off;
    this.lastEnd = off + len;
    return buf.subarray(0, len);
  }

  /** Closes and deletes the file. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
    rmSync(this.file, { force: true });
  }
}
