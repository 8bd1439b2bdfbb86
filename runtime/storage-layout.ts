/**
 * Object keys in the raw and curated buckets. The CDK stacks, the Lambda, the transform task and
 * the local pipeline all name objects through these functions, so the layouts cannot drift apart.
 *
 * Raw bucket:
 *   raw/<dataset>/ingest_date=YYYY-MM-DD/<objects>.gz      Firehose output (gzipped NDJSON)
 *   raw/<dataset>/ingest_date=YYYY-MM-DD/large-row-<run>-<hash>.gz   one row too large for a Firehose record, written by the fetcher
 *   raw/<dataset>/ingest_date=YYYY-MM-DD/direct-<run>-<hash>.gz       rows of a parallel backfill, written by the fetcher
 *   errors/<dataset>/<error-type>/ingest_date=YYYY-MM-DD/   Firehose delivery errors
 *   quarantine/<dataset>/ingest_date=YYYY-MM-DD/<run>-<n>.ndjson.gz   rows the fetcher could not load
 *   checkpoints/<dataset>.json                               the fetcher's incremental checkpoint
 *   checkpoints/<dataset>.ranges.json                        a parallel backfill's ranges and their progress
 *   keysets/<dataset>/<run-id>/part-NNNNN.jsonl.gz           the source's keys (a JSON string per line, key-list.ts), key scan
 *   keysets/<dataset>/<run-id>/_SUCCESS.json                 written only when the scan completed
 *   keysets/<dataset>/<run-id>/missing-keys.jsonl.gz         source keys curated lacks (transform → repair), same encoding
 *   keysets/<dataset>/_latest.json                           copy of the last _SUCCESS (scan cadence)
 *   leases/<dataset>.json                                    the run lease (one ingestion run at a time)
 *   runs/<dataset>/<run-id>/fetch-<phase>-NNNNN.json         the fetcher's figures per invocation (→ run report)
 * Curated bucket:
 *   curated/<dataset>/...                                    curated table + marts (Parquet / Iceberg)
 *   curated/_runs/<dataset>/<run-id>.json                       transform run summaries
 *   curated/_state/<dataset>/...                               transform bookkeeping (processed partitions)
 *   reports/<dataset>/<run-id>.html                          HTML run reports
 *   reports/<dataset>/index.html                             history page across runs (rebuilt every run)
 */
import { KEY_LIST_SUFFIX, type KeyListFormat } from './key-list';

/**
 * A dataset as the layout sees it: by name only (a DatasetConfig is one). Not imported from
 * dataset-config.ts, which imports RAW_PARTITION_KEY from here: that made an import cycle.
 */
interface Named {
  readonly name: string;
}

/**
 * The partition key of the raw zone (`raw/<dataset>/ingest_date=YYYY-MM-DD/`), which the raw Glue
 * table declares as its partition column: no declared column may take the name.
 */
export const RAW_PARTITION_KEY = 'ingest_date';

export const rawPrefix = (d: Named): string => `raw/${d.name}/`;

/** Firehose S3 prefix expression; `!{timestamp:...}` is the arrival time of the oldest record, UTC. */
export const firehoseDataPrefix = (d: Named): string => `raw/${d.name}/${RAW_PARTITION_KEY}=!{timestamp:yyyy-MM-dd}/`;

export const firehoseErrorPrefix = (d: Named): string =>
  `errors/${d.name}/!{firehose:error-output-type}/ingest_date=!{timestamp:yyyy-MM-dd}/`;

/**
 * A row larger than a Firehose record, written whole by the fetcher beside Firehose's objects (the
 * transform reads every object under the prefix). The name is fixed by the run and the row
 * (`:id`, `:updated_at`), so a retried invocation overwrites its own object instead of adding one.
 * Only `large-row-*` names are the fetcher's: its role may not write Firehose's objects.
 */
export const LARGE_ROW_OBJECT_PREFIX = 'large-row-';

export const largeRowKey = (d: Named, ingestDate: string, runId: string, rowHash: string): string =>
  `raw/${d.name}/${RAW_PARTITION_KEY}=${ingestDate}/${LARGE_ROW_OBJECT_PREFIX}${runId}-${rowHash}.gz`;

