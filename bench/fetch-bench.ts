/**
 * Fetch → deliver: the three contenders on the same generated rows, one after the other, each in
 * its own process, against one local Socrata server and a fresh local Firehose per contender
 * (so each contender's Firehose counters and raw objects are its own).
 */
import path from 'node:path';
import type { DatasetConfig } from '../runtime/dataset-config';
import { sourceFor } from '../local/dataset-rows';
import { localStreamName, startLocalFirehose, type FirehoseCounters } from '../local/firehose-server';
import { localFetcherEnv } from '../local/pipeline';
import { startSocrataProcess, type SocrataEndpoint } from '../local/socrata-process';
import { isLoopback, startSourceProfileProxy, type SourceProfile } from '../local/source-profile';
import { BASELINE_PAGE_SIZE } from './baseline-fetcher';
import { runContender, type ContenderKind, type ContenderReport } from './contenders';

export interface ContenderResult extends ContenderReport {
  rowsPerSecond: number;
  /** Payload MB per second: delivered to Firehose (ours, baseline) or downloaded (the limit). MB = 10^6 bytes. */
  mbPerSecond: number;
  /** What the local Firehose server counted for this contender (absent for the limit). */
  firehose?: Pick<FirehoseCounters, 'putRecordBatchCalls' | 'recordsAccepted' | 'recordsFailed' | 'bytesAccepted' | 'billedBytes' | 'objectsWritten' | 'objectBytesWritten'>;
  /** Firehose billed ingestion bytes ÷ payload bytes (server-side counters). */
  billedPerPayloadByte?: number;
  /** Directory holding this contender's raw bucket mirror (`buckets/raw`). */
  dataDir?: string;
  /** Requests that went through the source-profile proxy (absent over loopback). */
  sourceRequests?: number;
}

export interface FetchBenchOptions {
  dataset: DatasetConfig;
  rows: number;
  seed: number;
  /** Parent of every contender's data directory. */
  workDir: string;
  contenders: ContenderKind[];
  /** Label in directory names and run ids (e.g. "n" or "4n"). */
  label: string;
  /** Worker bundle from bundleWorker(); default: the TypeScript worker through tsx. */
  worker?: string;
  log: (line: string) => void;
  /** Serve from this server (with `rows` rows, already warmed up) instead of starting one; the caller closes it. */
  socrata?: SocrataEndpoint;
  /**
   * Put a shaping proxy with this source profile between every contender and the Socrata server
   * (local/source-profile.ts); a fresh proxy per contender, so each has the link to itself.
   */
  profile?: SourceProfile;
  /** The limit's page size; default the dataset's. `rows + 1`: one request for all rows. */
  limitPageSize?: number;
}

/** Ask for one row in each order the contenders use, so no contender pays the server's first sort. */
/**
 * The generated source for a bench run: the local Socrata server in a child process of its own,
 * rows stored compactly under `storageDir` (as `npm run local` serves them). In the bench's own
 * process the rows would be ~3 KB of objects each (1.2 GB at 400,000 rows) on the event loop that
 * also runs the local Firehose, so its garbage collections would show up as source latency.
 */
export async function startBenchSource(dataset: DatasetConfig, rows: number, seed: number, storageDir: string): Promise<SocrataEndpoint> {
  const options = sourceFor(dataset, rows, seed);
  if (typeof options.rows !== 'number') throw new Error(`bench: dataset ${dataset.name} has no generator (only the SF Fire Incidents rows are generated)`);
  return startSocrataProcess({ kind: 'options', options: { ...options, rows: options.rows, storageDir } });
}

export async function warmUp(socrata: SocrataEndpoint): Promise<void> {
  for (const q of ['$select=:*,*&$order=:updated_at,:id&$limit=1', `$order=incident_number&$limit=1&$offset=0`]) {
    const res = await fetch(`${socrata.resourceUrl}?${q}`);
    if (res.status !== 200) throw new Error(`warm-up request ${q} failed with HTTP ${res.status}`);
    await res.arrayBuffer();
  }
}

