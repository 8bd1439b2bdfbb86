/**
 * Packs newline-terminated rows into Firehose records and records into PutRecordBatch calls.
 * Firehose bills each record rounded up to 5 KB, so one row per record would bill a 2 KB row as
 * 5 KB; packing rows up to the record limit removes that overhead and cuts calls by ~500x.
 */

/** Firehose's per-record limit: 1,000 KiB before base64. */
export const MAX_RECORD_BYTES = 1000 * 1024;
export const MAX_BATCH_RECORDS = 500;
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;

/**
 * Packs rows (each already ending in "\n", with its UTF-8 length) into records of at most
 * `maxRecordBytes`; never splits a row. Rows stay strings until a record is complete, so each
 * record is encoded once instead of once per row and again on concatenation.
 */
export function packRecords(lines: readonly string[], byteLengths: readonly number[], maxRecordBytes = MAX_RECORD_BYTES): Buffer[] {
  const records: Buffer[] = [];
  let start = 0;
  let size = 0;
  const flush = (end: number): void => {
    if (end > start) records.push(Buffer.from(lines.slice(start, end).join(''), 'utf8'));
    start = end;
    size = 0;
  };
  for (let i = 0; i < lines.length; i++) {
    const length = byteLengths[i]!;
    if (length > maxRecordBytes) {
      throw new Error(`A row of ${length} bytes exceeds the Firehose record limit; quarantine it before packing`);
    }
    if (size + length > maxRecordBytes) flush(i);
    size += length;
  }
  flush(lines.length);
  return records;
}

/** Splits records into PutRecordBatch-sized groups (≤ 500 records and ≤ 4 MiB each). */
export function batchRecords<T extends { length: number }>(
  records: readonly T[],
  maxRecords = MAX_BATCH_RECORDS,
  maxBytes = MAX_BATCH_BYTES,
): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const r of records) {
    if (current.length > 0 && (current.length >= maxRecords || bytes + r.length > maxBytes)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(r);
    bytes += r.length;
  }
  if (current.length) batches.push(current);
  return batches;
}

/**
 * Reusable record buffers. A record lives from the row that opens it until Firehose accepted its
 * batch, long enough to be promoted to V8's old generation: freed per record, each ~1 MB buffer
 * would wait for a full mark-compact, and those collections only come when tens of MB of such
 * external memory have piled up (the fetcher's peak RSS was mostly that garbage; docs/bench.md).
 * Handing accepted records back keeps a fixed set of buffers, about the records in flight.
 */
export class RecordBufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly bufferBytes = MAX_RECORD_BYTES,
    /** Buffers kept for reuse at most: more than the records of MAX_BATCHES_IN_FLIGHT + 1 full batches (~4 each). */
    private readonly maxFree = 32,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.bufferBytes);
  }

  /**
   * Records nothing refers to any more (their batch was accepted, so neither Firehose retries nor
   * the SDK read them again): their buffers are reused. Buffers not from this pool are ignored.
   */
  release(records: readonly Buffer[]): void {
    for (const r of records) {
      if (this.free.length >= this.maxFree) return;
      if (r.byteOffset === 0 && r.buffer.byteLength === this.bufferBytes) this.free.push(Buffer.from(r.buffer, 0, this.bufferBytes));
    }
  }

  /** Buffers waiting for reuse (for tests). */
  get available(): number {
    return this.free.length;
  }
}

/**
 * The streaming form of packRecords: rows go in one at a time as they arrive and are written
 * straight into the record's buffer (no joined string, no copy); a record comes out as soon as the
 * next row would not fit, so only the record being filled is held.
 */
export class RecordPacker {
  private buffer: Buffer | undefined;
  private size = 0;
  private readonly maxRecordBytes: number;
  private readonly pool: RecordBufferPool;

  constructor(maxRecordBytes = MAX_RECORD_BYTES, pool?: RecordBufferPool) {
    this.maxRecordBytes = maxRecordBytes;
    this.pool = pool && pool.bufferBytes >= maxRecordBytes ? pool : new RecordBufferPool(maxRecordBytes);
  }

  /** Adds a row ("\n"-terminated, with its UTF-8 length); returns the record it closed, if any. */
  add(line: string, byteLength: number): Buffer | undefined {
    if (byteLength > this.maxRecordBytes) {
      throw new Error(`A row of ${byteLength} bytes exceeds the Firehose record limit; quarantine it before packing`);
    }
    const closed = this.size + byteLength > this.maxRecordBytes ? this.flush() : undefined;
    this.buffer ??= this.pool.take();
    this.size += this.buffer.write(line, this.size, byteLength, 'utf8');
    return closed;
  }

  /** The record being filled, closed now (undefined when empty): a view of its buffer, exactly its bytes. */
  flush(): Buffer | undefined {
    if (!this.size) return undefined;
    const record = this.buffer!.subarray(0, this.size);
    this.buffer = undefined;
    this.size = 0;
    return record;
  }
}
