/**
 * A local Socrata-compatible server on 127.0.0.1: `/resource/<id>.json` with the SoQL subset in
 * ./soql.ts and `/api/views/<id>.json` column metadata, shaped like the real API. Used by tests,
 * `npm run local` and the benchmark, so it keeps rows sorted per requested order (cached until the
 * next mutation), binary-searches keyset `$where`s, caches each row's JSON and streams responses.
 * Faults (429/500/202, slow, truncated, reset) and row mutations are injectable and deterministic.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
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
} from './soql';

export interface ColumnMeta {
  fieldName: string;
  dataTypeName: string;
}

export type Fault =
  | { kind: 'status'; status: number; retryAfter?: string; body?: string }
  | { kind: 'slow'; delayMs: number }
  | { kind: 'truncate' }
  | { kind: 'reset' };

/** A fault applied to resource requests by number (1-based, counted since start) or to the next `times` ones. */
export type FaultRule = Fault & { requests?: number[]; times?: number };

export interface RequestRecord {
  n: number;
  path: string;
  params: Record<string, string>;
  status: number;
  fault?: Fault['kind'];
  appToken?: string;
  /** Rows in a 200 response of row data (not for count(*)). */
  rows?: number;
}

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
}

export interface SocrataServer {
  url: string;
  datasetId: string;
  resourceUrl: string;
  /** Current rows as served with `$select=:*,*`, in insertion order. */
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

class Dataset {
  rows: Row[] = [];
  private readonly kinds: Map<string, FieldKind>;
  private sorted = new Map<string, Row[]>();
  private readonly jsonAll = new WeakMap<Row, string>();
  private readonly jsonPlain = new WeakMap<Row, string>();

  constructor(readonly columns: ColumnMeta[]) {
    this.kinds = new Map(columns.map((c) => [c.fieldName, kindOfType(c.dataTypeName)]));
  }

  kindOf = (field: string): FieldKind => {
    const k = SYSTEM_KIND[field] ?? this.kinds.get(field);
    if (!k) throw new SoqlError(`No such column: ${field}`, 'query.soql.no-such-column');
    return k;
  };

  changed(): void {
    this.sorted.clear();
  }

  sortedBy(order: OrderKey[]): Row[] {
    const key = order.map((o) => `${o.field} ${o.desc ? 'd' : 'a'}`).join(',');
    let rows = this.sorted.get(key);
    if (!rows) {
      const kinds = order.map((o) => this.kindOf(o.field));
      const decorated = this.rows.map((row) => ({ row, keys: order.map((o, i) => fieldValue(kinds[i]!, row[o.field])) }));
      decorated.sort((a, b) => compareKeys(a.keys, b.keys, order));
      rows = decorated.map((d) => d.row);
      this.sorted.set(key, rows);
    }
    return rows;
  }

  json(row: Row, system: boolean): string {
    const cache = system ? this.jsonAll : this.jsonPlain;
    let s = cache.get(row);
    if (s === undefined) {
      if (system) s = JSON.stringify(row);
      else {
        const plain: Row = {};
        for (const [k, v] of Object.entries(row)) if (!k.startsWith(':')) plain[k] = v;
        s = JSON.stringify(plain);
      }
      cache.set(row, s);
    }
    return s;
  }
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
  const dataset = new Dataset(options.columns ?? FIRE_INCIDENT_COLUMNS);
  const generator = new FireIncidentGenerator({ seed });
  const rand = seededRandom(seed ^ 0x5bd1e995);
  const requests: RequestRecord[] = [];
  let faults: FaultRule[] = [];
  let resourceRequests = 0;

  if (typeof options.rows === 'number' || options.rows === undefined) {
    const n = options.rows ?? 1000;
    for (let i = 0; i < n; i++) dataset.rows.push(generator.next());
  } else {
    const base = Date.parse('2024-01-02T03:04:05.000Z');
    dataset.rows = options.rows.map((r, i) => {
      if (typeof r[':id'] === 'string' && typeof r[':updated_at'] === 'string') return r;
      const at = new Date(base + Math.floor(i / 100) * 1000).toISOString();
      return { ':id': randomSystemId(rand), ':created_at': at, ':updated_at': at, ...r };
    });
  }

