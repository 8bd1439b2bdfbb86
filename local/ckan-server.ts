/**
 * A local CKAN portal serving one DataStore resource the way CKAN's Action API does:
 * `datastore_search` (objects format, `_id` serial, `sort`, `limit` capped SILENTLY at `rowsMax`
 * as `ckan.datastore.search.rows_max` does, `offset`, `total`, `_links`), `resource_show` and
 * `package_show`, errors as `{"success": false, "error": {"__type", "message"}}`. Values are typed
 * as CKAN types them: numbers as JSON numbers, `timestamp` with six fraction digits, booleans.
 *
 * For tests it changes like a publisher's resource (insert, update, delete, a re-upload that
 * reassigns every `_id`, bumping `last_modified`) and injects faults: errors in CKAN's shape
 * (with HTTP 4xx/5xx or 200), an ignored `sort`, bodies sent slowly.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface CkanFieldSpec {
  id: string;
  /** A DataStore type: text, int, numeric, float8, timestamp, date, bool, json. */
  type: string;
}

export type CkanRecord = Record<string, unknown>;

export type CkanFault =
  | { kind: 'error'; status: number; type: string; message: string }
  | { kind: 'html'; status: number }
  | { kind: 'slow'; delayMs: number }
  /** Answers records in descending `_id` order whatever `sort` says. */
  | { kind: 'ignore-sort' };

/** A fault for the next `times` requests of `action` (any action when absent). */
export type CkanFaultRule = CkanFault & { times: number; action?: string };

export interface CkanServerOptions {
  resourceId: string;
  packageId?: string;
  /** The path before /api/3/action (a portal mounted under /data, say); '' at the root. */
  prefix?: string;
  fields: CkanFieldSpec[];
  /** Records without `_id` are numbered by the server; a record's own `_id` is kept (a remembered table). */
  records: CkanRecord[];
  /** The serial's next value (a remembered table's: `_id`s of deleted rows are not reused). */
  nextId?: number;
  /** `ckan.datastore.search.rows_max`: a larger `limit` is cut to it without a word. */
  rowsMax?: number;
  /** The resource's `last_modified` (naive UTC, CKAN's form); null: the portal gives none. */
  lastModified?: string | null;
  port?: number;
}

export interface CkanRequestRecord {
  action: string;
  params: Record<string, string>;
}

/** CKAN writes naive UTC times with microseconds. */
export const ckanTime = (d: Date): string => `${d.toISOString().slice(0, 23)}000`;

export class CkanServer {
  readonly requests: CkanRequestRecord[] = [];
  private rows: CkanRecord[] = [];
  private nextId = 1;
  private faults: CkanFaultRule[] = [];
  private server: Server | undefined;
  lastModified: string | null;
  rowsMax: number;

  constructor(private readonly options: CkanServerOptions) {
    this.lastModified = options.lastModified === undefined ? ckanTime(new Date()) : options.lastModified;
    this.rowsMax = options.rowsMax ?? 32_000;
    for (const { _id, ...r } of options.records) {
      const id = Number.isInteger(_id) ? (_id as number) : this.nextId;
      this.rows.push({ _id: id, ...r });
      this.nextId = Math.max(this.nextId, id + 1);
    }
    this.nextId = Math.max(this.nextId, options.nextId ?? 1);
  }

  /** The `_id` the next inserted record gets. */
  get nextRecordId(): number {
    return this.nextId;
  }

  /** The origin it listens on (`http://127.0.0.1:<port>`). */
  origin = '';

