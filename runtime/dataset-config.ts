/**
 * The dataset definition: one JSON file per dataset under `datasets/`, validated here.
 * The CDK app grows one pipeline per file; the fetcher, the transform and the local pipeline
 * read the same definition, so this module depends on nothing but zod.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/**
 * Column types. The Socrata `dataTypeName`s we support, plus `integer`, a narrower `number`
 * for counts (the transform casts it to BIGINT instead of DOUBLE).
 */
export const COLUMN_TYPES = ['text', 'number', 'integer', 'floating_timestamp', 'point', 'checkbox'] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

const identifier = z
  .string()
  .regex(/^[a-z_][a-z0-9_]*$/, 'must be a lower-case SQL identifier (a-z, 0-9, _; not starting with a digit)');

export const columnSchema = z.strictObject({
  name: identifier,
  type: z.enum(COLUMN_TYPES),
  description: z.string().optional(),
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
    /** A boolean SQL expression over curated columns that must hold for every row (NULL passes). */
    expression: z.string().min(1),
    severity: z.enum(['error', 'warn']).default('error'),
  }),
]);
export type DataTestConfig = z.infer<typeof dataTestSchema>;

export const datasetSchema = z
  .strictObject({
    /** kebab-case; names the stack resources, S3 prefixes and (dashes → underscores) the tables. */
    name: z.string().regex(/^[a-z][a-z0-9-]{1,40}[a-z0-9]$/, 'must be kebab-case, 3-42 characters'),
    description: z.string().default(''),
    source: z.strictObject({
      /** Socrata portal host name, e.g. data.sfgov.org (no scheme, no path). */
      domain: z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, 'must be a host name such as data.sfgov.org'),
      /** The dataset's 4x4 id, e.g. wr8u-xric. */
      datasetId: z.string().regex(/^[a-z0-9]{4}-[a-z0-9]{4}$/, 'must be a Socrata 4x4 id such as wr8u-xric'),
      /** Secrets Manager secret holding the Socrata app token (plain string or {"appToken": "..."}). */
      appTokenSecretName: z.string().min(1).optional(),
    }),
    /** Column that identifies a row; the curated table holds exactly one row per value. */
    primaryKey: identifier,
    /** Column giving the event time; partitions the curated table. Must be a floating_timestamp. */
    eventTimeColumn: identifier,
    /** Socrata system field used as the incremental change cursor. */
    changeCursor: z.literal(':updated_at').default(':updated_at'),
    columns: z.array(columnSchema).min(1),
    schedule: z
      .strictObject({
        /** EventBridge Scheduler expression: cron(...) or rate(...). */
        expression: z.string().regex(/^(cron|rate)\(.+\)$/, 'must be cron(...) or rate(...)'),
        timezone: z.string().default('UTC'),
      })
      .default({ expression: 'cron(0 6 * * ? *)', timezone: 'UTC' }),
    fetch: z
      .strictObject({
        /** Rows per Socrata request: a few MB per page for wide rows. */
        pageSize: z.number().int().min(1).max(50_000).default(2_000),
        /** Re-read this many minutes before the checkpoint on every incremental run. */
        lookbackMinutes: z.number().int().min(0).default(0),
        /** Per-request timeout. */
        requestTimeoutSeconds: z.number().int().min(1).max(300).default(60),
        maxAttempts: z.number().int().min(1).max(20).default(6),
      })
      .default({ pageSize: 2_000, lookbackMinutes: 0, requestTimeoutSeconds: 60, maxAttempts: 6 }),
    delivery: z
      .strictObject({
        bufferingIntervalSeconds: z.number().int().min(0).max(900).default(60),
        bufferingSizeMiB: z.number().int().min(1).max(128).default(64),
      })
      .default({ bufferingIntervalSeconds: 60, bufferingSizeMiB: 64 }),
    dataTests: z.array(dataTestSchema).default([]),
  })
  .superRefine((d, ctx) => {
    const byName = new Map(d.columns.map((c) => [c.name, c]));
    if (byName.size !== d.columns.length) {
      const seen = new Set<string>();
      d.columns.forEach((c, i) => {
        if (seen.has(c.name)) ctx.addIssue({ code: 'custom', path: ['columns', i, 'name'], message: `duplicate column "${c.name}"` });
        seen.add(c.name);
      });
    }
    if (!byName.has(d.primaryKey)) {
      ctx.addIssue({ code: 'custom', path: ['primaryKey'], message: `"${d.primaryKey}" is not one of the declared columns` });
    }
    const event = byName.get(d.eventTimeColumn);
    if (!event) {
      ctx.addIssue({ code: 'custom', path: ['eventTimeColumn'], message: `"${d.eventTimeColumn}" is not one of the declared columns` });
    } else if (event.type !== 'floating_timestamp') {
      ctx.addIssue({ code: 'custom', path: ['eventTimeColumn'], message: `"${d.eventTimeColumn}" must be a floating_timestamp column, not ${event.type}` });
    }
    const testable = new Set(curatedColumnNames(d));
    d.dataTests.forEach((t, i) => {
      if ('column' in t && !testable.has(t.column)) {
        ctx.addIssue({ code: 'custom', path: ['dataTests', i, 'column'], message: `"${t.column}" is not one of the declared columns` });
      }
    });
  });

/** Ingestion metadata every raw row carries, added by the fetcher. */
export const INGESTION_METADATA = {
  ingestedAt: '_ingested_at',
  runId: '_run_id',
  sourceUpdatedAt: '_source_updated_at',
  sourceId: '_source_id',
} as const;

/**
 * Where a point column's coordinates are exposed, in raw rows and curated tables: the column
 * named `point` becomes `longitude`/`latitude`, any other point column `c` becomes
 * `c_longitude`/`c_latitude`.
 */
export function pointFieldNames(column: string): { longitude: string; latitude: string } {
  return column === 'point'
    ? { longitude: 'longitude', latitude: 'latitude' }
    : { longitude: `${column}_longitude`, latitude: `${column}_latitude` };
}

/** Column the transform adds to curated: a digest of the declared columns' typed values. */
export const CONTENT_HASH_COLUMN = '_content_hash';

/** Columns of the curated table: declared columns, point coordinates, ingestion metadata, content hash. */
export function curatedColumnNames(dataset: Pick<DatasetConfig, 'columns'>): string[] {
  const names: string[] = [];
  for (const c of dataset.columns) {
    names.push(c.name);
    if (c.type === 'point') {
      const p = pointFieldNames(c.name);
      names.push(p.longitude, p.latitude);
    }
  }
  return [...names, ...Object.values(INGESTION_METADATA), CONTENT_HASH_COLUMN];
}

/** A validated dataset definition, defaults applied. */
export type DatasetConfig = z.infer<typeof datasetSchema>;

/** Dataset name as a SQL/Glue table name: dashes become underscores. */
export function tableName(dataset: Pick<DatasetConfig, 'name'>): string {
  return dataset.name.replace(/-/g, '_');
}

/** Thrown for an invalid dataset file; the message names the file and every bad field. */
export class DatasetConfigError extends Error {
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

/** Every `*.json` in a directory, validated, sorted by name. */
export function loadDatasetDir(dir: string): DatasetConfig[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  return files.map((f) => loadDatasetFile(path.join(dir, f)));
}
