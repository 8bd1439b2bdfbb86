/**
 * The history of every key and the change feed, on DuckDB and on the production AthenaEngine over
 * a real Trino: after a run that updates and deletes keys, `<table>__history` holds the old and
 * the new version of each updated key with contiguous validity and the deleted keys closed at
 * their deletion time, and `<table>__changes` lists exactly the run's inserts, updates and
 * deletes. A run retried after failing at its merge, and one re-merging its objects, duplicate
 * nothing; a rebuild from raw gives the same history.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { loadDatasetFile, type DatasetConfig } from '../../runtime/dataset-config';
import { encodeKeyList } from '../../runtime/key-list';
import { openObjectStore } from '../../runtime/object-store';
import { keysetPartKey, keysetSuccessKey } from '../../runtime/storage-layout';
import { queryCatalog } from '../../containers/transform/src/catalog';
import { DuckDbEngine } from '../../containers/transform/src/duckdb-engine';
import type { Row } from '../../containers/transform/src/engine';
import { runTransform, type RunSummary } from '../../containers/transform/src/transform';
import type { LocalAthena } from '../../local/athena-local';
import { trinoSkip } from '../support/trino';
import { ENGINES, EnginePair, suiteAthena, type EngineName } from './engine-pair';
import { incident, writeRawObject, type RawRow } from './raw-fixture';

const FIRE = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'));
// Two deletions of 13 keys pass the guard.
const DATASET: DatasetConfig = { ...FIRE, deletions: { ...FIRE.deletions, maxDeleteShare: 0.5 } };
const NAME = DATASET.name;
const key = (i: number): string => `${100000 + i}0`;
// After every version's :updated_at: the key scan's detection time.
const NOW = new Date('2024-03-10T00:00:00.000Z');
const at = (v: number): string => `2024-02-0${1 + v}T00:00:00.000Z`;

const TABLE = 'sf_fire_incidents';

/** r0's raw rows: twelve keys, key 5 delivered twice (at-least-once delivery: one version, not two). */
const FIRST_BATCH = (): RawRow[] => [...Array.from({ length: 12 }, (_, i) => incident(i)), incident(5)];

/** r1's raw rows: three keys moved, one re-delivered unchanged, one changed twice within the batch, one new. */
const SECOND_BATCH = (): RawRow[] => [
  ...[0, 1, 2].map((i) => incident(i, { address: `MOVED ${i}` }, 1)),
  incident(3, {}, 1),
  incident(4, { address: 'MID 4' }, 1),
  incident(4, { address: 'LAST 4' }, 2),
  incident(12, {}, 1),
];

async function writeKeyScan(pair: EnginePair, runId: string, keys: string[]): Promise<void> {
  await pair.rawStore.put(keysetPartKey(DATASET, runId, 1), gzipSync(encodeKeyList(keys)));
  await pair.rawStore.put(keysetSuccessKey(DATASET, runId), JSON.stringify({ dataset: NAME, runId, source: DATASET.source, keys: keys.length, parts: 1, startedAt: '', completedAt: '' }));
}

/** Both engines answer the same rows; returns them. */
async function agreeing(pair: EnginePair, sql: Parameters<EnginePair['feedRows']>[0]): Promise<Row[]> {
  const r = await pair.feedRows(sql);
  assert.deepEqual(r.athena, r.duckdb, 'the engines disagree');
  return r.duckdb;
}

const historySql = (t: { history: string }): string =>
  `SELECT id, address, valid_from, valid_to, is_current, deleted_at FROM ${t.history} ORDER BY id, valid_from`;
const allHistorySql = (t: { history: string }): string => `SELECT * FROM ${t.history} ORDER BY id, valid_from`;
const changesSql = (runId: string) => (t: { changes: string }): string =>
  `SELECT change, key, changed_columns FROM ${t.changes} WHERE run_id = '${runId}' ORDER BY change, key`;

interface Version {
  id: string;
  address: string;
  valid_from: string;
  valid_to: string | null;
  is_current: boolean;
  deleted_at: string | null;
}

