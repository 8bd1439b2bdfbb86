/**
 * A second transform under the same run id on the Athena engine, building marts: what the repair
 * pass does when deployed (docs/operations.md). Each mart is built aside with a CTAS into a
 * location of its own and swapped in; Trino (like Athena) refuses a CTAS into a non-empty
 * location, so a location named by the run id alone failed the second build of every mart.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { openObjectStore } from '../../runtime/object-store';
import { parseMart } from '../../containers/transform/src/models';
import { runTransform, type RunSummary } from '../../containers/transform/src/transform';
import type { LocalAthena } from '../../local/athena-local';
import { trinoSkip } from '../support/trino';
import { EnginePair, suiteAthena } from './engine-pair';
import { incident, writeRawObject } from './raw-fixture';

const DATASET = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'));
const MART = parseMart('by_battalion', '/models/sf-fire-incidents/by_battalion.sql', "SELECT battalion, count(*) AS n FROM {{ ref('curated') }} GROUP BY battalion");
const NOW = new Date('2024-03-10T00:00:00.000Z');

/** The directories under the mart's locations: one per table that still has files. */
const martLocations = (pair: EnginePair): string[] => {
  const dirs: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      if (e.name === 'marts') dirs.push(...readdirSync(path.join(dir, e.name, MART.name)));
      else walk(path.join(dir, e.name));
    }
  };
  walk(pair.curatedDir.athena);
  return dirs;
};

describe('the same run id transforming twice on Athena (on Trino)', { skip: trinoSkip }, () => {
  let athena: LocalAthena;
  suiteAthena((started) => (athena = started));

  test('the second transform rebuilds every mart (a fresh location each build) and the previous build leaves no files', async () => {
    const pair = await EnginePair.create(athena, DATASET);
    const run = (): Promise<RunSummary> =>
      runTransform({ dataset: DATASET, engine: pair.athenaEngine('r1'), rawStore: pair.rawStore, curatedStore: openObjectStore(pair.curatedDir.athena), runId: 'r1', now: () => NOW, marts: [MART] });
    const total = async (): Promise<number> => {
      const engine = pair.athenaEngine('read');
      const [r] = await engine.rows(`SELECT sum(n) AS n FROM ${engine.tableRef(MART.name)}`);
      return Number(r?.n ?? 0);
    };
    writeRawObject(pair.rawDir, DATASET.name, '2024-03-01', 'a', Array.from({ length: 3 }, (_, i) => incident(i)));
    await run();
    assert.equal(await total(), 3);
    // The repair pass: more raw under the same run id, transformed again.
    writeRawObject(pair.rawDir, DATASET.name, '2024-03-01', 'b', [incident(3), incident(4)]);
    const second = await run();
    assert.equal(second.curatedRows, 5);
    assert.equal(await total(), 5, 'the mart holds the second transform\'s rows');
    assert.equal(martLocations(pair).length, 1, `one location with files per mart, got ${martLocations(pair).join(', ')}`);
  });
});
