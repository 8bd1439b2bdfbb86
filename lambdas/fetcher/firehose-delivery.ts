/**
 * Delivers packed records to a Firehose stream. PutRecordBatch can answer 200 with
 * FailedPutCount > 0; only the failed entries are sent again, with backoff:
 * - throttling (`ServiceUnavailableException` & co., whole call or per entry) is retried for as
 *   long as the invocation's time budget allows (a first full load in a 1 MiB/s region is
 *   throttled for minutes), then the run returns its cursor rather than failing; from the first
 *   throttling on, every call of the instance is paced at the rate the stream accepts
 *   (./delivery-pacer.ts);
 * - other transient failures (`InternalFailure`, 5xx, resets, deadlines) get `maxAttempts`;
 * - permanent rejections (`InvalidArgument` for one entry, or a whole call refused with
 *   `InvalidArgumentException`) are narrowed down to the rows that cause them, which are handed
 *   back as rejected (the caller quarantines them) so one bad row cannot block a dataset forever.
 * Every call has a total deadline, so an endpoint that never answers fails in bounded time.
 */
import { FirehoseClient, PutRecordBatchCommand } from '@aws-sdk/client-firehose';
import { batchRecords, MAX_BATCH_BYTES, MAX_BATCH_RECORDS } from './record-packer';
import { DeliveryPacer } from './delivery-pacer';
import { backoffDelay, type RetryPolicy } from './retry-policy';
import { retryDeadline, type BudgetMs } from './time-budget';
import { DeliveryError } from '../../runtime/pipeline-error';

export interface RecordError {
  code: string;
  message: string;
}

export interface PutBatchResult {
  /** Per input record: undefined when accepted, else its error. */
  errors: (RecordError | undefined)[];
}

/**
 * Bytes of a record encoded per base64 call: a multiple of 3 (no padding mid-record) whose 64 KiB
 * of text stays a young-generation string, collected at the next scavenge.
 */
const BASE64_SLICE_BYTES = 3 * 16_384;
const DATA_OPEN = '{"Data":"';
const DATA_CLOSE = '"}';

/**
 * PutRecordBatch's JSON body (`{"DeliveryStreamName":…,"Records":[{"Data":"<base64>"},…]}`, what
 * the SDK's own serializer writes), built once at its exact size with Node's native base64. The
 * SDK's serializer (@smithy/core JSON codec v2) base64-encodes byte by byte in JavaScript into a
 * buffer that starts at 2 KiB and doubles: ~16 MB of buffers for a 4 MiB batch, and per-byte CPU.
 * Those buffers outlive the call's network round trip, so they reach the old generation and stay
 * until a full collection: they were most of the fetcher's peak RSS (docs/bench.md).
 */
export function putRecordBatchBody(streamName: string, records: readonly Uint8Array[], bodies?: BatchBodyBuffers): Buffer {
  const head = `{"DeliveryStreamName":${JSON.stringify(streamName)},"Records":[`;
  let size = Buffer.byteLength(head, 'utf8') + 2 + Math.max(0, records.length - 1);
  for (const r of records) size += DATA_OPEN.length + 4 * Math.ceil(r.length / 3) + DATA_CLOSE.length;
  const body = bodies ? bodies.take(size) : Buffer.allocUnsafe(size);
  let at = body.write(head, 0, 'utf8');
  records.forEach((r, i) => {
    if (i) at = body.write(',', at, 'latin1') + at;
    at += body.write(DATA_OPEN, at, 'latin1');
    const bytes = Buffer.isBuffer(r) ? r : Buffer.from(r.buffer, r.byteOffset, r.byteLength);
    for (let from = 0; from < bytes.length; from += BASE64_SLICE_BYTES) {
      at += body.write(bytes.toString('base64', from, Math.min(bytes.length, from + BASE64_SLICE_BYTES)), at, 'latin1');
    }
    at += body.write(DATA_CLOSE, at, 'latin1');
  });
  at += body.write(']}', at, 'latin1');
  if (at !== size) throw new Error(`PutRecordBatch body for ${streamName}: wrote ${at} bytes, sized ${size}`);
  return body;
}

/**
 * Reusable request bodies, for the same reason as record-packer.ts RecordBufferPool: a body lives
 * for its call's round trip, long enough to reach the old generation. One buffer per call in
 * flight, each large enough for the largest batch (4 MiB of records is ~5.6 MB of base64 JSON).
 */
