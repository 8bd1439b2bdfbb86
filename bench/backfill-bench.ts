/**
 * Backfill through a source shaped like the measured portal (issue #23): data.sfgov.org without a
 * token answered ~1.4 s to the first byte and ~2.4 MB/s per request (2026-02), on a link many
 * times faster. One stream, however well written, is bounded by one request's pace; the
 * comparison is with that bound itself (the limit: one request for every row, downloaded and
 * nothing else), side by side in one run:
 *   - the single-stream limit, one request for all rows through the profile;
 *   - ours with one stream (Firehose, as an incremental run delivers);
 *   - ours with 4 and with 8 parallel streams (direct raw objects, the default for a backfill);
 *   - ours with 4 streams while the local Firehose enforces a 1 MiB/s quota (most regions' default).
 * Every "ours" case must deliver every row, or the bench fails: a fast wrong answer is no answer.
 */
import path from 'node:path';
import type { DatasetConfig } from '../runtime/dataset-config';
import { localStreamName, startLocalFirehose } from '../local/firehose-server';
import { regionQuota, type FirehoseQuota } from '../local/firehose-quota';
import { localFetcherEnv } from '../local/pipeline';
import { startSourceProfileProxy, type SourceProfile } from '../local/source-profile';
import { runContender, type ContenderReport } from './contenders';
import { startBenchSource, warmUp } from './fetch-bench';

export const PORTAL_PROFILE: SourceProfile = {
  name: 'portal: 1.4 s + 2.4 MB/s a request, 100 MB/s link',
  latencyMs: 1_400,
  perRequestBytesPerSecond: 2.4e6,
  bandwidthBytesPerSecond: 100e6,
};

export const BACKFILL_ROWS = 200_000;
export const BACKFILL_PEAK_RSS_MIB = 384;
const MIB = 1024 * 1024;

export interface BackfillCase {
  label: string;
  kind: 'ours' | 'limit';
  /** Ours: STREAMS for the run (1: one stream through Firehose). */
  streams?: number;
  /** Ours: the local Firehose's per-stream quota (absent: none). */
  firehoseQuota?: FirehoseQuota;
}

export const BACKFILL_CASES: BackfillCase[] = [
  { label: 'single-stream limit (one request)', kind: 'limit' },
  { label: 'ours, 1 stream (Firehose)', kind: 'ours', streams: 1 },
  { label: 'ours, 4 streams', kind: 'ours', streams: 4 },
  { label: 'ours, 8 streams', kind: 'ours', streams: 8 },
  // eu-central-1's default Direct PUT quota: 1 MiB/s, 1,000 requests/s, 100,000 records/s.
  { label: 'ours, 4 streams, Firehose quota 1 MiB/s', kind: 'ours', streams: 4, firehoseQuota: regionQuota('eu-central-1') },
];

export interface BackfillResult extends BackfillCase {
  seconds: number;
  rows: number;
  rowsPerSecond: number;
  cpuSeconds: number;
  peakRssBytes: number;
  sourceRequests: number;
  /** Rows per second ÷ the limit's, measured in the same run. */
  toLimit: number;
}

export interface BackfillOptions {
  dataset: DatasetConfig;
  rows: number;
  seed: number;
  workDir: string;
  worker?: string;
  log: (line: string) => void;
  cases?: BackfillCase[];
  profile?: SourceProfile;
  /** Rows from which a run is parallel (default the dataset's 20,000; a smoke test at fewer rows lowers it). */
  parallelMinRows?: number;
}

