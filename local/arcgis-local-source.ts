/**
 * The generated source of `npm run local` for an ArcGIS FeatureServer layer (`source.type:
 * "arcgis"`): the local layer server (arcgis-server.ts, the layer's metadata and `query` in the
 * shapes ArcGIS answers) serving generated features at the declared URL's path. The fetcher reads
 * it through the deployed adapter (sources/arcgis/) with SOURCE_ENDPOINT_URL pointing here.
 *
 * The layer is built from the definition as `dataset add` writes one: each column a field of the
 * matching esri type (integer, number, text, the timestamps as esriFieldTypeDate in epoch ms), the
 * `geometry` column the layer's geometry (a point or multipoint layer), `source.editDateField` the
 * editor-tracking field stamped on every insert and update. Field names are upper-cased, as a layer
 * published from a shapefile or geodatabase names them, so the adapter's case-folding is exercised.
 *
 * Its features, with their object ids and edit dates, are kept under
 * `<dataDir>/local-arcgis/<dataset>/layer.json`: a run with the same `--rows` and seed serves the
 * same layer (the fetcher reads nothing new); a larger `--rows` inserts the next generated rows
 * as new features (new object ids, edited now); a smaller one or another seed starts a new layer.
 * Tests edit the kept layer between runs with editLocalArcgisLayer (updates, deletions, inserts
 * through the server's own edit operations, so edit dates move as a real layer's do).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ColumnConfig, DatasetConfig } from '../runtime/dataset-config';
import { ConfigError } from '../runtime/pipeline-error';
import { ArcgisLayerServer, type ArcgisLayerOptions, type LayerFeature, type LayerField } from './arcgis-server';
import { writeFileDurably } from './durable-file';
import { genericRecords, type RecordGenerator } from './generated-records';
import type { LocalSourceEndpoint, LocalSourceRequest } from './local-source-endpoint';

type ArcgisSource = Extract<DatasetConfig['source'], { type: 'arcgis' }>;

/** ArcGIS Online's default for hosted layers: the adapter pages at this size whatever fetch.pageSize asks. */
export const LOCAL_MAX_RECORD_COUNT = 2_000;

/** Column names a layer's object id field goes by (`dataset add` lower-cases the layer's). */
const OBJECT_ID_NAMES = ['objectid', 'fid', 'oid', 'objectid_1'];

const FIELD_TYPES: Partial<Record<ColumnConfig['type'], string>> = {
  integer: 'esriFieldTypeInteger',
  number: 'esriFieldTypeDouble',
  text: 'esriFieldTypeString',
  fixed_timestamp: 'esriFieldTypeDate',
  floating_timestamp: 'esriFieldTypeDate',
};

interface KeptLayer {
  /** What generated it: a larger `rows` of the same seed inserts the records after these. */
  generated: { rows: number; seed: number };
  nextObjectId: number;
  lastEditDate: number;
  features: LayerFeature[];
}

/** How the definition's columns become the layer's fields, and back. */
export interface LayerShape {
  options: Omit<ArcgisLayerOptions, 'features' | 'nextObjectId' | 'lastEditDate'>;
  /** Column name → field name. */
  fieldOf: Map<string, string>;
  /** The column holding the object id, when one is declared. */
  objectIdColumn: string | undefined;
  geometryColumn: ColumnConfig | undefined;
}

function arcgisSource(dataset: DatasetConfig): ArcgisSource {
  if (dataset.source.type !== 'arcgis') throw new Error(`dataset ${dataset.name} is not an ArcGIS layer source`);
  return dataset.source;
}