export class BatchBodyBuffers {
  private readonly free: Buffer[] = [];

  constructor(
    readonly capacity = Math.ceil((4 * MAX_BATCH_BYTES) / 3) + MAX_BATCH_RECORDS * 16 + 1024,
    private readonly maxFree = 8,
  ) {}

  /** A body of `size` bytes: a view of a reused buffer, or a new buffer when it does not fit. */
  take(size: number): Buffer {
    if (size > this.capacity) return Buffer.allocUnsafe(size);
    return (this.free.pop() ?? Buffer.allocUnsafeSlow(this.capacity)).subarray(0, size);
  }

  /** Buffers waiting for reuse (for tests). */
  get available(): number {
    return this.free.length;
  }

  /** A body whose call was answered (so nothing writes or reads it any more) is reused. */
  release(body: Buffer): void {
    if (this.free.length < this.maxFree && body.byteOffset === 0 && body.buffer.byteLength === this.capacity) this.free.push(Buffer.from(body.buffer, 0, this.capacity));
  }
}

/**
 * The command with its body from putRecordBatchBody: the SDK serializes an empty record list (its
 * headers, endpoint and signing stay its own) and the body is swapped in before content-length and
 * the signature are computed. The command's input keeps its records, so anything that reads the
 * input (aws-sdk-client-mock in tests) sees the call as it is.
 */
export function putRecordBatchCommand(streamName: string, records: readonly Buffer[], onBody?: (body: Buffer) => void, bodies?: BatchBodyBuffers): PutRecordBatchCommand {
  const command = new PutRecordBatchCommand({ DeliveryStreamName: streamName, Records: records.map((Data) => ({ Data })) });
  command.middlewareStack.add(
    (next) => (args) => next({ ...args, input: { DeliveryStreamName: streamName, Records: [] } }),
    { step: 'initialize', priority: 'low', name: 'fetcherEmptyRecordsForSerializer' },
  );
  command.middlewareStack.add(
    (next) => (args) => {
      const request = args.request as { body?: unknown; headers?: Record<string, string> };
      const body = putRecordBatchBody(streamName, records, bodies);
      onBody?.(body);
      request.body = body;
      if (request.headers) {
        for (const h of Object.keys(request.headers)) if (h.toLowerCase() === 'content-length') delete request.headers[h];
        request.headers['content-length'] = String(body.length);
      }
      return next(args);
    },
    { step: 'build', priority: 'high', name: 'fetcherNativeRecordBatchBody' },
  );
  return command;
}

/** The one AWS call, as a small adapter the delivery logic is tested through. */
export async function putRecordBatch(client: FirehoseClient, streamName: string, records: Buffer[], timeoutMs = 30_000, bodies?: BatchBodyBuffers): Promise<PutBatchResult> {
  let body: Buffer | undefined;
  const res = await client.send(
    putRecordBatchCommand(streamName, records, (b) => (body = b), bodies),
    // The handler's requestTimeout stops at the response headers; this bounds the whole call.
    { abortSignal: AbortSignal.timeout(timeoutMs) },
  );
  // Answered: the body was sent whole. (After a failure it is left to the GC: an aborted request
  // may still be writing it.)
  if (body) bodies?.release(body);
  const responses = res.RequestResponses ?? [];
  if (!res.FailedPutCount) return { errors: records.map(() => undefined) };
  // Entries answer in request order; a missing entry is treated as failed, never as accepted.
  return {
    errors: records.map((_, i) => {
      const r = responses[i];
      if (!r) return { code: 'MissingResponseEntry', message: 'no response entry for this record' };
      return r.ErrorCode ? { code: r.ErrorCode, message: r.ErrorMessage ?? '' } : undefined;
    }),
  };
}

export class FirehoseDeliveryError extends DeliveryError {
  override name = 'FirehoseDeliveryError';
}

/** Codes that mean "slow down": retried for as long as the time budget lasts. */
const THROTTLING = new Set(['ServiceUnavailableException', 'ThrottlingException', 'LimitExceededException', 'KMSThrottlingException']);
/** Per-entry codes that are transient without being throttling. Every other code is permanent. */
const TRANSIENT_RECORD_CODES = new Set(['InternalFailure', 'MissingResponseEntry']);

/** A row Firehose permanently refused: its NDJSON line (without "\n") and the error. */
export interface RejectedRow {
  line: string;
  errorCode: string;
  errorMessage: string;
}

