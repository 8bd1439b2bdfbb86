/**
 * From a Socrata dataset's own metadata (`/api/views/<id>.json`, or the `meta.view` of a
 * `rows.json` export) to a proposed dataset definition: every column mapped to a column type,
 * a primary key, an event-time column, a schedule and a few data tests. The proposal is only a
 * starting point; `npm run dataset -- add` validates it with the real schema before writing it.
 * Each heuristic is documented in docs/deploy.md ("Add a dataset from its portal").
 */
import {
  columnSchema,
  datasetSchema,
  EVENT_TIME_TYPES,
  pipelineColumnRole,
  pointFieldNames,
  type ColumnType,
} from './dataset-config';

/** Column statistics Socrata caches per column; numbers are served as numbers or as strings. */
export interface SocrataCachedContents {
  null?: number | string;
  non_null?: number | string;
  cardinality?: number | string;
  smallest?: unknown;
  largest?: unknown;
  top?: { item?: unknown; count?: number | string }[];
}

export interface SocrataColumn {
  id?: number;
  name?: string;
  fieldName: string;
  dataTypeName: string;
  description?: string;
  flags?: string[];
  cachedContents?: SocrataCachedContents;
}

export interface SocrataView {
  id: string;
  name: string;
  description?: string;
  /** The portal's host, when the document names it (not every one does). */
  domainCName?: string;
  /** Socrata's declared row identifier, a column `id`. */
  rowIdentifierColumnId?: number;
  metadata?: { rowIdentifier?: number | string; custom_fields?: Record<string, Record<string, unknown>> };
  columns: SocrataColumn[];
}

/** A metadata document or dataset we cannot turn into a definition; the message is one line. */
export class SocrataMetadataError extends Error {
  override name = 'SocrataMetadataError';
}

/**
 * How each Socrata `dataTypeName` is read. `calendar_date` is the views API's name for a floating
 * timestamp and `date` its name for a fixed one (the SODA 2 names are the other two); Socrata has
 * no date-only type: a date-only column is a floating timestamp at midnight. `null` marks the
 * system columns (`:id`, `:updated_at`, ...), which the fetcher reads itself.
 */
export const SOCRATA_TYPES: Readonly<Record<string, ColumnType | null>> = {
  text: 'text',
  html: 'text',
  email: 'text',
  number: 'number',
  double: 'number',
  money: 'number',
  percent: 'number',
  calendar_date: 'floating_timestamp',
  floating_timestamp: 'floating_timestamp',
  date: 'fixed_timestamp',
  fixed_timestamp: 'fixed_timestamp',
  checkbox: 'checkbox',
  point: 'point',
  multipoint: 'geometry',
  line: 'geometry',
  multiline: 'geometry',
  polygon: 'geometry',
  multipolygon: 'geometry',
  location: 'json',
  url: 'json',
  phone: 'json',
  photo: 'json',
  document: 'json',
  blob: 'json',
  meta_data: null,
};

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The view inside a metadata document: `/api/views/<id>.json` is the view itself, a `rows.json`
 * export carries it as `meta.view`. Anything else is refused, naming `source`.
 */
export function readViewDocument(value: unknown, source: string): SocrataView {
  const view = isRecord(value) && isRecord(value.meta) && isRecord(value.meta.view) ? value.meta.view : value;
  const notSocrata = `${source} is not Socrata view metadata (expected the JSON of https://<portal>/api/views/<id>.json or a rows.json export)`;
  if (!isRecord(view) || !Array.isArray(view.columns)) throw new SocrataMetadataError(`${notSocrata}: it has no "columns" array`);
  if (typeof view.id !== 'string' || !/^[a-z0-9]{4}-[a-z0-9]{4}$/.test(view.id)) {
    throw new SocrataMetadataError(`${notSocrata}: it has no 4x4 dataset "id"`);
  }
  view.columns.forEach((c, i) => {
    if (!isRecord(c) || typeof c.fieldName !== 'string' || typeof c.dataTypeName !== 'string') {
      throw new SocrataMetadataError(`${notSocrata}: columns[${i}] has no string "fieldName" and "dataTypeName"`);
    }
  });
  if (view.columns.length === 0) throw new SocrataMetadataError(`${source}: dataset ${view.id} has no columns`);
  return { ...(view as unknown as SocrataView), name: typeof view.name === 'string' ? view.name : view.id };
}

