/**
 * An ArcGIS FeatureServer layer behind the source boundary (source-adapter.ts). Pages come from
 * the layer's `query` operation in a keyset order (arcgis-positions.ts), each checked whole before
 * any of its rows is delivered:
 *
 * - `exceededTransferLimit` is the only "more rows" signal; a page without it ends the read, and
 *   is confirmed by asking for one row past it: a layer that capped the page silently (fewer rows
 *   than asked, no flag) is named and the read fails instead of ending early.
 * - Rows must come in the order asked and after the position asked; a layer that ignored
 *   `orderByFields` or `where` fails the read (it would make the checkpoint skip rows).
 * - Edit dates are compared in where clauses only to the second (the `timestamp` literal has no
 *   fraction), so a page after (t, id) asks from t's second on and drops the rows at or before the
 *   position; a second holding more edited rows than a page is walked by `resultOffset` within it.
 *
 * Rows: attribute names lower-cased (ArcGIS names are case-insensitive; dataset columns are
 * lower-case), numbers as text and dates (epoch ms) as ISO instants, as Socrata serves its
 * scalars; the geometry, as GeoJSON in WGS 84 (`outSR=4326`), in the `geometry` column. Each
 * row's `:updated_at` is its edit date (incremental) or its version's time (snapshot); its `:id`
 * the object id.
 */
import { createHash } from 'node:crypto';
import type { BudgetMs } from '../../time-budget';
import type { RetryPolicy } from '../../retry-policy';
import type { AxiosInstance } from 'axios';
import type { KeyPage, PositionOrder, RowPageQuery, SourceAdapter, SourceIdentity, SourceRow, StreamPageResult } from '../source-adapter';
import { ArcgisClient, ArcgisSourceError } from './arcgis-client';
import { esriToGeoJson, fieldNamed, readLayerInfo, type LayerInfo } from './arcgis-layer';
import {
  ARCGIS_EDIT_POSITIONS,
  ARCGIS_SNAPSHOT_POSITIONS,
  compareEdit,
  timestampLiteral,
  whereLiteral,
  type EditPosition,
  type SnapshotPosition,
} from './arcgis-positions';

export interface ArcgisLayerSourceOptions {
  datasetName: string;
  /** `https://<host>/.../FeatureServer/<n>`: the identity, named in messages. */
  url: string;
  endpoint?: string;
  /** The primary key column (lower-case, as declared). */
  primaryKey: string;
  /** The layer's edit date field when the dataset reads it incrementally (source.editDateField). */
  editDateField?: string;
  timeoutMs: number;
  retry: RetryPolicy;
  http?: AxiosInstance;
  now?: () => Date;
  onRetry?: (info: { attempt: number; delayMs: number; reason: string; url: string }) => void;
}

/** URL-encoded bytes of one `IN (...)` key list; keeps a repair request's URL under ~8 KB. */
const MAX_KEY_LIST_BYTES = 6_000;

/** One ordered read of the layer: its where clause from a position, and how rows are placed in it. */
interface OrderedRead<P> {
  /** The where clause of the rows after `after` (null: from the start). */
  where(after: P | null): string;
  orderBy: string;
  position(row: SourceRow, oid: number, editDate: number): P;
  compare(a: P, b: P): number;
  /** A row at or before the position that the where clause may still return (the same edit second). */
  tolerated?(row: P, after: P): boolean;
  /** Two positions whose where clauses are the same: the read walks on by offset instead of asking anew. */
  sameWhere?(a: P, b: P): boolean;
  outFields?: string;
  geometry?: boolean;
}

interface Feature {
  attributes: Record<string, unknown>;
  geometry: unknown;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

abstract class ArcgisLayerSource<P> implements SourceAdapter<P> {
  abstract readonly positions: PositionOrder<P>;
  readonly identity: SourceIdentity;
  protected readonly client: ArcgisClient;
  private info: Promise<LayerInfo> | undefined;

  constructor(protected readonly options: ArcgisLayerSourceOptions) {
    this.identity = { type: 'arcgis', url: options.url };
    this.client = new ArcgisClient(options);
  }

