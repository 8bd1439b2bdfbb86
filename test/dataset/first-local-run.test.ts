/**
 * A definition `npm run dataset -- add` proposes, accepted as is, has a green first local run: the
 * generated rows obey its declared tests (not_null, accepted_values, range), so no test warns or
 * fails, no value is a cast failure and nothing is quarantined. Run on every saved real view that
 * the pipeline can ingest, with few rows (the machine is shared), through the same driver as
 * `npm run local -- --dataset-file`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadDatasetFile, parseDataset, type DatasetConfig } from '../../runtime/dataset-config';
import { runDatasetCommand } from '../../local/dataset-command';
import { columnRules, generateRows } from '../../local/dataset-rows';
import { runLocalPipeline } from '../../local/pipeline';
import { columns, testDataset } from '../support/dataset-builder';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'socrata-views');
const ROWS = 120;

/** What `add` writes for a saved view, loaded as `npm run local -- --dataset-file` loads it. */
async function proposed(file: string): Promise<DatasetConfig> {
  const dir = mkdtempSync(path.join(tmpdir(), 'first-run-def-'));
  let err = '';
  const code = await runDatasetCommand(['add', path.join(FIXTURES, file), '--domain', 'data.example.org', '--out-dir', dir], {
    fetchJson: () => Promise.reject(new Error('no network in this test')),
    stdout: () => {},
    stderr: (t) => (err += t),
    repoRoot: dir,
  });
  assert.equal(code, 0, err);
  const [written] = readdirSync(dir);
  return loadDatasetFile(path.join(dir, written!));
}

const ingestible = readdirSync(FIXTURES).filter((f) => f.endsWith('.json') && !f.endsWith('.rows.json') && !f.startsWith('winnipeg-'));

describe('the first local run of a proposed dataset is green', () => {
  test('the fixtures cover the views the issue names', () => {
    assert.ok(ingestible.includes('nyc-311-service-requests-erm2-nwe9.json'));
    assert.ok(ingestible.includes('chicago-food-inspections-4ijn-s7e5.json'));
  });

  for (const file of ingestible) {
    test(`${file}: no test warns or fails, no cast failure, nothing quarantined`, async () => {
      const dataset = await proposed(file);
      const s = await runLocalPipeline({ dataset, dataDir: mkdtempSync(path.join(tmpdir(), 'first-run-')), rows: ROWS });
      const t = s.transform;
      assert.equal(t?.status, 'succeeded');
      assert.equal(t.curatedRows, ROWS);
      const notPassing = t.tests.results.filter((r) => r.status !== 'pass').map((r) => `${r.name}: ${r.status} (${r.failing} rows)`);
      assert.deepEqual(notPassing, [], `declared tests: ${dataset.dataTests.map((d) => d.kind).join(', ')}`);
      assert.equal(t.tests.warned, 0);
      assert.equal(t.tests.failed, 0);
      assert.deepEqual(Object.entries(t.castFailures).filter(([, n]) => n > 0), []);
      assert.equal(t.malformedRows, 0);
      assert.equal(s.fetch.rowsQuarantined, 0);
      assert.deepEqual(s.schemaDrift.undeclared, []);
    });
  }
});

describe('generated rows obey the declared tests', () => {
  const dataset = testDataset({
    name: 'rules-check',
    eventTimeColumn: 'at',
    columns: columns({ id: 'text', at: 'floating_timestamp', risk: 'text', note: 'text', count: 'integer', score: 'number', below: 'number', flag: 'checkbox' }),
    dataTests: [
      { kind: 'accepted_values', column: 'risk', values: ['High', 'Low'] },
      { kind: 'not_null', column: 'note' },
      { kind: 'range', column: 'count', min: 100, max: 105 },
      { kind: 'range', column: 'score', min: 0.5, max: 0.75 },
      { kind: 'range', column: 'below', max: -3 },
      { kind: 'accepted_values', column: 'flag', values: ['true'] },
    ],
  });
  const rows = generateRows(dataset, 400, 5);

  test('accepted values only, never-null columns always present, ranges respected', () => {
    const values = (c: string) => rows.map((r) => r[c]).filter((v) => v !== undefined);
    assert.deepEqual([...new Set(values('risk'))].sort(), ['High', 'Low']);
    assert.equal(values('note').length, rows.length);
    assert.ok(values('count').every((v) => /^\d+$/.test(String(v)) && Number(v) >= 100 && Number(v) <= 105), String(values('count')));
    assert.equal(new Set(values('count')).size, 6, 'the whole range is used');
    assert.ok(values('score').every((v) => Number(v) >= 0.5 && Number(v) <= 0.75), String(values('score')));
    assert.ok(values('below').every((v) => Number(v) <= -3));
    assert.deepEqual([...new Set(values('flag'))], ['true']);
    // Optional columns still have nulls, as real data does.
    assert.ok(values('risk').length < rows.length);
  });

  test('two accepted_values tests on one column leave only the values both accept', () => {
    const twice = parseDataset(
      { ...dataset, dataTests: [{ kind: 'accepted_values', column: 'risk', values: ['High', 'Low'] }, { kind: 'accepted_values', name: 'risk_again', column: 'risk', values: ['Low', 'Mid'] }] },
      'inline',
    );
    assert.deepEqual(columnRules(twice).get('risk')?.accepted, ['Low']);
    assert.deepEqual([...new Set(generateRows(twice, 100, 5).map((r) => r.risk).filter(Boolean))], ['Low']);
  });

  test('a dataset without tests gets exactly the rows the generator gave before it read tests', () => {
    // Existing local sources replay their rows from the seed: they must not change under them.
    const plain = parseDataset({ ...dataset, dataTests: [] }, 'inline');
    const rows = generateRows(plain, 50, 9);
    // Digest of the same call on the generator before this change (commit 0002828).
    assert.equal(createHash('sha256').update(JSON.stringify(rows)).digest('hex'), '0cc69d5658226bb913f2081a4fc8008cab688e115ad2c98850858b3ecb4f656d');
  });
});
