/**
 * One app with a dataset of every source type (issue #19 item 7, #21): it synthesizes as
 * `cdk synth` does (cdk-nag included), each fetcher gets its source's variables and nothing of
 * another type's, and the Socrata-only parts (the app-token secret) appear only where they apply.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, synth } from './app-fixture';
import { loadTemplates } from './cfn-resolve';

const dir = mkdtempSync(path.join(os.tmpdir(), 'every-source-type-'));
const fire = JSON.parse(readFileSync(path.join(REPO_ROOT, 'datasets', 'sf-fire-incidents.json'), 'utf8')) as { source: Record<string, unknown> };
fire.source.appTokenSecretName = 'socrata/app-token';
writeFileSync(path.join(dir, 'sf-fire-incidents.json'), JSON.stringify(fire));
for (const name of ['road-safety-accidents', 'vehicle-events', 'store-orders']) copyFileSync(path.join(REPO_ROOT, 'examples', 'datasets', `${name}.json`), path.join(dir, `${name}.json`));
const portal = (name: string, source: Record<string, unknown>) =>
  writeFileSync(
    path.join(dir, `${name}.json`),
    JSON.stringify({
      name,
      source,
      primaryKey: 'site_id',
      eventTimeColumn: 'inspected_at',
      columns: [
        { name: 'site_id', type: 'text' },
        { name: 'inspected_at', type: 'fixed_timestamp' },
      ],
    }),
  );
portal('ckan-sites', { type: 'ckan', url: 'https://data.example.org/api/3/action/datastore_search?resource_id=8a89caa9-511c-4568-af89-7f2174b4378c' });
portal('arcgis-sites', { type: 'arcgis', url: 'https://services.arcgis.com/abc/arcgis/rest/services/Sites/FeatureServer/0', editDateField: 'EditDate' });

const EXPECTED: Record<string, Record<string, string | undefined>> = {
  'sf-fire-incidents': { SOURCE_TYPE: undefined, SOURCE_DOMAIN: 'data.sfgov.org', APP_TOKEN_SECRET_NAME: 'socrata/app-token' },
  'road-safety-accidents': { SOURCE_TYPE: 'file', SOURCE_FORMAT: 'csv' },
  'store-orders': { SOURCE_TYPE: 'file', SOURCE_FORMAT: 'csv' },
  'vehicle-events': { SOURCE_TYPE: 's3', SOURCE_MODE: 'append', DELETIONS_DETECT: 'false' },
  'ckan-sites': { SOURCE_TYPE: 'ckan' },
  'arcgis-sites': { SOURCE_TYPE: 'arcgis', SOURCE_EDIT_DATE_FIELD: 'EditDate' },
};

test('a dataset of each source type synthesizes (cdk-nag included) with its own source variables, and a secret only for Socrata', () => {
  const { outdir } = synth({ env: 'dev', datasetsDir: dir });
  const templates = loadTemplates(outdir);
  for (const [dataset, want] of Object.entries(EXPECTED)) {
    const template = templates.get(`SocrataPipeline-dev-Dataset-${dataset}`);
    assert.ok(template, `${dataset}: its stack (stacks: ${[...templates.keys()].join(', ')})`);
    type Fn = { Type: string; Properties?: { Environment?: { Variables?: Record<string, unknown> } } };
    const fetchers = Object.values(template.Resources as Record<string, Fn>).filter((r) => r.Type === 'AWS::Lambda::Function' && r.Properties?.Environment?.Variables?.DATASET_NAME === dataset && r.Properties.Environment.Variables.DELIVERY_STREAM_NAME !== undefined);
    assert.equal(fetchers.length, 1, `${dataset}: one fetcher`);
    const vars = fetchers[0]!.Properties!.Environment!.Variables!;
    for (const [name, value] of Object.entries(want)) assert.equal(vars[name], value, `${dataset} ${name}`);
    if (dataset !== 'sf-fire-incidents') {
      assert.equal(vars.APP_TOKEN_SECRET_NAME, undefined, `${dataset}: no app-token secret`);
      assert.equal(vars.SOURCE_DOMAIN, undefined, `${dataset}: no Socrata domain`);
      assert.doesNotMatch(JSON.stringify(template), /secretsmanager:GetSecretValue/, `${dataset}: no secret grant`);
    }
  }
});