  /** The declared URL a dataset names this resource by, at `host`. */
  datastoreUrl(host = 'https://ckan.example.org'): string {
    return `${host}${this.options.prefix ?? ''}/api/3/action/datastore_search?resource_id=${this.options.resourceId}`;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.options.port ?? 0, '127.0.0.1', () => resolve());
    });
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.origin;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The current records, `_id` first, in `_id` order. */
  records(): CkanRecord[] {
    return this.rows.map((r) => ({ ...r }));
  }

  // Publisher changes. Each moves last_modified as CKAN does when a resource's data is replaced,
  // unless `quiet` (a datastore_upsert that leaves the resource's metadata alone).

  insert(records: CkanRecord[], quiet = false): void {
    for (const r of records) this.rows.push({ _id: this.nextId++, ...r });
    if (!quiet) this.touch();
  }

  update(field: string, key: unknown, changes: CkanRecord, quiet = false): void {
    const row = this.rows.find((r) => r[field] === key);
    if (!row) throw new Error(`no record with ${field} = ${String(key)}`);
    Object.assign(row, changes);
    if (!quiet) this.touch();
  }

  delete(field: string, key: unknown, quiet = false): void {
    const before = this.rows.length;
    this.rows = this.rows.filter((r) => r[field] !== key);
    if (this.rows.length === before) throw new Error(`no record with ${field} = ${String(key)}`);
    if (!quiet) this.touch();
  }

  /** The table replaced by these records (numbered from 1), last_modified set to `lastModified`. */
  reset(records: CkanRecord[], lastModified: string | null): void {
    this.nextId = 1;
    this.rows = records.map((r) => ({ _id: this.nextId++, ...r }));
    this.lastModified = lastModified;
  }

  /** A re-upload (DataPusher, XLoader): the table is recreated and every `_id` reassigned from 1. */
  reload(): void {
    this.nextId = 1;
    this.rows = this.rows.map(({ _id: _drop, ...r }) => ({ _id: this.nextId++, ...r }));
    this.touch();
  }

  /** Moves last_modified forward (at least a millisecond past the current one). */
  touch(): void {
    const current = this.lastModified ? Date.parse(`${this.lastModified.slice(0, 23)}Z`) : 0;
    this.lastModified = ckanTime(new Date(Math.max(Date.now(), current + 1)));
  }

  setFaults(rules: CkanFaultRule[]): void {
    this.faults = rules.map((r) => ({ ...r }));
  }

  private takeFault(action: string): CkanFault | undefined {
    const rule = this.faults.find((r) => r.times > 0 && (r.action === undefined || r.action === action));
    if (!rule) return undefined;
    rule.times--;
    return rule;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const base = `${this.options.prefix ?? ''}/api/3/action/`;
    const action = url.pathname.startsWith(base) ? url.pathname.slice(base.length) : '';
    const params = Object.fromEntries(url.searchParams);
    this.requests.push({ action, params });
    const fault = this.takeFault(action);
    if (fault?.kind === 'error') return this.send(res, fault.status, { success: false, error: { __type: fault.type, message: fault.message } }, action);
    if (fault?.kind === 'html') {
      res.writeHead(fault.status, { 'content-type': 'text/html' });
      res.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
      return;
    }
    let answer: [number, unknown];
    if (action === 'datastore_search') answer = this.search(params, fault?.kind === 'ignore-sort');
    else if (action === 'resource_show') answer = this.resourceShow(params.id);
    else if (action === 'package_show') answer = this.packageShow(params.id);
    else answer = [400, { success: false, error: { __type: 'Bad Request', message: `Bad request - Action name not known: ${action}` } }];
    const [status, body] = answer;
    if (fault?.kind === 'slow') return this.sendSlowly(res, status, body, action, fault.delayMs);
    return this.send(res, status, body, action);
  }

  private notFound(): [number, unknown] {
    return [404, { success: false, error: { __type: 'Not Found Error', message: 'Not found: Resource was not found.' } }];
  }

  private search(params: Record<string, string>, ignoreSort: boolean): [number, unknown] {
    if ((params.resource_id ?? params.id) !== this.options.resourceId) return this.notFound();
    const asked = params.limit === undefined ? 100 : Number(params.limit);
    const offset = params.offset === undefined ? 0 : Number(params.offset);
    if (!Number.isInteger(asked) || asked < 0 || !Number.isInteger(offset) || offset < 0) {
      return [409, { success: false, error: { __type: 'Validation Error', limit: ['Must be a natural number'] } }];
    }
    const limit = Math.min(asked, this.rowsMax); // silently, as CKAN's limit_to_configured_maximum
    let ordered = [...this.rows];
    const sort = params.sort?.trim();
    if (ignoreSort) ordered.reverse();
    else if (sort === '_id desc') ordered.reverse();
    else if (sort && sort !== '_id' && sort !== '_id asc') ordered = ordered.sort(() => 0);
    const records = ordered.slice(offset, offset + limit);
    const query = new URLSearchParams({ ...params, offset: String(offset + limit) }).toString();
    return [
      200,
      {
        success: true,
        result: {
          include_total: params.include_total !== 'false',
          limit,
          records_format: 'objects',
          resource_id: this.options.resourceId,
          total_estimation_threshold: null,
          records,
          fields: [{ id: '_id', type: 'int' }, ...this.options.fields],
          _links: { start: `/api/3/action/datastore_search?resource_id=${this.options.resourceId}`, next: `/api/3/action/datastore_search?${query}` },
          ...(params.include_total !== 'false' ? { total: this.rows.length, total_was_estimated: false } : {}),
        },
      },
    ];
  }

  private resourceShow(id: string | undefined): [number, unknown] {
    if (id !== this.options.resourceId) return this.notFound();
    return [
      200,
      {
        success: true,
        result: {
          id: this.options.resourceId,
          package_id: this.options.packageId ?? 'local-package',
          name: 'Local resource',
          format: 'CSV',
          datastore_active: true,
          state: 'active',
          last_modified: this.lastModified,
          metadata_modified: this.lastModified,
          url: `${this.origin}/datastore/dump/${this.options.resourceId}`,
        },
      },
    ];
  }

  private packageShow(id: string | undefined): [number, unknown] {
    if (id !== (this.options.packageId ?? 'local-package')) return this.notFound();
    return [200, { success: true, result: { id, name: 'local-package', title: 'Local package', metadata_modified: this.lastModified, resources: [this.resourceShow(this.options.resourceId)[1]] } }];
  }

  private send(res: ServerResponse, status: number, body: unknown, action: string): void {
    res.writeHead(status, { 'content-type': 'application/json;charset=utf-8' });
    res.end(JSON.stringify({ help: `http://localhost/api/3/action/help_show?name=${action}`, ...(body as object) }));
  }

  /** The body in small pieces `delayMs` apart: a server that trickles its answer. */
  private sendSlowly(res: ServerResponse, status: number, body: unknown, action: string, delayMs: number): void {
    const text = JSON.stringify({ help: `http://localhost/api/3/action/help_show?name=${action}`, ...(body as object) });
    res.writeHead(status, { 'content-type': 'application/json;charset=utf-8' });
    let at = 0;
    const step = Math.max(1, Math.ceil(text.length / 20));
    const tick = (): void => {
      if (res.destroyed) return;
      res.write(text.slice(at, at + step));
      at += step;
      if (at >= text.length) res.end();
      else setTimeout(tick, delayMs).unref();
    };
    tick();
  }
}
