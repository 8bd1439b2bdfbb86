/**
 * Crash safety of the DuckDB curated commit (SIGKILL at each transform fault point, in a child
 * process, then an ordinary run), quarantine of raw objects that cannot be read whole, the
 * reconciliation from recorded keys, and rebuild.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { openObjectStore } from '../../runtime/object-store';
import { reportKey } from '../../runtime/storage-layout';
import { MANIFEST_FILE, manifestFiles, readManifest } from '../../containers/transform/src/curated-manifest';
import { curatedTableDir, DuckDbEngine, mergedKeysDir } from '../../containers/transform/src/duckdb-engine';
import { mergeBatch } from '../../containers/transform/src/merge-algorithm';
import { processedObjectsKey } from '../../containers/transform/src/processed-objects';
import { runTransform, type RunSummary } from '../../containers/transform/src/transform';
import { incident, writeRawObject } from './raw-fixture';

const ROOT = path.join(import.meta.dirname, '..', '..');
const DATASET_FILE = path.join(ROOT, 'datasets', 'sf-fire-incidents.json');
const DATASET = loadDatasetFile(DATASET_FILE);
const NAME = DATASET.name;
const CHILD = path.join(import.meta.dirname, 'transform-child.ts');

function dirs() {
  const root = mkdtempSync(path.join(tmpdir(), 'crash-'));
  const rawDir = path.join(root, 'raw');
  const curatedDir = path.join(root, 'curated');
  return { rawDir, curatedDir, rawStore: openObjectStore(rawDir), curatedStore: openObjectStore(curatedDir), tableDir: curatedTableDir(curatedDir, DATASET) };
}
type Dirs = ReturnType<typeof dirs>;

const run = (d: Dirs, runId: string, extra: { rebuild?: boolean; log?: (l: string) => void } = {}): Promise<RunSummary> =>
  runTransform({ dataset: DATASET, engine: 'duckdb', rawStore: d.rawStore, curatedStore: d.curatedStore, runId, marts: [], ...extra });

/** Curated as a reader sees it (only the files the manifest names): id → battalion. */
async function curated(d: Dirs): Promise<{ ids: string[]; battalion: Map<string, string> }> {
  const files = manifestFiles(d.tableDir);
  if (!files.length) return { ids: [], battalion: new Map() };
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    const rows = (await conn.runAndReadAll(`SELECT id, battalion FROM read_parquet([${files.map((f) => `'${f}'`).join(', ')}]) ORDER BY id`)).getRowObjectsJS();
    return { ids: rows.map((r) => String(r.id)), battalion: new Map(rows.map((r) => [String(r.id), String(r.battalion)])) };
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

const idOf = (i: number): string => `${100000 + i}0`;
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, k) => from + k);

/** Run 1 merges keys 0..19; a second object updates 0..4 (5 moves to another event year) and adds 20..24. */
async function twoBatches(d: Dirs): Promise<{ before: string[]; after: string[] }> {
  writeRawObject(d.rawDir, NAME, '2024-03-01', 'a', range(0, 20).map((i) => incident(i)));
  const s1 = await run(d, 'r1');
  assert.equal(s1.status, 'succeeded');
  writeRawObject(d.rawDir, NAME, '2024-03-02', 'b', [
    ...range(0, 5).map((i) => incident(i, { battalion: 'B77' }, 1)),
    incident(5, { incident_date: '2031-01-01T00:00:00.000', battalion: 'B77' }, 1),
    ...range(20, 25).map((i) => incident(i, {}, 1)),
  ]);
  return { before: range(0, 20).map(idOf).sort(), after: range(0, 25).map(idOf).sort() };
}

