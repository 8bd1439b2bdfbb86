/**
 * The file-reader table (issue #19): a generated CSV of 100 MB and of 1 GB, plain and gzipped,
 * read through readRecords (runtime/file-formats), each case in a fresh process so its peak RSS
 * is its own. Constant memory means the 1 GB peak stays where the 100 MB one is.
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { childReport } from './child-report';
import type { Target } from './target';
import type { FileReaderRunReport, FileReaderRunSpec } from './file-reader-run';

/** Decompressed CSV bytes of the two sizes (MB = 10^6 bytes, as elsewhere in the bench). */
export const FILE_READER_BYTES: [number, number] = [100e6, 1e9];
/** The larger file's peak RSS may exceed the smaller's by 10%, or by 20 MB, whichever is more. */
export const FLAT_RSS_RATIO = 1.1;
export const FLAT_RSS_SLACK_BYTES = 20e6;

export interface FileReaderResult extends FileReaderRunSpec, FileReaderRunReport {
  /** Wall clock: on a shared machine the CPU-seconds say more (rows per CPU-second in the table). */
  rowsPerSecond: number;
  /** Decompressed MB read per second. */
  mbPerSecond: number;
}

const RUNNER = path.join(import.meta.dirname, 'file-reader-run.ts');
const REPO_ROOT = path.join(import.meta.dirname, '..');

function runInChild(spec: FileReaderRunSpec): Promise<FileReaderRunReport> {
  const child = fork(RUNNER, [JSON.stringify(spec)], { cwd: REPO_ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  return childReport<FileReaderRunReport>(child, `file reader (${spec.bytes} bytes, ${spec.gzip ? 'gzip' : 'plain'})`);
}

export async function runFileReaderBench(opts: { sizes?: [number, number]; log: (line: string) => void }): Promise<FileReaderResult[]> {
  const out: FileReaderResult[] = [];
  for (const gzip of [false, true]) {
    for (const bytes of opts.sizes ?? FILE_READER_BYTES) {
      opts.log(`file reader: ${mb(bytes)} of CSV${gzip ? ', gzipped' : ''}`);
      const r = await runInChild({ bytes, gzip });
      out.push({ ...r, bytes: r.bytes, gzip, rowsPerSecond: r.rows / r.seconds, mbPerSecond: r.bytes / 1e6 / r.seconds });
    }
  }
  return out;
}

const mb = (b: number): string => (b >= 1e9 ? `${(b / 1e9).toFixed(b % 1e9 ? 1 : 0)} GB` : `${(b / 1e6).toFixed(0)} MB`);
const n0 = (n: number): string => Math.round(n).toLocaleString('en-US');

export function fileReaderTable(results: FileReaderResult[]): string[] {
  const out = [
    '| file reader (readRecords, CSV) | file | read | rows | rows/s | MB/s (text) | CPU-s | rows per CPU-s | peak RSS | idle RSS |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    out.push(
      `| ${r.gzip ? 'gzip' : 'plain'} | ${mb(r.bytes)} | ${mb(r.inputBytes)} | ${n0(r.rows)} | ${n0(r.rowsPerSecond)} | ${r.mbPerSecond.toFixed(1)} | ${r.cpuSeconds.toFixed(1)} | ${n0(r.rows / r.cpuSeconds)} | ` +
        `${(r.peakRssBytes / 1e6).toFixed(0)} MB | ${(r.idleRssBytes / 1e6).toFixed(0)} MB |`,
    );
  }
  return out;
}

/** Per compression: the larger file's peak RSS within 10% (or 20 MB) of the smaller's. */
export function fileReaderTargets(results: FileReaderResult[]): Target[] {
  const targets: Target[] = [];
  for (const gzip of [false, true]) {
    const runs = results.filter((r) => r.gzip === gzip).sort((a, b) => a.bytes - b.bytes);
    const small = runs[0];
    const large = runs.at(-1);
    const name = `Peak RSS, file reader ${gzip ? 'gzip' : 'plain'}: ${large ? mb(large.bytes) : '?'} vs ${small ? mb(small.bytes) : '?'} (flat)`;
    if (!small || !large || small === large) {
      targets.push({ name, target: 'both sizes measured', measured: 'not measured', pass: false });
      continue;
    }
    const limit = Math.max(small.peakRssBytes * FLAT_RSS_RATIO, small.peakRssBytes + FLAT_RSS_SLACK_BYTES);
    targets.push({
      name,
      target: `≤ ${(limit / 1e6).toFixed(0)} MB (the smaller's ${(small.peakRssBytes / 1e6).toFixed(0)} MB × ${FLAT_RSS_RATIO}, or + ${FLAT_RSS_SLACK_BYTES / 1e6} MB)`,
      measured: `${(large.peakRssBytes / 1e6).toFixed(0)} MB (${(large.peakRssBytes / small.peakRssBytes).toFixed(2)}×)`,
      pass: large.peakRssBytes <= limit,
    });
  }
  return targets;
}

/** `tsx bench/file-reader-bench.ts [smallBytes largeBytes]`: this part of `npm run bench` alone. */
async function main(): Promise<void> {
  const [small, large] = process.argv.slice(2).map(Number);
  const sizes: [number, number] | undefined = small && large ? [small, large] : undefined;
  const results = await runFileReaderBench({ log: (l) => console.error(l), ...(sizes ? { sizes } : {}) });
  console.log(['', ...fileReaderTable(results), '', ...fileReaderTargets(results).map((t) => `${t.pass ? 'PASS' : 'MISS'} ${t.name}: ${t.measured} (${t.target})`)].join('\n'));
}

if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) await main();