  abstract startAfter(checkpoint: P | undefined, lookbackMinutes: number): P | null;
  abstract streamPage(query: RowPageQuery<P>): Promise<StreamPageResult>;

  /** The layer's metadata, read once per source object (one invocation). */
  protected layer(budgetMs?: BudgetMs): Promise<LayerInfo> {
    this.info ??= this.client.layer(budgetMs).then((body) => this.checkLayer(readLayerInfo(body, this.options.url)));
    // A failed read is not cached: the next page asks again.
    this.info.catch(() => (this.info = undefined));
    return this.info;
  }

  protected checkLayer(layer: LayerInfo): LayerInfo {
    if (!fieldNamed(layer, this.options.primaryKey)) {
      throw new ArcgisSourceError(
        `${this.options.url} has no field ${this.options.primaryKey} (the dataset's primaryKey); its fields: ${layer.fields.map((f) => f.name).join(', ')}`,
        undefined,
      );
    }
    return layer;
  }

  protected oidName(layer: LayerInfo): string {
    return layer.objectIdField;
  }

  /** Keys in object id order; `next` is the last object id. */
  async readKeys(query: { after: string | null; limit: number; budgetMs?: BudgetMs }): Promise<KeyPage> {
    const layer = await this.layer(query.budgetMs);
    const oid = this.oidName(layer);
    const pk = fieldNamed(layer, this.options.primaryKey)!.name;
    const after = query.after === null || query.after === '' ? null : Number(query.after);
    const rows: SourceRow[] = [];
    let last = after;
    await this.readOrdered<number>(
      layer,
      {
        where: (a) => (a === null ? '1=1' : `${oid} > ${a}`),
        orderBy: oid,
        position: (_row, id) => id,
        compare: (a, b) => a - b,
        outFields: pk === oid ? oid : `${oid},${pk}`,
        geometry: false,
      },
      after,
      query.limit,
      (row, id) => {
        rows.push({ [this.options.primaryKey]: row[this.options.primaryKey] });
        last = id;
      },
      query.budgetMs,
    );
    return { rows, next: last === null ? '' : String(last) };
  }

  keyBatches(keys: readonly string[]): string[] {
    const encoded = (s: string): number => encodeURIComponent(s).length;
    const batches: string[][] = [];
    let current: string[] = [];
    let size = 0;
    for (const k of keys) {
      const item = encoded(k) + 6;
      if (item > MAX_KEY_LIST_BYTES) throw new ArcgisSourceError(`Primary key value ${JSON.stringify(k.slice(0, 100))} is too long to read by key`, undefined);
      if (current.length && size + item > MAX_KEY_LIST_BYTES) {
        batches.push(current);
        current = [];
        size = 0;
      }
      current.push(k);
      size += item;
    }
    if (current.length) batches.push(current);
    return batches.map((b) => JSON.stringify(b));
  }

  /** Rows of the batch's keys in object id order; positions carry the object id the next call goes on after. */
  async readByKeys(query: { batch: string; after: P | null; limit: number; budgetMs?: BudgetMs }): Promise<{ rows: SourceRow[]; last: P | null }> {
    const layer = await this.layer(query.budgetMs);
    const oid = this.oidName(layer);
    const pkField = fieldNamed(layer, this.options.primaryKey)!;
    const numeric = /Integer|OID|Double|Single/.test(pkField.type);
    const keys = (JSON.parse(query.batch) as string[]).map((k) => whereLiteral(k, numeric));
    const inKeys = `${pkField.name} IN (${keys.join(', ')})`;
    const rows: SourceRow[] = [];
    let last: P | null = null;
    const base = await this.keyedPosition(layer, query.budgetMs);
    await this.readOrdered<P>(
      layer,
      {
        where: (a) => (a === null ? inKeys : `(${inKeys}) AND ${oid} > ${this.oidOf(a)}`),
        orderBy: oid,
        position: base,
        compare: (a, b) => this.oidOf(a) - this.oidOf(b),
      },
      query.after,
      query.limit,
      (row, p) => {
        rows.push(row);
        last = p;
      },
      query.budgetMs,
    );
    return { rows, last };
  }

