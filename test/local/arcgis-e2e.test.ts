/**
 * `npm run local` of ArcGIS FeatureServer layers end to end (issue #21): the generated layer served
 * by the local layer server at the declared URL's path, the deployed adapter, the real fetcher
 * handler, the key scan, the crawl and the DuckDB transform. Expected values come from the
 * features the layer holds (epoch-ms dates, numbers as numbers, GeoJSON points), edited between
 * runs the way a publisher edits a layer: through the server's edit operations, which stamp the
 * edit date as editor tracking does.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { queryCatalog, defaultCatalogPath } from '../../containers/transform/src/catalog';
import { parseDataset, tableName, type DatasetConfig } from '../../runtime/dataset-config';
import { ConfigError } from '../../runtime/pipeline-error';
import type { LayerFeature } from '../../local/arcgis-server';
import { editLocalArcgisLayer, layerShape, localArcgisSource, readLocalArcgisLayer } from '../../local/arcgis-local-source';
import { runLocalPipeline, type LocalRunSummary } from '../../local/pipeline';
import { suiteTempDir } from '../support/suite-fixtures';
import { REPO, runCli } from './local-run-fixture';
import { assertCuratedExact, sourceRowsByKey } from '../support/curated-exact';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

let root: string;
suiteTempDir('arcgis-e2e-', (dir) => (root = dir));

const LAYER = 'https://services.example.com/arcgis/rest/services/Hydrants/FeatureServer/0';

/** A layer as `dataset add` defines one: lower-cased field names, dates as fixed timestamps, the point geometry. */
const hydrants = (tracking: boolean, url = LAYER): DatasetConfig =>
  parseDataset(
    {
      name: tracking ? 'hydrant-inspections' : url === LAYER ? 'hydrant-snapshot' : 'hydrant-snapshot-hosted',
      description: 'Fire hydrant inspections, one feature per hydrant',
      source: { type: 'arcgis', url, ...(tracking ? { editDateField: 'EditDate' } : {}) },
      primaryKey: 'objectid',
      eventTimeColumn: 'inspected_at',
      columns: [
        { name: 'objectid', type: 'integer' },
        { name: 'hydrant_id', type: 'text' },
        { name: 'status', type: 'text' },
        { name: 'flow_gpm', type: 'number' },
        { name: 'pressure_psi', type: 'integer' },
        { name: 'inspected_at', type: 'fixed_timestamp' },
        ...(tracking ? [{ name: 'editdate', type: 'fixed_timestamp' }] : []),
        { name: 'geometry', type: 'point' },
      ],
    },
    'test',
  );

/** The served field of a column: upper-cased by the local layer, the edit date field as the definition spells it. */
const field = (column: string): string => (column === 'editdate' ? 'EditDate' : column.toUpperCase());

/** The layer's features as records of the dataset's columns, in the values the layer holds (dates as instants). */
function layerRecords(dataset: DatasetConfig, features: Map<number, LayerFeature>): Record<string, unknown>[] {
  return [...features].map(([oid, f]) =>
    Object.fromEntries(
      dataset.columns.map((c) => {
        if (c.name === 'objectid') return [c.name, oid];
        if (c.name === 'geometry') return [c.name, f.geometry];
        const v = f.attributes[field(c.name)];
        return [c.name, v !== null && v !== undefined && c.type.endsWith('timestamp') ? new Date(v).toISOString() : v];
      }),
    ),
  );
}

/** Curated is exact against the kept layer, the point's derived longitude and latitude included. */
async function assertExact(dataDir: string, dataset: DatasetConfig): Promise<void> {
  const features = await readLocalArcgisLayer(dataDir, dataset);
  await assertCuratedExact(dataDir, dataset, sourceRowsByKey(dataset, layerRecords(dataset, features)));
  const { rows } = await queryCatalog(defaultCatalogPath(dataDir), `SELECT objectid, geometry_longitude AS x, geometry_latitude AS y FROM curated.${tableName(dataset)}`);
  for (const r of rows) {
    const g = features.get(Number(r.objectid))!.geometry as { coordinates: number[] } | null;
    assert.deepEqual([r.x, r.y], g ? g.coordinates : [null, null], `${dataset.name} ${String(r.objectid)} coordinates`);
  }
}

