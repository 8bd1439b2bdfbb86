/**
 * The dataset definition: one JSON file per dataset under `datasets/`, validated here.
 * The CDK app grows one pipeline per file; the fetcher, the transform and the local pipeline
 * read the same definition, so this module depends on nothing but zod.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { validateScheduleExpression, validateTimeZone } from './schedule-expression';
import { MAX_NAME_LENGTH, reservedBy } from './sql-names';
import { RAW_PARTITION_KEY } from './storage-layout';
import { S3_URL_PATTERN } from './s3-location';
import { validateTestExpression } from './test-expression';
import { ConfigError } from './pipeline-error';

/**
 * Column types: how the pipeline reads a source field (docs/deploy.md, "Column types", maps every
 * Socrata `dataTypeName` onto them).
 * - `text`, `number` (DOUBLE), `floating_timestamp`, `point`, `checkbox`: Socrata's own types.
 * - `integer`: a narrower `number` for counts (the transform casts it to BIGINT instead of DOUBLE).
 * - `fixed_timestamp`: Socrata's instant type, served in UTC with a trailing `Z`; curated as the
 *   UTC wall-clock TIMESTAMP (an offset other than Z is refused by the cast contract).
 * - `geometry`: any GeoJSON shape other than a point (multipoint, line, multiline, polygon,
 *   multipolygon), kept as its GeoJSON text.
 * - `json`: a field Socrata serves as a JSON object (location, url, phone, document, photo), kept
 *   as JSON text.
 */
export const COLUMN_TYPES = [
  'text',
  'number',
  'integer',
  'floating_timestamp',
  'fixed_timestamp',
  'point',
  'geometry',
  'json',
  'checkbox',
] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

/** Types the event-time column may have: both are curated as TIMESTAMP (fixed ones in UTC). */
export const EVENT_TIME_TYPES: readonly ColumnType[] = ['floating_timestamp', 'fixed_timestamp'];

/** Types whose values are whole JSON documents: they cannot identify a row or be compared as values. */
const DOCUMENT_TYPES: readonly ColumnType[] = ['point', 'geometry', 'json'];

const MAX_LOOKBACK_MINUTES = 366 * 24 * 60;
/** fetch.maxQuarantineShare when a definition (or the fetcher's environment) gives none. */
export const DEFAULT_MAX_QUARANTINE_SHARE = 0.05;

/**
 * Rows per Socrata request by default. A keyset fetcher pays one request (query planning + round
 * trip, 0.1-2 s and more on a real portal) per page plus the empty page that ends the data, while
 * the body costs ~1,246 bytes a row (`$select=:*,*`), 0.125 ms a row at 10 MB/s. A 200,000-row page
 * is ~25 s of body there, so even a 2 s request adds under 8%, and the real dataset (~650,000
 * rows) takes 5 requests (one request for all rows is the floor). Memory does not grow with the
 * page: pages are streamed (docs/fetcher.md, docs/bench.md "Source profiles").
 */
export const DEFAULT_PAGE_SIZE = 200_000;
/**
 * The largest page a dataset may ask for. SODA 2.1 has no `$limit` cap; this bound only catches a
 * mistyped number: 1,000,000 rows (~1.2 GB of body) is already the whole of most datasets in one
 * request, beyond it a page saves nothing measurable, and the request deadline
 * (`requestTimeoutSeconds`) would cut such a body anyway (the stream then resumes mid-page).
 */
export const MAX_PAGE_SIZE = 1_000_000;

/**
 * Parallel streams of a backfill: 4 by default, so a new user's first backfill is ~4x one stream
 * without tuning (npm run bench: backfill targets); at most 16, beyond which a portal's rate
 * limits, not our link, decide (Socrata asks clients to be considerate of shared capacity).
 */
export const DEFAULT_STREAMS = 4;
export const MAX_STREAMS = 16;
/**
 * Below this many rows to read, one stream: each parallel request waits the source's first byte
 * (~1.4 s measured on data.sfgov.org) and the plan costs K requests, while one stream reads
 * 20,000 rows in ~12 s. Incremental runs are almost always below it.
 */
export const DEFAULT_PARALLEL_MIN_ROWS = 20_000;
export const DEFAULT_MAX_DELETE_SHARE = 0.1;

const identifier = z
  .string()
  .regex(/^[a-z_][a-z0-9_]*$/, 'must be a lower-case SQL identifier (a-z, 0-9, _; not starting with a digit)')
  .max(MAX_NAME_LENGTH, `must be at most ${MAX_NAME_LENGTH} characters (Glue's limit)`);

/** A name the dataset gives a column: an identifier that neither engine reserves. */
const columnName = identifier.superRefine((name, ctx) => {
  const engines = reservedBy(name);
  if (engines) ctx.addIssue({ code: 'custom', message: `"${name}" is a reserved word in ${engines}; it cannot be used as a column name` });
});

