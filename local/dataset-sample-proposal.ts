/**
 * A dataset definition proposed from a sample of a file or S3 source (local/dataset-sample.ts):
 * each field's type from its values, a primary key and an event-time column, and QUESTIONS where
 * the sample cannot decide. A question is never answered by a guess: the caller writes nothing
 * while any is open, and each question names the flag that answers it.
 *
 * Types follow the transform's cast contract (containers/transform/src/dialect.ts CAST_PATTERNS):
 * a column is typed integer, number, checkbox or timestamp only when every sampled value passes
 * the same pattern the transform gates its cast with, so the proposal never declares a type the
 * transform would then read as NULL.
 */
import { CAST_PATTERNS } from '../containers/transform/src/dialect';
import { columnSchema, DEFAULT_MAX_QUARANTINE_SHARE, pipelineColumnRole, type ColumnType } from '../runtime/dataset-config';
import type { FileFormat } from '../runtime/file-formats';
import { MAX_NAME_LENGTH, reservedBy } from '../runtime/sql-names';
import type { Sample } from './dataset-sample';

export interface SampleProposalOptions {
  sourceType: 'file' | 's3';
  url: string;
  format: FileFormat;
  name?: string;
  primaryKey?: string;
  eventTimeColumn?: string;
  /** S3: the fields (dotted paths) of a composite or nested key. */
  key?: readonly string[];
  /** S3: append (the default) or snapshot. */
  mode?: 'append' | 'snapshot';
  /** Fields (source names or dotted paths) or column names to leave out. */
  exclude?: readonly string[];
  /** The sample bound in bytes, named in the sample line. */
  sampleBytes: number;
}

export interface SampleProposal {
  /** The definition to write; only meaningful when `questions` is empty. */
  definition: Record<string, unknown>;
  /** What was sampled and each choice made, one line each. */
  notes: string[];
  /** What the sample cannot decide, each with the flag that answers it. */
  questions: string[];
}

/** Below this many records of a source read only in part, "all distinct" is too weak to call a key. */
export const MIN_RECORDS_FOR_KEY = 20;
/** Composite keys of up to this many fields are tried (S3). */
const MAX_KEY_PARTS = 3;
/** Fields tried as composite key parts: the bound keeps the search at C(24,3) = 2,024 tuples. */
const MAX_KEY_CANDIDATES = 24;

interface Field {
  /** Source path segments: one for a top-level field. */
  segments: string[];
  /** Dotted path (`data.location.lat`), or the top-level field name as it is. */
  path: string;
  /** Records in which it has a value (not absent, null or ''). */
  present: number;
  /** Every sampled value, in record order (undefined where absent): for uniqueness and types. */
  values: unknown[];
}

interface Column {
  field: Field;
  name: string;
  /** The column reads a top-level field of another name (a header such as "Order ID"): columns[].field. */
  renamed?: true;
  type: ColumnType;
  /** Why the type is what it is, when that is worth a note (leading zeros kept as text). */
  typeNote?: string;
}

const missing = (v: unknown): boolean => v === undefined || v === null || v === '';
const isContainer = (v: unknown): boolean => typeof v === 'object' && v !== null;
const isPlainObject = (v: unknown): v is Record<string, unknown> => isContainer(v) && !Array.isArray(v);

const full = (pattern: string) => new RegExp(`^(?:${pattern})$`);
const BIGINT = full(CAST_PATTERNS.BIGINT);
const DOUBLE = full(CAST_PATTERNS.DOUBLE);
const TIMESTAMP = full(CAST_PATTERNS.TIMESTAMP);
const BOOLEAN = full(CAST_PATTERNS.BOOLEAN);
const INT64_MAX = 2n ** 63n - 1n;
/** Dates a person would call a date but the cast contract does not read (for the event-time question). */
const DATE_LIKE = /^(\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4})([ T]\d{1,2}:\d{2}(:\d{2})?)?/;

/** A JSON value as the raw zone's text column will hold it: strings as they are, the rest as JSON. */
const asText = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