export interface ProposeOptions {
  /** Portal host name (e.g. data.sfgov.org). */
  domain: string;
  /** Dataset name; default: the portal title in kebab-case. */
  name?: string;
  primaryKey?: string;
  eventTimeColumn?: string;
  /** Source fields to leave out (they still reach the raw zone and are reported as drift). */
  exclude?: readonly string[];
}

export interface Proposal {
  /** The definition as it will be written (validate it with parseDataset). */
  definition: Record<string, unknown>;
  /** One line per choice made or field left out, for the person running the command. */
  notes: string[];
}

interface MappedColumn {
  source: SocrataColumn;
  name: string;
  type: ColumnType;
}

const num = (v: unknown): number | undefined => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
};

/** Why a source field cannot be a column name (it must equal the field the fetcher reads); undefined if it can. */
function fieldNameProblem(field: string): string | undefined {
  const parsed = columnSchema.shape.name.safeParse(field);
  if (!parsed.success) return parsed.error.issues[0]?.message;
  const role = pipelineColumnRole(field);
  return role ? `is ${role}` : undefined;
}

/** Columns the fetcher will see, mapped; system, computed-region and hidden columns are noted and left out. */
function mapColumns(view: SocrataView, exclude: ReadonlySet<string>, notes: string[]): MappedColumn[] {
  const mapped: MappedColumn[] = [];
  const unsupported: string[] = [];
  const unusable: string[] = [];
  const skipped = { system: [] as string[], hidden: [] as string[], excluded: [] as string[] };
  for (const c of view.columns) {
    const type = SOCRATA_TYPES[c.dataTypeName];
    // `:`-prefixed fields are system fields and computed region columns: the fetcher drops them.
    if (type === null || c.fieldName.startsWith(':')) {
      if (type !== null) skipped.system.push(c.fieldName);
      continue;
    }
    if (exclude.has(c.fieldName)) {
      skipped.excluded.push(c.fieldName);
      continue;
    }
    // Hidden columns are not served to the public API, so they would never arrive.
    if (c.flags?.includes('hidden')) {
      skipped.hidden.push(c.fieldName);
      continue;
    }
    if (type === undefined) {
      unsupported.push(`"${c.fieldName}" (${c.dataTypeName})`);
      continue;
    }
    const problem = fieldNameProblem(c.fieldName);
    if (problem) {
      unusable.push(`"${c.fieldName}" ${problem}`);
      continue;
    }
    mapped.push({ source: c, name: c.fieldName, type });
  }
  const fix = (fields: string[]) =>
    `leave ${fields.length === 1 ? 'it' : 'them'} out with --exclude (an undeclared field still reaches the raw zone and is reported as drift)`;
  if (unsupported.length) {
    throw new SocrataMetadataError(`dataset ${view.id}: no column type for ${unsupported.join(', ')}; ${fix(unsupported)}`);
  }
  if (unusable.length) {
    // Renaming is impossible: the column name is the field name the fetcher and the raw table read.
    throw new SocrataMetadataError(`dataset ${view.id}: source field ${unusable.join('; field ')}; column names must equal source field names, so ${fix(unusable)}`);
  }
  if (skipped.system.length) notes.push(`left out ${skipped.system.join(', ')}: computed region columns, which the fetcher does not deliver`);
  if (skipped.hidden.length) notes.push(`left out ${skipped.hidden.join(', ')}: hidden in the portal, so never served`);
  if (skipped.excluded.length) notes.push(`left out ${skipped.excluded.join(', ')} (--exclude)`);
  if (!mapped.length) throw new SocrataMetadataError(`dataset ${view.id} has no column the pipeline can read`);
  return mapped;
}

