/**
 * `npm run local` with a dataset that reads SODA 3: the local server's SODA 3 route refuses
 * requests without an app token, so the run completing shows the local pipeline hands the
 * fetcher one (SOCRATA_APP_TOKEN, never the deployed secret's name), and every row arrives.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { curatedIds, REPO, runCli } from './local-run-fixture';

test('a SODA 3 dataset runs locally end to end through the query endpoint, with a token', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'soda3-local-'));
  const definition = JSON.parse(readFileSync(path.join(REPO, 'datasets', 'sf-fire-incidents.json'), 'utf8')) as { source: Record<string, unknown> };
  definition.source = { ...definition.source, api: 'soda3', appTokenSecretName: 'sf-fire/socrata-app-token' };
  const file = path.join(dir, 'sf-fire-incidents.json');
  writeFileSync(file, JSON.stringify(definition));
  const dataDir = path.join(dir, 'data');
  const run = await runCli(['--dataset-file', file, '--rows', '2000', '--data-dir', dataDir]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout + run.stderr, /source http:\/\/127\.0\.0\.1:\d+\/api\/v3\/views\/wr8u-xric\/query\.json \(SODA 3\)/);
  assert.equal((await curatedIds(dataDir)).length, 2_000);
});
