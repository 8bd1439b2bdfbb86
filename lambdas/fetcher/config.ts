/**
 * The fetcher's configuration, read from the environment in this one place. The CDK sets exactly
 * these variables from the dataset definition; the local pipeline sets the same ones.
 */
import { DEFAULT_MAX_QUARANTINE_SHARE, MAX_PAGE_SIZE, MAX_STREAMS } from '../../runtime/dataset-config';
import { S3_URL_PATTERN } from '../../runtime/s3-location';
import type { PointColumnSpec } from './raw-row';
import { ConfigError } from '../../runtime/pipeline-error';

export interface FetcherConfig {
  datasetName: string;
  sourceDomain: string;
  sourceDatasetId: string;
  /** Base URL of the Socrata portal, without a trailing slash. */
  sourceBaseUrl: string;
  appTokenSecretName?: string;
  /**
   * `SOCRATA_APP_TOKEN`: the token itself, read only when no secret is named. `npm run local` and
   * `npm run dataset` set it (the local server takes any token); the CDK never does.
   */
  appToken?: string;
  /**
   * `SOURCE_TYPE=file`: the source is one file over HTTP(S) (`SOURCE_URL`, `SOURCE_FORMAT` csv |
   * ndjson | json, `SOURCE_COMPRESSION` auto | gzip | none, `COLUMN_FIELDS` a JSON object of column
   * name to the source field it is read from when the names differ); absent: Socrata.
   */
  file?: { url: string; format: 'csv' | 'ndjson' | 'json'; compression: 'auto' | 'gzip' | 'none'; columnFields?: Record<string, string> };
  /**
   * `SOURCE_TYPE=s3`: files under an S3 prefix (`SOURCE_URL` s3://bucket/prefix/, `SOURCE_FORMAT`,
   * `SOURCE_COMPRESSION`, `SOURCE_MODE` append | snapshot, `SOURCE_KEY` a JSON array of the paths
   * that make the key, `COLUMN_PATHS` a JSON object of column name to nested path).
   */
  s3?: NonNullable<FetcherConfig['file']> & { mode: 'append' | 'snapshot'; key?: string[]; columnPaths?: Record<string, string> };
  /** `SOURCE_TYPE=ckan`: a CKAN DataStore resource, `SOURCE_URL` its datastore_search?resource_id= URL. */
  ckan?: { url: string };
  /**
   * `SOURCE_TYPE=arcgis`: an ArcGIS FeatureServer layer (`SOURCE_URL` .../FeatureServer/<n>,
   * `SOURCE_EDIT_DATE_FIELD` its edit date field when read incrementally; absent: a snapshot).
   */
  arcgis?: { url: string; editDateField?: string };
  /**
   * `SOURCE_ENDPOINT_URL`: an origin that requests of a URL source (file, portal layer) go to
   * instead of the URL's own; the source's identity stays its URL. Local runs only: the CDK never
   * sets it (as SOURCE_BASE_URL stands in for a Socrata domain).
   */
  sourceEndpoint?: string;
  /** `SOURCE_API`: 'soda3' reads through SODA 3 (needs a token); absent: SODA 2. */
  sourceApi: 'soda2' | 'soda3';
  primaryKey: string;
  /** From `POINT_COLUMNS`: `name` (default derived names) or `name:longitude:latitude` (the column's `coordinates`). */
  pointColumns: PointColumnSpec[];
  pageSize: number;
  lookbackMinutes: number;
  requestTimeoutMs: number;
  maxAttempts: number;
  deliveryStreamName: string;
  /** `s3://bucket` or a local directory: where checkpoints and quarantine files go. */
  stateLocation: string;
  /** Stop starting new pages when less than this much invocation time is left. */
  timeBudgetMarginMs: number;
  /** The source the checkpoint belongs to (domain + dataset id). */
  source: { domain: string; datasetId: string };
  /** A run whose quarantined rows exceed this share of fetched rows fails. */
  maxQuarantineShare: number;
  /** The dataset's declared source columns (schema drift is counted against them); undefined: not checked. */
  declaredColumns?: string[];
  /** The key scan (phase "keys"): whether it runs, and hours between scans (0: every run). */
  deletions: { detect: boolean; scanEveryHours: number };
  /** Parallel backfills (fetch-run.ts): ranges (absent: 1, one stream), ranges at once, and the row count below which one stream reads. */
  streams: number;
  maxConcurrentStreams?: number;
  parallelMinRows?: number;
}

