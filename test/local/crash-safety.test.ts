/**
 * Crash safety of the embedded pipeline: `npm run local` SIGKILLed at deterministic fault points
 * (runtime/fault-points.ts, PIPELINE_CRASH_AT), then one ordinary run on the same data directory
 * must end with exit 0 and curated == the source's ids: none lost (a checkpoint past rows that
 * were not durable would lose them for good, since the next run starts after it), none twice.
 */
import type { KeysetPosition } from '../../lambdas/fetcher/sources/socrata/keyset';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { curatedIds, generatedSource, generatedSourceIn, rawIds, readCheckpoint, REPO, rowsUpTo, runCli } from './local-run-fixture';
import type { RangeProgress } from '../../lambdas/fetcher/range-progress';

async function readRangeProgress(dataDir: string): Promise<RangeProgress<KeysetPosition> | undefined> {
  const text = await readFile(path.join(dataDir, 'buckets', 'raw', 'checkpoints', 'sf-fire-incidents.ranges.json'), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as RangeProgress<KeysetPosition>);
}

const ROWS = 4_000;
const source = generatedSource(ROWS);
const sourceIds = new Set(source.map((r) => r.id));

let root: string;
let datasetFile: string;
/** The same dataset without deletion detection (no key scan): curated is checked against the recorded keys only. */
let noScanFile: string;
/** The same dataset read by 4 parallel streams (the threshold lowered below the 4,000 rows), without deletion detection. */
let parallelFile: string;
before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'local-crash-'));
  // Small pages (16 checkpoints) and a 1 MiB Firehose buffer (several raw objects per run).
  const base = JSON.parse(await readFile(path.join(REPO, 'datasets', 'sf-fire-incidents.json'), 'utf8'));
  datasetFile = path.join(root, 'datasets', 'sf-fire-incidents.json');
  await mkdir(path.dirname(datasetFile), { recursive: true });
  await writeFile(
    datasetFile,
    JSON.stringify({ ...base, fetch: { ...base.fetch, pageSize: 250 }, delivery: { ...base.delivery, bufferingSizeMiB: 1 } }),
  );
  parallelFile = path.join(root, 'datasets-parallel', 'sf-fire-incidents.json');
  await mkdir(path.dirname(parallelFile), { recursive: true });
  const small = JSON.parse(await readFile(datasetFile, 'utf8'));
  // Without the key scan: its repair would put back rows a wrong resume skipped, hiding the fault.
  await writeFile(parallelFile, JSON.stringify({ ...small, fetch: { ...small.fetch, streams: 4, parallelMinRows: 1_000 }, deletions: { detect: false } }));
  noScanFile = path.join(root, 'datasets-no-scan', 'sf-fire-incidents.json');
  await mkdir(path.dirname(noScanFile), { recursive: true });
  await writeFile(noScanFile, JSON.stringify({ ...JSON.parse(await readFile(datasetFile, 'utf8')), deletions: { detect: false } }));
});
after(() => rm(root, { recursive: true, force: true }));

const args = (dataDir: string, ...more: string[]): string[] => ['--rows', String(ROWS), '--data-dir', dataDir, '--dataset-file', datasetFile, ...more];
const noScanArgs = (dataDir: string, ...more: string[]): string[] => ['--rows', String(ROWS), '--data-dir', dataDir, '--dataset-file', noScanFile, ...more];

/** Lose curated rows behind the pipeline's back: each Parquet file of the table keeps only its first row. */
async function loseCuratedRows(dataDir: string): Promise<void> {
  const tableDir = path.join(dataDir, 'buckets', 'curated', 'curated', 'sf-fire-incidents');
  const parquet = (await readdir(tableDir, { recursive: true })).filter((f) => f.endsWith('.parquet') && !f.startsWith('marts') && !f.startsWith('deletions'));
  assert.ok(parquet.length > 0);
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    for (const f of parquet) {
      const file = path.join(tableDir, f);
      await conn.run(`COPY (SELECT * FROM read_parquet('${file}') LIMIT 1) TO '${file}.cut' (FORMAT parquet)`);
      await rename(`${file}.cut`, file);
    }
  } finally {
    conn.closeSync();
  }
}


