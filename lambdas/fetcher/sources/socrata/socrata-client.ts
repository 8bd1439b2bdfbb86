/**
 * Reads pages from a Socrata resource endpoint with axios: a timeout on every request, retries
 * with backoff on throttling, server errors, 202 "still processing", connection failures and
 * truncated or invalid bodies, and an error after the last attempt that says what failed.
 */
import type { Readable } from 'node:stream';
import axios, { type AxiosInstance, type AxiosRequestConfig, type AxiosResponse, isAxiosError } from 'axios';
import type { SourceRow, StreamPageResult } from '../source-adapter';
import type { KeysetPosition } from './keyset';
import { rowProblem, rowPosition } from './page-invariants';
import { redactor } from '../../redact';
import { RowStreamError, RowStreamParser } from '../../row-stream';
import { backoffDelay, type RetryPolicy } from '../../retry-policy';
import { retryDeadline, type BudgetMs } from '../../time-budget';
import { SourceError } from '../../../../runtime/pipeline-error';

export type { SourceRow, StreamPageResult } from '../source-adapter';

export interface PageQuery {
  select: string;
  where?: string;
  /** Absent for an aggregate (`count(*)`), which has no order. */
  order?: string;
  limit: number;
  /** Rows skipped first (`$offset`): the range planner's one-row probes at quantiles. */
  offset?: number;
  /**
   * Why a parsed page is not an acceptable answer (see page-invariants.ts), or undefined. A page
   * with a problem is a source error: re-requested like a truncated body, then the request fails.
   */
  check?: (rows: SourceRow[]) => string | undefined;
  /** What the invocation's time budget leaves for this request and its retry waits. */
  budgetMs?: BudgetMs;
}

/** A keyset page read as a stream: rows are handed to `onRow` as they arrive. */
export interface StreamQuery {
  select: string;
  order: string;
  /** Rows of the whole page (a resumed request asks only for the rest). */
  limit: number;
  /** The page starts after this row; null: from the beginning. */
  after: KeysetPosition | null;
  /** `$where` selecting rows strictly after a position (fetch-run's keysetWhere). */
  where: (after: KeysetPosition) => string;
  /**
   * The page ends at this row (inclusive) however many rows `limit` allows: a parallel range's
   * upper edge. `where` is its `$where` (keyset.ts keysetUntilWhere), ANDed to the request's; a
   * row past `position` breaks the page invariants like a row before `after`.
   */
  until?: { position: KeysetPosition; where: string };
  /** What the invocation's time budget leaves for requests and retry waits. */
  budgetMs?: BudgetMs;
  /**
   * Called once per row, in order, after it passed the page invariants; awaited (backpressure:
   * the socket is not read while it runs). Return false to stop the page at this row boundary,
   * after this row (the response is aborted).
   */
  onRow: (row: SourceRow, position: KeysetPosition) => boolean | void | Promise<boolean | void>;
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
  /**
   * 'soda2' (default): GET `/resource/<id>.json` with `$select`, `$where`, ... parameters.
   * 'soda3': POST `/api/v3/views/<id>/query.json` with the same query as one SoQL string in a
   * JSON body; an app token is required (docs/soda3-facts.md).
   */
  api?: SocrataApi;
}

export type SocrataApi = 'soda2' | 'soda3';

/** One request's query, in SODA 2's parameters; SODA 3 sends the same as a SoQL string. */
interface QueryParts {
  select: string;
  where?: string | undefined;
  order?: string | undefined;
  limit: number;
  offset?: number | undefined;
}

/** `$select=:*,*` in SODA 3's form: `*` includes the system fields there (`includeSystem`, default true). */
const soda3Select = (select: string): string => (select.replace(/\s/g, '') === ':*,*' ? '*' : select);

/** The SODA 3 query string for the parts (clauses in SoQL's order). */
export function soqlQuery(q: QueryParts): string {
  return [
    `SELECT ${soda3Select(q.select)}`,
    q.where ? `WHERE ${q.where}` : '',
    q.order ? `ORDER BY ${q.order}` : '',
    `LIMIT ${q.limit}`,
    q.offset ? `OFFSET ${q.offset}` : '',
  ]
    .filter(Boolean)
    .join(' ');
}

