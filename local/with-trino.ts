/**
 * Runs a command with a Trino server for it (TRINO_URL and TRINO_METASTORE_DIR in its environment), then stops Trino:
 * `tsx local/with-trino.ts <command> [args...]`. `npm test` runs the test suites through it.
 * Where Trino is not installed it is installed first when Java 24+ and Maven are there; otherwise
 * the command still runs (its Trino-backed suites skip and say why), except in CI (CI=true),
 * which fails at once: .ci/run installs Trino.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findJava, startTrino, trinoMissing } from './trino-server';

async function main(): Promise<number> {
  const [command, ...args] = process.argv.slice(2);
  if (!command) {
    process.stderr.write('usage: tsx local/with-trino.ts <command> [args...]\n');
    return 2;
  }
  let missing = process.env.TRINO_URL ? undefined : trinoMissing();
  if (missing && findJava() && spawnSync('mvn', ['--version'], { stdio: 'ignore' }).status === 0) {
    // A fresh clone: fetch the pinned Trino from Maven Central once (~800 MB, cached in ~/.cache).
    process.stderr.write('with-trino: installing Trino (bash scripts/install-trino.sh)\n');
    spawnSync('bash', [path.join(import.meta.dirname, '..', 'scripts', 'install-trino.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
    missing = trinoMissing();
  }
  if (missing && process.env.CI) {
    process.stderr.write(`with-trino: ${missing}\n`);
    return 1;
  }
  let stop = async (): Promise<void> => {};
  const env = { ...process.env };
  let stateDir: string | undefined;
  if (missing) {
    process.stderr.write(`with-trino: Trino-backed tests will skip: ${missing}\n`);
  } else if (!process.env.TRINO_URL) {
    stateDir = await mkdtemp(path.join(os.tmpdir(), 'trino-tests-'));
    const started = Date.now();
    const server = await startTrino({ stateDir });
    process.stderr.write(`with-trino: Trino ready at ${server.url} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    env.TRINO_URL = server.url;
    env.TRINO_METASTORE_DIR = server.metastoreDir;
    stop = server.stop;
  }
  const child = spawn(command, args, { stdio: 'inherit', env });
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const code = await new Promise<number>((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
  await stop();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
  return code;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`with-trino: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