/** The layer a definition describes; a column no layer field can hold is refused, naming it. */
export function layerShape(dataset: DatasetConfig): LayerShape {
  const source = arcgisSource(dataset);
  const editColumn = source.editDateField?.toLowerCase();
  const geometryColumn = dataset.columns.find((c) => c.name === 'geometry' && (c.type === 'point' || c.type === 'geometry'));
  const oidColumn =
    dataset.columns.find((c) => OBJECT_ID_NAMES.includes(c.name) && c.type === 'integer') ??
    dataset.columns.find((c) => c.name === dataset.primaryKey && c.type === 'integer');
  const objectIdField = oidColumn ? oidColumn.name.toUpperCase() : 'OBJECTID';
  const fields: LayerField[] = [];
  const fieldOf = new Map<string, string>();
  const refused: string[] = [];
  for (const c of dataset.columns) {
    if (c === geometryColumn) continue;
    const type = c === oidColumn ? 'esriFieldTypeOID' : FIELD_TYPES[c.type];
    if (!type || c.path) {
      refused.push(`${c.name} (${c.path ? `path ${c.path}` : c.type})`);
      continue;
    }
    // The edit date field keeps the definition's spelling: the adapter asks for it by that name.
    const name = c.name === editColumn ? source.editDateField! : c.name.toUpperCase();
    if (c.name === editColumn && type !== 'esriFieldTypeDate') refused.push(`${c.name} (${c.type}; source.editDateField must be a timestamp column)`);
    fields.push({ name, type, ...(c.description ? { alias: c.description } : {}) });
    fieldOf.set(c.name, name);
  }
  if (refused.length) {
    throw new ConfigError(
      `npm run local cannot serve ${dataset.name} as an ArcGIS layer: no layer field holds ${refused.join(', ')}. ` +
        'A layer has integer, double, string and date fields and one geometry, the column named geometry (point or geometry).',
    );
  }
  // A layer always has its object id; undeclared, it is served as a field the definition leaves out (drift).
  if (!oidColumn) fields.unshift({ name: objectIdField, type: 'esriFieldTypeOID' });
  // Editor tracking's field exists on the layer whether or not the definition declares it.
  if (source.editDateField && !fieldOf.has(editColumn!)) fields.push({ name: source.editDateField, type: 'esriFieldTypeDate' });
  const path = new URL(source.url).pathname;
  return {
    options: {
      path,
      name: dataset.name,
      fields,
      objectIdField,
      ...(source.editDateField ? { editDateField: source.editDateField } : {}),
      maxRecordCount: LOCAL_MAX_RECORD_COUNT,
      ...(geometryColumn ? { geometryType: geometryColumn.type === 'point' ? 'esriGeometryPoint' : 'esriGeometryMultipoint' } : {}),
      geojson: true,
      // ArcGIS Online (services*.arcgis.com) publishes the layer's last edit date even without editor tracking.
      hosted: /(^|\.)arcgis\.com$/i.test(new URL(source.url).hostname),
    },
    fieldOf,
    objectIdColumn: oidColumn?.name,
    geometryColumn,
  };
}

/** A generated record's value as the layer stores it: numbers as numbers, dates as epoch ms (a floating one read as UTC). */
function attribute(column: ColumnConfig, value: unknown): string | number | null {
  if (value === undefined || value === null || value === '') return null;
  switch (column.type) {
    case 'integer':
    case 'number':
      return Number(value);
    case 'fixed_timestamp':
    case 'floating_timestamp': {
      const text = String(value as string);
      return Date.parse(/(Z|[+-]\d\d:?\d\d)$/.test(text) ? text : `${text}Z`);
    }
    default:
      return String(value as string);
  }
}

/** Generated records `from`..`to` as new features: attributes by field, the geometry as GeoJSON. */
function* generatedFeatures(dataset: DatasetConfig, shape: LayerShape, generate: RecordGenerator | undefined, from: number, to: number, seed: number): Generator<LayerFeature> {
  const editColumn = arcgisSource(dataset).editDateField?.toLowerCase();
  let i = 0;
  for (const { record } of generate?.(dataset, to, seed) ?? genericRecords(dataset, to, seed)) {
    if (i++ < from) continue;
    const attributes: Record<string, string | number | null> = {};
    for (const c of dataset.columns) {
      // The layer assigns the object id and stamps the edit date itself.
      if (c === shape.geometryColumn || c.name === shape.objectIdColumn || c.name === editColumn) continue;
      attributes[shape.fieldOf.get(c.name)!] = attribute(c, record[c.name]);
    }
    const geometry = shape.geometryColumn ? (record[shape.geometryColumn.name] as LayerFeature['geometry'] | undefined) : undefined;
    yield { attributes, geometry: geometry ?? null };
  }
}

const sourceDir = (dataDir: string, dataset: DatasetConfig): string => path.join(dataDir, 'local-arcgis', dataset.name);
/** The kept layer: its features (object ids, edit dates), counters, and what generated it. */
export const localLayerFile = (dataDir: string, dataset: DatasetConfig): string => path.join(sourceDir(dataDir, dataset), 'layer.json');

