/**
 * `npm run status -- [--data-dir D] [--json]`: what a local data directory holds, per dataset: the
 * checkpoint, the remembered local source, and the last runs (status, when, rows, report), read
 * from the files the runs leave. Reads only; takes no lock, so it answers while a run is going.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadDatasetDir } from '../runtime/dataset-config';
import { LocalObjectStore } from '../runtime/object-store';
import { reportKey, runSummaryPrefix } from '../runtime/storage-layout';
import { CheckpointStore } from '../lambdas/fetcher/checkpoint-store';
import { showPosition } from '../lambdas/fetcher/sources/registry';
import { showSource } from '../lambdas/fetcher/sources/source-adapter';
import { commandArgs } from './cli-usage';
import { lockHolder } from './data-dir-lock';
import { builtBy } from './local-engine';
import type { SourceHistory } from './local-source-state';

const USAGE = `usage: npm run status -- [options]

What a local data directory holds, per dataset: the checkpoint, the remembered local source and
the last runs (status, start, rows fetched and in curated, report).

Options:
  --data-dir <dir>   the data directory (default .local-data)
  --runs <n>         runs listed per dataset, newest first (default 5)
  --json             one JSON object instead of text
  -h, --help         this text`;

const DATASETS_DIR = path.join(import.meta.dirname, '..', 'datasets');

export interface RunLine {
  runId: string;
  status: string;
  startedAt: string;
  error?: string;
  rowsFetched?: number;
  curatedRows?: number;
  failedErrorTests: string[];
  reportPath: string;
}

export interface DatasetStatus {
  dataset: string;
  /** Declared in datasets/ (a dataset run with --dataset-file is listed by what it left). */
  declared: boolean;
  /** `position` as the source adapter shows it (Socrata: its `:updated_at` and `:id`). */
  checkpoint?: { position: string; format: string; writtenAt: string; runId: string; source?: string };
  localSource?: { rows: number; seed: number; port?: number };
  runs: RunLine[];
  runCount: number;
}

export interface DataDirStatus {
  dataDir: string;
  exists: boolean;
  engine?: string;
  /** PID of the run holding the directory, when one does (stale: that process is gone; the next run takes the lock over). */
  lock?: { pid: number; stale: boolean };
  datasets: DatasetStatus[];
}

const names = async (dir: string, strip = ''): Promise<string[]> =>
  (await readdir(dir).catch(() => [] as string[])).filter((n) => !strip || n.endsWith(strip)).map((n) => (strip ? n.slice(0, -strip.length) : n));

async function datasetStatus(dataDir: string, name: string, declared: boolean, runsShown: number): Promise<DatasetStatus> {
  const raw = new LocalObjectStore(path.join(dataDir, 'buckets', 'raw'));
  const curated = new LocalObjectStore(path.join(dataDir, 'buckets', 'curated'));
  const stored = await new CheckpointStore(raw, name).read();
  const cp = stored?.checkpoint;
  const source = await readFile(path.join(dataDir, 'local-sources', `${name}.json`), 'utf8').then(
    (t) => JSON.parse(t) as SourceHistory,
    () => undefined,
  );
  const prefix = runSummaryPrefix({ name });
  const runs: RunLine[] = [];
  for (const key of (await curated.list(prefix)).filter((k) => k.endsWith('.json'))) {
    const obj = await curated.get(key);
    if (!obj) continue;
    const runId = key.slice(prefix.length, -'.json'.length);
    try {
      const s = JSON.parse(obj.body.toString('utf8')) as {
        status?: string;
        startedAt?: string;
        error?: string;
        curatedRows?: number;
        failedErrorTests?: string[];
        fetch?: { rows?: { counts?: { rowsFetched?: number } } };
      };
      const fetched = s.fetch?.rows?.counts?.rowsFetched;
      runs.push({
        runId,
        status: s.status ?? 'unknown',
        startedAt: s.startedAt ?? '',
        ...(s.error ? { error: s.error } : {}),
        ...(fetched !== undefined ? { rowsFetched: fetched } : {}),
        ...(s.status !== 'failed' && typeof s.curatedRows === 'number' ? { curatedRows: s.curatedRows } : {}),
        failedErrorTests: s.failedErrorTests ?? [],
        reportPath: `${curated.location}/${reportKey({ name }, runId)}`,
      });
    } catch {
      runs.push({ runId, status: 'unreadable summary', startedAt: '', failedErrorTests: [], reportPath: `${curated.location}/${key}` });
    }
  }
  runs.sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.runId.localeCompare(a.runId));
  return {
    dataset: name,
    declared,
    ...(cp
      ? { checkpoint: { position: showPosition(cp.format, cp.position), format: cp.format, writtenAt: cp.writtenAt, runId: cp.runId, ...(cp.source ? { source: showSource(cp.source) } : {}) } }
      : {}),
    ...(source ? { localSource: { rows: source.rows.at(-1) ?? 0, seed: source.seed, ...(source.port ? { port: source.port } : {}) } } : {}),
    runs: runs.slice(0, runsShown),
    runCount: runs.length,
  };
}