export class SocrataRequestError extends SourceError {
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

/**
 * SODA 2.0 endpoints refuse a `$limit` above this with HTTP 400 (the body says e.g. "length must
 * be <= 50000"); 2.1 endpoints have no cap. See `limitRefused`.
 */
export const SODA_2_0_MAX_LIMIT = 50_000;
/** A 400 body that speaks of the page length: `$limit`, or Socrata's "length must be <= N". */
const LIMIT_REFUSAL = /\$limit|\blimit\b|length must be/i;
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

/** A 200 body is read at most this far for an error excerpt; the rest is discarded. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

async function readCapped(body: Readable): Promise<string> {
  const parts: Buffer[] = [];
  let bytes = 0;
  try {
    for await (const chunk of body) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      parts.push(b);
      bytes += b.length;
      if (bytes >= MAX_ERROR_BODY_BYTES) break;
    }
  } catch {
    // An error body cut short is still worth its excerpt.
  } finally {
    body.destroy();
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Why a page request failed, for the error that ends the retries. */
/**
 * Why an attempt at a page failed. `again`: ask again at once, no attempt spent (a refused SODA 2.0
 * `$limit`); `final`: asking again cannot help; `retryAfterMs`: the wait the answer asked for.
 */
type PageFailure = { reason: string; status: number | undefined; body: string; hint?: string; again?: boolean; final?: boolean; retryAfterMs?: number };

export class SocrataClient {
  private readonly http: AxiosInstance;
  readonly resourceUrl: string;
  /**
   * The largest `$limit` the endpoint accepts, once it refused a larger one (a SODA 2.0 endpoint);
   * kept for the client's lifetime (the Lambda container), so only the first request pays the refusal.
   */
  private limitCap: number | undefined;

  /** SODA 3's query endpoint (used when `api` is 'soda3'). */
  readonly queryUrl: string;
  private readonly method: 'GET' | 'POST';

  constructor(private readonly options: SocrataClientOptions) {
    this.http = options.http ?? axios.create();
    this.resourceUrl = `${options.baseUrl}/resource/${options.datasetId}.json`;
    this.queryUrl = `${options.baseUrl}/api/v3/views/${options.datasetId}/query.json`;
    this.method = options.api === 'soda3' ? 'POST' : 'GET';
  }

  /**
   * The request for a query: SODA 2's GET with parameters, or SODA 3's POST with the SoQL string.
   * `shown` names it in messages (no token: SODA 3 sends it only as a header).
   */
  private requestFor(q: QueryParts): { url: string; data?: string; shown: string } {
    if (this.method === 'POST') {
      const query = soqlQuery(q);
      return { url: this.queryUrl, data: JSON.stringify({ query }), shown: `${this.queryUrl} query=${JSON.stringify(query)}` };
    }
    const params: Record<string, string> = { $select: q.select };
    if (q.order) params.$order = q.order;
    params.$limit = String(q.limit);
    if (q.offset) params.$offset = String(q.offset);
    if (q.where) params.$where = q.where;
    const url = `${this.resourceUrl}?${new URLSearchParams(params).toString()}`;
    return { url, shown: redactUrl(url) };
  }

  /** Sends a query's request (GET or POST) with axios `config`. */
  private send<T>(request: { url: string; data?: string }, config: AxiosRequestConfig): Promise<AxiosResponse<T>> {
    if (request.data === undefined) return this.http.get<T>(request.url, config);
    return this.http.post<T>(request.url, request.data, { ...config, headers: { ...(config.headers as Record<string, string>), 'Content-Type': 'application/json' } });
  }

