/** `npm run dataset -- add <layer URL>` on a real saved layer definition (test/fixtures/arcgis). */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { runDatasetCommand } from '../../local/dataset-command';
import { parseDataset } from '../../runtime/dataset-config';

const FIXTURE = path.join(import.meta.dirname, '../fixtures/arcgis/workforce-assignments-layer.json');
const URL_ = 'https://services.arcgis.com/abc/arcgis/rest/services/workforce_x/FeatureServer/0';

it('writes a loadable incremental definition from a real layer definition', async () => {
  const layer = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, unknown>;
  const asked: string[] = [];
  const out: string[] = [];
  const dir = mkdtempSync(path.join(tmpdir(), 'arcgis-add-'));
  const code = await runDatasetCommand(['add', URL_, '--out-dir', dir], {
    fetchJson: async (url) => (asked.push(url), layer),
    stdout: (t) => out.push(t),
    stderr: (t) => out.push(t),
    repoRoot: dir,
  });
  assert.equal(code, 0, out.join(''));
  assert.deepEqual(asked, [`${URL_}?f=json`]);
  const def = parseDataset(JSON.parse(readFileSync(path.join(dir, 'assignments.json'), 'utf8')), 'written');
  assert.deepEqual(def.source, { type: 'arcgis', url: URL_, editDateField: 'EditDate' });
  assert.equal(def.primaryKey, 'objectid');
  // The first date that is not editor tracking's own.
  assert.equal(def.eventTimeColumn, 'duedate');
  const types = Object.fromEntries(def.columns.map((c) => [c.name, c.type]));
  assert.equal(types.objectid, 'integer');
  assert.equal(types.status, 'integer');
  assert.equal(types.assignmenttype, 'text', 'GUID');
  assert.equal(types.globalid, 'text', 'GlobalID');
  assert.equal(types.editdate, 'fixed_timestamp');
  assert.equal(types.geometry, 'point');
  assert.equal(def.columns.length, 23);
  assert.match(out.join(''), /incremental: editor tracking is on, rows are read by EditDate/);
});

it('proposes a snapshot for a layer without editor tracking', async () => {
  const layer = { ...(JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, unknown>), editFieldsInfo: null };
  const out: string[] = [];
  const code = await runDatasetCommand(['add', URL_, '--dry-run'], { fetchJson: async () => layer, stdout: (t) => out.push(t), stderr: (t) => out.push(t), repoRoot: tmpdir() });
  assert.equal(code, 0, out.join(''));
  const def = JSON.parse(out[0]!) as { source: Record<string, unknown> };
  assert.deepEqual(def.source, { type: 'arcgis', url: URL_ });
  assert.match(out.join(''), /snapshot: editor tracking is off/);
});