/** Each key's versions follow each other without gap or overlap; the last is current or closed by its deletion. */
function assertContiguous(rows: Row[]): void {
  const byKey = new Map<string, Row[]>();
  for (const r of rows) byKey.set(String(r.id), [...(byKey.get(String(r.id)) ?? []), r]);
  for (const [id, versions] of byKey) {
    versions.forEach((v, i) => {
      const next = versions[i + 1];
      if (next) {
        assert.equal(v.valid_to, next.valid_from, `key ${id}: version ${i} ends where the next begins`);
        assert.equal(v.is_current, false);
        assert.equal(v.deleted_at, null);
      } else if (v.deleted_at === null) {
        assert.deepEqual([v.valid_to, v.is_current], [null, true], `key ${id}: the last version is current`);
      } else {
        assert.deepEqual([v.valid_to, v.is_current], [v.deleted_at, false], `key ${id}: closed at its deletion`);
      }
    });
  }
}

/** What the history must hold after r1 (see the scenario). */
function expectedHistory(): Version[] {
  const v = (i: number, address: string, from: number, to: number | null, deleted = false): Version => ({
    id: key(i),
    address,
    valid_from: at(from),
    valid_to: deleted ? NOW.toISOString() : to === null ? null : at(to),
    is_current: to === null && !deleted,
    deleted_at: deleted ? NOW.toISOString() : null,
  });
  const rows: Version[] = [];
  for (let i = 0; i <= 12; i++) {
    const base = `${i} MARKET ST`;
    if (i <= 2) rows.push(v(i, base, 0, 1), v(i, `MOVED ${i}`, 1, null));
    else if (i === 4) rows.push(v(i, base, 0, 1), v(i, 'MID 4', 1, 2), v(i, 'LAST 4', 2, null));
    else if (i === 10 || i === 11) rows.push(v(i, base, 0, null, true));
    else if (i === 12) rows.push(v(i, base, 1, null));
    else rows.push(v(i, base, 0, null));
  }
  return rows;
}

const EXPECTED_CHANGES = [
  { change: 'delete', key: key(10), changed_columns: null },
  { change: 'delete', key: key(11), changed_columns: null },
  { change: 'insert', key: key(12), changed_columns: null },
  ...[0, 1, 2, 4].map((i) => ({ change: 'update', key: key(i), changed_columns: 'address' })),
];