export const columnSchema = z.strictObject({
  name: columnName.describe('The source field name (columns[].fieldName in the portal metadata); also the column name in every table'),
  type: z
    .enum(COLUMN_TYPES)
    .describe('How the field is read: text, number (double), integer (bigint), floating_timestamp, fixed_timestamp (UTC), point, geometry (GeoJSON text), json (JSON text), checkbox (boolean)'),
  description: z.string().optional().describe('What the column means (the portal description); documentation for people and catalogs'),
  /**
   * Point columns only: the names of the two derived coordinate columns (default `longitude`/
   * `latitude` for a column named `point`, `<name>_longitude`/`<name>_latitude` otherwise). Set
   * them when the source also has columns of the default names.
   */
  coordinates: z
    .strictObject({ longitude: columnName, latitude: columnName })
    .optional()
    .describe('Point columns only: names of the derived longitude/latitude columns'),
  /**
   * File and S3 sources: the source field this column is read from, when that name is not an
   * identifier (a CSV header such as `Order ID` or `Accident_Index`); the column takes its name.
   */
  field: z
    .string()
    .min(1)
    .max(1024)
    .refine((f) => !f.startsWith(':'), 'must not start with ":" (the fetcher\'s system fields)')
    .optional()
    .describe('File and S3 sources only: the source field (a CSV header such as "Order ID") this column is read from, when its name is not the column name'),
  /** S3 sources: where the value sits in a nested record; the column takes its name. */
  path: z
    .string()
    .regex(/^[^.\s]+(\.[^.\s]+)+$/, 'must be a dotted path such as data.location.lat')
    .optional()
    .describe('S3 sources only: the dotted path of the value in a nested record (data.location.lat)'),
});
export type ColumnConfig = z.infer<typeof columnSchema>;

/** A data test a dataset declares beyond the ones every dataset gets (not-null + unique key). */
export const dataTestSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('accepted_values'),
    name: z.string().optional(),
    column: identifier,
    values: z.array(z.string()).min(1),
    severity: z.enum(['error', 'warn']).default('error'),
  }),
  z.strictObject({
    kind: z.literal('range'),
    name: z.string().optional(),
    column: identifier,
    min: z.number().optional(),
    max: z.number().optional(),
    severity: z.enum(['error', 'warn']).default('error'),
  }),
  z.strictObject({
    kind: z.literal('not_null'),
    name: z.string().optional(),
    column: identifier,
    severity: z.enum(['error', 'warn']).default('error'),
  }),
  z.strictObject({
    kind: z.literal('expression'),
    name: z.string().regex(/^[a-z0-9_]+$/, 'must be snake_case'),
    /**
     * One boolean SQL expression over curated columns that must hold for every row (NULL passes);
     * no statements, comments or subqueries (see runtime/test-expression.ts).
     */
    expression: z.string(),
    severity: z.enum(['error', 'warn']).default('error'),
  }).superRefine((t, ctx) => {
    // Checked here, not on the field, so the message names the test; mart tests reuse this schema.
    const problem = validateTestExpression(t.expression);
    if (problem) ctx.addIssue({ code: 'custom', path: ['expression'], message: `data test "${t.name}" ${problem}` });
  }),
]);
export type DataTestConfig = z.infer<typeof dataTestSchema>;

/** A Socrata dataset (the default source type: definitions without `type` are Socrata). */
const socrataSourceSchema = z
  .strictObject({
    type: z.literal('socrata').optional().describe('socrata (the default)'),
    /** Socrata portal host name, e.g. data.sfgov.org (no scheme, no path). */
    domain: z
      .string()
      .regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, 'must be a host name such as data.sfgov.org')
      .describe('Socrata portal host name, e.g. data.sfgov.org'),
    /** The dataset's 4x4 id, e.g. wr8u-xric. */
    datasetId: z.string().regex(/^[a-z0-9]{4}-[a-z0-9]{4}$/, 'must be a Socrata 4x4 id such as wr8u-xric').describe('The dataset 4x4 id, e.g. wr8u-xric'),
    /** Secrets Manager secret holding the Socrata app token (plain string or {"appToken": "..."}). */
    appTokenSecretName: z
      .string()
      .regex(/^[A-Za-z0-9/_+=.@-]{1,512}$/, 'must be a Secrets Manager secret name (1-512 of A-Z a-z 0-9 / _ + = . @ -)')
      .optional()
      .describe('Secrets Manager secret holding the Socrata app token (plain string or {"appToken": "..."})'),
    /**
     * Which Socrata API reads the rows: soda2 (default) GETs /resource/<id>.json; soda3 POSTs the
     * same query as SoQL to /api/v3/views/<id>/query.json and needs an app token.
     */
    api: z
      .enum(['soda2', 'soda3'])
      .optional()
      .describe('Socrata API: soda2 (default, GET /resource/<id>.json) or soda3 (POST /api/v3/views/<id>/query.json; needs appTokenSecretName)'),
  })
  .refine((s) => s.api !== 'soda3' || s.appTokenSecretName !== undefined, {
    message: 'api "soda3" needs appTokenSecretName: SODA 3 answers only requests with an app token',
    path: ['appTokenSecretName'],
  });