  /**
   * One page of rows; throws SocrataRequestError once every attempt failed, or
   * TimeBudgetExhaustedError when the invocation's budget cannot cover the next attempt.
   */
  /**
   * The wait before attempt `attempt + 1` (backoff, or the source's Retry-After if longer), told to
   * onRetry; returns the next attempt's deadline. Throws the time-budget deferral when the wait and
   * a useful attempt do not fit what is left of the invocation (see time-budget.ts).
   */
  private async waitToRetry(attempt: number, retryAfterMs: number | undefined, budgetMs: BudgetMs | undefined, reason: string, shownUrl: string): Promise<number> {
    const { retry, timeoutMs } = this.options;
    const delayMs = Math.max(retryAfterMs ?? 0, backoffDelay(retry, attempt));
    const deadlineMs = retryDeadline(budgetMs, delayMs, timeoutMs, `Socrata request for dataset ${this.options.datasetName} (${reason}, attempt ${attempt}, ${this.method} ${shownUrl})`);
    this.options.onRetry?.({ attempt, delayMs, reason, url: shownUrl });
    await retry.sleep(delayMs);
    return deadlineMs;
  }

  /** The `$limit` to ask for: the caller's, capped once the endpoint refused a larger one. */
  private requestLimit(limit: number): number {
    return this.limitCap !== undefined ? Math.min(limit, this.limitCap) : limit;
  }

  /**
   * A 400 that refuses a `$limit` above SODA 2.0's cap: cap every later request of this client at
   * what the body names (else 50,000) and tell onRetry why, so the caller asks again at once. Safe
   * because the fetcher never takes a short page for the end of the data: the capped page is
   * followed by another request, and the end is still an empty page. False (the 400 stands) for
   * any other 400, or when the cap is already in force.
   */
  private limitRefused(status: number, body: string, asked: number, attempt: number, shownUrl: string): boolean {
    if (status !== 400 || asked <= SODA_2_0_MAX_LIMIT || this.limitCap !== undefined || !LIMIT_REFUSAL.test(body)) return false;
    const named = Number(/<=\s*([\d,]+)/.exec(body)?.[1]?.replace(/,/g, ''));
    this.limitCap = Number.isInteger(named) && named >= 1 && named < asked ? named : SODA_2_0_MAX_LIMIT;
    this.options.onRetry?.({
      attempt,
      delayMs: 0,
      reason:
        `the endpoint refused $limit=${asked} (HTTP 400: ${excerpt(body)}); it is probably a SODA 2.0 endpoint, which caps $limit at ${this.limitCap}. ` +
        `Asking again with $limit=${this.limitCap}; set fetch.pageSize to ${this.limitCap} in the dataset ${this.options.datasetName} definition to skip this refused request`,
      url: shownUrl,
    });
    return true;
  }

  /** The hint an error adds when a 400 speaks of the page length. */
  private limitHint(status: number | undefined, body: string): string {
    return status === 400 && LIMIT_REFUSAL.test(body)
      ? ` The endpoint refuses the page length: set fetch.pageSize to ${SODA_2_0_MAX_LIMIT} (the SODA 2.0 cap) or lower in the dataset ${this.options.datasetName} definition.`
      : '';
  }

  /** What an answer other than 200 means for a page (PageFailure says what its flags mean). */
  private refusal(res: { status: number; headers: AxiosResponse['headers'] }, text: string, asked: number, attempt: number, shownUrl: string): PageFailure {
    const { status } = res;
    if (this.limitRefused(status, text, asked, attempt, shownUrl)) return { reason: `HTTP ${status}: $limit refused`, status, body: '', again: true };
    const tokenHint =
      this.method === 'POST' && (status === 401 || status === 403)
        ? ` SODA 3 answers only requests with a valid app token: check the secret named by source.appTokenSecretName of dataset ${this.options.datasetName}.`
        : '';
    return {
      reason: `HTTP ${status}`,
      status,
      body: excerpt(text),
      hint: this.limitHint(status, text) + tokenHint,
      final: !RETRYABLE_STATUS.has(status),
      retryAfterMs: parseRetryAfter(res.headers['retry-after']),
    };
  }

