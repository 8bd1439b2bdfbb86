/**
 * The local stand-in for Athena engine v3: a pinned Trino server (scripts/install-trino.sh) with
 * one file metastore shared by a Hive catalog (the raw zone's JSON tables, as Glue holds them) and
 * an Iceberg catalog (the curated zone), Hive tables redirected to Iceberg so a statement names
 * tables as Athena does (`"curated"."t"`). Files are local: `local:///<absolute path>` stands where
 * Athena has `s3://<bucket>/`.
 *
 * startTrino() is the one way the project starts it: tests (through test/support/with-trino.ts),
 * `npm run local -- --engine athena` and the bench.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { freePort } from './free-port';
import os from 'node:os';
import path from 'node:path';
import { TrinoClient } from './trino-client';
import { EngineError } from '../runtime/pipeline-error';

export const TRINO_VERSION = '476';
/** Trino 476 runs on Java 24 or newer. */
const MIN_JAVA = 24;

export const trinoHome = (): string =>
  process.env.TRINO_HOME ?? path.join(os.homedir(), '.cache', 'socrata-athena-pipeline', `trino-server-${TRINO_VERSION}`);

export const INSTALL_HINT = 'run `bash scripts/install-trino.sh` (Trino from Maven Central) and install a Java 24+ JDK (e.g. Temurin 25)';

export class TrinoUnavailableError extends EngineError {
  override name = 'TrinoUnavailableError';
}

function javaMajor(home: string): number | undefined {
  const release = path.join(home, 'release');
  if (!existsSync(release) || !existsSync(path.join(home, 'bin', 'java'))) return undefined;
  const m = /JAVA_VERSION="(\d+)/.exec(readFileSync(release, 'utf8'));
  return m ? Number(m[1]) : undefined;
}

/** A JDK new enough for Trino: TRINO_JAVA_HOME, JAVA_HOME, or the newest under /usr/lib/jvm. */
export function findJava(): string | undefined {
  const candidates = [process.env.TRINO_JAVA_HOME, process.env.JAVA_HOME].filter((x): x is string => !!x);
  const jvmDir = '/usr/lib/jvm';
  if (existsSync(jvmDir)) candidates.push(...readdirSync(jvmDir).map((d) => path.join(jvmDir, d)));
  let best: { home: string; major: number } | undefined;
  for (const home of candidates) {
    const major = javaMajor(home);
    if (major !== undefined && major >= MIN_JAVA && (!best || major > best.major)) best = { home, major };
  }
  return best?.home;
}

/** What is missing to run Trino here, or undefined when it can start. */
export function trinoMissing(): string | undefined {
  const missing: string[] = [];
  if (!existsSync(path.join(trinoHome(), '.installed'))) missing.push(`Trino ${TRINO_VERSION} (not in ${trinoHome()})`);
  if (!findJava()) missing.push(`Java ${MIN_JAVA}+ (none in TRINO_JAVA_HOME, JAVA_HOME or /usr/lib/jvm)`);
  return missing.length ? `${missing.join(' and ')} missing: ${INSTALL_HINT}` : undefined;
}

/** Trino's `local://` location of an absolute path (the native local file system is rooted at /). */
export const localLocation = (absolutePath: string): string => `local://${path.resolve(absolutePath)}`;

export interface StartTrinoOptions {
  /** Where the server keeps its configuration, state and the metastore (kept across restarts). */
  stateDir: string;
  /** JVM heap (default 2G: the transform's largest statements at 650k rows fit). */
  heap?: string;
  log?: (line: string) => void;
  /** Start-up time limit (default 180 s: two loaded cores take about a minute). */
  startTimeoutMs?: number;
}

export interface TrinoServer {
  url: string;
  /** The metastore directory (both catalogs). */
  metastoreDir: string;
  stop(): Promise<void>;
}

function catalogs(metastoreDir: string): Record<string, string> {
  const common = [`hive.metastore.catalog.dir=${localLocation(metastoreDir)}`, 'fs.native-local.enabled=true', 'local.location=/'];
  return {
    hive: [
      'connector.name=hive',
      'hive.metastore=file',
      ...common,
      // A Hive name of an Iceberg table reaches it, as one Glue catalog serves both on Athena.
      'hive.iceberg-catalog-name=iceberg',
      // S3 has no directories: a projected day without objects is empty there, never an error.
      'hive.ignore-absent-partitions=true',
      // "Athena reads all data stored in the Amazon S3 folder that you specify" (Athena docs,
      // "Table location in Amazon S3"), subfolders included: the key-scan table reads
      // keysets/<dataset>/<run-id>/part-*.gz through its keysets/<dataset>/ location.
      'hive.recursive-directories=true',
      'hive.non-managed-table-writes-enabled=true',
    ].join('\n'),
    iceberg: [
      'connector.name=iceberg',
      'iceberg.catalog.type=TESTING_FILE_METASTORE',
      ...common,
      'iceberg.hive-catalog-name=hive',
      // Athena's VACUUM honours the table's vacuum_max_snapshot_age_seconds (5 days by default);
      // Trino refuses retention below 7 days unless these are lowered.
      'iceberg.expire-snapshots.min-retention=0s',
      'iceberg.remove-orphan-files.min-retention=0s',
    ].join('\n'),
  };
}