  /** How readByKeys places a row in this adapter's positions. */
  protected abstract keyedPosition(layer: LayerInfo, budgetMs?: BudgetMs): Promise<(row: SourceRow, oid: number, editDate: number) => P>;
  protected abstract oidOf(p: P): number;
  /** The `:updated_at` of a row. */
  protected abstract updatedAt(editDate: number): string;

  /**
   * Reads rows in `read`'s order after `after`, up to `limit`, handing each to `onRow` (false
   * stops). Returns how many were handed over and whether the layer has more after the last.
   */
  protected async readOrdered<Q>(
    layer: LayerInfo,
    read: OrderedRead<Q>,
    after: Q | null,
    limit: number,
    onRow: (row: SourceRow, position: Q, last: boolean) => boolean | void | Promise<boolean | void>,
    budgetMs?: BudgetMs,
  ): Promise<{ rows: number; stopped: boolean; more: boolean }> {
    const url = this.options.url;
    let from = after;
    let where = read.where(from);
    let offset = 0;
    let delivered = 0;
    /** The short page a probe found rows after, asked once more: a concurrent edit, or a silent cap. */
    let shortPage: number | undefined;
    for (;;) {
      const ask = Math.min(layer.maxRecordCount, Math.max(1, limit - delivered));
      const page = await this.page(layer, read, where, offset, ask, budgetMs);
      if (page.features.length > ask) throw this.hostile(`${page.features.length} rows for resultRecordCount=${ask} (the layer ignored resultRecordCount)`, where, offset);
      // Every row is placed and checked before the first is delivered.
      const placed: { row: SourceRow; position: Q }[] = [];
      let previous: Q | null = null;
      for (let i = 0; i < page.features.length; i++) {
        const { row, oid, editDate } = this.toRow(layer, page.features[i]!, i, where);
        const p = read.position(row, oid, editDate);
        if (previous !== null && read.compare(p, previous) <= 0) {
          throw this.hostile(`row ${i + 1} (object id ${oid}) is not after row ${i} in ${read.orderBy} order (the layer ignored orderByFields)`, where, offset);
        }
        previous = p;
        if (from !== null && read.compare(p, from) <= 0) {
          if (read.tolerated?.(p, from)) continue;
          throw this.hostile(`row ${i + 1} (object id ${oid}) is not after the requested position (the layer ignored the where clause)`, where, offset);
        }
        placed.push({ row, position: p });
      }
      let more = page.exceeded;
      if (page.exceeded && !page.features.length) throw this.hostile('no rows, yet exceededTransferLimit says there are more (paging would never advance)', where, offset);
      if (!page.exceeded && page.features.length) {
        // The end, unless the layer capped the page without saying so: ask for one row past it.
        const probe = await this.page(layer, { ...read, outFields: this.oidName(layer), geometry: false }, where, offset + page.features.length, 1, budgetMs);
        if (probe.features.length && shortPage === undefined) {
          // A row edited or added between the page and the probe looks the same: ask the page again.
          shortPage = page.features.length;
          continue;
        }
        if (probe.features.length) {
          throw new ArcgisSourceError(
            `${url} returned ${page.features.length} rows for resultRecordCount=${ask} without exceededTransferLimit, yet has rows after them: ` +
              `the layer caps its pages silently (its maxRecordCount says ${layer.maxRecordCount}). Lower fetch.pageSize below the cap, or ask the publisher to fix the layer; nothing after the last delivered page was checkpointed.`,
            undefined,
          );
        }
        more = false;
      }
      shortPage = undefined;
      for (let i = 0; i < placed.length; i++) {
        const { row, position } = placed[i]!;
        delivered++;
        const keep = await onRow(row, position, !more && i === placed.length - 1);
        if (keep === false) return { rows: delivered, stopped: i < placed.length - 1 || more, more: true };
        if (delivered >= limit) return { rows: delivered, stopped: false, more: more || i < placed.length - 1 };
      }
      if (!more) return { rows: delivered, stopped: false, more: false };
      const lastPlaced = placed.at(-1)?.position;
      if (lastPlaced !== undefined && !(from !== null && read.sameWhere?.(lastPlaced, from))) {
        from = lastPlaced;
        where = read.where(from);
        offset = 0;
      } else {
        // Every row was at or before the position (one edit second fuller than a page), or the
        // new position asks the same where: walk on within it.
        if (lastPlaced !== undefined) from = lastPlaced;
        offset += page.features.length;
      }
    }
  }

