/**
 * The local Firehose endpoint's write-ahead journal, one per stream: what lets the endpoint keep
 * Firehose's promise that an accepted record is durable (the fetcher advances its checkpoint on
 * that promise) while it still buffers records in memory by size and interval.
 *
 * Frames are appended to segment files `<dir>/<stream>/seg-<n>.log`:
 *   put        the accepted records of one call (fsynced before the endpoint answers 200)
 *   intent     "records from..to go to object <key>" (fsynced before the object is written)
 *   delivered  the object is durably written
 * Each record gets a sequence number. At start, the journal is read back: records covered by a
 * `delivered` frame, or by an `intent` whose object exists, are delivered; the others are handed
 * back to be delivered again (so nothing accepted is lost and no delivered object is duplicated).
 * A segment is deleted once every record and intent it holds is delivered. A frame torn by a
 * crash (bad length or checksum) ends its segment: its call was never answered.
 */
import { open, readdir, readFile, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { faultPoint } from '../runtime/fault-points';
import { mkdirDurably, syncDir } from './durable-file';

const MAGIC = 0x464a4831; // "FJH1"
const FRAME_HEADER_BYTES = 16;

type FrameHeader =
  | { type: 'put'; seq: number; arrival: string; lengths: number[] }
  | { type: 'intent'; from: number; to: number; key: string }
  | { type: 'delivered'; from: number; to: number; key: string };

export interface JournaledRecord {
  seq: number;
  data: Buffer;
  arrival: Date;
}

/** How the journal makes a write durable; injectable so a test can hold it and watch the endpoint wait. */
export type SyncFile = (handle: FileHandle) => Promise<void>;
export const fsyncFile: SyncFile = (handle) => handle.sync();

function encodeFrame(header: FrameHeader, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(FRAME_HEADER_BYTES);
  prefix.writeUInt32BE(MAGIC, 0);
  prefix.writeUInt32BE(head.length, 4);
  prefix.writeUInt32BE(body.length, 8);
  prefix.writeUInt32BE(crc32(body, crc32(head)), 12);
  return Buffer.concat([prefix, head, body]);
}

/** The whole frames of a segment, stopping at the first torn or corrupt one. */
function decodeFrames(buf: Buffer): { header: FrameHeader; body: Buffer }[] {
  const frames: { header: FrameHeader; body: Buffer }[] = [];
  let at = 0;
  while (at + FRAME_HEADER_BYTES <= buf.length) {
    if (buf.readUInt32BE(at) !== MAGIC) break;
    const headLen = buf.readUInt32BE(at + 4);
    const bodyLen = buf.readUInt32BE(at + 8);
    const end = at + FRAME_HEADER_BYTES + headLen + bodyLen;
    if (end > buf.length) break;
    const head = buf.subarray(at + FRAME_HEADER_BYTES, at + FRAME_HEADER_BYTES + headLen);
    const body = buf.subarray(at + FRAME_HEADER_BYTES + headLen, end);
    if (crc32(body, crc32(head)) !== buf.readUInt32BE(at + 12)) break;
    frames.push({ header: JSON.parse(head.toString('utf8')) as FrameHeader, body });
    at = end;
  }
  return frames;
}

/** Closed integer intervals, kept sorted and merged. */
class Ranges {
  private items: [number, number][] = [];
  add(from: number, to: number): void {
    const merged: [number, number][] = [];
    let [a, b] = [from, to];
    for (const [x, y] of this.items) {
      if (y + 1 < a || x > b + 1) merged.push([x, y]);
      else [a, b] = [Math.min(a, x), Math.max(b, y)];
    }
    merged.push([a, b]);
    this.items = merged.sort((p, q) => p[0] - q[0]);
  }
  covers(from: number, to: number): boolean {
    return this.items.some(([x, y]) => x <= from && to <= y);
  }
}

interface Segment {
  index: number;
  file: string;
  /** Sequence ranges its frames refer to; it may go once all are delivered. */
  refs: [number, number][];
}

const segmentName = (index: number): string => `seg-${String(index).padStart(8, '0')}.log`;

export class StreamJournal {
  private segments: Segment[] = [];
  private current: { segment: Segment; handle: FileHandle } | undefined;
  private nextSeq = 1;
  private nextSegment = 1;
  private readonly delivered = new Ranges();
  /** Journal writes run one at a time, in call order: sequence numbers follow file order. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly sync: SyncFile,
  ) {}

  /**
   * Opens the journal of one stream and reads back what a previous process left: returns the
   * records not yet delivered, in sequence order, with their original arrival times.
   */
  static async open(
    dir: string,
    objectExists: (key: string) => Promise<boolean>,
    sync: SyncFile = fsyncFile,
  ): Promise<{ journal: StreamJournal; undelivered: JournaledRecord[] }> {
    const journal = new StreamJournal(dir, sync);
    await mkdirDurably(dir);
    const files = (await readdir(dir)).filter((f) => /^seg-\d+\.log$/.test(f)).sort();
    const records = new Map<number, JournaledRecord>();
    const intents: { from: number; to: number; key: string }[] = [];
    let maxSeq = 0;
    for (const name of files) {
      const file = path.join(dir, name);
      const segment: Segment = { index: Number(name.slice(4, -4)), file, refs: [] };
      for (const { header, body } of decodeFrames(await readFile(file))) {
        if (header.type === 'put') {
          let offset = 0;
          const arrival = new Date(header.arrival);
          header.lengths.forEach((len, i) => {
            records.set(header.seq + i, { seq: header.seq + i, data: body.subarray(offset, offset + len), arrival });
            offset += len;
          });
          const last = header.seq + header.lengths.length - 1;
          segment.refs.push([header.seq, last]);
          maxSeq = Math.max(maxSeq, last);
        } else if (header.type === 'intent') {
          intents.push(header);
          segment.refs.push([header.from, header.to]);
          maxSeq = Math.max(maxSeq, header.to);
        } else {
          journal.delivered.add(header.from, header.to);
        }
      }
      journal.segments.push(segment);
      journal.nextSegment = Math.max(journal.nextSegment, segment.index + 1);
    }
    // An object whose intent was journaled may have been written before the crash: if it exists,
    // its records are delivered (re-delivering them would duplicate the object).
    for (const intent of intents) {
      if (!journal.delivered.covers(intent.from, intent.to) && (await objectExists(intent.key))) {
        journal.delivered.add(intent.from, intent.to);
      }
    }
    journal.nextSeq = maxSeq + 1;
    const undelivered = [...records.values()].filter((r) => !journal.delivered.covers(r.seq, r.seq)).sort((a, b) => a.seq - b.seq);
    await journal.serial(() => journal.collect());
    return { journal, undelivered };
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(frame: Buffer, refs: [number, number] | undefined, durable: boolean): Promise<void> {
    if (!this.current) {
      const segment: Segment = { index: this.nextSegment++, file: '', refs: [] };
      segment.file = path.join(this.dir, segmentName(segment.index));
      const handle = await open(segment.file, 'a');
      await syncDir(this.dir);
      this.current = { segment, handle };
      this.segments.push(segment);
    }
    if (refs) this.current.segment.refs.push(refs);
    await this.current.handle.write(frame);
    if (durable) await this.sync(this.current.handle);
  }

  /**
   * Journals the accepted records of one call and makes them durable; then, still in journal
   * order, hands their first sequence number to `accepted` (which buffers them).
   */
  append<T>(records: Buffer[], arrival: Date, accepted: (firstSeq: number) => T): Promise<T> {
    return this.serial(async () => {
      const seq = this.nextSeq;
      this.nextSeq += records.length;
      const frame = encodeFrame({ type: 'put', seq, arrival: arrival.toISOString(), lengths: records.map((r) => r.length) }, Buffer.concat(records));
      await this.write(frame, [seq, seq + records.length - 1], true);
      faultPoint('firehose:after-journal-append');
      return accepted(seq);
    });
  }

  /**
   * Delivers records from..to as object `key`: journals the intent durably, runs `writeObject`
   * (which must be durable when it resolves), then records the delivery and drops the segments
   * whose records are all delivered.
   */
  async deliver(from: number, to: number, key: string, writeObject: () => Promise<void>): Promise<void> {
    await this.serial(async () => {
      await this.write(encodeFrame({ type: 'intent', from, to, key }), [from, to], true);
      // Later calls go to a new segment, so this one can be dropped once its records are delivered.
      await this.closeCurrent();
    });
    await writeObject();
    await this.serial(async () => {
      // Not fsynced, and only into an open segment: after a crash the intent and the object's
      // existence tell the same; this frame only spares that check.
      if (this.current) await this.write(encodeFrame({ type: 'delivered', from, to, key }), undefined, false);
      this.delivered.add(from, to);
      await this.collect();
    });
  }

  private async closeCurrent(): Promise<void> {
    const current = this.current;
    this.current = undefined;
    await current?.handle.close();
  }

  /** Deletes the segments whose every record and intent is delivered. */
  private async collect(): Promise<void> {
    const done = this.segments.filter((s) => s.refs.every(([a, b]) => this.delivered.covers(a, b)));
    if (done.length === 0) return;
    if (this.current && done.includes(this.current.segment)) await this.closeCurrent();
    // Oldest first: an intent is never in an older segment than its records, so a crash halfway
    // leaves intents without records (harmless), never records without their intent (re-delivered twice).
    for (const s of done) await rm(s.file, { force: true });
    this.segments = this.segments.filter((s) => !done.includes(s));
    await syncDir(this.dir);
  }

  /** Segment files still on disk (tests look at them). */
  segmentFiles(): string[] {
    return this.segments.map((s) => s.file);
  }

  async close(): Promise<void> {
    await this.serial(() => this.closeCurrent());
  }
}
