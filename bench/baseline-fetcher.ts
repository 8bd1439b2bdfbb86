/**
 * The EARLIER design of this pipeline's fetcher, ported as the benchmark's baseline. It is kept
 * faithful on purpose, including what it got wrong, so the benchmark measures the real difference:
 * - deep `$offset` paging with `$limit=50000`, ordered by `incident_number` (not unique, so pages
 *   can overlap or skip rows while the dataset changes);
 * - each whole page read into memory and parsed with one JSON.parse;
 * - one Firehose record per row (`JSON.stringify(row) + "\n"`), each billed as at least 5 KB;
 * - sequential PutRecordBatch calls of 500 records;
 * - no timeouts, no retries, no HTTP status checks, and FailedPutCount ignored.
 * Do not "fix" this module: it is a measurement of the past, not code the pipeline runs.
 */
import { PutRecordBatchCommand, type FirehoseClient } from '@aws-sdk/client-firehose';
import { billedIngestionBytes } from '../local/firehose-billing';

export const BASELINE_PAGE_SIZE = 50_000;
export const BASELINE_BATCH_SIZE = 500;

export interface BaselineFetchOptions {
  /** Socrata base URL, e.g. https://data.sfgov.org or the local server's URL. */
  sourceUrl: string;
  datasetId: string;
  firehose: FirehoseClient;
  streamName: string;
}

export interface BaselineFetchStats {
  rows: number;
  pages: number;
  records: number;
  putCalls: number;
  /** Bytes of record data sent (before base64). */
  payloadBytes: number;
  /** What Firehose bills for those records (each rounded up to 5 KB). */
  billedBytes: number;
  /** Records the service reported as failed; the earlier design never looked, so they are lost. */
  failedRecordsIgnored: number;
}

export async function runBaselineFetch(options: BaselineFetchOptions): Promise<BaselineFetchStats> {
  const stats: BaselineFetchStats = { rows: 0, pages: 0, records: 0, putCalls: 0, payloadBytes: 0, billedBytes: 0, failedRecordsIgnored: 0 };
  const base = options.sourceUrl.replace(/\/+$/, '');
  let offset = 0;
  for (;;) {
    const url = `${base}/resource/${options.datasetId}.json?$limit=${BASELINE_PAGE_SIZE}&$offset=${offset}&$order=incident_number`;
    const res = await fetch(url);
    const page = JSON.parse(await res.text()) as Array<Record<string, unknown>>;
    stats.pages += 1;
    if (page.length === 0) break;
    stats.rows += page.length;

    for (let i = 0; i < page.length; i += BASELINE_BATCH_SIZE) {
      const records = page.slice(i, i + BASELINE_BATCH_SIZE).map((row) => Buffer.from(JSON.stringify(row) + '\n'));
      const out = await options.firehose.send(
        new PutRecordBatchCommand({ DeliveryStreamName: options.streamName, Records: records.map((Data) => ({ Data })) }),
      );
      stats.putCalls += 1;
      stats.records += records.length;
      const sizes = records.map((r) => r.length);
      stats.payloadBytes += sizes.reduce((a, b) => a + b, 0);
      stats.billedBytes += billedIngestionBytes(sizes);
      // The earlier design ignored this; we only count it so the benchmark can show the loss.
      stats.failedRecordsIgnored += out.FailedPutCount ?? 0;
    }
    if (page.length < BASELINE_PAGE_SIZE) break;
    offset += BASELINE_PAGE_SIZE;
  }
  return stats;
}