/** Edits under the 10% mass-delete guard: 100 updated (attributes and location), 150 deleted, 50 new. */
async function publisherEdits(dataDir: string, dataset: DatasetConfig): Promise<void> {
  await editLocalArcgisLayer(dataDir, dataset, (layer) => {
    const oids = [...layer.features.keys()].sort((a, b) => a - b);
    for (const oid of oids.slice(0, 100)) {
      layer.update(oid, { STATUS: 'out of service', FLOW_GPM: 1234.5, PRESSURE_PSI: null });
      layer.features.get(oid)!.geometry = { type: 'Point', coordinates: [-122.5, 37.75] };
    }
    // The last feature too: its object id is never given to a new feature.
    for (const oid of [...oids.slice(1_000, 1_149), oids.at(-1)!]) layer.delete(oid);
  });
  // Inserted in a later session of the kept layer: the deleted last object id stays used.
  await editLocalArcgisLayer(dataDir, dataset, (layer) => {
    for (let i = 0; i < 50; i++) {
      layer.insert(
        { HYDRANT_ID: `new-${i}`, STATUS: 'in service', FLOW_GPM: 900 + i / 4, PRESSURE_PSI: 60, INSPECTED_AT: Date.parse('2026-03-01T08:00:00Z') + i * 1_000 },
        i % 10 ? { type: 'Point', coordinates: [-122.45 + i / 1000, 37.76] } : null,
      );
    }
  });
}

describe('npm run local of an ArcGIS layer with editor tracking (incremental by edit date)', () => {
  test('first load exact; nothing new fetches nothing; publisher edits and a larger --rows are read alone and applied exactly', async () => {
    const dataset = hydrants(true);
    const dataDir = path.join(root, 'incremental');
    let s: LocalRunSummary = await runLocalPipeline({ dataset, dataDir, rows: 3_000 });
    assert.equal(s.fetch.rowsDelivered, 3_000);
    assert.deepEqual(s.sourceIdentity, { type: 'arcgis', url: LAYER });
    assert.deepEqual(s.schemaDrift.undeclared, []);
    assert.equal(s.transform?.rowsInserted, 3_000);
    await assertExact(dataDir, dataset);

    s = await runLocalPipeline({ dataset, dataDir, rows: 3_000 });
    assert.equal(s.fetch.rowsFetched, 0);
    assert.equal(s.transform?.rowsInserted ?? 0, 0);

    await publisherEdits(dataDir, dataset);
    s = await runLocalPipeline({ dataset, dataDir, rows: 3_000 });
    assert.equal(s.fetch.rowsFetched, 150, 'only the edited and new features are read');
    assert.equal(s.keys?.keys, 2_900);
    assert.equal(s.transform?.rowsUpdated, 100);
    assert.equal(s.transform?.rowsDeleted, 150);
    assert.equal(s.transform?.rowsInserted, 50);
    await assertExact(dataDir, dataset);

    // The generator's next records, as new features after the edits.
    s = await runLocalPipeline({ dataset, dataDir, rows: 3_200 });
    assert.equal(s.fetch.rowsFetched, 200);
    assert.equal(s.transform?.rowsInserted, 200);
    assert.equal(s.transform?.rowsDeleted, 0);
    await assertExact(dataDir, dataset);
  });
});

/** ArcGIS Online's hosted layers publish their last edit date without editor tracking; the local layer does for *.arcgis.com URLs. */
const HOSTED = 'https://services3.arcgis.com/AbC123/arcgis/rest/services/Hydrants/FeatureServer/0';

/** The whole-layer read that hashes a layer without a last edit date (the key scan asks for the object id only). */
const hashRead = (q: URLSearchParams): boolean => q.get('where') === '1=1' && q.get('outFields') === '*';

