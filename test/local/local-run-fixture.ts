/**
 * `npm run local` as a child process, and what it left in its data directory: the source's rows
 * in keyset order, the checkpoint, the ids in raw and in curated. Shared by the run-hygiene and
 * crash-safety tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { defaultCatalogPath, queryCatalog } from '../../containers/transform/src/catalog';
import { FireIncidentGenerator } from '../../local/fire-incidents-generator';
import { localSourceFile } from '../../local/local-source-state';
import { LocalObjectStore } from '../../runtime/object-store';

export const REPO = path.join(import.meta.dirname, '..', '..');
const CLI = path.join(REPO, 'local', 'cli.ts');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  /** Resolves when the process exits; rejects if it runs longer than `timeoutMs` (then it is killed). */
  done: Promise<CliResult>;
}

/** `node --import tsx local/cli.ts ...args` (what `npm run local --` runs, without the tsx wrapper process). */
export function spawnCli(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): CliProcess {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env };
  if (!env.PIPELINE_CRASH_AT) delete childEnv.PIPELINE_CRASH_AT;
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`npm run local ${args.join(' ')} did not finish within ${timeoutMs / 1000} s; stderr:\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // 'exit' can precede the last 'data' events of the pipes; 'close' follows them.
      child.once('close', () => resolve({ code, signal, stdout, stderr }));
    });
  });
  return { child, done };
}

export const runCli = (args: string[], env: Record<string, string> = {}, timeoutMs?: number): Promise<CliResult> =>
  spawnCli(args, env, timeoutMs).done;

export interface SourceRow {
  id: string;
  sysId: string;
  updatedAt: string;
}

/** The rows the CLI's local Socrata server generates for SF Fire Incidents (`--rows n`, seed 1), in keyset order. */
export function generatedSource(rows: number, seed = 1, loadedAt?: string): SourceRow[] {
  const gen = new FireIncidentGenerator({ seed, ...(loadedAt ? { loadedAt: new Date(loadedAt) } : {}) });
  const out: SourceRow[] = [];
  for (let i = 0; i < rows; i++) {
    const r = gen.next();
    out.push({ id: String(r.id), sysId: String(r[':id']), updatedAt: String(r[':updated_at']) });
  }
  return out.sort(keysetCompare);
}

/**
 * The rows `npm run local` generated in this data directory: its source is anchored at the time it
 * was created (`loadedAt` in local-sources/<dataset>.json), so the `:updated_at`s depend on the directory.
 */
export async function generatedSourceIn(dataDir: string, rows: number, seed = 1): Promise<SourceRow[]> {
  const { loadedAt } = JSON.parse(await readFile(localSourceFile(dataDir, 'sf-fire-incidents'), 'utf8')) as { loadedAt?: string };
  return generatedSource(rows, seed, loadedAt);
}

function keysetCompare(a: { updatedAt: string; sysId: string }, b: { updatedAt: string; sysId: string }): number {
  const t = Date.parse(a.updatedAt) - Date.parse(b.updatedAt);
  if (t !== 0) return t;
  return a.sysId < b.sysId ? -1 : a.sysId > b.sysId ? 1 : 0;
}

export async function readCheckpoint(dataDir: string, dataset = 'sf-fire-incidents'): Promise<{ updatedAt: string; id: string } | undefined> {
  const text = await readFile(path.join(dataDir, 'buckets', 'raw', 'checkpoints', `${dataset}.json`), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as { position: { updatedAt: string; id: string } }).position;
}

/** Source rows at or before a checkpoint: the rows the fetcher promised are durable. */
export function rowsUpTo(source: SourceRow[], checkpoint: { updatedAt: string; id: string } | undefined): SourceRow[] {
  if (!checkpoint) return [];
  const cp = { updatedAt: checkpoint.updatedAt, sysId: checkpoint.id };
  return source.filter((r) => keysetCompare(r, cp) <= 0);
}

/** Primary keys of every row in the raw zone's objects. */
export async function rawIds(dataDir: string, dataset = 'sf-fire-incidents'): Promise<Set<string>> {
  const store = new LocalObjectStore(path.join(dataDir, 'buckets', 'raw'));
  const ids = new Set<string>();
  for (const key of await store.list(`raw/${dataset}/`)) {
    const obj = await store.get(key);
    const text = key.endsWith('.gz') ? gunzipSync(obj!.body).toString() : obj!.body.toString();
    for (const line of text.split('\n')) if (line) ids.add(String((JSON.parse(line) as { id: unknown }).id));
  }
  return ids;
}

/** Every primary key in curated, duplicates kept (so a test can see them). */
export async function curatedIds(dataDir: string, table = 'sf_fire_incidents'): Promise<string[]> {
  const { rows } = await queryCatalog(defaultCatalogPath(dataDir), `SELECT id FROM curated.${table}`);
  return rows.map((r) => String(r.id));
}
