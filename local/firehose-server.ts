/**
 * A local Amazon Data Firehose (Direct PUT → S3) endpoint on 127.0.0.1, speaking the AWS JSON 1.1
 * protocol exactly as @aws-sdk/client-firehose and the AWS CLI send it, so the real fetcher code
 * runs against it with only `endpoint` / AWS_ENDPOINT_URL_FIREHOSE changed.
 *
 * What it models, because the pipeline depends on it:
 * - PutRecord / PutRecordBatch with the service's hard limits (500 records, 1,000 KiB per record
 *   before base64, 4 MiB per call) and its error shapes (`__type` + `message`);
 * - buffering per stream by size and interval, then one GZIP object per buffer, records
 *   concatenated with no delimiter added (the producer must add newlines, as on AWS);
 * - S3 keys from the same prefix expressions as the deployed stream (runtime/storage-layout.ts),
 *   `!{timestamp:...}` being the arrival time of the oldest record in the object, UTC;
 * - fault injection for tests: per-record failures (FailedPutCount > 0) and throttling;
 * - optionally, Direct PUT's per-stream throughput quota (bytes, records and requests per second,
 *   PutRecord and PutRecordBatch together), answered as the service does when it is exceeded
 *   (./firehose-quota.ts); off unless asked for;
 * - with `journal`, Firehose's durability promise: an accepted call's records are journaled and
 *   fsynced before the 200, objects are written crash-safely (temporary name, fsync, rename, fsync
 *   dir), and at start the records a crashed process accepted but never delivered are delivered
 *   (./firehose-journal.ts).
 * Also DescribeDeliveryStream and ListDeliveryStreams, minimally, for the AWS CLI.
 */
import { randomUUID } from 'node:crypto';
import { access } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { billedRecordBytes } from './firehose-billing';
import type { DatasetConfig } from '../runtime/dataset-config';
import { seededRandom } from './fire-incidents-generator';
import { faultPoint } from '../runtime/fault-points';
import { LocalObjectStore, type ObjectStore } from '../runtime/object-store';
import { firehoseDataPrefix, firehoseErrorPrefix } from '../runtime/storage-layout';
import { writeFileDurably } from './durable-file';
import { readJsonRequest, sendAwsJson } from './aws-json-protocol';
import { StreamJournal, type SyncFile } from './firehose-journal';
import { checkQuota, quotaFromEnv, StreamQuota, type FirehoseQuota } from './firehose-quota';
import { evaluatePrefix, firehoseObjectName } from './firehose-prefix';

const gzip = promisify(gzipCallback);

/** Service limits (PutRecordBatch API reference; "These limits cannot be changed"). */
export const FIREHOSE_LIMITS = {
  maxRecordsPerCall: 500,
  /** 1,000 KiB, measured on the decoded bytes. */
  maxRecordBytes: 1_000 * 1024,
  /** 4 MiB per call, measured on the sum of decoded record bytes. */
  maxCallBytes: 4 * 1024 * 1024,
} as const;

/** Refuse bodies this large outright (4 MiB of base64 plus JSON framing fits with room to spare). */
const MAX_HTTP_BODY_BYTES = 16 * 1024 * 1024;

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

