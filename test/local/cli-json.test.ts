/**
 * `npm run local -- --json` as a script reads it: stdout is exactly one JSON object (status, exit
 * code, error, hint), whether the run succeeds, fails, is refused or is stopped by a signal.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { freePort } from '../../local/free-port';
import path from 'node:path';
import { describe, test } from 'node:test';
import { readCheckpoint, REPO, runCli, spawnCli, type CliResult } from './local-run-fixture';
import { suiteTempDir } from '../support/suite-fixtures';

let root: string;
suiteTempDir('cli-json-', (dir) => (root = dir));

interface JsonResult {
  status: string;
  exitCode: number;
  error?: string;
  hint?: string;
  [k: string]: unknown;
}

/** The one JSON object on stdout; fails when stdout holds anything else. */
function onlyObject(r: CliResult): JsonResult {
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `exactly one line on stdout, got:\n${r.stdout}\nstderr:\n${r.stderr}`);
  const parsed = JSON.parse(lines[0]!) as JsonResult;
  assert.equal(typeof parsed, 'object');
  assert.equal(parsed.exitCode, r.code, 'the object names the exit code the process returned');
  return parsed;
}


describe('npm run local -- --json always ends with one JSON object', () => {
  test('a usage error (an unknown option, a bad --rows) is an object with exit code 2 and a hint', async () => {
    for (const args of [['--no-such-option'], ['--rows', 'many']]) {
      const r = await runCli([...args, '--json', '--data-dir', path.join(root, 'unused')]);
      assert.equal(r.code, 2, r.stderr);
      const o = onlyObject(r);
      assert.equal(o.status, 'failed');
      assert.match(o.error!, /no-such-option|--rows must be a whole number/);
      assert.equal(o.hint, 'see --help');
    }
  });

  test('a failed run (unreachable --source) is an object with exit code 1 and the error', async () => {
    const port = await freePort();
    const r = await runCli(['--source', `http://127.0.0.1:${port}/resource/abcd-1234.json`, '--data-dir', path.join(root, 'offline'), '--json']);
    assert.equal(r.code, 1, r.stderr);
    const o = onlyObject(r);
    assert.equal(o.status, 'failed');
    assert.match(o.error!, /ECONNREFUSED/);
  });

  test('a successful run is the summary with status succeeded and exit code 0', async () => {
    const r = await runCli(['--rows', '1200', '--data-dir', path.join(root, 'ok'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const o = onlyObject(r);
    assert.equal(o.status, 'succeeded');
    assert.equal(o.error, undefined);
    assert.equal((o.fetch as { rowsFetched: number }).rowsFetched, 1200);
  });

  test('SIGTERM mid-fetch is an object with status stopped and exit code 143', async () => {
    const dataDir = path.join(root, 'stopped');
    // Small pages, so the fetch checkpoints many times and is still running when the signal comes.
    const file = path.join(root, 'datasets', 'sf-fire-incidents.json');
    await mkdir(path.dirname(file), { recursive: true });
    const base = JSON.parse(await readFile(path.join(REPO, 'datasets', 'sf-fire-incidents.json'), 'utf8'));
    await writeFile(file, JSON.stringify({ ...base, fetch: { ...base.fetch, pageSize: 200 } }));
    const run = spawnCli(['--rows', '6000', '--data-dir', dataDir, '--dataset-file', file, '--json']);
    const deadline = Date.now() + 60_000;
    while ((await readCheckpoint(dataDir)) === undefined && run.child.exitCode === null && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    run.child.kill('SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 143, r.stderr);
    const o = onlyObject(r);
    assert.equal(o.status, 'stopped');
    assert.match(o.error!, /^stopped by SIGTERM/);
    assert.equal(existsSync(path.join(dataDir, '.run.lock')), false);
  });
});
