import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { openObjectStore } from '../../runtime/object-store';
import { crawlRaw, defaultCatalogPath, queryCatalog } from '../../containers/transform/src/catalog';
import { EXIT, main } from '../../containers/transform/src/main';
import { runTransform } from '../../containers/transform/src/transform';
import { incident, writeRawObject } from './raw-fixture';

const ROOT = path.join(import.meta.dirname, '..', '..');
const DATASET_FILE = path.join(ROOT, 'datasets', 'sf-fire-incidents.json');
const DATASET = loadDatasetFile(DATASET_FILE);
const run = promisify(execFile);

describe('local catalog and npm run query', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'catalog-'));
  const rawDir = path.join(dataDir, 'buckets', 'raw');
  const curatedDir = path.join(dataDir, 'buckets', 'curated');
  const catalogPath = defaultCatalogPath(dataDir);

  test('crawl registers raw.<table> with the inferred schema; the transform registers curated tables and marts', async () => {
    writeRawObject(rawDir, DATASET.name, '2024-03-01', 'a', [incident(0), incident(1), incident(2)]);
    writeRawObject(rawDir, DATASET.name, '2024-03-02', 'b', [incident(3), incident(1, {}, 1), 'not json']);
    const crawl = await crawlRaw({ dataset: DATASET, rawDir, catalogPath });
    assert.equal(crawl.objects, 2);
    assert.ok(crawl.columns.some((c) => c.name === 'point' && /STRUCT|JSON/.test(c.type)), JSON.stringify(crawl.columns));
    assert.ok(crawl.columns.some((c) => c.name === 'longitude' && c.type === 'DOUBLE'));
    const raw = await queryCatalog(catalogPath, 'SELECT ingest_date, count(*) AS n FROM raw.sf_fire_incidents WHERE id IS NOT NULL GROUP BY 1 ORDER BY 1');
    assert.deepEqual(raw.rows.map((r) => [String(r.ingest_date), r.n]), [['2024-03-01', 3], ['2024-03-02', 2]]);

    const s = await runTransform({ dataset: DATASET, engine: 'duckdb', rawStore: openObjectStore(rawDir), curatedStore: openObjectStore(curatedDir), runId: 'r1', catalogPath });
    assert.equal(s.curatedRows, 4);
    const curated = await queryCatalog(catalogPath, 'SELECT count(*) AS n, count(DISTINCT id) AS k FROM curated.sf_fire_incidents');
    assert.deepEqual(curated.rows, [{ n: 4, k: 4 }]);
    const tables = await queryCatalog(catalogPath, "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables ORDER BY 1");
    const names = tables.rows.map((r) => r.t);
    for (const t of ['raw.sf_fire_incidents', 'curated.sf_fire_incidents', 'curated.sf_fire_incidents__incidents_by_month_battalion', 'curated.sf_fire_incidents__response_time_by_neighborhood', 'curated.sf_fire_incidents__losses_by_primary_situation']) {
      assert.ok(names.includes(t), `${t} in ${names.join(', ')}`);
    }
  });

  test('npm run query prints JSON rows, a table, and one-line errors', async () => {
    const cli = path.join(ROOT, 'local', 'query-cli.ts');
    const tsx = path.join(ROOT, 'node_modules', '.bin', 'tsx');
    const json = await run(tsx, [cli, '--data-dir', dataDir, '--json', 'SELECT battalion, count(*) AS n FROM curated.sf_fire_incidents GROUP BY 1 ORDER BY 1']);
    assert.deepEqual(JSON.parse(json.stdout), [{ battalion: 'B01', n: 1 }, { battalion: 'B02', n: 1 }, { battalion: 'B03', n: 1 }, { battalion: 'B10', n: 1 }]);
    const table = await run(tsx, [cli, '--data-dir', dataDir, 'SELECT count(*) AS n FROM curated.sf_fire_incidents']);
    assert.match(table.stdout, /^n\s*\n-+\n4\s*\n\(1 row\)/);
    await assert.rejects(run(tsx, [cli, '--data-dir', dataDir, 'SELECT * FROM curated.nope']), (err: { code: number; stderr: string }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /^query: .*nope/);
      // One error line, then the tables there are (test/local/cli-report.test.ts checks the list).
      const [, heading, ...tables] = err.stderr.trim().split('\n');
      assert.equal(heading, `tables in ${dataDir}:`);
      assert.ok(tables.includes('  curated.sf_fire_incidents'), tables.join('\n'));
      return true;
    });
  });
});