/** The column type every non-missing value fits, following the cast contract. */
function inferType(values: readonly unknown[]): { type: ColumnType; note?: string } {
  const present = values.filter((v) => !missing(v));
  if (!present.length) return { type: 'text', note: 'no value in the sample' };
  if (present.some(isContainer)) return { type: 'json' };
  if (present.every((v) => typeof v === 'boolean' || (typeof v === 'string' && BOOLEAN.test(v)))) return { type: 'checkbox' };
  const texts = present.map(asText);
  if (present.every((v) => typeof v !== 'string' || DOUBLE.test(v)) && texts.every((t) => DOUBLE.test(t))) {
    // A code such as a postal code or an account number keeps its leading zeros only as text.
    if (present.some((v) => typeof v === 'string' && /^[+-]?0[0-9]/.test(v))) return { type: 'text', note: 'numeric, but with leading zeros (a code: kept as text)' };
    const whole = texts.every((t) => BIGINT.test(t) && BigInt(t) <= INT64_MAX && BigInt(t) >= -INT64_MAX - 1n);
    return { type: whole ? 'integer' : 'number' };
  }
  if (texts.every((t) => TIMESTAMP.test(t))) return { type: texts.every((t) => t.endsWith('Z')) ? 'fixed_timestamp' : 'floating_timestamp' };
  return { type: 'text' };
}

/** The sample's fields in first-seen order: top-level only (file), or leaf paths of nested objects (S3). */
function collectFields(records: readonly Record<string, unknown>[], nested: boolean): Field[] {
  const byPath = new Map<string, Field>();
  const visit = (value: unknown, segments: string[], index: number): void => {
    if (nested && isPlainObject(value) && Object.keys(value).length > 0) {
      for (const [k, v] of Object.entries(value)) visit(v, [...segments, k], index);
      return;
    }
    const path = segments.join('.');
    let field = byPath.get(path);
    if (!field) byPath.set(path, (field = { segments, path, present: 0, values: [] }));
    field.values[index] = value;
    if (!missing(value)) field.present++;
  };
  records.forEach((record, i) => {
    for (const [k, v] of Object.entries(record)) visit(v, [k], i);
  });
  for (const f of byPath.values()) f.values.length = records.length;
  return [...byPath.values()];
}

/** A valid column name for a source name: snake_case, not reserved by an engine or the pipeline. */
export function columnNameFor(source: string): string {
  let name = source
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (!name) name = 'field';
  if (/^[0-9]/.test(name)) name = `f_${name}`;
  if (reservedBy(name)) name = `${name}_value`;
  if (pipelineColumnRole(name)) name = `source_${name.replace(/^_+/, '')}`;
  return name.slice(0, MAX_NAME_LENGTH);
}

const validColumnName = (name: string): boolean => columnSchema.shape.name.safeParse(name).success && !pipelineColumnRole(name);

/** Names matching these read as row identifiers, best first. */
function keyNameScore(name: string): number {
  const last = name.toLowerCase().split(/[._]/).at(-1) ?? '';
  if (name.toLowerCase() === 'id' || last === 'id') return 3;
  if (/(_id|_index|_key|_ref|_uuid|_guid)$|^(key|uuid|guid|ref)$|id$/i.test(name.replace(/\./g, '_'))) return 2;
  return 0;
}

/** Names matching these read as "when the row changed or happened", best first. */
function eventNameScore(name: string): number {
  const n = name.toLowerCase();
  if (/updated|modified|changed/.test(n)) return 3;
  if (/(^|[._])(at|ts|on|when)$|time|date|_at$/.test(n)) return 2;
  return 1;
}

/** A composite key part's name: what an event key is usually made of (kind, entity id, time). */
function partScore(field: Field, type: ColumnType): number {
  const last = field.segments.at(-1)!.toLowerCase();
  if (keyNameScore(field.path) > 0) return 3;
  if (type === 'fixed_timestamp' || type === 'floating_timestamp') return 2;
  if (/^(event|type|kind|action|op|operation|event_type)$/.test(last)) return 2;
  return type === 'number' ? -1 : 0;
}

const list = (names: readonly string[], max = 8): string =>
  names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;

const quoteList = (names: readonly string[]): string => names.map((n) => JSON.stringify(n)).join(', ');

/** Whether the tuples of `fields`' values are distinct across the records that have every part, and how many lack one. */
function tupleStats(fields: readonly Field[], count: number): { distinct: boolean; missing: number } {
  const seen = new Set<string>();
  let lacking = 0;
  for (let i = 0; i < count; i++) {
    const tuple = fields.map((f) => f.values[i]);
    if (tuple.some(missing)) {
      lacking++;
      continue;
    }
    const key = JSON.stringify(tuple);
    if (seen.has(key)) return { distinct: false, missing: lacking };
    seen.add(key);
  }
  return { distinct: true, missing: lacking };
}