for (const hosted of [false, true]) describe(`npm run local of an ArcGIS layer without editor tracking (snapshot${hosted ? ', hosted: versioned by its last edit date' : ', versioned by a hash'})`, () => {
  test('first load exact; unchanged layer reads nothing; a changed layer is read whole, keys gone from it deleted', async () => {
    const dataset = hydrants(false, hosted ? HOSTED : LAYER);
    const dataDir = path.join(root, hosted ? 'snapshot-hosted' : 'snapshot');
    const start = localArcgisSource();
    let served = await start({ dataset, dataDir, rows: 2_500, seed: 1 });
    let s: LocalRunSummary;
    try {
      s = await runLocalPipeline({ dataset, dataDir, endpoint: served });
      assert.equal(s.fetch.rowsDelivered, 2_500);
      await assertExact(dataDir, dataset);
      const before = served.layer.queries.length;
      s = await runLocalPipeline({ dataset, dataDir, endpoint: served });
      assert.equal(s.fetch.rowsFetched, 0);
      assert.equal(s.transform?.rowsInserted ?? 0, 0);
      // Without a last edit date the version is a hash of a whole read (which delivers nothing); with one, nothing is read.
      assert.equal(served.layer.queries.slice(before).some(hashRead), !hosted, JSON.stringify(served.layer.queries.slice(before).map((q) => Object.fromEntries(q))));
    } finally {
      await served.close();
    }

    await publisherEdits(dataDir, dataset);
    served = await start({ dataset, dataDir, rows: 2_500, seed: 1 });
    try {
      s = await runLocalPipeline({ dataset, dataDir, endpoint: served });
    } finally {
      await served.close();
    }
    assert.equal(s.fetch.rowsFetched, 2_400, 'a changed snapshot is read whole');
    assert.equal(s.keys?.keys, 2_400);
    assert.equal(s.transform?.rowsUpdated, 100);
    assert.equal(s.transform?.rowsDeleted, 150);
    assert.equal(s.transform?.rowsInserted, 50);
    await assertExact(dataDir, dataset);
  });
});

describe('npm run local -- --dataset-file examples/datasets/workforce-assignments.json', () => {
  test('the CLI serves the example layer: the first run loads it, the second fetches nothing', async () => {
    const args = ['--dataset-file', path.join(REPO, 'examples', 'datasets', 'workforce-assignments.json'), '--data-dir', path.join(root, 'cli'), '--rows', '2500', '--json'];
    const summary = async (): Promise<{ status: string; fetch: { rowsFetched: number }; transform: { rowsInserted: number; curatedRows: number } }> => {
      const r = await runCli(args);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Awaited<ReturnType<typeof summary>>;
    };
    let o = await summary();
    assert.equal(o.status, 'succeeded');
    assert.equal(o.fetch.rowsFetched, 2_500);
    assert.equal(o.transform.curatedRows, 2_500);
    o = await summary();
    assert.equal(o.fetch.rowsFetched, 0);
    assert.equal(o.transform.rowsInserted, 0);
  });
});

describe('a definition no ArcGIS layer can hold', () => {
  test('is refused before anything is served, naming the columns', () => {
    const dataset = parseDataset(
      {
        name: 'bad-layer',
        description: 'columns a layer has no field type for',
        source: { type: 'arcgis', url: LAYER, editDateField: 'EditDate' },
        primaryKey: 'objectid',
        eventTimeColumn: 'seen',
        columns: [
          { name: 'objectid', type: 'integer' },
          { name: 'seen', type: 'fixed_timestamp' },
          { name: 'active', type: 'checkbox' },
          { name: 'extra', type: 'json' },
          { name: 'editdate', type: 'text' },
        ],
      },
      'test',
    );
    assert.throws(() => layerShape(dataset), (err: Error) => err instanceof ConfigError && /no layer field holds active \(checkbox\), extra \(json\), editdate \(text; source.editDateField must be a timestamp column\)/.test(err.message));
  });
});

describe('a new local layer in a directory that read an old one', () => {
  test('edits it after every edit of the old one, so the checkpoint cannot hide its features', async () => {
    const dataset = hydrants(true);
    const dataDir = path.join(root, 'reseeded');
    const start = localArcgisSource();
    const editDates = async (seed: number): Promise<number[]> => {
      const served = await start({ dataset, dataDir, rows: 3_000, seed });
      await served.close();
      return [...served.layer.features.values()].map((f) => f.attributes.EditDate as number);
    };
    const old = await editDates(1);
    // Another seed: a new layer, generated within milliseconds of the old one.
    const fresh = await editDates(2);
    assert.ok(Math.min(...fresh) > Math.max(...old), `${Math.min(...fresh)} > ${Math.max(...old)}`);
  });
});