const fileFormat = z.enum(['csv', 'ndjson', 'json']).describe('csv (RFC 4180, header row), ndjson (one JSON object per line) or json (one array of objects)');
const fileCompression = z.enum(['auto', 'gzip', 'none']).optional().describe('auto (default: gzip when the bytes say so), gzip or none');

/** A field of a nested record, by its dotted path (data.location.lat). */
const fieldPath = z
  .string()
  .regex(/^[^.\s]+(\.[^.\s]+)*$/, 'must be a field name or a dotted path such as data.location.lat')
  .refine((p) => !p.startsWith(':'), 'must not start with ":" (the fetcher\'s system fields)');

/** One file over HTTP(S), read whole as a snapshot of the dataset when it changes (ETag, Last-Modified or content hash). */
const fileSourceSchema = z.strictObject({
  type: z.literal('file'),
  url: z.string().regex(/^https?:\/\/[^/\s]+\/\S*$/, 'must be the http(s):// URL of one file').describe('The file\'s http(s):// URL'),
  format: fileFormat,
  compression: fileCompression,
});

/** Files under an S3 prefix: new objects once each in key order (append), or the prefix as a whole (snapshot). */
const s3SourceSchema = z.strictObject({
  type: z.literal('s3'),
  url: z
    .string()
    .regex(S3_URL_PATTERN, 'must be s3://<bucket>/<prefix>/')
    .describe('s3://<bucket>/<prefix>/: the objects the dataset reads'),
  format: fileFormat,
  compression: fileCompression,
  mode: z
    .enum(['append', 'snapshot'])
    .optional()
    .describe('append (default: each new object once, in key order; events) or snapshot (the prefix is the whole dataset; keys gone from it are deletions)'),
  /**
   * The fields whose values identify a row, when that is not one top-level field: their values,
   * as a JSON array, are the primary key column's text.
   */
  key: z
    .array(fieldPath)
    .min(1)
    .optional()
    .describe('Fields (dotted paths) whose values together identify a row; their JSON array is the primary key column, which must be a declared text column'),
});

/**
 * A CKAN DataStore resource, read with datastore_search sorted by _id as a snapshot of the
 * dataset (docs/sources-ckan.md): re-read whole when the resource's last_modified changes.
 */
const ckanSourceSchema = z.strictObject({
  type: z.literal('ckan'),
  url: z
    .string()
    .regex(
      /^https?:\/\/[^/\s]+(\/\S*)?\/api\/3\/action\/datastore_search\?(\S*&)?resource_id=[A-Za-z0-9_-]+(&\S*)?$/,
      'must be https://<portal>/api/3/action/datastore_search?resource_id=<resource id>',
    )
    .describe('The resource\'s DataStore search URL: https://<portal>/api/3/action/datastore_search?resource_id=<resource id>'),
});

/** An ArcGIS FeatureServer layer: incremental by its edit date field when one is named, else a snapshot. */
const arcgisSourceSchema = z.strictObject({
  type: z.literal('arcgis'),
  url: z
    .string()
    .regex(/^https?:\/\/[^/\s]+\/\S*\/FeatureServer\/\d+$/, 'must be a layer URL ending in /FeatureServer/<layer id>')
    .describe('The layer URL, https://<host>/.../FeatureServer/<layer id>'),
  editDateField: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a field name of the layer')
    .optional()
    .describe("The layer's editor-tracking edit date field (editFieldsInfo.editDateField): rows are read incrementally by it; absent: the layer is read whole as a snapshot when it changes"),
});

export const SOURCE_TYPES = ['socrata', 'file', 's3', 'ckan', 'arcgis'] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];

const sourceSchema = z
  .discriminatedUnion('type', [socrataSourceSchema, fileSourceSchema, s3SourceSchema, ckanSourceSchema, arcgisSourceSchema], {
    error: (issue) => (issue.code === 'invalid_union' ? `type must be ${SOURCE_TYPES.join(', ')} (absent: socrata)` : undefined),
  })
  .describe('Where the rows come from: a Socrata dataset (the default), one file over HTTP(S), files under an S3 prefix, a CKAN DataStore resource or an ArcGIS FeatureServer layer');

export type SourceConfig = z.infer<typeof sourceSchema>;
export type SocrataSourceConfig = z.infer<typeof socrataSourceSchema>;

/** The source's type: definitions without one are Socrata. */
export function sourceType(source: SourceConfig): SourceType {
  return source.type ?? 'socrata';
}