const KEY_TYPES: readonly ColumnType[] = ['text', 'number', 'integer'];
const ID_NAME = /^(id|.*_(id|number|no|num|key))$|^(case|incident|record|row|unique)_?(id|number|no|key)$/;

/** Statistics say the column is unique and complete (only when Socrata computed both counts). */
function statsUnique(c: SocrataColumn): boolean | undefined {
  const s = c.cachedContents;
  const nulls = num(s?.null);
  const nonNull = num(s?.non_null);
  const cardinality = num(s?.cardinality);
  if (nulls === undefined || nonNull === undefined) return undefined;
  if (nulls > 0) return false;
  return cardinality === undefined ? undefined : cardinality === nonNull;
}

/**
 * The primary key, in order of evidence: the row identifier the portal declares; a column the
 * portal's statistics show unique and never null; an id-like name (`id`, `*_id`, `*_number`,
 * `*_no`, `*_key`) whose statistics do not contradict it. Only text/number columns qualify.
 */
function choosePrimaryKey(view: SocrataView, columns: MappedColumn[], notes: string[]): string {
  const candidates = columns.filter((c) => KEY_TYPES.includes(c.type));
  const declaredId = num(view.rowIdentifierColumnId) ?? num(view.metadata?.rowIdentifier);
  const declared = declaredId !== undefined ? candidates.find((c) => c.source.id === declaredId) : undefined;
  if (declared) {
    notes.push(`primary key: ${declared.name} (the row identifier the portal declares)`);
    return declared.name;
  }
  const unique = candidates.filter((c) => statsUnique(c.source) === true);
  const byName = (list: MappedColumn[]) => list.find((c) => c.name === 'id') ?? list.find((c) => ID_NAME.test(c.name));
  const fromStats = byName(unique) ?? unique[0];
  if (fromStats) {
    notes.push(`primary key: ${fromStats.name} (unique and never null in the portal's column statistics)`);
    return fromStats.name;
  }
  const fromName = byName(candidates.filter((c) => statsUnique(c.source) !== false));
  if (fromName) {
    notes.push(`primary key: ${fromName.name} (its name looks like an identifier; check that it is unique)`);
    return fromName.name;
  }
  throw new SocrataMetadataError(
    `dataset ${view.id}: no column looks like a row identifier (a declared row id, a unique column, or a text/number column named id or *_id); name one with --primary-key <field>`,
  );
}

const BOOKKEEPING_TIME = /(^|_)(updated?|modified|loaded?|refresh(ed)?|created|ingested|as_of|last)(_|$)|data_as_of/;
const EVENT_TIME = /(^|_)(date|dttm|datetime|time|timestamp|incident|event|occurred|occurrence|reported|received|filed|opened|issued?|start(ed)?|alarm|call)(_|$)/;

/**
 * The event-time column: among timestamp columns, one whose name says when the thing happened
 * (date, dttm, incident, occurred, reported, filed, ...) over one that records bookkeeping
 * (updated, modified, loaded, created, as_of); floating over fixed; then the first in the portal's order.
 */
function chooseEventTime(view: SocrataView, columns: MappedColumn[], notes: string[]): string {
  const candidates = columns.filter((c) => EVENT_TIME_TYPES.includes(c.type));
  if (!candidates.length) {
    throw new SocrataMetadataError(
      `dataset ${view.id} has no timestamp column (calendar_date, floating_timestamp or fixed_timestamp): the curated table is partitioned by event time, so the pipeline cannot ingest it as is`,
    );
  }
  const score = (c: MappedColumn) =>
    (BOOKKEEPING_TIME.test(c.name) ? -10 : 0) + (EVENT_TIME.test(c.name) ? 5 : 0) + (c.type === 'floating_timestamp' ? 1 : 0);
  let best = candidates[0]!;
  for (const c of candidates) if (score(c) > score(best)) best = c;
  const others = candidates.filter((c) => c !== best).map((c) => c.name);
  notes.push(`event time: ${best.name}${others.length ? ` (other timestamps: ${others.join(', ')}; choose with --event-time)` : ''}`);
  return best.name;
}

