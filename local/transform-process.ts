/**
 * The crawl and the DuckDB transform of `npm run local`, in a child process of their own. The
 * fetch phase leaves the pipeline process holding ~600 MB at 650,000 rows (its heap, the local
 * Firehose's buffers), and DuckDB's bounded memory (containers/transform/src/duckdb-resources.ts)
 * on top of that would pass 1.5 GB; in a fresh process it does not (docs/bench.md, "The whole
 * pipeline at real size"). Same code, same options, same summary as calling them in process.
 *
 * A crash at a fault point (PIPELINE_CRASH_AT, runtime/fault-points.ts) is a crash of the whole
 * run, as it was with the transform in process: the parent repeats the child's line and kills
 * itself the same way. Any other death of the child fails the run with one line.
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import type { DatasetConfig } from '../runtime/dataset-config';
import type { CrawlResult } from '../containers/transform/src/catalog';
import type { RunSummary } from '../containers/transform/src/transform';

export interface CrawlOptions {
  dataset: DatasetConfig;
  rawDir: string;
  catalogPath: string;
}

export interface TransformOptions {
  dataset: DatasetConfig;
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
  | { type: 'close' };

export type TransformChildMessage =
  | { type: 'log'; line: string }
  | { type: 'result'; id: number; value?: unknown; error?: { name: string; message: string } };

export interface TransformProcess {
  readonly pid: number;
  crawl(opts: CrawlOptions): Promise<CrawlResult>;
  transform(opts: TransformOptions): Promise<RunSummary>;
  close(): Promise<void>;
}

const CHILD = path.join(import.meta.dirname, 'transform-child.ts');
const TSX = import.meta.resolve('tsx');
const FAULT_POINT_LINE = /^fault point \S+: SIGKILL$/m;

export function startTransformProcess(log: (line: string) => void): TransformProcess {
  const child = fork(CHILD, [], { execArgv: ['--import', TSX], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  const pid = child.pid!;
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8_000);
    if (process.env.DEBUG) process.stderr.write(d);
  });
  const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let closing = false;
  let failure: Error | undefined;
  child.on('message', (m: TransformChildMessage) => {
    if (m.type === 'log') log(m.line);
    else {
      const call = calls.get(m.id);
      calls.delete(m.id);
      if (m.error) {
        const err = new Error(m.error.message);
        err.name = m.error.name;
        call?.reject(err);
      } else call?.resolve(m.value);
    }
  });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      if (!closing) {
        const faultLine = FAULT_POINT_LINE.exec(stderr)?.[0];
        if (faultLine && signal === 'SIGKILL') {
          process.stderr.write(`${faultLine}\n`);
          process.kill(process.pid, 'SIGKILL');
        }
        const last = stderr.trim().split('\n').filter(Boolean).at(-1);
        const hint = signal === 'SIGKILL' ? ' (out of memory? DUCKDB_MEMORY_LIMIT bounds DuckDB, docs/transform.md)' : '';
        failure = new Error(`transform process (PID ${pid}) stopped: ${signal ? `killed by ${signal}${hint}` : `exit code ${code}`}${last ? `: ${last}` : ''}`);
        for (const c of calls.values()) c.reject(failure);
        calls.clear();
      }
      resolve();
    });
  });
  const call = <T>(msg: { type: 'crawl'; opts: CrawlOptions } | { type: 'transform'; opts: TransformOptions }): Promise<T> => {
    if (failure) return Promise.reject(failure);
    return new Promise<T>((resolve, reject) => {
      const id = nextId++;
      calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ ...msg, id } as TransformParentMessage);
    });
  };
  return {
    pid,
    crawl: (opts) => call<CrawlResult>({ type: 'crawl', opts }),
    transform: (opts) => call<RunSummary>({ type: 'transform', opts }),
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      closing = true;
      if (child.connected) child.send({ type: 'close' } satisfies TransformParentMessage);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
