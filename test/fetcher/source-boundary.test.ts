/**
 * The source adapter boundary (sources/source-adapter.ts): the row fetch, the key scan and the
 * repair read a source only through it. An in-memory source whose positions are sequence numbers
 * (nothing like Socrata's keyset) runs through all three phases: its positions travel opaquely
 * through checkpoints and cursors with their format, and a checkpoint of another format or
 * source is refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { encodeKeyList } from '../../runtime/key-list';
import { LocalObjectStore } from '../../runtime/object-store';
import { missingKeysKey } from '../../runtime/storage-layout';
import { CheckpointStore } from '../../lambdas/fetcher/checkpoint-store';
import { CheckpointSourceMismatchError, InvalidCursorError, runFetch, type FetchSettings } from '../../lambdas/fetcher/fetch-run';
import { KeyScanError, runKeyScan } from '../../lambdas/fetcher/key-scan';
import { RepairError, runRepair } from '../../lambdas/fetcher/repair';
import { TimeBudgetExhaustedError } from '../../lambdas/fetcher/time-budget';
import { RangeProgressStore } from '../../lambdas/fetcher/range-progress';
import type { PositionOrder, RowPageQuery, SourceAdapter, SourceRow, StreamPageResult } from '../../lambdas/fetcher/sources/source-adapter';
import { acceptingFirehose, sortedIds, wholeSourceDeps } from './harness';
import { keyScanSettings, rowFetchSettings } from '../support/fetch-settings';

const SEQUENCE: PositionOrder<number> = {
  format: 'test-sequence/1',
  compare: (a, b) => a - b,
  is: (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v),
  show: (n) => `#${n}`,
};

/** Rows in sequence order; a row's position is its index + 1. Keys are `code`. */
class SequenceSource implements SourceAdapter<number> {
  readonly positions = SEQUENCE;
  readonly identity;
  startAfterCalls: (number | undefined)[] = [];

  constructor(
    readonly rows: SourceRow[],
    name = 'memory-a',
  ) {
    this.identity = { type: 'memory', name };
  }

  startAfter(checkpoint: number | undefined): number | null {
    this.startAfterCalls.push(checkpoint);
    return checkpoint ?? null;
  }

  async streamPage(q: RowPageQuery<number>): Promise<StreamPageResult> {
    let rows = 0;
    for (let i = q.after ?? 0; i < this.rows.length && rows < q.limit && (q.until === undefined || i < q.until); i++) {
      rows++;
      if ((await q.onRow(this.rows[i]!, i + 1)) === false) return { rows, stopped: true, resumes: 0 };
    }
    return { rows, stopped: false, resumes: 0 };
  }

  async readKeys(q: { after: string | null; limit: number }) {
    const from = q.after === null ? 0 : Number(q.after);
    const rows = this.rows.slice(from, from + q.limit);
    return { rows, next: String(from + rows.length) };
  }

  keyBatches(keys: readonly string[]): string[] {
    return keys.map((k) => JSON.stringify([k]));
  }

  async readByKeys(q: { batch: string; after: number | null; limit: number }) {
    const wanted = new Set(JSON.parse(q.batch) as string[]);
    const matches = this.rows.map((row, i) => ({ row, at: i + 1 })).filter((m) => wanted.has(String(m.row.code)) && m.at > (q.after ?? 0));
    const page = matches.slice(0, q.limit);
    return { rows: page.map((m) => m.row), last: page.at(-1)?.at ?? null };
  }
}

const rowsOf = (n: number, from = 0): SourceRow[] => Array.from({ length: n }, (_, i) => ({ code: `c${from + i}`, value: String((from + i) * 7) }));

const settings: FetchSettings = rowFetchSettings({ datasetName: 'memory-events', primaryKey: 'code', pageSize: 40 });

function setup() {
  const store = new LocalObjectStore(mkdtempSync(path.join(tmpdir(), 'boundary-')));
  const checkpoints = new CheckpointStore(store, settings.datasetName);
  const deps = <P>(source: SourceAdapter<P>) => wholeSourceDeps(source, store, checkpoints);
  return { store, checkpoints, deps };
}

