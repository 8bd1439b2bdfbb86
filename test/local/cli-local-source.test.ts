/**
 * The generated local source as a person meets it across runs: remembered per dataset (another
 * dataset in the same directory does not make this one's source new), and a refused mass delete
 * that this machine caused (a smaller --rows) says so, with the flags that fix it.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadDatasetFile, parseDataset } from '../../runtime/dataset-config';
import { runLocalPipeline } from '../../local/pipeline';
import { localSourceFile, readLocalSource, shrunkSourceHint } from '../../local/local-source-state';
import { startLocalSource } from '../../local/dataset-rows';
import { columns, permitsInput } from '../support/dataset-builder';
import { suiteTempDir } from '../support/suite-fixtures';
import { REPO, runCli } from './local-run-fixture';

let root: string;
suiteTempDir('cli-local-source-', (dir) => (root = dir));

const fire = loadDatasetFile(path.join(REPO, 'datasets', 'sf-fire-incidents.json'));
const permits = parseDataset(permitsInput({ columns: columns({ permit_number: 'text', issued_date: 'floating_timestamp', status: 'text' }) }), 'city-permits.json');

describe('the local source is remembered per dataset', () => {
  test('running another dataset in the same directory leaves this one\'s source as it was: the next run fetches nothing', async () => {
    const dataDir = path.join(root, 'two-datasets');
    const first = await runLocalPipeline({ dataset: fire, dataDir, rows: 1_000 });
    assert.equal(first.fetch.rowsFetched, 1_000);
    const other = await runLocalPipeline({ dataset: permits, dataDir, rows: 500 });
    assert.equal(other.fetch.rowsFetched, 500);
    const again = await runLocalPipeline({ dataset: fire, dataDir, rows: 1_000 });
    assert.equal(again.fetch.rowsFetched, 0, 'the same source, so nothing new to fetch');
    assert.equal(again.source, first.source, 'served at the same URL');
    for (const name of [fire.name, permits.name]) {
      assert.equal(JSON.parse(await readFile(localSourceFile(dataDir, name), 'utf8')).dataset, name);
    }
  });

  test("an older directory's single local-source.json is read as its dataset's, then moved", async () => {
    const dataDir = path.join(root, 'legacy');
    await mkdir(dataDir, { recursive: true });
    const legacy = { dataset: fire.name, seed: 1, rows: [1_000, 2_000], loadedAt: '2026-01-01T00:00:00.000Z', grownAt: ['2026-02-01T00:00:00.000Z'] };
    await writeFile(path.join(dataDir, 'local-source.json'), JSON.stringify(legacy));
    assert.deepEqual(await readLocalSource(dataDir, fire), legacy);
    assert.equal(await readLocalSource(dataDir, permits), undefined, 'another dataset\'s file says nothing of this one');
    const source = await startLocalSource(fire, dataDir, 2_000);
    await source.close();
    assert.equal(existsSync(path.join(dataDir, 'local-source.json')), false);
    const moved = JSON.parse(await readFile(localSourceFile(dataDir, fire.name), 'utf8'));
    assert.deepEqual([moved.rows, moved.loadedAt, moved.grownAt], [legacy.rows, legacy.loadedAt, legacy.grownAt], 'the same source, not a new one');
  });
});

describe('a refused mass delete caused by a smaller --rows', () => {
  test('the hint names the larger source, --rows and --fresh; following it succeeds', async () => {
    const dataDir = path.join(root, 'shrunk');
    const built = await runCli(['--rows', '4000', '--data-dir', dataDir, '--json']);
    assert.equal(built.code, 0, built.stderr);
    for (let i = 0; i < 2; i++) {
      // The second time the source already is the smaller one: the cause is still named.
      const r = await runCli(['--rows', '1000', '--data-dir', dataDir, '--json']);
      assert.equal(r.code, 4, r.stderr);
      const o = JSON.parse(r.stdout.trim()) as { hint?: string };
      assert.match(o.hint ?? '', /^the local source shrank: .* held a sf-fire-incidents source of 4,000 rows and this run generated 1,000, /);
      assert.match(o.hint!, /Run with --rows 4000 to keep the source of this directory, or add --fresh to start over with 1,000 rows$/);
      assert.match(r.stderr, /\nhint: the local source shrank/);
    }
    const fixed = await runCli(['--rows', '4000', '--data-dir', dataDir, '--json']);
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.equal((JSON.parse(fixed.stdout.trim()) as { transform: { curatedRows: number } }).transform.curatedRows, 4000);
  });

  test('the default --rows is named as the default; no hint without a larger remembered source', () => {
    const previous = { dataset: fire.name, seed: 1, rows: [200_000] };
    assert.match(shrunkSourceHint(previous, 50_000, false, '/d')!, /this run generated 50,000 \(the default --rows\), /);
    assert.equal(shrunkSourceHint(previous, 200_000, false, '/d'), undefined);
    assert.equal(shrunkSourceHint(undefined, 50_000, false, '/d'), undefined);
  });
});
