/**
 * The parent's side of the local helper processes (local/child-rpc.ts): answers reach their
 * call, a child that dies rejects the calls still waiting and every later one, and close is not
 * a failure.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { forkChild } from '../../local/child-rpc';

type Msg = { type: 'echo'; id: number; value: unknown } | { type: 'hang'; id: number } | { type: 'close' };
const FIXTURE = path.join(import.meta.dirname, 'child-rpc-fixture.ts');

function start() {
  const rpc = forkChild<Msg>(FIXTURE, 1_000);
  rpc.child.on('message', (m: { id: number; value: unknown }) => rpc.settle(m.id, undefined, m.value));
  void rpc.exited.then(({ signal }) => {
    if (!rpc.closing) rpc.fail(new Error(`fixture stopped: killed by ${signal}`));
  });
  return rpc;
}

test('answers reach their calls; a dead child rejects the waiting call and every later one', { timeout: 20_000 }, async () => {
  const rpc = start();
  assert.deepEqual(await Promise.all([rpc.call({ type: 'echo', value: 1 }), rpc.call({ type: 'echo', value: { a: 2 } })]), [1, { a: 2 }]);
  const waiting = rpc.call({ type: 'hang' });
  rpc.child.kill('SIGKILL');
  await assert.rejects(waiting, /^Error: fixture stopped: killed by SIGKILL$/);
  await assert.rejects(rpc.call({ type: 'echo', value: 3 }), /fixture stopped/);
  assert.equal(rpc.closing, false);
});

test('close asks the child to stop, and its exit is not a failure', { timeout: 20_000 }, async () => {
  const rpc = start();
  await rpc.close({ type: 'close' });
  assert.equal(rpc.closing, true);
  assert.deepEqual(await rpc.exited, { code: 0, signal: null });
});
