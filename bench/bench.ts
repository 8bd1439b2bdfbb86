/**
 * `npm run bench -- [--rows N] [--json] [--cost] [--seed S] [--keep] [--no-profiles] [--no-backfill] [--no-files]`: speed,
 * memory and AWS cost of this pipeline, measured side by side against the earlier design and the
 * limit, on the local endpoints over loopback and through source profiles (latency + bandwidth,
 * local/source-profile.ts). Prints tables and the targets with PASS/MISS and writes
 * bench/results.json. See docs/bench.md for the method and what each number means.
 */
import { cpus, freemem, totalmem } from 'node:os';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { loadDatasetFile, MAX_PAGE_SIZE, type DatasetConfig } from '../runtime/dataset-config';
import { errorCategory, exitCodeFor, UsageError } from '../runtime/pipeline-error';
import { bundleWorker } from './contenders';
import { compareDesigns, DEFAULT_INPUTS, loadPrices, renderCostTable, type CostComparison, type CostInputs } from './cost';
import { BENCH_PROFILES, isLoopback, type SourceProfile } from '../local/source-profile';
import { runFetchBench, startBenchSource, warmUp, type ContenderResult } from './fetch-bench';
import { FULL_SIZE_ROWS, renderFullSize, runFullSizeBench } from './full-size-bench';
import { measureQueryBytes, type MartQueryBytes } from './query-bytes';
import { runTransformBench, type TransformBenchResult } from './transform-bench';
import { BACKFILL_ROWS, backfillTable, backfillTargets, PORTAL_PROFILE, runBackfillBench, type BackfillResult } from './backfill-bench';
import { fileReaderTable, fileReaderTargets, runFileReaderBench, type FileReaderResult } from './file-reader-bench';

export interface BenchOptions {
  rows: number;
  seed: number;
  /** Also price a month with the measured inputs (bench/cost.ts). */
  cost: boolean;
  /** Where contenders write; default a fresh temporary directory, removed at the end unless `keep`. */
  workDir?: string;
  keep?: boolean;
  /** Write the results here (default bench/results.json); null: do not write. */
  resultsPath?: string | null;
  log?: (line: string) => void;
  /** Source profiles of the profile table (default BENCH_PROFILES; empty: no profile table). */
  profiles?: SourceProfile[];
  /** Also each profile with latency again with gzipped bodies (`--gzip`; informational, no targets). */
  gzip?: boolean;
  /** The backfill table through the portal profile (default true; `--no-backfill` skips it). */
  backfill?: boolean;
  /** Rows of the backfill table (default BACKFILL_ROWS, 200,000). */
  backfillRows?: number;
  /** The backfill table's source profile (default PORTAL_PROFILE) and parallel threshold: a quick smoke run lowers both. */
  backfillProfile?: SourceProfile;
  backfillParallelMinRows?: number;
  /** The file-reader table (default true; `--no-files` skips it). */
  files?: boolean;
  /** Its two file sizes in bytes (default 100 MB and 1 GB); a smoke run passes small ones. */
  fileReaderBytes?: [number, number];
}

/** The profiles with latency, again with gzipped bodies (Socrata gzips when asked; ours asks through axios). */
export const gzipProfiles = (profiles: SourceProfile[]): SourceProfile[] =>
  profiles.filter((p) => !isLoopback(p)).map((p) => ({ ...p, name: `${p.name}, gzip`, gzip: true }));

/** The three contenders through one source profile, at N rows. */
export interface ProfileResult {
  profile: SourceProfile;
  ours: ContenderResult;
  baseline: ContenderResult;
  /** One request for all rows, through the same profile. */
  limit: ContenderResult;
  oursToBaselineRowsPerSecond: number;
  oursToLimitRowsPerSecond: number;
  /** What the Lambda bills: our fetcher's CPU-seconds (user + system) per 100,000 rows delivered. */
  oursCpuSecondsPer100kRows: number;
}

