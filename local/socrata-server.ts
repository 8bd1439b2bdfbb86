/**
 * A local Socrata-compatible server on 127.0.0.1: `/resource/<id>.json` with the SoQL subset in
 * ./soql.ts, SODA 3's `/api/v3/views/<id>/query.json` (./soda3-route.ts) and `/api/views/<id>.json`
 * column metadata, shaped like the real API. Used by tests, `npm run local` and the benchmark, so
 * it keeps rows sorted per requested order (cached until the next mutation), binary-searches
 * keyset `$where`s, caches each row's JSON and streams responses.
 * Faults (429/500/202, slow, truncated, reset) and row mutations are injectable and deterministic.
 *
 * The rows live in ./socrata-dataset.ts, queries are answered by ./socrata-query.ts, mutations by
 * ./socrata-mutations.ts and faults scheduled by ./socrata-faults.ts; this module routes requests.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { FIRE_INCIDENT_COLUMNS, FireIncidentGenerator, seededRandom } from './fire-incidents-generator';
import { SoqlError, type Row } from './soql';
import { RowFile } from './row-file';
import { soda3Route } from './soda3-route';
import { Dataset, randomSystemId, type ColumnMeta } from './socrata-dataset';
import { FaultSchedule } from './socrata-faults';
import { mutateDataset, type MutateOptions, type MutateResult, type MutationSource } from './socrata-mutations';
import { RowQueries } from './socrata-query';

// Faults and the request log are in their own module: the SODA 3 route (soda3-route.ts) records requests too.
import type { Fault, FaultRule, RequestRecord } from './socrata-requests';
export type { ColumnMeta, Fault, FaultRule, MutateOptions, MutateResult, RequestRecord };

export interface SocrataServerOptions {
  /** Dataset id served; default wr8u-xric. */
  datasetId?: string;
  /** Generated SF Fire Incidents rows (a count) or the rows to serve (with or without system fields). */
  rows?: number | Row[];
  seed?: number;
  /** Column metadata; default the SF Fire Incidents columns. */
  columns?: ColumnMeta[];
  primaryKey?: string;
  port?: number;
  /**
   * Growth of a generated source, replayed after `rows`: each step adds that many generated rows
   * with one new `:updated_at` after every row already there (what `mutate({ add })` does).
   */
  growth?: number[];
  /**
   * When the generated source was first loaded (ISO): the first load batch's `:updated_at`, and the
   * horizon no incident passes. Default 2024-01-02T03:04:05Z (tests rely on fixed values);
   * `npm run local` anchors it near the time the local source was created, so it looks fresh.
   */
  loadedAt?: string;
  /**
   * When each growth step happened (ISO, same length as `growth`): its rows' `:updated_at` is this
   * time, or one second after the newest row if that is later (never behind a checkpoint).
   */
  growthAt?: string[];
  /**
   * Store rows compactly in a file in this directory (deleted on close) instead of as objects:
   * memory no longer grows with the row count (about 130 bytes a row instead of ~3 KB), and
   * generated rows are produced in the background while the first pages are served. `rows` then
   * exposes only the system fields and the primary key of each row.
   */
  storageDir?: string;
  /** Called with each request's record once its response is finished (the child-process host relays them). */
  onRequest?: (record: RequestRecord) => void;
}

export interface SocrataServer {
  url: string;
  datasetId: string;
  resourceUrl: string;
  /**
   * Current rows as served with `$select=:*,*`, in insertion order (with `storageDir`: only their
   * system fields and primary key, and only the rows generated so far).
   */
  readonly rows: readonly Row[];
  /** Every request received, in order. */
  readonly requests: readonly RequestRecord[];
  setFaults(rules: FaultRule[]): void;
  mutate(options: MutateOptions): MutateResult;
  close(): Promise<void>;
}

/** A query error in SODA 2's body shape. */
const soda2ErrorBody = (err: SoqlError, query: Record<string, string>): unknown => ({ code: err.code, error: true, message: err.message, data: { query } });

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Writes a body chunk by chunk, waiting for `drain` when the socket's buffer is full. */
function streamChunks(res: http.ServerResponse, chunks: Iterator<string | Buffer>): void {
  const pump = (): void => {
    try {
      for (;;) {
        const next = chunks.next();
        if (next.done) break;
        if (!res.write(next.value)) {
          res.once('drain', pump);
          return;
        }
      }
    } catch (err) {
      // A failure mid-body (the row file gone): the client sees a cut response, the server says why.
      process.stderr.write(`local Socrata server: response cut: ${(err as Error).message}\n`);
      res.destroy();
      return;
    }
    res.end();
  };
  pump();
}

