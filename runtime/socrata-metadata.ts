/**
 * From a Socrata dataset's own metadata (`/api/views/<id>.json`, or the `meta.view` of a
 * `rows.json` export) to a proposed dataset definition: every column mapped to a column type,
 * a primary key, an event-time column, a schedule and a few data tests, meant to be accepted as is:
 * each choice comes with a one-line note saying why, so a person reviews reasons, not guesses.
 * `npm run dataset -- add` validates it with the real schema before writing it.
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
import { ConfigError } from './pipeline-error';

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
export class SocrataMetadataError extends ConfigError {
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

/** Share of rows without a value, when the statistics carry both counts. */
function nullShare(c: SocrataColumn): number | undefined {
  const nulls = num(c.cachedContents?.null);
  const nonNull = num(c.cachedContents?.non_null);
  return nulls === undefined || nonNull === undefined || nulls + nonNull === 0 ? undefined : nulls / (nulls + nonNull);
}

const percent = (share: number): string => (share === 0 ? '0%' : share < 0.001 ? '<0.1%' : `${(share * 100).toFixed(share < 0.1 ? 1 : 0)}%`);

const ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };
const HTML = /<\/?[a-z][^>]*>|&(?:#[0-9]+|#x[0-9a-f]+|[a-z]+);/i;

/**
 * Portal descriptions are often HTML (`<b>NOTE:</b> ... <p>...</p>`): the definition, catalog
 * comments and docs want the text. Block tags become line breaks, other tags go, entities are
 * decoded. Text without markup is only trimmed, so plain descriptions stay exactly as served.
 */
export function plainText(text: string): string {
  if (!HTML.test(text)) return text.trim();
  return text
    .replace(/<br\s*\/?>|<\/?(?:p|div|li|ul|ol|h[1-6]|tr|table)\b[^>]*>/gi, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&(#[0-9]+|#x[0-9a-f]+|[a-z]+);/gi, (whole, code: string) => {
      if (code[0] !== '#') return ENTITIES[code.toLowerCase()] ?? whole;
      const n = code[1] === 'x' || code[1] === 'X' ? parseInt(code.slice(2), 16) : parseInt(code.slice(1), 10);
      return Number.isFinite(n) && n > 0 && n <= 0x10ffff ? String.fromCodePoint(n) : whole;
    })
    .split('\n')
    .map((line) => line.replace(/[ \t]+/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** A whole number as the cast contract reads one for `integer` (BIGINT): digits only, no ".0". */
const WHOLE = /^[+-]?[0-9]+$/;
const ZIP_NAME = /(^|_)(zip|zipcode|zip_code|postal|postal_code|postcode)(_|$)/;
/** Identifier-like names: `id`, `*_id`, `*_number`, `*_no`, `*_key`, licence/permit numbers. */
const ID_NAME = /^(id|.*_(id|number|no|num|key))$|^(case|incident|record|row|unique)_?(id|number|no|key)$|(^|_)(licen[cs]e|permit)(_|$)/;
const COORDINATE_NAME = /(^|_)(lat|latitude|lon|lng|longitude|x|y|x_coordinate|y_coordinate|easting|northing)(_|$)/;
/** Fewer distinct whole values than this is no evidence that a column only ever holds whole numbers. */
const MIN_WHOLE_EVIDENCE = 3;

/** The values the statistics show for a column (smallest, largest, top values), as strings. */
function sampleValues(c: SocrataColumn): string[] {
  const s = c.cachedContents;
  const values = [s?.smallest, s?.largest, ...(Array.isArray(s?.top) ? s.top.map((t) => t.item) : [])];
  return values.filter((v): v is string | number => typeof v === 'string' || typeof v === 'number').map(String);
}

/**
 * The column type of a Socrata `number` column, from its name and the statistics the portal
 * caches: a zip code is text (a code, not a quantity: leading zeros and ZIP+4 survive); an
 * identifier is integer when every value shown is a whole number, else text, never a double (ids
 * compared as doubles lose digits past 2^53 and print as 1.2E7); another column is integer when the
 * statistics show at least three distinct values and all are whole, else number (double).
 * Coordinates stay double whatever the sample shows. Returns the type and the one-line reason.
 */
function numberColumnType(c: SocrataColumn): { type: ColumnType; why: string } {
  const name = c.fieldName;
  if (ZIP_NAME.test(name)) return { type: 'text', why: 'a zip code is a code, not a quantity: kept as served, so leading zeros and ZIP+4 survive' };
  const values = sampleValues(c);
  const distinct = new Set(values);
  const whole = values.length > 0 && values.every((v) => WHOLE.test(v.trim()));
  const range = () => {
    const s = c.cachedContents;
    return s?.smallest !== undefined && s.largest !== undefined ? `, ${String(s.smallest)} to ${String(s.largest)}` : '';
  };
  if (ID_NAME.test(name)) {
    if (whole) return { type: 'integer', why: `an identifier; the portal's statistics show only whole numbers${range()}` };
    return values.length
      ? { type: 'text', why: 'an identifier whose values in the statistics are not all whole numbers: kept as served' }
      : { type: 'text', why: 'an identifier; the metadata has no statistics showing whole numbers, so it is kept as served' };
  }
  if (COORDINATE_NAME.test(name)) return { type: 'number', why: 'a coordinate' };
  if (whole && distinct.size >= MIN_WHOLE_EVIDENCE) {
    return { type: 'integer', why: `only whole numbers in the portal's statistics: ${distinct.size} distinct values${range()}; a fraction later would be a counted cast failure, kept in raw` };
  }
  if (!values.length) return { type: 'number', why: 'no statistics in the metadata' };
  return { type: 'number', why: whole ? `too few values in the statistics (${distinct.size}) to call it whole` : 'fractions in the statistics' };
}

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
  const typeNotes: string[] = [];
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
    if (c.dataTypeName === 'number') {
      const chosen = numberColumnType(c);
      typeNotes.push(`${c.fieldName}: ${chosen.type} (${chosen.why})`);
      mapped.push({ source: c, name: c.fieldName, type: chosen.type });
    } else {
      mapped.push({ source: c, name: c.fieldName, type });
    }
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
  const counts = new Map<string, number>();
  for (const c of mapped) if (c.source.dataTypeName !== 'number') counts.set(c.type, (counts.get(c.type) ?? 0) + 1);
  if (counts.size) notes.push(`types: ${[...counts].map(([t, n]) => `${n} ${t}`).join(', ')}, as the portal declares them (docs/deploy.md, "Socrata types")`);
  for (const line of typeNotes) notes.push(`type ${line}`);
  return mapped;
}

const KEY_TYPES: readonly ColumnType[] = ['text', 'number', 'integer'];

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
 * portal's statistics show unique and never null; an id-like name (ID_NAME: `id`, `*_id`, `*_number`,
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

/**
 * What a timestamp column's name says it records, best first: when the thing was created or
 * happened (the event), a neutral date, when it was closed, resolved or due (empty while the thing
 * is open, and it moves when the thing closes), or when a row was updated or loaded (bookkeeping:
 * changes on every edit or reload). Update and closing words win over event words:
 * `event_clearance_date` is a closing time.
 */
const TIME_ROLES: readonly { role: string; rank: number; pattern: RegExp }[] = [
  { role: 'an update or load time', rank: 0, pattern: /(^|_)(updated?|modified|loaded?|refresh(ed)?|ingested|as_of|last|asof)(_|$)|data_as_of/ },
  { role: 'a closing or due time', rank: 1, pattern: /(^|_)(closed?|closing|cleared|clearance|resolved|resolution|completed?|finished|ended|end|due|expir(y|es|ed|ation)|cancell?ed|disposition)(_|$)/ },
  {
    role: 'a creation or occurrence time',
    rank: 3,
    pattern: /(^|_)(created?|creation|opened|open|received|reported|filed|submitted|requested|issued?|start(ed)?|began|occurred|occurrence|incident|event|inspection|alarm|call|dispatch(ed)?|arrival|observed|recorded|collected|sampled)(_|$)/,
  },
];
const NEUTRAL_TIME = { role: 'a date', rank: 2 };
/** A column empty in more than this share of rows cannot partition the table: most rows would have no year. */
const MAX_EVENT_NULL_SHARE = 0.5;

function timeRole(name: string): { role: string; rank: number } {
  return TIME_ROLES.find((r) => r.pattern.test(name)) ?? NEUTRAL_TIME;
}

/**
 * The event-time column, ranked by: a null share the statistics show at most 50% (where they have
 * one), then what the name says it records (creation/occurrence, a neutral date, closing/due,
 * update/load), then the smaller null share, floating over fixed, then the portal's order. The
 * note says why, and what each other timestamp was taken for.
 */
function chooseEventTime(view: SocrataView, columns: MappedColumn[], notes: string[]): string {
  const candidates = columns.filter((c) => EVENT_TIME_TYPES.includes(c.type));
  if (!candidates.length) {
    throw new SocrataMetadataError(
      `dataset ${view.id} has no timestamp column (calendar_date, floating_timestamp or fixed_timestamp): the curated table is partitioned by event time, so the pipeline cannot ingest it as is`,
    );
  }
  const key = (c: MappedColumn): number[] => {
    const nulls = nullShare(c.source);
    return [nulls !== undefined && nulls > MAX_EVENT_NULL_SHARE ? 0 : 1, timeRole(c.name).rank, -(nulls ?? 0), c.type === 'floating_timestamp' ? 1 : 0];
  };
  const better = (a: number[], b: number[]) => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! > b[i]!;
    return false;
  };
  let best = candidates[0]!;
  for (const c of candidates) if (better(key(c), key(best))) best = c;
  const describe = (c: MappedColumn) => {
    const nulls = nullShare(c.source);
    return `${timeRole(c.name).role}${nulls !== undefined ? `, ${percent(nulls)} empty` : ''}`;
  };
  const others = candidates.filter((c) => c !== best).map((c) => `${c.name} (${describe(c)})`);
  notes.push(`event time: ${best.name} (${describe(best)})${others.length ? `; other timestamps: ${others.join(', ')}; choose another with --event-time` : ''}`);
  return best.name;
}

/** Socrata shows at most this many top values per column. */
const SOCRATA_TOP_VALUES = 20;
const MAX_ACCEPTED_VALUES = 10;
const COUNT_NAME = /(^|_)(count|counts|num|number_of|total|qty|quantity|units|persons|people|personnel|injuries|fatalities|casualties|deaths|vehicles)(_|$)/;

/**
 * The column's complete list of values and the evidence for it, when the statistics show all of
 * them; undefined otherwise. Socrata lists at most 20 top values, so a short list alone proves
 * nothing (an old view lists 2 of ~49,000 business names). Complete means: the distinct count
 * equals the list's length, or the listed counts add up to every non-null row, or (neither given)
 * a list shorter than the cut-off that holds the column's smallest and largest values. And a
 * category repeats: values not used at least twice on average describe today's rows, not a closed set.
 */
function completeValues(c: SocrataColumn): { values: string[]; why: string } | undefined {
  const s = c.cachedContents;
  const top = s?.top;
  if (!Array.isArray(top) || !top.length) return undefined;
  const values = top.map((t) => t.item);
  if (!values.every((v): v is string => typeof v === 'string')) return undefined;
  const nonNull = num(s?.non_null);
  if (nonNull !== undefined && nonNull < 2 * values.length) return undefined;
  const cardinality = num(s?.cardinality);
  if (cardinality !== undefined) return cardinality === values.length ? { values, why: `the portal counts ${cardinality} distinct value${cardinality === 1 ? '' : 's'} and lists all of them` } : undefined;
  const counts = top.map((t) => num(t.count));
  const counted = counts.every((n) => n !== undefined) ? counts.reduce((a: number, b) => a + b!, 0) : undefined;
  if (counted !== undefined && nonNull !== undefined && counted === nonNull) return { values, why: `the listed values' counts add up to all ${nonNull} non-null rows` };
  const listed = new Set(values);
  const ends = [s?.smallest, s?.largest];
  if (values.length < SOCRATA_TOP_VALUES && ends.every((v) => typeof v === 'string' && listed.has(v))) {
    return { values, why: `${values.length} value${values.length === 1 ? '' : 's'}, fewer than Socrata's ${SOCRATA_TOP_VALUES}-value cut-off, and the column's smallest and largest values are among them` };
  }
  return undefined;
}

/**
 * Proposed data tests, all `warn` so a new dataset never fails its first run on a guess:
 * not_null on the event time; accepted_values for a text column whose statistics show its complete
 * list of (at most 10) values; range min 0 for a number or integer column named like a count whose
 * smallest value is not negative. (Every dataset already tests its primary key for not-null and unique.)
 */
function proposeTests(columns: MappedColumn[], primaryKey: string, eventTime: string, notes: string[]): Record<string, unknown>[] {
  const tests: Record<string, unknown>[] = [{ kind: 'not_null', column: eventTime, severity: 'warn' }];
  const why: string[] = [`not_null ${eventTime} (the event time partitions the table)`];
  const open: string[] = [];
  for (const c of columns) {
    if (c.name === primaryKey) continue;
    if (c.type === 'text') {
      const complete = completeValues(c.source);
      if (complete && complete.values.length <= MAX_ACCEPTED_VALUES) {
        tests.push({ kind: 'accepted_values', column: c.name, values: complete.values, severity: 'warn' });
        why.push(`accepted_values ${c.name} (${complete.why})`);
      } else if (Array.isArray(c.source.cachedContents?.top) && c.source.cachedContents.top.length) {
        open.push(c.name);
      }
    } else if ((c.type === 'number' || c.type === 'integer') && COUNT_NAME.test(c.name)) {
      const smallest = num(c.source.cachedContents?.smallest);
      if (smallest === undefined || smallest >= 0) {
        tests.push({ kind: 'range', column: c.name, min: 0, severity: 'warn' });
        why.push(`range ${c.name} min 0 (named like a count${smallest !== undefined ? `; smallest value ${smallest}` : ''})`);
      }
    }
  }
  for (const line of why) notes.push(`test ${line}`);
  if (open.length) notes.push(`no accepted_values for ${open.join(', ')}: the statistics do not show a complete list of at most ${MAX_ACCEPTED_VALUES} values`);
  notes.push('data tests are all severity warn; raise them to error once they hold');
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

/** Words a name cut at 42 characters should not end on. */
const TRAILING_WORDS = new Set(['a', 'an', 'and', 'at', 'by', 'for', 'from', 'in', 'of', 'on', 'or', 'the', 'to', 'with']);
const NAME_LENGTH = 42;

/** The portal's own name: the first label of its host that is not data/www/opendata. */
function portalName(domain: string): string | undefined {
  return domain
    .toLowerCase()
    .split('.')
    .find((label) => !['data', 'www', 'opendata', 'open'].includes(label) && /^[a-z0-9-]+$/.test(label));
}

/**
 * A dataset name from the portal title, and the rule as applied (for the note): the title in
 * lower-case kebab-case, cut at a word to at most 42 characters and not ending on a filler word
 * ("from", "to", "of", ...); a title starting with a digit gets the portal's name in front, because
 * the name is also a table name; `socrata-<id>` when no valid name comes out.
 */
export function nameFromTitle(title: string, datasetId: string, domain?: string): { name: string; rule: string } {
  const rule = ['from the title in kebab-case'];
  let words = plainText(title).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  const prefix = domain ? portalName(domain) : undefined;
  if (/^[0-9]/.test(words) && prefix && /^[a-z]/.test(prefix)) {
    words = `${prefix}-${words}`;
    rule.push(`"${prefix}" (the portal's name) in front because a table name cannot start with a digit`);
  }
  const parts = words.split('-').filter(Boolean);
  const full = parts.length;
  while (parts.length > 1 && (parts.join('-').length > NAME_LENGTH || TRAILING_WORDS.has(parts.at(-1)!))) parts.pop();
  if (parts.length < full) rule.push(`cut at a word to at most ${NAME_LENGTH} characters, not ending on a filler word`);
  const name = parts.join('-').slice(0, NAME_LENGTH).replace(/-+$/, '');
  if (datasetSchema.shape.name.safeParse(name).success) return { name, rule: rule.join(', ') };
  return { name: `socrata-${datasetId}`, rule: `the title gives no valid name ("${name}"), so the dataset id` };
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
    const description = plainText(c.source.description ?? '') || (c.source.name ?? '').trim();
    const coordinates = c.type === 'point' ? coordinatesFor(c, taken) : undefined;
    if (coordinates) notes.push(`point ${c.name}: coordinates named ${coordinates.longitude}/${coordinates.latitude} (the default names are taken)`);
    return { name: c.name, type: c.type, ...(description ? { description } : {}), ...(coordinates ? { coordinates } : {}) };
  });
  const derived = opts.name ? { name: opts.name, rule: '--name' } : nameFromTitle(view.name, view.id, opts.domain);
  const name = derived.name;
  notes.unshift(`name: ${name} (${derived.rule}${opts.name ? '' : '; choose another with --name'})`);
  const description = plainText(view.description ?? '') || view.name;
  if (description !== (view.description ?? '').trim() && view.description?.trim()) notes.push('description: HTML markup removed from the portal description (kept as text)');
  const definition: Record<string, unknown> = {
    $schema: './dataset.schema.json',
    name,
    description,
    source: { domain: opts.domain, datasetId: view.id },
    primaryKey,
    eventTimeColumn,
    columns: columnEntries,
    schedule: { expression: proposeSchedule(view, notes), timezone: 'UTC' },
    dataTests: proposeTests(columns, primaryKey, eventTimeColumn, notes),
  };
  return { definition, notes };
}
