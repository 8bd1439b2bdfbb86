/**
 * The generated source of `npm run local` for a CKAN DataStore resource (`source.type: "ckan"`):
 * a local CKAN portal (local/ckan-server.ts, in this process) serving the declared URL's path,
 * which the fetcher reaches through SOURCE_ENDPOINT_URL with the deployed adapter
 * (lambdas/fetcher/sources/ckan/).
 *
 * The resource is remembered under `<dataDir>/local-ckan/<dataset>/`: its rows as served (`_id`
 * included), the serial's next `_id`, its `last_modified` and what generated it. A run with the
 * same `--rows` and seed serves the same table at the same `last_modified` (the fetcher reads
 * nothing); a larger `--rows` inserts the new rows (new `_id`s, a later `last_modified`); another
 * seed or fewer rows recreate the table (every `_id` renumbered from 1, as a re-upload does).
 * Tests change the remembered resource between runs with changeLocalCkanResource (inserts,
 * updates, deletions, a re-upload), as a publisher would.
 *
 * Values are served as a DataStore types them: each declared column becomes a field of the
 * DataStore type `dataset add` maps back to it (ckanFieldType), numbers as JSON numbers,
 * `timestamp` as Python's isoformat (six fraction digits, none on a whole second), `timestamptz`
 * with `+00:00`, booleans, JSON and GeoJSON as JSON. A field named in `textFields` is served as
 * XLoader loads every column: type `text`, values as strings.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ColumnConfig, DatasetConfig } from '../runtime/dataset-config';
import { parseDatastoreUrl } from '../lambdas/fetcher/sources/ckan/ckan-api';
import { CkanServer, type CkanFieldSpec, type CkanRecord } from './ckan-server';
import { writeFileDurably } from './durable-file';
import { genericRecords, type RecordGenerator } from './generated-records';
import type { LocalSourceEndpoint, LocalSourceRequest } from './local-source-endpoint';

type CkanSource = Extract<DatasetConfig['source'], { type: 'ckan' }>;

/** What is remembered of the resource besides its rows. */
interface RememberedResource {
  /** What generated it: the rows the generator gave (changes by tests are on top of them). */
  generated: { rows: number; seed: number };
  nextId: number;
  lastModified: string | null;
  /** The rows file (NDJSON, `_id` first): a new name per write, so the state never names a torn file. */
  rowsFile: string;
}

export interface LocalCkanOptions {
  /** The portal's `ckan.datastore.search.rows_max`: a larger `limit` is cut to it silently. */
  rowsMax?: number;
  /** Fields served as type `text` with string values, as XLoader loads a CSV (no type guessing). */
  textFields?: readonly string[];
}

function ckanSource(dataset: DatasetConfig): CkanSource {
  if (dataset.source.type !== 'ckan') throw new Error(`dataset ${dataset.name} is not a CKAN DataStore source`);
  for (const c of dataset.columns) {
    // A DataStore record is flat: a field is read by its name, never at a nested path.
    if (c.path) throw new Error(`dataset ${dataset.name}: column ${c.name} has a path (${c.path}), which a CKAN DataStore field cannot have`);
  }
  return dataset.source;
}

const sourceDir = (dataDir: string, dataset: DatasetConfig): string => path.join(dataDir, 'local-ckan', dataset.name);
const stateFile = (dataDir: string, dataset: DatasetConfig): string => path.join(sourceDir(dataDir, dataset), 'resource.json');

/** The DataStore type a declared column is served as: the one `dataset add` reads back as that column type. */
export function ckanFieldType(column: Pick<ColumnConfig, 'type'>): string {
  switch (column.type) {
    case 'integer':
      return 'int';
    case 'number':
      return 'numeric';
    case 'floating_timestamp':
      return 'timestamp';
    case 'fixed_timestamp':
      return 'timestamptz';
    case 'checkbox':
      return 'bool';
    // The DataStore has no geometry type: GeoJSON is kept in a json field.
    case 'json':
    case 'point':
    case 'geometry':
      return 'json';
    default:
      return 'text';
  }
}

