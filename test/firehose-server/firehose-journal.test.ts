/**
 * The local Firehose endpoint keeps Firehose's promise: a record answered with 200 is on disk,
 * and survives the process being SIGKILLed with the record still in the memory buffer. Crashes
 * are real (a child process killed, or killing itself at a fault point); the restart is this one.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import { FirehoseClient, PutRecordBatchCommand } from '@aws-sdk/client-firehose';
import { LocalObjectStore } from '../../runtime/object-store';
import { startFirehoseServer } from '../../local/firehose-server';
import { childRecords, childStream, type JournalChildConfig } from './journal-fixture';
import { suiteTempDir } from '../support/suite-fixtures';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const CHILD = path.join(import.meta.dirname, 'journal-child.ts');

let root: string;
suiteTempDir('firehose-journal-', (dir) => (root = dir));

interface ChildResult {
  acked: number;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/**
 * Runs the child until it prints `idle` (then SIGKILLs it) or dies by its own fault point.
 * Bounded: a child that neither finishes nor dies within 60 s fails the test.
 */
function runChild(config: JournalChildConfig, crashAt?: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, JOURNAL_CHILD: JSON.stringify(config) };
    delete env.PIPELINE_CRASH_AT;
    if (crashAt) env.PIPELINE_CRASH_AT = crashAt;
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`journal child did not finish within 60 s; stderr: ${stderr}`));
    }, 60_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('idle\n')) child.kill('SIGKILL');
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (_code, signal) => {
      clearTimeout(timer);
      resolve({ acked: (out.match(/^acked \d+$/gm) ?? []).length, signal, stderr });
    });
  });
}

/** Restart the endpoint on the same directories, stop it, and return every delivered record name. */
async function restartAndCollect(config: JournalChildConfig): Promise<{ names: string[]; replayed: number; segmentsLeft: string[] }> {
  const store = new LocalObjectStore(path.join(config.dir, 'raw'));
  const server = await startFirehoseServer({ store, streams: [childStream(config)], journal: { dir: path.join(config.dir, 'journal') } });
  const replayed = server.counters().recordsReplayed;
  await server.close();
  const names: string[] = [];
  for (const key of await store.list('raw/')) {
    const text = gunzipSync((await store.get(key))!.body).toString();
    for (const line of text.split('\n')) if (line) names.push(line.split(' ')[0]!);
  }
  const segmentsLeft = (await readdir(path.join(config.dir, 'journal', 'crash-raw'))).filter((f) => f.endsWith('.log'));
  return { names, replayed, segmentsLeft };
}

const namesOfCalls = (config: JournalChildConfig, calls: number): string[] =>
  Array.from({ length: calls }, (_, c) => childRecords(config, c + 1).map((r) => r.toString().split(' ')[0]!)).flat();

const sorted = (a: string[]): string[] => [...a].sort();

describe('local Firehose journal', () => {
  test('records answered with 200 survive a SIGKILL with the buffer in memory, delivered exactly once at the next start', async () => {
    const config: JournalChildConfig = { dir: path.join(root, 'buffered'), calls: 6, recordsPerCall: 20, recordBytes: 200, bufferingSizeMiB: 64 };
    const child = await runChild(config);
    assert.equal(child.signal, 'SIGKILL');
    assert.equal(child.acked, 6, child.stderr);
    // A crash in the middle of an append leaves a torn frame at the tail: it must be ignored.
    const segDir = path.join(config.dir, 'journal', 'crash-raw');
    const segments = (await readdir(segDir)).sort();
    assert.ok(segments.length >= 1, 'the accepted calls are journaled');
    await appendFile(path.join(segDir, segments.at(-1)!), Buffer.from([0x46, 0x4a, 0x48, 0x31, 0, 0, 0, 9, 0, 0]));

    const { names, replayed, segmentsLeft } = await restartAndCollect(config);
    assert.equal(replayed, 120);
    assert.deepEqual(sorted(names), sorted(namesOfCalls(config, 6)), 'every acknowledged record, once');
    assert.deepEqual(segmentsLeft, [], 'delivered records are dropped from the journal');
    // A second start finds nothing left to deliver: no duplicate objects.
    assert.deepEqual(sorted((await restartAndCollect(config)).names), sorted(namesOfCalls(config, 6)));
  });

  test('a crash after the journal append but before the answer: the unanswered call is delivered too (at least once), nothing twice', async () => {
    const config: JournalChildConfig = { dir: path.join(root, 'after-append'), calls: 5, recordsPerCall: 10, recordBytes: 100, bufferingSizeMiB: 64 };
    const child = await runChild(config, 'firehose:after-journal-append#3');
    assert.equal(child.signal, 'SIGKILL');
    assert.match(child.stderr, /fault point firehose:after-journal-append#3/);
    assert.equal(child.acked, 2);
    const { names } = await restartAndCollect(config);
    assert.deepEqual(sorted(names), sorted(namesOfCalls(config, 3)));
  });

  test('a crash right after an object is written: that object is not written again, the rest of the buffer is', async () => {
    // 100 KiB records, 5 per call, 1 MiB buffer: the first object is cut in the 3rd call.
    const config: JournalChildConfig = { dir: path.join(root, 'after-object'), calls: 4, recordsPerCall: 5, recordBytes: 100 * 1024, bufferingSizeMiB: 1 };
    const child = await runChild(config, 'firehose:after-object-write');
    assert.equal(child.signal, 'SIGKILL');
    assert.match(child.stderr, /fault point firehose:after-object-write#1/);
    assert.equal(child.acked, 2);
    const raw = new LocalObjectStore(path.join(config.dir, 'raw'));
    assert.equal((await raw.list('raw/')).length, 1, 'one object was durably written before the crash');
    const { names, replayed } = await restartAndCollect(config);
    assert.equal(replayed, 4, 'only the records after the first object are delivered again');
    assert.deepEqual(sorted(names), sorted(namesOfCalls(config, 3)));
    assert.equal(new Set(names).size, names.length, 'no record twice');
  });

  test('the endpoint answers only after the journal write is synced', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let syncStarted!: () => void;
    const started = new Promise<void>((r) => (syncStarted = r));
    const dir = path.join(root, 'sync-order');
    const server = await startFirehoseServer({
      store: new LocalObjectStore(path.join(dir, 'raw')),
      streams: [childStream({ bufferingSizeMiB: 64 })],
      journal: {
        dir: path.join(dir, 'journal'),
        sync: async (handle) => {
          syncStarted();
          await gate;
          await handle.sync();
        },
      },
    });
    try {
      const client = new FirehoseClient({ endpoint: server.url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
      let answered = false;
      const put = client
        .send(new PutRecordBatchCommand({ DeliveryStreamName: 'crash-raw', Records: [{ Data: Buffer.from('a\n') }] }))
        .then((r) => {
          answered = true;
          return r;
        });
      await started;
      // Plenty of time for an answer that did not wait for the sync to arrive.
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(answered, false, 'no 200 before the journal is synced');
      release();
      assert.equal((await put).FailedPutCount, 0);
    } finally {
      release();
      await server.close();
    }
  });
});