/** Socrata shows at most this many top values per column. */
const SOCRATA_TOP_VALUES = 20;
const MAX_ACCEPTED_VALUES = 10;
const COUNT_NAME = /(^|_)(count|counts|num|number_of|total|qty|quantity|units|persons|people|personnel|injuries|fatalities|casualties|deaths|vehicles)(_|$)/;

/** The column's complete list of values, when the statistics show all of them; undefined otherwise. */
function completeValues(c: SocrataColumn): string[] | undefined {
  const top = c.cachedContents?.top;
  if (!Array.isArray(top) || !top.length) return undefined;
  const values = top.map((t) => t.item);
  if (!values.every((v): v is string => typeof v === 'string')) return undefined;
  const cardinality = num(c.cachedContents?.cardinality);
  // With a cardinality the list is complete when it has that many values; without one, only a
  // list shorter than Socrata's cut-off can be complete.
  const complete = cardinality !== undefined ? cardinality === values.length : values.length < SOCRATA_TOP_VALUES;
  // A category repeats: when the values are not each used at least twice on average (ten rows,
  // ten places), the list describes today's rows, not a closed set.
  const nonNull = num(c.cachedContents?.non_null);
  const repeats = nonNull === undefined || nonNull >= 2 * values.length;
  return complete && repeats ? values : undefined;
}

/**
 * Proposed data tests, all `warn` so a new dataset never fails its first run on a guess:
 * not_null on the event time; accepted_values for a text column whose statistics list all of its
 * (at most 10) values, each used at least twice on average; range min 0 for a number column named like a count whose smallest value
 * is not negative. (Every dataset already tests its primary key for not-null and unique.)
 */
function proposeTests(columns: MappedColumn[], primaryKey: string, eventTime: string, notes: string[]): Record<string, unknown>[] {
  const tests: Record<string, unknown>[] = [{ kind: 'not_null', column: eventTime, severity: 'warn' }];
  for (const c of columns) {
    if (c.name === primaryKey) continue;
    if (c.type === 'text') {
      const values = completeValues(c.source);
      if (values && values.length <= MAX_ACCEPTED_VALUES) tests.push({ kind: 'accepted_values', column: c.name, values, severity: 'warn' });
    } else if (c.type === 'number' && COUNT_NAME.test(c.name)) {
      const smallest = num(c.source.cachedContents?.smallest);
      if (smallest === undefined || smallest >= 0) tests.push({ kind: 'range', column: c.name, min: 0, severity: 'warn' });
    }
  }
  notes.push(`data tests: ${tests.map((t) => `${String(t.kind)} ${String(t.column)}`).join(', ')} (all severity warn; raise to error once they hold)`);
  return tests;
}

/** Scheduler expressions for the portal's "update frequency" words; daily at 06:00 UTC otherwise. */
const SCHEDULES: readonly [RegExp, string][] = [
  [/hour/i, 'rate(1 hour)'],
  [/dai|day|night/i, 'cron(0 6 * * ? *)'],
  [/week/i, 'cron(0 6 ? * MON *)'],
  [/month|quarter/i, 'cron(0 6 1 * ? *)'],
  [/annual|year/i, 'cron(0 6 1 1 ? *)'],
];
const DEFAULT_SCHEDULE = 'cron(0 6 * * ? *)';

