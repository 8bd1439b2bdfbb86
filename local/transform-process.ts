/**
 * The crawl and the transform of `npm run local` (DuckDB, or the Athena engine on a local Trino the
 * child starts and stops), in a child process of their own. The
 * fetch phase leaves the pipeline process holding ~600 MB at 650,000 rows (its heap, the local
 * Firehose's buffers), and DuckDB's bounded memory (containers/transform/src/duckdb-resources.ts)
 * on top of that would pass 1.5 GB; in a fresh process it does not (docs/bench.md, "The whole
 * pipeline at real size"). Same code, same options, same summary as calling them in process.
 *
 * A crash at a fault point (PIPELINE_CRASH_AT, runtime/fault-points.ts) is a crash of the whole
 * run, as it was with the transform in process: the parent repeats the child's line and kills
 * itself the same way. Any other death of the child fails the run with one line.
 */
import path from 'node:path';
import type { DatasetConfig } from '../runtime/dataset-config';
import { errorFromReport, type ErrorReport } from '../runtime/pipeline-error';
import type { CrawlResult } from '../containers/transform/src/catalog';
import type { RunSummary } from '../containers/transform/src/transform';
import { forkChild } from './child-rpc';
import type { LocalEngineName } from './local-engine';

export interface CrawlOptions {
  dataset: DatasetConfig;
  rawDir: string;
  catalogPath: string;
}

export interface TransformOptions {
  dataset: DatasetConfig;
  /** duckdb, or athena: the production AthenaEngine on a local Trino (state under dataDir). */
  engine: LocalEngineName;
  dataDir: string;
  rawDir: string;
  curatedDir: string;
  runId: string;
  catalogPath: string;
  rebuild: boolean;
  undeclaredColumns: string[];
}

export type TransformParentMessage =
  | { type: 'crawl'; id: number; opts: CrawlOptions }
  | { type: 'transform'; id: number; opts: TransformOptions }
  | { type: 'query'; id: number; opts: { engine: LocalEngineName; dataDir: string; catalogPath: string; sql: string } }
  | { type: 'close' };

export type TransformChildMessage =
  | { type: 'log'; line: string }
  | { type: 'result'; id: number; value?: unknown; error?: ErrorReport };

export interface TransformProcess {
  readonly pid: number;
  crawl(opts: CrawlOptions): Promise<CrawlResult>;
  transform(opts: TransformOptions): Promise<RunSummary>;
  /** A query on the engine that built the data (the run's sample). */
  query(opts: { engine: LocalEngineName; dataDir: string; catalogPath: string; sql: string }): Promise<{ columns: string[]; rows: Record<string, unknown>[] }>;
  close(): Promise<void>;
}

const CHILD = path.join(import.meta.dirname, 'transform-child.ts');
const FAULT_POINT_LINE = /^fault point \S+: SIGKILL$/m;

/** `env`: the transform's own variables (DUCKDB_*) on top of this process's. */
export function startTransformProcess(log: (line: string) => void, env: Record<string, string> = {}): TransformProcess {
  const rpc = forkChild<TransformParentMessage>(CHILD, 8_000, env);
  const { child, pid } = rpc;
  child.on('message', (m: TransformChildMessage) => {
    if (m.type === 'log') log(m.line);
    else rpc.settle(m.id, m.error ? errorFromReport(m.error) : undefined, m.value);
  });
  void rpc.exited.then(({ code, signal }) => {
    if (rpc.closing) return;
    const stderr = rpc.stderrTail();
    const faultLine = FAULT_POINT_LINE.exec(stderr)?.[0];
    if (faultLine && signal === 'SIGKILL') {
      process.stderr.write(`${faultLine}\n`);
      process.kill(process.pid, 'SIGKILL');
    }
    const last = stderr.trim().split('\n').filter(Boolean).at(-1);
    const hint = signal === 'SIGKILL' ? ' (out of memory? DUCKDB_MEMORY_LIMIT bounds DuckDB, docs/transform.md)' : '';
    rpc.fail(new Error(`transform process (PID ${pid}) stopped: ${signal ? `killed by ${signal}${hint}` : `exit code ${code}`}${last ? `: ${last}` : ''}`));
  });
  return {
    pid,
    crawl: (opts) => rpc.call<CrawlResult>({ type: 'crawl', opts }),
    transform: (opts) => rpc.call<RunSummary>({ type: 'transform', opts }),
    query: (opts) => rpc.call({ type: 'query', opts }),
    close: () => rpc.close({ type: 'close' }),
  };
}
