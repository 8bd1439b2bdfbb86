/**
 * One source identity per run: `--source` names the source (its host and dataset id), and the
 * fetch's checkpoint, the key scan and the transform's deletions all use that one identity.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { runLocalPipeline } from '../../local/pipeline';
import { sourceFor } from '../../local/dataset-rows';
import { startSocrataServer } from '../../local/socrata-server';
import { REPO } from './local-run-fixture';
import { suiteTempDir } from '../support/suite-fixtures';

let root: string;
suiteTempDir('cli-source-identity-', (dir) => (root = dir));

test('--source on another host and dataset id: the checkpoint, the key scan and the transform share its identity, and deletions are applied', async () => {
  const fire = loadDatasetFile(path.join(REPO, 'datasets', 'sf-fire-incidents.json'));
  const server = await startSocrataServer({ ...sourceFor(fire, 2_000), datasetId: 'abcd-1234', port: 0 });
  try {
    const dataDir = path.join(root, 'data');
    const source = `${server.url}/resource/abcd-1234.json`;
    const identity = { domain: new URL(server.url).host, datasetId: 'abcd-1234' };
    const s = await runLocalPipeline({ dataset: fire, dataDir, source });
    assert.equal(s.fetch.rowsFetched, 2_000);
    assert.deepEqual(s.sourceIdentity, identity);
    assert.equal(s.transform?.keysetApplied, true, 'the transform read the key scan of this run');
    assert.equal(s.transform?.curatedRows, 2_000);
    const checkpoint = JSON.parse(await readFile(path.join(dataDir, 'buckets', 'raw', 'checkpoints', `${fire.name}.json`), 'utf8')) as { source?: unknown };
    assert.deepEqual(checkpoint.source, { type: 'socrata', ...identity }, 'the checkpoint records it');
    const success = JSON.parse(await readFile(path.join(dataDir, 'buckets', 'raw', 'keysets', fire.name, s.runId, '_SUCCESS.json'), 'utf8')) as { source: unknown };
    assert.deepEqual(success.source, { type: 'socrata', ...identity }, 'the key scan records it');
  } finally {
    await server.close();
  }
});