/** A Socrata source (with `type` "socrata" or none): the one type without a URL. */
export function isSocrata(source: SourceConfig): source is SocrataSourceConfig {
  return source.type === undefined || source.type === 'socrata';
}

/** The source as people read it: `data.sfgov.org/wr8u-xric`, or its URL. */
export function sourceLabel(source: SourceConfig): string {
  return isSocrata(source) ? `${source.domain}/${source.datasetId}` : source.url;
}

/** The Socrata source of a dataset, or an error naming what needs one. */
export function socrataSource(dataset: Pick<DatasetConfig, 'name' | 'source'>, what: string): SocrataSourceConfig {
  const { source } = dataset;
  if (!isSocrata(source)) {
    throw new DatasetConfigError(`Dataset ${dataset.name} reads ${sourceLabel(source)} (source type ${source.type}); ${what} needs a Socrata dataset`);
  }
  return source;
}

const datasetShape = z
  .strictObject({
    /** The JSON Schema editors check the file against (`./dataset.schema.json`); ignored here. */
    $schema: z.string().optional(),
    /** kebab-case; names the stack resources, S3 prefixes and (dashes → underscores) the tables. */
    name: z
      .string()
      .regex(/^[a-z][a-z0-9-]{1,40}[a-z0-9]$/, 'must be kebab-case, 3-42 characters')
      // The table name replaces '-' by '_', and '__' separates a dataset's table from its marts'
      // and its side tables (`<table>__deletions`): `a--b` would be ambiguous.
      .refine((n) => !n.includes('--'), 'must not contain "--" ("__" in table names separates the dataset from its mart tables)')
      .superRefine((n, ctx) => {
        const table = n.replace(/-/g, '_');
        const engines = reservedBy(table);
        if (engines) ctx.addIssue({ code: 'custom', message: `its table name "${table}" is a reserved word in ${engines}; choose another name` });
      })
      .describe('kebab-case, 3-42 characters, equal to the file name; tables are named with _ for -'),
    description: z.string().default('').describe('What the dataset is'),
    source: sourceSchema,
    /** Column that identifies a row; the curated table holds exactly one row per value. */
    primaryKey: identifier.describe('Declared column identifying a row (not checkbox, point, geometry or json): the curated table holds one row per value'),
    /** Column giving the event time; partitions the curated table. A floating_ or fixed_timestamp. */
    eventTimeColumn: identifier.describe('Declared floating_timestamp or fixed_timestamp column: when the event happened; partitions the curated table by year'),
    /** Socrata system field used as the incremental change cursor. */
    changeCursor: z.literal(':updated_at').default(':updated_at'),
    columns: z.array(columnSchema).min(1).describe('The source fields the pipeline reads, with their types'),
    schedule: z
      .strictObject({
        /** EventBridge Scheduler expression: cron(...) (6 fields), rate(...) or at(...). */
        expression: z
          .string()
          .superRefine((expr, ctx) => {
            const problem = validateScheduleExpression(expr);
            if (problem) ctx.addIssue({ code: 'custom', message: problem });
          })
          .describe('EventBridge Scheduler expression: cron(min hour day-of-month month day-of-week year), rate(n unit) or at(yyyy-mm-ddThh:mm:ss)'),
        /** IANA time zone the cron fields are read in. */
        timezone: z
          .string()
          .default('UTC')
          .superRefine((zone, ctx) => {
            const problem = validateTimeZone(zone);
            if (problem) ctx.addIssue({ code: 'custom', message: problem });
          })
          .describe('IANA time zone the cron fields are read in, e.g. America/Los_Angeles'),
      })
      .default({ expression: 'cron(0 6 * * ? *)', timezone: 'UTC' })
      .describe('When the pipeline runs'),
    fetch: z
      .strictObject({
        /**
         * Rows per Socrata request (DEFAULT_PAGE_SIZE explains the default). The fetcher streams
         * pages (memory does not grow with the page), so pages are sized for latency: each request
         * pays a round trip and query planning. A SODA 2.0 endpoint refuses a `$limit` above 50,000
         * with HTTP 400: the fetcher then asks again at 50,000 and says to set this to 50,000.
         */
        pageSize: z.number().int().min(1).max(MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
        /**
         * Re-read this many minutes before the checkpoint on every incremental run. At most 366 days:
         * a longer window is a full refresh in disguise (use `{"mode":"full-refresh"}`), and a huge
         * one reaches back before year 0, a `$where` timestamp Socrata cannot read.
         */
        lookbackMinutes: z
          .number()
          .int()
          .min(0)
          .max(MAX_LOOKBACK_MINUTES, `must be at most ${MAX_LOOKBACK_MINUTES} (366 days); to re-read everything, run a full refresh instead`)
          .default(0),
        /** Per-request deadline; a Lambda invocation lasts at most 900 s and must fit several. */
        requestTimeoutSeconds: z.number().int().min(1).max(300).default(60),
        maxAttempts: z.number().int().min(1).max(20).default(6),
        /**
         * A run fails (after quarantining, without advancing the checkpoint past them) when its
         * quarantined rows exceed this share of the rows fetched, or when any page is entirely
         * quarantined: most rows not fitting the definition means a wrong or broken source.
         */
        maxQuarantineShare: z.number().min(0).max(1).default(DEFAULT_MAX_QUARANTINE_SHARE),
        /**
         * A first run or full refresh with at least `parallelMinRows` rows to read is split into this
         * many ranges of the keyset order, each read by its own stream (docs/fetcher.md); 1 reads
         * every run with one stream. Incremental runs with fewer rows stay one stream.
         */
        streams: z.number().int().min(1).max(MAX_STREAMS).default(DEFAULT_STREAMS),
        /** Ranges read at once (default: all): the concurrency this source tolerates from us. */
        maxConcurrentStreams: z.number().int().min(1).max(MAX_STREAMS).optional(),
        /** Fewer rows than this to read: one stream (the plan and K first bytes would cost more than they save). */
        parallelMinRows: z.number().int().min(1).default(DEFAULT_PARALLEL_MIN_ROWS),
      })
      .default({
        pageSize: DEFAULT_PAGE_SIZE,
        lookbackMinutes: 0,
        requestTimeoutSeconds: 60,
        maxAttempts: 6,
        maxQuarantineShare: DEFAULT_MAX_QUARANTINE_SHARE,
        streams: DEFAULT_STREAMS,
        parallelMinRows: DEFAULT_PARALLEL_MIN_ROWS,
      }),
    /**
     * Deletions at the source: a key scan (`$select=<primary key>, :id`, ids only) reads the
     * source's complete key set and the transform removes curated rows whose keys are gone.
     */
    deletions: z
      .strictObject({
        /** Scan the source's keys and delete curated rows the source no longer has. */
        detect: z.boolean().default(true),
        /** Hours between key scans; 0 scans on every run. */
        scanEveryHours: z.number().min(0).max(24 * 366).default(0),
        /**
         * A scan that would delete more than this share of curated rows deletes nothing and fails
         * the run (an outage or a wrong URL must never empty curated).
         */
        maxDeleteShare: z.number().min(0).max(1).default(DEFAULT_MAX_DELETE_SHARE),
      })
      .default({ detect: true, scanEveryHours: 0, maxDeleteShare: DEFAULT_MAX_DELETE_SHARE }),
    delivery: z
      .strictObject({
        // Firehose's own limits: interval 0-900 s, size 1-128 MiB.
        bufferingIntervalSeconds: z.number().int().min(0).max(900).default(60),
        bufferingSizeMiB: z.number().int().min(1).max(128).default(64),
      })
      .default({ bufferingIntervalSeconds: 60, bufferingSizeMiB: 64 }),
    dataTests: z
      .array(dataTestSchema)
      .default([])
      .describe('Tests beyond the built-in not-null and unique key: not_null, accepted_values, range, expression; each error or warn'),
  });

export const datasetSchema = datasetShape.superRefine((d, ctx) => {
    const byName = new Map(d.columns.map((c) => [c.name, c]));
    checkColumnNames(d.columns, ctx);
    const key = byName.get(d.primaryKey);
    if (!key) {
      ctx.addIssue({ code: 'custom', path: ['primaryKey'], message: `"${d.primaryKey}" is not one of the declared columns` });
    } else if (key.type === 'checkbox' || DOCUMENT_TYPES.includes(key.type)) {
      // Two values (or a JSON document) cannot identify rows: every upsert would collapse them.
      ctx.addIssue({ code: 'custom', path: ['primaryKey'], message: `"${d.primaryKey}" is a ${key.type} column, which cannot identify a row; use a text, integer or number column` });
    }
    const event = byName.get(d.eventTimeColumn);
    if (!event) {
      ctx.addIssue({ code: 'custom', path: ['eventTimeColumn'], message: `"${d.eventTimeColumn}" is not one of the declared columns` });
    } else if (!EVENT_TIME_TYPES.includes(event.type)) {
      ctx.addIssue({ code: 'custom', path: ['eventTimeColumn'], message: `"${d.eventTimeColumn}" must be a floating_timestamp or fixed_timestamp column, not ${event.type}` });
    }
    checkDataTests(d, ctx);
    checkSourceShape(d, byName, ctx);
  });

/** What a source type allows of the rest of the definition. */
function checkSourceShape(d: z.infer<typeof datasetShape>, byName: Map<string, ColumnConfig>, ctx: z.RefinementCtx): void {
  const { source } = d;
  const fields = new Map<string, string>();
  d.columns.forEach((c, i) => {
    if (!c.field) return;
    if (source.type !== 'file' && source.type !== 's3') ctx.addIssue({ code: 'custom', path: ['columns', i, 'field'], message: `column "${c.name}": field is for file and S3 sources; a ${sourceType(source)} source's fields are read by name` });
    if (c.path) ctx.addIssue({ code: 'custom', path: ['columns', i, 'field'], message: `column "${c.name}": give field (a top-level field's name) or path (a nested field), not both` });
    const other = fields.get(c.field);
    if (other) ctx.addIssue({ code: 'custom', path: ['columns', i, 'field'], message: `columns "${other}" and "${c.name}" both read field ${JSON.stringify(c.field)}` });
    fields.set(c.field, c.name);
  });
  if (source.type !== 's3') {
    d.columns.forEach((c, i) => {
      if (c.path) ctx.addIssue({ code: 'custom', path: ['columns', i, 'path'], message: `column "${c.name}": path is for S3 sources; a ${sourceType(source)} source's fields are read by name` });
    });
    return;
  }
  if ((source.mode ?? 'append') === 'append' && d.deletions.detect) {
    ctx.addIssue({
      code: 'custom',
      path: ['deletions', 'detect'],
      message: 'an append-only S3 source (each new object once) has no key set to scan: set deletions.detect to false, or source.mode to "snapshot"',
    });
  }
  if (source.key && byName.get(d.primaryKey)?.type !== 'text') {
    ctx.addIssue({ code: 'custom', path: ['primaryKey'], message: `source.key makes "${d.primaryKey}" from ${source.key.join(', ')}: declare it as a text column` });
  }
}

/** Ingestion metadata every raw row carries, added by the fetcher. */
export const INGESTION_METADATA = {
  ingestedAt: '_ingested_at',
  runId: '_run_id',
  sourceUpdatedAt: '_source_updated_at',
  sourceId: '_source_id',
} as const;

/**
 * Columns the pipeline adds or reserves, which no declared (or point-derived) column may take:
 * the ingestion metadata, the transform's content hash, the curated partition column, the raw
 * table's partition key (Athena refuses a table with a column and a partition key of one name), any
 * `_source_*` (the fetcher's namespace for source system fields) and any `__*` (internal names
 * in generated SQL).
 */
export const PIPELINE_COLUMNS = {
  ...INGESTION_METADATA,
  contentHash: '_content_hash',
  /** The year partition of the curated table (DuckDB layout `event_year=YYYY/`). */
  partition: 'event_year',
  /** The raw table's partition key (`raw/<dataset>/ingest_date=YYYY-MM-DD/`). */
  rawPartition: RAW_PARTITION_KEY,
} as const;

/** Why the pipeline reserves `name` ("is <this>"), for error messages; undefined when it does not. */
export function pipelineColumnRole(name: string): string | undefined {
  const n = name.toLowerCase();
  if (n === PIPELINE_COLUMNS.partition) return "the curated table's partition column, which the pipeline adds";
  if (n === PIPELINE_COLUMNS.rawPartition) return "the raw table's partition key (raw/<dataset>/ingest_date=.../), which the pipeline adds";
  if (n === PIPELINE_COLUMNS.contentHash) return "the transform's content hash column, which the pipeline adds";
  if ((Object.values(INGESTION_METADATA) as string[]).includes(n)) return 'an ingestion metadata column, which the fetcher adds';
  if (n.startsWith('_source_')) return 'in the _source_* namespace the pipeline reserves for source system fields';
  if (n.startsWith('__')) return 'in the __* namespace the pipeline reserves for generated SQL';
  return undefined;
}

/**
 * Where a point column's coordinates are exposed by default, in raw rows and curated tables: the
 * column named `point` becomes `longitude`/`latitude`, any other point column `c` becomes
 * `c_longitude`/`c_latitude`. Callers holding the column's config should use pointFieldNamesOf,
 * which honours `coordinates`.
 */
export function pointFieldNames(column: string): { longitude: string; latitude: string } {
  return column === 'point'
    ? { longitude: 'longitude', latitude: 'latitude' }
    : { longitude: `${column}_longitude`, latitude: `${column}_latitude` };
}

/** Column the transform adds to curated: a digest of the declared columns' typed values. */
export const CONTENT_HASH_COLUMN = PIPELINE_COLUMNS.contentHash;

/** Glue's limit on a column comment (the Glue API's `Column.Comment`). */
export const MAX_COMMENT_LENGTH = 255;

const TYPE_COMMENTS: Record<ColumnType, string> = {
  text: 'Socrata text',
  number: 'Socrata number',
  integer: 'Socrata number, whole',
  floating_timestamp: 'Socrata floating timestamp (local wall clock, no zone)',
  fixed_timestamp: 'Socrata fixed timestamp, in UTC',
  point: 'GeoJSON point as served',
  geometry: 'GeoJSON geometry as served',
  json: 'JSON value as served (location, url, phone, document or photo)',
  checkbox: 'Socrata checkbox (true/false)',
};

/**
 * The catalog comment of a declared column: its description, else what its type holds. Glue
 * refuses line breaks and other control characters in a comment and more than 255 characters,
 * and portal descriptions have both, so they are folded to one line and cut.
 */
export function columnComment(column: Pick<ColumnConfig, 'type' | 'description'>): string {
  // eslint-disable-next-line no-control-regex
  const text = (column.description ?? '').replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/ {2,}/g, ' ').trim();
  if (!text) return TYPE_COMMENTS[column.type];
  return text.length <= MAX_COMMENT_LENGTH ? text : `${text.slice(0, MAX_COMMENT_LENGTH - 1).trimEnd()}…`;
}