  private hostile(what: string, where: string, offset: number): ArcgisSourceError {
    return new ArcgisSourceError(
      `${this.options.url} answered a page that cannot be the one asked for (where ${where}, resultOffset ${offset}): ${what}. ` +
        'Nothing of the page was delivered and the checkpoint was not advanced.',
      undefined,
    );
  }

  /** One query: its features and whether the layer says more rows follow. */
  private async page(layer: LayerInfo, read: OrderedRead<unknown>, where: string, offset: number, count: number, budgetMs?: BudgetMs): Promise<{ features: Feature[]; exceeded: boolean }> {
    const geometry = read.geometry !== false && layer.geometryType !== undefined;
    const format = geometry && layer.geojson ? 'geojson' : 'json';
    const body = (await this.client.query(
      {
        where,
        outFields: read.outFields ?? '*',
        orderByFields: read.orderBy,
        resultOffset: offset,
        resultRecordCount: count,
        returnGeometry: geometry,
        ...(geometry ? { outSR: 4326 } : {}),
        f: format,
      },
      budgetMs,
    )) as Record<string, unknown>;
    if (!Array.isArray(body.features)) throw this.hostile(`no features array in the answer (keys: ${Object.keys(body).slice(0, 10).join(', ')})`, where, offset);
    const props = isRecord(body.properties) ? body.properties : {};
    const exceeded = body.exceededTransferLimit === true || props.exceededTransferLimit === true;
    const features = body.features.map((f: unknown, i: number): Feature => {
      if (!isRecord(f)) throw this.hostile(`feature ${i + 1} is not an object`, where, offset);
      if (format === 'geojson') {
        const attributes = isRecord(f.properties) ? { ...f.properties } : {};
        // GeoJSON carries the object id as the feature's id; the properties may leave it out.
        if (!Object.keys(attributes).some((k) => k.toLowerCase() === layer.objectIdField.toLowerCase()) && typeof f.id === 'number') attributes[layer.objectIdField] = f.id;
        return { attributes, geometry: f.geometry ?? null };
      }
      return { attributes: isRecord(f.attributes) ? f.attributes : {}, geometry: geometry ? esriToGeoJson(f.geometry, this.options.url) : null };
    });
    return { features, exceeded };
  }

  /** A feature as a source row, with its object id and edit date (-1: none). */
  private toRow(layer: LayerInfo, f: Feature, index: number, where: string): { row: SourceRow; oid: number; editDate: number } {
    const row: SourceRow = {};
    const oidKey = layer.objectIdField.toLowerCase();
    const editKey = this.options.editDateField?.toLowerCase();
    let oid: number | undefined;
    let editDate = -1;
    for (const [name, value] of Object.entries(f.attributes)) {
      const key = name.toLowerCase();
      if (key === oidKey && typeof value === 'number') oid = value;
      if (key === editKey && typeof value === 'number') editDate = value;
      if (value === null || value === undefined) row[key] = null;
      else if (typeof value === 'number') row[key] = layer.dateFields.has(key) ? new Date(value).toISOString() : String(value);
      else row[key] = value;
    }
    if (oid === undefined || !Number.isInteger(oid)) throw this.hostile(`row ${index + 1} has no integer ${layer.objectIdField} (object id)`, where, 0);
    if (layer.geometryType !== undefined && f.geometry !== undefined) row.geometry = f.geometry;
    row[':updated_at'] = this.updatedAt(editDate);
    row[':id'] = String(oid);
    return { row, oid, editDate };
  }
}

/** Editor tracking on: incremental in (edit date, object id) order. */
export class ArcgisEditSource extends ArcgisLayerSource<EditPosition> {
  readonly positions = ARCGIS_EDIT_POSITIONS;

