/**
 * `npm run dataset -- add <layer URL>` for an ArcGIS FeatureServer layer: the layer's metadata
 * (`?f=json`) becomes a definition. Field types map onto column types (esriFieldType OID,
 * Integer, SmallInteger, BigInteger → integer; Double, Single → number; Date → fixed_timestamp,
 * served as epoch ms and delivered as UTC instants; String, GUID, GlobalID → text); other field
 * types (blobs, rasters, XML, date-only, time-only, offsets) are left out with a note. The
 * geometry is a `geometry` column (`point` for a point layer). Editor tracking on: the dataset
 * reads incrementally by the edit date field; off: as a snapshot.
 */
import { EVENT_TIME_TYPES, type ColumnType } from '../runtime/dataset-config';
import { UsageError } from '../runtime/pipeline-error';
import { nameFromTitle } from '../runtime/socrata-metadata';
import { readLayerInfo } from '../lambdas/fetcher/sources/arcgis/arcgis-layer';

export const LAYER_URL = /^https?:\/\/[^/\s]+\/\S*\/FeatureServer\/\d+\/?$/i;

const FIELD_TYPES: Record<string, ColumnType> = {
  esriFieldTypeOID: 'integer',
  esriFieldTypeInteger: 'integer',
  esriFieldTypeSmallInteger: 'integer',
  esriFieldTypeBigInteger: 'integer',
  esriFieldTypeDouble: 'number',
  esriFieldTypeSingle: 'number',
  esriFieldTypeDate: 'fixed_timestamp',
  esriFieldTypeString: 'text',
  esriFieldTypeGUID: 'text',
  esriFieldTypeGlobalID: 'text',
};

export interface ArcgisProposal {
  definition: Record<string, unknown>;
  notes: string[];
}

/** The definition proposed for a layer from its metadata document. */
export function proposeArcgisDataset(body: unknown, url: string, opts: { name?: string; primaryKey?: string; eventTimeColumn?: string } = {}): ArcgisProposal {
  const layer = readLayerInfo(body, url);
  const meta = body as { fields: { name: string; type: string; alias?: string }[]; editFieldsInfo?: Record<string, unknown> | null; description?: string };
  const notes: string[] = [];
  const columns: Record<string, unknown>[] = [];
  const skipped: string[] = [];
  for (const f of meta.fields) {
    const type = FIELD_TYPES[f.type];
    const name = f.name.toLowerCase();
    if (!type || !/^[a-z_][a-z0-9_]*$/.test(name)) {
      skipped.push(`${f.name} (${f.type})`);
      continue;
    }
    columns.push({ name, type, ...(f.alias && f.alias !== f.name ? { description: f.alias } : {}) });
  }
  if (skipped.length) notes.push(`left out (no column type for them): ${skipped.join(', ')}`);
  if (layer.geometryType) {
    const point = layer.geometryType === 'esriGeometryPoint';
    columns.push({ name: 'geometry', type: point ? 'point' : 'geometry', description: `The feature's ${layer.geometryType.replace('esriGeometry', '').toLowerCase()} as GeoJSON in WGS 84` });
    notes.push(`geometry: column geometry (${point ? 'point, with derived longitude/latitude' : 'GeoJSON text'}), read with outSR=4326`);
  }
  const names = columns.map((c) => c.name as string);
  const has = (n: string | undefined) => (n ? names.includes(n.toLowerCase()) : false);
  const primaryKey = (opts.primaryKey ?? layer.objectIdField).toLowerCase();
  if (!has(primaryKey)) throw new UsageError(`--primary-key ${primaryKey}: the layer has no such field (fields: ${names.join(', ')})`);
  notes.push(`primary key: ${primaryKey}${opts.primaryKey ? '' : " (the layer's object id field; a layer overwritten by its publisher renumbers it: choose a stable id with --primary-key)"}`);
  const edit = layer.editDateField;
  const tracking = new Set(['creationDateField', 'editDateField'].map((k) => meta.editFieldsInfo?.[k]).filter((v): v is string => typeof v === 'string').map((v) => v.toLowerCase()));
  const dates = columns.filter((c) => EVENT_TIME_TYPES.includes(c.type as ColumnType)).map((c) => c.name as string);
  const created = typeof meta.editFieldsInfo?.creationDateField === 'string' ? meta.editFieldsInfo.creationDateField.toLowerCase() : undefined;
  const eventTimeColumn = opts.eventTimeColumn?.toLowerCase() ?? dates.find((d) => !tracking.has(d)) ?? (created && dates.includes(created) ? created : dates[0]);
  if (!eventTimeColumn || !dates.includes(eventTimeColumn)) {
    throw new UsageError(`${url} has no date field to partition by event time${opts.eventTimeColumn ? ` named ${opts.eventTimeColumn}` : ''} (date fields: ${dates.join(', ') || 'none'})`);
  }
  notes.push(`event time: ${eventTimeColumn}${dates.length > 1 ? `; other dates: ${dates.filter((d) => d !== eventTimeColumn).join(', ')}; choose another with --event-time` : ''}`);
  notes.push(edit ? `incremental: editor tracking is on, rows are read by ${edit} (edit date, object id)` : 'snapshot: editor tracking is off, the layer is read whole when it changes and keys gone from it are deletions');
  const derived = opts.name ? { name: opts.name } : nameFromTitle(layer.name, 'layer', new URL(url).hostname);
  const definition: Record<string, unknown> = {
    $schema: './dataset.schema.json',
    name: derived.name,
    description: (meta.description ?? '').trim() || layer.name,
    source: { type: 'arcgis', url: url.replace(/\/+$/, ''), ...(edit ? { editDateField: edit } : {}) },
    primaryKey,
    eventTimeColumn,
    columns,
    schedule: { expression: 'cron(0 6 * * ? *)', timezone: 'UTC' },
    dataTests: [{ kind: 'not_null', column: eventTimeColumn, severity: 'warn' }],
  };
  return { definition, notes };
}
