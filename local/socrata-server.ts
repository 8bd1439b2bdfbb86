/**
 * A local Socrata-compatible server on 127.0.0.1: `/resource/<id>.json` with the SoQL subset in
 * ./soql.ts, SODA 3's `/api/v3/views/<id>/query.json` (./soda3-route.ts) and `/api/views/<id>.json`
 * column metadata, shaped like the real API. Used by tests, `npm run local` and the benchmark, so
 * it keeps rows sorted per requested order (cached until the next mutation), binary-searches
 * keyset `$where`s, caches each row's JSON and streams responses.
 * Faults (429/500/202, slow, truncated, reset) and row mutations are injectable and deterministic.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { FIRE_INCIDENT_COLUMNS, FireIncidentGenerator, floating, seededRandom, type FireIncidentRow } from './fire-incidents-generator';
import {
  compareKeys,
  compileWhere,
  fieldValue,
  keysetLowerBound,
  parseOrder,
  parseSelect,
  parseWhere,
  SoqlError,
  type FieldKind,
  type OrderKey,
  type Row,
  type WhereNode,
} from './soql';
import { RowFile } from './row-file';
import { soda3Route } from './soda3-route';

export interface ColumnMeta {
  fieldName: string;
  dataTypeName: string;
}

// Faults and the request log are in their own module: the SODA 3 route (soda3-route.ts) records requests too.
import type { Fault, FaultRule, RequestRecord } from './socrata-requests';
export type { Fault, FaultRule, RequestRecord };

export interface MutateOptions {
  /** Rows to update: new `:updated_at`, changed values. */
  update?: number;
  /** New generated rows. */
  add?: number;
  /** New rows without the primary key column. */
  addKeyless?: number;
  /** New rows whose JSON exceeds 1,000 KiB. */
  addOversize?: number;
  /** These rows, added as they are (system fields set here): for datasets other than SF Fire Incidents. */
  addRows?: Row[];
  /** Rows to delete, chosen at random (deterministically). */
  delete?: number;
  /** Rows to delete, by primary key. */
  deleteKeys?: string[];
  /**
   * A publisher's full replace, applied after the other operations: every row gets a new
   * `:updated_at`; with `newIds` also a new `:id` and `:created_at` (a truncate-and-insert style
   * replace); `change` rows, chosen at random, also get new values (as `update` does).
   */
  replace?: { newIds?: boolean; change?: number };
  /** The `:updated_at` of changed/added rows; default: one second after the newest row. */
  at?: Date;
}

export interface MutateResult {
  /** `:id`s of the rows changed or added, per operation. */
  updated: string[];
  added: string[];
  keyless: string[];
  oversize: string[];
  /** Primary keys of the deleted rows. */
  deleted: string[];
  /** Rows a full replace rewrote (all of them), and the primary keys of those whose values changed. */
  replaced: number;
  replacedChanged: string[];
  updatedAt: string;
}

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

const SYSTEM_KIND: Record<string, FieldKind> = { ':id': 'text', ':created_at': 'timestamp', ':updated_at': 'timestamp' };

function kindOfType(t: string): FieldKind {
  if (t === 'number' || t === 'integer' || t === 'money' || t === 'double') return 'number';
  if (t === 'floating_timestamp' || t === 'calendar_date' || t === 'fixed_timestamp') return 'timestamp';
  if (t === 'text' || t === 'url' || t === 'checkbox') return 'text';
  return 'other';
}

/** Where a compactly stored row's text is in the row file (symbol keys: invisible to JSON and Object.keys). */
const OFFSET = Symbol('row file offset');
const LENGTH = Symbol('row file length');
type StoredRow = Row & { [OFFSET]?: number; [LENGTH]?: number };

