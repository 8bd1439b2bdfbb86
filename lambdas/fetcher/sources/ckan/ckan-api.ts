/**
 * The CKAN Action API as the DataStore source reads it: where a resource is (its portal's API
 * base and its id, from the declared `datastore_search` URL), one GET of an action with retries,
 * and CKAN's error shape read by its type.
 *
 * CKAN answers an action with `{"success": true, "result": ...}`, or `{"success": false, "error":
 * {"__type": "Not Found Error", "message": ...}}` with HTTP 404/403/409/500, and some deployments
 * (or proxies in front of them) send that error body with HTTP 200. The error's type, not the
 * status, says whether another attempt can help: a missing resource or a refused query stays so.
 */
import axios, { type AxiosInstance, isAxiosError } from 'axios';
import { backoffDelay, type RetryPolicy } from '../../retry-policy';
import { retryDeadline, type BudgetMs } from '../../time-budget';
import { SourceError } from '../../../../runtime/pipeline-error';
import { requestUrl } from '../files/http-file-source';

/** A resource's DataStore: the portal's action base (`https://host[/prefix]/api/3/action`) and the resource id. */
export interface CkanResource {
  actionBase: string;
  resourceId: string;
}

/**
 * The resource of a declared `https://<portal>[/<prefix>]/api/3/action/datastore_search?resource_id=<id>`
 * URL, or an Error saying what is wrong with it.
 */
export function parseDatastoreUrl(text: string): CkanResource {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`"${text}" is not a URL`);
  }
  const match = /^(.*\/api\/3\/action)\/datastore_search\/?$/.exec(url.pathname);
  const resourceId = url.searchParams.get('resource_id') ?? url.searchParams.get('id');
  if (!match || !resourceId) {
    throw new Error(`"${text}" must be a DataStore search URL: https://<portal>/api/3/action/datastore_search?resource_id=<resource id>`);
  }
  return { actionBase: `${url.origin}${match[1]}`, resourceId };
}

/** CKAN error types another attempt cannot fix. */
const PERMANENT_ERROR_TYPES = new Set(['Not Found Error', 'Authorization Error', 'Validation Error', 'Not Authorized']);
const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

export class CkanSourceError extends SourceError {
  override name = 'CkanSourceError';
  constructor(
    message: string,
    /** CKAN's `error.__type` when the portal answered with one. */
    readonly ckanType?: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface CkanApiOptions {
  datasetName: string;
  /** The declared URL: named in messages. */
  declared: string;
  /** An origin requests go to instead of the declared one (SOURCE_ENDPOINT_URL); the path stays. */
  endpoint?: string;
  timeoutMs: number;
  retry: RetryPolicy;
  http?: AxiosInstance;
  onRetry?: (info: { attempt: number; delayMs: number; reason: string; url: string }) => void;
}

/** One answer's outcome: the result, or why not and whether to try again. */
type Outcome = { result: unknown } | { problem: string; retry: boolean; type?: string; status?: number };

/** What a body says: CKAN's own error, a result, or not CKAN at all. */
function readBody(status: number, text: string): Outcome {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    const cut = text.slice(0, 200).replace(/\s+/g, ' ').trim();
    return { problem: `HTTP ${status}, not a CKAN answer (no JSON)${cut ? `: ${cut}` : ''}`, retry: RETRYABLE_STATUS.has(status) || status === 200, status };
  }
  const b = body as { success?: unknown; result?: unknown; error?: { __type?: unknown; message?: unknown } };
  if (typeof body === 'object' && body !== null && b.success === true && status === 200) return { result: b.result };
  if (typeof body === 'object' && body !== null && b.success === false) {
    const type = typeof b.error?.__type === 'string' ? b.error.__type : 'error';
    const message = typeof b.error?.message === 'string' ? b.error.message : JSON.stringify(b.error ?? {}).slice(0, 200);
    const permanent = PERMANENT_ERROR_TYPES.has(type) || (status >= 400 && status < 500 && !RETRYABLE_STATUS.has(status));
    return { problem: `HTTP ${status}, CKAN ${type}: ${message}`, retry: !permanent, type, status };
  }
  return { problem: `HTTP ${status}, an answer without "success"`, retry: RETRYABLE_STATUS.has(status), status };
}

export class CkanApi {
  private readonly http: AxiosInstance;

  constructor(private readonly options: CkanApiOptions) {
    this.http = options.http ?? axios.create();
  }

  /** The URL of an action with its parameters, at the endpoint when one is set. */
  actionUrl(base: string, action: string, params: Record<string, string>): string {
    const query = new URLSearchParams(params).toString();
    return requestUrl(`${base}/${action}?${query}`, this.options.endpoint);
  }

  /**
   * GETs an action and returns its `result`. The deadline covers the whole answer, body included:
   * a page is read whole, so a server that trickles it (slow-loris) fails the attempt, which is retried.
   */
  async get(base: string, action: string, params: Record<string, string>, budgetMs: BudgetMs | undefined): Promise<unknown> {
    const { retry, timeoutMs, datasetName, declared } = this.options;
    const url = this.actionUrl(base, action, params);
    let last: Outcome & { problem: string };
    let deadlineMs = timeoutMs;
    for (let attempt = 1; ; attempt++) {
      let retryAfterMs: number | undefined;
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), deadlineMs);
      try {
        const res = await this.http.get<string>(url, {
          responseType: 'text',
          transformResponse: (d: unknown) => d,
          timeout: deadlineMs,
          signal: controller.signal,
          validateStatus: () => true,
          headers: { Accept: 'application/json' },
        });
        const outcome = readBody(res.status, typeof res.data === 'string' ? res.data : String(res.data));
        if ('result' in outcome) return outcome.result;
        last = outcome;
        const ra = Number(res.headers['retry-after']);
        if (Number.isFinite(ra) && ra >= 0) retryAfterMs = ra * 1000;
      } catch (err) {
        if (!isAxiosError(err)) throw err;
        const timedOut = err.code === 'ERR_CANCELED' || err.code === 'ECONNABORTED';
        last = { problem: timedOut ? `no whole answer within the ${deadlineMs / 1000} s deadline` : `${err.code ?? 'network error'}: ${err.message}`, retry: err.code !== 'ENOTFOUND' };
      } finally {
        clearTimeout(timer);
      }
      if (!last.retry || attempt >= retry.maxAttempts) break;
      const delayMs = Math.max(retryAfterMs ?? 0, backoffDelay(retry, attempt));
      deadlineMs = retryDeadline(budgetMs, delayMs, timeoutMs, `GET ${url} for dataset ${datasetName} (${last.problem}, attempt ${attempt})`);
      this.options.onRetry?.({ attempt, delayMs, reason: last.problem, url });
      await retry.sleep(delayMs);
    }
    const what =
      last.type === 'Not Found Error'
        ? `the portal has no such resource or DataStore table: check source.url (${declared})`
        : last.type === 'Authorization Error'
          ? 'the resource is private: this source reads public resources only'
          : 're-run to resume; the checkpoint was not advanced past the last delivered page';
    throw new CkanSourceError(`GET ${url} for dataset ${datasetName} failed (${last.problem}): ${what}`, last.type, last.status);
  }
}
