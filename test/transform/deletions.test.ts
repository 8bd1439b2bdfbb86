/**
 * Deletions and reconciliation against the source's key set on DuckDB: a completed key scan for
 * the run deletes curated rows whose keys are gone (recorded in the deletions table), refuses a
 * mass delete, reports keys curated lacks (both directions of the reconciliation can fail), and
 * an incomplete scan deletes nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import { loadDatasetFile, type DatasetConfig } from '../../runtime/dataset-config';
import { openObjectStore, type ObjectStore } from '../../runtime/object-store';
import { decodeKeyList, encodeKeyList } from '../../runtime/key-list';
import { writeQuarantine } from '../../lambdas/fetcher/quarantine';
import { keysetPartKey, keysetSuccessKey, missingKeysKey } from '../../runtime/storage-layout';
import { queryCatalog, registerCurated } from '../../containers/transform/src/catalog';
import { manifestFiles } from '../../containers/transform/src/curated-manifest';
import { deletionsDir } from '../../containers/transform/src/duckdb-engine';
import { EXIT, main } from '../../containers/transform/src/main';
import { KeyScanError, MassDeleteRefusedError, RECONCILIATION_TEST, runTransform, SOURCE_RECONCILIATION_TEST, type RunSummary } from '../../containers/transform/src/transform';
import { incident, writeRawObject } from './raw-fixture';

const DATASET = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'));
const NAME = DATASET.name;

function dirs() {
  const root = mkdtempSync(path.join(tmpdir(), 'deletions-'));
  const rawDir = path.join(root, 'raw');
  const curatedDir = path.join(root, 'curated');
  return { rawDir, curatedDir, rawStore: openObjectStore(rawDir), curatedStore: openObjectStore(curatedDir) };
}
type Dirs = ReturnType<typeof dirs>;

const run = (d: Dirs, runId: string, dataset: DatasetConfig = DATASET): Promise<RunSummary> =>
  runTransform({ dataset, engine: 'duckdb', rawStore: d.rawStore, curatedStore: d.curatedStore, runId });

/** A key scan as the fetcher lands it; `complete: false` leaves out _SUCCESS. */
async function writeKeyScan(store: ObjectStore, runId: string, keys: string[], o: { complete?: boolean; parts?: number; source?: { domain: string; datasetId: string } } = {}): Promise<void> {
  const parts = o.parts ?? 2;
  const per = Math.ceil(keys.length / parts);
  for (let p = 0; p < parts; p++) {
    const slice = keys.slice(p * per, (p + 1) * per);
    await store.put(keysetPartKey(DATASET, runId, p + 1), gzipSync(encodeKeyList(slice)));
  }
  if (o.complete === false) return;
  const source = o.source ?? DATASET.source;
  await store.put(keysetSuccessKey(DATASET, runId), JSON.stringify({ dataset: NAME, runId, source, keys: keys.length, parts, startedAt: '', completedAt: '' }));
}

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    return (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

async function curatedKeys(d: Dirs): Promise<string[]> {
  const files = manifestFiles(path.join(d.curatedDir, 'curated', NAME, 'table'));
  if (!files.length) return [];
  const rows = await query(`SELECT id FROM read_parquet([${files.map((f) => `'${f}'`).join(', ')}], hive_partitioning = true) ORDER BY id`);
  return rows.map((r) => String(r.id));
}

async function deletionRecords(d: Dirs): Promise<{ key: string; run_id: string; detected_at: unknown }[]> {
  const dir = deletionsDir(d.curatedDir, DATASET);
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir).filter((f) => f.endsWith('.parquet')).map((f) => path.join(dir, f));
  if (!files.length) return [];
  return (await query(`SELECT key, run_id, detected_at FROM read_parquet([${files.map((f) => `'${f}'`).join(', ')}]) ORDER BY key`)) as never;
}

/** 40 incidents in curated, keys `1000000`..`1000390`. */
async function seeded(): Promise<{ d: Dirs; keys: string[] }> {
  const d = dirs();
  const rows = Array.from({ length: 40 }, (_, i) => incident(i));
  writeRawObject(d.rawDir, NAME, '2024-03-01', 'a', rows);
  const s = await run(d, 'r0');
  assert.equal(s.curatedRows, 40);
  assert.equal(s.keysetApplied, false, 'no key scan: no deletions, the recorded-keys reconciliation');
  return { d, keys: rows.map((r) => String(r.id)) };
}

