/**
 * The local Socrata server in its own process (local/socrata-process.ts): it answers like the
 * in-process server, relays what it served, runs mutations, cleans up its row file, never
 * outlives its parent, and a failure reaches the parent as one line that says what happened.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { startLocalSource } from '../../local/dataset-rows';
import { runLocalPipeline } from '../../local/pipeline';
import { startSocrataProcess } from '../../local/socrata-process';
import { startSocrataServer } from '../../local/socrata-server';
import { REPO } from './local-run-fixture';
import { suiteTempDir } from '../support/suite-fixtures';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let root: string;
suiteTempDir('socrata-process-', (dir) => (root = dir));

describe('the local Socrata server in a child process', { timeout: 120_000 }, () => {
  test('answers with the in-process server\'s bytes, relays its requests, mutates, and removes its row file on close', async () => {
    const storageDir = path.join(root, 'store');
    const child = await startSocrataProcess({ kind: 'options', options: { rows: 3_000, seed: 9, storageDir } });
    const inProcess = await startSocrataServer({ rows: 3_000, seed: 9 });
    try {
      assert.notEqual(child.pid, process.pid);
      const q = `?${new URLSearchParams({ $select: ':*,*', $order: ':updated_at,:id', $limit: '1000' })}`;
      const [a, b] = await Promise.all([fetch(child.resourceUrl + q).then((r) => r.text()), fetch(inProcess.resourceUrl + q).then((r) => r.text())]);
      assert.equal(a, b);
      await until('the request record', () => child.requests.length === 1);
      assert.equal(child.requests[0]!.rows, 1000);
      assert.equal(child.requests[0]!.status, 200);

      const [m1, m2] = await Promise.all([child.mutate({ add: 5, deleteKeys: ['180000010'] }), Promise.resolve(inProcess.mutate({ add: 5, deleteKeys: ['180000010'] }))]);
      assert.deepEqual(m1, m2);
      const count = `?${new URLSearchParams({ $select: 'count(*) AS n' })}`;
      assert.deepEqual(await fetch(child.resourceUrl + count).then((r) => r.json()), [{ n: String(3_000 + 5 - 1) }]);
      await child.setFaults([{ kind: 'status', status: 503, times: 1 }]);
      assert.equal((await fetch(child.resourceUrl + q)).status, 503);
      assert.equal((await fetch(child.resourceUrl + q)).status, 200);
      await assert.rejects(child.mutate({ addRows: 5 } as never), /^Error: local Socrata server \(PID \d+\): .*not iterable/);
      assert.equal((await readdir(storageDir)).length, 1, 'the row file');
    } finally {
      await child.close();
      await inProcess.close();
    }
    assert.ok(!alive(child.pid), 'the child exited');
    assert.deepEqual(await readdir(storageDir), [], 'the row file is gone');
    assert.equal(child.failure, undefined, 'a requested close is not a failure');
  });

  test('dies with its parent: a SIGKILLed parent leaves no server and no row file behind', async () => {
    const storageDir = path.join(root, 'orphan-store');
    const parent = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'test', 'local', 'socrata-parent-fixture.ts'), storageDir], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    parent.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await until('the parent to report its child', () => out.includes('\n'), 60_000);
    const { pid, url } = JSON.parse(out) as { pid: number; url: string };
    assert.ok(alive(pid));
    assert.equal((await fetch(`${url}/api/views/wr8u-xric.json`)).status, 200);
    parent.kill('SIGKILL');
    assert.equal((await readdir(storageDir)).length, 1, 'its row file');
    await until(`child ${pid} to exit after its parent was killed`, () => !alive(pid));
    assert.deepEqual(await readdir(storageDir), [], 'and the row file went with it');
  });

  test('a server that cannot start says why in one line', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const err = await startSocrataProcess({ kind: 'options', options: { rows: 10, port } }).then(
        () => undefined,
        (e: Error) => e,
      );
      assert.ok(err, 'start rejects');
      assert.match(err.message, /^local Socrata server \(PID \d+\) stopped: local Socrata server did not start: listen EADDRINUSE.*:\d+$/);
      assert.ok(!err.message.includes('\n'), 'one line');
    } finally {
      blocker.close();
    }
  });

  test('the remembered port taken: the source starts on another one and serves every row', async () => {
    const fire = loadDatasetFile(path.join(REPO, 'datasets', 'sf-fire-incidents.json'));
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const dataDir = path.join(root, 'port-taken');
    await mkdir(dataDir, { recursive: true });
    await writeFile(path.join(dataDir, 'local-source.json'), JSON.stringify({ dataset: fire.name, seed: 1, rows: [30_000], port }));
    const source = await startLocalSource(fire, dataDir, 30_000);
    try {
      assert.notEqual(new URL(source.url).port, String(port));
      // Generation of the first, failed attempt must not have outlived it (it would crash the child).
      const page = await fetch(`${source.resourceUrl}?${new URLSearchParams({ $select: ':*,*', $order: ':updated_at,:id', $limit: '30000' })}`);
      assert.equal(((await page.json()) as unknown[]).length, 30_000);
      assert.equal(source.failure, undefined);
    } finally {
      await source.close();
      blocker.close();
    }
  });

  test('a server that dies mid-run fails the pipeline with its own line, not the fetcher\'s connection errors', async () => {
    const fire = loadDatasetFile(path.join(REPO, 'datasets', 'sf-fire-incidents.json'));
    const dataset = { ...fire, fetch: { ...fire.fetch, pageSize: 200 } };
    let killed: number | undefined;
    const err = await runLocalPipeline({
      dataset,
      dataDir: path.join(root, 'dies'),
      rows: 2_000,
      invocationBudgetMs: 20_000,
      onPhase: (phase, info) => {
        if (phase === 'fetch' && info.socrataPid) {
          killed = info.socrataPid;
          process.kill(info.socrataPid, 'SIGKILL');
        }
      },
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    assert.ok(killed, 'the child was running');
    assert.ok(err, 'the run fails');
    assert.equal(err.message, `local Socrata server (PID ${killed}) stopped: killed by SIGKILL`);
    assert.ok(!alive(killed));
  });
});