/** The generated or given rows the server starts with (generated lazily in compact mode). */
function loadRows(source: MutationSource, options: SocrataServerOptions, compact: boolean): void {
  const { dataset, generator, rand } = source;
  if (typeof options.rows === 'number' || options.rows === undefined) {
    const n = options.rows ?? 1000;
    if (compact) {
      // Generated lazily, in keyset order: a page is served as soon as the rows it needs exist.
      const growth = options.growth ?? [];
      dataset.pending = {
        generator,
        segments: [{ rows: n, growth: false }, ...growth.map((g, i) => ({ rows: g, growth: true, ...(options.growthAt?.[i] ? { at: options.growthAt[i] } : {}) }))],
        batch: [],
        total: n + growth.reduce((a, b) => a + b, 0),
      };
      dataset.keysetSorted = true;
    } else {
      for (let i = 0; i < n; i++) dataset.rows.push(generator.next());
    }
  } else {
    if (options.growth?.length) throw new Error('growth applies to generated rows (rows: a count), not to given rows');
    const base = Date.parse(options.loadedAt ?? '2024-01-02T03:04:05.000Z');
    dataset.rows = options.rows.map((r, i) => {
      if (typeof r[':id'] === 'string' && typeof r[':updated_at'] === 'string') return dataset.intern(r);
      const at = new Date(base + Math.floor(i / 100) * 1000).toISOString();
      return dataset.intern({ ':id': randomSystemId(rand), ':created_at': at, ':updated_at': at, ...r });
    });
  }
  if (!compact) for (const add of options.growth ?? []) mutateDataset(source, { add });
}

/** The HTTP side: one method per route, the resource route's faults, and the server's lifetime. */
class SocrataHttpServer {
  readonly requests: RequestRecord[] = [];
  readonly faults = new FaultSchedule();
  private readonly server: http.Server;
  private readonly queries: RowQueries;
  private readonly soda3: ReturnType<typeof soda3Route>;
  private resourceRequests = 0;
  private closed = false;

  constructor(
    readonly datasetId: string,
    private readonly dataset: Dataset,
    private readonly file: RowFile | undefined,
    private readonly onRequest: ((record: RequestRecord) => void) | undefined,
  ) {
    this.queries = new RowQueries(dataset);
    this.soda3 = soda3Route({ datasetId, sendJson, serve: (res, params, record, errorBody) => this.serveRows(res, params, record, errorBody) });
    this.server = http.createServer((req, res) => this.route(req, res));
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const params = Object.fromEntries(url.searchParams.entries());
    const record: RequestRecord = { n: 0, path: url.pathname, params, status: 200 };
    const token = req.headers['x-app-token'];
    if (typeof token === 'string') record.appToken = token;
    this.requests.push(record);
    if (this.onRequest) res.once('close', () => this.onRequest!(record));

    if (url.pathname.startsWith('/api/v3/')) return this.soda3(req, res, url, record);
    if (req.method !== 'GET') {
      record.status = 405;
      return sendJson(res, 405, { code: 'method.not_allowed', error: true, message: `${req.method} is not supported` });
    }
    if (url.pathname === `/api/views/${this.datasetId}.json`) return this.metadata(res);
    if (url.pathname !== `/resource/${this.datasetId}.json`) {
      record.status = 404;
      return sendJson(res, 404, { code: 'not_found', error: true, message: `No dataset at ${url.pathname}; this server serves /resource/${this.datasetId}.json` });
    }
    this.serveRows(res, params, record, (err) => soda2ErrorBody(err, params));
  }

  /** `/api/views/<id>.json`: the column metadata. */
  private metadata(res: http.ServerResponse): void {
    sendJson(res, 200, {
      id: this.datasetId,
      name: this.datasetId,
      rowsUpdatedAt: Math.floor(Date.now() / 1000),
      columns: this.dataset.columns.map((c, i) => ({ id: i + 1, name: c.fieldName, fieldName: c.fieldName, dataTypeName: c.dataTypeName, position: i + 1 })),
    });
  }

  /** A row request (SODA 2's, or SODA 3's as SODA 2 parameters): counted, faults injected, rows streamed. */
  private serveRows(res: http.ServerResponse, params: Record<string, string>, record: RequestRecord, errorBody: (err: SoqlError) => unknown): void {
    record.n = ++this.resourceRequests;
    const fault = this.faults.take(record.n, params.$where);
    if (fault) record.fault = fault.kind;
    const respond = (): void => {
      this.answerRows(res, params, record, fault, errorBody).catch((err: unknown) => {
        record.status = 500;
        if (!res.headersSent) sendJson(res, 500, { code: 'internal', error: true, message: (err as Error).message });
        else res.destroy();
      });
    };
    if (fault?.kind === 'slow') setTimeout(respond, fault.delayMs);
    else respond();
  }