/** The derived coordinate columns of a point column: its `coordinates`, else the defaults. */
export function pointFieldNamesOf(column: Pick<ColumnConfig, 'name' | 'coordinates'>): { longitude: string; latitude: string } {
  return column.coordinates ? { ...column.coordinates } : pointFieldNames(column.name);
}

/** Columns of the curated table: declared columns, point coordinates, ingestion metadata, content hash. */
/** The fields a file's header names, in column order: each column's own name, or its `field`. */
export function sourceFieldNames(dataset: Pick<DatasetConfig, 'columns'>): string[] {
  return dataset.columns.map((c) => c.field ?? c.name);
}

/**
 * The source's top-level fields the definition accounts for (schema drift is counted against them):
 * every column's name, the top of each nested path, whose record the columns are read from, and
 * each renamed field.
 */
export function declaredSourceFields(dataset: Pick<DatasetConfig, 'columns'>): string[] {
  return [...new Set(dataset.columns.flatMap((c) => (c.path ? [c.name, c.path.split('.')[0]!] : c.field ? [c.name, c.field] : [c.name])))];
}

export function curatedColumnNames(dataset: Pick<DatasetConfig, 'columns'>): string[] {
  const names: string[] = [];
  for (const c of dataset.columns) {
    names.push(c.name);
    if (c.type === 'point') {
      const p = pointFieldNamesOf(c);
      names.push(p.longitude, p.latitude);
    }
  }
  return [...names, ...Object.values(INGESTION_METADATA), CONTENT_HASH_COLUMN];
}