async function crashThenRun(name: string, crashAt: string, file = datasetFile): Promise<void> {
  const dataDir = path.join(root, name);
  const runArgs = ['--rows', String(ROWS), '--data-dir', dataDir, '--dataset-file', file];
  const crashed = await runCli(runArgs, { PIPELINE_CRASH_AT: crashAt });
  assert.equal(crashed.signal, 'SIGKILL', `expected a SIGKILL at ${crashAt}; exit ${crashed.code}, stderr:\n${crashed.stderr}`);
  const [point, nth = '1'] = crashAt.split('#');
  assert.ok(crashed.stderr.includes(`fault point ${point}#${nth}: SIGKILL`), crashed.stderr);
  const checkpoint = await readCheckpoint(dataDir);
  const ranges = await readRangeProgress(dataDir);
  if (file === parallelFile) assert.ok(ranges && !ranges.done && checkpoint === undefined, 'the crash came mid parallel backfill');

  const again = await runCli(runArgs);
  assert.equal(again.code, 0, again.stderr);
  // What the crashed run's checkpoint covered was not fetched again: it must have been durable.
  const raw = await rawIds(dataDir);
  const generated = await generatedSourceIn(dataDir, ROWS);
  assert.deepEqual(
    rowsUpTo(generated, checkpoint).filter((r) => !raw.has(r.id)).map((r) => r.id),
    [],
    'every row behind the checkpoint reached raw/',
  );
  // Nor what a parallel backfill's saved ranges covered (each range resumes after its position).
  for (const r of ranges?.ranges ?? []) {
    const saved = rowsUpTo(generated, r.position ?? undefined).filter((row) => !rowsUpTo([row], r.after ?? undefined).length);
    assert.deepEqual(saved.filter((row) => !raw.has(row.id)).map((row) => row.id), [], 'every row behind a range\'s saved position reached raw/');
  }
  const curated = await curatedIds(dataDir);
  assert.equal(curated.length, ROWS, 'curated has no duplicate keys');
  assert.deepEqual(new Set(curated), sourceIds, 'curated keys == source ids');
}

describe('npm run local survives SIGKILL at any step', () => {
  test('after the first checkpoint write (the accepted rows still in the Firehose buffer)', () =>
    crashThenRun('first-checkpoint', 'fetch:after-checkpoint-write'));

  test('mid-fetch, after the 5th checkpoint write', () => crashThenRun('mid-fetch', 'fetch:after-checkpoint-write#5'));

  test('mid parallel backfill, after the 5th range progress write (no checkpoint yet)', () =>
    crashThenRun('mid-parallel', 'fetch:after-checkpoint-write#5', parallelFile));

  test('mid parallel backfill, right after a stream wrote a raw object, before its progress', () =>
    crashThenRun('parallel-object', 'fetch:after-direct-object#3', parallelFile));

  test('after a Firehose call is journaled, before it is answered', () => crashThenRun('after-journal', 'firehose:after-journal-append#3'));

  test('right after the local Firehose wrote a raw object', () => crashThenRun('after-object', 'firehose:after-object-write'));

  test(
    "during the transform's scratch write",
    () => crashThenRun('scratch-write', 'transform:after-scratch-write'),
  );

  test(
    'inside the curated commit',
    () => crashThenRun('mid-commit', 'transform:mid-commit'),
  );
});

describe('repair', () => {
  test(
    'without a key scan, when curated lost rows the run says to rebuild, and --rebuild restores it from raw without re-fetching',
    async () => {
      const dataDir = path.join(root, 'rebuild');
      assert.equal((await runCli(noScanArgs(dataDir))).code, 0);
      await loseCuratedRows(dataDir);
      const broken = await runCli(noScanArgs(dataDir));
      assert.notEqual(broken.code, 0, 'a curated table that lost rows is not reported as success');
      assert.match(broken.stderr, /npm run local -- --rebuild/);
      const rebuilt = await runCli(noScanArgs(dataDir, '--rebuild', '--json'));
      assert.equal(rebuilt.code, 0, rebuilt.stderr);
      assert.equal(JSON.parse(rebuilt.stdout.trim().split('\n').at(-1)!).fetch.rowsFetched, 0, 'nothing re-fetched');
      const curated = await curatedIds(dataDir);
      assert.equal(curated.length, ROWS);
      assert.deepEqual(new Set(curated), sourceIds);
    },
  );

  test(
    'with the key scan (the default), curated rows lost behind the pipeline are found missing and repaired by key in the same run',
    async () => {
      const dataDir = path.join(root, 'repair-by-key');
      assert.equal((await runCli(args(dataDir))).code, 0);
      await loseCuratedRows(dataDir);
      const repaired = await runCli(args(dataDir, '--json'));
      assert.equal(repaired.code, 0, repaired.stderr);
      const summary = JSON.parse(repaired.stdout.trim().split('\n').at(-1)!) as { fetch: { rowsFetched: number }; repair?: { keysRequested: number; rowsDelivered: number }; transform: { missingKeys: number; status: string } };
      assert.equal(summary.fetch.rowsFetched, 0, 'nothing new after the checkpoint');
      assert.ok(summary.repair && summary.repair.keysRequested > 0, 'the lost keys were listed and fetched');
      assert.equal(summary.repair.rowsDelivered, summary.repair.keysRequested);
      assert.deepEqual([summary.transform.missingKeys, summary.transform.status], [0, 'succeeded']);
      const curated = await curatedIds(dataDir);
      assert.equal(curated.length, ROWS);
      assert.deepEqual(new Set(curated), sourceIds);
    },
  );
});