/** A missing or malformed environment variable; the message names every bad one. */
export class FetcherConfigError extends ConfigError {
  override name = 'FetcherConfigError';
}

export const DEFAULT_TIME_BUDGET_MARGIN_MS = 60_000;

export function readFetcherConfig(env: NodeJS.ProcessEnv = process.env): FetcherConfig {
  const problems: string[] = [];
  const text = (name: string, optional = false): string => {
    const v = env[name]?.trim();
    if (!v) {
      if (!optional) problems.push(`${name} is not set`);
      return '';
    }
    return v;
  };
  const int = (name: string, min: number, max: number, fallback?: number): number => {
    const raw = env[name]?.trim();
    if (!raw) {
      if (fallback !== undefined) return fallback;
      problems.push(`${name} is not set`);
      return 0;
    }
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name}="${raw}" must be an integer between ${min} and ${max}`);
      return 0;
    }
    return n;
  };

  const share = (name: string, fallback: number): number => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0 || n > 1) {
      problems.push(`${name}="${raw}" must be a number between 0 and 1`);
      return 0;
    }
    return n;
  };

  const flag = (name: string, fallback: boolean): boolean => {
    const raw = env[name]?.trim().toLowerCase();
    if (!raw) return fallback;
    if (raw !== 'true' && raw !== 'false') problems.push(`${name}="${env[name]}" must be "true" or "false"`);
    return raw === 'true';
  };
  const hours = (name: string): number => {
    const raw = env[name]?.trim();
    if (!raw) return 0;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0 || n > 24 * 366) {
      problems.push(`${name}="${raw}" must be a number of hours between 0 and ${24 * 366}`);
      return 0;
    }
    return n;
  };

  const sourceType = env.SOURCE_TYPE?.trim() || 'socrata';
  if (!['socrata', 'file', 's3', 'ckan', 'arcgis'].includes(sourceType)) problems.push(`SOURCE_TYPE must be socrata, file, s3, ckan or arcgis, not "${sourceType}"`);
  const isFile = sourceType !== 'socrata';
  const sourceDomain = text('SOURCE_DOMAIN', isFile);
  const sourceDatasetId = text('SOURCE_DATASET_ID', isFile);
  const baseUrl = text('SOURCE_BASE_URL', true) || (sourceDomain ? `https://${sourceDomain}` : '');
  if (baseUrl && !/^https?:\/\/[^/]+/.test(baseUrl)) problems.push(`SOURCE_BASE_URL="${baseUrl}" must be an http(s) URL`);
  const config: FetcherConfig = {
    datasetName: text('DATASET_NAME'),
    sourceDomain,
    sourceDatasetId,
    sourceBaseUrl: baseUrl.replace(/\/+$/, ''),
    sourceApi: ((): 'soda2' | 'soda3' => {
      const api = env.SOURCE_API?.trim();
      if (!api || api === 'soda2' || api === 'soda3') return api === 'soda3' ? 'soda3' : 'soda2';
      problems.push(`SOURCE_API must be soda2 or soda3, not "${api}"`);
      return 'soda2';
    })(),
    primaryKey: text('PRIMARY_KEY'),
    pointColumns: (env.POINT_COLUMNS ?? '')
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean)
      .map((c): PointColumnSpec => {
        const [name, longitude, latitude, ...rest] = c.split(':');
        if (longitude === undefined) return c;
        if (!name || !longitude || !latitude || rest.length) {
          problems.push(`POINT_COLUMNS entry "${c}" must be <column> or <column>:<longitude name>:<latitude name>`);
          return c;
        }
        return { name, longitude, latitude };
      }),
    pageSize: int('PAGE_SIZE', 1, MAX_PAGE_SIZE),
    lookbackMinutes: int('LOOKBACK_MINUTES', 0, 60 * 24 * 366),
    requestTimeoutMs: int('REQUEST_TIMEOUT_SECONDS', 1, 900) * 1000,
    maxAttempts: int('MAX_ATTEMPTS', 1, 20),
    deliveryStreamName: text('DELIVERY_STREAM_NAME'),
    stateLocation: text('STATE_LOCATION'),
    timeBudgetMarginMs: int('TIME_BUDGET_MARGIN_MS', 0, 15 * 60_000, DEFAULT_TIME_BUDGET_MARGIN_MS),
    source: { domain: sourceDomain, datasetId: sourceDatasetId },
    maxQuarantineShare: share('MAX_QUARANTINE_SHARE', DEFAULT_MAX_QUARANTINE_SHARE),
    deletions: { detect: flag('DELETIONS_DETECT', true), scanEveryHours: hours('KEY_SCAN_EVERY_HOURS') },
    // Absent (an environment from before parallel backfills): one stream, as it read then.
    streams: int('STREAMS', 1, MAX_STREAMS, 1),
  };
  if (env.MAX_CONCURRENT_STREAMS?.trim()) config.maxConcurrentStreams = int('MAX_CONCURRENT_STREAMS', 1, MAX_STREAMS);
  if (env.PARALLEL_MIN_ROWS?.trim()) config.parallelMinRows = int('PARALLEL_MIN_ROWS', 1, Number.MAX_SAFE_INTEGER);
  const declared = env.DECLARED_COLUMNS?.trim();
  if (declared) config.declaredColumns = declared.split(',').map((c) => c.trim()).filter(Boolean);
  if (sourceType === 'file') config.file = readFileSource(env, problems, /^https?:\/\/[^/]+/, 'an http(s) URL');
  if (sourceType === 's3') config.s3 = readS3Source(env, problems);
  if (sourceType === 'ckan') {
    const url = env.SOURCE_URL?.trim() ?? '';
    if (!/^https?:\/\/[^/\s]+(\/\S*)?\/api\/3\/action\/datastore_search\?\S*resource_id=/.test(url)) {
      problems.push(`SOURCE_URL="${url}" must be https://<portal>/api/3/action/datastore_search?resource_id=<resource id>`);
    } else config.ckan = { url };
  }
  if (sourceType === 'arcgis') config.arcgis = readArcgisSource(env, problems);
  const endpoint = text('SOURCE_ENDPOINT_URL', true);
  if (endpoint && !/^https?:\/\/[^/]+\/?$/.test(endpoint)) problems.push(`SOURCE_ENDPOINT_URL="${endpoint}" must be an http(s) origin such as http://127.0.0.1:8080`);
  else if (endpoint) config.sourceEndpoint = endpoint;
  const secret = text('APP_TOKEN_SECRET_NAME', true);
  if (secret) config.appTokenSecretName = secret;
  const token = env.SOCRATA_APP_TOKEN?.trim();
  if (token && !secret) config.appToken = token;
  if (config.sourceApi === 'soda3' && !secret && !token) problems.push('SOURCE_API soda3 needs APP_TOKEN_SECRET_NAME (or, locally, SOCRATA_APP_TOKEN): SODA 3 answers only requests with an app token');
  if (problems.length) {
    throw new FetcherConfigError(`Fetcher configuration is invalid:\n  - ${problems.join('\n  - ')}`);
  }
  return config;
}

