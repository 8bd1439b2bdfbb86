/**
 * The report's failing values and column profile on both engines: DuckDB and the production
 * AthenaEngine on a real Trino show the same examples and the same nulls, smallest and largest
 * values; distinct counts are each engine's estimate.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { LocalAthena } from '../../local/athena-local';
import type { RunSummary } from '../../containers/transform/src/transform';
import { trinoSkip } from '../support/trino';
import { EnginePair, ENGINES, suiteAthena } from './engine-pair';
import { EXPECTED_SAMPLES, profiledDataset, profiledRows } from './report-fixture';
import { writeRawObject } from './raw-fixture';

describe('failing values and the column profile on both engines', { skip: trinoSkip }, () => {
  let athena: LocalAthena;
  suiteAthena((started) => (athena = started));

  test('the same failing values and the same profile (distinct counts estimated by each engine)', async () => {
    const dataset = profiledDataset();
    const pair = await EnginePair.create(athena, dataset);
    writeRawObject(pair.rawDir, dataset.name, '2024-02-01', 'a', profiledRows());
    const runs = await pair.runAgreeing('p1');
    for (const engine of ENGINES) {
      const s: RunSummary = runs[engine];
      const samples = (name: string) => s.tests.results.find((r) => r.name === name)?.samples;
      assert.deepEqual(samples('accepted_values_battalion'), EXPECTED_SAMPLES.accepted_values_battalion, `${engine}: failing values`);
      assert.deepEqual(samples('not_null_neighborhood_district'), EXPECTED_SAMPLES.not_null_neighborhood_district, `${engine}: failing rows`);
      assert.equal(s.columnProfile?.distinctFunction, engine === 'duckdb' ? 'approx_count_distinct' : 'approx_distinct');
      const battalion = s.columnProfile!.columns.find((c) => c.column === 'battalion')!;
      assert.ok(Math.abs(battalion.distinct - 11) <= 3, `${engine}: about 11 battalions, estimated ${battalion.distinct}`);
    }
    const exact = (s: RunSummary) => ({ rows: s.columnProfile!.rows, columns: s.columnProfile!.columns.map(({ distinct: _d, ...c }) => c) });
    assert.deepEqual(exact(runs.athena), exact(runs.duckdb), 'nulls, smallest and largest agree');
    assert.equal(runs.duckdb.columnProfile!.columns.find((c) => c.column === 'alarm_dttm')!.max, '2024-12-24T10:23:00.000000');
  });
});