/**
 * Every name the curated table will hold must be unique (case-insensitively: Glue lower-cases,
 * DuckDB compares case-insensitively) and none may take a name the pipeline adds. Checked here so
 * a bad definition fails at synth or before the first fetch, never after the checkpoint moved.
 */
function checkColumnNames(columns: readonly ColumnConfig[], ctx: z.RefinementCtx): void {
  const claimed = new Map<string, string>(); // lower-cased name -> where it was declared
  // `subject` ends so that "is ..." completes the sentence: 'column "x"' or '... derives "y", which'.
  const claim = (name: string, path: (string | number)[], subject: string, hint = '') => {
    const key = name.toLowerCase();
    const role = pipelineColumnRole(key);
    if (role) {
      ctx.addIssue({ code: 'custom', path, message: `${subject} is ${role}${hint || '; remove this column (undeclared source fields are reported as drift, never silently lost)'}` });
      return;
    }
    const first = claimed.get(key);
    if (first !== undefined) {
      ctx.addIssue({ code: 'custom', path, message: `${subject} is already a column of the curated table (declared at ${first}; names are compared case-insensitively)${hint}` });
      return;
    }
    claimed.set(key, path.join('.'));
  };
  // Declared names first, so a derived name is reported as the one that collides.
  columns.forEach((c, i) => claim(c.name, ['columns', i, 'name'], `column "${c.name}"`));
  columns.forEach((c, i) => {
    if (c.type !== 'point') {
      if (c.coordinates) ctx.addIssue({ code: 'custom', path: ['columns', i, 'coordinates'], message: `only point columns derive coordinates; "${c.name}" is ${c.type}` });
      return;
    }
    const p = pointFieldNamesOf(c);
    const path = c.coordinates ? ['columns', i, 'coordinates'] : ['columns', i, 'name'];
    const hint = c.coordinates
      ? '; choose other names in "coordinates"'
      : `; name the derived columns with "coordinates": {"longitude": "${c.name}_lon", "latitude": "${c.name}_lat"} on this point column`;
    for (const [axis, derived] of [['longitude', p.longitude], ['latitude', p.latitude]] as const) {
      if (derived.length > MAX_NAME_LENGTH) {
        ctx.addIssue({ code: 'custom', path, message: `point column "${c.name}" derives "${derived}", longer than ${MAX_NAME_LENGTH} characters (Glue's limit)${hint}` });
        continue;
      }
      claim(derived, c.coordinates ? [...path, axis] : path, `point column "${c.name}" derives the ${axis} column "${derived}", which`, hint);
    }
  });
}