describe('history and change feed on both engines', { skip: trinoSkip }, () => {
  let athena: LocalAthena;
  suiteAthena((started) => (athena = started));

  test('updates and deletions: old and new versions with contiguous validity, deletions closed, changes exactly the run; retries and a rebuild change nothing', async () => {
    const pair = await EnginePair.create(athena, DATASET);
    // r0: twelve keys (FIRST_BATCH).
    writeRawObject(pair.rawDir, NAME, '2024-03-01', 'a', FIRST_BATCH());
    await pair.runAgreeing('r0', { now: () => NOW });
    const inserts = await agreeing(pair, changesSql('r0'));
    assert.deepEqual(inserts.map((r) => [r.change, r.key]), Array.from({ length: 12 }, (_, i) => ['insert', key(i)]));
    assertContiguous(await agreeing(pair, historySql));

    // r1: three keys moved, one re-delivered unchanged, one changed twice within the batch, one
    // new; the source no longer has two keys.
    writeRawObject(pair.rawDir, NAME, '2024-03-02', 'b', SECOND_BATCH());
    await writeKeyScan(pair, 'r1', [...Array.from({ length: 10 }, (_, i) => key(i)), key(12)]);

    // Attempt 1 fails at the curated merge, after the records were written (records go first).
    const failing = (): never => {
      throw new Error('merge interrupted');
    };
    const duck = await DuckDbEngine.open({ dataset: DATASET, rawDir: pair.rawDir, curatedDir: pair.curatedDir.duckdb, runId: 'r1', renderMerge: failing });
    try {
      for (const name of ENGINES) {
        const engine = name === 'duckdb' ? duck : pair.athenaEngine('r1', DATASET, { renderMerge: failing });
        await assert.rejects(
          runTransform({ dataset: DATASET, engine, rawStore: pair.rawStore, curatedStore: openObjectStore(pair.curatedDir[name]), runId: 'r1', now: () => NOW }),
          /merge interrupted/,
        );
      }
    } finally {
      await duck.close();
    }
    const early = await pair.feedRows(changesSql('r1'));
    for (const name of ENGINES) assert.equal(early[name].filter((r) => r.change === 'update').length, 4, `${name}: the updates were recorded before the merge`);

    // Attempt 2 succeeds.
    const s = await pair.runAgreeing('r1', { now: () => NOW });
    assert.deepEqual([s.duckdb.rowsInserted, s.duckdb.rowsUpdated, s.duckdb.rowsDeleted], [1, 4, 2]);
    const expected = expectedHistory();
    const check = async (when: string): Promise<Row[]> => {
      const history = await agreeing(pair, historySql);
      assert.deepEqual(history, expected, `${when}: history`);
      assertContiguous(history);
      assert.deepEqual(await agreeing(pair, changesSql('r1')), EXPECTED_CHANGES, `${when}: changes`);
      return agreeing(pair, allHistorySql);
    };
    const full = await check('after the retried run');
    // The current versions are curated's content.
    const curated = await pair.agree((ref) => `SELECT id, address FROM ${ref('curated')} ORDER BY id`);
    assert.deepEqual(curated, full.filter((r) => r.is_current).map((r) => ({ id: r.id, address: r.address })));

    // The summary and the report say what changed.
    for (const name of ENGINES) assertChangesReported(s[name], await reportOf(pair, name, 'r1'));

    // The same run id merging its objects again (its bookkeeping lost): nothing is added twice.
    for (const name of ENGINES) rmSync(path.join(pair.curatedDir[name], 'curated', '_state', NAME, 'processed-objects.json'));
    // (Marts are not rebuilt here: athena-same-run-id.test.ts builds them again under one run id.)
    await pair.runAgreeing('r1', { now: () => NOW, marts: [] });
    assert.deepEqual(await check('after re-merging under the same run id'), full);

    // A rebuild from raw (with the deletions record) gives the same history.
    await pair.runAgreeing('r2', { now: () => NOW, rebuild: true });
    assert.deepEqual(await agreeing(pair, allHistorySql), full, 'rebuilt history');
    assert.deepEqual(await agreeing(pair, changesSql('r2')), [], 'a rebuild is no change at the source');
  });
});

describe('Iceberg time travel on Athena (on Trino)', { skip: trinoSkip }, () => {
  let athena: LocalAthena;
  suiteAthena((started) => (athena = started));

  test('the curated table as it was: FOR VERSION AS OF a snapshot and FOR TIMESTAMP AS OF its commit time (docs/transform.md)', async () => {
    const pair = await EnginePair.create(athena, DATASET);
    const run = (runId: string): Promise<RunSummary> =>
      runTransform({ dataset: DATASET, engine: pair.athenaEngine(runId), rawStore: pair.rawStore, curatedStore: openObjectStore(pair.curatedDir.athena), runId, now: () => NOW, marts: [] });
    writeRawObject(pair.rawDir, NAME, '2024-03-01', 'a', Array.from({ length: 3 }, (_, i) => incident(i)));
    await run('r0');
    const engine = pair.athenaEngine('read');
    const db = pair.catalog.curatedDatabase;
    const [before] = await engine.rows(`SELECT CAST(snapshot_id AS varchar) AS snapshot_id, CAST(committed_at AS varchar) AS committed_at FROM "${db}"."${TABLE}$snapshots" ORDER BY committed_at DESC LIMIT 1`);
    writeRawObject(pair.rawDir, NAME, '2024-03-02', 'b', [incident(0, { address: 'MOVED 0' }, 1)]);
    await run('r1');
    const address = async (clause: string): Promise<unknown> =>
      (await engine.rows(`SELECT address FROM "${db}"."${TABLE}" ${clause} WHERE id = '${key(0)}'`))[0]?.address;
    assert.equal(await address(''), 'MOVED 0');
    assert.equal(await address(`FOR VERSION AS OF ${String(before!.snapshot_id)}`), '0 MARKET ST');
    assert.equal(await address(`FOR TIMESTAMP AS OF TIMESTAMP '${String(before!.committed_at)}'`), '0 MARKET ST');
  });
});