/** Generated rows not yet produced: the compact server generates them in the background while it serves. */
interface PendingRows {
  generator: FireIncidentGenerator;
  /** Row counts still to generate: the first with the generator's own load batches, later ones as growth. */
  segments: { rows: number; growth: boolean; at?: string }[];
  /** `:updated_at` of a growth segment (all its rows share it, as a publisher's insert would). */
  at?: string;
  /** The current load batch (rows sharing one `:updated_at`), sorted by `:id` once complete. */
  batch: Row[];
  total: number;
}

class Dataset {
  rows: Row[] = [];
  private readonly kinds: Map<string, FieldKind>;
  private sorted = new Map<string, Row[]>();
  private readonly jsonAll = new WeakMap<Row, string>();
  private readonly jsonPlain = new WeakMap<Row, string>();
  /** Compact mode only: the fields kept in memory; every other one is read from the row file. */
  private readonly light: Set<string>;
  /** Compact mode: `rows` is in `:updated_at, :id` order (generated and grown rows are), so that order needs no sort. */
  keysetSorted = false;
  pending: PendingRows | undefined;
  private waiters: (() => void)[] = [];

  constructor(
    readonly columns: ColumnMeta[],
    primaryKey: string,
    private readonly file?: RowFile,
  ) {
    this.kinds = new Map(columns.map((c) => [c.fieldName, kindOfType(c.dataTypeName)]));
    this.light = new Set([':id', ':created_at', ':updated_at', primaryKey]);
  }

  kindOf = (field: string): FieldKind => {
    const k = SYSTEM_KIND[field] ?? this.kinds.get(field);
    if (!k) throw new SoqlError(`No such column: ${field}`, 'query.soql.no-such-column');
    return k;
  };

  changed(): void {
    this.sorted.clear();
  }

  /** A row as the dataset holds it: in compact mode its text goes to the file and only the light fields stay. */
  intern(full: Row): Row {
    if (!this.file) return full;
    const [off, len] = this.file.append(JSON.stringify(full));
    const row: StoredRow = {};
    for (const f of this.light) if (full[f] !== undefined && full[f] !== null) row[f] = full[f];
    row[OFFSET] = off;
    row[LENGTH] = len;
    return row;
  }

  /** Every field of a row (compact mode reads it back from the file). */
  full(row: Row): Row {
    if (!this.file) return row;
    return JSON.parse(this.text(row).toString('utf8')) as Row;
  }

  private text(row: StoredRow): Buffer {
    return this.file!.read(row[OFFSET]!, row[LENGTH]!);
  }

  /** Whether comparing/projecting these fields needs the whole row (compact mode, a field not kept in memory). */
  needsFull(fields: Iterable<string>): boolean {
    if (!this.file) return false;
    for (const f of fields) if (!this.light.has(f)) return true;
    return false;
  }

  sortedBy(order: OrderKey[]): Row[] {
    const key = order.map((o) => `${o.field} ${o.desc ? 'd' : 'a'}`).join(',');
    if (this.keysetSorted && key === ':updated_at a,:id a') return this.rows;
    let rows = this.sorted.get(key);
    if (!rows) {
      const kinds = order.map((o) => this.kindOf(o.field));
      const whole = this.needsFull(order.map((o) => o.field));
      const decorated = this.rows.map((row) => {
        const values = whole ? this.full(row) : row;
        return { row, keys: order.map((o, i) => fieldValue(kinds[i]!, values[o.field])) };
      });
      decorated.sort((a, b) => compareKeys(a.keys, b.keys, order));
      rows = decorated.map((d) => d.row);
      this.sorted.set(key, rows);
    }
    return rows;
  }

  json(row: Row, system: boolean): string | Buffer {
    if (this.file) return system ? this.text(row) : plainJson(this.full(row));
    const cache = system ? this.jsonAll : this.jsonPlain;
    let s = cache.get(row);
    if (s === undefined) {
      s = system ? JSON.stringify(row) : plainJson(row);
      cache.set(row, s);
    }
    return s;
  }

  /** Rows the dataset will hold once generation is done. */
  get plannedRows(): number {
    return this.pending ? this.pending.total : this.rows.length;
  }