/**
 * Rows of a parallel backfill, written by the fetcher itself as gzipped NDJSON objects beside
 * Firehose's (Firehose's 1 MiB/s default quota in most regions is below one source stream). The
 * name holds the run and a hash of the object's content, so a retried write replaces itself.
 */
export const DIRECT_OBJECT_PREFIX = 'direct-';

export const directObjectKey = (d: Named, ingestDate: string, runId: string, contentHash: string): string =>
  `raw/${d.name}/${RAW_PARTITION_KEY}=${ingestDate}/${DIRECT_OBJECT_PREFIX}${runId}-${contentHash}.gz`;

export const quarantinePrefix = (d: Named): string => `quarantine/${d.name}/`;

export const quarantineKey = (d: Named, ingestDate: string, runId: string, sequence: number): string =>
  `quarantine/${d.name}/ingest_date=${ingestDate}/${runId}-${String(sequence).padStart(5, '0')}.ndjson.gz`;

export const checkpointKey = (d: Named): string => `checkpoints/${d.name}.json`;

/** A parallel backfill's ranges and how far each got; the checkpoint moves once all are done. */
export const rangeProgressKey = (d: Named): string => `checkpoints/${d.name}.ranges.json`;

export const keysetPrefix = (d: Named): string => `keysets/${d.name}/`;

/** The key scan of one run; Athena-readable: `_`-prefixed files are not data. */
export const keysetRunPrefix = (d: Named, runId: string): string => `keysets/${d.name}/${runId}/`;

export const keysetPartKey = (d: Named, runId: string, part: number, format: KeyListFormat = 'json-lines'): string =>
  `${keysetRunPrefix(d, runId)}part-${String(part).padStart(5, '0')}${KEY_LIST_SUFFIX[format]}`;

/** A key-scan part file, of either format (key-list.ts). */
export const KEYSET_PART_PATTERN = /\/part-\d{5}\.(?:jsonl|txt)\.gz$/;

export const keysetSuccessKey = (d: Named, runId: string): string => `${keysetRunPrefix(d, runId)}_SUCCESS.json`;

export const keysetLatestKey = (d: Named): string => `${keysetPrefix(d)}_latest.json`;

export const missingKeysKey = (d: Named, runId: string, format: KeyListFormat = 'json-lines'): string =>
  `${keysetRunPrefix(d, runId)}missing-keys${KEY_LIST_SUFFIX[format]}`;

export const curatedPrefix = (d: Named): string => `curated/${d.name}/`;

export const runSummaryKey = (d: Named, runId: string): string => `${runSummaryPrefix(d)}${runId}.json`;

export const transformStatePrefix = (d: Named): string => `curated/_state/${d.name}/`;

export const runSummaryPrefix = (d: Named): string => `curated/_runs/${d.name}/`;

export const reportPrefix = (d: Named): string => `reports/${d.name}/`;

export const reportKey = (d: Named, runId: string): string => `${reportPrefix(d)}${runId}.html`;

/** The history page of a dataset: one row per run, each linking to its report (a sibling file). */
export const historyKey = (d: Named): string => `${reportPrefix(d)}index.html`;

/** The fetcher's per-run figures (raw bucket); the transform reads them into the run summary. */
export const fetchRunsPrefix = (d: Named): string => `runs/${d.name}/`;

export const fetchStatsPrefix = (d: Named, runId: string): string => `${fetchRunsPrefix(d)}${runId}/`;

export const fetchStatsKey = (d: Named, runId: string, phase: string, invocation: number): string =>
  `${fetchStatsPrefix(d, runId)}fetch-${phase}-${String(invocation).padStart(5, '0')}.json`;

/** Partition value Firehose's `!{timestamp:yyyy-MM-dd}` yields for a time (UTC). */
export const ingestDateOf = (t: Date): string => t.toISOString().slice(0, 10);

/** The run lease of a dataset (raw bucket): at most one ingestion run holds it at a time. */
export const leaseKey = (d: Named): string => `leases/${d.name}.json`;