export async function startTrino(opts: StartTrinoOptions): Promise<TrinoServer> {
  const missing = trinoMissing();
  if (missing) throw new TrinoUnavailableError(missing);
  const java = findJava()!;
  const home = trinoHome();
  const stateDir = path.resolve(opts.stateDir);
  const etc = path.join(stateDir, 'etc');
  const dataDir = path.join(stateDir, 'data');
  const metastoreDir = path.join(stateDir, 'metastore');
  await mkdir(path.join(etc, 'catalog'), { recursive: true });
  await mkdir(dataDir, { recursive: true });
  await mkdir(metastoreDir, { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  await writeFile(
    path.join(etc, 'config.properties'),
    [
      'coordinator=true',
      'node-scheduler.include-coordinator=true',
      `http-server.http.port=${port}`,
      `discovery.uri=${url}`,
      'query.max-memory=1GB',
      'query.max-memory-per-node=1GB',
      'http-server.log.enabled=false',
    ].join('\n'),
  );
  await writeFile(path.join(etc, 'log.properties'), 'io.trino=WARN\nio.airlift=WARN\n');
  for (const [name, props] of Object.entries(catalogs(metastoreDir))) await writeFile(path.join(etc, 'catalog', `${name}.properties`), `${props}\n`);

  const args = [
    '-cp',
    `${path.join(home, 'lib')}/*`,
    '-server',
    `-Xmx${opts.heap ?? '2G'}`,
    '-XX:+UseG1GC',
    '-XX:+ExitOnOutOfMemoryError',
    '-Djdk.attach.allowAttachSelf=true',
    '-Dnode.environment=local',
    '-Dnode.id=local-athena',
    // Loopback only: the server is reachable from this machine alone.
    '-Dnode.bind-ip=127.0.0.1',
    '-Dnode.internal-address=127.0.0.1',
    `-Dnode.data-dir=${dataDir}`,
    `-Dlog.levels-file=${path.join(etc, 'log.properties')}`,
    `-Dconfig=${path.join(etc, 'config.properties')}`,
    `-Dcatalog.config-dir=${path.join(etc, 'catalog')}`,
    `-Dplugin.dir=${path.join(home, 'plugin')}`,
    'io.trino.server.TrinoServer',
  ];
  // A watchdog shell ends the JVM when this process dies, even by SIGKILL (Node cannot ask the
  // kernel for a parent-death signal).
  const watchdog = `"$@" & j=$!; trap 'kill $j 2>/dev/null; wait $j; exit 0' TERM INT; while kill -0 ${process.pid} 2>/dev/null && kill -0 $j 2>/dev/null; do sleep 1; done; kill $j 2>/dev/null; wait $j`;
  const child: ChildProcess = spawn('bash', ['-c', watchdog, 'trino', path.join(java, 'bin', 'java'), ...args], {
    cwd: home,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });
  const stop = async (): Promise<void> => {
    if (exited !== undefined) return;
    const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await done;
    clearTimeout(timer);
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 180_000);
  opts.log?.(`starting Trino ${TRINO_VERSION} on ${url} (state in ${stateDir})`);
  for (;;) {
    if (exited !== undefined) throw new TrinoUnavailableError(`Trino exited with code ${exited} while starting:\n${tail}`);
    try {
      const info = (await (await fetch(`${url}/v1/info`)).json()) as { starting?: boolean };
      // Started is not ready: SELECT 1 answers once the coordinator schedules queries. A catalog's
      // node can still follow ~1 s later (a scan refused with NO_NODES_AVAILABLE): the local Athena
      // endpoint sends such a statement again (athena-server.ts).
      if (info.starting === false && !(await new TrinoClient(url).execute('SELECT 1')).error) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new TrinoUnavailableError(`Trino did not start within ${Math.round((opts.startTimeoutMs ?? 180_000) / 1000)} s:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return { url, metastoreDir, stop };
}
