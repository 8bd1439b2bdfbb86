/**
 * Reads pages from a Socrata resource endpoint with axios: a timeout on every request, retries
 * with backoff on throttling, server errors, 202 "still processing", connection failures and
 * truncated or invalid bodies, and an error after the last attempt that says what failed.
 */
import axios, { type AxiosInstance, isAxiosError } from 'axios';
import { redactor } from './redact';
import { backoffDelay, type RetryPolicy } from './retry-policy';
import { retryDeadline, type BudgetMs } from './time-budget';

/** One row as Socrata serves it with `$select=:*,*`. */
export type SourceRow = Record<string, unknown>;

export interface PageQuery {
  select: string;
  where?: string;
  order: string;
  limit: number;
  /**
   * Why a parsed page is not an acceptable answer (see page-invariants.ts), or undefined. A page
   * with a problem is a source error: re-requested like a truncated body, then the request fails.
   */
  check?: (rows: SourceRow[]) => string | undefined;
  /** What the invocation's time budget leaves for this request and its retry waits. */
  budgetMs?: BudgetMs;
}

export interface SocrataClientOptions {
  datasetName: string;
  baseUrl: string;
  datasetId: string;
  timeoutMs: number;
  retry: RetryPolicy;
  /** Resolved lazily and only when a request is made; never logged. */
  appToken?: () => Promise<string | undefined>;
  http?: AxiosInstance;
  /** Called before each retry; for metrics and logs (carries no token). */
  onRetry?: (info: { attempt: number; delayMs: number; reason: string; url: string }) => void;
}

export class SocrataRequestError extends Error {
  override name = 'SocrataRequestError';
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly url: string,
  ) {
    super(message);
  }
}

const RETRYABLE_STATUS = new Set([202, 408, 429, 500, 502, 503, 504]);
const MAX_RETRY_AFTER_MS = 120_000;

/** Retry-After as seconds or an HTTP date; undefined when absent or unparseable. */
export function parseRetryAfter(value: unknown, now = Date.now()): number | undefined {
  if (typeof value !== 'string' || !value.trim()) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, MAX_RETRY_AFTER_MS);
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - now), MAX_RETRY_AFTER_MS);
}

/** The request URL as it may appear in logs and errors: any `$$app_token` parameter removed. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.searchParams.delete('$$app_token');
    // Decoded, so a person can read the SoQL in the message.
    const query = [...u.searchParams].map(([k, v]) => `${k}=${v}`).join('&');
    return `${u.origin}${u.pathname}${query ? `?${query}` : ''}`;
  } catch {
    return url.replace(/([?&])\$\$app_token=[^&]*/g, '$1');
  }
}

const excerpt = (body: unknown): string => {
  const text = typeof body === 'string' ? body : JSON.stringify(body ?? '');
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > 300 ? `${oneLine.slice(0, 300)}…` : oneLine;
};

export class SocrataClient {
  private readonly http: AxiosInstance;
  readonly resourceUrl: string;

  constructor(private readonly options: SocrataClientOptions) {
    this.http = options.http ?? axios.create();
    this.resourceUrl = `${options.baseUrl}/resource/${options.datasetId}.json`;
  }

  /**
   * One page of rows; throws SocrataRequestError once every attempt failed, or
   * TimeBudgetExhaustedError when the invocation's budget cannot cover the next attempt.
   */
  async fetchPage(query: PageQuery): Promise<SourceRow[]> {
    const params: Record<string, string> = { $select: query.select, $order: query.order, $limit: String(query.limit) };
    if (query.where) params.$where = query.where;
    const url = `${this.resourceUrl}?${new URLSearchParams(params).toString()}`;
    const shownUrl = redactUrl(url);
    const { retry, timeoutMs } = this.options;
    const token = await this.options.appToken?.();
    // A source can echo the X-App-Token header in an error body: nothing it sends back is shown unredacted.
    const redact = redactor([token]);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (token) headers['X-App-Token'] = token;

    let last = { reason: '', status: undefined as number | undefined, body: '' };
    let attempts = 0;
    // The first attempt gets the whole timeout (a page is only started with at least
    // TIME_BUDGET_MARGIN_MS left); a retried one what the budget leaves after the wait.
    let deadlineMs = timeoutMs;
    for (let attempt = 1; attempt <= retry.maxAttempts; attempt++) {
      attempts = attempt;
      let retryAfterMs: number | undefined;
      try {
        const res = await this.http.get<string>(url, {
          headers,
          // `timeout` only fires on an idle socket; the signal is the total deadline, so a source
          // trickling one byte at a time cannot hold the request past it.
          timeout: deadlineMs,
          signal: AbortSignal.timeout(deadlineMs),
          responseType: 'text',
          // Parse ourselves: a truncated body must be a retryable error, not a string.
          transformResponse: (data: unknown) => data,
          validateStatus: () => true,
        });
        if (res.status === 200) {
          const rows = parseRows(res.data);
          const problem = rows && query.check?.(rows);
          if (rows && !problem) return rows;
          last = problem
            ? { reason: `the page breaks keyset paging: ${redact(problem)}`, status: 200, body: '' }
            : { reason: 'truncated or invalid JSON body', status: 200, body: excerpt(redact(tail(res.data))) };
        } else {
          last = { reason: `HTTP ${res.status}`, status: res.status, body: excerpt(redact(String(res.data ?? ''))) };
          if (!RETRYABLE_STATUS.has(res.status)) break;
          retryAfterMs = parseRetryAfter(res.headers['retry-after']);
        }
      } catch (err) {
        if (!isAxiosError(err)) throw err;
        // Timeouts, resets, refused connections, bodies cut mid-stream: all transient.
        const reason =
          err.code === 'ERR_CANCELED' || err.code === 'ECONNABORTED'
            ? `no complete answer within the ${(deadlineMs / 1000).toFixed(1).replace(/\.0$/, '')} s deadline`
            : `${err.code ?? 'network error'}: ${err.message}`;
        last = { reason: redact(reason), status: undefined, body: '' };
      }
      if (attempt === retry.maxAttempts) break;
      const delayMs = Math.max(retryAfterMs ?? 0, backoffDelay(retry, attempt));
      deadlineMs = retryDeadline(
        query.budgetMs,
        delayMs,
        timeoutMs,
        `Socrata request for dataset ${this.options.datasetName} (${last.reason}, attempt ${attempt}, GET ${shownUrl})`,
      );
      this.options.onRetry?.({ attempt, delayMs, reason: last.reason, url: shownUrl });
      await retry.sleep(delayMs);
    }
    const status = last.status !== undefined ? `status ${last.status}` : 'no response';
    throw new SocrataRequestError(
      `Socrata request for dataset ${this.options.datasetName} failed (${last.reason}; ${status}) ` +
        `after ${attempts} attempt(s): GET ${shownUrl}` +
        (last.body ? ` — body: ${last.body}` : '') +
        '. The checkpoint was not advanced past the last delivered page; re-run to resume, or check the source portal, its URL and the app token.',
      last.status,
      shownUrl,
    );
  }
}

function tail(text: unknown): string {
  const s = typeof text === 'string' ? text : '';
  return s.length > 200 ? `…${s.slice(-200)}` : s;
}

/** The rows of a page, or undefined when the body is not a complete JSON array of objects. */
export function parseRows(body: unknown): SourceRow[] | undefined {
  if (typeof body !== 'string') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  for (const r of value) if (typeof r !== 'object' || r === null || Array.isArray(r)) return undefined;
  return value as SourceRow[];
}
