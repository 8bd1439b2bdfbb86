/**
 * The transform part of `npm run bench` on a tiny raw zone: the ratio's two sides are measured on
 * the same objects and the per-phase profile accounts for runTransform's time. Never a timing
 * assertion (speed belongs to the bench itself); only that the profile adds up and names the
 * statements it saw.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { runTransformBench, statementKind } from '../../bench/transform-bench';
import { trinoUrl } from '../support/trino';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { incident, writeRawObject } from '../transform/raw-fixture';

const DATASET = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'));

describe('transform bench', () => {
  test('runs the floor and runTransform on the same objects; the profile adds up to the run', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'transform-bench-'));
    const rawDir = path.join(dataDir, 'buckets', 'raw');
    writeRawObject(rawDir, DATASET.name, '2024-03-01', 'a', Array.from({ length: 150 }, (_, i) => incident(i)));
    writeRawObject(rawDir, DATASET.name, '2024-03-02', 'b', Array.from({ length: 150 }, (_, i) => incident(150 + i)));
    const r = await runTransformBench({ dataset: DATASET, dataDir, log: () => {} });
    assert.equal(r.status, 'succeeded');
    assert.equal(r.rawObjects, 2);
    assert.equal(r.rowsRead, 300);
    assert.equal(r.curatedRows, 300);
    assert.equal(r.ratio, r.transformSeconds / r.copyFloorSeconds);

    const stages = r.profile.stages.reduce((a, p) => a + p.seconds, 0);
    assert.ok(r.profile.stages.every((p) => p.seconds >= 0));
    assert.ok(Math.abs(stages - r.transformSeconds) < 0.05 * r.transformSeconds + 0.01, `stages ${stages} s vs run ${r.transformSeconds} s`);
    const kinds = new Map(r.profile.statements.map((s) => [s.kind, s.count]));
    assert.equal(kinds.get('load: read raw, cast, content hash (one pass)'), 1);
    assert.equal(kinds.get('write curated Parquet (sorted, per year)'), 1);
    assert.equal(kinds.get('record merged keys'), 1);
    assert.equal(kinds.get('marts'), 8, 'four marts: each written, then its view');
    assert.ok((kinds.get('data tests') ?? 0) > 0);
    assert.equal(kinds.get('MERGE statement'), undefined, 'a first load inserts every row: no MERGE copy');
    assert.equal(kinds.get('history versions (MERGE)'), undefined, 'a first load inserts the history too');
    assert.equal(kinds.get('change feed records (MERGE per run and key)'), 1);
    // Side by side on the deployed engine, wherever Trino runs (always in CI, see test/support/trino.ts).
    if (trinoUrl) {
      assert.ok('agrees' in r.athena, JSON.stringify(r.athena));
      assert.deepEqual([r.athena.agrees, r.athena.curatedRows], [true, 300]);
      assert.ok(r.athena.transformSeconds > 0);
    } else assert.match((r.athena as { skipped: string }).skipped, /install-trino/);
  });

  test('statements are grouped by what they do', () => {
    assert.equal(statementKind('MERGE INTO merge_target AS t\nUSING (SELECT * FROM batch) AS s ON t."id" = s."id"'), 'MERGE statement');
    assert.equal(statementKind('CREATE OR REPLACE TEMP VIEW batch AS SELECT "id" FROM batch_typed WHERE "__keyed"'), 'staged rows (ranking only when a key repeats)');
    assert.equal(statementKind('SELECT\n  count(*) AS rows_read,\n  count_if("__malformed") AS malformed_rows FROM batch_typed'), 'batch profile (counts)');
    assert.equal(statementKind('SELECT 42'), 'other statements');
  });
});
