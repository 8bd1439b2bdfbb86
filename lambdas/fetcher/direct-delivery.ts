/**
 * Delivery of a parallel backfill's records straight to the raw zone: each batch becomes one
 * gzipped NDJSON object under the same partition layout as Firehose's output (storage-layout.ts
 * `directObjectKey`), which the raw table, the crawler and the transform read alike.
 *
 * Why not Firehose for backfills: its Direct PUT quota is 1 MiB/s in most regions (5 MiB/s in
 * three), below a single Socrata stream (~2.4 MB/s); K streams through it would wait on our own
 * delivery. S3 takes thousands of PUTs a second per prefix, and a backfill writes a few per second.
 * Incremental runs keep Firehose: its buffering makes a few large objects of many small runs.
 *
 * The object name is the run plus a hash of the content, so a retried invocation that re-sends a
 * batch overwrites its own object; a batch re-read after a failure (other rows, other hash) adds
 * a second copy of some rows, which the transform's one-row-per-key staging removes, exactly as
 * for Firehose's at-least-once delivery.
 */
import { createHash } from 'node:crypto';
import { createGzip } from 'node:zlib';
import { faultPoint } from '../../runtime/fault-points';
import type { ObjectStore } from '../../runtime/object-store';
import { directObjectKey, ingestDateOf } from '../../runtime/storage-layout';
import { emptyDeliveryStats, type DeliveryStats } from './firehose-delivery';

/**
 * One object under way per stream: a stream fills a batch (4 MiB, Firehose's) in ~1.7 s at a
 * portal's ~2.4 MB/s while a PUT takes a fraction of that, so a second one in flight would only
 * hold another batch in memory (8 streams × 2 × 4 MiB of records, and their copies, measured
 * 526 MiB peak RSS against a 512 MiB Lambda before this bound; docs/bench.md).
 */
export const DIRECT_MAX_IN_FLIGHT = 1;

/** Level 3: ~3x faster than the default 6 for ~10% larger objects (the fetcher is CPU-bound on a small Lambda). */
const GZIP_LEVEL = 3;

/** The records gzipped as one member, without joining them first (no copy of the batch). */
function gzipRecords(records: readonly Buffer[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const gzip = createGzip({ level: GZIP_LEVEL });
    const out: Buffer[] = [];
    gzip.on('data', (chunk: Buffer) => out.push(chunk));
    gzip.on('end', () => resolve(Buffer.concat(out)));
    gzip.on('error', reject);
    for (const r of records) gzip.write(r);
    gzip.end();
  });
}

export class DirectObjectDelivery {
  readonly kind = 'direct';
  readonly batchesInFlight = DIRECT_MAX_IN_FLIGHT;

  constructor(
    private readonly store: ObjectStore,
    private readonly datasetName: string,
    private readonly runId: string,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Writes the records (each "\n"-terminated raw lines) as one object; resolves once it is stored. */
  async deliver(records: Buffer[]): Promise<DeliveryStats> {
    const stats = emptyDeliveryStats();
    if (!records.length) return stats;
    const hash = createHash('sha256');
    let bytes = 0;
    for (const r of records) {
      hash.update(r);
      bytes += r.length;
    }
    const key = directObjectKey({ name: this.datasetName }, ingestDateOf(this.clock()), this.runId, hash.digest('hex').slice(0, 24));
    await this.store.put(key, await gzipRecords(records), { contentType: 'application/gzip' });
    faultPoint('fetch:after-direct-object');
    stats.records = records.length;
    stats.bytes = bytes;
    stats.calls = 1;
    return stats;
  }
}
