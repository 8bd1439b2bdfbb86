/**
 * One local delivery stream's buffer: records appended as they are accepted, handed to an object
 * write when the buffer reaches its size hint or its interval passes, one write after another so
 * the journal's deliveries are in buffer order too.
 */
import path from 'node:path';
import { StreamJournal, type SyncFile } from './firehose-journal';
import type { ObjectDelivery } from './firehose-objects';
import type { StreamQuota } from './firehose-quota';
import type { FirehoseStreamConfig } from './firehose-types';

/** Refuses a configuration the service would refuse (its buffering hints' ranges). */
export function checkStreamConfig(config: FirehoseStreamConfig): void {
  if (config.bufferingSizeMiB < 1 || config.bufferingSizeMiB > 128) {
    throw new Error(`Stream ${config.name}: bufferingSizeMiB must be 1-128, got ${config.bufferingSizeMiB}`);
  }
  if (config.bufferingIntervalSeconds < 0 || config.bufferingIntervalSeconds > 900) {
    throw new Error(`Stream ${config.name}: bufferingIntervalSeconds must be 0-900, got ${config.bufferingIntervalSeconds}`);
  }
}

export class DeliveryStream {
  journal: StreamJournal | undefined;
  private chunks: Buffer[] = [];
  private bytes = 0;
  private oldestArrival: Date | undefined;
  /** Journal sequence numbers of the first and last buffered records (0 without a journal). */
  private firstSeq = 0;
  private lastSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Objects are written one after another, in buffer order, so the journal's deliveries are too. */
  private writes: Promise<void> = Promise.resolve();

  constructor(
    readonly config: FirehoseStreamConfig,
    private readonly delivery: ObjectDelivery,
    readonly createdAt: Date,
    readonly quota: StreamQuota | undefined,
  ) {}

  /** The buffer has reached the size hint (measured before compression, as on AWS). */
  get full(): boolean {
    return this.bytes >= this.config.bufferingSizeMiB * 1024 * 1024;
  }

  append(data: Buffer, arrival: Date, seq: number): void {
    this.chunks.push(data);
    this.bytes += data.length;
    this.lastSeq = seq;
    if (!this.oldestArrival) {
      this.oldestArrival = arrival;
      this.firstSeq = seq;
      const ms = this.config.bufferingIntervalSeconds * 1000;
      if (ms > 0) {
        this.timer = setTimeout(() => void this.deliver(), ms);
        this.timer.unref();
      }
    }
  }

  /** Hand the buffer to a write; the buffer starts empty again at once. */
  deliver(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.bytes === 0 || !this.oldestArrival) return Promise.resolve();
    const buffered = { chunks: this.chunks, oldest: this.oldestArrival, firstSeq: this.firstSeq, lastSeq: this.lastSeq };
    this.chunks = [];
    this.bytes = 0;
    this.oldestArrival = undefined;
    const write = this.delivery.track(
      this.config.name,
      this.writes.then(() => this.delivery.write(this.config, this.journal, buffered)),
    );
    this.writes = write;
    return write;
  }

  /**
   * Opens the stream's journal under `dir` and delivers what a previous process accepted but
   * never delivered; returns how many records that was (their writes are under way).
   */
  async openJournal(dir: string, sync: SyncFile | undefined): Promise<number> {
    const { journal, undelivered } = await StreamJournal.open(path.join(dir, this.config.name), this.delivery.objectExists, sync);
    this.journal = journal;
    for (const r of undelivered) {
      this.append(r.data, r.arrival, r.seq);
      if (this.full) void this.deliver();
    }
    void this.deliver();
    return undelivered.length;
  }
}
