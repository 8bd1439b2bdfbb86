/**
 * The embedded pipeline end to end over real HTTP: local Socrata and Firehose endpoints, the real
 * fetcher handler, the crawl, the DuckDB transform. Expected values come from the source rows.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { queryCatalog, defaultCatalogPath } from '../../containers/transform/src/catalog';
import { loadDatasetFile, type DatasetConfig } from '../../runtime/dataset-config';
import { LocalObjectStore } from '../../runtime/object-store';
import { quarantinePrefix } from '../../runtime/storage-layout';
import { sourceFor } from '../../local/dataset-rows';
import { startLocalFirehose } from '../../local/firehose-server';
import { runLocalPipeline, type LocalRunOptions } from '../../local/pipeline';
import { startSocrataServer, type SocrataServer } from '../../local/socrata-server';
import { permitsInput } from '../support/dataset-builder';
import { suiteTempDir } from '../support/suite-fixtures';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const ROWS = 3_000;
/** The large-rows test's source size (issue 23 asks 20,000 if a test stays near 30 s). */
const E2E_ROWS = 20_000;
const fire = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'));
/** Smaller pages than the default so a few thousand rows still cross several page boundaries. */
const smallPages: DatasetConfig = { ...fire, fetch: { ...fire.fetch, pageSize: 400 } };

let root: string;
suiteTempDir('local-e2e-', (dir) => (root = dir));

const dirFor = (name: string): string => path.join(root, name);

/** Run against a pre-started source (so the test can read and change it); the Firehose endpoint is the pipeline's own. */
async function run(dataDir: string, socrata: SocrataServer, extra: Partial<LocalRunOptions> = {}) {
  return runLocalPipeline({ dataset: smallPages, dataDir, socrata, ...extra });
}

/** The curated table without the per-run metadata, ordered by key: equal for equal content. */
async function curatedContent(dataDir: string): Promise<Record<string, unknown>[]> {
  const { rows } = await queryCatalog(
    defaultCatalogPath(dataDir),
    'SELECT * EXCLUDE (_ingested_at, _run_id) FROM curated.sf_fire_incidents ORDER BY id',
  );
  return rows;
}

const num = (v: unknown): number => (v === undefined ? 0 : Number(v));