describe('deletions from the key scan (DuckDB)', () => {
  test('curated keys the source no longer has are deleted, recorded with key, detected_at and run id', async () => {
    const { d, keys } = await seeded();
    const gone = [keys[3]!, keys[17]!, keys[29]!];
    await writeKeyScan(d.rawStore, 'r1', keys.filter((k) => !gone.includes(k)));
    const s = await run(d, 'r1');
    assert.equal(s.status, 'succeeded', JSON.stringify(s.tests.results.filter((r) => r.status === 'fail')));
    assert.equal(s.rowsDeleted, 3);
    assert.equal(s.missingKeys, 0);
    assert.equal(s.curatedRows, 37);
    assert.deepEqual(await curatedKeys(d), keys.filter((k) => !gone.includes(k)).sort());
    const records = await deletionRecords(d);
    assert.deepEqual(records.map((r) => r.key), [...gone].sort());
    assert.ok(records.every((r) => r.run_id === 'r1' && r.detected_at instanceof Date));
    const rec = s.tests.results.find((r) => r.name === SOURCE_RECONCILIATION_TEST)!;
    assert.equal(rec.status, 'pass');
    assert.ok(!s.tests.results.some((r) => r.name === RECONCILIATION_TEST), 'the source reconciliation replaces the recorded-keys one');
    assert.deepEqual(s.reconciliation.source && [s.reconciliation.source.sourceKeys, s.reconciliation.source.goneKeys, s.reconciliation.source.extraKeys], [37, 3, 0]);
    const report = (await d.curatedStore.get(`reports/${NAME}/r1.html`))!.body.toString();
    assert.match(report, /Rows deleted \(keys gone at the source\)<\/th><td[^>]*>3</);
    // Marts are built after the deletions.
    const totals = await query(
      `SELECT sum(incidents) AS n FROM read_parquet('${path.join(d.curatedDir, 'curated', NAME, 'marts', 'battalion_totals', 'data.parquet')}')`,
    );
    assert.equal(Number(totals[0]!.n), 37);

    // The local catalog shows the record as curated.<table>__deletions.
    const catalogPath = path.join(d.curatedDir, '..', 'catalog.duckdb');
    const names = await registerCurated({ dataset: DATASET, curatedDir: d.curatedDir, catalogPath });
    assert.ok(names.includes('curated.sf_fire_incidents__deletions'), names.join(', '));
    const viaCatalog = await queryCatalog(catalogPath, 'SELECT key FROM curated.sf_fire_incidents__deletions ORDER BY key');
    assert.deepEqual(viaCatalog.rows.map((r) => r.key), [...gone].sort());

    // The next run without a key scan: the recorded keys lost the deleted ones, so it reconciles.
    const next = await run(d, 'r2');
    assert.equal(next.keysetApplied, false);
    assert.equal(next.tests.results.find((r) => r.name === RECONCILIATION_TEST)?.status, 'pass', `${next.reconciliation.mergedKeys} merged keys`);
    // A deleted key that comes back at the source is inserted again.
    writeRawObject(d.rawDir, NAME, '2024-03-02', 'b', [incident(3, {}, 1)]);
    const back = await run(d, 'r3');
    assert.equal(back.rowsInserted, 1);
    assert.equal(back.curatedRows, 38);
    assert.equal(back.tests.results.find((r) => r.name === RECONCILIATION_TEST)?.status, 'pass');
  });

  test('mass-delete guard: more than maxDeleteShare deletes nothing and fails with exit code 4', async () => {
    const { d, keys } = await seeded();
    await writeKeyScan(d.rawStore, 'r1', keys.slice(0, 35)); // 5 of 40 = 12.5% > 10%
    await assert.rejects(run(d, 'r1'), (err: Error) => {
      assert.ok(err instanceof MassDeleteRefusedError);
      assert.match(err.message, /would delete 5 of 40 curated rows \(12\.5%\), above deletions\.maxDeleteShare 0\.1; nothing was deleted/);
      return true;
    });
    assert.equal((await curatedKeys(d)).length, 40);
    assert.deepEqual(await deletionRecords(d), []);
    // The container maps it to exit code 4.
    const logs: Record<string, unknown>[] = [];
    const code = await main(
      { ENGINE: 'duckdb', RAW_LOCATION: d.rawDir, CURATED_LOCATION: d.curatedDir, RUN_ID: 'r1', DATASET_CONFIG: JSON.stringify(DATASET) },
      { log: (r) => logs.push(r) },
    );
    assert.equal(code, EXIT.massDeleteRefused);
    assert.equal(code, 4);
    assert.ok(logs.some((l) => l.error === 'MassDeleteRefusedError' && l.dataset === NAME), 'the line the MassDeleteRefused metric filter matches');
    // Raised for one run, the same deletion goes through.
    const s = await run(d, 'r1', { ...DATASET, deletions: { ...DATASET.deletions, maxDeleteShare: 0.2 } });
    assert.equal(s.rowsDeleted, 5);
    assert.equal((await curatedKeys(d)).length, 35);
  });

  test('reconciliation both ways: source keys missing from curated are listed for repair (exit 5); extra ones deleted', async () => {
    const { d, keys } = await seeded();
    const newAtSource = ['2000000', "20'0001"];
    await writeKeyScan(d.rawStore, 'r1', [...keys.slice(1), ...newAtSource]);
    const s = await run(d, 'r1');
    assert.equal(s.rowsDeleted, 1, 'the extra key');
    assert.equal(s.missingKeys, 2);
    assert.equal(s.repairNeeded, true);
    assert.equal(s.status, 'tests_failed');
    const rec = s.tests.results.find((r) => r.name === SOURCE_RECONCILIATION_TEST)!;
    assert.deepEqual([rec.status, rec.failing], ['fail', 2]);
    const listed = decodeKeyList(gunzipSync((await d.rawStore.get(missingKeysKey(DATASET, 'r1')))!.body).toString('utf8'), 'json-lines', 'missing keys');
    assert.deepEqual(listed.sort(), [...newAtSource].sort());
    const logs: Record<string, unknown>[] = [];
    const env = { ENGINE: 'duckdb', RAW_LOCATION: d.rawDir, CURATED_LOCATION: d.curatedDir, RUN_ID: 'r1', DATASET_CONFIG: JSON.stringify(DATASET) };
    assert.equal(await main(env, { log: (r) => logs.push(r) }), EXIT.repairNeeded);
    // The repaired rows arrive; the transform of the same run reconciles.
    writeRawObject(d.rawDir, NAME, '2024-03-02', 'repair', [incident(500, { id: '2000000' }), incident(501, { id: "20'0001" })]);
    assert.equal(await main(env, { log: (r) => logs.push(r) }), EXIT.ok);
    assert.deepEqual(await curatedKeys(d), [...keys.slice(1), ...newAtSource].sort());
  });

  test('source keys whose rows the fetcher quarantined this run are reported, not failed on or repaired: the run exits 0', async () => {
    const { d, keys } = await seeded();
    // Two source rows curated lacks: one the fetcher quarantined in this run's repair (Firehose refused it), one not.
    const quarantinedKey = '3000000';
    await writeQuarantine(d.rawStore, NAME, 'r1-repair', 1, new Date('2024-03-02T00:00:00Z'), [
      { reason: 'firehose_rejected', detail: 'InvalidArgument: refused', row: incident(600, { id: quarantinedKey }) },
    ]);
    // Another run's quarantine of the other key does not account for it.
    await writeQuarantine(d.rawStore, NAME, 'r0', 1, new Date('2024-03-01T00:00:00Z'), [{ reason: 'firehose_rejected', detail: 'x', row: incident(601, { id: '3000001' }) }]);
    await writeQuarantine(d.rawStore, NAME, 'r1-2', 1, new Date('2024-03-01T00:00:00Z'), [{ reason: 'firehose_rejected', detail: 'x', row: incident(601, { id: '3000001' }) }]);
    await writeKeyScan(d.rawStore, 'r1', [...keys, quarantinedKey, '3000001']);
    const env = { ENGINE: 'duckdb', RAW_LOCATION: d.rawDir, CURATED_LOCATION: d.curatedDir, RUN_ID: 'r1', DATASET_CONFIG: JSON.stringify(DATASET) };
    assert.equal(await main(env, { log: () => undefined }), EXIT.repairNeeded, 'the key nobody quarantined is repaired');
    const listed = decodeKeyList(gunzipSync((await d.rawStore.get(missingKeysKey(DATASET, 'r1')))!.body).toString('utf8'), 'json-lines', 'missing keys');
    assert.deepEqual(listed, ['3000001'], 'the quarantined key is not sent to the repair again');
    // The repair quarantines the other row too (say Firehose refused it again): the run now passes, reporting both.
    await writeQuarantine(d.rawStore, NAME, 'r1-repair', 2, new Date('2024-03-02T00:00:00Z'), [{ reason: 'firehose_rejected', detail: 'x', row: incident(601, { id: '3000001' }) }]);
    const logs: Record<string, unknown>[] = [];
    assert.equal(await main(env, { log: (r) => logs.push(r) }), EXIT.ok, JSON.stringify(logs.filter((l) => l.level === 'error')));
    const s = await run(d, 'r1');
    assert.equal(s.status, 'succeeded');
    assert.deepEqual([s.missingKeys, s.repairNeeded, s.reconciliation.source?.quarantinedKeys], [0, false, 2]);
    const rec = s.tests.results.find((r) => r.name === SOURCE_RECONCILIATION_TEST)!;
    assert.equal(rec.status, 'warn');
    assert.match(rec.description, /2 more source row\(s\) quarantined by the fetcher.*quarantine\/sf-fire-incidents\//);
    assert.doesNotMatch(rec.description, /--rebuild|REBUILD=true/, 'not the advice to rebuild');
    assert.doesNotMatch(JSON.stringify(logs), /--rebuild|REBUILD=true/);
  });

  test('a key scan begun before the upgrade (a part in the earlier .txt.gz format beside a .jsonl.gz one) is read', async () => {
    const { d, keys } = await seeded();
    const gone = keys[5]!;
    const rest = keys.filter((k) => k !== gone);
    await d.rawStore.put(keysetPartKey(DATASET, 'r1', 1, 'text-lines'), gzipSync(`${rest.slice(0, 20).join('\n')}\n`));
    await d.rawStore.put(keysetPartKey(DATASET, 'r1', 2), gzipSync(encodeKeyList(rest.slice(20))));
    await d.rawStore.put(keysetSuccessKey(DATASET, 'r1'), JSON.stringify({ dataset: NAME, runId: 'r1', source: DATASET.source, keys: rest.length, parts: 2, startedAt: '', completedAt: '' }));
    const s = await run(d, 'r1');
    assert.deepEqual([s.status, s.rowsDeleted, s.missingKeys], ['succeeded', 1, 0]);
    assert.deepEqual(await curatedKeys(d), [...rest].sort());
  });

  test('an incomplete key scan (no _SUCCESS) deletes nothing; a scan of another source or with a lost part is refused', async () => {
    const { d, keys } = await seeded();
    await writeKeyScan(d.rawStore, 'r1', keys.slice(0, 1), { complete: false });
    const s = await run(d, 'r1');
    assert.equal(s.keysetApplied, false);
    assert.equal(s.rowsDeleted, 0);
    assert.equal((await curatedKeys(d)).length, 40);

    await writeKeyScan(d.rawStore, 'r2', keys.slice(1), { source: { domain: 'data.example.org', datasetId: 'abcd-1234' } });
    await assert.rejects(run(d, 'r2'), (err: Error) => err instanceof KeyScanError && /was read from data\.example\.org\/abcd-1234.*nothing was deleted/.test(err.message));

    await writeKeyScan(d.rawStore, 'r3', keys.slice(1), { parts: 3 });
    await d.rawStore.put(keysetSuccessKey(DATASET, 'r3'), JSON.stringify({ source: DATASET.source, keys: 39, parts: 4 }));
    await assert.rejects(run(d, 'r3'), /has 3 part file\(s\) but its _SUCCESS names 4; nothing was deleted/);
    assert.equal((await curatedKeys(d)).length, 40);

    // deletions.detect false: a scan is ignored.
    await writeKeyScan(d.rawStore, 'r4', keys.slice(1));
    const off = await run(d, 'r4', { ...DATASET, deletions: { ...DATASET.deletions, detect: false } });
    assert.equal(off.rowsDeleted, 0);
    assert.equal((await curatedKeys(d)).length, 40);
  });

  test('keys are compared as curated types them: an integer key served as "007" matches curated 7', async () => {
    const dataset: DatasetConfig = {
      ...DATASET,
      columns: DATASET.columns.map((c) => (c.name === 'id' ? { ...c, type: 'integer' as const } : c)),
    };
    const d = dirs();
    writeRawObject(d.rawDir, NAME, '2024-03-01', 'a', [incident(1, { id: '7' }), incident(2, { id: '8' }), incident(3, { id: '9' })]);
    await run(d, 'r0', dataset);
    await writeKeyScan(d.rawStore, 'r1', ['007', '8', '9', 'x'], { parts: 1 });
    const s = await run(d, 'r1', { ...dataset, deletions: { ...dataset.deletions, maxDeleteShare: 1 } });
    assert.equal(s.rowsDeleted, 0);
    assert.equal(s.missingKeys, 0, 'a key that does not cast can never be curated: not missing');
    assert.equal(s.curatedRows, 3);
  });
});