/** The type of each curated column, as the data tests see it (derived coordinates are numbers). */
function curatedColumnTypes(columns: readonly ColumnConfig[]): Map<string, ColumnType> {
  const types = new Map<string, ColumnType>();
  for (const c of columns) {
    types.set(c.name, c.type);
    if (c.type === 'point') {
      const p = pointFieldNamesOf(c);
      types.set(p.longitude, 'number').set(p.latitude, 'number');
    }
  }
  types.set(INGESTION_METADATA.ingestedAt, 'floating_timestamp').set(INGESTION_METADATA.runId, 'text');
  types.set(INGESTION_METADATA.sourceUpdatedAt, 'floating_timestamp').set(INGESTION_METADATA.sourceId, 'text');
  return types;
}

/**
 * Data tests must run on both engines: a test that only Athena refuses (a numeric range on a
 * text column, string values against a timestamp) would pass locally and fail after the deploy.
 * Results are keyed by test name, so names must be unique.
 */
function checkDataTests(d: { columns: ColumnConfig[]; dataTests: DataTestConfig[] }, ctx: z.RefinementCtx): void {
  const types = curatedColumnTypes(d.columns);
  const names = new Map<string, number>();
  d.dataTests.forEach((t, i) => {
    const name = t.name ?? `${t.kind}_${'column' in t ? t.column : ''}`;
    const first = names.get(name);
    if (first !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['dataTests', i, 'name'], message: `data test "${name}" is already declared at dataTests.${first}; give this one a distinct "name"` });
    } else names.set(name, i);
    if (t.kind === 'expression') return; // checked by its own schema
    const type = types.get(t.column);
    if (!type) {
      ctx.addIssue({ code: 'custom', path: ['dataTests', i, 'column'], message: `"${t.column}" is not one of the declared columns` });
    } else if (t.kind === 'range' && type !== 'number' && type !== 'integer') {
      ctx.addIssue({ code: 'custom', path: ['dataTests', i, 'column'], message: `a range test needs a number or integer column; "${t.column}" is ${type} (use an expression test)` });
    } else if (t.kind === 'accepted_values' && !ACCEPTED_VALUES_TYPES.includes(type)) {
      ctx.addIssue({ code: 'custom', path: ['dataTests', i, 'column'], message: `an accepted_values test needs a text, integer or checkbox column; "${t.column}" is ${type} (use a range or expression test)` });
    }
  });
}

