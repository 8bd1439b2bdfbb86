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
 *
 * The stream buffers are ./firehose-stream.ts, object writes ./firehose-objects.ts, injected faults
 * ./firehose-faults.ts; this module answers the API calls, one method per operation.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { billedRecordBytes } from './firehose-billing';
import type { DatasetConfig } from '../runtime/dataset-config';
import { LocalObjectStore, type ObjectStore } from '../runtime/object-store';
import { firehoseDataPrefix, firehoseErrorPrefix } from '../runtime/storage-layout';
import { readJsonRequest, sendAwsJson } from './aws-json-protocol';
import { InjectedFaults } from './firehose-faults';
import type { SyncFile } from './firehose-journal';
import { ObjectDelivery } from './firehose-objects';
import { checkQuota, quotaFromEnv, StreamQuota, type FirehoseQuota } from './firehose-quota';
import { checkStreamConfig, DeliveryStream } from './firehose-stream';
import { zeroCounters, type FirehoseCounters, type FirehoseFaults, type FirehoseStreamConfig } from './firehose-types';
import { RequestRefusedError } from '../runtime/pipeline-error';

export type { FirehoseCounters, FirehoseFaults, FirehoseStreamConfig };

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

class ApiError extends RequestRefusedError {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
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

/** The records of a PutRecordBatch call, decoded, within the service's per-call limits. */
function decodeBatch(records: unknown): Buffer[] {
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
  return decoded;
}

type RecordResult = { RecordId: string } | { ErrorCode: string; ErrorMessage: string };

const isPut = (target: string): boolean => target.endsWith('.PutRecordBatch') || target.endsWith('.PutRecord');

/** The endpoint: one method per API operation, over the streams, their faults, quota and journal. */
class LocalFirehose {
  readonly counters: FirehoseCounters = zeroCounters();
  readonly faults: InjectedFaults;
  readonly delivery: ObjectDelivery;
  private readonly streams = new Map<string, DeliveryStream>();
  private readonly region: string;
  private readonly accountId: string;
  private readonly clock: () => Date;
  /** Set by close(): Put calls are refused from then on, so the final flush delivers every record answered with 200. */
  private closing = false;
  private readonly inFlight = new Set<Promise<void>>();
  private server: Server | undefined;
  private closed: Promise<void> | undefined;

  constructor(options: FirehoseServerOptions) {
    this.region = options.region ?? 'us-east-1';
    this.accountId = options.accountId ?? '000000000000';
    this.clock = options.clock ?? (() => new Date());
    this.delivery = new ObjectDelivery(options.store, this.counters);
    if (options.quota) checkQuota(options.quota, 'Local Firehose quota');
    for (const config of options.streams) {
      checkStreamConfig(config);
      const quota = options.quota ? new StreamQuota(options.quota, options.quotaClock) : undefined;
      this.streams.set(config.name, new DeliveryStream(config, this.delivery, this.clock(), quota));
    }
    this.faults = new InjectedFaults(options.faults ?? {});
  }

  /** Before accepting anything: deliver what a previous process accepted but never delivered. */
  async replayJournals(journal: { dir: string; sync?: SyncFile }): Promise<void> {
    for (const stream of this.streams.values()) this.counters.recordsReplayed += await stream.openJournal(journal.dir, journal.sync);
    await this.delivery.drain();
  }

