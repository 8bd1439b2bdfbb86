/**
 * Both engines agree: every transform scenario runs on DuckDB and on the production AthenaEngine
 * executed by a real Trino (through the AWS SDK and the local Athena endpoint), and the summary
 * counters, curated, every mart and every data-test outcome are equal. Real SF rows run through
 * both. Where the engines could differ by nature (percentiles), the Athena SQL is exact.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { loadDatasetFile, parseDataset, type DatasetConfig } from '../../runtime/dataset-config';
import { decodeKeyList, encodeKeyList } from '../../runtime/key-list';
import { missingKeysKey, keysetPartKey, keysetSuccessKey } from '../../runtime/storage-layout';
import { runTransform } from '../../containers/transform/src/transform';
import { openObjectStore } from '../../runtime/object-store';
import type { LocalAthena } from '../../local/athena-local';
import { trinoSkip } from '../support/trino';
import { EnginePair, suiteAthena } from './engine-pair';
import { incident, writeRawObject, type RawRow } from './raw-fixture';

const DATASET = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'));
const NAME = DATASET.name;
const MARTS = ['incidents_by_month_battalion', 'battalion_totals', 'losses_by_primary_situation', 'response_time_by_neighborhood'];

/** Curated, every column, in key order. */
const curatedSql = (ref: (m: string) => string): string => `SELECT * FROM ${ref('curated')} ORDER BY id`;
const martSql = (mart: string) => (ref: (m: string) => string): string => `SELECT * FROM ${ref(mart)} ORDER BY 1, 2, 3`;

async function assertTablesAgree(pair: EnginePair, dataset: DatasetConfig = pair.dataset): Promise<void> {
  await pair.agree(curatedSql, [], dataset);
  for (const m of MARTS) await pair.agree(martSql(m), [m], dataset);
}

async function writeKeyScan(pair: EnginePair, runId: string, keys: string[]): Promise<void> {
  await pair.rawStore.put(keysetPartKey(DATASET, runId, 1), gzipSync(encodeKeyList(keys)));
  await pair.rawStore.put(keysetSuccessKey(DATASET, runId), JSON.stringify({ dataset: NAME, runId, source: DATASET.source, keys: keys.length, parts: 1, startedAt: '', completedAt: '' }));
}