describe('npm run local, end to end', () => {
  test('a clean run: curated rows == distinct source ids, and the marts match the source', async () => {
    const socrata = await startSocrataServer(sourceFor(smallPages, ROWS, 7));
    try {
      const dataDir = dirFor('clean');
      const progress: { rowsFetched: number; expectedRows?: number }[] = [];
      const envBefore = { ...process.env };
      const s = await run(dataDir, socrata, { onProgress: (p) => progress.push(p) });
      // The fetcher is given its configuration as an argument: the run leaves the process environment as it found it.
      assert.deepEqual({ ...process.env }, envBefore);
      assert.ok(progress.length >= 1);
      assert.deepEqual(progress.at(-1), { ...progress.at(-1), rowsFetched: ROWS, expectedRows: ROWS });
      assert.ok(progress.every((p, i) => i === 0 || p.rowsFetched >= progress[i - 1]!.rowsFetched), 'progress never goes back');
      assert.equal(s.fetch.done, true);
      assert.equal(s.fetch.rowsFetched, ROWS);
      assert.equal(s.fetch.rowsDelivered, ROWS);
      assert.ok(s.fetch.pages >= Math.ceil(ROWS / 400));
      assert.equal(s.transform?.status, 'succeeded');

      const ids = new Set(socrata.rows.map((r) => r.id as string));
      assert.equal(s.transform?.curatedRows, ids.size);
      const catalog = defaultCatalogPath(dataDir);
      const curatedIds = (await queryCatalog(catalog, 'SELECT id FROM curated.sf_fire_incidents')).rows.map((r) => r.id);
      assert.deepEqual(new Set(curatedIds), ids);

      // Incidents per battalion, computed here from the source rows.
      const perBattalion = new Map<string, number>();
      for (const r of socrata.rows) {
        const b = (r.battalion as string | undefined) ?? 'unknown';
        perBattalion.set(b, (perBattalion.get(b) ?? 0) + 1);
      }
      const mart = (await queryCatalog(catalog, 'SELECT battalion, incidents FROM curated.sf_fire_incidents__battalion_totals')).rows;
      assert.deepEqual(new Map(mart.map((r) => [r.battalion as string, Number(r.incidents)])), perBattalion);

      // Property loss and civilian injuries by primary situation.
      const bySituation = new Map<string, { loss: number; injuries: number; n: number }>();
      for (const r of socrata.rows) {
        const k = (r.primary_situation as string | undefined) ?? 'unknown';
        const acc = bySituation.get(k) ?? { loss: 0, injuries: 0, n: 0 };
        acc.loss += num(r.estimated_property_loss);
        acc.injuries += num(r.civilian_injuries);
        acc.n += 1;
        bySituation.set(k, acc);
      }
      const losses = (
        await queryCatalog(catalog, 'SELECT primary_situation, incidents, property_loss, civilian_injuries FROM curated.sf_fire_incidents__losses_by_primary_situation')
      ).rows;
      assert.equal(losses.length, bySituation.size);
      for (const r of losses) {
        const want = bySituation.get(r.primary_situation as string);
        assert.ok(want, `unexpected situation ${String(r.primary_situation)}`);
        assert.equal(Number(r.incidents), want.n);
        assert.ok(Math.abs(Number(r.property_loss) - want.loss) < 0.01, `${String(r.primary_situation)}: ${String(r.property_loss)} != ${want.loss}`);
        assert.equal(Number(r.civilian_injuries), want.injuries);
      }

      // Coordinates only where the source had a point: none invented.
      const withPoint = socrata.rows.filter((r) => r.point !== undefined).length;
      const geo = (await queryCatalog(catalog, 'SELECT count(longitude) AS lon, count(latitude) AS lat FROM curated.sf_fire_incidents')).rows[0]!;
      assert.equal(Number(geo.lon), withPoint);
      assert.equal(Number(geo.lat), withPoint);
      assert.ok(withPoint < ROWS, 'the generator leaves some points missing');

      // A second run with no source change fetches nothing and changes nothing.
      const before = await curatedContent(dataDir);
      const again = await run(dataDir, socrata);
      assert.equal(again.fetch.rowsFetched, 0);
      assert.equal(again.transform?.rowsWritten, 0);
      assert.deepEqual(await curatedContent(dataDir), before);
    } finally {
      await socrata.close();
    }
  });

  test('after the source changes, a second run picks up exactly the changes', async () => {
    const socrata = await startSocrataServer(sourceFor(smallPages, ROWS, 11));
    try {
      const dataDir = dirFor('incremental');
      await run(dataDir, socrata);
      const change = socrata.mutate({ update: 40, add: 15 });
      let expected: number | undefined;
      const s = await run(dataDir, socrata, { onProgress: (p) => (expected = p.expectedRows) });
      assert.equal(expected, 55, 'the progress bar counts exactly the rows past the checkpoint');
      assert.equal(s.fetch.rowsFetched, 55, 'only the changed and added rows are fetched');
      assert.equal(s.transform?.rowsUpdated, 40);
      assert.equal(s.transform?.rowsInserted, 15);
      assert.equal(s.transform?.curatedRows, ROWS + 15);

      // Every curated row now equals the source's current version of it.
      const changedIds = new Set([...change.updated, ...change.added]);
      const source = new Map(socrata.rows.filter((r) => changedIds.has(r[':id'] as string)).map((r) => [r.id as string, r]));
      const curated = (
        await queryCatalog(
          defaultCatalogPath(dataDir),
          `SELECT id, strftime(alarm_dttm, '%Y-%m-%dT%H:%M:%S.000') AS alarm_dttm, estimated_property_loss, _source_updated_at FROM curated.sf_fire_incidents WHERE id IN (${[...source.keys()].map((k) => `'${k}'`).join(',')})`,
        )
      ).rows;
      assert.equal(curated.length, 55);
      for (const row of curated) {
        const src = source.get(row.id as string)!;
        assert.equal(new Date(`${String(row._source_updated_at).replace(' ', 'T')}Z`).toISOString(), src[':updated_at']);
        assert.equal(row.alarm_dttm ?? undefined, src.alarm_dttm);
        assert.equal(row.estimated_property_loss === null ? undefined : Number(row.estimated_property_loss), src.estimated_property_loss === undefined ? undefined : Number(src.estimated_property_loss));
      }
    } finally {
      await socrata.close();
    }
  });

  test('faults on both endpoints end with the same curated table as a clean run', async () => {
    const clean = await startSocrataServer(sourceFor(smallPages, ROWS, 21));
    const faulty = await startSocrataServer(sourceFor(smallPages, ROWS, 21));
    const faultyDir = dirFor('faulty');
    const firehose = await startLocalFirehose({ dataDir: faultyDir, datasets: [smallPages] });
    try {
      await run(dirFor('faults-clean'), clean);
      // Request 1 is the pipeline's own count(*) for the progress bar, request 2 the fetcher's
      // (fewer rows than fetch.parallelMinRows: one stream); the pages follow.
      faulty.setFaults([
        { kind: 'status', status: 429, retryAfter: '1', requests: [3] },
        { kind: 'status', status: 500, requests: [4, 5] },
        { kind: 'truncate', requests: [6] },
        { kind: 'status', status: 202, requests: [7] },
        { kind: 'reset', requests: [9] },
      ]);
      firehose.setFaults({ failEveryNthRecord: 3, throttleNextCalls: 2 });
      const s = await run(faultyDir, faulty, { firehose });
      assert.ok(s.fetch.sourceRetries >= 6, `source retries: ${s.fetch.sourceRetries}`);
      assert.ok(s.fetch.firehoseRetriedRecords > 0, 'partially failed batches were retried');
      assert.ok(firehose.counters().recordsFailed > 0 && firehose.counters().throttledCalls === 2);
      assert.equal(s.transform?.status, 'succeeded');
      assert.deepEqual(await curatedContent(faultyDir), await curatedContent(dirFor('faults-clean')));
    } finally {
      await firehose.close();
      await Promise.all([clean.close(), faulty.close()]);
    }
  });

  test('a fetch stopped by the time budget resumes with no gap and no duplicate', async () => {
    const socrata = await startSocrataServer(sourceFor(smallPages, ROWS, 31));
    try {
      const dataDir = dirFor('budget');
      // A 1 ms budget: every invocation does one page and hands back a cursor.
      const first = await run(dataDir, socrata, { invocationBudgetMs: 1, maxInvocations: 2 });
      assert.equal(first.interrupted, true);
      assert.equal(first.fetch.done, false);
      assert.equal(first.fetch.rowsFetched, 800);
      // A new run (like the next scheduled execution) starts from the checkpoint; this one loops on done.
      const second = await run(dataDir, socrata, { invocationBudgetMs: 1 });
      assert.equal(second.fetch.done, true);
      assert.ok(second.fetch.invocations > 1);
      assert.equal(second.fetch.rowsFetched, ROWS - 800);
      const counts = (
        await queryCatalog(defaultCatalogPath(dataDir), 'SELECT count(*) AS n, count(DISTINCT _source_id) AS d FROM raw.sf_fire_incidents')
      ).rows[0]!;
      assert.equal(Number(counts.n), ROWS, 'every source row delivered exactly once to the raw zone');
      assert.equal(Number(counts.d), ROWS);
      assert.equal(second.transform?.curatedRows, ROWS);
    } finally {
      await socrata.close();
    }
  });

  test('keyless rows are quarantined and counted, oversize rows load as their own raw objects, the rest loads', async () => {
    const socrata = await startSocrataServer(sourceFor(smallPages, 500, 41));
    try {
      const dataDir = dirFor('quarantine');
      const bad = socrata.mutate({ addKeyless: 3, addOversize: 2 });
      assert.equal(bad.keyless.length + bad.oversize.length, 5);
      const s = await run(dataDir, socrata);
      assert.equal(s.fetch.rowsQuarantined, 3);
      assert.equal(s.fetch.quarantinedMissingKey, 3);
      assert.equal(s.fetch.largeRowObjects, 2);
      assert.equal(s.fetch.rowsDelivered, 502);
      assert.equal(s.transform?.curatedRows, 502);
      const files = await new LocalObjectStore(path.join(dataDir, 'buckets', 'raw')).list(quarantinePrefix(smallPages));
      assert.ok(files.length >= 1, 'quarantine objects written');
      assert.ok(s.fetch.checkpoint, 'the checkpoint moved past quarantined rows: they are stored, not lost');
    } finally {
      await socrata.close();
    }
  });

  test('rows over a Firehose record reach curated, keys of any text load, keyless and object-key rows are quarantined; the next run exits 0', async () => {
    const socrata = await startSocrataServer(sourceFor(smallPages, E2E_ROWS, 43));
    try {
      const dataDir = dirFor('large-rows');
      const template = Object.fromEntries(Object.entries(socrata.rows[0]!).filter(([k]) => !k.startsWith(':')));
      const big = (id: string, fill: string) => ({ ...template, id, action_taken_other: fill.repeat(1_500_000) });
      const odd = ['pk-new\nline', 'pk-nul\u0000end', `pk-'quote"`, 'pk-emoji-\u{1F680}'];
      socrata.mutate({
        addRows: [big('large-1', 'a'), big('large-2', 'b'), ...odd.map((id) => ({ ...template, id })), { ...template, id: { k: 1 } }],
        addKeyless: 7,
      });
      const keyed = new Set(socrata.rows.map((r) => r.id).filter((id): id is string => typeof id === 'string' && id !== ''));
      assert.equal(keyed.size, E2E_ROWS + 2 + odd.length);

      const first = await run(dataDir, socrata);
      // A first run of 20,000+ rows is a parallel backfill (fetch.streams 4 by default): the large
      // rows, odd keys and quarantine go through the ranges and their direct raw objects.
      assert.equal(first.fetch.streams, 4);
      assert.ok(first.fetch.directObjects >= 4);
      assert.equal(first.fetch.largeRowObjects, 2);
      assert.deepEqual([first.fetch.rowsQuarantined, first.fetch.quarantinedMissingKey, first.fetch.quarantinedInvalidKey], [8, 7, 1]);
      assert.deepEqual(first.transform?.failedErrorTests, []);
      assert.equal(first.transform?.repairNeeded, false);
      const catalog = defaultCatalogPath(dataDir);
      const curatedIds = (await queryCatalog(catalog, 'SELECT id FROM curated.sf_fire_incidents')).rows.map((r) => r.id as string);
      assert.equal(curatedIds.length, keyed.size);
      assert.deepEqual(new Set(curatedIds), keyed, 'every keyed row, the large ones and the odd keys exactly');
      const large = (await queryCatalog(catalog, "SELECT id, length(action_taken_other) AS n FROM curated.sf_fire_incidents WHERE id LIKE 'large-%' ORDER BY id")).rows;
      assert.deepEqual(large.map((r) => [r.id, Number(r.n)]), [['large-1', 1_500_000], ['large-2', 1_500_000]]);

      // The next run: key scan, reconciliation, nothing missing, exit 0 (the CLI exits 3 on a failed error test).
      const second = await run(dataDir, socrata);
      assert.equal(second.transform?.status, 'succeeded');
      assert.deepEqual(second.transform?.failedErrorTests, []);
      assert.equal(second.transform?.keysetApplied, true);
      assert.deepEqual([second.transform?.missingKeys, second.transform?.repairNeeded], [0, false]);
      assert.equal(second.transform?.curatedRows, keyed.size);
    } finally {
      await socrata.close();
    }
  });

  test('columns the source has but the definition lacks are reported as schema drift, not lost', async () => {
    const socrata = await startSocrataServer(sourceFor(smallPages, 300, 51));
    try {
      const withoutBox: DatasetConfig = { ...smallPages, columns: smallPages.columns.filter((c) => c.name !== 'box') };
      const dataDir = dirFor('drift');
      const s = await run(dataDir, socrata, { dataset: withoutBox });
      assert.deepEqual(s.schemaDrift.undeclared, ['box']);
      const catalog = defaultCatalogPath(dataDir);
      const raw = (await queryCatalog(catalog, 'SELECT count(box) AS n FROM raw.sf_fire_incidents')).rows[0]!;
      assert.equal(Number(raw.n), socrata.rows.filter((r) => r.box !== undefined).length, 'kept in raw');
      const cols = (await queryCatalog(catalog, "SELECT column_name FROM information_schema.columns WHERE table_schema = 'curated' AND table_name = 'sf_fire_incidents'")).rows.map((r) => r.column_name);
      assert.ok(!cols.includes('box') && cols.includes('battalion'));
    } finally {
      await socrata.close();
    }
  });

  test('a second dataset defined only by a JSON file runs end to end', async () => {
    const file = path.join(root, 'city-permits.json');
    await writeFile(
      file,
      JSON.stringify(
        permitsInput({
          fetch: { pageSize: 300 },
          dataTests: [{ kind: 'accepted_values', column: 'approved', values: ['true', 'false'], severity: 'warn' }],
        }),
      ),
    );
    const permits = loadDatasetFile(file);
    const s = await runLocalPipeline({ dataset: permits, dataDir: dirFor('permits'), rows: 1_000 });
    assert.equal(s.fetch.rowsFetched, 1_000);
    assert.equal(s.transform?.status, 'succeeded');
    assert.equal(s.transform?.curatedRows, 1_000);
    const { rows } = await queryCatalog(
      defaultCatalogPath(dirFor('permits')),
      "SELECT typeof(approved) AS b, typeof(fee) AS f, typeof(units) AS u, typeof(issued_date) AS t, count(location_longitude) AS lon FROM curated.city_permits GROUP BY ALL",
    );
    assert.deepEqual([rows[0]!.b, rows[0]!.f, rows[0]!.u, rows[0]!.t], ['BOOLEAN', 'DOUBLE', 'BIGINT', 'TIMESTAMP']);
    assert.ok(Number(rows.reduce((a, r) => a + Number(r.lon), 0)) > 0);
  });

  test('a bad --source is one clear error', () => {
    return assert.rejects(
      runLocalPipeline({ dataset: smallPages, dataDir: dirFor('bad-source'), source: 'not a url' }),
      /--source "not a url" is not a URL/,
    );
  });
});