  private async answerRows(
    res: http.ServerResponse,
    params: Record<string, string>,
    record: RequestRecord,
    fault: Fault | undefined,
    errorBody: (err: SoqlError) => unknown,
  ): Promise<void> {
    if (fault?.kind === 'status') return this.injectStatus(res, record, fault);
    if (fault?.kind === 'reset') {
      record.status = 0;
      res.socket?.destroy();
      return;
    }
    let body: Iterable<string | Buffer>;
    try {
      body = await this.pageBody(params, record);
    } catch (err) {
      if (err instanceof SoqlError) {
        record.status = 400;
        return sendJson(res, 400, errorBody(err));
      }
      throw err;
    }
    if (fault?.kind === 'truncate') return this.sendTruncated(res, body);
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'X-SODA2-Fields': '[]' });
    streamChunks(res, body[Symbol.iterator]());
  }

  private async pageBody(params: Record<string, string>, record: RequestRecord): Promise<Iterable<string | Buffer>> {
    const q = this.queries.parse(params);
    await this.queries.untilServable(q);
    const body = this.queries.page(q, record);
    // In memory, the page is what the rows were when asked (a mutation during a slow send does not
    // change it); compact pages are built as they are sent (the rows only grow while they are).
    return this.file ? body : [...body];
  }

  private injectStatus(res: http.ServerResponse, record: RequestRecord, fault: Extract<Fault, { kind: 'status' }>): void {
    record.status = fault.status;
    const headers: Record<string, string> = fault.retryAfter !== undefined ? { 'Retry-After': fault.retryAfter } : {};
    const body = fault.body ?? (fault.status === 202 ? '{"message":"processing"}' : { code: 'injected', error: true, message: `injected HTTP ${fault.status}` });
    sendJson(res, fault.status, body, headers);
  }

  /** The first half of the page's bytes, then the end of the response: a body cut mid-JSON. */
  private sendTruncated(res: http.ServerResponse, body: Iterable<string | Buffer>): void {
    const full = Buffer.concat([...body].map((c) => (typeof c === 'string' ? Buffer.from(c) : c))).toString('utf8');
    const cut = full.slice(0, Math.max(1, Math.floor(full.length / 2)));
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
    res.end(cut);
  }

  /** Generates pending rows a slice at a time, so requests are served in between. */
  startGenerating(): void {
    const generate = (): void => {
      if (!this.closed && this.dataset.generateSome(2_000)) setImmediate(generate);
    };
    if (this.dataset.pending) setImmediate(generate);
    // A process that exits without closing the server (its parent gone) still deletes the row file.
    if (this.file) process.once('exit', this.removeFile);
  }

  private readonly removeFile = (): void => this.file?.close();

  async listen(port: number): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err) => {
        // Not listening: stop the background generation before its file goes.
        this.closed = true;
        this.file?.close();
        reject(err);
      });
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.closed) return resolve();
      this.closed = true;
      this.server.closeAllConnections();
      this.server.close((err) => {
        this.file?.close();
        process.off('exit', this.removeFile);
        if (err) reject(err);
        else resolve();
      });
    });
  }
}

export async function startSocrataServer(options: SocrataServerOptions = {}): Promise<SocrataServer> {
  const datasetId = options.datasetId ?? 'wr8u-xric';
  const seed = options.seed ?? 1;
  const primaryKey = options.primaryKey ?? 'id';
  const file = options.storageDir ? new RowFile(path.join(options.storageDir, `rows-${process.pid}-${randomUUID().slice(0, 8)}.jsonl`)) : undefined;
  const dataset = new Dataset(options.columns ?? FIRE_INCIDENT_COLUMNS, primaryKey, file);
  const generator = new FireIncidentGenerator({ seed, ...(options.loadedAt ? { loadedAt: new Date(options.loadedAt) } : {}) });
  const source: MutationSource = { dataset, generator, rand: seededRandom(seed ^ 0x5bd1e995), primaryKey };
  loadRows(source, options, file !== undefined);

  const server = new SocrataHttpServer(datasetId, dataset, file, options.onRequest);
  server.startGenerating();
  const url = await server.listen(options.port ?? 0);
  return {
    url,
    datasetId,
    resourceUrl: `${url}/resource/${datasetId}.json`,
    get rows(): readonly Row[] {
      return dataset.rows;
    },
    requests: server.requests,
    setFaults: (rules) => server.faults.set(rules),
    mutate: (m) => mutateDataset(source, m),
    close: () => server.close(),
  };
}
