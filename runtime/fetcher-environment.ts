import { type DatasetConfig } from './dataset-config';

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
    SOURCE_DOMAIN: dataset.source.domain,
    SOURCE_DATASET_ID: dataset.source.datasetId,
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
    DECLARED_COLUMNS: dataset.columns.map((c) => c.name).join(','),
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
  if (dataset.source.appTokenSecretName) env.APP_TOKEN_SECRET_NAME = dataset.source.appTokenSecretName;
  // Only when not the default, so the templates of datasets reading SODA 2 do not change.
  if (dataset.source.api === 'soda3') env.SOURCE_API = 'soda3';
  return env;
}
