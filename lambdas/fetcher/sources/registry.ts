/**
 * The one place a source type becomes an adapter: the handler (deployed and local alike) asks for
 * the dataset's source here and reads it only through source-adapter.ts.
 */
import type { FetcherConfig } from '../config';
import { defaultRetryPolicy } from '../retry-policy';
import type { PositionOrder, SourceAdapter } from './source-adapter';
import { SocrataClient } from './socrata/socrata-client';
import { KEYSET_POSITIONS, SocrataSource } from './socrata/socrata-source';
import { FILE_POSITIONS, HttpFileSource } from './files/http-file-source';
import { S3FilesSource } from './s3/s3-files-source';
import { S3_OBJECT_POSITIONS, S3_SNAPSHOT_POSITIONS } from './s3/s3-positions';
import type { S3Client } from '@aws-sdk/client-s3';
import { CKAN_POSITIONS, CkanDatastoreSource } from './ckan/ckan-source';
import { openArcgisLayer } from './arcgis/arcgis-source';
import { ARCGIS_EDIT_POSITIONS, ARCGIS_SNAPSHOT_POSITIONS } from './arcgis/arcgis-positions';

export interface SourceOptions {
  /** The app token, resolved lazily and only when a request is made; never logged. */
  appToken?: () => Promise<string | undefined>;
  /** Called before each retry of a source request; for metrics and logs (carries no secret). */
  onRetry?: (info: { attempt: number; delayMs: number; reason: string; url: string }) => void;
  /** The S3 client an S3 source reads with (the handler's, with its endpoint and timeouts). */
  s3?: () => S3Client;
}

export function openSource(config: FetcherConfig, options: SourceOptions = {}): SourceAdapter<unknown> {
  if (config.s3) {
    const { key, columnPaths, ...s3 } = config.s3;
    if (!options.s3) throw new Error('An S3 source needs the S3 client (SourceOptions.s3)');
    // A renamed key column is read from its field (the key builder reads the record as it came).
    const keyField = s3.columnFields?.[config.primaryKey];
    return new S3FilesSource({
      datasetName: config.datasetName,
      ...s3,
      // A composite or nested key is written to the primary key column, which the fetcher checks.
      primaryKey: key ?? (keyField !== undefined ? [keyField] : config.primaryKey),
      keyColumn: config.primaryKey,
      ...(columnPaths ? { columns: columnPaths } : {}),
      s3: options.s3(),
    }) as SourceAdapter<unknown>;
  }
  // What every source read over HTTP(S) by URL takes: where requests go, the key, the deadline and retries.
  const http = {
    datasetName: config.datasetName,
    ...(config.sourceEndpoint ? { endpoint: config.sourceEndpoint } : {}),
    primaryKey: config.primaryKey,
    timeoutMs: config.requestTimeoutMs,
    retry: defaultRetryPolicy(config.maxAttempts),
    ...(options.onRetry ? { onRetry: options.onRetry } : {}),
  };
  if (config.ckan) {
    return new CkanDatastoreSource({
      url: config.ckan.url,
      ...http,
    }) as SourceAdapter<unknown>;
  }
  if (config.arcgis) {
    return openArcgisLayer({
      ...config.arcgis,
      ...http,
    }) as SourceAdapter<unknown>;
  }
  if (config.file) {
    return new HttpFileSource({
      ...config.file,
      ...http,
    }) as SourceAdapter<unknown>;
  }
  const client = new SocrataClient({
    datasetName: config.datasetName,
    baseUrl: config.sourceBaseUrl,
    datasetId: config.sourceDatasetId,
    timeoutMs: config.requestTimeoutMs,
    retry: defaultRetryPolicy(config.maxAttempts),
    api: config.sourceApi,
    ...(options.appToken ? { appToken: options.appToken } : {}),
    ...(options.onRetry ? { onRetry: options.onRetry } : {}),
  });
  return new SocrataSource(client, config.source, config.primaryKey) as SourceAdapter<unknown>;
}

/** Every position format an adapter writes, to show a stored checkpoint without knowing its source. */
const POSITION_ORDERS = [KEYSET_POSITIONS, FILE_POSITIONS, S3_OBJECT_POSITIONS, S3_SNAPSHOT_POSITIONS, CKAN_POSITIONS, ARCGIS_EDIT_POSITIONS, ARCGIS_SNAPSHOT_POSITIONS] as readonly PositionOrder<unknown>[];

/**
 * A stored position as its adapter shows it; JSON when its format is not one of ours. Without a
 * format (a fetch's figures carry the position alone), the first adapter that reads it as its own.
 */
export function showPosition(format: string | undefined, position: unknown): string {
  const order = POSITION_ORDERS.find((o) => (format === undefined || o.format === format) && o.is(position));
  return order ? order.show(position) : `${format ?? 'position'} ${JSON.stringify(position)}`;
}