describe('container entry (main)', () => {
  const env = (dataDir: string, dataset: unknown = JSON.parse(readFileSync(DATASET_FILE, 'utf8'))) => ({
    DATASET_CONFIG: JSON.stringify(dataset),
    ENGINE: 'duckdb',
    RAW_LOCATION: path.join(dataDir, 'raw'),
    CURATED_LOCATION: path.join(dataDir, 'curated'),
    RUN_ID: 'run-1',
    APP_TOKEN: 'secret-token-value',
  });

  test('configuration errors exit 2 and list every problem', async () => {
    const logs: Record<string, unknown>[] = [];
    const code = await main({ ENGINE: 'spark', RUN_ID: 'x', DATASET_CONFIG: '{"name":"x"}' }, { log: (r) => logs.push(r) });
    assert.equal(code, EXIT.config);
    const msg = String(logs.at(-1)!.message);
    assert.match(msg, /ENGINE must be "athena" or "duckdb"/);
    assert.match(msg, /RAW_LOCATION is not set/);
    assert.match(msg, /CURATED_LOCATION is not set/);
    assert.match(msg, /DATASET_CONFIG/);
  });

  test('athena needs its workgroup and databases', async () => {
    const logs: Record<string, unknown>[] = [];
    const code = await main({ ...env('/tmp/x'), ENGINE: 'athena' }, { log: (r) => logs.push(r) });
    assert.equal(code, EXIT.config);
    assert.match(String(logs.at(-1)!.message), /ATHENA_WORKGROUP is not set[\s\S]*RAW_DATABASE is not set[\s\S]*CURATED_DATABASE is not set/);
  });

  test('success exits 0; a failing error-severity test exits 3 naming it; the token never reaches the log', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'main-'));
    writeRawObject(path.join(dataDir, 'raw'), DATASET.name, '2024-03-01', 'a', [incident(0), incident(1)]);
    const logs: Record<string, unknown>[] = [];
    assert.equal(await main(env(dataDir), { log: (r) => logs.push(r) }), EXIT.ok);

    const strict = { ...JSON.parse(readFileSync(DATASET_FILE, 'utf8')), dataTests: [{ kind: 'accepted_values', column: 'battalion', values: ['B01'], name: 'only_b01' }] };
    assert.equal(await main({ ...env(dataDir, strict), RUN_ID: 'run-2' }, { log: (r) => logs.push(r) }), EXIT.testsFailed);
    assert.match(String(logs.at(-1)!.message), /data tests failed \(severity error\): only_b01/);
    assert.doesNotMatch(JSON.stringify(logs), /secret-token-value/);
  });

  test('UNDECLARED_COLUMNS (the fetcher schema drift) reaches the run summary and the HTML report; a malformed value is a configuration error', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'main-'));
    writeRawObject(path.join(dataDir, 'raw'), DATASET.name, '2024-03-01', 'a', [incident(0)]);
    const logs: Record<string, unknown>[] = [];
    assert.equal(await main({ ...env(dataDir), UNDECLARED_COLUMNS: '["new_col",":@computed_region_x"]' }, { log: (r) => logs.push(r) }), EXIT.ok);
    const summary = logs.at(-1)!.summary as { schemaDrift: { undeclared: string[] }; reportLocation: string };
    assert.deepEqual(summary.schemaDrift.undeclared, [':@computed_region_x', 'new_col']);
    const html = readFileSync(summary.reportLocation, 'utf8');
    assert.match(html, /Undeclared source columns<\/th><td[^>]*>:@computed_region_x, new_col<\/td>/);
    assert.equal(await main({ ...env(dataDir), RUN_ID: 'run-2', UNDECLARED_COLUMNS: 'new_col' }, { log: (r) => logs.push(r) }), EXIT.config);
    assert.match(String(logs.at(-1)!.message), /UNDECLARED_COLUMNS must be a JSON array of column names/);
  });

  test('REBUILD=true rebuilds curated from raw; any other value is a configuration error', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'main-'));
    writeRawObject(path.join(dataDir, 'raw'), DATASET.name, '2024-03-01', 'a', [incident(0), incident(1)]);
    const logs: Record<string, unknown>[] = [];
    assert.equal(await main(env(dataDir), { log: (r) => logs.push(r) }), EXIT.ok);
    assert.equal(await main({ ...env(dataDir), RUN_ID: 'run-2', REBUILD: 'true' }, { log: (r) => logs.push(r) }), EXIT.ok);
    const summary = logs.at(-1)!.summary as { rebuild: boolean; rawObjects: { new: number }; curatedRows: number };
    assert.deepEqual([summary.rebuild, summary.rawObjects.new, summary.curatedRows], [true, 1, 2]);
    assert.equal(await main({ ...env(dataDir), REBUILD: 'yes' }, { log: (r) => logs.push(r) }), EXIT.config);
    assert.match(String(logs.at(-1)!.message), /REBUILD must be "true" or "false", got "yes"/);
  });

  test('the duckdb engine refuses S3 locations with a clear message (exit 2)', async () => {
    const logs: Record<string, unknown>[] = [];
    const code = await main({ ...env('/tmp/x'), RAW_LOCATION: 's3://raw-bucket' }, { log: (r) => logs.push(r) });
    assert.equal(code, EXIT.config);
    assert.match(String(logs.at(-1)!.message), /duckdb engine needs a local raw directory, got s3:\/\/raw-bucket/);
  });
});
