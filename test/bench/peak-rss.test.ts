/**
 * A contender's peak RSS must be its own: on Linux a forked child's maxRSS starts at the parent's
 * resident memory outside the V8 heap, which in the bench is the local servers'.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const CHILD = path.join(import.meta.dirname, 'peak-rss-child.ts');

test('ownPeakRssBytes reports the child process alone, even when the parent holds 200 MB', { skip: !existsSync('/proc/self/status') && 'no /proc' }, async () => {
  // Resident (filled) memory outside the V8 heap, like the servers' Buffers.
  const held = Buffer.alloc(200e6, 1);
  const report = await new Promise<{ own: number; maxRss: number }>((resolve, reject) => {
    const child = fork(CHILD, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (m) => resolve(m as { own: number; maxRss: number }));
    child.once('error', reject);
    child.once('exit', (code) => code !== 0 && reject(new Error(`child exited with ${code}`)));
  });
  assert.equal(held[held.length - 1], 1);
  // The kernel's quirk, shown: maxRSS carries the parent's 200 MB (if this ever stops holding, the
  // workaround is harmless, but the test says so).
  assert.ok(report.maxRss >= 200e6, `maxRSS ${report.maxRss} includes the parent's 200 MB`);
  assert.ok(report.own < 150e6, `own peak ${report.own} bytes: a tsx child alone is well under 150 MB`);
  assert.ok(report.own > 10e6);
});