  /** Generates up to `max` more pending rows; false when there is nothing left. */
  generateSome(max: number): boolean {
    const p = this.pending;
    if (!p) return false;
    for (let n = 0; n < max; n++) {
      const seg = p.segments[0];
      if (!seg || seg.rows === 0) {
        if (seg) p.segments.shift();
        this.flushBatch();
        if (!p.segments.length) {
          this.pending = undefined;
          break;
        }
        // Growth: new rows get one new `:updated_at` after every row already there, like mutate({ add }).
        const next = p.segments[0]!;
        if (next.growth) {
          const afterNewest = Date.parse(String(this.rows.at(-1)?.[':updated_at'] ?? 0)) + 1000;
          p.at = new Date(Math.max(afterNewest, next.at ? Date.parse(next.at) : 0)).toISOString();
        }
        continue;
      }
      const dense = p.generator.nextDense();
      if (seg.growth) {
        dense[':created_at'] = p.at;
        dense[':updated_at'] = p.at;
      }
      seg.rows--;
      const row = this.intern(dense);
      if (p.batch.length && p.batch[0]![':updated_at'] !== row[':updated_at']) this.flushBatch();
      p.batch.push(row);
    }
    this.sorted.clear();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
    return this.pending !== undefined;
  }

  private flushBatch(): void {
    const batch = this.pending?.batch;
    if (!batch?.length) return;
    batch.sort((a, b) => (String(a[':id']) < String(b[':id']) ? -1 : 1));
    for (const r of batch) this.rows.push(r);
    this.pending!.batch = [];
  }