describe('DuckDB and Athena (on Trino) agree', { skip: trinoSkip }, () => {
  let athena: LocalAthena;
  suiteAthena((started) => (athena = started));

  test('incremental runs: casts, duplicates across partitions, stale versions, malformed and keyless rows, updates, a full replace that changes nothing', async () => {
    const pair = await EnginePair.create(athena, DATASET);
    const first: RawRow[] = Array.from({ length: 40 }, (_, i) => incident(i));
    const stale = incident(20, { battalion: 'B98' });
    stale._source_updated_at = '2024-01-15T00:00:00.000Z';
    const keyless = incident(41);
    delete keyless.id;
    writeRawObject(pair.rawDir, NAME, '2024-03-01', 'a', [...first.slice(0, 20), '{"id": "broken', stale]);
    writeRawObject(pair.rawDir, NAME, '2024-03-02', 'b', [
      ...first.slice(20),
      ...Array.from({ length: 5 }, (_, i) => incident(i, { battalion: 'B99', address: `NEW ${i}` }, 1)),
      incident(40, { exposure_number: 'x1', estimated_property_loss: 'lots', alarm_dttm: 'not a time', suppression_units: '2.5' }),
      keyless,
      first[3]!,
    ]);
    const r1 = await pair.runAgreeing('r1');
    assert.deepEqual([r1.duckdb.rowsInserted, r1.duckdb.malformedRows, r1.duckdb.rowsWithoutKey, r1.duckdb.duplicatesRemoved], [41, 1, 1, 7]);
    assert.deepEqual(r1.athena.castFailures, { exposure_number: 1, estimated_property_loss: 1, alarm_dttm: 1, suppression_units: 1 });
    await assertTablesAgree(pair);

    // Second run: an update (newer, changed), an older version (ignored), an identical re-delivery
    // with a newer :updated_at (a publisher's full replace: unchanged), and a new key.
    const same = incident(7);
    same._source_updated_at = '2024-02-05T00:00:00.000Z';
    const older = incident(8, { battalion: 'B77' });
    older._source_updated_at = '2023-12-01T00:00:00.000Z';
    writeRawObject(pair.rawDir, NAME, '2024-03-03', 'c', [incident(6, { battalion: 'B55' }, 2), same, older, incident(50)]);
    const r2 = await pair.runAgreeing('r2');
    assert.deepEqual([r2.duckdb.rowsInserted, r2.duckdb.rowsUpdated, r2.duckdb.rowsUnchanged, r2.duckdb.curatedRows], [1, 1, 2, 42]);
    await assertTablesAgree(pair);

    // Nothing new: both engines read nothing and agree on every test outcome.
    const r3 = await pair.runAgreeing('r3');
    assert.equal(r3.athena.rawObjects.new, 0);
  });

  test('deletions from a key scan, the refused mass delete, missing keys for the repair phase', async () => {
    const pair = await EnginePair.create(athena, DATASET);
    writeRawObject(pair.rawDir, NAME, '2024-03-01', 'a', Array.from({ length: 30 }, (_, i) => incident(i)));
    await pair.runAgreeing('r1');
    const ids = Array.from({ length: 30 }, (_, i) => `${100000 + i}0`);
    // Two keys gone, two source keys curated lacks (the repair fetches them; the key is text, so any text is a key).
    // Keys of any text travel exactly: a newline, a NUL, quotes, a non-BMP character, a CR and Hive's \x01.
    const odd = ['pk-new\nline', 'pk-nul\u0000end', `pk-'quote"`, 'pk-emoji-\u{1F680}', 'pk-cr\r\x01', '\\N'];
    await writeKeyScan(pair, 'r2', [...ids.filter((_, i) => i !== 4 && i !== 17), '9999990', 'not-a-number', ...odd]);
    const r2 = await pair.runAgreeing('r2');
    assert.deepEqual([r2.athena.rowsDeleted, r2.athena.missingKeys, r2.athena.repairNeeded, r2.athena.curatedRows], [2, 2 + odd.length, true, 28]);
    // Athena ran last: its missing-keys file lists exactly the keys the scan listed.
    const missing = decodeKeyList(gunzipSync((await pair.rawStore.get(missingKeysKey(DATASET, 'r2')))!.body).toString('utf8'), 'json-lines', 'missing keys');
    assert.deepEqual([...missing].sort(), ['9999990', 'not-a-number', ...odd].sort());
    await assertTablesAgree(pair);
    const deletions = await pair.deletions();
    assert.deepEqual(deletions.athena, deletions.duckdb);
    assert.deepEqual(deletions.athena, [
      { key: '1000040', run_id: 'r2' },
      { key: '1000170', run_id: 'r2' },
    ]);

    // A scan that would delete 20 of 28 rows: refused on both, nothing deleted.
    await writeKeyScan(pair, 'r3', ids.slice(0, 8));
    const r3 = await pair.run('r3');
    for (const r of [r3.duckdb, r3.athena]) assert.ok(r instanceof Error && r.name === 'MassDeleteRefusedError', String(r));
    assert.equal((r3.athena as Error).message, (r3.duckdb as Error).message);
    const counts = await pair.agree((ref) => `SELECT count(*) AS n FROM ${ref('curated')}`);
    assert.deepEqual(counts, [{ n: 28 }]);
  });

  test('a rebuild from the raw zone, an unreadable raw object quarantined, table maintenance on Athena', async () => {
    const pair = await EnginePair.create(athena, DATASET);
    writeRawObject(pair.rawDir, NAME, '2024-03-01', 'a', Array.from({ length: 20 }, (_, i) => incident(i)));
    writeRawObject(pair.rawDir, NAME, '2024-03-02', 'b', Array.from({ length: 10 }, (_, i) => incident(i, { battalion: 'B42' }, 1)));
    const broken = writeRawObject(pair.rawDir, NAME, '2024-03-02', 'c', Array.from({ length: 50 }, (_, i) => incident(100 + i)));
    const file = path.join(pair.rawDir, broken);
    truncateSync(file, Math.floor(statSync(file).size / 2));
    const r1 = await pair.runAgreeing('r1');
    assert.deepEqual([r1.athena.rawObjects.quarantined, r1.athena.status], [1, 'tests_failed']);
    const r2 = await pair.runAgreeing('r2', { rebuild: true });
    assert.equal(r2.athena.curatedRows, 20);
    await assertTablesAgree(pair);
    // Maintenance every run on Athena: OPTIMIZE and VACUUM executed, nothing changes.
    const m = await runTransform({
      dataset: DATASET,
      engine: pair.athenaEngine('r3'),
      rawStore: pair.rawStore,
      curatedStore: openObjectStore(pair.curatedDir.athena),
      runId: 'r3',
      maintenanceEveryRuns: 1,
      now: () => new Date('2024-02-02T00:00:00.000Z'),
    });
    assert.deepEqual(m.maintenance.map((s) => s.split(' ')[0]), ['OPTIMIZE', 'VACUUM']);
    await assertTablesAgree(pair);
  });

  test('a rebuild after the raw zone was emptied: curated and the merged keys are empty on both (reconciliation passes)', async () => {
    const pair = await EnginePair.create(athena, DATASET);
    const key = writeRawObject(pair.rawDir, NAME, '2024-03-01', 'a', [incident(1), incident(2)]);
    await pair.runAgreeing('r1', { marts: [] });
    rmSync(path.join(pair.rawDir, key));
    const r2 = await pair.runAgreeing('r2', { marts: [], rebuild: true });
    assert.deepEqual([r2.athena.curatedRows, r2.athena.reconciliation.mergedKeys, r2.athena.status], [0, 0, 'succeeded']);
  });

  test('a column declared later: added to curated on both, NULL for rows merged before it', async () => {
    const pair = await EnginePair.create(athena, DATASET);
    writeRawObject(pair.rawDir, NAME, '2024-03-01', 'a', Array.from({ length: 10 }, (_, i) => incident(i, { station_notes: 'yes' })));
    await pair.runAgreeing('r1');
    const grown = parseDataset({ ...JSON.parse(readFileSync(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'), 'utf8')), columns: [...DATASET.columns, { name: 'station_notes', type: 'text' }] }, 'grown');
    await pair.redeploy(grown);
    writeRawObject(pair.rawDir, NAME, '2024-03-02', 'b', [incident(20, { station_notes: 'no' })]);
    await pair.runAgreeing('r2', {}, grown);
    const rows = await pair.agree((ref) => `SELECT id, station_notes FROM ${ref('curated')} WHERE id IN ('1000000', '1000200') ORDER BY id`, [], grown);
    assert.deepEqual(rows, [
      { id: '1000000', station_notes: null },
      { id: '1000200', station_notes: 'no' },
    ]);
  });

  test('real SF rows (250 from data.sfgov.org) through both engines: the same curated table and marts', async () => {
    const pair = await EnginePair.create(athena, DATASET);
    const real = readFileSync(path.join(import.meta.dirname, '..', 'fixtures', 'sf-fire-incidents-real.json'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l.replace(/,$/, '')) as RawRow);
    assert.equal(real.length, 250);
    const rows = real.map((r, i) => ({ ...r, _ingested_at: '2024-03-01T00:00:00.000Z', _run_id: 'r1', _source_updated_at: `2024-01-02T03:0${i % 10}:05.000Z`, _source_id: `row-${i}` }));
    writeRawObject(pair.rawDir, NAME, '2024-03-01', 'real', rows);
    const r = await pair.runAgreeing('r1');
    assert.equal(r.athena.curatedRows, 250);
    await assertTablesAgree(pair);
  });

  test('YAML models: every test kind, store_failures tables, source freshness, --select and --tests-only', async () => {
    const pair = await EnginePair.create(athena, DATASET);
    writeRawObject(pair.rawDir, NAME, '2024-03-01', 'a', Array.from({ length: 12 }, (_, i) => incident(i)));
    const modelsDir = mkdtempSync(path.join(tmpdir(), 'agree-models-'));
    const dir = path.join(modelsDir, NAME);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'by_battalion.sql'), `SELECT battalion, count(*) AS incidents, max(alarm_dttm) AS last_alarm FROM {{ ref('curated') }} GROUP BY battalion`);
    writeFileSync(path.join(dir, 'top_battalion.sql'), `SELECT max(incidents) AS incidents FROM {{ ref('by_battalion') }}`);
    writeFileSync(
      path.join(dir, 'props.yml'),
      `version: 2
sources:
  - name: socrata
    tables:
      - name: curated
        freshness:
          warn_after: { count: 1, period: day }
          error_after: { count: 10, period: day }
        columns:
          - name: battalion
            tests:
              - accepted_values: { name: curated_known, values: [B01, B02], config: { store_failures: true, severity: warn } }
models:
  - name: by_battalion
    columns:
      - name: battalion
        tests:
          - unique
          - not_null
          - accepted_values: { name: known, values: [B01, B02, B03], config: { store_failures: true, severity: warn } }
      - name: incidents
        tests:
          - dbt_utils.expression_is_true: { expression: "> 2", config: { warn_if: ">1", error_if: ">10" } }
  - name: top_battalion
    columns:
      - name: incidents
        tests:
          - relationships: { to: "ref('by_battalion')", field: incidents }
`,
    );
    const r1 = await pair.runAgreeing('r1', { modelsDir });
    const known = r1.athena.tests.results.find((t) => t.name === 'by_battalion.known');
    assert.deepEqual([known?.status, known?.failing], ['warn', 1]);
    assert.deepEqual(r1.athena.tests.results.find((t) => t.name === 'source_freshness')?.freshness?.lagSeconds, 86_400);
    await pair.agree((ref) => `SELECT * FROM ${ref('by_battalion')} ORDER BY battalion`, ['by_battalion']);
    await pair.agree((ref) => `SELECT battalion FROM ${ref('by_battalion__dbt_test__known')}`, ['by_battalion__dbt_test__known']);
    await pair.agree((ref) => `SELECT id, battalion FROM ${ref('dbt_test__curated_known')} ORDER BY id`, ['dbt_test__curated_known']);
    // --select one mart (reading the other's existing table), then --tests-only.
    const r2 = await pair.runAgreeing('r2', { modelsDir, select: ['top_battalion'] });
    assert.deepEqual(r2.athena.marts.map((m) => m.name), ['top_battalion']);
    const r3 = await pair.runAgreeing('r3', { modelsDir, testsOnly: true });
    assert.deepEqual([r3.athena.marts.length, r3.athena.selection], [0, { testsOnly: true }]);
  });

  test('an older version delivered later never replaces the curated row on Trino', async () => {
    const pair = await EnginePair.create(athena, DATASET);
    writeRawObject(pair.rawDir, NAME, '2024-03-01', 'a', [incident(1, { battalion: 'B07' }, 1)]);
    await pair.runAgreeing('r1');
    writeRawObject(pair.rawDir, NAME, '2024-03-02', 'b', [incident(1, { battalion: 'B01' }, 0), incident(2)]);
    const r2 = await pair.runAgreeing('r2');
    assert.deepEqual([r2.athena.rowsInserted, r2.athena.rowsUpdated, r2.athena.rowsUnchanged], [1, 0, 1]);
    assert.deepEqual(await pair.agree((ref) => `SELECT battalion FROM ${ref('curated')} WHERE id = '1000010'`), [{ battalion: 'B07' }]);
  });
});
