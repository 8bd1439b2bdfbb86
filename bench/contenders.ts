/**
 * The three fetch → deliver contenders, each forked into its own process (bench/contender-worker.ts)
 * against servers that stay in this (the parent) process. On 2 cores that puts the contender on
 * one core and the Socrata + Firehose servers on the other, and keeps the servers' memory out of
 * the contender's peak RSS.
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { childReport } from './child-report';

export type ContenderKind = 'ours' | 'baseline' | 'limit';

export interface ContenderSpec {
  kind: ContenderKind;
  /** Socrata base URL (the local server's). */
  sourceUrl: string;
  datasetId: string;
  /** Rows per page (the limit; ours reads its dataset's page size, the baseline uses its own 50,000). */
  pageSize: number;
  runId: string;
  /** The limit only: ask for a gzipped body (`Accept-Encoding: gzip`) and gunzip it, as ours does through axios. */
  acceptGzip?: boolean;
  /** Time budget of one simulated Lambda invocation (ours loops on `done`). */
  invocationBudgetMs: number;
  /** Baseline only: the local Firehose endpoint and stream. */
  firehoseUrl?: string;
  streamName?: string;
}

/** What a contender counted itself, from the start of its work (after module loading). */
export interface FetchCounts {
  seconds: number;
  /** CPU time (user + system) of the contender's process over the same span as `seconds`. */
  cpuSeconds: number;
  /** The part of `cpuSeconds` spent in the kernel (socket reads and writes, page faults, fsync). */
  cpuSystemSeconds: number;
  /** RSS after imports, before the work: the floor every contender pays (Node, tsx, the SDK). */
  idleRssBytes: number;
  /** Rows delivered (the limit: rows downloaded). */
  rows: number;
  rowsFetched: number;
  pages: number;
  records: number;
  putCalls: number;
  /** Bytes sent to Firehose (the limit: bytes downloaded). */
  payloadBytes: number;
  invocations: number;
}

export interface ContenderReport extends FetchCounts {
  kind: ContenderKind;
  /** Peak RSS of the worker process itself (VmHWM; bench/peak-rss.ts explains why not maxRSS), in bytes. */
  peakRssBytes: number;
}

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
const WORKER_SOURCE = path.join(import.meta.dirname, 'contender-worker.ts');

/**
 * Bundle the worker the way the CDK bundles the fetcher Lambda (esbuild, ESM, minified, every
 * dependency inlined), so the measured process runs what Lambda runs, on plain `node`: no tsx
 * loader thread or on-the-fly compilation in its RSS. Code splitting keeps each contender's code
 * in its own chunk, loaded only by the contender that imports it.
 */
export async function bundleWorker(outDir: string): Promise<string> {
  const { build } = await import('esbuild');
  await build({
    entryPoints: { 'contender-worker': WORKER_SOURCE },
    outdir: outDir,
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: `node${process.versions.node.split('.')[0]}`,
    minify: true,
    outExtension: { '.js': '.mjs' },
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'error',
  });
  return path.join(outDir, 'contender-worker.mjs');
}

/**
 * Run one contender in a fresh child process; `env` is added to this process's environment.
 * `worker`: a bundle from bundleWorker(), or (default) the TypeScript source run through tsx.
 */
export function runContender(spec: ContenderSpec, env: Record<string, string> = {}, worker?: string): Promise<ContenderReport> {
  const child = fork(worker ?? WORKER_SOURCE, [JSON.stringify(spec)], {
    cwd: REPO_ROOT,
    execArgv: [...(worker ? [] : ['--import', 'tsx']), ...oursNodeFlags(spec.kind)],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  return childReport<ContenderReport>(child, `contender ${spec.kind}`);
}

/**
 * `BENCH_OURS_NODE_FLAGS`: Node flags for our contender's process only, e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` or `--trace-gc` (NODE_OPTIONS refuses --cpu-prof, and would
 * reach the servers' process too). docs/bench.md, "Where CPU per row goes", was found this way.
 */
function oursNodeFlags(kind: ContenderKind): string[] {
  const flags = process.env.BENCH_OURS_NODE_FLAGS?.trim();
  return kind === 'ours' && flags ? flags.split(/\s+/) : [];
}
