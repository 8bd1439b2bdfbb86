/**
 * `npm run local` as a user runs it: one run per data directory (a clear message naming the
 * holder's PID, stale locks of dead runs taken over), and Ctrl-C / SIGTERM stopping cleanly with
 * every accepted record delivered to raw/ before the exit, and the next run finishing exactly.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { curatedIds, generatedSource, generatedSourceIn, rawIds, readCheckpoint, rowsUpTo, runCli, spawnCli } from './local-run-fixture';
import { suiteTempDir } from '../support/suite-fixtures';

let root: string;
suiteTempDir('local-hygiene-', (dir) => (root = dir));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` holds; fails after `ms` (generous: this is a wait, not a timing assertion). */
async function waitFor(what: string, check: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A dataset file like the shipped one, with small pages so a few thousand rows make many checkpoints. */
async function smallPagesDataset(): Promise<string> {
  // The file must be named after the dataset.
  const file = path.join(root, 'datasets', 'sf-fire-incidents.json');
  if (!existsSync(file)) {
    await mkdir(path.dirname(file), { recursive: true });
    const base = JSON.parse(await readFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'), 'utf8'));
    await writeFile(file, JSON.stringify({ ...base, fetch: { ...base.fetch, pageSize: 200 } }));
  }
  return file;
}

describe('one run per data directory', () => {
  test('a second run on a directory in use fails at once naming the holder, and the first run finishes', async () => {
    const dataDir = path.join(root, 'busy');
    const first = spawnCli(['--rows', '3000', '--data-dir', dataDir, '--json']);
    const lock = path.join(dataDir, '.run.lock');
    await waitFor('the first run to take the lock', () => existsSync(lock));
    // Frozen while holding the directory: the second run must meet it there, deterministically.
    first.child.kill('SIGSTOP');
    try {
      assert.equal((await readFile(lock, 'utf8')).trim(), String(first.child.pid));
      const second = await runCli(['--rows', '3000', '--data-dir', dataDir], {}, 60_000);
      assert.equal(second.code, 1);
      const lines = second.stderr.trim().split('\n');
      assert.equal(lines.length, 1, second.stderr);
      assert.match(lines[0]!, new RegExp(`^error: Another run \\(PID ${first.child.pid}\\) is using data directory ${dataDir.replace(/[/.]/g, '\\$&')}; wait for it`));
      assert.doesNotMatch(second.stderr, /Could not set lock|catalog\.duckdb/);
    } finally {
      first.child.kill('SIGCONT');
    }
    const r = await first.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(existsSync(lock), false, 'the lock is released at the end of the run');
  });

  test('a lock left by a dead process is taken over', async () => {
    const dataDir = path.join(root, 'stale');
    await mkdir(dataDir, { recursive: true });
    const dead = spawn(process.execPath, ['-e', '0']);
    const deadPid = dead.pid!;
    await new Promise((r) => dead.on('exit', r));
    await writeFile(path.join(dataDir, '.run.lock'), `${deadPid}\n`);
    const r = await runCli(['--rows', '500', '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`locked by PID ${deadPid}, which is no longer running: lock taken over`));
    assert.equal(existsSync(path.join(dataDir, '.run.lock')), false);
  });
});

describe('Ctrl-C and SIGTERM', () => {
  const ROWS = 6_000;
  const source = generatedSource(ROWS);

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    test(`${signal} mid-fetch delivers every accepted record to raw/ before exiting ${code}; the next run is exact`, async () => {
      const dataDir = path.join(root, signal);
      const dataset = await smallPagesDataset();
      const run = spawnCli(['--rows', String(ROWS), '--data-dir', dataDir, '--dataset-file', dataset]);
      // Interrupt once the fetch has checkpointed a few pages (the Firehose buffer holds them:
      // 64 MiB / 60 s buffering, so nothing is in raw/ yet unless the signal delivers it).
      await waitFor('a checkpoint', async () => (await readCheckpoint(dataDir)) !== undefined || run.child.exitCode !== null);
      run.child.kill(signal);
      // Ctrl-C under `npm run local` arrives twice at once (terminal process group + npm relaying
      // it): that is still one request to stop cleanly, not "stop now".
      if (signal === 'SIGINT') run.child.kill(signal);
      const r = await run.done;
      assert.equal(r.code, code, r.stderr);
      const lastLine = r.stderr.trim().split('\n').at(-1)!;
      assert.match(lastLine, new RegExp(`^stopped by ${signal}: every record the local Firehose accepted is in `));

      // Before any restart: raw/ holds every row up to the checkpoint, and the journal is empty.
      const checkpoint = await readCheckpoint(dataDir);
      const promised = rowsUpTo(await generatedSourceIn(dataDir, ROWS), checkpoint);
      assert.ok(promised.length > 0, 'the run was interrupted after at least one checkpoint');
      const raw = await rawIds(dataDir);
      const missing = promised.filter((row) => !raw.has(row.id));
      assert.deepEqual(missing, [], 'every row behind the checkpoint is in raw/');
      const journal = path.join(dataDir, 'firehose-journal', 'sf-fire-incidents-raw');
      assert.deepEqual((await readdir(journal)).filter((f) => f.endsWith('.log')), []);
      assert.equal(existsSync(path.join(dataDir, '.run.lock')), false, 'the lock is released');

      const again = await runCli(['--rows', String(ROWS), '--data-dir', dataDir, '--dataset-file', dataset]);
      assert.equal(again.code, 0, again.stderr);
      const curated = await curatedIds(dataDir);
      assert.equal(curated.length, ROWS, 'no duplicates');
      assert.deepEqual(new Set(curated), new Set(source.map((s) => s.id)));
    });
  }
});