function child(d: Dirs, runId: string, crashAt?: string, mode?: string) {
  const env = { ...process.env };
  delete env.PIPELINE_CRASH_AT;
  if (crashAt) env.PIPELINE_CRASH_AT = crashAt;
  return spawnSync(process.execPath, ['--import', 'tsx', CHILD, DATASET_FILE, d.rawDir, d.curatedDir, runId, ...(mode ? [mode] : [])], {
    env,
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
}

/** Version directories on disk that neither the current nor the previous commit names. */
function unreferencedVersions(d: Dirs): string[] {
  const m = readManifest(d.tableDir);
  const named = new Set([...Object.values(m.partitions), ...Object.values(m.previous)].map((p) => p.split(path.sep)[0]));
  return readdirSync(d.tableDir).filter((e) => e.startsWith('v-') && !named.has(e));
}

describe('curated commit survives SIGKILL at every transform fault point', () => {
  const points: [string, 'old' | 'new'][] = [
    ['transform:after-scratch-write', 'old'],
    ['transform:mid-commit', 'old'],
    ['transform:after-commit', 'new'],
  ];
  for (const [point, visible] of points) {
    test(`killed at ${point}: readers see the ${visible} state whole, the next run ends exact`, async () => {
      const d = dirs();
      const { before, after } = await twoBatches(d);
      const crashed = child(d, 'r2', point);
      assert.equal(crashed.signal, 'SIGKILL', `the child was killed at ${point}: ${crashed.stderr}`);
      assert.match(crashed.stderr, new RegExp(`fault point ${point}#1: SIGKILL`));

      // What a reader sees right after the crash: exactly one of the two states, never a mix.
      const seen = await curated(d);
      assert.deepEqual(seen.ids, visible === 'old' ? before : after);
      assert.equal(seen.battalion.get(idOf(0)), visible === 'old' ? incident(0).battalion : 'B77');

      // The next run starts by removing what the crashed one left (before it commits anything).
      const engine = await DuckDbEngine.open({ dataset: DATASET, rawDir: d.rawDir, curatedDir: d.curatedDir, runId: 'r3' });
      await engine.prepare();
      await engine.close();
      assert.deepEqual(unreferencedVersions(d), [], 'the crashed run\'s files were cleaned at the start of the next run');

      const s = await run(d, 'r3');
      const end = await curated(d);
      assert.deepEqual(end.ids, after, 'curated == expected keys exactly, no duplicates');
      for (const i of range(0, 6)) assert.equal(end.battalion.get(idOf(i)), 'B77');
      assert.equal(s.status, 'succeeded', JSON.stringify(s.failedErrorTests));
      assert.deepEqual(s.reconciliation, { mergedKeys: 25, curatedRows: 25 });
      // Re-merging an object the crashed run had already committed changes nothing.
      if (visible === 'new') assert.deepEqual([s.rowsInserted, s.rowsUpdated], [0, 0]);
      assert.deepEqual(unreferencedVersions(d), []);
      assert.deepEqual(readdirSync(d.tableDir).filter((f) => f.endsWith('.tmp')), []);
    });
  }
});

describe('atomic switch', () => {
  test('the manifest is replaced by rename: its previous content stays whole until the switch', async () => {
    const d = dirs();
    await twoBatches(d);
    const old = readFileSync(path.join(d.tableDir, MANIFEST_FILE), 'utf8');
    const crashed = child(d, 'r2', 'transform:mid-commit');
    assert.equal(crashed.signal, 'SIGKILL');
    assert.equal(readFileSync(path.join(d.tableDir, MANIFEST_FILE), 'utf8'), old, 'the live manifest was not written in place');
    const temps = readdirSync(d.tableDir).filter((f) => f.startsWith(`.${MANIFEST_FILE}.`));
    assert.equal(temps.length, 1, 'the new manifest was fully written aside first');
    assert.ok(JSON.parse(readFileSync(path.join(d.tableDir, temps[0]!), 'utf8')).version.startsWith('v-'));
    // The old state's files are untouched: every file the old manifest names still exists.
    for (const f of manifestFiles(d.tableDir)) assert.ok(existsSync(f));
  });

  test('a year that loses all its rows disappears from the manifest; older versions go after the next run', async () => {
    const d = dirs();
    writeRawObject(d.rawDir, NAME, '2024-03-01', 'a', [incident(0, { incident_date: '2020-05-05T00:00:00.000' })]);
    await run(d, 'r1');
    assert.deepEqual(Object.keys(readManifest(d.tableDir).partitions), ['event_year=2020']);
    writeRawObject(d.rawDir, NAME, '2024-03-02', 'b', [incident(0, {}, 1)]);
    await run(d, 'r2');
    assert.deepEqual(Object.keys(readManifest(d.tableDir).partitions), ['event_year=2022']);
    writeRawObject(d.rawDir, NAME, '2024-03-03', 'c', [incident(1, {}, 1)]);
    await run(d, 'r3');
    const versions = readdirSync(d.tableDir).filter((e) => e.startsWith('v-'));
    assert.equal(versions.length, 2, `only the current and the previous commit remain: ${versions.join(', ')}`);
    assert.deepEqual((await curated(d)).ids, [idOf(0), idOf(1)]);
  });
});

describe('concurrent commits', () => {
  test('a run whose curated was committed by another run meanwhile switches nothing and says to run again', async () => {
    const d = dirs();
    writeRawObject(d.rawDir, NAME, '2024-03-01', 'a', [incident(0), incident(1)]);
    await run(d, 'r1');
    const slow = await DuckDbEngine.open({ dataset: DATASET, rawDir: d.rawDir, curatedDir: d.curatedDir, runId: 'slow' });
    try {
      await slow.prepare();
      const b = writeRawObject(d.rawDir, NAME, '2024-03-02', 'b', [incident(1, { battalion: 'B88' }, 1)]);
      await run(d, 'fast');
      const version = readManifest(d.tableDir).version;
      await assert.rejects(mergeBatch(slow, [b, 'raw/sf-fire-incidents/ingest_date=2024-03-01/a.gz']), /committed by another run .*run the transform again/);
      assert.equal(readManifest(d.tableDir).version, version);
      assert.equal((await curated(d)).battalion.get(idOf(1)), 'B88');
    } finally {
      await slow.close();
    }
  });
});

describe('raw objects that cannot be read whole', () => {
  test('a truncated .gz is quarantined, never marked processed, the run fails naming it; once replaced it is merged', async () => {
    const d = dirs();
    writeRawObject(d.rawDir, NAME, '2024-03-01', 'good', range(0, 5).map((i) => incident(i)));
    const badKey = writeRawObject(d.rawDir, NAME, '2024-03-01', 'bad', range(100, 600).map((i) => incident(i)));
    const full = readFileSync(path.join(d.rawDir, badKey));
    truncateSync(path.join(d.rawDir, badKey), Math.floor(full.length / 2));
    const logs: string[] = [];
    const s = await run(d, 'r1', { log: (l) => logs.push(l) });
    assert.equal(s.status, 'tests_failed');
    assert.deepEqual(s.failedErrorTests, ['raw_objects_readable']);
    assert.equal(s.rawObjects.quarantined, 1);
    assert.deepEqual(s.quarantinedObjects.map((q) => q.key), [badKey]);
    assert.match(s.quarantinedObjects[0]!.error, /unexpected end of file/i);
    assert.equal(s.curatedRows, 5, 'no partial read of the truncated object');
    assert.ok(logs.some((l) => l.includes(badKey) && /cannot be read whole/.test(l)));
    const html = (await d.curatedStore.get(reportKey(DATASET, 'r1')))!.body.toString();
    assert.ok(html.includes(badKey), 'the HTML report names the quarantined object');
    const state = JSON.parse((await d.curatedStore.get(processedObjectsKey(DATASET)))!.body.toString());
    assert.ok(!state.objects.includes(badKey), 'not marked processed');
    assert.deepEqual(Object.keys(state.quarantined), [badKey]);

    writeFileSync(path.join(d.rawDir, badKey), full);
    const s2 = await run(d, 'r2');
    assert.equal(s2.status, 'succeeded', JSON.stringify(s2.failedErrorTests));
    assert.equal(s2.rawObjects.new, 1);
    assert.equal(s2.curatedRows, 505);
    const state2 = JSON.parse((await d.curatedStore.get(processedObjectsKey(DATASET)))!.body.toString());
    assert.deepEqual(state2.quarantined, {});
  });

  test('a .gz corrupt mid-stream (DuckDB reads it partly, silently) and one with trailing garbage (DuckDB refuses the whole read) are quarantined; the rest is merged', async () => {
    const d = dirs();
    writeRawObject(d.rawDir, NAME, '2024-03-01', 'good', range(0, 5).map((i) => incident(i)));
    const flippedKey = writeRawObject(d.rawDir, NAME, '2024-03-01', 'flipped', range(100, 600).map((i) => incident(i)));
    const flipped = readFileSync(path.join(d.rawDir, flippedKey));
    flipped[Math.floor(flipped.length / 2)]! ^= 0x55;
    writeFileSync(path.join(d.rawDir, flippedKey), flipped);
    const s = await run(d, 'r1');
    assert.deepEqual(s.quarantinedObjects.map((q) => q.key), [flippedKey]);
    assert.deepEqual(s.failedErrorTests, ['raw_objects_readable']);
    assert.equal(s.rowsRead, 5, 'nothing of the damaged object is read');
    assert.equal(s.curatedRows, 5);

    const tailKey = writeRawObject(d.rawDir, NAME, '2024-03-02', 'tail', range(600, 700).map((i) => incident(i)));
    writeFileSync(path.join(d.rawDir, tailKey), Buffer.concat([readFileSync(path.join(d.rawDir, tailKey)), Buffer.from('garbage')]));
    writeRawObject(d.rawDir, NAME, '2024-03-02', 'good2', range(700, 710).map((i) => incident(i)));
    const s2 = await run(d, 'r2');
    assert.deepEqual(s2.quarantinedObjects.map((q) => q.key), [flippedKey, tailKey]);
    assert.equal(s2.rowsRead, 10, 'the new readable object is merged');
    assert.equal(s2.curatedRows, 15);
  });
});

describe('reconciliation and rebuild', () => {
  test('curated that lost rows fails reconciliation with what to do; rebuild repairs it from raw without re-fetching', async () => {
    const d = dirs();
    await twoBatches(d);
    await run(d, 'r2');
    // Lose a year of curated (what a broken commit or a deleted file would do).
    const manifestPath = path.join(d.tableDir, MANIFEST_FILE);
    const m = JSON.parse(readFileSync(manifestPath, 'utf8'));
    const lost = Object.keys(m.partitions).sort()[0]!;
    delete m.partitions[lost];
    writeFileSync(manifestPath, JSON.stringify(m));
    const logs: string[] = [];
    const broken = await run(d, 'r3', { log: (l) => logs.push(l) });
    assert.equal(broken.status, 'tests_failed');
    assert.deepEqual(broken.failedErrorTests, ['reconciliation_merged_keys_equal_curated_rows']);
    assert.ok(broken.reconciliation.curatedRows < 25);
    assert.equal(broken.reconciliation.mergedKeys, 25);
    assert.ok(logs.some((l) => l.includes('npm run local -- --rebuild') && l.includes('REBUILD=true')), logs.join('\n'));

    const rebuilt = await run(d, 'r4', { rebuild: true });
    assert.equal(rebuilt.rebuild, true);
    assert.equal(rebuilt.status, 'succeeded', JSON.stringify(rebuilt.failedErrorTests));
    assert.equal(rebuilt.rawObjects.new, 2);
    assert.equal(rebuilt.rowsInserted, 25);
    assert.deepEqual((await curated(d)).ids, range(0, 25).map(idOf).sort());
    assert.equal((await curated(d)).battalion.get(idOf(3)), 'B77', 'newest versions win in a rebuild too');
    const state = JSON.parse((await d.curatedStore.get(processedObjectsKey(DATASET)))!.body.toString());
    assert.equal(state.objects.length, 2);
    assert.equal(state.lastRunId, 'r4');
    const after = await run(d, 'r5');
    assert.deepEqual([after.status, after.rawObjects.new, after.curatedRows], ['succeeded', 0, 25]);
  });

  test('every merged object is recorded, also one that contributed no key, so reconciliation stays an error-severity test', async () => {
    const d = dirs();
    writeRawObject(d.rawDir, NAME, '2024-03-01', 'a', [incident(0, {}, 1)]);
    writeRawObject(d.rawDir, NAME, '2024-03-01', 'b', ['not json', incident(0)]);
    const s = await run(d, 'r1');
    const recon = s.tests.results.find((r) => r.name === 'reconciliation_merged_keys_equal_curated_rows')!;
    assert.deepEqual([recon.severity, recon.status], ['error', 'pass']);
    const state = JSON.parse((await d.curatedStore.get(processedObjectsKey(DATASET)))!.body.toString());
    assert.deepEqual(state.contributions, {
      'raw/sf-fire-incidents/ingest_date=2024-03-01/a.gz': { keys: 1, inserted: 1 },
      'raw/sf-fire-incidents/ingest_date=2024-03-01/b.gz': { keys: 0, inserted: 0 },
    });
  });

  test('a state written before keys were recorded makes reconciliation a warning that asks for a rebuild, until one runs', async () => {
    const d = dirs();
    writeRawObject(d.rawDir, NAME, '2024-03-01', 'a', [incident(0), incident(1)]);
    await run(d, 'r1');
    // What an earlier version left: the object list only, no recorded keys.
    const key = processedObjectsKey(DATASET);
    const objects = JSON.parse((await d.curatedStore.get(key))!.body.toString()).objects;
    writeFileSync(path.join(d.curatedDir, key), JSON.stringify({ dataset: NAME, lastRunId: 'old', objects }));
    rmSync(mergedKeysDir(d.curatedDir, DATASET), { recursive: true, force: true });
    const s = await run(d, 'r2');
    const recon = s.tests.results.find((r) => r.name === 'reconciliation_merged_keys_equal_curated_rows')!;
    assert.deepEqual([s.status, recon.severity, recon.status], ['succeeded', 'warn', 'warn']);
    assert.match(recon.description, /1 raw object\(s\) were merged before keys were recorded.*--rebuild/);
    const rebuilt = await run(d, 'r3', { rebuild: true });
    const after = rebuilt.tests.results.find((r) => r.name === 'reconciliation_merged_keys_equal_curated_rows')!;
    assert.deepEqual([rebuilt.status, after.severity, after.status], ['succeeded', 'error', 'pass']);
  });

  test('a curated directory deleted behind the pipeline\'s back fails reconciliation; an unreadable manifest fails the run; rebuild repairs both', async () => {
    const d = dirs();
    await twoBatches(d);
    await run(d, 'r2');
    const m = readManifest(d.tableDir);
    rmSync(path.join(d.tableDir, Object.values(m.partitions)[0]!), { recursive: true });
    const lost = await run(d, 'r3');
    assert.deepEqual(lost.failedErrorTests, ['reconciliation_merged_keys_equal_curated_rows']);

    writeFileSync(path.join(d.tableDir, MANIFEST_FILE), '{"version": "v-x", "partit');
    await assert.rejects(run(d, 'r4'), /Curated manifest .* is not valid JSON.*npm run local -- --rebuild.*REBUILD=true/);
    const rebuilt = await run(d, 'r5', { rebuild: true });
    assert.equal(rebuilt.status, 'succeeded', JSON.stringify(rebuilt.failedErrorTests));
    assert.deepEqual((await curated(d)).ids, range(0, 25).map(idOf).sort());
  });

  test('a rebuild that crashes before its commit leaves the old curated table in place', async () => {
    const d = dirs();
    await twoBatches(d);
    await run(d, 'r2');
    const before = await curated(d);
    const crashed = child(d, 'r3', 'transform:mid-commit', 'rebuild');
    assert.equal(crashed.signal, 'SIGKILL');
    assert.deepEqual(await curated(d), before);
    const done = child(d, 'r4', undefined, 'rebuild');
    assert.equal(done.status, 0, done.stderr);
    assert.deepEqual((await curated(d)).ids, before.ids);
    rmSync(d.tableDir, { recursive: true, force: true });
  });
});
