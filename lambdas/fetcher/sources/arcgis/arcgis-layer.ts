/**
 * What the adapter needs of a layer's metadata (`<layer>?f=json`), checked once per invocation:
 * a layer that cannot be paged exactly (no pagination, no ordering, no object id) is refused with
 * the reason, never read in a way that could skip rows.
 */
import { ArcgisSourceError } from './arcgis-client';

export interface LayerField {
  name: string;
  type: string;
}

export interface LayerInfo {
  name: string;
  fields: LayerField[];
  objectIdField: string;
  /** The editor-tracking edit date field, when tracking is on. */
  editDateField?: string;
  /** When the layer's data last changed (editingInfo.dataLastEditDate or lastEditDate), epoch ms. */
  lastEditDate?: number;
  maxRecordCount: number;
  /** The layer answers `f=geojson` (else `f=json`, whose geometries are converted). */
  geojson: boolean;
  geometryType?: string;
  /** Date fields by lower-cased name: their epoch-millisecond values are delivered as ISO instants. */
  dateFields: Set<string>;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The layer's field of this name, case-insensitively (ArcGIS field names are). */
export function fieldNamed(layer: LayerInfo, name: string): LayerField | undefined {
  const lower = name.toLowerCase();
  return layer.fields.find((f) => f.name.toLowerCase() === lower);
}

export function readLayerInfo(body: unknown, url: string): LayerInfo {
  const problem = (what: string): never => {
    throw new ArcgisSourceError(`${url} is not a layer the pipeline can read exactly: ${what}`, undefined);
  };
  if (!isRecord(body)) return problem('its metadata (?f=json) is not a JSON object');
  const fields = Array.isArray(body.fields)
    ? body.fields.filter(isRecord).flatMap((f) => (typeof f.name === 'string' && typeof f.type === 'string' ? [{ name: f.name, type: f.type }] : []))
    : [];
  if (!fields.length) problem('its metadata lists no fields (is the URL a FeatureServer layer, .../FeatureServer/<n>?)');
  const oidFromType = fields.find((f) => f.type === 'esriFieldTypeOID')?.name;
  const objectIdField = typeof body.objectIdField === 'string' && body.objectIdField ? body.objectIdField : oidFromType;
  if (!objectIdField) return problem('it has no object id field (objectIdField), which orders its pages');
  const adv = isRecord(body.advancedQueryCapabilities) ? body.advancedQueryCapabilities : {};
  const pagination = adv.supportsPagination ?? body.supportsPagination;
  if (pagination === false) problem('it does not support pagination (advancedQueryCapabilities.supportsPagination is false), so pages cannot be asked for by offset and count');
  if (adv.supportsOrderBy === false) problem('it does not support orderByFields (advancedQueryCapabilities.supportsOrderBy is false), so its pages have no order to resume from');
  const max = Number(body.maxRecordCount);
  const maxRecordCount = Number.isInteger(max) && max > 0 ? max : 1000;
  const edit = isRecord(body.editFieldsInfo) ? body.editFieldsInfo.editDateField : undefined;
  const editing = isRecord(body.editingInfo) ? body.editingInfo : {};
  const lastEdit = Number(editing.dataLastEditDate ?? editing.lastEditDate);
  const formats = typeof body.supportedQueryFormats === 'string' ? body.supportedQueryFormats.toLowerCase() : '';
  const info: LayerInfo = {
    name: typeof body.name === 'string' ? body.name : url,
    fields,
    objectIdField,
    maxRecordCount,
    geojson: formats.includes('geojson'),
    dateFields: new Set(fields.filter((f) => f.type === 'esriFieldTypeDate').map((f) => f.name.toLowerCase())),
  };
  if (typeof edit === 'string' && edit) info.editDateField = edit;
  if (Number.isFinite(lastEdit) && lastEdit > 0) info.lastEditDate = lastEdit;
  if (typeof body.geometryType === 'string') info.geometryType = body.geometryType;
  return info;
}

/**
 * An Esri JSON geometry as GeoJSON (for a layer without `f=geojson`): points, multipoints and
 * polylines convert exactly; polygons need their rings' orientation sorted into shells and holes,
 * which this adapter does not guess at, so they are refused.
 */
export function esriToGeoJson(g: unknown, url: string): unknown {
  if (!isRecord(g)) return null;
  if (typeof g.x === 'number' && typeof g.y === 'number') return { type: 'Point', coordinates: [g.x, g.y] };
  if (Array.isArray(g.points)) return { type: 'MultiPoint', coordinates: g.points };
  if (Array.isArray(g.paths)) return g.paths.length === 1 ? { type: 'LineString', coordinates: g.paths[0] } : { type: 'MultiLineString', coordinates: g.paths };
  if (Array.isArray(g.rings)) {
    throw new ArcgisSourceError(`${url} serves polygons and does not answer f=geojson; the pipeline does not convert Esri polygon rings itself`, undefined);
  }
  return null;
}