  async listen(port: number): Promise<number> {
    const server = createServer((req, res) => {
      const handling = this.handle(req, res);
      this.inFlight.add(handling);
      void handling.finally(() => this.inFlight.delete(handling));
    });
    this.server = server;
    // Requests may be large and slow on a busy machine; never cut a producer off mid-call.
    server.requestTimeout = 0;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return (server.address() as AddressInfo).port;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = String(req.headers['x-amz-target'] ?? '');
    try {
      if (this.closing && /\.PutRecord(Batch)?$/.test(target)) {
        throw new ApiError('ServiceUnavailableException', 'The local Firehose endpoint is shutting down.', 503);
      }
      if (req.method !== 'POST') throw new ApiError('UnknownOperationException', `${req.method} is not supported; the Firehose API is POST /.`);
      const request = await readJsonRequest(req, MAX_HTTP_BODY_BYTES);
      if ('tooLarge' in request) throw new ApiError('InvalidArgumentException', `Request body of ${request.tooLarge} bytes exceeds the 4 MiB per-call limit.`);
      if ('notJson' in request) throw new ApiError('SerializationException', request.notJson);
      sendAwsJson(res, 200, await this.dispatch(target, request.body));
    } catch (err) {
      if (isPut(target)) this.counters.rejectedCalls += 1;
      if (err instanceof ApiError) sendAwsJson(res, err.status, { __type: err.type, message: err.message }, err.type);
      else sendAwsJson(res, 500, { __type: 'InternalFailure', message: (err as Error).message }, 'InternalFailure');
    }
  }

  private async dispatch(target: string, body: Record<string, unknown>): Promise<unknown> {
    switch (target) {
      case 'Firehose_20150804.PutRecordBatch':
        this.counters.calls += 1;
        return this.putRecordBatch(body);
      case 'Firehose_20150804.PutRecord':
        this.counters.calls += 1;
        return this.putRecord(body);
      case 'Firehose_20150804.DescribeDeliveryStream':
        return this.describeDeliveryStream(body);
      case 'Firehose_20150804.ListDeliveryStreams':
        return this.listDeliveryStreams();
      default:
        throw new ApiError('UnknownOperationException', `Operation ${target || '(no X-Amz-Target)'} is not implemented by the local Firehose endpoint.`);
    }
  }

  private async putRecordBatch(body: Record<string, unknown>): Promise<unknown> {
    this.counters.putRecordBatchCalls += 1;
    this.checkThrottle();
    const stream = this.streamOf(body);
    this.checkRequestQuota(stream);
    const results = await this.accept(stream, decodeBatch(body.Records));
    const failed = results.filter((r) => 'ErrorCode' in r).length;
    return { FailedPutCount: failed, Encrypted: false, RequestResponses: results };
  }

  private async putRecord(body: Record<string, unknown>): Promise<unknown> {
    this.counters.putRecordCalls += 1;
    this.checkThrottle();
    const stream = this.streamOf(body);
    this.checkRequestQuota(stream);
    const data = decodeRecord(body.Record, 0);
    const [result] = await this.accept(stream, [data]);
    // PutRecord has no per-record status: a failed record fails the call.
    if (!result || 'ErrorCode' in result) throw new ApiError('ServiceUnavailableException', 'Slow down.', 503);
    return { RecordId: result.RecordId, Encrypted: false };
  }

