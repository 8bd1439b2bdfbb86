/**
 * The local Firehose's object writes: one object per delivered buffer, written durably (a journaled
 * delivery relies on it), their keys listed, and a failed write kept until flush() or close()
 * rethrows it.
 */
import { randomUUID } from 'node:crypto';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { faultPoint } from '../runtime/fault-points';
import { LocalObjectStore, type ObjectStore } from '../runtime/object-store';
import { writeFileDurably } from './durable-file';
import type { StreamJournal } from './firehose-journal';
import { evaluatePrefix, firehoseObjectName } from './firehose-prefix';
import type { FirehoseCounters, FirehoseStreamConfig } from './firehose-types';

const gzip = promisify(gzipCallback);

/** One buffer to deliver: its records' bytes, the arrival of the oldest, and their journal sequence numbers. */
export interface Buffered {
  chunks: Buffer[];
  oldest: Date;
  firstSeq: number;
  lastSeq: number;
}

export class ObjectDelivery {
  /** Keys written so far, in write order. */
  readonly keys: string[] = [];
  private readonly pending = new Set<Promise<void>>();
  private readonly errors: Error[] = [];
  private readonly localStore: LocalObjectStore | undefined;

  constructor(
    readonly store: ObjectStore,
    private readonly counters: FirehoseCounters,
  ) {
    this.localStore = store instanceof LocalObjectStore ? store : undefined;
  }

  /** Writes one buffer as one object (through the journal, if the stream has one). */
  async write(config: FirehoseStreamConfig, journal: StreamJournal | undefined, buffered: Buffered): Promise<void> {
    const { chunks, oldest, firstSeq, lastSeq } = buffered;
    const body = Buffer.concat(chunks);
    const compressed = config.compression === 'UNCOMPRESSED' ? body : await gzip(body);
    const extension = config.compression === 'UNCOMPRESSED' ? '' : '.gz';
    const key = evaluatePrefix(config.dataPrefix, { timestamp: oldest }) + firehoseObjectName(config.name, 1, oldest, randomUUID(), extension);
    if (journal) await journal.deliver(firstSeq, lastSeq, key, () => this.putObject(key, compressed, extension !== ''));
    else await this.putObject(key, compressed, extension !== '');
    this.keys.push(key);
    this.counters.objectsWritten += 1;
    this.counters.objectBytesWritten += compressed.length;
  }

  /** Object writes are durable when they resolve: a journaled delivery relies on it. */
  private async putObject(key: string, body: Buffer, gzipped: boolean): Promise<void> {
    if (this.localStore) await writeFileDurably(path.join(this.localStore.location, key), body);
    else await this.store.put(key, body, { contentType: 'application/octet-stream', ...(gzipped ? { contentEncoding: 'gzip' } : {}) });
    faultPoint('firehose:after-object-write');
  }

  /** Whether an object is there: the journal asks, at start, which deliveries completed. */
  readonly objectExists = async (key: string): Promise<boolean> => {
    if (!this.localStore) return (await this.store.get(key)) !== undefined;
    return access(path.join(this.localStore.location, key)).then(
      () => true,
      () => false,
    );
  };

  /** Keeps a write until it settles, and its failure until `drain` rethrows it. */
  track(stream: string, write: Promise<void>): Promise<void> {
    const kept = write.catch((err: unknown) => {
      // Kept, not swallowed: flush() and close() rethrow it. AWS would retry delivery for 24 h;
      // with a journal the records stay in it and are delivered at the next start.
      this.errors.push(new Error(`Local Firehose ${stream}: could not write to ${this.store.location}: ${(err as Error).message}`, { cause: err }));
    });
    this.pending.add(kept);
    void kept.finally(() => this.pending.delete(kept));
    return kept;
  }

  /** Waits for every write, then rethrows the failures since the last drain. */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    if (this.errors.length > 0) {
      const errors = this.errors.splice(0);
      throw new AggregateError(errors, errors.map((e) => e.message).join('\n'));
    }
  }
}