export async function readStatus(dataDir: string, runsShown = 5, datasetsDir = DATASETS_DIR): Promise<DataDirStatus> {
  const declared = loadDatasetDir(datasetsDir).map((d) => d.name);
  const exists = existsSync(dataDir);
  // Datasets this directory has state for, declared or not (a --dataset-file run).
  const seen = [
    ...(await names(path.join(dataDir, 'buckets', 'raw', 'checkpoints'), '.json')),
    ...(await names(path.join(dataDir, 'buckets', 'curated', 'curated', '_runs'))),
    ...(await names(path.join(dataDir, 'local-sources'), '.json')),
  ];
  const all = [...new Set([...declared, ...seen])].sort();
  const lock = await lockHolder(dataDir);
  const engine = exists ? builtBy(dataDir) : undefined;
  return {
    dataDir,
    exists,
    ...(engine ? { engine } : {}),
    ...(lock ? { lock } : {}),
    datasets: await Promise.all(all.map((n) => datasetStatus(dataDir, n, declared.includes(n), runsShown))),
  };
}

const fmt = (n: number | undefined): string => (n === undefined ? '–' : n.toLocaleString('en-US'));

export function statusLines(s: DataDirStatus): string[] {
  const out = [`Data directory ${s.dataDir}${s.exists ? '' : ' (does not exist yet: `npm run local` creates it)'}`];
  if (s.engine) out.push(`  engine     ${s.engine}`);
  if (s.lock) {
    out.push(
      s.lock.stale
        ? `  lock       left by PID ${s.lock.pid}, which is no longer running (the next run takes it over)`
        : `  in use     by the run with PID ${s.lock.pid}`,
    );
  }
  for (const d of s.datasets) {
    out.push('', `${d.dataset}${d.declared ? '' : ' (not in datasets/: run with --dataset-file)'}`);
    out.push(
      `  checkpoint ${d.checkpoint ? `${d.checkpoint.position} (run ${d.checkpoint.runId}${d.checkpoint.source ? `, source ${d.checkpoint.source}` : ''})` : '(none: the next run is a full load)'}`,
    );
    if (d.localSource) out.push(`  source     local, ${fmt(d.localSource.rows)} generated rows${d.localSource.port ? ` on port ${d.localSource.port}` : ''}`);
    if (!d.runs.length) {
      out.push('  runs       (none)');
      continue;
    }
    out.push(`  runs       ${d.runCount} (newest first${d.runCount > d.runs.length ? `, last ${d.runs.length}` : ''})`);
    for (const r of d.runs) {
      const what =
        r.status === 'failed'
          ? `FAILED: ${r.error ?? ''}`
          : r.status === 'tests_failed'
            ? `TESTS FAILED: ${r.failedErrorTests.join(', ')}`
            : `${r.status}, ${fmt(r.rowsFetched)} fetched, ${fmt(r.curatedRows)} curated`;
      out.push(`    ${r.startedAt.replace('T', ' ').slice(0, 19)}  ${r.runId}  ${what.length > 160 ? `${what.slice(0, 157)}...` : what}`, `      ${r.reportPath}`);
    }
  }
  return out;
}

async function main(argv: string[]): Promise<number> {
  const options = {
    'data-dir': { type: 'string', default: '.local-data' },
    runs: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  } as const;
  const args = commandArgs('status', USAGE, { args: argv, options });
  if (typeof args === 'number') return args;
  const runs = Number(args.values.runs);
  if (!Number.isInteger(runs) || runs < 0) {
    process.stderr.write(`status: --runs must be a whole number ≥ 0, got "${args.values.runs}" (npm run status -- --help)\n`);
    return 2;
  }
  try {
    const s = await readStatus(path.resolve(args.values['data-dir']), runs);
    process.stdout.write(args.values.json ? `${JSON.stringify(s)}\n` : `${statusLines(s).join('\n')}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`status: ${(err as Error).message.split('\n')[0]}\n`);
    if (process.env.DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return 1;
  }
}

// Run as a command, not when a test imports readStatus.
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) process.exitCode = await main(process.argv.slice(2));
