/**
 * The ArcGIS layer adapter against the local ArcGIS server over real HTTP: exact through inserts,
 * updates and deletions (incremental and snapshot layers), errors answered in HTTP 200, and the
 * hostile-layer guards (silent caps, ignored order, ignored where, slow bodies).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ArcgisLayerServer, type ArcgisLayerOptions, type LayerFeature } from '../../local/arcgis-server';
import { openArcgisLayer, type ArcgisLayerSourceOptions } from '../../lambdas/fetcher/sources/arcgis/arcgis-source';
import type { SourceAdapter, SourceRow } from '../../lambdas/fetcher/sources/source-adapter';

const PATH = '/arcgis/rest/services/Hydrants/FeatureServer/0';
const URL_ = `https://services.example.com${PATH}`;
const T0 = Date.parse('2024-03-01T10:00:00Z');

function layerOptions(edit: boolean, count: number, clock: { t: number }): ArcgisLayerOptions {
  const features: LayerFeature[] = [];
  for (let i = 1; i <= count; i++) {
    features.push({
      attributes: { OBJECTID: i, Name: `hydrant ${i}`, Flow: i * 1.5, Installed: T0 - i * 86_400_000, ...(edit ? { EditDate: T0 + i * 250 } : {}) },
      geometry: { type: 'Point', coordinates: [-122.4 + i / 1000, 37.7] },
    });
  }
  return {
    path: PATH,
    name: 'Hydrants',
    fields: [
      { name: 'OBJECTID', type: 'esriFieldTypeOID' },
      { name: 'Name', type: 'esriFieldTypeString' },
      { name: 'Flow', type: 'esriFieldTypeDouble' },
      { name: 'Installed', type: 'esriFieldTypeDate' },
      ...(edit ? [{ name: 'EditDate', type: 'esriFieldTypeDate' }] : []),
    ],
    objectIdField: 'OBJECTID',
    ...(edit ? { editDateField: 'EditDate' } : {}),
    maxRecordCount: 5,
    geometryType: 'esriGeometryPoint',
    features,
    now: () => clock.t,
  };
}

const retry = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1, sleep: async () => {}, random: () => 0 };

function source(origin: string, edit: boolean, extra: Partial<ArcgisLayerSourceOptions> = {}): SourceAdapter<unknown> {
  return openArcgisLayer({
    datasetName: 'hydrants',
    url: URL_,
    endpoint: origin,
    primaryKey: 'objectid',
    ...(edit ? { editDateField: 'EditDate' } : {}),
    timeoutMs: 2_000,
    retry,
    ...extra,
  }) as SourceAdapter<unknown>;
}

/** What a run leaves curated: rows upserted by key from the checkpoint on, then keys gone from the layer deleted. */
async function run(src: SourceAdapter<unknown>, curated: Map<string, SourceRow>, checkpoint: { position: unknown }): Promise<number> {
  let fetched = 0;
  for (;;) {
    let last: unknown;
    const page = await src.streamPage({
      after: src.startAfter(checkpoint.position ?? undefined, 0),
      limit: 7,
      onRow: (row, position) => {
        curated.set(String(row.objectid), row);
        last = position;
      },
    });
    fetched += page.rows;
    if (!page.rows) break;
    checkpoint.position = last;
  }
  const keys = new Set<string>();
  let after: string | null = null;
  for (;;) {
    const page = await src.readKeys({ after, limit: 4 });
    if (!page.rows.length) break;
    for (const r of page.rows) keys.add(String(r.objectid));
    after = page.next;
  }
  for (const k of [...curated.keys()]) if (!keys.has(k)) curated.delete(k);
  return fetched;
}

/** The layer's features as the adapter should deliver them (lower-case names, text numbers, ISO dates). */
function expected(server: ArcgisLayerServer): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const [oid, f] of server.features) {
    const a = f.attributes;
    out.set(String(oid), {
      objectid: String(oid),
      name: a.Name,
      flow: String(a.Flow),
      installed: new Date(a.Installed as number).toISOString(),
      ...(a.EditDate !== undefined ? { editdate: new Date(a.EditDate as number).toISOString() } : {}),
      geometry: f.geometry,
    });
  }
  return out;
}

const content = (curated: Map<string, SourceRow>) =>
  new Map([...curated].map(([k, row]) => [k, Object.fromEntries(Object.entries(row).filter(([name]) => !name.startsWith(':')))]));