async function readKept(dataDir: string, dataset: DatasetConfig): Promise<KeptLayer | undefined> {
  return readFile(localLayerFile(dataDir, dataset), 'utf8').then(
    (t) => JSON.parse(t) as KeptLayer,
    () => undefined,
  );
}

async function keep(dataDir: string, dataset: DatasetConfig, layer: ArcgisLayerServer, generated: KeptLayer['generated']): Promise<void> {
  const kept: KeptLayer = { generated, ...layer.counters, features: [...layer.features.values()] };
  await writeFileDurably(localLayerFile(dataDir, dataset), JSON.stringify(kept));
}

/**
 * The kept layer of this data directory as the server object, with what generated it; `generate`
 * brings it to `rows` of `seed` first (a new layer, or the next records inserted).
 */
async function loadLayer(
  dataDir: string,
  dataset: DatasetConfig,
  generate?: { rows: number; seed: number; records: RecordGenerator | undefined },
): Promise<{ layer: ArcgisLayerServer; generated: KeptLayer['generated'] }> {
  const shape = layerShape(dataset);
  let kept = await readKept(dataDir, dataset);
  if (!kept && !generate) throw new Error(`${dataset.name} has no local ArcGIS layer in ${dataDir} yet (npm run local generates it)`);
  // A new layer (another seed, fewer rows) in a directory that read an old one: its edit dates
  // still come after the old one's, or the checkpoint would hide its features from the fetcher.
  const editedBefore = kept?.lastEditDate ?? 0;
  if (generate && (!kept || kept.generated.seed !== generate.seed || generate.rows < kept.generated.rows)) kept = undefined;
  const layer = new ArcgisLayerServer({ ...shape.options, features: kept?.features ?? [], lastEditDate: editedBefore, ...(kept ? { nextObjectId: kept.nextObjectId } : {}) });
  const from = kept?.generated.rows ?? 0;
  if (generate && generate.rows > from) {
    // Edit dates a millisecond apart, ending now: a publisher's append, never ahead of the clock.
    const start = Math.max(Date.now() - (generate.rows - from), layer.counters.lastEditDate + 1);
    let at = start;
    for (const f of generatedFeatures(dataset, shape, generate.records, from, generate.rows, generate.seed)) layer.insert(f.attributes, f.geometry, at++);
    const generated = { rows: generate.rows, seed: generate.seed };
    await keep(dataDir, dataset, layer, generated);
    return { layer, generated };
  }
  return { layer, generated: kept!.generated };
}

/**
 * Edits the kept layer as its publisher would between runs (`layer.insert`, `update`, `delete`,
 * `bumpEditDates`: edit dates move as a real layer's); the next run serves the result.
 */
export async function editLocalArcgisLayer(dataDir: string, dataset: DatasetConfig, edit: (layer: ArcgisLayerServer) => void | Promise<void>): Promise<void> {
  const { layer, generated } = await loadLayer(dataDir, dataset);
  await edit(layer);
  await keep(dataDir, dataset, layer, generated);
}

/** The kept layer's features by object id (tests compute expected values from them). */
export async function readLocalArcgisLayer(dataDir: string, dataset: DatasetConfig): Promise<Map<number, LayerFeature>> {
  return (await loadLayer(dataDir, dataset)).layer.features;
}

/** Starts the layer server; `generate` gives an example dataset's own records (local/seed-rows), else genericRecords. */
export function localArcgisSource(generate?: RecordGenerator) {
  return async ({ dataset, dataDir, rows, seed }: LocalSourceRequest): Promise<LocalSourceEndpoint & { layer: ArcgisLayerServer }> => {
    const source = arcgisSource(dataset);
    const { layer } = await loadLayer(dataDir, dataset, { rows, seed, records: generate });
    const origin = await layer.start();
    return {
      env: { SOURCE_ENDPOINT_URL: origin },
      describe: `${source.url} (${layer.features.size.toLocaleString('en-US')} features served from ${path.relative(process.cwd(), localLayerFile(dataDir, dataset)) || localLayerFile(dataDir, dataset)} at ${origin})`,
      layer,
      close: () => layer.close(),
    };
  };
}