/** Present in every record and distinct: what a primary key must be. */
function uniqueTuples(fields: readonly Field[], count: number): boolean {
  const stats = tupleStats(fields, count);
  return stats.distinct && stats.missing === 0;
}

/**
 * Records an event key may lack a part in and still be the key: such rows are quarantined and
 * counted (the loader's fetch.maxQuarantineShare default), as the seed system dropped events
 * without an event, a time or an id.
 */
const maxLacking = (n: number): number => Math.floor(n * DEFAULT_MAX_QUARANTINE_SHARE);

function* combinations<T>(items: readonly T[], k: number, from = 0, taken: T[] = []): Generator<T[]> {
  if (taken.length === k) {
    yield [...taken];
    return;
  }
  for (let i = from; i < items.length; i++) yield* combinations(items, k, i + 1, [...taken, items[i]!]);
}

/** The definition's name from the URL's file name or the prefix's last folder (kebab-case), or undefined. */
export function nameFromUrl(url: string): string | undefined {
  const s3 = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  const parts = s3 ? [s3[1]!, ...s3[2]!.split('/')] : new URL(url).pathname.split('/');
  const last = parts.filter(Boolean).at(-1) ?? '';
  const stem = last.replace(/(\.gz)$/i, '').replace(/\.(csv|ndjson|jsonl|json|txt)$/i, '');
  const name = stem.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^[^a-z]+|-+$/g, '').slice(0, 42).replace(/-+$/, '');
  return /^[a-z][a-z0-9-]{1,40}[a-z0-9]$/.test(name) && !name.includes('--') && !reservedBy(name.replace(/-/g, '_')) ? name : undefined;
}

