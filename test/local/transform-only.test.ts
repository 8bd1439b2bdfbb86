/**
 * `npm run local -- --select <models>` / `--tests-only`: the transform alone on what the data
 * directory holds (no fetch), as a child process like a user runs it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { incident, writeRawObject } from '../transform/raw-fixture';

const run = promisify(execFile);
const REPO = path.join(import.meta.dirname, '..', '..');
const TSX = path.join(REPO, 'node_modules', '.bin', 'tsx');

let root: string;
let dataDir: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'local-transform-only-'));
  dataDir = path.join(root, 'data');
  // What a fetch would have left: one raw object, nothing merged yet.
  writeRawObject(path.join(dataDir, 'buckets', 'raw'), 'sf-fire-incidents', '2024-03-01', 'a', Array.from({ length: 6 }, (_, i) => incident(i)));
});
after(() => rm(root, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(TSX, [path.join(REPO, 'local', 'cli.ts'), '--data-dir', dataDir, ...args], { cwd: root, maxBuffer: 32 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('npm run local -- --select / --tests-only', () => {
  test('--select merges what raw holds and builds only the chosen marts, without fetching', async () => {
    const r = await cli(['--select', '+battalion_totals', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { curatedRows: number; marts: { name: string }[]; selection: unknown };
    assert.equal(s.curatedRows, 6);
    assert.deepEqual(s.marts.map((m) => m.name), ['incidents_by_month_battalion', 'battalion_totals']);
    assert.deepEqual(s.selection, { select: ['+battalion_totals'], testsOnly: false });
    assert.doesNotMatch(r.stderr, /fetch|Socrata/i);
  });

  test('--tests-only builds nothing and prints the tests; a wrong model, a clashing flag or an empty directory exit 2', async () => {
    const t = await cli(['--tests-only', '--select', 'battalion_totals']);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /\(tests only: nothing merged or built\) --select battalion_totals/);
    assert.match(t.stdout, /marts {6}none built/);
    assert.match(t.stdout, /tests {6}\d+ passed, 0 failed, \d+ warnings, 0 skipped/);
    const bad = await cli(['--select', 'nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error: --select: "nope" is not a model \(known: curated, /m);
    const clash = await cli(['--tests-only', '--rebuild']);
    assert.equal(clash.code, 2);
    assert.match(clash.stderr, /drop --rebuild/);
    const empty = path.join(root, 'empty');
    const none = await run(TSX, [path.join(REPO, 'local', 'cli.ts'), '--data-dir', empty, '--tests-only'], { cwd: root }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(none.code, 2);
    assert.match(none.stderr, /holds no data yet: run `npm run local -- --data-dir .*` first/);
    assert.equal(existsSync(empty), false, 'the empty data directory is not created');
  });
});