describe('ArcGIS layer with editor tracking (incremental)', () => {
  const clock = { t: T0 + 60_000 };
  const server = new ArcgisLayerServer(layerOptions(true, 12, clock));
  let origin: string;
  before(async () => (origin = await server.start()));
  after(() => server.close());

  it('is exact through inserts, updates and deletions, reading only what changed', async () => {
    const curated = new Map<string, SourceRow>();
    const checkpoint = { position: undefined as unknown };
    assert.equal(await run(source(origin, true), curated, checkpoint), 12);
    assert.deepEqual(content(curated), expected(server));
    assert.equal(curated.get('3')![':updated_at'], new Date(T0 + 750).toISOString());

    server.insert({ Name: 'new a', Flow: 1, Installed: T0 }, { type: 'Point', coordinates: [0, 0] });
    clock.t += 10;
    server.insert({ Name: 'new b', Flow: 2, Installed: T0 }, null);
    clock.t += 10;
    server.update(2, { Name: 'renamed' });
    clock.t += 10;
    server.update(9, { Flow: 99 });
    server.delete(4);
    server.delete(13);
    assert.equal(await run(source(origin, true), curated, checkpoint), 3, 'only the inserted and updated rows still there are read');
    assert.deepEqual(content(curated), expected(server));
    assert.equal(await run(source(origin, true), curated, checkpoint), 0, 'nothing new: nothing read');
  });

  it('reads a second of edits larger than a page exactly (the timestamp literal has whole seconds)', async () => {
    const curated = new Map<string, SourceRow>();
    const checkpoint = { position: undefined as unknown };
    await run(source(origin, true), curated, checkpoint);
    const second = Math.ceil(clock.t / 1000) * 1000 + 5_000;
    // Eight rows in one second (two in one millisecond), then more after: more than a page of 5 in the window.
    const oids = [...server.features.keys()].slice(0, 8);
    oids.forEach((oid, i) => server.update(oid, { Name: `bulk ${i}` }, second + Math.floor(i / 2) * 100 + (i === 1 ? -100 : 0)));
    clock.t = second + 2_000;
    server.update(oids[8] ?? 12, { Name: 'later' });
    assert.equal(await run(source(origin, true), curated, checkpoint), 9);
    assert.deepEqual(content(curated), expected(server));
  });
});

describe('ArcGIS layer without editor tracking (snapshot)', () => {
  const clock = { t: T0 };
  const server = new ArcgisLayerServer(layerOptions(false, 11, clock));
  let origin: string;
  before(async () => (origin = await server.start()));
  after(() => server.close());

  it('reads the whole layer when its content changed and nothing when it did not; deletions by key set', async () => {
    const curated = new Map<string, SourceRow>();
    const checkpoint = { position: undefined as unknown };
    assert.equal(await run(source(origin, false), curated, checkpoint), 11);
    assert.deepEqual(content(curated), expected(server));
    assert.equal(await run(source(origin, false), curated, checkpoint), 0, 'same content hash: nothing read');

    server.update(5, { Name: 'changed' });
    server.delete(7);
    server.insert({ Name: 'added', Flow: 3, Installed: T0 }, { type: 'Point', coordinates: [1, 2] });
    assert.equal(await run(source(origin, false), curated, checkpoint), 11, 'a changed layer is read whole');
    assert.deepEqual(content(curated), expected(server));
    assert.equal(curated.has('7'), false);
  });
});

describe('ArcGIS errors and hostile layers', () => {
  const clock = { t: T0 + 60_000 };
  const server = new ArcgisLayerServer(layerOptions(true, 12, clock));
  let origin: string;
  before(async () => (origin = await server.start()));
  after(() => server.close());
  const readAll = async (src: SourceAdapter<unknown>) => run(src, new Map(), { position: undefined });

  it('retries an error 500 answered in HTTP 200 and names it', async () => {
    server.faults = { error: { code: 500, times: 2 } };
    const reasons: string[] = [];
    assert.equal(await readAll(source(origin, true, { onRetry: (i) => reasons.push(i.reason) })), 12);
    assert.equal(reasons.length, 2);
    assert.match(reasons[0]!, /ArcGIS error 500 in an HTTP 200 answer/);
  });

  it('fails at once on 498 / 499 (the layer is not public) and 400, naming the code', async () => {
    for (const code of [498, 499, 400]) {
      server.faults = { error: { code, times: 1, message: 'Invalid token.' } };
      const reasons: string[] = [];
      await assert.rejects(readAll(source(origin, true, { onRetry: (i) => reasons.push(i.reason) })), new RegExp(`ArcGIS error ${code} in an HTTP 200 answer: Invalid token`));
      assert.deepEqual(reasons, [], `code ${code} is not retried`);
    }
    server.faults = { error: { code: 498, times: 1 } };
    await assert.rejects(readAll(source(origin, true)), /not public/);
  });

  it('fails on a page capped silently below what was asked', async () => {
    server.faults = { silentCap: 3 };
    await assert.rejects(readAll(source(origin, true)), /caps its pages silently/);
  });

  it('fails on a page in another order, and on one that ignored the where clause', async () => {
    server.faults = { ignoreOrder: true };
    await assert.rejects(readAll(source(origin, false)), /ignored orderByFields/);
    server.faults = { ignoreWhere: true };
    await assert.rejects(readAll(source(origin, false)), /ignored the where clause/);
  });

  it('cuts a body that trickles at the deadline and asks again', async () => {
    server.faults = { slowBody: { ms: 3_000, times: 1 } };
    const reasons: string[] = [];
    assert.equal(await readAll(source(origin, true, { timeoutMs: 300, onRetry: (i) => reasons.push(i.reason) })), 12);
    assert.match(reasons[0]!, /no complete answer within the 0.3 s deadline/);
  });
});