const fieldsOf = (dataset: DatasetConfig, options: LocalCkanOptions): CkanFieldSpec[] =>
  dataset.columns.map((c) => ({ id: c.name, type: options.textFields?.includes(c.name) ? 'text' : ckanFieldType(c) }));

/** A generated timestamp (`2020-01-01T10:00:00.250`) as Python's isoformat writes it: microseconds, none when zero. */
function pythonIso(value: string): string {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z?$/.exec(value);
  if (!m) throw new Error(`generated timestamp "${value}" is not ISO 8601`);
  const micros = (m[2] ?? '').padEnd(6, '0');
  return /^0*$/.test(micros) ? m[1]! : `${m[1]}.${micros}`;
}

/** A generated value (Socrata's shape: scalars as text) as the DataStore serves it in a field of `fieldType`. */
function servedValue(column: ColumnConfig, fieldType: string, value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (fieldType === 'text') return typeof value === 'object' ? JSON.stringify(value) : String(value as string);
  switch (column.type) {
    case 'integer':
    case 'number':
      return Number(value);
    case 'checkbox':
      return value === true || value === 'true';
    case 'floating_timestamp':
      return pythonIso(String(value as string));
    case 'fixed_timestamp':
      return `${pythonIso(String(value as string))}+00:00`;
    default:
      return value;
  }
}

/** The first day a generated timestamp key names. */
const DAILY_KEYS_FROM = Date.parse('2020-12-14T00:00:00Z');

/** Records `from`..`to` of the generator, as the DataStore serves them (without `_id`). */
function servedRecords(dataset: DatasetConfig, generate: RecordGenerator | undefined, options: LocalCkanOptions, from: number, to: number, seed: number): CkanRecord[] {
  const fields = new Map(fieldsOf(dataset, options).map((f) => [f.id, f.type]));
  const key = dataset.columns.find((c) => c.name === dataset.primaryKey)!;
  const out: CkanRecord[] = [];
  let i = 0;
  for (const { record } of generate?.(dataset, to, seed) ?? genericRecords(dataset, to, seed)) {
    if (i++ < from) continue;
    // genericRecords numbers a key that is not a number as text; a timestamp key (a daily report's
    // date) gets one day per record instead, so it is a timestamp and unique.
    const generated = key.type.endsWith('timestamp') ? { ...record, [key.name]: new Date(DAILY_KEYS_FROM + (i - 1) * 86_400_000).toISOString().slice(0, 23) } : record;
    out.push(Object.fromEntries(dataset.columns.map((c) => [c.name, servedValue(c, fields.get(c.name)!, generated[c.name])])));
  }
  return out;
}

async function readState(dataDir: string, dataset: DatasetConfig): Promise<RememberedResource | undefined> {
  return readFile(stateFile(dataDir, dataset), 'utf8').then(
    (t) => JSON.parse(t) as RememberedResource,
    () => undefined,
  );
}

/** The remembered resource's rows as served, `_id` included, in `_id` order. */
export async function readLocalCkanRecords(dataDir: string, dataset: DatasetConfig): Promise<CkanRecord[]> {
  const state = await readState(dataDir, dataset);
  if (!state) throw new Error(`no local CKAN resource of ${dataset.name} in ${dataDir}: run npm run local with it first`);
  const text = await readFile(path.join(sourceDir(dataDir, dataset), state.rowsFile), 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as CkanRecord);
}

/** A portal holding the remembered resource (not listening: start() serves it). */
async function loadServer(dataDir: string, dataset: DatasetConfig, state: RememberedResource, options: LocalCkanOptions): Promise<CkanServer> {
  return serverOf(dataset, options, await readLocalCkanRecords(dataDir, dataset), state.nextId, state.lastModified);
}