/** Proposes a definition from a sample; open questions leave the definition unusable (see SampleProposal). */
export function proposeFromSample(sample: Sample, opts: SampleProposalOptions): SampleProposal {
  const notes: string[] = [];
  const questions: string[] = [];
  const s3 = opts.sourceType === 's3';
  const records = sample.records;
  const n = records.length;
  notes.push(sampleLine(sample, opts));
  if (sample.formatNote) notes.push(sample.formatNote);
  if (sample.problems.length) {
    notes.push(`${sample.problems.length} sampled record(s) are malformed and were left out of the inference (the loader quarantines such rows): ${list(sample.problems, 3)}`);
  }
  if (n === 0) {
    questions.push(`the sample holds no whole record${sample.cut ? `: the first record is longer than --sample-bytes ${opts.sampleBytes}; raise it` : ''}, so no column can be inferred`);
    return { definition: {}, notes, questions };
  }

  const excluded = new Set(opts.exclude ?? []);
  const allFields = collectFields(records, s3);
  const fields = allFields.filter((f) => !excluded.has(f.path));

  // Columns: the field's own name when it is valid; a nested S3 field gets a snake_case name and its path.
  const columns: Column[] = [];
  const unnamable: string[] = [];
  const taken = new Set<string>();
  for (const field of fields) {
    const nested = field.segments.length > 1;
    const inferred = inferType(field.values);
    let name: string;
    let renamed = false;
    if (!nested) {
      // A header such as "Order ID" is read into the column order_id (columns[].field).
      renamed = !validColumnName(field.path);
      name = renamed ? columnNameFor(field.path) : field.path;
    } else {
      if (field.segments.some((s) => s === '' || /[\s.]/.test(s))) {
        unnamable.push(field.path);
        continue;
      }
      name = columnNameFor(field.segments.join('_'));
    }
    if (excluded.has(name)) continue;
    for (let i = 2; taken.has(name.toLowerCase()); i++) name = `${columnNameFor(field.segments.join('_'))}_${i}`;
    taken.add(name.toLowerCase());
    columns.push({ field, name, type: inferred.type, ...(renamed ? { renamed: true as const } : {}), ...(inferred.note ? { typeNote: inferred.note } : {}) });
  }
  const renames = columns.filter((c) => c.renamed);
  if (renames.length) {
    notes.push(`columns: ${renames.length} field(s) whose names are not column names are read into columns of their own (columns[].field): ${list(renames.map((c) => `${JSON.stringify(c.field.path)} -> ${c.name}`), 6)}`);
  }
  if (unnamable.length) {
    questions.push(
      `column names: the nested field(s) ${quoteList(unnamable)} have a part with a space or a dot, which a column path (data.location.lat) cannot name. ` +
        `Leave them out with --exclude ${JSON.stringify(unnamable.join(','))} (they still reach the raw zone) or use them only as --key parts, or publish the data with plainer field names`,
    );
  }
  // With no field usable as a column, a key or an event time cannot be asked about yet.
  if (!columns.length) {
    if (!unnamable.length) questions.push(`columns: every sampled field is left out (--exclude ${opts.exclude?.join(',') ?? ''}); a dataset needs columns`);
    return { definition: {}, notes, questions };
  }
  const byName = new Map(columns.map((c) => [c.name, c]));
  const trustUnique = sample.complete || n >= MIN_RECORDS_FOR_KEY;
  const smallSample = `only ${n} record(s) of a larger source were sampled, too few to trust that values are distinct; raise --sample-bytes`;

  // Primary key.
  let primaryKey: string | undefined;
  let sourceKey: string[] | undefined;
  const keyTypes: readonly ColumnType[] = ['text', 'integer', 'number'];
  if (opts.key) {
    if (!s3) throw new Error('--key is for S3 sources');
    const known = new Set(allFields.map((f) => f.path));
    const unknown = opts.key.filter((p) => !known.has(p));
    if (unknown.length) questions.push(`--key: no sampled record has the field(s) ${quoteList(unknown)} (fields: ${list([...known], 12)})`);
    else {
      sourceKey = [...opts.key];
      const partFields = sourceKey.map((p) => allFields.find((f) => f.path === p)!);
      if (!uniqueTuples(partFields, n)) notes.push(`key: [${sourceKey.join(', ')}] as --key says; note that it is missing or repeats in the sample (such rows are quarantined, or later ones win)`);
      else notes.push(`key: [${sourceKey.join(', ')}] (--key); present and distinct in all ${n} sampled records`);
    }
  } else if (opts.primaryKey) {
    const c = byName.get(opts.primaryKey);
    if (!c) questions.push(`--primary-key ${opts.primaryKey}: no such column (columns: ${list(columns.map((x) => x.name), 12)})`);
    else if (!keyTypes.includes(c.type)) questions.push(`--primary-key ${opts.primaryKey}: it is a ${c.type} column; a key must be text, integer or number`);
    else {
      const unique = uniqueTuples([c.field], n);
      notes.push(`primary key: ${c.name} (--primary-key)${unique ? `; present and distinct in all ${n} sampled records` : '; note that it is missing or repeats in the sample: such rows are quarantined, or later ones win'}`);
      if (c.field.segments.length > 1) sourceKey = [c.field.path];
      else primaryKey = c.name;
    }
  } else {
    const unique = columns.filter((c) => keyTypes.includes(c.type) && uniqueTuples([c.field], n));
    const ranked = unique.map((c) => ({ c, score: keyNameScore(c.field.path) })).sort((a, b) => b.score - a.score);
    const best = ranked[0];
    // Two columns named like identifiers (text_id and acc_ref in the STATS19 file) are two
    // candidates, whichever name looks more like one: which identifies a row is the user's call.
    const tied = ranked.filter((r) => best && (best.score > 0 ? r.score > 0 : r.score === best.score));
    if (best && !trustUnique) {
      questions.push(`primary key: ${smallSample}, or name the key with --primary-key <column> (candidates: ${list(unique.map((c) => c.name))})`);
    } else if (best && tied.length === 1) {
      const others = ranked.slice(1).map((r) => r.c.name);
      notes.push(
        `primary key: ${best.c.name} (${best.score ? 'named like a row identifier, ' : 'the only column '}present and distinct in all ${n} sampled records${sample.complete ? ', the whole source' : ''})` +
          (others.length ? `; also distinct in the sample: ${list(others)}; choose another with --primary-key` : ''),
      );
      if (best.c.field.segments.length > 1) sourceKey = [best.c.field.path];
      else primaryKey = best.c.name;
    } else if (best) {
      questions.push(
        `primary key: ${tied.length} columns ${best.score > 0 ? 'named like row identifiers ' : ''}are present and distinct in all ${n} sampled records (${list(tied.map((r) => r.c.name))})${best.score > 0 ? '' : ' and none is named like a row identifier'}: name the one that identifies a row with --primary-key <column>${s3 ? ', or a composite key with --key <field,field,...>' : ''}`,
      );
    } else if (s3) {
      const composite = proposeCompositeKey(allFields.filter((f) => !excluded.has(f.path)), n);
      if (!trustUnique && composite.key) {
        questions.push(`key: ${smallSample}, or name the key with --key <field,field,...> (e.g. --key ${composite.key.join(',')})`);
      } else if (composite.key) {
        sourceKey = composite.key;
        const lacking = composite.lacking ? ` (${composite.lacking} sampled record(s) lack a part: the loader quarantines and counts such rows)` : '';
        notes.push(`key: [${composite.key.join(', ')}], a composite key: no single field is present and distinct in all ${n} sampled records, these together are${lacking}${composite.others.length ? `; other combinations that are: ${list(composite.others.map((k) => `[${k.join(', ')}]`), 3)}` : ''}; choose another with --key`);
      } else {
        questions.push(composite.question ?? `key: no field or combination of up to ${MAX_KEY_PARTS} fields is present and distinct in all ${n} sampled records: name the key with --key <field,field,...> or --primary-key <column>`);
      }
    } else {
      questions.push(`primary key: no column's values are present and distinct in all ${n} sampled records: name the column that identifies a row with --primary-key <column> (columns: ${list(columns.map((c) => c.name), 12)})`);
    }
  }
  if (sourceKey) {
    let keyColumn = 'row_key';
    for (let i = 2; taken.has(keyColumn); i++) keyColumn = `row_key_${i}`;
    taken.add(keyColumn);
    primaryKey = keyColumn;
  }

  // Event time.
  const timestampColumns = columns.filter((c) => c.type === 'floating_timestamp' || c.type === 'fixed_timestamp');
  let eventTimeColumn: string | undefined;
  if (opts.eventTimeColumn) {
    const c = byName.get(opts.eventTimeColumn);
    if (!c) questions.push(`--event-time ${opts.eventTimeColumn}: no such column (columns: ${list(columns.map((x) => x.name), 12)})`);
    else if (c.type !== 'floating_timestamp' && c.type !== 'fixed_timestamp') {
      questions.push(`--event-time ${opts.eventTimeColumn}: its sampled values are not all ISO-8601 date-times (yyyy-mm-ddThh:mm:ss[.fff][Z]), so it is ${c.type}; the event time must be a timestamp column (timestamps: ${list(timestampColumns.map((t) => t.name)) || 'none'})`);
    } else {
      eventTimeColumn = c.name;
      notes.push(`event time: ${c.name} (--event-time)`);
    }
  } else {
    const ranked = timestampColumns.map((c) => ({ c, score: eventNameScore(c.name) })).sort((a, b) => b.score - a.score);
    const best = ranked[0];
    const tied = ranked.filter((r) => best && r.score === best.score);
    if (best && tied.length === 1) {
      eventTimeColumn = best.c.name;
      const others = ranked.slice(1).map((r) => r.c.name);
      notes.push(`event time: ${best.c.name} (${ranked.length === 1 ? 'the only timestamp column' : 'named like an update or event time'})${others.length ? `; other timestamps: ${list(others)}; choose another with --event-time` : ''}`);
    } else if (best) {
      questions.push(`event time: ${tied.length} timestamp columns could be the event time (${list(tied.map((r) => r.c.name))}): name it with --event-time <column>`);
    } else {
      const dateLike = columns.filter((c) => c.type === 'text' && c.field.values.some((v) => typeof v === 'string' && DATE_LIKE.test(v)));
      const examples = dateLike.map((c) => `${c.name} (e.g. ${JSON.stringify(c.field.values.find((v) => typeof v === 'string' && DATE_LIKE.test(v)))})`);
      questions.push(
        'event time: no column holds ISO-8601 date-times (yyyy-mm-ddThh:mm:ss[.fff][Z]) in every sampled value, and a dataset needs one (it partitions the curated table)' +
          (examples.length ? `; ${list(examples, 4)} look like dates in another form, which the transform does not read as timestamps` : '') +
          ': publish an ISO-8601 timestamp field, or name one with --event-time <column> if the sample missed its values',
      );
    }
  }

  // S3 mode.
  let mode = opts.mode;
  if (s3) {
    if (mode) notes.push(`mode: ${mode} (--mode)`);
    else {
      mode = 'append';
      notes.push('mode: append, the S3 default (each new object read once, as events; deletions are not detected); if every object holds the whole dataset, pass --mode snapshot');
    }
  }
  for (const c of columns) if (c.typeNote) notes.push(`${c.name}: ${c.type} (${c.typeNote})`);

  const columnEntries: Record<string, unknown>[] = columns.map((c) => ({
    name: c.name,
    type: c.type,
    ...(c.field.segments.length > 1 ? { path: c.field.path } : {}),
    ...(c.renamed ? { field: c.field.path } : {}),
  }));
  if (sourceKey && primaryKey) {
    columnEntries.push({
      name: primaryKey,
      type: 'text',
      description: sourceKey.length > 1 ? `The key: the values of ${sourceKey.join(', ')} as a JSON array` : `The key: the value of ${sourceKey[0]}`,
    });
  }
  const name = opts.name ?? nameFromUrl(opts.url);
  if (!name) questions.push(`name: no dataset name follows from ${opts.url}: give one with --name <kebab-case-name>`);
  else notes.unshift(`name: ${name}${opts.name ? '' : ` (from the ${s3 ? 'prefix' : 'file name'}; choose another with --name)`}`);
  const source: Record<string, unknown> = s3
    ? { type: 's3', url: opts.url, format: sample.format, ...(mode === 'snapshot' ? { mode } : {}), ...(sourceKey ? { key: sourceKey } : {}) }
    : { type: 'file', url: opts.url, format: sample.format };
  const definition: Record<string, unknown> = {
    $schema: './dataset.schema.json',
    name,
    description: `${sample.format.toUpperCase()} ${s3 ? 'objects under' : 'file at'} ${opts.url}`,
    source,
    primaryKey,
    eventTimeColumn,
    columns: columnEntries,
    // An append-only prefix has no key set to scan: the schema refuses deletion detection for it.
    ...(s3 && mode === 'append' ? { deletions: { detect: false } } : {}),
  };
  return { definition, notes, questions };
}