export async function runBackfillBench(opts: BackfillOptions): Promise<BackfillResult[]> {
  const { dataset, log } = opts;
  const profile = opts.profile ?? PORTAL_PROFILE;
  const socrata = await startBenchSource(dataset, opts.rows, opts.seed, path.join(opts.workDir, 'backfill-source'));
  const reports: { c: BackfillCase; report: ContenderReport; sourceRequests: number }[] = [];
  try {
    await warmUp(socrata);
    for (const c of opts.cases ?? BACKFILL_CASES) {
      const dataDir = path.join(opts.workDir, `backfill-${reports.length}`);
      const firehose = c.kind === 'limit' ? undefined : await startLocalFirehose({ dataDir, datasets: [dataset], ...(c.firehoseQuota ? { quota: c.firehoseQuota } : {}) });
      const proxy = await startSourceProfileProxy(socrata.url, profile);
      try {
        const env =
          c.kind === 'ours'
            ? {
                ...localFetcherEnv({ dataset, datasetId: socrata.datasetId, baseUrl: proxy.url, firehoseUrl: firehose!.url, rawDir: path.join(dataDir, 'buckets', 'raw'), marginMs: 0 }),
                STREAMS: String(c.streams ?? 1),
                PARALLEL_MIN_ROWS: String(opts.parallelMinRows ?? dataset.fetch.parallelMinRows),
              }
            : {};
        const report = await runContender(
          {
            kind: c.kind,
            sourceUrl: proxy.url,
            datasetId: socrata.datasetId,
            // The limit reads every row in one request: the bound of any one stream.
            pageSize: c.kind === 'limit' ? opts.rows + 1 : dataset.fetch.pageSize,
            runId: `backfill-${reports.length}`,
            invocationBudgetMs: 900_000,
            ...(firehose ? { firehoseUrl: firehose.url, streamName: localStreamName(dataset) } : {}),
          },
          env,
          opts.worker,
        );
        if (report.rows !== opts.rows) throw new Error(`backfill bench: ${c.label} delivered ${report.rows} of ${opts.rows} rows`);
        reports.push({ c, report, sourceRequests: proxy.counters().requests });
        log(`  ${c.label.padEnd(42)} ${report.seconds.toFixed(1).padStart(6)} s, ${Math.round(report.rows / report.seconds).toLocaleString('en-US')} rows/s, ${proxy.counters().requests} requests`);
      } finally {
        await proxy.close();
        await firehose?.close();
      }
    }
  } finally {
    await socrata.close();
  }
  const limit = reports.find((r) => r.c.kind === 'limit');
  const limitRate = limit ? limit.report.rows / limit.report.seconds : Number.NaN;
  return reports.map(({ c, report, sourceRequests }) => ({
    ...c,
    seconds: report.seconds,
    rows: report.rows,
    rowsPerSecond: report.rows / report.seconds,
    cpuSeconds: report.cpuSeconds,
    peakRssBytes: report.peakRssBytes,
    sourceRequests,
    toLimit: report.rows / report.seconds / limitRate,
  }));
}

export interface BackfillTarget {
  name: string;
  target: string;
  measured: string;
  pass: boolean;
}

/** The backfill targets, as ratios to the limit measured in the same run. */
export function backfillTargets(results: readonly BackfillResult[]): BackfillTarget[] {
  const find = (streams: number, quota: boolean): BackfillResult | undefined =>
    results.find((r) => r.kind === 'ours' && r.streams === streams && !!r.firehoseQuota === quota);
  const target = (name: string, r: BackfillResult | undefined, want: number): BackfillTarget => ({
    name,
    target: `≥ ${want}`,
    measured: r ? r.toLimit.toFixed(2) : 'not measured',
    pass: !!r && r.toLimit >= want,
  });
  const eight = find(8, false);
  return [
    target('Backfill 4 streams ÷ single-stream limit', find(4, false), 3),
    target('Backfill 8 streams ÷ single-stream limit', find(8, false), 5),
    target('Backfill 4 streams ÷ limit, Firehose quota 1 MiB/s', find(4, true), 3),
    {
      // Dev's fetcher has 512 MiB (lib/config/dev.ts): 8 streams must fit with a quarter to spare.
      name: 'Peak RSS, backfill with 8 streams',
      target: `≤ ${BACKFILL_PEAK_RSS_MIB} MiB (¾ of dev's 512 MiB fetcher)`,
      measured: eight ? `${(eight.peakRssBytes / MIB).toFixed(0)} MiB` : 'not measured',
      pass: !!eight && eight.peakRssBytes <= BACKFILL_PEAK_RSS_MIB * MIB,
    },
  ];
}

export function backfillTable(results: readonly BackfillResult[], profile: SourceProfile = PORTAL_PROFILE): string[] {
  const out = [`Backfill of ${results[0]?.rows.toLocaleString('en-US') ?? '?'} rows through the ${profile.name} profile`, '', '| case | seconds | rows/s | ÷ limit | CPU s | peak RSS | requests |', '|---|---:|---:|---:|---:|---:|---:|'];
  for (const r of results) {
    out.push(
      `| ${r.label} | ${r.seconds.toFixed(1)} | ${Math.round(r.rowsPerSecond).toLocaleString('en-US')} | ${r.toLimit.toFixed(2)} | ${r.cpuSeconds.toFixed(1)} | ${(r.peakRssBytes / MIB).toFixed(0)} MiB | ${r.sourceRequests} |`,
    );
  }
  return out;
}

/** `tsx bench/backfill-bench.ts [rows]`: this part of `npm run bench` alone. */
async function main(): Promise<void> {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { loadDatasetFile } = await import('../runtime/dataset-config');
  const { bundleWorker } = await import('./contenders');
  const rows = Number(process.argv[2] ?? BACKFILL_ROWS);
  const workDir = mkdtempSync(path.join(tmpdir(), 'backfill-bench-'));
  try {
    const dataset = loadDatasetFile(path.join(import.meta.dirname, '..', 'datasets', 'sf-fire-incidents.json'));
    const worker = await bundleWorker(path.join(workDir, 'worker'));
    const results = await runBackfillBench({ dataset, rows, seed: 1, workDir, worker, log: (l) => console.log(l) });
    console.log(['', ...backfillTable(results), '', ...backfillTargets(results).map((t) => `${t.pass ? 'PASS' : 'MISS'} ${t.name}: ${t.measured} (${t.target})`)].join('\n'));
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) await main();