function serverOf(dataset: DatasetConfig, options: LocalCkanOptions, records: CkanRecord[], nextId: number, lastModified: string | null): CkanServer {
  const { actionBase, resourceId } = parseDatastoreUrl(ckanSource(dataset).url);
  return new CkanServer({
    resourceId,
    // The portal's path before /api/3/action (a portal mounted under /data, say): served as declared.
    prefix: new URL(actionBase).pathname.replace(/\/api\/3\/action$/, ''),
    fields: fieldsOf(dataset, options),
    records,
    nextId,
    lastModified,
    ...(options.rowsMax !== undefined ? { rowsMax: options.rowsMax } : {}),
  });
}

/** Writes the server's table as the remembered resource: the rows file first, then the state naming it. */
async function remember(dataDir: string, dataset: DatasetConfig, server: CkanServer, generated: RememberedResource['generated'], previous: RememberedResource | undefined): Promise<void> {
  const dir = sourceDir(dataDir, dataset);
  const version = previous ? Number(/(\d+)/.exec(previous.rowsFile)?.[1] ?? 0) + 1 : 1;
  const rowsFile = `rows-${String(version).padStart(6, '0')}.ndjson`;
  await writeFileDurably(path.join(dir, rowsFile), server.records().map((r) => `${JSON.stringify(r)}\n`).join(''));
  const state: RememberedResource = { generated, nextId: server.nextRecordId, lastModified: server.lastModified, rowsFile };
  await writeFileDurably(stateFile(dataDir, dataset), `${JSON.stringify(state)}\n`);
  if (previous && previous.rowsFile !== rowsFile) await rm(path.join(dir, previous.rowsFile), { force: true });
}

/**
 * Changes the remembered resource as its publisher would, between runs: `change` gets a portal
 * holding it (insert, update, delete, reload: each moves last_modified unless `quiet`), and what
 * it leaves is served from the next start on.
 */
export async function changeLocalCkanResource(dataDir: string, dataset: DatasetConfig, change: (resource: CkanServer) => void | Promise<void>): Promise<void> {
  const state = await readState(dataDir, dataset);
  if (!state) throw new Error(`no local CKAN resource of ${dataset.name} in ${dataDir}: run npm run local with it first`);
  const server = await loadServer(dataDir, dataset, state, {});
  await change(server);
  await remember(dataDir, dataset, server, state.generated, state);
}

/** Generates or grows the remembered resource for this run's rows and seed; returns the portal holding it. */
async function prepare(request: LocalSourceRequest, generate: RecordGenerator | undefined, options: LocalCkanOptions): Promise<CkanServer> {
  const { dataset, dataDir, rows, seed } = request;
  const state = await readState(dataDir, dataset);
  if (!state || state.generated.seed !== seed || rows < state.generated.rows) {
    // A new table (another seed, or fewer rows than it has): numbered from 1, modified after the one it replaces.
    const server = serverOf(dataset, options, servedRecords(dataset, generate, options, 0, rows, seed), 1, state?.lastModified ?? null);
    server.touch();
    await remember(dataDir, dataset, server, { rows, seed }, state);
    return server;
  }
  const server = await loadServer(dataDir, dataset, state, options);
  if (rows > state.generated.rows) {
    server.insert(servedRecords(dataset, generate, options, state.generated.rows, rows, seed));
    await remember(dataDir, dataset, server, { rows, seed }, state);
  }
  return server;
}

/** Starts the local portal; `generate` gives an example dataset's own records (local/seed-rows). */
export function localCkanSource(generate?: RecordGenerator, options: LocalCkanOptions = {}) {
  return async (request: LocalSourceRequest): Promise<LocalSourceEndpoint & { server: CkanServer }> => {
    const source = ckanSource(request.dataset);
    const server = await prepare(request, generate, options);
    const origin = await server.start();
    const dir = sourceDir(request.dataDir, request.dataset);
    return {
      env: { SOURCE_ENDPOINT_URL: origin },
      describe: `${source.url} (served from ${path.relative(process.cwd(), dir) || dir} at ${origin})`,
      // Tests inject faults through it; changes to its rows last this run only (changeLocalCkanResource remembers them).
      server,
      close: () => server.close(),
    };
  };
}