export interface DeliveryStats {
  records: number;
  bytes: number;
  calls: number;
  retriedRecords: number;
  /** Calls answered with throttling, whole or for some entries. */
  throttledCalls: number;
  rejected: RejectedRow[];
}

/** The stats of a delivery that threw, as far as it got. */
export const partialDeliveryStats = (err: unknown): DeliveryStats | undefined => (err as { deliveryStats?: DeliveryStats } | undefined)?.deliveryStats;

export const emptyDeliveryStats = (): DeliveryStats => ({ records: 0, bytes: 0, calls: 0, retriedRecords: 0, throttledCalls: 0, rejected: [] });

export interface DeliverOptions {
  /** What the invocation's time budget leaves for calls and waits; without it throttling gets `maxAttempts` too. */
  budgetMs?: BudgetMs;
}

export class FirehoseDelivery {
  private readonly bodies = new BatchBodyBuffers();

  constructor(
    private readonly client: FirehoseClient,
    private readonly streamName: string,
    private readonly retry: RetryPolicy,
    /** Batches sent concurrently: bounded so one invocation cannot flood the stream's quota. */
    private readonly maxInFlight = 4,
    /** Total deadline of one PutRecordBatch call. */
    private readonly callTimeoutMs = 30_000,
    /** The stream's send rate after throttling, shared by every call of this instance (./delivery-pacer.ts). */
    private readonly pacer = new DeliveryPacer(),
  ) {}

  /**
   * Sends every record; resolves once each row is accepted or permanently rejected (listed in
   * `rejected`). Throws FirehoseDeliveryError when transient failures outlast the attempts, and
   * TimeBudgetExhaustedError when the budget cannot cover the next wait.
   */
  async deliver(records: Buffer[], options: DeliverOptions = {}): Promise<DeliveryStats> {
    const stats = emptyDeliveryStats();
    stats.records = records.length;
    for (const r of records) stats.bytes += r.length;
    try {
      await this.deliverAll(records, stats, options.budgetMs);
    } catch (err) {
      // The calls and throttling so far still count in the run's stats (see fetch-run.ts).
      if (err instanceof Error) Object.assign(err, { deliveryStats: stats });
      throw err;
    }
    return stats;
  }