  /** Waits until `ready()` holds or generation is done. */
  async until(ready: () => boolean): Promise<void> {
    while (this.pending && !ready()) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  generateAll(): void {
    while (this.generateSome(10_000));
  }
}

function plainJson(row: Row): string {
  const plain: Row = {};
  for (const [k, v] of Object.entries(row)) if (!k.startsWith(':')) plain[k] = v;
  return JSON.stringify(plain);
}

/** Field names a `$where` tree reads. */
function whereFields(node: WhereNode, into: Set<string> = new Set()): Set<string> {
  switch (node.kind) {
    case 'and':
    case 'or':
      for (const a of node.args) whereFields(a, into);
      break;
    case 'not':
      whereFields(node.arg, into);
      break;
    default:
      into.add(node.field);
  }
  return into;
}

/** A JSON array body in ~64 KiB chunks, built as it is sent (a large page is never one string). */
function* jsonArrayChunks(items: Iterable<string | Buffer>): Generator<string | Buffer> {
  let parts: (string | Buffer)[] = ['['];
  let size = 1;
  let strings = true;
  let first = true;
  const take = (): string | Buffer => {
    const out = strings ? (parts as string[]).join('') : Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
    parts = [];
    size = 0;
    strings = true;
    return out;
  };
  for (const item of items) {
    parts.push(first ? '\n' : ',\n', item);
    first = false;
    size += 2 + item.length;
    if (typeof item !== 'string') strings = false;
    if (size > 65_536) yield take();
  }
  parts.push('\n]');
  yield take();
}

const SUPPORTED_PARAMS = new Set(['$select', '$where', '$order', '$limit', '$offset', '$$app_token']);

function randomSystemId(rand: () => number): string {
  const s = Math.floor(rand() * 36 ** 8).toString(36).padStart(8, '0');
  return `row-${s.slice(0, 4)}-${s.slice(4)}`;
}

export async function startSocrataServer(options: SocrataServerOptions = {}): Promise<SocrataServer> {
  const datasetId = options.datasetId ?? 'wr8u-xric';
  const seed = options.seed ?? 1;
  const primaryKey = options.primaryKey ?? 'id';
  const file = options.storageDir ? new RowFile(path.join(options.storageDir, `rows-${process.pid}-${randomUUID().slice(0, 8)}.jsonl`)) : undefined;
  const dataset = new Dataset(options.columns ?? FIRE_INCIDENT_COLUMNS, primaryKey, file);
  const generator = new FireIncidentGenerator({ seed, ...(options.loadedAt ? { loadedAt: new Date(options.loadedAt) } : {}) });
  const rand = seededRandom(seed ^ 0x5bd1e995);
  const requests: RequestRecord[] = [];
  let faults: FaultRule[] = [];
  let resourceRequests = 0;
  let closed = false;

  if (typeof options.rows === 'number' || options.rows === undefined) {
    const n = options.rows ?? 1000;
    if (file) {
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

  const takeFault = (n: number, where: string | undefined): Fault | undefined => {
    for (const rule of faults) {
      if (rule.whereIncludes !== undefined && !where?.includes(rule.whereIncludes)) continue;
      if (rule.requests?.includes(n)) return rule;
      if (rule.times !== undefined && rule.times > 0) {
        rule.times--;
        return rule;
      }
    }
    return undefined;
  };

  const sendJson = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };
  const soda2ErrorBody = (err: SoqlError, query: Record<string, string>): unknown => ({ code: err.code, error: true, message: err.message, data: { query } });
  const soda3 = soda3Route({ datasetId, sendJson, serve: serveRequest });

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const params = Object.fromEntries(url.searchParams.entries());
    const record: RequestRecord = { n: 0, path: url.pathname, params, status: 200 };
    const token = req.headers['x-app-token'];
    if (typeof token === 'string') record.appToken = token;
    requests.push(record);
    if (options.onRequest) res.once('close', () => options.onRequest!(record));

    if (url.pathname.startsWith('/api/v3/')) return soda3(req, res, url, record);
    if (req.method !== 'GET') {
      record.status = 405;
      return sendJson(res, 405, { code: 'method.not_allowed', error: true, message: `${req.method} is not supported` });
    }
    if (url.pathname === `/api/views/${datasetId}.json`) {
      return sendJson(res, 200, {
        id: datasetId,
        name: datasetId,
        rowsUpdatedAt: Math.floor(Date.now() / 1000),
        columns: dataset.columns.map((c, i) => ({ id: i + 1, name: c.fieldName, fieldName: c.fieldName, dataTypeName: c.dataTypeName, position: i + 1 })),
      });
    }
    if (url.pathname !== `/resource/${datasetId}.json`) {
      record.status = 404;
      return sendJson(res, 404, { code: 'not_found', error: true, message: `No dataset at ${url.pathname}; this server serves /resource/${datasetId}.json` });
    }
    serveRequest(res, params, record, (err) => soda2ErrorBody(err, params));
  });

  /** A row request (SODA 2's, or SODA 3's as SODA 2 parameters): counted, faults injected, rows streamed. */
  function serveRequest(res: http.ServerResponse, params: Record<string, string>, record: RequestRecord, errorBody: (err: SoqlError) => unknown): void {
    record.n = ++resourceRequests;
    const fault = takeFault(record.n, params.$where);
    if (fault) record.fault = fault.kind;
    const respond = (): void => {
      serveResource(res, params, record, fault, errorBody).catch((err: unknown) => {
        record.status = 500;
        if (!res.headersSent) sendJson(res, 500, { code: 'internal', error: true, message: (err as Error).message });
        else res.destroy();
      });
    };
    if (fault?.kind === 'slow') setTimeout(respond, fault.delayMs);
    else respond();
  }