  const takeFault = (n: number): Fault | undefined => {
    for (const rule of faults) {
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
  const soqlError = (res: http.ServerResponse, err: SoqlError, query: Record<string, string>): void =>
    sendJson(res, 400, { code: err.code, error: true, message: err.message, data: { query } });

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const params = Object.fromEntries(url.searchParams.entries());
    const record: RequestRecord = { n: 0, path: url.pathname, params, status: 200 };
    const token = req.headers['x-app-token'];
    if (typeof token === 'string') record.appToken = token;
    requests.push(record);

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
    record.n = ++resourceRequests;
    const fault = takeFault(record.n);
    if (fault) record.fault = fault.kind;
    const respond = (): void => serveResource(res, params, record, fault);
    if (fault?.kind === 'slow') setTimeout(respond, fault.delayMs);
    else respond();
  });

  function serveResource(res: http.ServerResponse, params: Record<string, string>, record: RequestRecord, fault: Fault | undefined): void {
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
    let chunks: string[];
    try {
      chunks = query(params, record);
    } catch (err) {
      if (err instanceof SoqlError) {
        record.status = 400;
        return soqlError(res, err, params);
      }
      throw err;
    }
    if (fault?.kind === 'truncate') {
      const full = chunks.join('');
      const cut = full.slice(0, Math.max(1, Math.floor(full.length / 2)));
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
      res.end(cut);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'X-SODA2-Fields': '[]' });
    streamChunks(res, chunks);
  }

  function query(params: Record<string, string>, record?: RequestRecord): string[] {
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
    const rows = dataset.sortedBy(effectiveOrder);
    let start = 0;
    const bound = where ? keysetLowerBound(where, effectiveOrder) : undefined;
    if (bound && SYSTEM_KIND[effectiveOrder[0]!.field]) {
      // Rows matching a keyset lower bound form a suffix of the sorted rows: binary-search its start.
      const test = compileWhere(bound, dataset.kindOf);
      let lo = 0;
      let hi = rows.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (test(rows[mid]!)) hi = mid;
        else lo = mid + 1;
      }
      start = lo;
    }

    if (select.kind === 'count') {
      let n = 0;
      for (let i = start; i < rows.length; i++) if (!predicate || predicate(rows[i]!)) n++;
      return [JSON.stringify([{ [select.alias]: String(n) }])];
    }
    const out: string[] = [];
    let skipped = 0;
    for (let i = start; i < rows.length && out.length < limit; i++) {
      const row = rows[i]!;
      if (predicate && !predicate(row)) continue;
      if (skipped < offset) {
        skipped++;
        continue;
      }
      if (select.kind === 'all') out.push(dataset.json(row, select.system));
      else {
        const projected: Row = {};
        for (const c of select.columns) if (row[c.field] !== undefined && row[c.field] !== null) projected[c.alias] = row[c.field];
        out.push(JSON.stringify(projected));
      }
    }
    if (record) record.rows = out.length;
    // Chunks of ~64 KiB keep writes few without building one huge string.
    const chunks: string[] = [];
    let buf = '[';
    for (let i = 0; i < out.length; i++) {
      buf += (i ? ',\n' : '\n') + out[i];
      if (buf.length > 65_536) {
        chunks.push(buf);
        buf = '';
      }
    }
    chunks.push(`${buf}\n]`);
    return chunks;
  }

  function streamChunks(res: http.ServerResponse, chunks: string[]): void {
    let i = 0;
    const pump = (): void => {
      while (i < chunks.length) {
        if (!res.write(chunks[i++]!)) {
          res.once('drain', pump);
          return;
        }
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
      const row = changed(dataset.rows[i]!);
      dataset.rows[i] = row;
      result.updated.push(String(row[':id']));
    }
    const addRow = (build: (r: FireIncidentRow) => Row, into: string[]): void => {
      const r = build(generator.next());
      r[':created_at'] = at;
      r[':updated_at'] = at;
      dataset.rows.push(r);
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
      dataset.rows.push(row);
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
      dataset.rows = dataset.rows.map((old, i) => {
        const row: Row = change.has(i) ? changed(old) : { ...old, ':updated_at': at };
        if (change.has(i)) result.replacedChanged.push(String(row[primaryKey]));
        if (m.replace!.newIds) {
          row[':id'] = newSystemId();
          row[':created_at'] = at;
        }
        return row;
      });
      result.replaced = dataset.rows.length;
    }
    dataset.changed();
    return result;
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
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
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