export async function runFetchBench(opts: FetchBenchOptions): Promise<Record<string, ContenderResult>> {
  const { dataset, log } = opts;
  const started = Date.now();
  const socrata = opts.socrata ?? (await startBenchSource(dataset, opts.rows, opts.seed, path.join(opts.workDir, `source-${opts.label}`)));
  if (!opts.socrata) log(`  generated ${opts.rows.toLocaleString('en-US')} rows in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const results: Record<string, ContenderResult> = {};
  try {
    if (!opts.socrata) await warmUp(socrata);
    for (const kind of opts.contenders) {
      const dataDir = path.join(opts.workDir, `${kind}-${opts.label}`);
      const firehose = kind === 'limit' ? undefined : await startLocalFirehose({ dataDir, datasets: [dataset] });
      const proxy = opts.profile && !isLoopback(opts.profile) ? await startSourceProfileProxy(socrata.url, opts.profile) : undefined;
      const sourceUrl = proxy?.url ?? socrata.url;
      const runId = `bench-${kind}-${opts.label}`;
      try {
        const env =
          kind === 'ours'
            ? localFetcherEnv({
                dataset,
                datasetId: socrata.datasetId,
                baseUrl: sourceUrl,
                firehoseUrl: firehose!.url,
                rawDir: path.join(dataDir, 'buckets', 'raw'),
                marginMs: 0,
              })
            : {};
        // One stream through Firehose, as incremental runs deliver: what this table and its targets
        // (billed bytes, PutRecordBatch calls, CPU and memory per row) measure. Parallel backfills
        // are measured on their own (backfill-bench.ts).
        if (kind === 'ours') env.STREAMS = '1';
        const report = await runContender(
          {
            kind,
            sourceUrl,
            datasetId: socrata.datasetId,
            pageSize: kind === 'limit' && opts.limitPageSize ? opts.limitPageSize : dataset.fetch.pageSize,
            ...(kind === 'limit' && opts.profile?.gzip ? { acceptGzip: true } : {}),
            runId,
            // One Lambda invocation's worth (15 minutes): the state machine's loop is not what is measured.
            invocationBudgetMs: 900_000,
            ...(firehose ? { firehoseUrl: firehose.url, streamName: localStreamName(dataset) } : {}),
          },
          env,
          opts.worker,
        );
        const result: ContenderResult = {
          ...report,
          rowsPerSecond: report.rows / report.seconds,
          mbPerSecond: report.payloadBytes / 1e6 / report.seconds,
        };
        if (proxy) result.sourceRequests = proxy.counters().requests;
        if (firehose) {
          await firehose.flush();
          const c = firehose.counters();
          result.firehose = {
            putRecordBatchCalls: c.putRecordBatchCalls,
            recordsAccepted: c.recordsAccepted,
            recordsFailed: c.recordsFailed,
            bytesAccepted: c.bytesAccepted,
            billedBytes: c.billedBytes,
            objectsWritten: c.objectsWritten,
            objectBytesWritten: c.objectBytesWritten,
          };
          result.billedPerPayloadByte = c.bytesAccepted ? c.billedBytes / c.bytesAccepted : Number.NaN;
          result.dataDir = dataDir;
        }
        results[kind] = result;
        log(
          `  ${kind.padEnd(8)} ${result.rows.toLocaleString('en-US')} rows in ${result.seconds.toFixed(2)} s: ` +
            `${Math.round(result.rowsPerSecond).toLocaleString('en-US')} rows/s, peak RSS ${(result.peakRssBytes / 2 ** 20).toFixed(0)} MiB` +
            (proxy ? `, ${proxy.counters().requests} requests through ${proxy.profile.name}` : ''),
        );
      } finally {
        await proxy?.close();
        await firehose?.close();
      }
    }
  } finally {
    if (!opts.socrata) await socrata.close();
  }
  return results;
}

export { BASELINE_PAGE_SIZE };