  private describeDeliveryStream(body: Record<string, unknown>): unknown {
    const { config, createdAt } = this.streamOf(body);
    return {
      DeliveryStreamDescription: {
        DeliveryStreamName: config.name,
        DeliveryStreamARN: `arn:aws:firehose:${this.region}:${this.accountId}:deliverystream/${config.name}`,
        DeliveryStreamStatus: 'ACTIVE',
        DeliveryStreamType: 'DirectPut',
        VersionId: '1',
        CreateTimestamp: createdAt.getTime() / 1000,
        DeliveryStreamEncryptionConfiguration: { Status: 'DISABLED' },
        Destinations: [
          {
            DestinationId: 'destinationId-000000000001',
            ExtendedS3DestinationDescription: {
              RoleARN: `arn:aws:iam::${this.accountId}:role/local-firehose`,
              BucketARN: `arn:aws:s3:::${this.delivery.store.location}`,
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

  private listDeliveryStreams(): unknown {
    return { DeliveryStreamNames: [...this.streams.keys()].sort(), HasMoreDeliveryStreams: false };
  }

  private streamOf(body: Record<string, unknown>): DeliveryStream {
    const name = body.DeliveryStreamName;
    if (typeof name !== 'string' || !name) throw new ApiError('InvalidArgumentException', 'DeliveryStreamName is required.');
    const stream = this.streams.get(name);
    if (!stream) throw new ApiError('ResourceNotFoundException', `Firehose ${name} under account ${this.accountId} not found.`);
    return stream;
  }

  private checkThrottle(): void {
    if (this.faults.takeThrottle()) {
      this.counters.throttledCalls += 1;
      // 503 is the httpError the service model (installed SDK) gives this error; the SDK treats it as retryable.
      throw new ApiError('ServiceUnavailableException', 'Slow down.', 503);
    }
  }

  /** The requests/s quota refuses the whole call, before anything in it is looked at. */
  private checkRequestQuota(stream: DeliveryStream): void {
    if (stream.quota && !stream.quota.admitRequest()) {
      this.counters.throttledCalls += 1;
      throw new ApiError('ServiceUnavailableException', 'Slow down.', 503);
    }
  }

  /** Accept the decoded records of one call; returns per-record results in request order. */
  private async accept(stream: DeliveryStream, records: Buffer[]): Promise<RecordResult[]> {
    const arrival = this.clock();
    // The quota admits a prefix of the call; the rest is answered "Slow down." like a fault.
    const admitted = stream.quota ? stream.quota.admitRecords(records) : records.length;
    this.counters.throttledRecords += records.length - admitted;
    const fails = records.map((_, i) => i >= admitted || this.faults.recordFails());
    this.counters.recordsFailed += fails.filter(Boolean).length;
    const accepted = records.filter((_, i) => !fails[i]);
    const buffer = (firstSeq: number): Promise<void>[] => {
      const writes: Promise<void>[] = [];
      accepted.forEach((data, i) => {
        stream.append(data, arrival, firstSeq + i);
        // The buffer is delivered as soon as it reaches the size hint, even mid-call.
        if (stream.full) writes.push(stream.deliver());
      });
      if (stream.config.bufferingIntervalSeconds === 0) writes.push(stream.deliver());
      return writes;
    };
    // The promise behind the 200: the records are on disk before the producer hears "accepted".
    const writes = !accepted.length ? [] : stream.journal ? await stream.journal.append(accepted, arrival, buffer) : buffer(0);
    this.countAccepted(accepted);
    // Waiting for the writes before answering gives producers back-pressure and tests determinism.
    await Promise.all(writes);
    return fails.map((failed) =>
      failed ? { ErrorCode: 'ServiceUnavailableException', ErrorMessage: 'Slow down.' } : { RecordId: randomUUID().replace(/-/g, '') },
    );
  }

  private countAccepted(accepted: Buffer[]): void {
    const { counters } = this;
    for (const data of accepted) {
      counters.recordsAccepted += 1;
      counters.bytesAccepted += data.length;
      for (let i = data.indexOf(10); i !== -1; i = data.indexOf(10, i + 1)) counters.linesAccepted += 1;
      // Each record rounded up to the next 5 KiB, as Firehose bills ingestion (./firehose-billing.ts).
      counters.billedBytes += billedRecordBytes(data.length);
    }
  }

  async flush(): Promise<void> {
    for (const stream of this.streams.values()) void stream.deliver();
    await this.delivery.drain();
  }

  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing = true;
      // Calls already being handled are answered first; their records are then in the buffer.
      while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
      try {
        await this.flush();
      } finally {
        for (const stream of this.streams.values()) await stream.journal?.close();
        const server = this.server!;
        server.closeIdleConnections();
        await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
      }
    })();
    return this.closed;
  }
}

export async function startFirehoseServer(options: FirehoseServerOptions): Promise<FirehoseServer> {
  const firehose = new LocalFirehose(options);
  if (options.journal) await firehose.replayJournals(options.journal);
  const port = await firehose.listen(options.port ?? 0);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    counters: () => ({ ...firehose.counters }),
    objectKeys: () => [...firehose.delivery.keys],
    setFaults: (faults) => firehose.faults.set(faults),
    flush: () => firehose.flush(),
    close: () => firehose.close(),
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
