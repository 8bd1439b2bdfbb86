/**
 * `npm run dataset -- add` for CKAN DataStore resources (local/ckan-add.ts) on REAL saved Action
 * API answers (test/fixtures/ckan/, origins in test/fixtures/README.md), and the real answers read
 * by the source's own checks (a portal's unsorted answer refused).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parseDataset } from '../../runtime/dataset-config';
import { runDatasetCommand, type DatasetCommandDeps } from '../../local/dataset-command';
import { rowOf } from '../../lambdas/fetcher/sources/ckan/ckan-values';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'ckan');
const fixture = (name: string) => path.join(FIXTURES, name);
const json = (name: string): unknown => JSON.parse(readFileSync(fixture(name), 'utf8'));

async function run(argv: string[], fetchJson: DatasetCommandDeps['fetchJson'] = () => Promise.reject(new Error('no network in this test'))) {
  let stdout = '';
  let stderr = '';
  const code = await runDatasetCommand(argv, { fetchJson, stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), repoRoot: mkdtempSync(path.join(tmpdir(), 'ckan-add-')) });
  return { code, stdout, stderr };
}

describe('dataset add for a CKAN DataStore resource', () => {
  test('a saved datastore_search answer (data.ontario.ca): portal from its help URL, types from its fields, a definition the loader accepts', async () => {
    const out = await run(['add', fixture('ontario-datastore-search.json'), '--primary-key', 'report_date', '--name', 'ontario-vaccines', '--dry-run']);
    assert.equal(out.code, 0, out.stderr);
    const definition = JSON.parse(out.stdout) as Record<string, unknown>;
    const dataset = parseDataset(definition, 'test');
    assert.deepEqual(dataset.source, { type: 'ckan', url: 'https://data.ontario.ca/api/3/action/datastore_search?resource_id=8a89caa9-511c-4568-af89-7f2174b4378c' });
    assert.equal(dataset.eventTimeColumn, 'report_date', 'the one timestamp');
    const types = Object.fromEntries(dataset.columns.map((c) => [c.name, c.type]));
    assert.deepEqual([types.report_date, types.total_doses_administered, types.previous_day_3doses, types._id], ['floating_timestamp', 'number', 'text', undefined]);
    assert.equal(dataset.columns.length, 11);
  });

  test('no usable key is a question naming the fields, never _id', async () => {
    const out = await run(['add', fixture('ontario-datastore-search.json'), '--dry-run']);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /which field identifies a row\? CKAN's _id does not .* pass --primary-key with a unique field, one of report_date, previous_day_total_doses_administered/);
  });

  test('fields that are not lower-case identifiers are named as left out; no timestamp is a clear error (data.gov.au, odaa.dk)', async () => {
    const gov = await run(['add', fixture('data-gov-au-datastore-search.json'), '--dry-run']);
    assert.equal(gov.code, 2);
    assert.match(gov.stderr, /has no field usable as a column \(left out Location_Name, Identifier, .*: not lower-case SQL identifiers/);
    const odaa = await run(['add', fixture('odaa-datastore-search.json'), '--primary-key', 'date', '--dry-run']);
    assert.equal(odaa.code, 2);
    assert.match(odaa.stderr, /has no timestamp or date field/, 'its timestamps are CamelCase: not columns');
  });

  test('a package with several DataStore resources (smartme-data.unime.it package_show) is a question listing them; --resource picks one, read from the portal', async () => {
    const asked = await run(['add', fixture('smartme-package-show.json'), '--dry-run']);
    assert.equal(asked.code, 2);
    assert.match(asked.stderr, /has 7 DataStore resources; which one\? Pass --resource <id>: c1352d7d-3016-42d6-adcc-55d182ca94a7 \(sensors\), 23594d30/);

    const requested: string[] = [];
    const fetchJson = async (url: string) => {
      requested.push(url);
      if (url.includes('resource_show')) return { success: true, result: { id: '23594d30-0b38-4967-97ef-c961fd9fdbdb', name: 'temperature', datastore_active: true } };
      // The fields of a FIWARE resource as a real answer lists them (fiware-cygnus docs, see the fixtures README).
      return { success: true, result: { fields: [{ type: 'int4', id: '_id' }, { type: 'int4', id: 'recvtimets' }, { type: 'timestamp', id: 'recvtime' }, { type: 'text', id: 'entityid' }, { type: 'json', id: 'attrvalue' }], records: [], total: 0 } };
    };
    const picked = await run(['add', fixture('smartme-package-show.json'), '--resource', '23594d30-0b38-4967-97ef-c961fd9fdbdb', '--primary-key', 'entityid', '--dry-run'], fetchJson);
    assert.equal(picked.code, 0, picked.stderr);
    assert.deepEqual(requested, [
      'http://smartme-data.unime.it/api/3/action/resource_show?id=23594d30-0b38-4967-97ef-c961fd9fdbdb',
      'http://smartme-data.unime.it/api/3/action/datastore_search?resource_id=23594d30-0b38-4967-97ef-c961fd9fdbdb&limit=0',
    ]);
    const dataset = parseDataset(JSON.parse(picked.stdout), 'test');
    assert.deepEqual([dataset.name, dataset.eventTimeColumn, dataset.columns.map((c) => `${c.name}:${c.type}`)], ['temperature', 'recvtime', ['recvtimets:integer', 'recvtime:floating_timestamp', 'entityid:text', 'attrvalue:json']]);
  });

  test('a resource page URL asks resource_show and datastore_search; a Not Found answer is the user\'s input (exit 2)', async () => {
    const fetchJson = async (url: string) => {
      if (url.includes('resource_show')) return { success: false, error: { __type: 'Not Found Error', message: 'Not found: Resource was not found.' } };
      return json('ontario-datastore-search.json');
    };
    const out = await run(['add', 'https://data.ontario.ca/dataset/covid-19-vaccine-data-in-ontario/resource/8a89caa9-511c-4568-af89-7f2174b4378c', '--dry-run'], fetchJson);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /resource_show of 8a89caa9-511c-4568-af89-7f2174b4378c answered CKAN Not Found Error: Not found: Resource was not found\./);
  });

  test('real answers through the source\'s value shaping: numbers as text, naive timestamps to milliseconds, _id left out', () => {
    const gov = json('data-gov-au-datastore-search.json') as { result: { fields: { id: string; type: string }[]; records: Record<string, unknown>[] } };
    const types = new Map(gov.result.fields.map((f) => [f.id, f.type]));
    const row = rowOf(gov.result.records[0]!, types);
    assert.deepEqual([row.Latitude, row.Post_Code, row._id, row.Location_Name], ['-35.32488745', '2611', undefined, 'Cotter River Recreation Area']);
    const odaa = json('odaa-datastore-search.json') as typeof gov;
    const o = rowOf(odaa.result.records[2]!, new Map(odaa.result.fields.map((f) => [f.id, f.type])));
    assert.deepEqual([o.AvgWaitingSQ, o.WaitingCustomersMQ, o.ServiceTypeName], ['2017-05-22T00:00:00', '2', 'Folkeregister']);
  });
});
