/**
 * `npm run status`: the datasets of a data directory, their checkpoints and last runs, read from
 * what the runs left (a failed run included).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { loadDatasetFile, parseDataset } from '../../runtime/dataset-config';
import { runLocalPipeline } from '../../local/pipeline';
import { readStatus, statusLines } from '../../local/status';
import { columns, permitsInput } from '../support/dataset-builder';
import { REPO } from './local-run-fixture';
import { suiteTempDir } from '../support/suite-fixtures';

const run = promisify(execFile);
let root: string;
suiteTempDir('cli-status-', (dir) => (root = dir));

const fire = loadDatasetFile(path.join(REPO, 'datasets', 'sf-fire-incidents.json'));
const permits = parseDataset(permitsInput({ columns: columns({ permit_number: 'text', issued_date: 'floating_timestamp' }) }), 'city-permits.json');

describe('npm run status', () => {
  test('a directory that does not exist: the declared datasets, no checkpoint, no runs', async () => {
    const s = await readStatus(path.join(root, 'none'));
    assert.equal(s.exists, false);
    assert.deepEqual(
      s.datasets.map((d) => [d.dataset, d.declared, d.checkpoint, d.runs.length]),
      [['sf-fire-incidents', true, undefined, 0]],
    );
  });

  test('lists every dataset the directory has state for, its checkpoint, local source and runs newest first, failed runs with their error', async () => {
    const dataDir = path.join(root, 'data');
    const first = await runLocalPipeline({ dataset: fire, dataDir, rows: 1_000 });
    const second = await runLocalPipeline({ dataset: fire, dataDir, rows: 1_200 });
    await runLocalPipeline({ dataset: permits, dataDir, rows: 300 });
    // A run that fails (its source is unreachable: a URL nothing listens on) is listed too.
    await assert.rejects(runLocalPipeline({ dataset: permits, dataDir, source: 'http://127.0.0.1:1/resource/perm-1234.json' }));

    const s = await readStatus(dataDir, 5);
    assert.equal(s.engine, 'duckdb');
    assert.deepEqual(s.datasets.map((d) => [d.dataset, d.declared]), [['city-permits', false], ['sf-fire-incidents', true]]);
    const sf = s.datasets[1]!;
    assert.deepEqual(sf.runs.map((r) => [r.runId, r.status, r.rowsFetched, r.curatedRows]), [
      [second.runId, 'succeeded', 200, 1_200],
      [first.runId, 'succeeded', 1_000, 1_000],
    ]);
    assert.equal(sf.checkpoint?.runId, second.runId);
    assert.equal(sf.localSource?.rows, 1_200);
    const pm = s.datasets[0]!;
    assert.equal(pm.runs.length, 2);
    assert.equal(pm.runs[0]!.status, 'failed');
    assert.match(pm.runs[0]!.error!, /127\.0\.0\.1:1/);

    const text = statusLines(s).join('\n');
    assert.match(text, new RegExp(`\\n  runs {7}2 \\(newest first\\)\\n    \\S+ \\S+  ${second.runId}  succeeded, 200 fetched, 1,200 curated\\n      \\S+${second.runId}\\.html`));
    assert.match(text, /city-permits \(not in datasets\/: run with --dataset-file\)/);
    assert.match(text, / {2}FAILED: /);

    // As a command: --json is the same object; --runs bounds the list; a stale lock is named as such.
    await writeFile(path.join(dataDir, '.run.lock'), '999999999\n');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', path.join(REPO, 'local', 'status.ts'), '--data-dir', dataDir, '--runs', '1', '--json'], { cwd: REPO });
    const viaCli = JSON.parse(stdout) as typeof s;
    assert.deepEqual(viaCli.datasets[1]!.runs.map((r) => r.runId), [second.runId]);
    assert.equal(viaCli.datasets[1]!.runCount, 2);
    assert.deepEqual(viaCli.lock, { pid: 999999999, stale: true });
  });
});
