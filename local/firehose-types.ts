/**
 * What the local Firehose endpoint's parts share: a stream's configuration, the injectable faults
 * and the counters. In their own module so the stream, object and server modules import them
 * without importing each other.
 */

export interface FirehoseStreamConfig {
  name: string;
  /** S3 prefix expression for delivered objects, e.g. firehoseDataPrefix(dataset). */
  dataPrefix: string;
  /** S3 prefix expression for error output, e.g. firehoseErrorPrefix(dataset). */
  errorPrefix: string;
  /** 0-900 s; 0 delivers at the end of every call. */
  bufferingIntervalSeconds: number;
  /** 1-128 MiB, measured before compression, as on AWS. */
  bufferingSizeMiB: number;
  /** Default GZIP, as the deployed stream. */
  compression?: 'GZIP' | 'UNCOMPRESSED';
}

export interface FirehoseFaults {
  /** Fail every Nth record received (counting every record of every accepted call, from 1). */
  failEveryNthRecord?: number;
  /** Fail each record with this probability, drawn from a PRNG seeded with `seed`. */
  failProbability?: number;
  seed?: number;
  /** Answer the next N Put calls with ServiceUnavailableException (the whole call fails). */
  throttleNextCalls?: number;
}

export interface FirehoseCounters {
  /** Every Put* call received, including rejected and throttled ones. */
  calls: number;
  putRecordBatchCalls: number;
  putRecordCalls: number;
  /** Calls answered with an error (limits, unknown stream, throttling, malformed). */
  rejectedCalls: number;
  /** Calls answered wholly with ServiceUnavailableException (`throttleNextCalls`, or the requests/s quota). */
  throttledCalls: number;
  /** Records answered with a per-entry ServiceUnavailableException because the bytes/s or records/s quota was spent (also in `recordsFailed`). */
  throttledRecords: number;
  recordsAccepted: number;
  recordsFailed: number;
  /** Decoded bytes of accepted records. */
  bytesAccepted: number;
  /** "\n"-terminated lines in accepted records: the rows of the fetcher's packed NDJSON records, counted as they stream in. */
  linesAccepted: number;
  /** Billed ingestion bytes of accepted records (each record rounded up to 5 KiB). */
  billedBytes: number;
  objectsWritten: number;
  /** Compressed bytes written to the store. */
  objectBytesWritten: number;
  /** Records a previous process journaled but had not delivered, delivered at start. */
  recordsReplayed: number;
}

export function zeroCounters(): FirehoseCounters {
  return {
    calls: 0,
    putRecordBatchCalls: 0,
    putRecordCalls: 0,
    rejectedCalls: 0,
    throttledCalls: 0,
    throttledRecords: 0,
    recordsAccepted: 0,
    recordsFailed: 0,
    bytesAccepted: 0,
    linesAccepted: 0,
    billedBytes: 0,
    objectsWritten: 0,
    objectBytesWritten: 0,
    recordsReplayed: 0,
  };
}