  private async deliverAll(records: Buffer[], stats: DeliveryStats, budgetMs: BudgetMs | undefined): Promise<void> {
    const batches = batchRecords(records);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        await this.deliverBatch(batch, stats, budgetMs);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.maxInFlight, batches.length) }, worker));
  }

  /**
   * One batch, call after call until every record is accepted or refused for good. Once the stream
   * has throttled, each call waits for its slot at the pacer's rate and carries what the rate
   * allows; a throttled call's records go first in the next call, so the batch keeps its order.
   */
  private async deliverBatch(batch: Buffer[], stats: DeliveryStats, budgetMs: BudgetMs | undefined): Promise<void> {
    let pending = batch;
    let lastProblem: string | undefined;
    let failures = 0;
    let waits = 0;
    /** Wait before the next call besides the pacer's: a backoff after a failure. */
    let delayMs = 0;
    while (pending.length) {
      const call = this.pacedSlice(pending);
      const rest = pending.slice(call.length);
      const waitMs = Math.max(delayMs, this.pacer.reserve(bytesOf(call)));
      let deadlineMs = this.callTimeoutMs;
      if (waitMs > 0 || lastProblem !== undefined || this.pacer.bytesPerSecond !== undefined) {
        const why = lastProblem ?? `paced to ${Math.round((this.pacer.bytesPerSecond ?? 0) / 1024)} KiB/s after throttling`;
        deadlineMs = retryDeadline(budgetMs, waitMs, this.callTimeoutMs, `Firehose delivery to ${this.streamName} (${why})`);
        if (waitMs > 0) await this.retry.sleep(waitMs);
      }
      delayMs = 0;
      let retry: Buffer[] = [];
      let throttled = false;
      const sentAt = this.pacer.sent();
      try {
        stats.calls++;
        const { errors } = await putRecordBatch(this.client, this.streamName, call, deadlineMs, this.bodies);
        const refused: { record: Buffer; error: RecordError }[] = [];
        const codes = new Set<string>();
        let acceptedBytes = 0;
        call.forEach((record, i) => {
          const error = errors[i];
          if (!error) acceptedBytes += record.length;
          else if (THROTTLING.has(error.code) || TRANSIENT_RECORD_CODES.has(error.code)) {
            throttled ||= THROTTLING.has(error.code);
            codes.add(error.code);
            retry.push(record);
          } else refused.push({ record, error });
        });
        this.pacer.answered(sentAt, acceptedBytes, throttled);
        for (const { record, error } of refused) await this.narrowDown([record], error, stats, budgetMs);
        if (!retry.length) {
          // Progress: the rest of the batch starts its own count.
          pending = rest;
          lastProblem = undefined;
          failures = 0;
          waits = 0;
          continue;
        }
        lastProblem = `${retry.length} of ${call.length} records failed (${[...codes].join(', ')})`;
      } catch (err) {
        const name = (err as Error).name;
        if (name === 'InvalidArgumentException') {
          // The whole call was refused for what one record holds: find it instead of failing forever.
          await this.narrowDown(call, { code: name, message: (err as Error).message }, stats, budgetMs);
          pending = rest;
          continue;
        }
        if (THROTTLING.has(name)) {
          throttled = true;
          this.pacer.answered(sentAt, 0, true);
        } else if (!isTransient(err)) {
          throw new FirehoseDeliveryError(`PutRecordBatch to ${this.streamName} failed: ${name}: ${(err as Error).message}`, { cause: err });
        }
        lastProblem = name === 'AbortError' || name === 'TimeoutError' ? `no answer within the ${deadlineMs / 1000} s call deadline` : `${name}: ${(err as Error).message}`;
        retry = call;
      }
      stats.retriedRecords += retry.length;
      if (throttled) stats.throttledCalls++;
      // Throttling is bounded by the time budget (when there is one), everything else by attempts.
      if (!throttled || !budgetMs) failures++;
      if (failures >= this.retry.maxAttempts) {
        throw new FirehoseDeliveryError(
          `Firehose stream ${this.streamName} did not accept ${retry.length} record(s) after ${this.retry.maxAttempts} attempts: ${lastProblem}`,
        );
      }
      // Throttled: the pacer's lower rate spaces the calls, with the first backoff step as a floor
      // so a stream whose quota others spend is not asked in a tight loop. Other failures back off.
      delayMs = backoffDelay(this.retry, throttled ? 1 : Math.min(++waits, 20));
      pending = retry.length === call.length ? pending : [...retry, ...rest];
    }
  }

  /** What the next call carries: everything while unpaced, else what the rate allows (at least one record). */
  private pacedSlice(pending: Buffer[]): Buffer[] {
    const limit = this.pacer.callBytes();
    if (limit === Infinity) return pending;
    let bytes = pending[0]!.length;
    let n = 1;
    while (n < pending.length && bytes + pending[n]!.length <= limit) bytes += pending[n++]!.length;
    return n === pending.length ? pending : pending.slice(0, n);
  }

  /**
   * Permanently refused records: halve a refused call until single records, then split a
   * record into one record per row, so only the rows Firehose itself refuses are rejected.
   */
  private async narrowDown(records: Buffer[], error: RecordError, stats: DeliveryStats, budgetMs: BudgetMs | undefined): Promise<void> {
    if (records.length > 1) {
      const half = Math.ceil(records.length / 2);
      await this.deliverBatch(records.slice(0, half), stats, budgetMs);
      await this.deliverBatch(records.slice(half), stats, budgetMs);
      return;
    }
    const record = records[0]!;
    const lines = record.toString('utf8').split('\n').filter(Boolean);
    if (lines.length > 1) {
      await this.deliverAll(lines.map((l) => Buffer.from(`${l}\n`, 'utf8')), stats, budgetMs);
      return;
    }
    stats.rejected.push({ line: lines[0] ?? '', errorCode: error.code, errorMessage: error.message });
  }
}

const bytesOf = (records: readonly Buffer[]): number => records.reduce((sum, r) => sum + r.length, 0);

function isTransient(err: unknown): boolean {
  const e = err as { name?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number }; code?: string };
  const status = e.$metadata?.httpStatusCode;
  return (
    Boolean(e.$retryable) ||
    (status !== undefined && status >= 500) ||
    // Our own per-call deadline and the handler's connection/request timeouts.
    e.name === 'AbortError' ||
    e.name === 'TimeoutError' ||
    ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE'].includes(e.code ?? '')
  );
}
