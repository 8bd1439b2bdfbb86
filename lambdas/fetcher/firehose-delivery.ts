/**
 * Delivers packed records to a Firehose stream. PutRecordBatch can answer 200 with
 * FailedPutCount > 0; only the failed entries are sent again, with backoff, until every record
 * is accepted or the attempts run out (then the caller must not advance its checkpoint).
 */
import { FirehoseClient, PutRecordBatchCommand } from '@aws-sdk/client-firehose';
import { batchRecords } from './record-packer';
import { backoffDelay, type RetryPolicy } from './retry-policy';

export interface PutBatchResult {
  /** Per input record: undefined when accepted, else the error code. */
  errors: (string | undefined)[];
}

/** The one AWS call, as a small adapter the delivery logic is tested through. */
export async function putRecordBatch(client: FirehoseClient, streamName: string, records: Buffer[]): Promise<PutBatchResult> {
  const res = await client.send(
    new PutRecordBatchCommand({ DeliveryStreamName: streamName, Records: records.map((Data) => ({ Data })) }),
  );
  const responses = res.RequestResponses ?? [];
  if (!res.FailedPutCount) return { errors: records.map(() => undefined) };
  // Entries answer in request order; a missing entry is treated as failed, never as accepted.
  return { errors: records.map((_, i) => (responses[i] ? responses[i].ErrorCode || undefined : 'MissingResponseEntry')) };
}

export class FirehoseDeliveryError extends Error {
  override name = 'FirehoseDeliveryError';
}

const THROTTLING = new Set(['ServiceUnavailableException', 'ThrottlingException', 'LimitExceededException']);

export interface DeliveryStats {
  records: number;
  bytes: number;
  calls: number;
  retriedRecords: number;
}

export class FirehoseDelivery {
  constructor(
    private readonly client: FirehoseClient,
    private readonly streamName: string,
    private readonly retry: RetryPolicy,
    /** Batches sent concurrently: bounded so one invocation cannot flood the stream's quota. */
    private readonly maxInFlight = 4,
  ) {}

  /** Sends every record; resolves once all are accepted, else throws FirehoseDeliveryError. */
  async deliver(records: Buffer[]): Promise<DeliveryStats> {
    const stats: DeliveryStats = { records: records.length, bytes: 0, calls: 0, retriedRecords: 0 };
    for (const r of records) stats.bytes += r.length;
    const batches = batchRecords(records);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        await this.deliverBatch(batch, stats);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.maxInFlight, batches.length) }, worker));
    return stats;
  }

  private async deliverBatch(batch: Buffer[], stats: DeliveryStats): Promise<void> {
    let pending = batch;
    let lastProblem = '';
    for (let attempt = 1; attempt <= this.retry.maxAttempts; attempt++) {
      try {
        stats.calls++;
        const { errors } = await putRecordBatch(this.client, this.streamName, pending);
        const failed = pending.filter((_, i) => errors[i] !== undefined);
        if (!failed.length) return;
        const codes = [...new Set(errors.filter(Boolean))].join(', ');
        lastProblem = `${failed.length} of ${pending.length} records failed (${codes})`;
        stats.retriedRecords += failed.length;
        pending = failed;
      } catch (err) {
        const name = (err as Error).name;
        if (!THROTTLING.has(name) && !isTransient(err)) {
          throw new FirehoseDeliveryError(
            `PutRecordBatch to ${this.streamName} failed: ${name}: ${(err as Error).message}`,
            { cause: err },
          );
        }
        lastProblem = `${name}: ${(err as Error).message}`;
        stats.retriedRecords += pending.length;
      }
      if (attempt < this.retry.maxAttempts) await this.retry.sleep(backoffDelay(this.retry, attempt));
    }
    throw new FirehoseDeliveryError(
      `Firehose stream ${this.streamName} did not accept ${pending.length} record(s) after ${this.retry.maxAttempts} attempts: ${lastProblem}`,
    );
  }
}

function isTransient(err: unknown): boolean {
  const e = err as { $retryable?: unknown; $metadata?: { httpStatusCode?: number }; code?: string };
  const status = e.$metadata?.httpStatusCode;
  return Boolean(e.$retryable) || (status !== undefined && status >= 500) || ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE'].includes(e.code ?? '');
}
