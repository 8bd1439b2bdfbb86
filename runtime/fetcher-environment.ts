import { declaredSourceFields, isSocrata, type DatasetConfig, type SourceConfig } from './dataset-config';

export interface FetcherEnvironmentInput {
  readonly dataset: DatasetConfig;
  readonly deliveryStreamName: string;
  /** `s3://<raw bucket>`: checkpoints and quarantine. */
  readonly stateLocation: string;
  readonly metricsNamespace: string;
}

/**
 * The fetcher's environment: exactly the variables `lambdas/fetcher/config.ts` reads. In runtime/
 * because three parts build or read it: the CDK function (lib/), the local pipeline (local/) and
 * the fetcher's reader, which should sit beside it. Only
 * scalars, never the whole dataset JSON (a Lambda environment is limited to 4 KB), never a secret
 * value (only the secret's name).
 */
export function fetcherEnvironment(input: FetcherEnvironmentInput): Record<string, string> {
  const { dataset } = input;
  const env: Record<string, string> = {
    DATASET_NAME: dataset.name,
    ...sourceVariables(dataset.source, dataset.columns),
    PRIMARY_KEY: dataset.primaryKey,
    // `name`, or `name:longitude:latitude` when the column renames its derived coordinates.
    POINT_COLUMNS: dataset.columns
      .filter((c) => c.type === 'point')
      .map((c) => (c.coordinates ? `${c.name}:${c.coordinates.longitude}:${c.coordinates.latitude}` : c.name))
      .join(','),
    PAGE_SIZE: String(dataset.fetch.pageSize),
    LOOKBACK_MINUTES: String(dataset.fetch.lookbackMinutes),
    REQUEST_TIMEOUT_SECONDS: String(dataset.fetch.requestTimeoutSeconds),
    MAX_ATTEMPTS: String(dataset.fetch.maxAttempts),
    MAX_QUARANTINE_SHARE: String(dataset.fetch.maxQuarantineShare),
    // Parallel backfills (fetch-run.ts): ranges, how many at once, and the row count below which one stream reads.
    STREAMS: String(dataset.fetch.streams),
    PARALLEL_MIN_ROWS: String(dataset.fetch.parallelMinRows),
    // Names only (~20 bytes each): the fetcher reports source columns outside this list as schema drift.
    DECLARED_COLUMNS: declaredSourceFields(dataset).join(','),
    // The key scan's cadence (phase "keys"); maxDeleteShare is the transform's, in DATASET_CONFIG.
    DELETIONS_DETECT: String(dataset.deletions.detect),
    KEY_SCAN_EVERY_HOURS: String(dataset.deletions.scanEveryHours),
    DELIVERY_STREAM_NAME: input.deliveryStreamName,
    STATE_LOCATION: input.stateLocation,
    POWERTOOLS_SERVICE_NAME: `fetcher-${dataset.name}`,
    POWERTOOLS_METRICS_NAMESPACE: input.metricsNamespace,
    POWERTOOLS_LOG_LEVEL: 'INFO',
  };
  if (dataset.fetch.maxConcurrentStreams !== undefined) env.MAX_CONCURRENT_STREAMS = String(dataset.fetch.maxConcurrentStreams);
  return env;
}

/**
 * What the fetcher needs to open the source. A Socrata source keeps the variables it always had
 * (and SOURCE_API only when not the default), so the templates of Socrata datasets do not change.
 */
function sourceVariables(source: SourceConfig, columns: DatasetConfig['columns']): Record<string, string> {
  if (source.type === 'ckan') return { SOURCE_TYPE: 'ckan', SOURCE_URL: source.url };
  if (source.type === 'arcgis') return { SOURCE_TYPE: 'arcgis', SOURCE_URL: source.url, ...(source.editDateField ? { SOURCE_EDIT_DATE_FIELD: source.editDateField } : {}) };
  if (!isSocrata(source)) {
    const vars: Record<string, string> = { SOURCE_TYPE: source.type, SOURCE_URL: source.url, SOURCE_FORMAT: source.format, SOURCE_COMPRESSION: source.compression ?? 'auto' };
    const fields = Object.fromEntries(columns.filter((c) => c.field).map((c) => [c.name, c.field!]));
    if (Object.keys(fields).length) vars.COLUMN_FIELDS = JSON.stringify(fields);
    if (source.type === 's3') {
      vars.SOURCE_MODE = source.mode ?? 'append';
      if (source.key) vars.SOURCE_KEY = JSON.stringify(source.key);
      const paths = Object.fromEntries(columns.filter((c) => c.path).map((c) => [c.name, c.path!]));
      if (Object.keys(paths).length) vars.COLUMN_PATHS = JSON.stringify(paths);
    }
    return vars;
  }
  return {
    SOURCE_DOMAIN: source.domain,
    SOURCE_DATASET_ID: source.datasetId,
    ...(source.appTokenSecretName ? { APP_TOKEN_SECRET_NAME: source.appTokenSecretName } : {}),
    ...(source.api === 'soda3' ? { SOURCE_API: 'soda3' } : {}),
  };
}
