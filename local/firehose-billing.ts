/**
 * How Amazon Data Firehose bills Direct PUT ingestion: per record, each record's size rounded up
 * to the next 5 KB, where 5 KB is 5,120 bytes. Sources (Amazon Data Firehose pricing page,
 * https://aws.amazon.com/firehose/pricing/): "the number of data records you send to the service,
 * times the size of each record rounded up to the nearest 5KB (5120 bytes)", and its worked
 * example divides KB by 1,048,576 KB/GB, i.e. binary units throughout. The rounding is per record,
 * not per API call: two 1 KB records in one PutRecordBatch are billed as 10 KB.
 *
 * In local/ because the local Firehose counts billed bytes as it accepts records; the cost model
 * and the baseline (bench/) import it from here, since local code never imports bench/.
 */
export const FIREHOSE_BILLING_INCREMENT_BYTES = 5 * 1024;

/** Billed bytes for one record of `size` bytes (before base64). A record is never billed as 0. */
export function billedRecordBytes(size: number): number {
  if (!Number.isFinite(size) || size < 0) throw new Error(`Invalid record size ${size}`);
  return Math.max(1, Math.ceil(size / FIREHOSE_BILLING_INCREMENT_BYTES)) * FIREHOSE_BILLING_INCREMENT_BYTES;
}

/** Billed ingestion bytes for a set of records, given their sizes in bytes. */
export function billedIngestionBytes(recordSizes: Iterable<number>): number {
  let total = 0;
  for (const size of recordSizes) total += billedRecordBytes(size);
  return total;
}

/** Billed GB (GiB: 1,073,741,824 bytes, as the pricing example computes) for the same records. */
export const billedIngestionGB = (recordSizes: Iterable<number>): number => billedIngestionBytes(recordSizes) / 1024 ** 3;
