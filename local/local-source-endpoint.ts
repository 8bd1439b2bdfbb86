/**
 * A generated source of `npm run local` for a source type other than Socrata (a file server, an
 * S3 API, a portal's server): what the pipeline needs of it. Its rows are generated from the
 * dataset definition and remembered in the data directory, so a second run with nothing new
 * fetches nothing, as against the real source.
 *
 * The fetcher reads it through the same adapter as deployed: the endpoint only adds variables to
 * the fetcher's environment that point requests at this machine (SOURCE_ENDPOINT_URL for a URL
 * source, AWS_ENDPOINT_URL_S3 for S3), never a different identity: checkpoints and key scans
 * belong to the dataset's declared source.
 */
import type { DatasetConfig } from '../runtime/dataset-config';

export interface LocalSourceRequest {
  dataset: DatasetConfig;
  /** The run's data directory: the source keeps what it generated under it. */
  dataDir: string;
  /** Rows to generate (a larger count than last time adds rows, as a publisher's inserts). */
  rows: number;
  seed: number;
}

export interface LocalSourceEndpoint {
  /** Variables added to the fetcher's environment. */
  env: Record<string, string>;
  /** What the fetcher reads, for the log and the summary (a URL or s3:// prefix, with where it is served). */
  describe: string;
  /** The process serving it, when it is a child process (the bench measures its memory). */
  pid?: number;
  close(): Promise<void>;
}

export type StartLocalSourceEndpoint = (request: LocalSourceRequest) => Promise<LocalSourceEndpoint>;
