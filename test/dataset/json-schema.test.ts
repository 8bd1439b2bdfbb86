/**
 * The published JSON Schema (datasets/dataset.schema.json): committed exactly as the zod schema
 * generates it, referenced by every dataset file, and accepting every definition the loader
 * accepts, checked with an independent validator (Ajv, draft-07) as an editor would.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import Ajv from 'ajv';
import { isDatasetFileName, loadDatasetDir, loadDatasetFile } from '../../runtime/dataset-config';
import { DATASET_SCHEMA_PATH, datasetJsonSchema, datasetJsonSchemaText } from '../../runtime/dataset-json-schema';
import { proposeDataset, readViewDocument } from '../../runtime/socrata-metadata';

const REPO_ROOT = path.join(import.meta.dirname, '..', '..');
const DATASETS = path.join(REPO_ROOT, 'datasets');
const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'socrata-views');

function validator() {
  const ajv = new Ajv({ allErrors: true });
  return ajv.compile(datasetJsonSchema());
}

describe('dataset JSON Schema', () => {
  test('the committed file is what `npm run dataset -- schema` generates from the zod schema', () => {
    assert.equal(readFileSync(path.join(REPO_ROOT, DATASET_SCHEMA_PATH), 'utf8'), datasetJsonSchemaText(), 'run npm run dataset -- schema and commit the result');
  });

  test('every dataset file references it and validates against it (Ajv) and with the loader', () => {
    const validate = validator();
    const files = readdirSync(DATASETS).filter(isDatasetFileName);
    assert.ok(files.length >= 1);
    for (const f of files) {
      const body = JSON.parse(readFileSync(path.join(DATASETS, f), 'utf8')) as Record<string, unknown>;
      assert.equal(body.$schema, './dataset.schema.json', `${f} has no "$schema": "./dataset.schema.json"`);
      assert.ok(validate(body), `${f}: ${JSON.stringify(validate.errors)}`);
      loadDatasetFile(path.join(DATASETS, f));
    }
    // The schema beside the definitions is not taken for one.
    assert.deepEqual(loadDatasetDir(DATASETS).map((d) => `${d.name}.json`).sort(), files.sort());
  });

  test('definitions proposed from real portal metadata validate against it too', () => {
    const validate = validator();
    for (const f of ['chicago-crimes-6zsd-86xi.json', 'all-column-types-2asz-g9qq.json', 'seattle-911-incident-response-3k2p-39jp.json']) {
      const view = readViewDocument(JSON.parse(readFileSync(path.join(FIXTURES, f), 'utf8')), f);
      const { definition } = proposeDataset(view, { domain: 'data.example.org' });
      assert.ok(validate(definition), `${f}: ${JSON.stringify(validate.errors)}`);
    }
  });

  test('it catches what an editor should flag: an unknown type, a misspelt field, a missing key', () => {
    const validate = validator();
    const good = JSON.parse(readFileSync(path.join(DATASETS, 'sf-fire-incidents.json'), 'utf8')) as Record<string, unknown>;
    const columns = good.columns as Record<string, unknown>[];
    const bad: [string, Record<string, unknown>][] = [
      ['type', { ...good, columns: [{ ...columns[0], type: 'string' }, ...columns.slice(1)] }],
      ['primaryKeys', { ...good, primaryKeys: 'x' }],
      ['source', { ...good, source: { domain: 'data.sfgov.org' } }],
    ];
    for (const [what, body] of bad) assert.equal(validate(body), false, `${what} should be flagged`);
  });
});
