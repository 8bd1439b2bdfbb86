/**
 * The embedded pipeline on real rows of SF Fire Incidents as the Socrata API serves them
 * (test/fixtures/sf-fire-incidents-real.json, provenance in test/fixtures/README.md), not only on
 * generated ones: curated holds exactly the fixture's ids, and typed values match the source.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { defaultCatalogPath, queryCatalog } from '../../containers/transform/src/catalog';
import { FIRE_INCIDENT_COLUMNS } from '../../local/fire-incidents-generator';
import { runLocalPipeline } from '../../local/pipeline';
import { startSocrataServer } from '../../local/socrata-server';
import { curatedIds, REPO } from './local-run-fixture';
import { fireIncidents } from '../support/dataset-builder';
import { suiteTempDir } from '../support/suite-fixtures';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
type Row = Record<string, unknown>;
const fixture = JSON.parse(readFileSync(path.join(REPO, 'test', 'fixtures', 'sf-fire-incidents-real.json'), 'utf8')) as Row[];
/** Pages of 60 rows: the 250 rows cross several page boundaries and shared `:updated_at`s. */
const dataset = fireIncidents({ fetch: { pageSize: 60 } });

let root: string;
suiteTempDir('local-real-rows-', (dir) => (root = dir));

test('real SF Fire Incidents rows end to end: curated == the fixture ids, typed values as the source', async () => {
  assert.equal(fixture.length, 250);
  const socrata = await startSocrataServer({ datasetId: 'wr8u-xric', rows: fixture, columns: FIRE_INCIDENT_COLUMNS, primaryKey: 'id' });
  try {
    const dataDir = path.join(root, 'real');
    const s = await runLocalPipeline({ dataset, dataDir, socrata });
    assert.equal(s.fetch.rowsFetched, 250);
    assert.equal(s.fetch.rowsQuarantined, 0);
    assert.equal(s.transform?.status, 'succeeded');
    assert.deepEqual(s.schemaDrift.undeclared, []);
    const casts = Object.values(s.transform?.castFailures ?? {}).reduce((a, b) => a + b, 0);
    assert.equal(casts, 0, 'every real value casts');

    const curated = await curatedIds(dataDir);
    assert.equal(curated.length, 250);
    assert.deepEqual(new Set(curated), new Set(fixture.map((r) => String(r.id))));

    // Spot checks, one column of each declared type, on every row.
    const { rows } = await queryCatalog(
      defaultCatalogPath(dataDir),
      `SELECT id, exposure_number, suppression_units, estimated_property_loss, number_of_alarms,
              strftime(alarm_dttm, '%Y-%m-%dT%H:%M:%S.000') AS alarm_dttm,
              strftime(incident_date, '%Y-%m-%dT%H:%M:%S.000') AS incident_date,
              battalion, primary_situation, longitude, latitude
         FROM curated.sf_fire_incidents`,
    );
    const byId = new Map(fixture.map((r) => [String(r.id), r]));
    const opt = (v: unknown): number | null => (v === undefined ? null : Number(v));
    for (const row of rows) {
      const src = byId.get(String(row.id))!;
      const where = `row ${String(row.id)}`;
      assert.equal(Number(row.exposure_number), Number(src.exposure_number), where);
      assert.equal(opt(row.suppression_units ?? undefined), opt(src.suppression_units), where);
      assert.equal(opt(row.estimated_property_loss ?? undefined), opt(src.estimated_property_loss), where);
      assert.equal(opt(row.number_of_alarms ?? undefined), opt(src.number_of_alarms), where);
      assert.equal(row.alarm_dttm, src.alarm_dttm, where);
      assert.equal(row.incident_date, src.incident_date, where);
      assert.equal(row.battalion, src.battalion, where);
      assert.equal(row.primary_situation, src.primary_situation, where);
      const coords = (src.point as { coordinates?: number[] } | undefined)?.coordinates;
      assert.equal(row.longitude ?? null, coords ? coords[0] : null, where);
      assert.equal(row.latitude ?? null, coords ? coords[1] : null, where);
    }
    // A mart, computed here from the fixture.
    const perBattalion = new Map<string, number>();
    for (const r of fixture) perBattalion.set(String(r.battalion ?? 'unknown'), (perBattalion.get(String(r.battalion ?? 'unknown')) ?? 0) + 1);
    const mart = (await queryCatalog(defaultCatalogPath(dataDir), 'SELECT battalion, incidents FROM curated.sf_fire_incidents__battalion_totals')).rows;
    assert.deepEqual(new Map(mart.map((r) => [String(r.battalion), Number(r.incidents)])), perBattalion);
  } finally {
    await socrata.close();
  }
});
