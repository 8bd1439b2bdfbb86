/**
 * A local ArcGIS FeatureServer layer over real HTTP: the layer's metadata (`<path>?f=json`) and
 * its `query` operation (where, outFields, orderByFields, resultOffset, resultRecordCount capped
 * at maxRecordCount with exceededTransferLimit, returnCountOnly, f=json | geojson), in the shapes
 * ArcGIS answers, errors included (HTTP 200 with an `error` object). Tests mutate it (insert,
 * update, delete, bump edit dates) and inject the faults a real layer shows: errors in a 200,
 * slow bodies, ignored order or where, pages capped silently.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseWhere, WhereSyntaxError } from './arcgis-where';

export interface LayerField {
  name: string;
  type: string;
  alias?: string;
}

export interface LayerFeature {
  /** Field name (as in `fields`) → value; dates are epoch milliseconds. */
  attributes: Record<string, string | number | null>;
  /** GeoJSON in WGS 84, or null. */
  geometry: { type: string; coordinates: unknown } | null;
}

export interface ArcgisLayerOptions {
  /** The layer's path, `/arcgis/rest/services/<name>/FeatureServer/<n>`. */
  path: string;
  name: string;
  fields: LayerField[];
  objectIdField: string;
  /** Editor tracking: the edit date field (set on every insert and update). */
  editDateField?: string;
  maxRecordCount: number;
  geometryType?: string;
  /**
   * Publishes `editingInfo.lastEditDate` without editor tracking too, as ArcGIS Online's hosted
   * layers do (a layer of an Enterprise map service may publish none).
   */
  hosted?: boolean;
  /** Answers f=geojson (ArcGIS Online and recent Enterprise layers do). */
  geojson?: boolean;
  features?: LayerFeature[];
  /** The clock edits are stamped with (epoch ms). */
  now?: () => number;
  /** A layer kept across restarts: object ids are never reused, edit dates never go back (see counters). */
  nextObjectId?: number;
  lastEditDate?: number;
}

export interface ArcgisFaults {
  /** The next `times` requests answer HTTP 200 with `{"error": {"code": code, ...}}`. */
  error?: { code: number; times: number; message?: string };
  /** The next `times` responses send half the body, then wait `ms` before the rest. */
  slowBody?: { ms: number; times: number };
  /** Pages come reversed. */
  ignoreOrder?: boolean;
  /** The where clause is not applied. */
  ignoreWhere?: boolean;
  /** Pages hold at most this many rows, without exceededTransferLimit. */
  silentCap?: number;
}

const ESRI_GEOMETRY: Record<string, (c: unknown) => Record<string, unknown>> = {
  Point: (c) => ({ x: (c as number[])[0], y: (c as number[])[1] }),
  MultiPoint: (c) => ({ points: c }),
  LineString: (c) => ({ paths: [c] }),
  MultiLineString: (c) => ({ paths: c }),
  Polygon: (c) => ({ rings: c }),
  MultiPolygon: (c) => ({ rings: (c as unknown[][]).flat() }),
};

export class ArcgisLayerServer {
  readonly features = new Map<number, LayerFeature>();
  faults: ArcgisFaults = {};
  /** Every query's parameters, for tests to read what the adapter asked. */
  readonly queries: URLSearchParams[] = [];
  private server: Server | undefined;
  private nextOid = 1;
  private lastEditDate = 0;

  constructor(private readonly layer: ArcgisLayerOptions) {
    for (const f of layer.features ?? []) this.put(f);
    this.nextOid = Math.max(this.nextOid, layer.nextObjectId ?? 0);
    this.lastEditDate = Math.max(this.lastEditDate, layer.lastEditDate ?? 0);
  }

  /** What a restarted layer needs besides its features (a deleted last feature's id stays used). */
  get counters(): { nextObjectId: number; lastEditDate: number } {
    return { nextObjectId: this.nextOid, lastEditDate: this.lastEditDate };
  }

  private get now(): number {
    // Strictly increasing: two edits never share a millisecond unless a test says so.
    const t = Math.max(this.layer.now?.() ?? Date.now(), this.lastEditDate + 1);
    return t;
  }

  private put(f: LayerFeature): number {
    const oid = Number(f.attributes[this.layer.objectIdField] ?? this.nextOid);
    this.nextOid = Math.max(this.nextOid, oid + 1);
    this.features.set(oid, { attributes: { ...f.attributes, [this.layer.objectIdField]: oid }, geometry: f.geometry });
    const ed = this.layer.editDateField ? f.attributes[this.layer.editDateField] : undefined;
    if (typeof ed === 'number') this.lastEditDate = Math.max(this.lastEditDate, ed);
    return oid;
  }

  /** Adds a feature (a new object id; stamped with the edit date `at`, default now). */
  insert(attributes: Record<string, string | number | null>, geometry: LayerFeature['geometry'] = null, at = this.now): number {
    const { [this.layer.objectIdField]: _ignored, ...rest } = attributes;
    const stamped = this.layer.editDateField ? { ...rest, [this.layer.editDateField]: at } : rest;
    this.lastEditDate = Math.max(this.lastEditDate, at);
    return this.put({ attributes: { ...stamped, [this.layer.objectIdField]: this.nextOid }, geometry });
  }

  update(oid: number, attributes: Record<string, string | number | null>, at = this.now): void {
    const f = this.features.get(oid);
    if (!f) throw new Error(`no feature ${oid}`);
    Object.assign(f.attributes, attributes);
    if (this.layer.editDateField) f.attributes[this.layer.editDateField] = at;
    this.lastEditDate = Math.max(this.lastEditDate, at);
  }

  delete(oid: number): void {
    this.features.delete(oid);
    this.lastEditDate = Math.max(this.lastEditDate, this.now);
  }