function sampleLine(sample: Sample, opts: SampleProposalOptions): string {
  const where = opts.sourceType === 's3' ? `${sample.parts.length} object(s) in key order, first ${sample.parts[0]}` : 'the file';
  const cut = sample.cut
    ? `; the source is larger, cut at --sample-bytes ${opts.sampleBytes}${sample.droppedCut ? ' (the record the cut ended was dropped)' : ''}`
    : '; the whole source';
  return `sampled: ${sample.records.length} record(s), ${sample.bytes} bytes of ${where}${cut}`;
}

/** The smallest combination of fields present and distinct in every record, when one is clearly best. */
function proposeCompositeKey(fields: readonly Field[], n: number): { key?: string[]; lacking: number; others: string[][]; question?: string } {
  const candidates = fields
    .filter((f) => f.present >= n - maxLacking(n) && f.values.every((v) => !isContainer(v)))
    .map((f) => ({ f, score: partScore(f, inferType(f.values).type) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, MAX_KEY_CANDIDATES);
  for (let k = 2; k <= MAX_KEY_PARTS; k++) {
    const unique: { parts: Field[]; score: number; lacking: number }[] = [];
    for (const combo of combinations(candidates, k)) {
      const parts = combo.map((c) => c.f);
      const stats = tupleStats(parts, n);
      if (stats.distinct && stats.missing <= maxLacking(n)) unique.push({ parts, score: combo.reduce((s, c) => s + c.score, 0), lacking: stats.missing });
    }
    if (!unique.length) continue;
    unique.sort((a, b) => b.score - a.score);
    // Parts in the records' own field order, as a person would write the key.
    const order = (parts: Field[]) => [...parts].sort((a, b) => fields.indexOf(a) - fields.indexOf(b)).map((p) => p.path);
    const tied = unique.filter((u) => u.score === unique[0]!.score);
    if (tied.length > 1) {
      return {
        lacking: 0,
        others: [],
        question: `key: no single field is present and distinct in all ${n} sampled records, and ${tied.length} combinations of ${k} fields are, none clearly the key (${list(tied.map((t) => `[${order(t.parts).join(', ')}]`), 4)}): name it with --key <field,field,...>`,
      };
    }
    return { key: order(unique[0]!.parts), lacking: unique[0]!.lacking, others: unique.slice(1, 4).map((u) => order(u.parts)) };
  }
  return { lacking: 0, others: [] };
}