  protected override checkLayer(layer: LayerInfo): LayerInfo {
    super.checkLayer(layer);
    const declared = this.options.editDateField!;
    const field = fieldNamed(layer, declared);
    if (!field || field.type !== 'esriFieldTypeDate') {
      throw new ArcgisSourceError(
        `${this.options.url} has no date field ${declared} (source.editDateField)${layer.editDateField ? `; its edit date field is now ${layer.editDateField}` : '; editor tracking looks turned off'}: ` +
          'the layer can no longer be read incrementally. Run npm run dataset -- add on the layer again (a snapshot definition when tracking is off).',
        undefined,
      );
    }
    return layer;
  }

  startAfter(checkpoint: EditPosition | undefined, lookbackMinutes: number): EditPosition | null {
    if (!checkpoint) return null;
    if (lookbackMinutes <= 0 || checkpoint.editDate < 0) return checkpoint;
    // oid -1 sorts before every object id: the whole millisecond at the lookback start is re-read.
    return { editDate: Math.max(0, checkpoint.editDate - lookbackMinutes * 60_000), oid: -1 };
  }

  protected updatedAt(editDate: number): string {
    // A feature without an edit date predates tracking: the epoch, older than any edit.
    return new Date(Math.max(0, editDate)).toISOString();
  }

  protected oidOf(p: EditPosition): number {
    return p.oid;
  }

  protected keyedPosition(): Promise<(row: SourceRow, oid: number, editDate: number) => EditPosition> {
    return Promise.resolve((_row, oid, editDate) => ({ editDate, oid }));
  }

  async streamPage(query: RowPageQuery<EditPosition>): Promise<StreamPageResult> {
    const layer = await this.layer(query.budgetMs);
    const oid = layer.objectIdField;
    const ed = fieldNamed(layer, this.options.editDateField!)!.name;
    const onRow = (row: SourceRow, p: EditPosition) => query.onRow(row, p);
    let rows = 0;
    if (query.after === null || query.after.editDate < 0) {
      // Features without an edit date (from before tracking) first, by object id.
      const undated = await this.readOrdered<EditPosition>(
        layer,
        {
          where: (a) => (a === null ? `${ed} IS NULL` : `${ed} IS NULL AND ${oid} > ${a.oid}`),
          orderBy: oid,
          position: (_r, id, editDate) => {
            if (editDate >= 0) throw new ArcgisSourceError(`${this.options.url} returned object id ${id}, which has an edit date, for "${ed} IS NULL" (the layer ignored the where clause)`, undefined);
            return { editDate: -1, oid: id };
          },
          compare: compareEdit,
        },
        query.after,
        query.limit,
        onRow,
        query.budgetMs,
      );
      rows = undated.rows;
      if (undated.stopped || rows >= query.limit) return { rows, stopped: undated.stopped, resumes: 0 };
    }
    const start = query.after !== null && query.after.editDate >= 0 ? query.after : null;
    const second = (ms: number) => Math.floor(ms / 1000);
    const dated = await this.readOrdered<EditPosition>(
      layer,
      {
        where: (a) => (a === null ? `${ed} IS NOT NULL` : `${ed} >= ${timestampLiteral(a.editDate)}`),
        orderBy: `${ed},${oid}`,
        position: (_r, id, editDate) => {
          if (editDate < 0) throw new ArcgisSourceError(`${this.options.url} returned object id ${id}, which has no edit date, for a where clause on ${ed} (the layer ignored the where clause)`, undefined);
          return { editDate, oid: id };
        },
        compare: compareEdit,
        // The where clause asks from the position's second: rows of that second up to the position come again.
        tolerated: (p, a) => second(p.editDate) === second(a.editDate),
        sameWhere: (p, a) => second(p.editDate) === second(a.editDate),
      },
      start,
      query.limit - rows,
      onRow,
      query.budgetMs,
    );
    return { rows: rows + dated.rows, stopped: dated.stopped, resumes: 0 };
  }
}

/** Editor tracking off: the whole layer under a version, in object id order. */
export class ArcgisSnapshotSource extends ArcgisLayerSource<SnapshotPosition> {
  readonly positions = ARCGIS_SNAPSHOT_POSITIONS;
  private current: { version: string; updatedAt: string } | undefined;
  /** When each hashed version was first seen by this source object (no edit date to take). */
  private readonly firstSeen = new Map<string, string>();