function proposeSchedule(view: SocrataView, notes: string[]): string {
  const fields = Object.values(view.metadata?.custom_fields ?? {}).flatMap((group) => (isRecord(group) ? Object.entries(group) : []));
  const frequency = fields.find(([k, v]) => /frequency/i.test(k) && typeof v === 'string')?.[1] as string | undefined;
  const match = frequency ? SCHEDULES.find(([re]) => re.test(frequency)) : undefined;
  if (match) {
    notes.push(`schedule: ${match[1]} (the portal says "${frequency!.trim()}")`);
    return match[1];
  }
  notes.push(`schedule: ${DEFAULT_SCHEDULE} (daily; the portal states no update frequency)`);
  return DEFAULT_SCHEDULE;
}

/** A dataset name from the portal title: kebab-case, at most 42 characters; `socrata-<id>` if that fails. */
export function nameFromTitle(title: string, datasetId: string): string {
  const words = title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  let name = words;
  while (name.length > 42) name = name.includes('-') ? name.slice(0, name.lastIndexOf('-')) : name.slice(0, 42);
  return datasetSchema.shape.name.safeParse(name).success ? name : `socrata-${datasetId}`;
}

/** Point columns whose default coordinate names are taken get `<name>_lon`/`<name>_lat` instead. */
function coordinatesFor(c: MappedColumn, taken: Set<string>): { longitude: string; latitude: string } | undefined {
  const defaults = pointFieldNames(c.name);
  const free = (n: string) => !taken.has(n.toLowerCase()) && !pipelineColumnRole(n);
  if (free(defaults.longitude) && free(defaults.latitude)) return undefined;
  return { longitude: `${c.name}_lon`, latitude: `${c.name}_lat` };
}

/** The proposed definition for a view; throws SocrataMetadataError with one line when it cannot. */
export function proposeDataset(view: SocrataView, opts: ProposeOptions): Proposal {
  const notes: string[] = [];
  const columns = mapColumns(view, new Set(opts.exclude ?? []), notes);
  const names = columns.map((c) => c.name);
  const named = (flag: string, field: string, allowed: readonly ColumnType[]) => {
    const c = columns.find((col) => col.name === field);
    if (!c) throw new SocrataMetadataError(`${flag} ${field}: dataset ${view.id} has no such column (columns: ${names.join(', ')})`);
    if (!allowed.includes(c.type)) throw new SocrataMetadataError(`${flag} ${field}: it is a ${c.type} column; it must be ${allowed.join(' or ')}`);
    return field;
  };
  const primaryKey = opts.primaryKey ? named('--primary-key', opts.primaryKey, KEY_TYPES) : choosePrimaryKey(view, columns, notes);
  const eventTimeColumn = opts.eventTimeColumn ? named('--event-time', opts.eventTimeColumn, EVENT_TIME_TYPES) : chooseEventTime(view, columns, notes);
  const taken = new Set(names.map((n) => n.toLowerCase()));
  const columnEntries = columns.map((c) => {
    const description = (c.source.description ?? '').trim() || (c.source.name ?? '').trim();
    const coordinates = c.type === 'point' ? coordinatesFor(c, taken) : undefined;
    if (coordinates) notes.push(`point ${c.name}: coordinates named ${coordinates.longitude}/${coordinates.latitude} (the default names are taken)`);
    return { name: c.name, type: c.type, ...(description ? { description } : {}), ...(coordinates ? { coordinates } : {}) };
  });
  const definition: Record<string, unknown> = {
    $schema: './dataset.schema.json',
    name: opts.name ?? nameFromTitle(view.name, view.id),
    description: (view.description ?? '').trim() || view.name,
    source: { domain: opts.domain, datasetId: view.id },
    primaryKey,
    eventTimeColumn,
    columns: columnEntries,
    schedule: { expression: proposeSchedule(view, notes), timezone: 'UTC' },
    dataTests: proposeTests(columns, primaryKey, eventTimeColumn, notes),
  };
  return { definition, notes };
}