export interface FirehoseServerOptions {
  /** Where objects go: locally `new LocalObjectStore('<data-dir>/buckets/raw')`. */
  store: ObjectStore;
  streams: FirehoseStreamConfig[];
  /** 0 (default) picks a free port. */
  port?: number;
  /** Arrival clock, injectable so tests can pin the `!{timestamp}` partition. */
  clock?: () => Date;
  faults?: FirehoseFaults;
  region?: string;
  accountId?: string;
  /**
   * Keep Firehose's durability promise: journal accepted records under `dir` (one subdirectory
   * per stream) before answering, and deliver at start what a previous process left undelivered.
   * `sync` replaces fsync (tests hold it to see that the endpoint waits for it).
   */
  journal?: { dir: string; sync?: SyncFile };
  /** Each stream's Direct PUT quota (./firehose-quota.ts); default none, as AWS's is far above loopback tests. */
  quota?: FirehoseQuota;
  /** Monotonic milliseconds for the quota's buckets (default performance.now), injectable for tests. */
  quotaClock?: () => number;
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

export interface FirehoseServer {
  readonly url: string;
  readonly port: number;
  /** A snapshot of the counters. */
  counters(): FirehoseCounters;
  /** Keys written so far, in write order. */
  objectKeys(): string[];
  /** Replace the fault configuration (the PRNG restarts from the new seed). */
  setFaults(faults: FirehoseFaults): void;
  /** Deliver every buffer now and wait for the writes; rethrows any delivery failure. */
  flush(): Promise<void>;
  /** Refuse new Put calls, finish those under way, flush, then stop listening. Idempotent. */
  close(): Promise<void>;
}

/** The local stream name for a dataset: `<dataset>-raw`. */
export const localStreamName = (dataset: Pick<DatasetConfig, 'name'>): string => `${dataset.name}-raw`;

/** Stream configurations mirroring the deployed delivery streams of these datasets. */
export function streamsFromDatasets(datasets: DatasetConfig[]): FirehoseStreamConfig[] {
  return datasets.map((d) => ({
    name: localStreamName(d),
    dataPrefix: firehoseDataPrefix(d),
    errorPrefix: firehoseErrorPrefix(d),
    bufferingIntervalSeconds: d.delivery.bufferingIntervalSeconds,
    bufferingSizeMiB: d.delivery.bufferingSizeMiB,
    compression: 'GZIP',
  }));
}

class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

interface StreamState {
  config: FirehoseStreamConfig;
  chunks: Buffer[];
  bytes: number;
  oldestArrival: Date | undefined;
  /** Journal sequence numbers of the first and last buffered records (0 without a journal). */
  firstSeq: number;
  lastSeq: number;
  timer: NodeJS.Timeout | undefined;
  createdAt: Date;
  journal: StreamJournal | undefined;
  /** Objects are written one after another, in buffer order, so the journal's deliveries are too. */
  writes: Promise<void>;
  quota: StreamQuota | undefined;
}

export async function startFirehoseServer(options: FirehoseServerOptions): Promise<FirehoseServer> {
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '000000000000';
  const clock = options.clock ?? (() => new Date());
  const streams = new Map<string, StreamState>();
  if (options.quota) checkQuota(options.quota, 'Local Firehose quota');
  for (const config of options.streams) {
    if (config.bufferingSizeMiB < 1 || config.bufferingSizeMiB > 128) {
      throw new Error(`Stream ${config.name}: bufferingSizeMiB must be 1-128, got ${config.bufferingSizeMiB}`);
    }
    if (config.bufferingIntervalSeconds < 0 || config.bufferingIntervalSeconds > 900) {
      throw new Error(`Stream ${config.name}: bufferingIntervalSeconds must be 0-900, got ${config.bufferingIntervalSeconds}`);
    }
    streams.set(config.name, {
      config,
      chunks: [],
      bytes: 0,
      oldestArrival: undefined,
      firstSeq: 0,
      lastSeq: 0,
      timer: undefined,
      createdAt: clock(),
      journal: undefined,
      writes: Promise.resolve(),
      quota: options.quota ? new StreamQuota(options.quota, options.quotaClock) : undefined,
    });
  }

  const counters: FirehoseCounters = {
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
  const keys: string[] = [];
  let faults: FirehoseFaults = {};
  let random: () => number = Math.random;
  let throttleRemaining = 0;
  let recordSequence = 0;
  const setFaults = (f: FirehoseFaults): void => {
    faults = { ...f };
    random = seededRandom(f.seed ?? 1);
    throttleRemaining = f.throttleNextCalls ?? 0;
  };
  setFaults(options.faults ?? {});

  const pending = new Set<Promise<void>>();
  const threshold = (state: StreamState): number => state.config.bufferingSizeMiB * 1024 * 1024;
  const deliveryErrors: Error[] = [];

  const arn = (name: string): string => `arn:aws:firehose:${region}:${accountId}:deliverystream/${name}`;

  const localStore = options.store instanceof LocalObjectStore ? options.store : undefined;

  /** Object writes are durable when they resolve: a journaled delivery relies on it. */
  async function putObject(key: string, body: Buffer, gzipped: boolean): Promise<void> {
    if (localStore) await writeFileDurably(path.join(localStore.location, key), body);
    else await options.store.put(key, body, { contentType: 'application/octet-stream', ...(gzipped ? { contentEncoding: 'gzip' } : {}) });
    faultPoint('firehose:after-object-write');
  }

  async function objectExists(key: string): Promise<boolean> {
    if (!localStore) return (await options.store.get(key)) !== undefined;
    return access(path.join(localStore.location, key)).then(
      () => true,
      () => false,
    );
  }

  async function writeObject(state: StreamState, chunks: Buffer[], oldest: Date, firstSeq: number, lastSeq: number): Promise<void> {
    const { config } = state;
    const body = Buffer.concat(chunks);
    const compressed = config.compression === 'UNCOMPRESSED' ? body : await gzip(body);
    const extension = config.compression === 'UNCOMPRESSED' ? '' : '.gz';
    const key = evaluatePrefix(config.dataPrefix, { timestamp: oldest }) + firehoseObjectName(config.name, 1, oldest, randomUUID(), extension);
    if (state.journal) await state.journal.deliver(firstSeq, lastSeq, key, () => putObject(key, compressed, extension !== ''));
    else await putObject(key, compressed, extension !== '');
    keys.push(key);
    counters.objectsWritten += 1;
    counters.objectBytesWritten += compressed.length;
  }

  /** Hand the stream's buffer to a write; the buffer starts empty again at once. */
  function deliver(state: StreamState): Promise<void> {
    if (state.timer) clearTimeout(state.timer);
    state.timer = undefined;
    if (state.bytes === 0 || !state.oldestArrival) return Promise.resolve();
    const chunks = state.chunks;
    const oldest = state.oldestArrival;
    const { firstSeq, lastSeq } = state;
    state.chunks = [];
    state.bytes = 0;
    state.oldestArrival = undefined;
    const write = state.writes
      .then(() => writeObject(state, chunks, oldest, firstSeq, lastSeq))
      .catch((err: unknown) => {
        // Kept, not swallowed: flush() and close() rethrow it. AWS would retry delivery for 24 h;
        // with a journal the records stay in it and are delivered at the next start.
        deliveryErrors.push(
          new Error(`Local Firehose ${state.config.name}: could not write to ${options.store.location}: ${(err as Error).message}`, { cause: err }),
        );
      });
    state.writes = write;
    pending.add(write);
    void write.finally(() => pending.delete(write));
    return write;
  }

  function append(state: StreamState, data: Buffer, arrival: Date, seq: number): void {
    state.chunks.push(data);
    state.bytes += data.length;
    state.lastSeq = seq;
    if (!state.oldestArrival) {
      state.oldestArrival = arrival;
      state.firstSeq = seq;
      const ms = state.config.bufferingIntervalSeconds * 1000;
      if (ms > 0) {
        state.timer = setTimeout(() => void deliver(state), ms);
        state.timer.unref();
      }
    }
  }

  function recordFails(): boolean {
    recordSequence += 1;
    const n = faults.failEveryNthRecord;
    if (n && n > 0 && recordSequence % n === 0) return true;
    const p = faults.failProbability;
    return p !== undefined && p > 0 && random() < p;
  }

  function streamOf(body: Record<string, unknown>): StreamState {
    const name = body.DeliveryStreamName;
    if (typeof name !== 'string' || !name) throw new ApiError('InvalidArgumentException', 'DeliveryStreamName is required.');
    const state = streams.get(name);
    if (!state) throw new ApiError('ResourceNotFoundException', `Firehose ${name} under account ${accountId} not found.`);
    return state;
  }

  function decodeRecord(value: unknown, index: number): Buffer {
    const data = (value as { Data?: unknown } | null)?.Data;
    if (typeof data !== 'string') throw new ApiError('InvalidArgumentException', `Record ${index}: Data is required.`);
    const bytes = Buffer.from(data, 'base64');
    if (bytes.length > FIREHOSE_LIMITS.maxRecordBytes) {
      throw new ApiError(
        'InvalidArgumentException',
        `Record ${index} is ${bytes.length} bytes; the maximum record size is ${FIREHOSE_LIMITS.maxRecordBytes} bytes (1,000 KiB) before base64 encoding.`,
      );
    }
    return bytes;
  }

  function checkThrottle(): void {
    if (throttleRemaining > 0) {
      throttleRemaining -= 1;
      counters.throttledCalls += 1;
      // 503 is the httpError the service model (installed SDK) gives this error; the SDK treats it as retryable.
      throw new ApiError('ServiceUnavailableException', 'Slow down.', 503);
    }
  }

  /** Accept the decoded records of one call; returns per-record results in request order. */
  async function accept(state: StreamState, records: Buffer[]): Promise<Array<{ RecordId: string } | { ErrorCode: string; ErrorMessage: string }>> {
    const arrival = clock();
    // The quota admits a prefix of the call; the rest is answered "Slow down." like a fault.
    const admitted = state.quota ? state.quota.admitRecords(records) : records.length;
    counters.throttledRecords += records.length - admitted;
    const fails = records.map((_, i) => i >= admitted || recordFails());
    counters.recordsFailed += fails.filter(Boolean).length;
    const accepted = records.filter((_, i) => !fails[i]);
    const buffer = (firstSeq: number): Promise<void>[] => {
      const writes: Promise<void>[] = [];
      accepted.forEach((data, i) => {
        append(state, data, arrival, firstSeq + i);
        // The buffer is delivered as soon as it reaches the size hint, even mid-call.
        if (state.bytes >= threshold(state)) writes.push(deliver(state));
      });
      if (state.config.bufferingIntervalSeconds === 0) writes.push(deliver(state));
      return writes;
    };
    // The promise behind the 200: the records are on disk before the producer hears "accepted".
    const writes = !accepted.length ? [] : state.journal ? await state.journal.append(accepted, arrival, buffer) : buffer(0);
    for (const data of accepted) {
      counters.recordsAccepted += 1;
      counters.bytesAccepted += data.length;
      for (let i = data.indexOf(10); i !== -1; i = data.indexOf(10, i + 1)) counters.linesAccepted += 1;
      // Each record rounded up to the next 5 KiB, as Firehose bills ingestion (./firehose-billing.ts).
      counters.billedBytes += billedRecordBytes(data.length);
    }
    // Waiting for the writes before answering gives producers back-pressure and tests determinism.
    await Promise.all(writes);
    return fails.map((failed) =>
      failed ? { ErrorCode: 'ServiceUnavailableException', ErrorMessage: 'Slow down.' } : { RecordId: randomUUID().replace(/-/g, '') },
    );
  }

  /** The requests/s quota refuses the whole call, before anything in it is looked at. */
  function checkRequestQuota(state: StreamState): void {
    if (state.quota && !state.quota.admitRequest()) {
      counters.throttledCalls += 1;
      throw new ApiError('ServiceUnavailableException', 'Slow down.', 503);
    }
  }

  async function putRecordBatch(body: Record<string, unknown>): Promise<unknown> {
    counters.putRecordBatchCalls += 1;
    checkThrottle();
    const state = streamOf(body);
    checkRequestQuota(state);
    const records = body.Records;
    if (!Array.isArray(records) || records.length === 0) {
      throw new ApiError('InvalidArgumentException', 'Records must contain at least 1 record.');
    }
    if (records.length > FIREHOSE_LIMITS.maxRecordsPerCall) {
      throw new ApiError(
        'InvalidArgumentException',
        `Records has ${records.length} records; a PutRecordBatch call accepts at most ${FIREHOSE_LIMITS.maxRecordsPerCall}.`,
      );
    }
    const decoded = records.map((r, i) => decodeRecord(r, i));
    const total = decoded.reduce((sum, b) => sum + b.length, 0);
    if (total > FIREHOSE_LIMITS.maxCallBytes) {
      throw new ApiError(
        'InvalidArgumentException',
        `The records total ${total} bytes; a PutRecordBatch call accepts at most ${FIREHOSE_LIMITS.maxCallBytes} bytes (4 MiB).`,
      );
    }
    const results = await accept(state, decoded);
    const failed = results.filter((r) => 'ErrorCode' in r).length;
    return { FailedPutCount: failed, Encrypted: false, RequestResponses: results };
  }

  async function putRecord(body: Record<string, unknown>): Promise<unknown> {
    counters.putRecordCalls += 1;
    checkThrottle();
    const state = streamOf(body);
    checkRequestQuota(state);
    const data = decodeRecord(body.Record, 0);
    const [result] = await accept(state, [data]);
    // PutRecord has no per-record status: a failed record fails the call.
    if (!result || 'ErrorCode' in result) throw new ApiError('ServiceUnavailableException', 'Slow down.', 503);
    return { RecordId: result.RecordId, Encrypted: false };
  }

  function describe(body: Record<string, unknown>): unknown {
    const { config, createdAt } = streamOf(body);
    return {
      DeliveryStreamDescription: {
        DeliveryStreamName: config.name,
        DeliveryStreamARN: arn(config.name),
        DeliveryStreamStatus: 'ACTIVE',
        DeliveryStreamType: 'DirectPut',
        VersionId: '1',
        CreateTimestamp: createdAt.getTime() / 1000,
        DeliveryStreamEncryptionConfiguration: { Status: 'DISABLED' },
        Destinations: [
          {
            DestinationId: 'destinationId-000000000001',
            ExtendedS3DestinationDescription: {
              RoleARN: `arn:aws:iam::${accountId}:role/local-firehose`,
              BucketARN: `arn:aws:s3:::${options.store.location}`,
              Prefix: config.dataPrefix,
              ErrorOutputPrefix: config.errorPrefix,
              BufferingHints: { SizeInMBs: config.bufferingSizeMiB, IntervalInSeconds: config.bufferingIntervalSeconds },
              CompressionFormat: config.compression ?? 'GZIP',
              EncryptionConfiguration: { NoEncryptionConfig: 'NoEncryption' },
            },
          },
        ],
        HasMoreDestinations: false,
      },
    };
  }

  function list(): unknown {
    return { DeliveryStreamNames: [...streams.keys()].sort(), HasMoreDeliveryStreams: false };
  }

  async function dispatch(target: string, body: Record<string, unknown>): Promise<unknown> {
    switch (target) {
      case 'Firehose_20150804.PutRecordBatch':
        counters.calls += 1;
        return putRecordBatch(body);
      case 'Firehose_20150804.PutRecord':
        counters.calls += 1;
        return putRecord(body);
      case 'Firehose_20150804.DescribeDeliveryStream':
        return describe(body);
      case 'Firehose_20150804.ListDeliveryStreams':
        return list();
      default:
        throw new ApiError('UnknownOperationException', `Operation ${target || '(no X-Amz-Target)'} is not implemented by the local Firehose endpoint.`);
    }
  }


  /** Set by close(): Put calls are refused from then on, so the final flush delivers every record answered with 200. */
  let closing = false;
  const inFlight = new Set<Promise<void>>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (closing && /\.PutRecord(Batch)?$/.test(String(req.headers['x-amz-target'] ?? ''))) {
        throw new ApiError('ServiceUnavailableException', 'The local Firehose endpoint is shutting down.', 503);
      }
      if (req.method !== 'POST') throw new ApiError('UnknownOperationException', `${req.method} is not supported; the Firehose API is POST /.`);
      const request = await readJsonRequest(req, MAX_HTTP_BODY_BYTES);
      if ('tooLarge' in request) throw new ApiError('InvalidArgumentException', `Request body of ${request.tooLarge} bytes exceeds the 4 MiB per-call limit.`);
      if ('notJson' in request) throw new ApiError('SerializationException', request.notJson);
      const target = String(req.headers['x-amz-target'] ?? '');
      sendAwsJson(res, 200, await dispatch(target, request.body));
    } catch (err) {
      const target = String(req.headers['x-amz-target'] ?? '');
      if (target.endsWith('.PutRecordBatch') || target.endsWith('.PutRecord')) counters.rejectedCalls += 1;
      if (err instanceof ApiError) sendAwsJson(res, err.status, { __type: err.type, message: err.message }, err.type);
      else sendAwsJson(res, 500, { __type: 'InternalFailure', message: (err as Error).message }, 'InternalFailure');
    }
  }