/**
 * Our fetcher's CPU-seconds per 100,000 rows over loopback before streaming (2,000-row pages,
 * whole page parsed): the median of three runs at 100,000 rows (3.44, 3.52, 3.72) on the machine
 * of docs/bench.md, 2026-11-23, under load; issue 12 wants no worse. The figure varies ~10% from
 * run to run on a shared machine, hence the tolerance. Over loopback it is also what bounds our
 * rows/s (loopbackCpuTarget), which is why it replaced the loopback throughput ratios.
 */
export const OURS_CPU_SECONDS_PER_100K_BEFORE_STREAMING = 3.52;
export const CPU_TOLERANCE = 1.1;

// Its own module: the tables bench.ts gathers (file-reader-bench.ts) build targets too.
import type { Target } from './target';
export type { Target };

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  platform: string;
}

export interface BenchResults {
  startedAt: string;
  durationSeconds: number;
  rows: number;
  machine: MachineInfo;
  fetch: { ours: ContenderResult; baseline: ContenderResult; limit: ContenderResult };
  ratios: { oursToBaselineRowsPerSecond: number; oursToLimitRowsPerSecond: number };
  memoryScaling: {
    rowsN: number;
    rows4N: number;
    /** The dataset's page size, used at N and 4N. */
    pageSize: number;
    peakRssN: number;
    peakRss4N: number;
    ratio: number;
    ours4N: ContenderResult;
    /** Ours at 4N again with the largest page a dataset may ask for (MAX_PAGE_SIZE): memory must not follow the page. */
    maxPageSize: number;
    peakRss4NMaxPage: number;
    ours4NMaxPage: ContenderResult;
  };
  transform: TransformBenchResult;
  queryBytes: MartQueryBytes[];
  /** The profile table (empty with --no-profiles). */
  profiles: ProfileResult[];
  /** The backfill table (absent with --no-backfill) and the profile it ran through. */
  backfill?: BackfillResult[];
  backfillProfile?: SourceProfile;
  /** The file-reader table (absent with --no-files). */
  files?: FileReaderResult[];
  cost?: CostComparison;
  targets: Target[];
}

const MB = 1e6;