  /** Sets the edit date of these features to `at` (a bulk calculate stamps many with one date). */
  bumpEditDates(oids: number[], at = this.now): void {
    for (const oid of oids) this.update(oid, {}, at);
  }

  metadata(): Record<string, unknown> {
    const l = this.layer;
    return {
      currentVersion: 11.1,
      id: Number(l.path.split('/').at(-1)),
      name: l.name,
      type: 'Feature Layer',
      ...(l.geometryType ? { geometryType: l.geometryType } : {}),
      objectIdField: l.objectIdField,
      fields: l.fields.map((f) => ({ name: f.name, type: f.type, alias: f.alias ?? f.name, nullable: f.type !== 'esriFieldTypeOID' })),
      editFieldsInfo: l.editDateField ? { creationDateField: null, creatorField: null, editDateField: l.editDateField, editorField: null } : null,
      editingInfo: l.editDateField || l.hosted ? { lastEditDate: this.lastEditDate } : undefined,
      maxRecordCount: l.maxRecordCount,
      supportedQueryFormats: l.geojson === false ? 'JSON' : 'JSON, geoJSON, PBF',
      advancedQueryCapabilities: { supportsPagination: true, supportsOrderBy: true, supportsQueryWithResultType: true },
    };
  }

  async start(port = 0): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const path = url.pathname.replace(/\/+$/, '');
    const error = this.faults.error;
    if (error && error.times > 0) {
      error.times--;
      return this.send(res, { error: { code: error.code, message: error.message ?? `Error performing query operation`, details: [] } });
    }
    if (path === this.layer.path) return this.send(res, this.metadata());
    if (path !== `${this.layer.path}/query`) {
      return this.send(res, { error: { code: 400, message: 'Invalid URL', details: ['Invalid URL'] } });
    }
    this.queries.push(url.searchParams);
    try {
      return this.send(res, this.query(url.searchParams));
    } catch (err) {
      if (!(err instanceof WhereSyntaxError)) throw err;
      return this.send(res, { error: { code: 400, message: 'Cannot perform query. Invalid query parameters.', details: [`Unable to perform query. ${err.message}`] } });
    }
  }

  private field(name: string): string | undefined {
    return this.layer.fields.find((f) => f.name.toLowerCase() === name.toLowerCase())?.name;
  }

  query(params: URLSearchParams): Record<string, unknown> {
    const l = this.layer;
    const predicate = parseWhere(params.get('where') || '1=1');
    const lookup = (f: LayerFeature) => (name: string) => {
      const field = this.field(name);
      if (!field) throw new WhereSyntaxError(`'${name}' is not a field of the layer`);
      const v = f.attributes[field];
      return v === undefined ? null : v;
    };
    let rows = [...this.features.values()].filter((f) => this.faults.ignoreWhere || predicate(lookup(f)));
    if (params.get('returnCountOnly') === 'true') return { count: rows.length };
    const order = (params.get('orderByFields') || l.objectIdField).split(',').map((s) => {
      const [name, dir] = s.trim().split(/\s+/);
      const field = this.field(name!);
      if (!field) throw new WhereSyntaxError(`orderByFields '${name}' is not a field of the layer`);
      return { field, desc: dir?.toUpperCase() === 'DESC' };
    });
    rows.sort((a, b) => {
      for (const { field, desc } of order) {
        const [x, y] = [a.attributes[field] ?? null, b.attributes[field] ?? null];
        // Nulls first, as most databases behind a layer sort them ascending.
        const c = x === y ? 0 : x === null ? -1 : y === null ? 1 : x < y ? -1 : 1;
        if (c) return desc ? -c : c;
      }
      return 0;
    });
    const offset = Number(params.get('resultOffset') ?? 0);
    const asked = Number(params.get('resultRecordCount') ?? l.maxRecordCount);
    const count = Math.min(asked, l.maxRecordCount, this.faults.silentCap ?? Infinity);
    const page = rows.slice(offset, offset + count);
    const exceeded = this.faults.silentCap === undefined && rows.length > offset + page.length;
    rows = this.faults.ignoreOrder ? page.reverse() : page;
    const outFields = params.get('outFields') || '*';
    const pick = (f: LayerFeature): Record<string, unknown> =>
      outFields === '*'
        ? { ...f.attributes }
        : Object.fromEntries(outFields.split(',').map((n) => [this.field(n.trim()) ?? n.trim(), f.attributes[this.field(n.trim()) ?? ''] ?? null]));
    const geometry = params.get('returnGeometry') !== 'false' && l.geometryType !== undefined;
    if (params.get('f') === 'geojson') {
      if (l.geojson === false) throw new WhereSyntaxError('f=geojson is not supported by this layer');
      return {
        type: 'FeatureCollection',
        features: rows.map((f) => ({ type: 'Feature', id: f.attributes[l.objectIdField], geometry: geometry ? f.geometry : null, properties: pick(f) })),
        ...(exceeded ? { properties: { exceededTransferLimit: true } } : {}),
      };
    }
    return {
      objectIdFieldName: l.objectIdField,
      fields: l.fields,
      features: rows.map((f) => ({ attributes: pick(f), ...(geometry && f.geometry ? { geometry: ESRI_GEOMETRY[f.geometry.type]!(f.geometry.coordinates) } : {}) })),
      ...(exceeded ? { exceededTransferLimit: true } : {}),
    };
  }

  private send(res: ServerResponse, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    const slow = this.faults.slowBody;
    if (slow && slow.times > 0) {
      slow.times--;
      res.write(text.slice(0, Math.floor(text.length / 2)));
      const timer = setTimeout(() => res.end(text.slice(Math.floor(text.length / 2))), slow.ms);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    res.end(text);
  }
}
