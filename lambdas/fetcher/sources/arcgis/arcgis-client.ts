/**
 * HTTP for an ArcGIS FeatureServer layer: the layer's metadata (`?f=json`) and its `query`
 * operation, with retries. ArcGIS answers most errors with HTTP 200 and a body of
 * `{"error": {"code": 400 | 498 | 499 | 500, "message": ..., "details": [...]}}`, so the status
 * alone says nothing: every answer's body is read for that object before it is taken as data.
 * Codes 500 and above (and 429) are the server's trouble and retried; 498 (invalid or expired
 * token) and 499 (token required) mean the layer is not public; 400 and the rest mean the request
 * is wrong and are not retried.
 */
import axios, { type AxiosInstance, isAxiosError } from 'axios';
import { backoffDelay, type RetryPolicy } from '../../retry-policy';
import { retryDeadline, type BudgetMs } from '../../time-budget';
import { SourceError } from '../../../../runtime/pipeline-error';
import { requestUrl } from '../files/http-file-source';

export interface ArcgisClientOptions {
  datasetName: string;
  /** The layer's URL (`https://<host>/.../FeatureServer/<n>`): its identity, named in messages. */
  url: string;
  /** An origin requests go to instead of the URL's own (config.ts SOURCE_ENDPOINT_URL). */
  endpoint?: string;
  timeoutMs: number;
  retry: RetryPolicy;
  http?: AxiosInstance;
  onRetry?: (info: { attempt: number; delayMs: number; reason: string; url: string }) => void;
}

export class ArcgisSourceError extends SourceError {
  override name = 'ArcgisSourceError';
  constructor(
    message: string,
    /** The ArcGIS error code (in an HTTP 200 body) or the HTTP status; undefined for a network failure. */
    readonly code: number | undefined,
  ) {
    super(message);
  }
}

/** Error codes of the `error` object (or HTTP statuses) worth another attempt. */
const RETRYABLE = (code: number): boolean => code === 429 || code >= 500;

/** What an ArcGIS error code means for the person reading the message. */
function meaning(code: number): string {
  if (code === 498) return 'the token is invalid or expired: the layer is not public';
  if (code === 499) return 'a token is required: the layer is not public';
  if (code === 400) return 'the layer refused the request (a field, the where clause or a parameter it does not support)';
  if (code === 403) return 'access to the layer is denied';
  if (code === 404) return 'no such layer: check source.url';
  return RETRYABLE(code) ? 'the server failed' : 'the request was refused';
}

/** The `error` object of an ArcGIS answer, when it is one. */
export function arcgisError(body: unknown): { code: number; message: string } | undefined {
  if (typeof body !== 'object' || body === null || !('error' in body)) return undefined;
  const e = (body as { error: unknown }).error;
  if (typeof e !== 'object' || e === null) return { code: 0, message: JSON.stringify(e) };
  const { code, message, details } = e as { code?: unknown; message?: unknown; details?: unknown };
  const text = [typeof message === 'string' ? message : '', ...(Array.isArray(details) ? details.filter((d): d is string => typeof d === 'string') : [])]
    .filter(Boolean)
    .join('; ');
  return { code: typeof code === 'number' ? code : Number(code) || 0, message: text.slice(0, 300) || 'no message' };
}

export class ArcgisClient {
  private readonly http: AxiosInstance;
  constructor(private readonly options: ArcgisClientOptions) {
    this.http = options.http ?? axios.create();
  }

  /** The layer's metadata document. */
  layer(budgetMs?: BudgetMs): Promise<unknown> {
    return this.getJson('', { f: 'json' }, 'layer metadata', budgetMs);
  }

  /** One `query` request; the parameters are sent as given (with `f`). */
  query(params: Record<string, string | number | boolean>, budgetMs?: BudgetMs): Promise<unknown> {
    return this.getJson('/query', params, 'query', budgetMs);
  }

  private async getJson(suffix: string, params: Record<string, string | number | boolean>, what: string, budgetMs: BudgetMs | undefined): Promise<unknown> {
    const { retry, timeoutMs, datasetName } = this.options;
    const base = requestUrl(this.options.url.replace(/\/+$/, ''), this.options.endpoint);
    const search = new URLSearchParams(Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]));
    const url = `${base}${suffix}?${search.toString()}`;
    // Messages name the declared layer, never the local stand-in's origin.
    const shown = `${this.options.url.replace(/\/+$/, '')}${suffix}`;
    let last: string;
    let code: number | undefined;
    let deadlineMs = timeoutMs;
    for (let attempt = 1; ; attempt++) {
      let retryable = true;
      try {
        // One deadline for headers and body: a body that trickles (slow-loris) is cut like a silent server.
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), deadlineMs);
        const res = await this.http
          .get<string>(url, { responseType: 'text', transformResponse: (d: unknown) => d, timeout: deadlineMs, signal: controller.signal, validateStatus: () => true })
          .finally(() => clearTimeout(timer));
        code = res.status;
        let body: unknown;
        try {
          body = JSON.parse(res.data);
        } catch {
          body = undefined;
        }
        const error = arcgisError(body);
        if (error) {
          code = error.code;
          last = `ArcGIS error ${error.code} in an HTTP ${res.status} answer: ${error.message} (${meaning(error.code)})`;
          retryable = RETRYABLE(error.code);
        } else if (res.status !== 200) {
          last = `HTTP ${res.status} (${meaning(res.status)})${res.data ? `: ${String(res.data).slice(0, 200).replace(/\s+/g, ' ')}` : ''}`;
          retryable = RETRYABLE(res.status);
        } else if (body === undefined || typeof body !== 'object' || body === null) {
          // A proxy's HTML page or a cut body: the server's trouble, worth another attempt.
          last = `an answer that is not a JSON object (${String(res.data).slice(0, 120).replace(/\s+/g, ' ')})`;
        } else {
          return body;
        }
      } catch (err) {
        if (!isAxiosError(err)) throw err;
        code = undefined;
        last = err.code === 'ERR_CANCELED' ? `no complete answer within the ${deadlineMs / 1000} s deadline` : `${err.code ?? 'network error'}: ${err.message}`;
        if (err.code === 'ENOTFOUND') retryable = false;
      }
      if (!retryable || attempt >= retry.maxAttempts) break;
      const delayMs = backoffDelay(retry, attempt);
      deadlineMs = retryDeadline(budgetMs, delayMs, timeoutMs, `${what} of ${shown} for dataset ${datasetName} (${last}, attempt ${attempt})`);
      this.options.onRetry?.({ attempt, delayMs, reason: last, url: shown });
      await retry.sleep(delayMs);
    }
    throw new ArcgisSourceError(
      `${what} of ${shown} for dataset ${datasetName} failed: ${last}. The checkpoint was not advanced past the last delivered page; ` +
        're-run to resume, or check the layer URL (source.url) and that the layer is public.',
      code,
    );
  }
}