/** A variable holding JSON of the shape `valid` accepts; undefined when absent, a problem when not that shape. */
function jsonVariable<T>(env: NodeJS.ProcessEnv, problems: string[], name: string, valid: (v: unknown) => v is T, what: string): T | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  try {
    const v: unknown = JSON.parse(raw);
    if (valid(v)) return v;
  } catch {
    // reported below, with the variable's name
  }
  problems.push(`${name}=${raw} must be ${what}`);
  return undefined;
}

const isNameMap = (v: unknown): v is Record<string, string> => !!v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((p) => typeof p === 'string' && p !== '');

/** `SOURCE_URL`, `SOURCE_FORMAT`, `SOURCE_COMPRESSION` and `COLUMN_FIELDS` of a file source; what is wrong goes to `problems`. */
function readFileSource(env: NodeJS.ProcessEnv, problems: string[], urlForm: RegExp, urlKind: string): NonNullable<FetcherConfig['file']> {
  const url = env.SOURCE_URL?.trim() ?? '';
  if (!url) problems.push('SOURCE_URL is not set');
  else if (!urlForm.test(url)) problems.push(`SOURCE_URL="${url}" must be ${urlKind}`);
  const format = env.SOURCE_FORMAT?.trim() ?? '';
  if (format !== 'csv' && format !== 'ndjson' && format !== 'json') problems.push(`SOURCE_FORMAT must be csv, ndjson or json, not "${format}"`);
  const compression = env.SOURCE_COMPRESSION?.trim() || 'auto';
  if (compression !== 'auto' && compression !== 'gzip' && compression !== 'none') problems.push(`SOURCE_COMPRESSION must be auto, gzip or none, not "${compression}"`);
  const columnFields = jsonVariable(env, problems, 'COLUMN_FIELDS', isNameMap, 'a JSON object of column name to source field name');
  return { url, format: format as 'csv', compression: compression as 'auto', ...(columnFields ? { columnFields } : {}) };
}

