/**
 * The raw table Trino reads is the one the deployment declares: the `AWS::Glue::Table` of the
 * synthesized dataset stack (its bucket reference standing for the local raw bucket) equals what
 * local/glue-raw-table.ts registers, and Trino reads the raw zone through it as Athena would:
 * the OpenX JSON SerDe's parameters (malformed lines become NULL rows, keys are matched without
 * case), points as structs, `$path`, and partition projection on ingest_date.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadDatasetFile, tableName } from '../../runtime/dataset-config';
import { LOCAL_RAW_BUCKET, synthesizeRawTable, type GlueTableInput } from '../../local/glue-raw-table';
import { prepareAthenaCatalog, type LocalAthena } from '../../local/athena-local';
import { localLocation } from '../../local/trino-server';
import { synth } from '../cdk/app-fixture';
import { trinoSkip, uniqueSuffix } from '../support/trino';
import { suiteAthena } from './engine-pair';
import { incident, writeRawObject } from './raw-fixture';

const DATASET = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'));

/** The template's intrinsic parts (the raw bucket's name, the database) as the local values. */
function withLocalNames(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withLocalNames);
  if (value && typeof value === 'object') {
    const join = (value as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
    if (join) return join[1].map((p) => (typeof p === 'string' ? p : LOCAL_RAW_BUCKET)).join(join[0]);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withLocalNames(v)]));
  }
  return value;
}

describe('the raw Glue table of the synthesized template', () => {
  test('equals the table registered in the local Trino metastore (nothing hand-written)', () => {
    const { assembly } = synth();
    const tables = assembly.stacks
      .flatMap((s) => Object.values((s.template as { Resources: Record<string, { Type: string; Properties: { TableInput: GlueTableInput } }> }).Resources))
      .filter((r) => r.Type === 'AWS::Glue::Table' && r.Properties.TableInput.Name === tableName(DATASET));
    assert.equal(tables.length, 1);
    const deployed = withLocalNames(tables[0]!.Properties.TableInput);
    assert.deepEqual(deployed, synthesizeRawTable(DATASET, 'raw'));
  });
});

describe('Trino reads the raw zone through the CDK table as Athena does', { skip: trinoSkip }, () => {
  let athena: LocalAthena;
  suiteAthena((started) => (athena = started));

  test('SerDe parameters, points, $path and partition projection', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'raw-table-'));
    const rawDir = path.join(root, 'raw');
    const sfx = uniqueSuffix();
    const cat = { dataset: DATASET, rawDir, curatedDir: path.join(root, 'curated'), rawDatabase: `raw_${sfx}`, curatedDatabase: `curated_${sfx}` };
    await prepareAthenaCatalog(athena, cat);
    const upper = JSON.stringify(incident(2)).replace('"battalion"', '"BATTALION"');
    const key = writeRawObject(rawDir, DATASET.name, '2024-03-01', 'a', [incident(1), '{"id": "broken', upper]);
    writeRawObject(rawDir, DATASET.name, '2024-03-05', 'b', [incident(3)]);
    const q = async (sql: string) => {
      const r = await athena.trino.execute(sql, { catalog: 'hive', schema: cat.rawDatabase });
      assert.equal(r.error, undefined, r.error?.message);
      return r.rows;
    };
    const t = `"${cat.rawDatabase}"."${tableName(DATASET)}"`;
    const rows = await q(`SELECT "$path", id, battalion, point.coordinates[1], longitude FROM ${t} WHERE ingest_date = '2024-03-01' ORDER BY id NULLS LAST`);
    assert.deepEqual(rows, [
      [`${localLocation(rawDir)}/${key}`, '1000010', 'B02', -122.44, -122.44],
      [`${localLocation(rawDir)}/${key}`, '1000020', 'B03', -122.43, -122.43],
      // A malformed line: a row of NULLs (ignore.malformed.json), counted by the transform.
      [`${localLocation(rawDir)}/${key}`, null, null, null, null],
    ]);
    // Projection: any day from 2020-01-01 to now, none registered; a day without objects is empty.
    assert.deepEqual(await q(`SELECT count(*) FROM ${t} WHERE ingest_date IN ('2024-03-05', '2024-03-06')`), [[1]]);
    assert.deepEqual(await q(`SELECT count(*), count(DISTINCT ingest_date) FROM ${t}`), [[4, 2]]);
    // Outside the projected range nothing is read.
    assert.deepEqual(await q(`SELECT count(*) FROM ${t} WHERE ingest_date = '2019-12-31'`), [[0]]);
  });
});