/**
 * The values of an accepted_values test are strings: compared as text they are exact for text,
 * integer and checkbox columns only (a double or a timestamp prints differently on each engine).
 */
const ACCEPTED_VALUES_TYPES: readonly ColumnType[] = ['text', 'integer', 'checkbox'];

/** A validated dataset definition, defaults applied. */
export type DatasetConfig = z.infer<typeof datasetSchema>;

/** Dataset name as a SQL/Glue table name: dashes become underscores. */
export function tableName(dataset: Pick<DatasetConfig, 'name'>): string {
  return dataset.name.replace(/-/g, '_');
}

/** Thrown for an invalid dataset file; the message names the file and every bad field. */
export class DatasetConfigError extends ConfigError {
  override name = 'DatasetConfigError';
}

function formatIssues(source: string, error: z.ZodError): string {
  const lines = error.issues.map((issue) => {
    const field = issue.path.length ? issue.path.join('.') : '(root)';
    return `  - ${field}: ${issue.message}`;
  });
  return `Invalid dataset definition ${source}:\n${lines.join('\n')}`;
}

/** Validate an already-parsed dataset definition; `source` names it in error messages. */
export function parseDataset(value: unknown, source: string): DatasetConfig {
  const result = datasetSchema.safeParse(value);
  if (!result.success) throw new DatasetConfigError(formatIssues(source, result.error));
  return result.data;
}

/** Read and validate one dataset JSON file. */
export function loadDatasetFile(file: string): DatasetConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DatasetConfigError(`Cannot read dataset definition ${file}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new DatasetConfigError(`Dataset definition ${file} is not valid JSON: ${(err as Error).message}`);
  }
  const dataset = parseDataset(value, file);
  const expected = path.basename(file, '.json');
  if (dataset.name !== expected) {
    throw new DatasetConfigError(
      `Invalid dataset definition ${file}:\n  - name: "${dataset.name}" must match the file name "${expected}"`,
    );
  }
  return dataset;
}

/** The JSON Schema that sits beside the definitions (datasets/dataset.schema.json) is not one. */
export const isDatasetFileName = (file: string): boolean => file.endsWith('.json') && !file.endsWith('.schema.json');

/** Every `*.json` in a directory (but `*.schema.json`), validated, sorted by name. */
export function loadDatasetDir(dir: string): DatasetConfig[] {
  const files = readdirSync(dir)
    .filter(isDatasetFileName)
    .sort();
  return files.map((f) => loadDatasetFile(path.join(dir, f)));
}