/** The S3 source's variables: the file ones, its mode, and the key and column paths (JSON). */
function readS3Source(env: NodeJS.ProcessEnv, problems: string[]): NonNullable<FetcherConfig['s3']> {
  const file = readFileSource(env, problems, S3_URL_PATTERN, 'an s3://bucket/prefix/ URL');
  const mode = env.SOURCE_MODE?.trim() || 'append';
  if (mode !== 'append' && mode !== 'snapshot') problems.push(`SOURCE_MODE must be append or snapshot, not "${mode}"`);
  const key = jsonVariable(env, problems, 'SOURCE_KEY', (v): v is string[] => Array.isArray(v) && v.length > 0 && v.every((p) => typeof p === 'string' && p !== ''), 'a JSON array of field paths');
  const columnPaths = jsonVariable(env, problems, 'COLUMN_PATHS', isNameMap, 'a JSON object of column name to field path');
  return { ...file, mode: mode as 'append', ...(key ? { key } : {}), ...(columnPaths ? { columnPaths } : {}) };
}


/** `SOURCE_URL` (a FeatureServer layer) and `SOURCE_EDIT_DATE_FIELD` of an ArcGIS source. */
function readArcgisSource(env: NodeJS.ProcessEnv, problems: string[]): NonNullable<FetcherConfig['arcgis']> {
  const url = env.SOURCE_URL?.trim() ?? '';
  if (!url) problems.push('SOURCE_URL is not set');
  else if (!/^https?:\/\/[^/]+\/\S*\/FeatureServer\/\d+$/.test(url)) problems.push(`SOURCE_URL="${url}" must be a layer URL ending in /FeatureServer/<layer id>`);
  const editDateField = env.SOURCE_EDIT_DATE_FIELD?.trim();
  if (editDateField && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(editDateField)) problems.push(`SOURCE_EDIT_DATE_FIELD="${editDateField}" must be a field name`);
  return { url, ...(editDateField ? { editDateField } : {}) };
}