  startAfter(checkpoint: SnapshotPosition | undefined): SnapshotPosition | null {
    // No lookback: a snapshot has no change time to go back by; the version decides.
    return checkpoint ?? null;
  }

  protected updatedAt(): string {
    return this.current?.updatedAt ?? (this.options.now?.() ?? new Date()).toISOString();
  }

  protected oidOf(p: SnapshotPosition): number {
    return p.oid;
  }

  protected async keyedPosition(layer: LayerInfo, budgetMs?: BudgetMs): Promise<(row: SourceRow, oid: number) => SnapshotPosition> {
    const { version } = await this.version(layer, budgetMs);
    return (_row, oid) => ({ version, oid });
  }

  /**
   * The layer's version, once per source object: its last edit date when the metadata has one
   * (free), else a SHA-256 of every row in object id order (one read of the whole layer).
   */
  private async version(layer: LayerInfo, budgetMs?: BudgetMs): Promise<{ version: string; updatedAt: string }> {
    if (this.current) return this.current;
    if (layer.lastEditDate !== undefined) {
      this.current = { version: `edited:${layer.lastEditDate}`, updatedAt: new Date(layer.lastEditDate).toISOString() };
      return this.current;
    }
    const hash = createHash('sha256');
    const oid = layer.objectIdField;
    await this.readOrdered<number>(
      layer,
      { where: (a) => (a === null ? '1=1' : `${oid} > ${a}`), orderBy: oid, position: (_r, id) => id, compare: (a, b) => a - b },
      null,
      Number.MAX_SAFE_INTEGER,
      (row) => {
        const { ':updated_at': _u, ...content } = row;
        hash.update(`${JSON.stringify(content)}\n`);
      },
      budgetMs,
    );
    const version = `sha256:${hash.digest('hex')}`;
    const updatedAt = this.firstSeen.get(version) ?? (this.options.now?.() ?? new Date()).toISOString();
    this.firstSeen.set(version, updatedAt);
    this.current = { version, updatedAt };
    return this.current;
  }

  async streamPage(query: RowPageQuery<SnapshotPosition>): Promise<StreamPageResult> {
    const layer = await this.layer(query.budgetMs);
    const { version } = await this.version(layer, query.budgetMs);
    const after = query.after;
    if (after?.end && after.version === version) return { rows: 0, stopped: false, resumes: 0 };
    // A changed layer is read whole from its first object id.
    const start = after && after.version === version ? after : null;
    const oid = layer.objectIdField;
    const read = await this.readOrdered<SnapshotPosition>(
      layer,
      {
        where: (a) => (a === null ? '1=1' : `${oid} > ${a.oid}`),
        orderBy: oid,
        position: (_r, id) => ({ version, oid: id }),
        compare: (a, b) => a.oid - b.oid,
      },
      start,
      query.limit,
      (row, p, last) => query.onRow(row, last ? { ...p, end: true } : p),
      query.budgetMs,
    );
    return { rows: read.rows, stopped: read.stopped, resumes: 0 };
  }
}

/** The adapter for a layer: incremental when the dataset names an edit date field, else a snapshot. */
export function openArcgisLayer(options: ArcgisLayerSourceOptions): ArcgisEditSource | ArcgisSnapshotSource {
  return options.editDateField ? new ArcgisEditSource(options) : new ArcgisSnapshotSource(options);
}