  async fetchPage(query: PageQuery): Promise<SourceRow[]> {
    const { retry, timeoutMs } = this.options;
    let shownUrl = '';
    const token = await this.options.appToken?.();
    // A source can echo the X-App-Token header in an error body: nothing it sends back is shown unredacted.
    const redact = redactor([token]);
    // Socrata gzips when asked: ~8x fewer bytes on the link (docs/bench.md, gzip profiles); axios gunzips the stream.
    const headers: Record<string, string> = { Accept: 'application/json', 'Accept-Encoding': 'gzip' };
    if (token) headers['X-App-Token'] = token;

    let last: PageFailure = { reason: '', status: undefined, body: '' };
    let attempts = 0;
    // The first attempt gets the whole timeout (a page is only started with at least
    // TIME_BUDGET_MARGIN_MS left); a retried one what the budget leaves after the wait.
    let deadlineMs = timeoutMs;
    for (let attempt = 1; attempt <= retry.maxAttempts; attempt++) {
      attempts = attempt;
      const asked = this.requestLimit(query.limit);
      const request = this.requestFor({ select: query.select, where: query.where, order: query.order, limit: asked, offset: query.offset });
      shownUrl = request.shown;
      try {
        const res = await this.send<string>(request, {
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
          last = this.refusal(res, redact(String(res.data ?? '')), asked, attempt, shownUrl);
          if (last.final) break;
        }
      } catch (err) {
        if (!isAxiosError(err)) throw err;
        // Timeouts, resets, refused connections, bodies cut mid-stream: all transient.
        const reason =
          err.code === 'ERR_CANCELED' || err.code === 'ECONNABORTED'
            ? `no complete answer within the ${(deadlineMs / 1000).toFixed(1).replace(/\.0$/, '')} s deadline`
            : `${err.code ?? 'network error'}: ${err.message}`;
        last = { reason: redact(reason), status: undefined, body: '' };
        // A host name that does not resolve will not resolve on retry (EAI_AGAIN, a DNS
        // timeout, is retried as transient).
        if (err.code === 'ENOTFOUND') break;
      }
      // A refused SODA 2.0 $limit is the endpoint's version, not a failed attempt: ask again at once.
      if (last.again) {
        attempt--;
        continue;
      }
      if (attempt === retry.maxAttempts) break;
      deadlineMs = await this.waitToRetry(attempt, last.retryAfterMs, query.budgetMs, last.reason, shownUrl);
    }
    const status = last.status !== undefined ? `status ${last.status}` : 'no response';
    throw new SocrataRequestError(
      `Socrata request for dataset ${this.options.datasetName} failed (${last.reason}; ${status}) ` +
        `after ${attempts} attempt(s): ${this.method} ${shownUrl}` +
        (last.body ? ` — body: ${last.body}` : '') +
        '. The checkpoint was not advanced past the last delivered page; re-run to resume, or check the source portal, its URL and the app token.' +
        (last.hint ?? ''),
      last.status,
      shownUrl,
    );
  }
  /**
   * A 200's rows, parsed as they arrive, each checked against the page invariants and handed to
   * `query.onRow` (`page` moves with every row). Ends at the body's end, at a row that breaks the
   * invariants (`problem`), or when onRow says stop; a connection that fails mid-body throws a
   * truncated RowStreamError. The body is destroyed when it returns.
   */
  private async readRows(stream: Readable, abort: AbortController, shownUrl: string, query: StreamQuery, page: StreamedPage): Promise<{ stopped: boolean; problem?: string }> {
    // Aborting the request does not always end a body already being read: end it here.
    abort.signal.addEventListener('abort', () => stream.destroy(abort.signal.reason as Error), { once: true });
    const context = `dataset ${this.options.datasetName}, ${this.method} ${shownUrl}`;
    // Chunks are awaited, rows are not: the rows a chunk completed are handed out in a plain
    // loop, and onRow's promise is awaited only when it returns one (a batch to wait for).
    const parser = new RowStreamParser({ context });
    const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    try {
      for (;;) {
        let next: IteratorResult<Buffer>;
        try {
          next = await chunks.next();
        } catch (err) {
          throw new RowStreamError(
            'truncated',
            `${context}: connection failed after ${parser.rowsComplete} complete rows (${parser.bytesConsumed} bytes): ${(err as Error).message}`,
            parser.rowsComplete,
            parser.bytesConsumed,
            { cause: err },
          );
        }
        if (next.done) {
          parser.end();
          return { stopped: false };
        }
        for (const { row } of parser.push(next.value)) {
          const problem = rowProblem(row, page.received, page.after, query.limit, query.until?.position);
          if (problem) return { stopped: false, problem };
          const position = rowPosition(row)!;
          const taken = query.onRow(row, position);
          const keep = taken instanceof Promise ? await taken : taken;
          page.received++;
          page.rowsThisRequest++;
          page.after = position;
          if (keep === false) return { stopped: true };
        }
      }
    } finally {
      stream.destroy();
    }
  }

  /**
   * One keyset page, streamed: each row is checked against the page invariants and handed to
   * `query.onRow` as soon as it is complete, so memory holds one row plus one network chunk,
   * never the page. Until the first row of a request arrives, failures are retried exactly as in
   * fetchPage (status, 202/429/5xx, resets, deadline, a body that is not rows, a first row that
   * breaks keyset paging). After rows arrived, a dropped connection (reset, truncated body, the
   * request's total deadline) is resumed with a keyset `$where` after the last row handed out, for
   * the rest of the page: rows already handed out are never requested again. A resume that brings
   * no new row counts as a failed attempt; one that does starts the count again. A row that breaks
   * the invariants after others were handed out fails at once: the source is not ordering, so the
   * rest of its answer cannot be trusted, and retrying would hand out the same rows again.
   */
  async streamPage(query: StreamQuery): Promise<StreamPageResult> {
    const { retry, timeoutMs } = this.options;
    const token = await this.options.appToken?.();
    const redact = redactor([token]);
    // Socrata gzips when asked: ~8x fewer bytes on the link (docs/bench.md, gzip profiles); axios gunzips the stream.
    const headers: Record<string, string> = { Accept: 'application/json', 'Accept-Encoding': 'gzip' };
    if (token) headers['X-App-Token'] = token;

    // Rows handed out so far in this page, the last one's position, and this request's share.
    const page: StreamedPage = { after: query.after, received: 0, rowsThisRequest: 0 };
    let resumes = 0;
    let attempt = 0;
    let deadlineMs = timeoutMs;
    let shownUrl: string;
    let last: PageFailure;
    for (;;) {
      attempt++;
      const rest = query.limit - page.received;
      // The drop came after the page's last row, before its closing bracket: the page is whole.
      if (rest <= 0) return { rows: page.received, stopped: false, resumes };
      // Capped on a SODA 2.0 endpoint: the page then ends short, and fetch-run asks for the next.
      const limit = this.requestLimit(rest);
      const where = [page.after ? query.where(page.after) : undefined, query.until?.where].filter((w): w is string => w !== undefined);
      const request = this.requestFor({
        select: query.select,
        order: query.order,
        limit,
        where: where.length === 0 ? undefined : where.length === 1 ? where[0]! : where.map((w) => `(${w})`).join(' AND '),
      });
      shownUrl = request.shown;
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(new DeadlineError()), deadlineMs);
      page.rowsThisRequest = 0;
      let body: Readable | undefined;
      try {
        const res = await this.send<Readable>(request, {
          headers,
          // `timeout` only fires on an idle socket; the signal is the total deadline of the request.
          timeout: deadlineMs,
          signal: abort.signal,
          responseType: 'stream',
          validateStatus: () => true,
        });
        body = res.data;
        if (res.status !== 200) {
          last = this.refusal(res, redact(await readCapped(body)), limit, attempt, shownUrl);
          if (last.final) break;
        } else {
          const { stopped, problem } = await this.readRows(body, abort, shownUrl, query, page);
          // Stopped on the page's last row: the page is whole, not cut.
          if (stopped) return { rows: page.received, stopped: page.received < query.limit, resumes };
          if (!problem) return { rows: page.received, stopped: false, resumes };
          last = { reason: `the page breaks keyset paging: ${redact(problem)}`, status: 200, body: '' };
          if (page.rowsThisRequest > 0 || page.received > 0) {
            throw new SocrataRequestError(
              `Socrata request for dataset ${this.options.datasetName} failed (${last.reason}; status 200) after ${page.received} rows of the page: ` +
                `${this.method} ${shownUrl}. The source does not serve keyset order, so the rest of its answer cannot be trusted; ` +
                'the checkpoint was not advanced past the last complete page. Check the source portal and its URL.',
              200,
              shownUrl,
            );
          }
        }
      } catch (err) {
        if (err instanceof SocrataRequestError) throw err;
        if (err instanceof RowStreamError || isAxiosError(err) || err instanceof DeadlineError || isStreamAbort(err)) {
          const timedOut = abort.signal.aborted && abort.signal.reason instanceof DeadlineError;
          const reason = streamFailureReason(err, timedOut, deadlineMs);
          last = { reason: redact(reason), status: timedOut || !(err instanceof RowStreamError) ? undefined : 200, body: '' };
          if (isAxiosError(err) && err.code === 'ENOTFOUND') break; // see fetchPage: DNS says no
        } else throw err;
      } finally {
        clearTimeout(timer);
        body?.destroy();
      }
      // A refused SODA 2.0 $limit is the endpoint's version, not a failed attempt: ask again at once.
      if (last.again) {
        attempt--;
        continue;
      }
      if (page.rowsThisRequest > 0) {
        // Progress: resume right away after the last row handed out, with a fresh attempt count.
        resumes++;
        attempt = 0;
        this.options.onRetry?.({ attempt: 1, delayMs: 0, reason: `resuming mid-page after ${page.received} rows: ${last.reason}`, url: shownUrl });
        deadlineMs = retryDeadline(query.budgetMs, 0, timeoutMs, `Socrata request for dataset ${this.options.datasetName} (${last.reason}, resuming mid-page, ${this.method} ${shownUrl})`);
        continue;
      }
      if (attempt >= retry.maxAttempts) break;
      deadlineMs = await this.waitToRetry(attempt, last.retryAfterMs, query.budgetMs, last.reason, shownUrl);
    }
    const status = last.status !== undefined ? `status ${last.status}` : 'no response';
    throw new SocrataRequestError(
      `Socrata request for dataset ${this.options.datasetName} failed (${last.reason}; ${status}) ` +
        `after ${attempt} attempt(s)${page.received ? ` (${page.received} rows of the page received before)` : ''}: ${this.method} ${shownUrl}` +
        (last.body ? ` — body: ${last.body}` : '') +
        '. The checkpoint was not advanced past the last delivered page; re-run to resume, or check the source portal, its URL and the app token.' +
        (last.hint ?? ''),
      last.status,
      shownUrl,
    );
  }
}

/** Where a streamed page stands: rows handed out, the last one's position, and how many of them this request brought. */
interface StreamedPage {
  after: KeysetPosition | null;
  received: number;
  rowsThisRequest: number;
}

/** Why a streamed request failed, for the retry log and the final error. */
function streamFailureReason(err: unknown, timedOut: boolean, deadlineMs: number): string {
  if (timedOut) return `no complete answer within the ${(deadlineMs / 1000).toFixed(1).replace(/\.0$/, '')} s deadline`;
  if (err instanceof RowStreamError) {
    return err.kind === 'truncated' ? `truncated body after ${err.rowsComplete} rows${err.cause ? ` (${(err.cause as Error).message})` : ''}` : `invalid body: ${err.message}`;
  }
  if (isAxiosError(err)) return `${err.code ?? 'network error'}: ${err.message}`;
  return `${(err as Error).name}: ${(err as Error).message}`;
}

/** The abort reason of a request's total deadline. */
class DeadlineError extends SourceError {
  override name = 'DeadlineError';
  constructor() {
    super('request deadline reached');
  }
}

const isStreamAbort = (err: unknown): boolean => {
  const e = err as { name?: string; code?: string };
  return e?.name === 'AbortError' || e?.name === 'CanceledError' || ['ECONNRESET', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNABORTED', 'ERR_CANCELED'].includes(e?.code ?? '');
};

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