export function machineInfo(): MachineInfo {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    cpuModel = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    // Not Linux: os.cpus() already answered.
  }
  return {
    nproc: cpus().length,
    cpuModel,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** The targets, each with what was measured. */
export function evaluateTargets(r: Omit<BenchResults, 'targets' | 'durationSeconds'>): Target[] {
  const { ours, baseline } = r.fetch;
  const f = (n: number, d = 2): string => n.toFixed(d);
  const worstMart = r.queryBytes.reduce((a, b) => (b.reduction < a.reduction ? b : a));
  const m = r.memoryScaling;
  // No throughput ratio over loopback: there the limit downloads without parsing and the earlier
  // design pays nothing for its calls, so ours ÷ either measures CPU per row; loopbackCpuTarget says so directly.
  return [
    loopbackCpuTarget(ours),
    { name: `Peak RSS ours at N (${rowsAndPages(m.rowsN, m.pageSize)})`, target: '< 200 MB', measured: `${f(m.peakRssN / MB, 0)} MB`, pass: m.peakRssN < 200 * MB },
    { name: `Peak RSS ours at 4N (${rowsAndPages(m.rows4N, m.pageSize)})`, target: '< 200 MB', measured: `${f(m.peakRss4N / MB, 0)} MB`, pass: m.peakRss4N < 200 * MB },
    { name: `Peak RSS ours at 4N (${rowsAndPages(m.rows4N, m.maxPageSize)}, the largest allowed)`, target: '< 200 MB', measured: `${f(m.peakRss4NMaxPage / MB, 0)} MB`, pass: m.peakRss4NMaxPage < 200 * MB },
    { name: 'Peak RSS 4N ÷ N (flat)', target: '≤ 1.20', measured: f(r.memoryScaling.ratio), pass: r.memoryScaling.ratio <= 1.2 },
    { name: 'Billed Firehose bytes ÷ payload, ours', target: '≤ 1.01', measured: f(ours.billedPerPayloadByte ?? NaN, 4), pass: (ours.billedPerPayloadByte ?? Infinity) <= 1.01 },
    { name: 'Billed Firehose bytes ÷ payload, baseline', target: '≥ 2 (the problem)', measured: f(baseline.billedPerPayloadByte ?? NaN), pass: (baseline.billedPerPayloadByte ?? 0) >= 2 },
    { name: 'PutRecordBatch calls, ours', target: `≤ rows / 2,000 = ${Math.floor(ours.rows / 2000)}`, measured: String(ours.firehose?.putRecordBatchCalls), pass: (ours.firehose?.putRecordBatchCalls ?? Infinity) <= ours.rows / 2000 },
    { name: 'Transform ÷ plain COPY floor', target: '≤ 3', measured: f(r.transform.ratio), pass: r.transform.ratio <= 3 },
    { name: `Mart bytes, raw JSON ÷ Parquet (worst: ${worstMart.mart})`, target: '≥ 20', measured: f(worstMart.reduction, 1), pass: r.queryBytes.every((q) => q.reduction >= 20) },
    ...profileTargets(r.profiles),
    ...(r.backfill ? backfillTargets(r.backfill) : []),
    ...(r.files ? fileReaderTargets(r.files) : []),
  ];
}

/**
 * Over loopback the source and Firehose answer in microseconds, so what bounds our rows/s there is
 * our own CPU per row: at c CPU-seconds per 100,000 rows one core delivers at most 100,000 ÷ c
 * rows/s. The target is on that CPU (what the Lambda bills, too), and the ceiling it implies is shown.
 */
export function loopbackCpuTarget(ours: Pick<ContenderResult, 'cpuSeconds' | 'rows' | 'rowsPerSecond'>): Target {
  const cpu = (ours.cpuSeconds / ours.rows) * 100_000;
  const limit = OURS_CPU_SECONDS_PER_100K_BEFORE_STREAMING * CPU_TOLERANCE;
  const n = (x: number): string => Math.round(x).toLocaleString('en-US');
  return {
    name: 'CPU-s per 100k rows, ours over loopback (what bounds loopback rows/s: 100,000 ÷ this, per core)',
    target: `≤ ${limit.toFixed(2)} (before streaming ${OURS_CPU_SECONDS_PER_100K_BEFORE_STREAMING.toFixed(2)} + 10%)`,
    measured: `${cpu.toFixed(2)} (ceiling ${n(100_000 / cpu)} rows/s; ran at ${n(ours.rowsPerSecond)})`,
    pass: cpu <= limit,
  };
}

const rowsAndPages = (rows: number, pageSize: number): string => `${rows.toLocaleString('en-US')} rows, ${pageSize.toLocaleString('en-US')}-row pages`;

/** Issue 12's targets over the source profiles (none without a profile table). */
export function profileTargets(all: ProfileResult[]): Target[] {
  // The gzip profiles (--gzip) are measured for information: the targets are set without them.
  const profiles = all.filter((p) => !p.profile.gzip);
  if (!profiles.length) return [];
  const f = (n: number, d = 2): string => n.toFixed(d);
  const out: Target[] = [];
  for (const p of profiles) {
    if (p.profile.latencyMs >= 100) {
      out.push({ name: `Profile ${p.profile.name}: ours ÷ limit`, target: '≥ 0.8', measured: f(p.oursToLimitRowsPerSecond), pass: p.oursToLimitRowsPerSecond >= 0.8 });
    }
    // Not 2x at 0.5 s any more: no fetcher beats one request for all rows over the same link, so
    // ours ÷ earlier ≤ limit ÷ earlier, measured 1.33-1.69 there; the backfill targets take its place.
    out.push({ name: `Profile ${p.profile.name}: ours ÷ baseline`, target: '≥ 1', measured: f(p.oursToBaselineRowsPerSecond), pass: p.oursToBaselineRowsPerSecond >= 1 });
  }
  const worstRss = profiles.reduce((a, b) => (b.ours.peakRssBytes > a.ours.peakRssBytes ? b : a));
  out.push({
    name: `Peak RSS ours, every profile (worst: ${worstRss.profile.name})`,
    target: '< 200 MB',
    measured: `${f(worstRss.ours.peakRssBytes / MB, 0)} MB`,
    pass: worstRss.ours.peakRssBytes < 200 * MB,
  });
  // CPU per row is a target over loopback only (evaluateTargets): through a profile the body
  // trickles in and the same rows cost more CPU (docs/bench.md, "Where CPU per row goes").
  return out;
}

function profileResult(profile: SourceProfile, ours: ContenderResult, baseline: ContenderResult, limit: ContenderResult): ProfileResult {
  return {
    profile,
    ours,
    baseline,
    limit,
    oursToBaselineRowsPerSecond: ours.rowsPerSecond / baseline.rowsPerSecond,
    oursToLimitRowsPerSecond: ours.rowsPerSecond / limit.rowsPerSecond,
    oursCpuSecondsPer100kRows: (ours.cpuSeconds / ours.rows) * 100_000,
  };
}

/** Cost-model inputs from what the bench measured (see docs/bench.md for each choice). */
export function measuredCostInputs(r: Pick<BenchResults, 'fetch' | 'transform' | 'queryBytes'>): Partial<CostInputs> {
  const { ours, baseline, limit } = r.fetch;
  const oursFh = ours.firehose!;
  const meanMartBytes = r.queryBytes.reduce((a, q) => a + q.parquetBytes, 0) / r.queryBytes.length;
  return {
    // Bytes per row as the source serves it (with Socrata's system fields, which our fetcher asks for).
    rowBytes: Math.round(limit.payloadBytes / limit.rows),
    // What our raw row adds over the row as served: ingestion metadata and coordinates.
    metadataBytesPerRow: Math.max(0, Math.round((ours.payloadBytes - baseline.payloadBytes) / ours.rows)),
    packedRecordBytes: Math.round(oursFh.bytesAccepted / oursFh.recordsAccepted),
    gzipRatio: oursFh.objectBytesWritten / oursFh.bytesAccepted,
    parquetToJsonRatio: r.transform.curatedParquetBytes / oursFh.bytesAccepted,
    // Loopback speed says nothing about an internet source, so the absolute stays the model's
    // default; the earlier design gets the measured relative speed.
    earlierFetchRowsPerSecond: Math.round(DEFAULT_INPUTS.fetchRowsPerSecond * (baseline.rowsPerSecond / ours.rowsPerSecond)),
    curatedQueryScanFraction: meanMartBytes / r.transform.curatedParquetBytes,
  };
}

export async function runBench(opts: BenchOptions): Promise<BenchResults> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const dataset: DatasetConfig = loadDatasetFile(path.join(import.meta.dirname, '..', 'datasets', 'sf-fire-incidents.json'));
  const workDir = opts.workDir ?? (await mkdtemp(path.join(tmpdir(), 'socrata-bench-')));
  const N = opts.rows;
  try {
    log(`bench: ${N.toLocaleString('en-US')} rows, work directory ${workDir}, ${Math.round(freemem() / 2 ** 20)} MiB free`);
    const worker = await bundleWorker(path.join(workDir, 'worker'));

    log(`fetch → deliver at N = ${N.toLocaleString('en-US')}`);
    const generating = performance.now();
    // One server at N for the loopback run and every profile: generating rows is not what is measured.
    const socrata = await startBenchSource(dataset, N, opts.seed, path.join(workDir, 'source-n'));
    log(`  generated ${N.toLocaleString('en-US')} rows in ${((performance.now() - generating) / 1000).toFixed(1)} s`);
    const profiles: ProfileResult[] = [];
    let atN: Record<string, ContenderResult>;
    try {
      await warmUp(socrata);
      const common = { dataset, rows: N, seed: opts.seed, workDir, worker, log, socrata };
      atN = await runFetchBench({ ...common, contenders: ['limit', 'ours', 'baseline'], label: 'n' });
      const profileList = [...(opts.profiles ?? BENCH_PROFILES), ...(opts.gzip ? gzipProfiles(opts.profiles ?? BENCH_PROFILES) : [])];
      for (const [i, profile] of profileList.entries()) {
        log(`source profile ${profile.name}`);
        // The limit here is ONE request for all rows (issue 12), through the same profile.
        const limitPageSize = N + 1;
        if (isLoopback(profile)) {
          // Ours and the baseline over loopback are the run above; only the one-request limit is new.
          const run = await runFetchBench({ ...common, contenders: ['limit'], label: `profile-${i}`, limitPageSize });
          profiles.push(profileResult(profile, atN.ours!, atN.baseline!, run.limit!));
          continue;
        }
        const run = await runFetchBench({ ...common, contenders: ['limit', 'ours', 'baseline'], label: `profile-${i}`, profile, limitPageSize });
        profiles.push(profileResult(profile, run.ours!, run.baseline!, run.limit!));
        for (const c of [run.ours!, run.baseline!]) await rm(c.dataDir!, { recursive: true, force: true });
      }
    } finally {
      await socrata.close();
    }
    log(`memory scaling: ours at 4N = ${(4 * N).toLocaleString('en-US')}, with ${dataset.fetch.pageSize.toLocaleString('en-US')}-row pages and with ${MAX_PAGE_SIZE.toLocaleString('en-US')}-row pages`);
    const socrata4N = await startBenchSource(dataset, 4 * N, opts.seed, path.join(workDir, 'source-4n'));
    let at4N: Record<string, ContenderResult>;
    let at4NMaxPage: Record<string, ContenderResult>;
    try {
      await warmUp(socrata4N);
      const common4N = { rows: 4 * N, seed: opts.seed, workDir, contenders: ['ours' as const], worker, log, socrata: socrata4N };
      at4N = await runFetchBench({ ...common4N, dataset, label: '4n' });
      await rm(at4N.ours!.dataDir!, { recursive: true, force: true });
      const maxPages: DatasetConfig = { ...dataset, fetch: { ...dataset.fetch, pageSize: MAX_PAGE_SIZE } };
      at4NMaxPage = await runFetchBench({ ...common4N, dataset: maxPages, label: '4n-max-page' });
      await rm(at4NMaxPage.ours!.dataDir!, { recursive: true, force: true });
    } finally {
      await socrata4N.close();
    }
    const fetch = { ours: atN.ours!, baseline: atN.baseline!, limit: atN.limit! };

    let backfill: BackfillResult[] | undefined;
    if (opts.backfill ?? true) {
      const rows = opts.backfillRows ?? BACKFILL_ROWS;
      const profile = opts.backfillProfile ?? PORTAL_PROFILE;
      log(`backfill of ${rows.toLocaleString('en-US')} rows through ${profile.name}`);
      backfill = await runBackfillBench({
        dataset,
        rows,
        seed: opts.seed,
        workDir: path.join(workDir, 'backfill'),
        worker,
        log,
        profile,
        ...(opts.backfillParallelMinRows ? { parallelMinRows: opts.backfillParallelMinRows } : {}),
      });
    }

    let files: FileReaderResult[] | undefined;
    if (opts.files ?? true) files = await runFileReaderBench({ log, ...(opts.fileReaderBytes ? { sizes: opts.fileReaderBytes } : {}) });

    log('transform: runTransform vs plain COPY floor');
    const transform = await runTransformBench({ dataset, dataDir: fetch.ours.dataDir!, log });
    log('query cost: bytes read per mart');
    const queryBytes = await measureQueryBytes({ dataset, curatedDir: transform.curatedDir, rawGzipBytes: transform.rawGzipBytes });

    const partial: Omit<BenchResults, 'targets' | 'durationSeconds'> = {
      startedAt,
      rows: N,
      machine: machineInfo(),
      fetch,
      ratios: {
        oursToBaselineRowsPerSecond: fetch.ours.rowsPerSecond / fetch.baseline.rowsPerSecond,
        oursToLimitRowsPerSecond: fetch.ours.rowsPerSecond / fetch.limit.rowsPerSecond,
      },
      memoryScaling: {
        rowsN: N,
        rows4N: 4 * N,
        pageSize: dataset.fetch.pageSize,
        peakRssN: fetch.ours.peakRssBytes,
        peakRss4N: at4N.ours!.peakRssBytes,
        ratio: at4N.ours!.peakRssBytes / fetch.ours.peakRssBytes,
        ours4N: at4N.ours!,
        maxPageSize: MAX_PAGE_SIZE,
        peakRss4NMaxPage: at4NMaxPage.ours!.peakRssBytes,
        ours4NMaxPage: at4NMaxPage.ours!,
      },
      transform,
      queryBytes,
      profiles,
      ...(backfill ? { backfill, backfillProfile: opts.backfillProfile ?? PORTAL_PROFILE } : {}),
      ...(files ? { files } : {}),
    };
    if (opts.cost) partial.cost = compareDesigns({ ...DEFAULT_INPUTS, ...measuredCostInputs(partial) }, loadPrices());
    const results: BenchResults = { ...partial, targets: evaluateTargets(partial), durationSeconds: (performance.now() - t0) / 1000 };
    const resultsPath = opts.resultsPath === undefined ? path.join(import.meta.dirname, 'results.json') : opts.resultsPath;
    if (resultsPath) await writeFile(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
    return results;
  } finally {
    if (!opts.keep) await rm(workDir, { recursive: true, force: true });
  }
}

const n0 = (n: number): string => Math.round(n).toLocaleString('en-US');
const mib = (b: number): string => `${(b / MB).toFixed(0)} MB`;

/** The results as Markdown tables (docs/bench.md carries one). */
export function renderResults(r: BenchResults): string {
  const m = r.machine;
  const out: string[] = [
    `${n0(r.rows)} rows; ${m.nproc} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}; ${r.startedAt}; bench took ${r.durationSeconds.toFixed(0)} s.`,
    '',
    '| fetch → deliver | rows | rows/s | MB/s | peak RSS | Firehose records | PutRecordBatch calls | billed ÷ payload bytes |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const names = { ours: 'this project', baseline: 'earlier design', limit: 'the limit (download only)' } as const;
  for (const k of ['ours', 'baseline', 'limit'] as const) {
    const c = r.fetch[k];
    out.push(
      `| ${names[k]} | ${n0(c.rows)} | ${n0(c.rowsPerSecond)} | ${c.mbPerSecond.toFixed(1)} | ${mib(c.peakRssBytes)} | ` +
        `${c.firehose ? n0(c.firehose.recordsAccepted) : '–'} | ${c.firehose ? n0(c.firehose.putRecordBatchCalls) : '–'} | ` +
        `${c.billedPerPayloadByte !== undefined ? c.billedPerPayloadByte.toFixed(4) : '–'} |`,
    );
  }
  out.push(
    '',
    `Ratios (rows/s): ours ÷ baseline ${r.ratios.oursToBaselineRowsPerSecond.toFixed(2)}, ours ÷ limit ${r.ratios.oursToLimitRowsPerSecond.toFixed(2)}. ` +
      `Memory: ours peaks at ${mib(r.memoryScaling.peakRssN)} at ${n0(r.memoryScaling.rowsN)} rows and ${mib(r.memoryScaling.peakRss4N)} at ${n0(r.memoryScaling.rows4N)} ` +
      `(${r.memoryScaling.ratio.toFixed(2)}×; ${n0(r.memoryScaling.pageSize)}-row pages; idle after imports ${mib(r.fetch.ours.idleRssBytes)}), ` +
      `and ${mib(r.memoryScaling.peakRss4NMaxPage)} at ${n0(r.memoryScaling.rows4N)} rows with ${n0(r.memoryScaling.maxPageSize)}-row pages.`,
    '',
    `Transform: ${r.transform.transformSeconds.toFixed(2)} s for ${n0(r.transform.rowsRead)} raw rows vs plain COPY floor ${r.transform.copyFloorSeconds.toFixed(2)} s ` +
      `(${r.transform.ratio.toFixed(2)}×); curated Parquet ${mib(r.transform.curatedParquetBytes)} from ${mib(r.transform.rawGzipBytes)} of gzipped raw JSON.`,
    'athena' in r.transform && 'transformSeconds' in r.transform.athena
      ? `Side by side (informational): the deployed engine, AthenaEngine on a local Trino 476, ${r.transform.athena.transformSeconds.toFixed(2)} s for the same objects ` +
        `(${(r.transform.athena.transformSeconds / r.transform.transformSeconds).toFixed(1)}× DuckDB; Trino start-up ${r.transform.athena.trinoStartSeconds.toFixed(1)} s not counted); ` +
        `curated rows and mart row counts ${r.transform.athena.agrees ? 'equal' : 'DIFFER'}.`
      : `Side by side: the Athena engine did not run (${'athena' in r.transform && 'skipped' in r.transform.athena ? r.transform.athena.skipped : 'no result'}).`,
    '',
    '| mart query | columns read | bytes on Parquet | bytes on raw gzipped JSON | raw ÷ Parquet |',
    '|---|---|---:|---:|---:|',
  );
  for (const q of r.queryBytes) {
    out.push(`| ${q.mart} | ${q.columns.join(', ')} | ${n0(q.parquetBytes)} | ${n0(q.rawJsonGzipBytes)} | ${q.reduction.toFixed(1)} |`);
  }
  if (r.profiles.length) out.push('', renderProfileTable(r.profiles));
  if (r.backfill?.length) out.push('', ...backfillTable(r.backfill, r.backfillProfile));
  if (r.files?.length) out.push('', ...fileReaderTable(r.files));
  out.push('', '| target | wanted | measured | result |', '|---|---|---|---|');
  for (const t of r.targets) out.push(`| ${t.name} | ${t.target} | ${t.measured} | ${t.pass ? 'PASS' : '**MISS**'} |`);
  if (r.cost) out.push('', renderCostTable(r.cost));
  return out.join('\n');
}

/** The source-profile table: the three contenders through each profile, at N rows. */
export function renderProfileTable(profiles: ProfileResult[]): string {
  const out = [
    '| source profile | ours rows/s | earlier design rows/s | the limit (one request) rows/s | ours ÷ earlier | ours ÷ limit | peak RSS ours / earlier / limit | ours CPU-s per 100k rows |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const p of profiles) {
    out.push(
      `| ${p.profile.name} | ${n0(p.ours.rowsPerSecond)} | ${n0(p.baseline.rowsPerSecond)} | ${n0(p.limit.rowsPerSecond)} | ` +
        `${p.oursToBaselineRowsPerSecond.toFixed(2)} | ${p.oursToLimitRowsPerSecond.toFixed(2)} | ` +
        `${mib(p.ours.peakRssBytes)} / ${mib(p.baseline.peakRssBytes)} / ${mib(p.limit.peakRssBytes)} | ${p.oursCpuSecondsPer100kRows.toFixed(2)} |`,
    );
  }
  return out.join('\n');
}

export const USAGE = `usage: npm run bench -- [options]

  --rows N        rows at N (default 100000); the memory run uses 4N
  --seed S        seed of the generated rows (default 1)
  --profiles      the source-profile table (the default): loopback, 0.1 s, 0.5 s, 2 s + 10 MB/s
  --no-profiles   skip the source-profile table (a quicker run)
  --no-backfill   skip the backfill table (200,000 rows through the portal profile: 1 stream,
                  4 and 8 parallel streams, a 1 MiB/s Firehose quota; ~5 minutes)
  --no-files      skip the file-reader table (a generated CSV of 100 MB and 1 GB, plain
                  and gzipped, through readRecords; ~2 minutes)
  --gzip          also each profile with latency with gzipped bodies (informational rows)
  --cost          also price a month with the measured inputs (bench/cost.ts)
  --json          the full results as JSON on stdout instead of tables
  --keep          keep the temporary work directory
  --full-size     instead: the whole local pipeline once at --rows (default 650000),
                  wall time and peak RSS per phase and per process (docs/bench.md)
  --help          this text

Progress goes to stderr, tables to stdout, results to bench/results.json (docs/bench.md).`;

/** A bad command line (runtime/pipeline-error.ts's UsageError): main() prints it with the usage hint and exits 2. */
export { UsageError };

export interface BenchArgs {
  rows: number;
  seed: number;
  json: boolean;
  cost: boolean;
  keep: boolean;
  profiles: boolean;
  backfill: boolean;
  files: boolean;
  gzip: boolean;
  help: boolean;
  /** The whole-pipeline run at real size (bench/full-size-bench.ts) instead of the fetch/transform bench. */
  fullSize: boolean;
  /** --rows was given (the full-size mode's default differs). */
  rowsGiven: boolean;
}

export function parseBenchArgs(argv: string[]): BenchArgs {
  const o: BenchArgs = { rows: 100_000, seed: 1, json: false, cost: false, keep: false, profiles: true, backfill: true, files: true, gzip: false, help: false, fullSize: false, rowsGiven: false };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.includes('=') ? [argv[i]!.slice(0, argv[i]!.indexOf('=')), argv[i]!.slice(argv[i]!.indexOf('=') + 1)] : [argv[i]!, undefined];
    if (flag === '--json') o.json = true;
    else if (flag === '--cost') o.cost = true;
    else if (flag === '--keep') o.keep = true;
    else if (flag === '--profiles') o.profiles = true;
    else if (flag === '--no-profiles') o.profiles = false;
    else if (flag === '--no-backfill') o.backfill = false;
    else if (flag === '--no-files') o.files = false;
    else if (flag === '--gzip') o.gzip = true;
    else if (flag === '--help' || flag === '-h') o.help = true;
    else if (flag === '--full-size') o.fullSize = true;
    else if (flag === '--rows' || flag === '--seed') {
      const raw = inline ?? argv[++i];
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} needs a positive integer, got "${raw ?? ''}"`);
      if (flag === '--rows') {
        o.rows = n;
        o.rowsGiven = true;
      }
      else o.seed = n;
    } else throw new UsageError(`Unknown option "${argv[i]}". Options: --rows N (default 100000) --seed S --profiles --no-profiles --no-backfill --no-files --gzip --json --cost --keep --full-size --help`);
  }
  return o;
}

async function main(): Promise<void> {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(process.argv.slice(2));
  } catch (err) {
    if (errorCategory(err) !== 'usage') throw err;
    console.error(`bench: ${(err as Error).message} (npm run bench -- --help for usage)`);
    process.exitCode = exitCodeFor(err);
    return;
  }
  if (args.help) {
    console.log(USAGE);
    return;
  }
  if (args.fullSize) {
    try {
      const r = await runFullSizeBench({ rows: args.rowsGiven ? args.rows : FULL_SIZE_ROWS, seed: args.seed, keep: args.keep });
      console.log(args.json ? JSON.stringify(r, null, 2) : renderFullSize(r));
      const missed = r.targets.filter((t) => !t.pass);
      if (missed.length) console.error(`bench: ${missed.length} target(s) missed: ${missed.map((t) => t.name).join('; ')} (see docs/bench.md)`);
    } catch (err) {
      console.error(`bench --full-size: ${(err as Error).message}`);
      process.exitCode = 1;
    }
    return;
  }
  try {
    const results = await runBench({ rows: args.rows, seed: args.seed, cost: args.cost, keep: args.keep, gzip: args.gzip, backfill: args.backfill, files: args.files, ...(args.profiles ? {} : { profiles: [] }) });
    console.log(args.json ? JSON.stringify(results, null, 2) : renderResults(results));
    const missed = results.targets.filter((t) => !t.pass);
    if (missed.length) console.error(`bench: ${missed.length} target(s) missed: ${missed.map((t) => t.name).join('; ')} (see docs/bench.md)`);
  } catch (err) {
    console.error(`bench: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