  async function serveResource(
    res: http.ServerResponse,
    params: Record<string, string>,
    record: RequestRecord,
    fault: Fault | undefined,
    errorBody: (err: SoqlError) => unknown,
  ): Promise<void> {
    if (fault?.kind === 'status') {
      record.status = fault.status;
      const headers: Record<string, string> = fault.retryAfter !== undefined ? { 'Retry-After': fault.retryAfter } : {};
      const body = fault.body ?? (fault.status === 202 ? '{"message":"processing"}' : { code: 'injected', error: true, message: `injected HTTP ${fault.status}` });
      return sendJson(res, fault.status, body, headers);
    }
    if (fault?.kind === 'reset') {
      record.status = 0;
      res.socket?.destroy();
      return;
    }
    let body: Iterable<string | Buffer>;
    try {
      const q = parseQuery(params);
      await untilServable(q);
      body = query(q, record);
      // In memory, the page is what the rows were when asked (a mutation during a slow send does not
      // change it); compact pages are built as they are sent (the rows only grow while they are).
      if (!file) body = [...body];
    } catch (err) {
      if (err instanceof SoqlError) {
        record.status = 400;
        return sendJson(res, 400, errorBody(err));
      }
      throw err;
    }
    if (fault?.kind === 'truncate') {
      const full = Buffer.concat([...body].map((c) => (typeof c === 'string' ? Buffer.from(c) : c))).toString('utf8');
      const cut = full.slice(0, Math.max(1, Math.floor(full.length / 2)));
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
      res.end(cut);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'X-SODA2-Fields': '[]' });
    streamChunks(res, body[Symbol.iterator]());
  }

  interface ParsedQuery {
    select: ReturnType<typeof parseSelect>;
    where: WhereNode | undefined;
    order: OrderKey[];
    limit: number;
    offset: number;
    predicate: ((row: Row) => boolean) | undefined;
    /** The keyset lower bound of `where` on the leading order keys (binary-searched). */
    bound: WhereNode | undefined;
    /** The predicate reads fields the compact store keeps only in its file. */
    wholeRows: boolean;
  }

  function parseQuery(params: Record<string, string>): ParsedQuery {
    for (const p of Object.keys(params)) {
      if (p.startsWith('$') && !SUPPORTED_PARAMS.has(p)) {
        throw new SoqlError(`Unsupported query parameter ${p} (supported: ${[...SUPPORTED_PARAMS].join(', ')})`, 'query.soql.unsupported');
      }
    }
    const select = parseSelect(params.$select);
    const where = params.$where ? parseWhere(params.$where) : undefined;
    const order = parseOrder(params.$order);
    const limit = params.$limit === undefined ? 1000 : Number(params.$limit);
    const offset = params.$offset === undefined ? 0 : Number(params.$offset);
    if (!Number.isInteger(limit) || limit < 0) throw new SoqlError(`$limit must be a non-negative integer, not "${params.$limit}"`);
    if (!Number.isInteger(offset) || offset < 0) throw new SoqlError(`$offset must be a non-negative integer, not "${params.$offset}"`);
    if (select.kind === 'columns') for (const c of select.columns) dataset.kindOf(c.field);
    const predicate = where ? compileWhere(where, dataset.kindOf) : undefined;
    const effectiveOrder = order.length ? order : [{ field: ':id', desc: false }];
    const bound = where && SYSTEM_KIND[effectiveOrder[0]!.field] ? keysetLowerBound(where, effectiveOrder) : undefined;
    return { select, where, order: effectiveOrder, limit, offset, predicate, bound, wholeRows: where ? dataset.needsFull(whereFields(where)) : false };
  }

  /** Index of the first sorted row matching the keyset lower bound: those rows form a suffix. */
  function suffixStart(rows: Row[], bound: WhereNode | undefined): number {
    if (!bound) return 0;
    const compiled = compileWhere(bound, dataset.kindOf);
    const test = dataset.needsFull(whereFields(bound)) ? (row: Row) => compiled(dataset.full(row)) : compiled;
    let lo = 0;
    let hi = rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (test(rows[mid]!)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /**
   * While rows are still being generated: a keyset page (the fetcher's query) waits only for the
   * rows it needs, a plain count is known in advance, anything else waits for every row.
   */
  async function untilServable(q: ParsedQuery): Promise<void> {
    if (!dataset.pending) return;
    if (q.select.kind === 'count' && !q.where) return;
    const keysetPage =
      q.select.kind !== 'count' && q.offset === 0 && q.order.length === 2 &&
      q.order[0]!.field === ':updated_at' && !q.order[0]!.desc && q.order[1]!.field === ':id' && !q.order[1]!.desc &&
      (!q.where || q.bound === q.where);
    if (keysetPage) {
      await dataset.until(() => dataset.rows.length - suffixStart(dataset.rows, q.bound) >= q.limit);
      return;
    }
    await dataset.until(() => false);
  }

  function* query(q: ParsedQuery, record?: RequestRecord): Generator<string | Buffer> {
    const { select, predicate, limit, offset } = q;
    const rows = dataset.sortedBy(q.order);
    const start = suffixStart(rows, q.bound);
    // The bound alone needs no check past `start`; a fuller $where is checked row by row.
    const check = predicate && q.bound !== q.where ? predicate : undefined;
    const values = (row: Row): Row => (q.wholeRows ? dataset.full(row) : row);

    if (select.kind === 'count') {
      let n = 0;
      if (!q.where && dataset.pending) n = dataset.plannedRows;
      else for (let i = start; i < rows.length; i++) if (!check || check(values(rows[i]!))) n++;
      yield JSON.stringify([{ [select.alias]: String(n) }]);
      return;
    }
    const wholeForColumns = select.kind === 'columns' && dataset.needsFull(select.columns.map((c) => c.field));
    let sent = 0;
    const items = function* (): Generator<string | Buffer> {
      let skipped = 0;
      // The rows as they were when asked: rows generated while this page is sent belong to later pages.
      const end = rows.length;
      for (let i = start; i < end && sent < limit; i++) {
        const row = rows[i]!;
        if (check && !check(values(row))) continue;
        if (skipped < offset) {
          skipped++;
          continue;
        }
        sent++;
        if (record) record.rows = sent;
        if (select.kind === 'all') yield dataset.json(row, select.system);
        else if (select.kind === 'columns') {
          const v = wholeForColumns ? dataset.full(row) : row;
          const projected: Row = {};
          for (const c of select.columns) if (v[c.field] !== undefined && v[c.field] !== null) projected[c.alias] = v[c.field];
          yield JSON.stringify(projected);
        }
      }
    };
    if (record) record.rows = 0;
    yield* jsonArrayChunks(items());
  }

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

  const newestUpdate = (): number => {
    let max = 0;
    for (const r of dataset.rows) {
      const t = Date.parse(String(r[':updated_at']));
      if (t > max) max = t;
    }
    return max;
  };

  function mutate(m: MutateOptions): MutateResult {
    // A mutation picks among, and comes after, every row: generate the rest first. Compact rows are
    // read whole from the file where values are needed and written back as new text.
    dataset.generateAll();
    dataset.keysetSorted = false;
    const at = (m.at ?? new Date(newestUpdate() + 1000)).toISOString();
    const result: MutateResult = { updated: [], added: [], keyless: [], oversize: [], deleted: [], replaced: 0, replacedChanged: [], updatedAt: at };
    let used: Set<string> | undefined;
    /** A `:id` no row has had in this server (a replace or an insert never reuses one). */
    const newSystemId = (): string => {
      used ??= new Set(dataset.rows.map((r) => String(r[':id'])));
      for (;;) {
        const id = randomSystemId(rand);
        if (!used.has(id)) {
          used.add(id);
          return id;
        }
      }
    };
    const pick = (count: number): number[] => {
      const n = Math.min(count, dataset.rows.length);
      const chosen = new Set<number>();
      while (chosen.size < n) chosen.add(Math.floor(rand() * dataset.rows.length));
      return [...chosen].sort((a, b) => a - b);
    };
    /** New values for a row (a copy: cached JSON and sort orders are keyed by identity). */
    const changed = (old: Row): Row => {
      const row: Row = { ...old, ':updated_at': at };
      if (old.estimated_property_loss !== undefined || dataset.columns.some((c) => c.fieldName === 'estimated_property_loss')) {
        row.estimated_property_loss = String(Number(old.estimated_property_loss ?? 0) + 1000 + Math.floor(rand() * 50) * 100);
        row.action_taken_secondary = '86 Investigate';
        row.data_as_of = floating(new Date(at));
      } else {
        // Any other dataset: change its first text column that is not the key.
        const text = dataset.columns.find((c) => c.fieldName !== primaryKey && kindOfType(c.dataTypeName) === 'text');
        if (text) row[text.fieldName] = `changed ${at}`;
      }
      return row;
    };
    for (const i of pick(m.update ?? 0)) {
      const row = changed(dataset.full(dataset.rows[i]!));
      dataset.rows[i] = dataset.intern(row);
      result.updated.push(String(row[':id']));
    }
    const addRow = (build: (r: FireIncidentRow) => Row, into: string[]): void => {
      const r = build(generator.next());
      r[':created_at'] = at;
      r[':updated_at'] = at;
      dataset.rows.push(dataset.intern(r));
      into.push(String(r[':id']));
    };
    for (let i = 0; i < (m.add ?? 0); i++) addRow((r) => r, result.added);
    for (let i = 0; i < (m.addKeyless ?? 0); i++) {
      addRow((r) => {
        delete r[primaryKey];
        return r;
      }, result.keyless);
    }
    for (let i = 0; i < (m.addOversize ?? 0); i++) {
      addRow((r) => ({ ...r, action_taken_other: `${'OVERSIZE '.repeat(125_000)}` }), result.oversize);
    }
    for (const r of m.addRows ?? []) {
      const row: Row = { ...r, ':id': newSystemId(), ':created_at': at, ':updated_at': at };
      dataset.rows.push(dataset.intern(row));
      result.added.push(String(row[':id']));
    }

    const doomed = new Set(pick(m.delete ?? 0));
    if (m.deleteKeys?.length) {
      const keys = new Set(m.deleteKeys);
      dataset.rows.forEach((r, i) => keys.has(String(r[primaryKey])) && doomed.add(i));
    }
    if (doomed.size) {
      for (const i of doomed) result.deleted.push(String(dataset.rows[i]![primaryKey]));
      dataset.rows = dataset.rows.filter((_, i) => !doomed.has(i));
    }

    if (m.replace) {
      const change = new Set(pick(m.replace.change ?? 0));
      dataset.rows = dataset.rows.map((stored, i) => {
        const old = dataset.full(stored);
        const row: Row = change.has(i) ? changed(old) : { ...old, ':updated_at': at };
        if (change.has(i)) result.replacedChanged.push(String(row[primaryKey]));
        if (m.replace!.newIds) {
          row[':id'] = newSystemId();
          row[':created_at'] = at;
        }
        return dataset.intern(row);
      });
      result.replaced = dataset.rows.length;
    }
    dataset.changed();
    return result;
  }

  if (!file) for (const add of options.growth ?? []) mutate({ add });
  // Background generation, a slice at a time so requests are served in between.
  const generate = (): void => {
    if (!closed && dataset.generateSome(2_000)) setImmediate(generate);
  };
  if (dataset.pending) setImmediate(generate);
  // A process that exits without closing the server (its parent gone) still deletes the row file.
  const removeFile = (): void => file?.close();
  if (file) process.once('exit', removeFile);

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => {
      // Not listening: stop the background generation before its file goes.
      closed = true;
      file?.close();
      reject(err);
    });
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    datasetId,
    resourceUrl: `${url}/resource/${datasetId}.json`,
    get rows() {
      return dataset.rows;
    },
    requests,
    setFaults(rules) {
      faults = rules.map((r) => ({ ...r }));
    },
    mutate,
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (closed) return resolve();
        closed = true;
        server.closeAllConnections();
        server.close((err) => {
          file?.close();
          process.off('exit', removeFile);
          if (err) reject(err);
          else resolve();
        });
      }),
  };
}
