/**
 * Direct PUT's per-stream throughput quota for the local Firehose endpoint: bytes, records and
 * requests per second, PutRecord and PutRecordBatch counted together (Firehose developer guide,
 * "Quota": 5 MiB/s, 2,000 requests/s, 500,000 records/s in us-east-1, us-west-2 and eu-west-1;
 * 1 MiB/s, 1,000 requests/s, 100,000 records/s in most other regions; the three rise together).
 *
 * Each dimension is a token bucket holding one second of its rate, so a stream idle for a second
 * takes a one-second burst and a busy one gets the rate on average. How the service answers once a
 * quota is spent (the shape producers must handle, reproduced exactly):
 * - bytes/s or records/s: HTTP 200 with `FailedPutCount` > 0 and, for each refused entry,
 *   `ErrorCode: "ServiceUnavailableException"`, `ErrorMessage: "Slow down."`. The entries are
 *   admitted in request order until the quota runs out; the rest of the call is refused
 *   (producers' logs show a tail of failed entries, e.g. 450 of 500, or records 433 onwards);
 * - requests/s: the whole call fails with `ServiceUnavailableException` "Slow down." (HTTP 503),
 *   as `PutRecord` does when its one record is refused.
 */
// The producer's own constant: the server's FIREHOSE_LIMITS imports this module.
import { MAX_RECORD_BYTES } from '../lambdas/fetcher/record-packer';

export interface FirehoseQuota {
  /** Decoded record bytes per second (the quota counts data before base64). */
  bytesPerSecond?: number;
  recordsPerSecond?: number;
  /** PutRecord and PutRecordBatch calls per second. */
  requestsPerSecond?: number;
}

const MIB = 1024 * 1024;

/** The default Direct PUT quota of a region (Service Quotas may show a raised one). */
export function regionQuota(region: string): Required<FirehoseQuota> {
  return ['us-east-1', 'us-west-2', 'eu-west-1'].includes(region)
    ? { bytesPerSecond: 5 * MIB, requestsPerSecond: 2_000, recordsPerSecond: 500_000 }
    : { bytesPerSecond: 1 * MIB, requestsPerSecond: 1_000, recordsPerSecond: 100_000 };
}

const REGION = /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+$/;
const ENV = 'LOCAL_FIREHOSE_QUOTA';
const FORMS =
  `${ENV} is "off", a region name (its default quota, e.g. "eu-central-1" for 1 MiB/s), or ` +
  'comma-separated per-second limits such as "bytes=1MiB,records=1000,requests=1000" (bytes take B, KiB or MiB)';

/**
 * The quota `LOCAL_FIREHOSE_QUOTA` asks for, or undefined (unset, empty or "off": no quota, the
 * local default). Throws saying which forms are accepted when the value is not one of them.
 */
export function quotaFromEnv(env: Record<string, string | undefined>): FirehoseQuota | undefined {
  const raw = env[ENV]?.trim();
  if (!raw || raw === 'off') return undefined;
  if (REGION.test(raw)) return regionQuota(raw);
  const quota: FirehoseQuota = {};
  for (const part of raw.split(',')) {
    const m = /^\s*(bytes|records|requests)\s*=\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB)?\s*$/.exec(part);
    if (!m) throw new Error(`${ENV}="${raw}": cannot read "${part.trim()}". ${FORMS}`);
    const [, what, number, unit] = m;
    if (unit && what !== 'bytes') throw new Error(`${ENV}="${raw}": ${what} takes a plain number, not ${unit}. ${FORMS}`);
    const value = Number(number) * (unit === 'MiB' ? MIB : unit === 'KiB' ? 1024 : 1);
    if (what === 'bytes') quota.bytesPerSecond = value;
    else if (what === 'records') quota.recordsPerSecond = value;
    else quota.requestsPerSecond = value;
  }
  checkQuota(quota, ENV);
  return quota;
}

/** Refuses a quota under which some legal call could never be accepted. */
export function checkQuota(quota: FirehoseQuota, where: string): void {
  const { bytesPerSecond: bytes, recordsPerSecond: records, requestsPerSecond: requests } = quota;
  for (const [name, v] of Object.entries({ bytesPerSecond: bytes, recordsPerSecond: records, requestsPerSecond: requests })) {
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new Error(`${where}: ${name} must be a positive number, got ${v}`);
  }
  // A bucket holds one second: below the largest record, that record would be refused forever.
  if (bytes !== undefined && bytes < MAX_RECORD_BYTES) {
    throw new Error(`${where}: bytesPerSecond ${bytes} is below the largest legal record (${MAX_RECORD_BYTES} bytes), which could then never be accepted`);
  }
  if (records !== undefined && records < 1) throw new Error(`${where}: recordsPerSecond must be at least 1`);
  if (requests !== undefined && requests < 1) throw new Error(`${where}: requestsPerSecond must be at least 1`);
}

/** One dimension: `rate` tokens a second, at most one second of them saved up. */
class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    private readonly rate: number,
    private readonly now: () => number,
  ) {
    this.tokens = rate;
    this.at = now();
  }

  available(): number {
    const t = this.now();
    this.tokens = Math.min(this.rate, this.tokens + ((t - this.at) / 1000) * this.rate);
    this.at = t;
    return this.tokens;
  }

  take(n: number): void {
    this.tokens -= n;
  }
}

/** One stream's buckets. */
export class StreamQuota {
  private readonly bytes: TokenBucket | undefined;
  private readonly records: TokenBucket | undefined;
  private readonly requests: TokenBucket | undefined;

  constructor(quota: FirehoseQuota, now: () => number = () => performance.now()) {
    if (quota.bytesPerSecond !== undefined) this.bytes = new TokenBucket(quota.bytesPerSecond, now);
    if (quota.recordsPerSecond !== undefined) this.records = new TokenBucket(quota.recordsPerSecond, now);
    if (quota.requestsPerSecond !== undefined) this.requests = new TokenBucket(quota.requestsPerSecond, now);
  }

  /** False when this second's requests are spent: the call is refused whole. */
  admitRequest(): boolean {
    if (!this.requests) return true;
    if (this.requests.available() < 1) return false;
    this.requests.take(1);
    return true;
  }

  /** How many of these records, from the first, fit in what is left of this second's quota. */
  admitRecords(records: readonly { length: number }[]): number {
    let bytesLeft = this.bytes?.available() ?? Infinity;
    let recordsLeft = this.records?.available() ?? Infinity;
    let n = 0;
    for (const r of records) {
      if (recordsLeft < 1 || bytesLeft < r.length) break;
      recordsLeft -= 1;
      bytesLeft -= r.length;
      n += 1;
    }
    this.bytes?.take(records.slice(0, n).reduce((sum, r) => sum + r.length, 0));
    this.records?.take(n);
    return n;
  }
}
