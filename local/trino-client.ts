/**
 * Trino's client REST protocol (POST /v1/statement, then follow nextUri until it is gone), enough
 * for the local Athena endpoint: one statement, its columns (with type signatures), rows, update
 * type, error and statistics, with progress reported while it runs and cancellation.
 */

/** Trino's structured type signature, as sent with each column. */
export interface TrinoTypeSignature {
  rawType: string;
  arguments: TrinoTypeArgument[];
}

export type TrinoTypeArgument =
  | { kind: 'LONG'; value: number }
  | { kind: 'TYPE'; value: TrinoTypeSignature }
  | { kind: 'NAMED_TYPE'; value: { fieldName?: { name: string }; typeSignature: TrinoTypeSignature } }
  | { kind: 'VARIABLE'; value: string };

export interface TrinoColumn {
  name: string;
  /** Trino's type, e.g. `varchar`, `timestamp(6)`, `row(type varchar, ...)`. */
  type: string;
  typeSignature?: TrinoTypeSignature;
}

export interface TrinoError {
  message: string;
  errorCode: number;
  errorName: string;
  /** USER_ERROR, INTERNAL_ERROR, INSUFFICIENT_RESOURCES, EXTERNAL. */
  errorType: string;
}

/** The part of Trino's `stats` object the Athena endpoint reports. */
export interface TrinoStats {
  /** QUEUED, PLANNING, STARTING, RUNNING, FINISHING, FINISHED, FAILED. */
  state: string;
  queued?: boolean;
  elapsedTimeMillis?: number;
  queuedTimeMillis?: number;
  cpuTimeMillis?: number;
  processedBytes?: number;
  physicalInputBytes?: number;
}

export interface TrinoResult {
  queryId: string;
  columns: TrinoColumn[];
  /**
   * Rows as Trino's JSON encodes them. Integers beyond 2^53 arrive as strings (JSON.parse would
   * round them); every other value is as Trino sent it.
   */
  rows: unknown[][];
  /** CREATE TABLE, MERGE, INSERT, ... (absent for a SELECT). */
  updateType?: string;
  updateCount?: number;
  error?: TrinoError;
  stats?: TrinoStats;
}

interface StatementResponse {
  id: string;
  nextUri?: string;
  columns?: TrinoColumn[];
  data?: unknown[][];
  updateType?: string;
  updateCount?: number;
  error?: TrinoError;
  stats?: TrinoStats;
}

export interface TrinoSession {
  catalog?: string;
  schema?: string;
  user?: string;
  /** Session properties (`X-Trino-Session`), e.g. `{ 'iceberg.compression_codec': 'ZSTD' }`. */
  properties?: Record<string, string>;
  /** Called with the query id as soon as Trino assigns it (so a caller can cancel it). */
  onQueryId?: (id: string) => void;
  /** Called with Trino's statistics after each response. */
  onProgress?: (stats: TrinoStats) => void;
}

/**
 * JSON.parse, except that integer literals too long to be exact doubles become strings: Trino
 * encodes bigint as a JSON number, and a bigint of 17+ digits would otherwise be rounded.
 */
export function parseTrinoJson(text: string): unknown {
  const safe = text.replace(/"(?:[^"\\]|\\.)*"|(?<![\d.eE+-])(-?\d{16,})(?![\d.eE])/g, (m, big: string | undefined) =>
    big !== undefined && !Number.isSafeInteger(Number(big)) ? `"${big}"` : m,
  );
  return JSON.parse(safe);
}

export class TrinoClient {
  constructor(readonly url: string) {}

  private headers(session: TrinoSession): Record<string, string> {
    const props = Object.entries(session.properties ?? {});
    return {
      'X-Trino-User': session.user ?? 'athena',
      ...(session.catalog ? { 'X-Trino-Catalog': session.catalog } : {}),
      ...(session.schema ? { 'X-Trino-Schema': session.schema } : {}),
      ...(props.length ? { 'X-Trino-Session': props.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join(',') } : {}),
      // Athena evaluates current_timestamp and friends in UTC.
      'X-Trino-Time-Zone': 'UTC',
      // Timestamps keep their precision (an Iceberg timestamp(6) prints 6 digits, as Trino prints it).
      'X-Trino-Client-Capabilities': 'PARAMETRIC_DATETIME',
    };
  }

  /** Run one statement to its end; a failed statement resolves with `error` set. */
  async execute(sql: string, session: TrinoSession = {}): Promise<TrinoResult> {
    const headers = this.headers(session);
    let nextUri: string | undefined;
    const send = (): Promise<Response> =>
      nextUri ? fetch(nextUri, { headers }) : fetch(`${this.url}/v1/statement`, { method: 'POST', body: sql, headers });
    const result: TrinoResult = { queryId: '', columns: [], rows: [] };
    for (let delay = 5; ; ) {
      const res = await send();
      // Busy: Trino asks clients to retry the same URI.
      if (res.status === 502 || res.status === 503) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (res.status !== 200) throw new Error(`Trino answered HTTP ${res.status}: ${(await res.text()).slice(0, 500)}`);
      const page = parseTrinoJson(await res.text()) as StatementResponse;
      if (!result.queryId && page.id) {
        result.queryId = page.id;
        session.onQueryId?.(page.id);
      }
      if (page.columns) result.columns = page.columns;
      if (page.data) for (const row of page.data) result.rows.push(row);
      if (page.updateType) result.updateType = page.updateType;
      if (page.updateCount !== undefined) result.updateCount = page.updateCount;
      if (page.error) result.error = page.error;
      if (page.stats) {
        result.stats = page.stats;
        session.onProgress?.(page.stats);
      }
      if (!page.nextUri) return result;
      nextUri = page.nextUri;
      // Trino long-polls; a short pause only while it answers with no data.
      if (!page.data) await new Promise((r) => setTimeout(r, delay));
      delay = page.data ? 5 : Math.min(delay * 2, 100);
    }
  }

  /** Cancel a running query (DELETE /v1/query/<id>); its execute() then resolves with USER_CANCELED. */
  async cancel(queryId: string): Promise<void> {
    const res = await fetch(`${this.url}/v1/query/${encodeURIComponent(queryId)}`, { method: 'DELETE', headers: this.headers({}) });
    await res.arrayBuffer();
  }
}