  // Before accepting anything: deliver what a previous process accepted but never delivered.
  if (options.journal) {
    for (const state of streams.values()) {
      const { journal, undelivered } = await StreamJournal.open(path.join(options.journal.dir, state.config.name), objectExists, options.journal.sync);
      state.journal = journal;
      for (const r of undelivered) {
        append(state, r.data, r.arrival, r.seq);
        if (state.bytes >= threshold(state)) void deliver(state);
      }
      void deliver(state);
      counters.recordsReplayed += undelivered.length;
    }
    await drain();
  }

  const server: Server = createServer((req, res) => {
    const handling = handle(req, res);
    inFlight.add(handling);
    void handling.finally(() => inFlight.delete(handling));
  });
  // Requests may be large and slow on a busy machine; never cut a producer off mid-call.
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  async function flush(): Promise<void> {
    for (const state of streams.values()) void deliver(state);
    await drain();
  }

  async function drain(): Promise<void> {
    while (pending.size > 0) await Promise.all([...pending]);
    if (deliveryErrors.length > 0) {
      const errors = deliveryErrors.splice(0);
      throw new AggregateError(errors, errors.map((e) => e.message).join('\n'));
    }
  }

  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    counters: () => ({ ...counters }),
    objectKeys: () => [...keys],
    setFaults,
    flush,
    close() {
      closed ??= (async () => {
        closing = true;
        // Calls already being handled are answered first; their records are then in the buffer.
        while (inFlight.size > 0) await Promise.all([...inFlight]);
        try {
          await flush();
        } finally {
          for (const state of streams.values()) await state.journal?.close();
          server.closeIdleConnections();
          await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
        }
      })();
      return closed;
    },
  };
}

/** Where the local endpoint journals accepted records: `<dataDir>/firehose-journal/<stream>/`. */
export const firehoseJournalDir = (dataDir: string): string => path.join(dataDir, 'firehose-journal');

/**
 * The local default: one `<dataset>-raw` stream per dataset, writing into
 * `<dataDir>/buckets/raw` (the raw bucket's local mirror), journaled under
 * `<dataDir>/firehose-journal`. `npm run local -- serve` calls this.
 */
export async function startLocalFirehose(options: {
  dataDir: string;
  datasets: DatasetConfig[];
  port?: number;
  faults?: FirehoseFaults;
  clock?: () => Date;
  /** Default: LOCAL_FIREHOSE_QUOTA (./firehose-quota.ts), else none. */
  quota?: FirehoseQuota;
}): Promise<FirehoseServer> {
  const quota = options.quota ?? quotaFromEnv(process.env);
  return startFirehoseServer({
    store: new LocalObjectStore(path.join(options.dataDir, 'buckets', 'raw')),
    streams: streamsFromDatasets(options.datasets),
    journal: { dir: firehoseJournalDir(options.dataDir) },
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.faults ? { faults: options.faults } : {}),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(quota ? { quota } : {}),
  });
}
