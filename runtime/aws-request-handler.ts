/**
 * Timeouts for AWS SDK v3 clients. The SDK has none by default: an endpoint that accepts the
 * connection and never answers hangs the caller until the Lambda or the task is killed.
 * `requestTimeout` ends a call whose response does not start in time, `socketTimeout` an idle
 * body; calls that matter also pass an abortSignal deadline of their own.
 */
export interface BoundedRequestHandler {
  connectionTimeout: number;
  requestTimeout: number;
  socketTimeout: number;
  throwOnRequestTimeout: true;
}

export const boundedRequestHandler = (requestTimeoutMs: number): BoundedRequestHandler => ({
  connectionTimeout: 5_000,
  requestTimeout: requestTimeoutMs,
  socketTimeout: requestTimeoutMs,
  throwOnRequestTimeout: true,
});

/** Per-call ceilings: S3 objects here are small (checkpoints, leases, state, summaries, reports). */
export const S3_REQUEST_TIMEOUT_MS = 15_000;
/** Athena control-plane calls (start, get state, page results) answer in well under a second. */
export const ATHENA_REQUEST_TIMEOUT_MS = 20_000;