describe('history and change feed on DuckDB (the local catalog)', () => {
  test('the same scenario through the local catalog views; a rebuild gives the same history', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'history-duckdb-'));
    const rawDir = path.join(root, 'raw');
    const curatedDir = path.join(root, 'curated');
    const catalogPath = path.join(root, 'catalog.duckdb');
    const run = (runId: string, rebuild = false): Promise<RunSummary> =>
      runTransform({ dataset: DATASET, engine: 'duckdb', rawStore: openObjectStore(rawDir), curatedStore: openObjectStore(curatedDir), runId, now: () => NOW, catalogPath, rebuild });
    writeRawObject(rawDir, NAME, '2024-03-01', 'a', FIRST_BATCH());
    await run('r0');
    writeRawObject(rawDir, NAME, '2024-03-02', 'b', SECOND_BATCH());
    const rawStore = openObjectStore(rawDir);
    const keys = [...Array.from({ length: 10 }, (_, i) => key(i)), key(12)];
    await rawStore.put(keysetPartKey(DATASET, 'r1', 1), gzipSync(encodeKeyList(keys)));
    await rawStore.put(keysetSuccessKey(DATASET, 'r1'), JSON.stringify({ dataset: NAME, runId: 'r1', source: DATASET.source, keys: keys.length, parts: 1, startedAt: '', completedAt: '' }));
    const s = await run('r1');
    const q = async (sql: string): Promise<Row[]> =>
      (await queryCatalog(catalogPath, sql)).rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && /^\d{4}-\d\d-\d\d \d\d:/.test(v) ? `${v.replace(' ', 'T').slice(0, 19)}.000Z` : v])));
    const history = await q(`SELECT id, address, valid_from, valid_to, is_current, deleted_at FROM curated.${TABLE}__history ORDER BY id, valid_from`);
    assert.deepEqual(history, expectedHistory());
    assertContiguous(history);
    assert.deepEqual(await q(`SELECT change, key, changed_columns FROM curated.${TABLE}__changes WHERE run_id = 'r1' ORDER BY change, key`), EXPECTED_CHANGES);
    assertChangesReported(s, (await openObjectStore(curatedDir).get(`reports/${NAME}/r1.html`))!.body.toString('utf8'));
    const before = await q(`SELECT * FROM curated.${TABLE}__history ORDER BY id, valid_from`);
    // The same run id merging its objects again (its bookkeeping lost): nothing is added twice.
    rmSync(path.join(curatedDir, 'curated', '_state', NAME, 'processed-objects.json'));
    await run('r1');
    assert.deepEqual(await q(`SELECT * FROM curated.${TABLE}__history ORDER BY id, valid_from`), before, 'history after re-merging');
    assert.deepEqual(await q(`SELECT change, key, changed_columns FROM curated.${TABLE}__changes WHERE run_id = 'r1' ORDER BY change, key`), EXPECTED_CHANGES);
    await run('r2', true);
    assert.deepEqual(await q(`SELECT * FROM curated.${TABLE}__history ORDER BY id, valid_from`), before, 'rebuilt history');
    // A key the run inserted and a later pass of the same run id (the repair's) updated stays an insert: the run's net change.
    writeRawObject(rawDir, NAME, '2024-03-03', 'c', [incident(12, { address: 'LATER 12' }, 2)]);
    assert.equal((await run('r1')).rowsUpdated, 1);
    assert.deepEqual(await q(`SELECT change, key, changed_columns FROM curated.${TABLE}__changes WHERE run_id = 'r1' ORDER BY change, key`), EXPECTED_CHANGES);
  });
});

async function reportOf(pair: EnginePair, name: EngineName, runId: string): Promise<string> {
  return (await openObjectStore(pair.curatedDir[name]).get(`reports/${NAME}/${runId}.html`))!.body.toString('utf8');
}

function assertChangesReported(s: RunSummary, report: string): void {
  assert.deepEqual(s.changes, {
    inserted: 1,
    updated: 4,
    deleted: 2,
    columns: [{ column: 'address', updates: 4 }],
    examples: { insert: [key(12)], update: [0, 1, 2, 4].map(key), delete: [key(10), key(11)] },
  });
  assert.match(report, /What changed this run/);
  assert.match(report, /Most-changed columns<\/th><td>address \(4\)</);
  assert.match(report, new RegExp(key(12)));
}