describe('the source adapter boundary', () => {
  test('a source with its own positions: every row once, its position and format in the checkpoint, the next run after it', async () => {
    const { checkpoints, deps } = setup();
    const source = new SequenceSource(rowsOf(130));
    const delivered = acceptingFirehose();
    const first = await runFetch({ runId: 'r1' }, settings, deps(source));
    assert.equal(first.done, true);
    assert.deepEqual(sortedIds(delivered.rows, 'code'), sortedIds(source.rows, 'code'));
    assert.equal(first.stats.checkpoint, 130);
    const stored = (await checkpoints.read())!.checkpoint;
    assert.deepEqual([stored.format, stored.position, stored.source], ['test-sequence/1', 130, { type: 'memory', name: 'memory-a' }]);

    source.rows.push(...rowsOf(15, 130));
    const again = acceptingFirehose();
    const second = await runFetch({ runId: 'r2' }, settings, deps(source));
    assert.deepEqual(source.startAfterCalls, [undefined, 130], 'each run starts where the stored position says');
    assert.deepEqual(sortedIds(again.rows, 'code'), sortedIds(rowsOf(15, 130), 'code'), 'only the new rows');
    assert.equal(second.stats.checkpoint, 145);
  });

  test('a cursor carries the position opaquely across invocations', async () => {
    const { deps } = setup();
    const source = new SequenceSource(rowsOf(200));
    const delivered = acceptingFirehose();
    let remaining = 600_000;
    const d = { ...deps(source), remainingTimeMs: () => remaining };
    // One page per invocation: the budget is spent once a page is read.
    const stream = source.streamPage.bind(source);
    source.streamPage = async (q) => {
      remaining = 600_000;
      const r = await stream(q);
      remaining = 10;
      return r;
    };
    let out = await runFetch({ runId: 'r1' }, settings, d);
    let invocations = 1;
    while (!out.done) {
      assert.equal(typeof out.cursor!.position, 'number');
      out = await runFetch({ runId: 'r1', cursor: JSON.parse(JSON.stringify(out.cursor)) }, settings, d);
      invocations++;
    }
    assert.ok(invocations >= 5, `${invocations} invocations`);
    assert.deepEqual(sortedIds(delivered.rows, 'code'), sortedIds(source.rows, 'code'), 'every row once across invocations');
  });

  test('a checkpoint of another position format, or of another source, is refused before anything is read', async () => {
    const { checkpoints, deps } = setup();
    await checkpoints.write({ dataset: settings.datasetName, runId: 'old', writtenAt: 'x', format: 'socrata-keyset/1', position: { updatedAt: '2024-01-01T00:00:00.000', id: 'row-a' } }, undefined);
    const source = new SequenceSource(rowsOf(10));
    acceptingFirehose();
    await assert.rejects(runFetch({ runId: 'r1' }, settings, deps(source)), (e: unknown) => e instanceof CheckpointSourceMismatchError && /format socrata-keyset\/1.*format test-sequence\/1/.test(e.message));

    const other = setup();
    await runFetch({ runId: 'r1' }, settings, other.deps(new SequenceSource(rowsOf(10), 'memory-a')));
    await assert.rejects(runFetch({ runId: 'r2' }, settings, other.deps(new SequenceSource(rowsOf(10), 'memory-b'))), (e: unknown) => e instanceof CheckpointSourceMismatchError && /memory:name=memory-a.*memory:name=memory-b/.test(e.message));
  });

  test('a checkpoint or range progress that is not JSON is an error naming the object and what to do', async () => {
    const { store, checkpoints } = setup();
    await store.put(checkpoints.key, '{"dataset": ');
    await assert.rejects(checkpoints.read(), /^Error: Checkpoint .*checkpoints\/memory-events\.json is not valid JSON; fix or delete it \(a full refresh rewrites it\)$/);
    const ranges = new RangeProgressStore(store, settings.datasetName, SEQUENCE);
    await store.put(ranges.key, 'not json');
    await assert.rejects(ranges.read(), /^Error: Range progress .*memory-events\.ranges\.json is not valid JSON; delete it \(the next run plans the backfill again\)$/);
  });

  test('the key scan lists the source\'s keys and the repair reads rows by key, both through the adapter', async () => {
    const { store, deps } = setup();
    const source = new SequenceSource(rowsOf(90));
    const scan = await runKeyScan({ runId: 'r1' }, keyScanSettings({ datasetName: settings.datasetName, primaryKey: 'code', keyPageSize: 25 }), deps(source));
    assert.deepEqual([scan.done, scan.stats.keys, scan.stats.pages], [true, 90, 4]);

    const wanted = ['c3', 'c50', 'c89'];
    await store.put(missingKeysKey({ name: settings.datasetName }, 'r1'), gzipSync(encodeKeyList(wanted)));
    const delivered = acceptingFirehose();
    const repair = await runRepair({ runId: 'r1' }, settings, deps(source));
    assert.equal(repair.done, true);
    assert.deepEqual(sortedIds(delivered.rows, 'code'), wanted);
  });

  test('the key scan and the repair share the stall rule: the third invocation in a row without a page fails, a page resets the count', async () => {
    const { store, deps } = setup();
    acceptingFirehose();
    await store.put(missingKeysKey({ name: settings.datasetName }, 'r1'), gzipSync(encodeKeyList(['c1', 'c2'])));
    // A source that answers `allowed` more requests, then asks every one after to wait longer than the budget left.
    let allowed = 0;
    const source = new SequenceSource(rowsOf(10));
    const gate = <T>(read: () => Promise<T>): Promise<T> => {
      if (allowed-- > 0) return read();
      throw new TimeBudgetExhaustedError('the source asks to wait 900 s');
    };
    const stalling = Object.assign(Object.create(source) as SequenceSource, {
      readKeys: (q: { after: string | null; limit: number }) => gate(() => source.readKeys(q)),
      readByKeys: (q: { batch: string; after: number | null; limit: number }) => gate(() => source.readByKeys({ ...q, limit: 1 })),
    });
    const keySettings = keyScanSettings({ datasetName: settings.datasetName, primaryKey: 'code', keyPageSize: 4 });
    const phases = [
      { name: 'key scan', run: (cursor: unknown) => runKeyScan({ runId: 'r1', cursor: cursor as never }, keySettings, deps(stalling)), error: KeyScanError },
      { name: 'repair', run: (cursor: unknown) => runRepair({ runId: 'r1', cursor: cursor as never }, settings, deps(stalling)), error: RepairError },
    ];
    for (const phase of phases) {
      allowed = 0;
      const first = await phase.run(null);
      assert.deepEqual([first.done, first.cursor?.stalledInvocations, first.stats.timeBudgetDeferrals], [false, 1, 1], phase.name);
      const second = await phase.run(first.cursor);
      assert.equal(second.cursor?.stalledInvocations, 2, phase.name);
      await assert.rejects(phase.run(second.cursor), (err: Error) => err instanceof phase.error && /3 .*invocations in a row ran out of time budget/.test(err.message), phase.name);
      // One page, then stalled again: the invocation made progress, so the count starts again.
      allowed = 1;
      const progressed = await phase.run(second.cursor);
      assert.deepEqual([progressed.done, progressed.cursor?.stalledInvocations, progressed.stats.pages], [false, 0, 1], phase.name);
      allowed = Infinity;
      const finished = await phase.run(progressed.cursor);
      assert.deepEqual([finished.done, finished.stats.timeBudgetDeferrals], [true, 3], phase.name);
    }
  });

  test('each phase refuses a cursor it did not return, naming the phase', async () => {
    const { store, deps } = setup();
    await store.put(missingKeysKey({ name: settings.datasetName }, 'r1'), gzipSync(encodeKeyList(['c1'])));
    const source = new SequenceSource(rowsOf(3));
    const keySettings = keyScanSettings({ datasetName: settings.datasetName, primaryKey: 'code' });
    const stats = {};
    // Another phase's cursor, or one with a position of another format: each is refused before anything is read.
    const foreign = { version: 1, phase: 'keys', afterId: null, parts: 0, startedAt: '2025-07-01T00:00:00Z', stats };
    await assert.rejects(runFetch({ runId: 'r1', cursor: foreign as never }, settings, deps(source)), (e: Error) => e instanceof InvalidCursorError && /^Fetcher cursor is not one/.test(e.message));
    await assert.rejects(runFetch({ runId: 'r1', cursor: { version: 1, mode: 'incremental', position: 'x', quarantineSequence: 0, stats } as never }, settings, deps(source)), InvalidCursorError);
    await assert.rejects(runKeyScan({ runId: 'r1', cursor: { ...foreign, phase: 'repair' } as never }, keySettings, deps(source)), (e: Error) => e instanceof KeyScanError && /^Key scan cursor is not one/.test(e.message));
    await assert.rejects(runKeyScan({ runId: 'r1', cursor: { ...foreign, version: 2 } as never }, keySettings, deps(source)), KeyScanError);
    await assert.rejects(runRepair({ runId: 'r1', cursor: foreign as never }, settings, deps(source)), (e: Error) => e instanceof RepairError && /^Repair cursor is not one/.test(e.message));
    await assert.rejects(runRepair({ runId: 'r1', cursor: { version: 1, phase: 'repair', chunk: 0, position: 'x', quarantineSequence: 0, stats } as never }, settings, deps(source)), RepairError);
    assert.equal(source.startAfterCalls.length, 0);
  });
});

