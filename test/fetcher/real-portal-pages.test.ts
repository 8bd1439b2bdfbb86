/**
 * Real portal answers, saved in public repositories (test/fixtures/README.md), served byte for
 * byte from a local HTTP server and read through the real ArcGIS and CKAN adapters. The local
 * portal servers (local/arcgis-server.ts, local/ckan-server.ts) answer in shapes we wrote; these
 * answers are what ArcGIS Online and CKAN portals actually sent, so a field, flag or error shape
 * the adapters misread shows here. Whatever a test serves that is not in a saved answer (a layer
 * definition, a resource_show answer, the page after a saved page) is named where it is built.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { openArcgisLayer } from '../../lambdas/fetcher/sources/arcgis/arcgis-source';
import { ArcgisSourceError } from '../../lambdas/fetcher/sources/arcgis/arcgis-client';
import { CkanDatastoreSource, type CkanPosition } from '../../lambdas/fetcher/sources/ckan/ckan-source';
import { CkanSourceError } from '../../lambdas/fetcher/sources/ckan/ckan-api';
import type { SourceAdapter, SourceRow } from '../../lambdas/fetcher/sources/source-adapter';
import { recordingRetry } from './harness';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures');
const text = (file: string): string => readFileSync(path.join(FIXTURES, file), 'utf8');
const NOW = '2025-07-01T00:00:00.000Z';

interface Answer {
  status?: number;
  body: string;
}

/** A portal on loopback: every GET is recorded and answered by `answer` (a thrown error is a 500 naming it). */
class SavedAnswerServer {
  readonly requests: { path: string; params: URLSearchParams }[] = [];
  answer: (path: string, params: URLSearchParams) => Answer = () => ({ status: 404, body: 'no answer set' });
  private readonly server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    this.requests.push({ path: url.pathname, params: url.searchParams });
    let out: Answer;
    try {
      out = this.answer(url.pathname, url.searchParams);
    } catch (err) {
      out = { status: 500, body: `test server: ${(err as Error).message}` };
    }
    res.writeHead(out.status ?? 200, { 'content-type': 'application/json; charset=utf-8' });
    res.end(out.body);
  });
  origin = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.origin = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  queries(): Record<string, string>[] {
    return this.requests.filter((r) => r.path.endsWith('/query')).map((r) => Object.fromEntries(r.params));
  }
}

/** Every row (and its position) a fresh source delivers from the start, page by page. */
async function readAll(src: SourceAdapter<unknown>): Promise<{ rows: SourceRow[]; positions: unknown[] }> {
  const rows: SourceRow[] = [];
  const positions: unknown[] = [];
  let at: unknown = null;
  for (;;) {
    const page = await src.streamPage({ after: at, limit: 100, onRow: (row, p) => void (rows.push(row), positions.push(p), (at = p)) });
    if (!page.rows) return { rows, positions };
  }
}

// ---------------------------------------------------------------------------------------------
// ArcGIS
// ---------------------------------------------------------------------------------------------

/** An answer is served only to the request it answers; anything else is refused as ArcGIS refuses it. */
const unexpected = (params: URLSearchParams): Answer => ({
  body: JSON.stringify({ error: { code: 400, message: `test server: no saved answer for ${params.toString()}`, details: [] } }),
});

/**
 * The layer definition (`<layer>?f=json`) the adapter reads before querying. No definition was
 * saved with these pages, so it is the saved page's own fields, object id field and geometry type,
 * with ArcGIS Online's default `maxRecordCount` and the query formats the page's layer answers.
 */
function layerDefinition(name: string, fields: unknown[], formats: string): string {
  return JSON.stringify({
    currentVersion: 10.7,
    id: 0,
    name,
    type: 'Feature Layer',
    geometryType: 'esriGeometryPoint',
    objectIdField: 'OBJECTID',
    fields,
    maxRecordCount: 2000,
    supportedQueryFormats: formats,
    advancedQueryCapabilities: { supportsPagination: true, supportsOrderBy: true },
  });
}

const SAINT_PAUL_PATH = '/zzzzz/arcgis/rest/services/311/FeatureServer/0';
const SAINT_PAUL_URL = `https://services.arcgis.com${SAINT_PAUL_PATH}`;
const saintPaulPage = text('arcgis/saint-paul-311-query-page.json');
const saintPaul = JSON.parse(saintPaulPage) as { fields: unknown[]; features: { geometry: { x: number; y: number } }[] };

describe('a real ArcGIS f=json query page (Saint Paul 311, exceededTransferLimit: true)', () => {
  const server = new SavedAnswerServer();
  before(() => server.start());
  after(() => server.close());
  beforeEach(() => {
    server.requests.length = 0;
    // An Enterprise-style layer that answers f=json only: the adapter reads Esri JSON geometries.
    server.answer = (p, params) => {
      if (p === SAINT_PAUL_PATH) return { body: layerDefinition('311', saintPaul.fields, 'JSON') };
      if (p !== `${SAINT_PAUL_PATH}/query` || params.get('f') !== 'json' || params.get('orderByFields') !== 'OBJECTID') return unexpected(params);
      if (params.get('where') === '1=1' && params.get('resultOffset') === '0' && params.get('outFields') === '*') return { body: saintPaulPage };
      // The saved page's successor was not saved: this layer ends after it (an empty page, no flag).
      if (params.get('where') === 'OBJECTID > 2' && params.get('resultOffset') === '0') return { body: '{"features":[]}' };
      return unexpected(params);
    };
  });

  const source = (extra: { onRetry?: (i: { reason: string }) => void } = {}) =>
    openArcgisLayer({
      datasetName: 'saint_paul_311',
      url: SAINT_PAUL_URL,
      endpoint: server.origin,
      primaryKey: 'objectid',
      timeoutMs: 2_000,
      retry: recordingRetry(3),
      now: () => new Date(NOW),
      ...extra,
    }) as SourceAdapter<unknown>;

  test('rows: names lower-cased, numbers as text, dates as ISO instants, the point as GeoJSON', async () => {
    const { rows, positions } = await readAll(source());
    const [g1, g2] = saintPaul.features.map((f) => f.geometry);
    assert.deepEqual(rows, [
      {
        objectid: '1',
        service_number: '4041371',
        request_date: '2015-01-02T00:00:00.000Z',
        regex: '514 THOMAS AVE ',
        ward: '1',
        district_council: '7',
        status: 'Resolved',
        request_type: 'Complaint',
        request_description: 'Snow Walk',
        see_click_fix_site: 'No',
        latitue: '44.95922482',
        longitute: '-93.12176762',
        map_location: '(44.95922482,-93.12176762)',
        count_: '1',
        propx: '567713.4009',
        propy: '161405.7836',
        geometry: { type: 'Point', coordinates: [g1!.x, g1!.y] },
        ':updated_at': NOW,
        ':id': '1',
      },
      {
        objectid: '2',
        service_number: '4041373',
        request_date: '2015-01-02T00:00:00.000Z',
        regex: '468 THOMAS AVE ',
        ward: '1',
        district_council: '7',
        status: 'Resolved',
        request_type: 'Complaint',
        request_description: 'Snow Walk',
        see_click_fix_site: 'No',
        latitue: '44.95921912',
        longitute: '-93.11997635',
        map_location: '(44.95921912,-93.11997635)',
        count_: '1',
        propx: '568177.1259',
        propy: '161405.2088',
        geometry: { type: 'Point', coordinates: [g2!.x, g2!.y] },
        ':updated_at': NOW,
        ':id': '2',
      },
    ]);
    // x before y: GeoJSON is [longitude, latitude].
    assert.deepEqual((rows[0]!.geometry as { coordinates: number[] }).coordinates, [-93.121767624634742, 44.959224815911639]);
    // Snapshot positions (editor tracking is off): one version, the object ids in order.
    const version = (positions[0] as { version: string }).version;
    assert.match(version, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(positions, [
      { version, oid: 1 },
      { version, oid: 2 },
    ]);
  });

  test('exceededTransferLimit makes it ask for the page after the last object id, not probe past a short page', async () => {
    await readAll(source());
    const asked = server.queries().map((q) => ({ where: q.where, resultOffset: q.resultOffset, resultRecordCount: q.resultRecordCount, outFields: q.outFields, returnGeometry: q.returnGeometry, outSR: q.outSR }));
    const walk = (count: number, delivered: number) => [
      { where: '1=1', resultOffset: '0', resultRecordCount: String(count), outFields: '*', returnGeometry: 'true', outSR: '4326' },
      { where: 'OBJECTID > 2', resultOffset: '0', resultRecordCount: String(count - delivered), outFields: '*', returnGeometry: 'true', outSR: '4326' },
    ];
    // Once to hash the layer's content (its version: no edit date is published; up to
    // maxRecordCount a page), once to read it (up to the 100 asked), and the next call from the
    // last position finds nothing after it.
    assert.deepEqual(asked, [...walk(2000, 0), ...walk(100, 2), walk(100, 0)[1]]);
  });

  const errors = JSON.parse(text('arcgis/arcgis-online-error-bodies.json')) as Record<string, string>;

  /** The query answers `first` (a saved error body) `times` times, then the saved page. */
  function failQueries(first: string, times: number): void {
    const normal = server.answer;
    let left = times;
    server.answer = (p, params) => (p.endsWith('/query') && left-- > 0 ? { body: first } : normal(p, params));
  }

  for (const [name, code] of [
    ['an-error-occurred-503', 503],
    ['timed-out-504', 504],
  ] as const) {
    test(`ArcGIS Online's ${code} body in an HTTP 200 answer is retried, then the read goes on`, async () => {
      failQueries(errors[name]!, 2);
      const reasons: string[] = [];
      const { rows } = await readAll(source({ onRetry: (i) => reasons.push(i.reason) }));
      assert.equal(rows.length, 2);
      assert.equal(reasons.length, 2);
      const message = (JSON.parse(errors[name]!) as { error: { message: string } }).error.message;
      assert.equal(reasons[0], `ArcGIS error ${code} in an HTTP 200 answer: ${message} (the server failed)`);
    });
  }

  for (const [name, code, shown] of [
    ['token-required-499', 499, /ArcGIS error 499 in an HTTP 200 answer: Token Required; Token Required \(a token is required: the layer is not public\)/],
    ['invalid-url-400', 400, /ArcGIS error 400 in an HTTP 200 answer: Invalid URL; Invalid URL \(the layer refused the request/],
    [
      'invalid-query-parameters-400-pjson',
      400,
      /ArcGIS error 400 in an HTTP 200 answer: Cannot perform query\. Invalid query parameters\.; Unable to perform query\. Please check your parameters\./,
    ],
  ] as const) {
    test(`ArcGIS Online's ${name} body fails the read at once, naming code ${code} and its message`, async () => {
      failQueries(errors[name]!, 1);
      const reasons: string[] = [];
      const delivered: SourceRow[] = [];
      await assert.rejects(
        source({ onRetry: (i) => reasons.push(i.reason) }).streamPage({ after: null, limit: 100, onRow: (r) => void delivered.push(r) }),
        (err: unknown) => err instanceof ArcgisSourceError && err.code === code && shown.test(err.message) && err.message.includes(SAINT_PAUL_URL),
      );
      assert.deepEqual(reasons, [], 'not retried');
      assert.deepEqual(delivered, []);
    });
  }

  test('a 499 answered for the layer metadata fails before any query', async () => {
    const normal = server.answer;
    server.answer = (p, params) => (p === SAINT_PAUL_PATH ? { body: errors['token-required-499']! } : normal(p, params));
    await assert.rejects(readAll(source()), (err: unknown) => err instanceof ArcgisSourceError && err.code === 499 && /layer metadata of .* failed: ArcGIS error 499/.test(err.message));
    assert.deepEqual(server.queries(), []);
  });
});

const NCOV_PATH = '/0MSEUqKaxRlEPj5g/ArcGIS/rest/services/ncov_cases_US/FeatureServer/0';
const NCOV_URL = `https://services1.arcgis.com${NCOV_PATH}`;

/**
 * The ncov_cases_US layer's fields, as its own f=json query answer lists them (xunhuang/covid-19
 * `website/src/data/latest.json`, test/fixtures/README.md): names and types only.
 */
const NCOV_FIELDS = [
  ['OBJECTID', 'esriFieldTypeOID'],
  ['Province_State', 'esriFieldTypeString'],
  ['Country_Region', 'esriFieldTypeString'],
  ['Last_Update', 'esriFieldTypeDate'],
  ['Lat', 'esriFieldTypeDouble'],
  ['Long_', 'esriFieldTypeDouble'],
  ['Confirmed', 'esriFieldTypeInteger'],
  ['Recovered', 'esriFieldTypeInteger'],
  ['Deaths', 'esriFieldTypeInteger'],
  ['Active', 'esriFieldTypeInteger'],
  ['Admin2', 'esriFieldTypeString'],
  ['FIPS', 'esriFieldTypeString'],
  ['Combined_Key', 'esriFieldTypeString'],
  ['Incident_Rate', 'esriFieldTypeDouble'],
  ['People_Tested', 'esriFieldTypeInteger'],
].map(([name, type]) => ({ name, type }));

describe('a real ArcGIS f=geojson query page (ncov_cases_US, no exceededTransferLimit)', () => {
  const server = new SavedAnswerServer();
  const page = text('arcgis/ncov-cases-us-geojson-query-page.json');
  before(() => server.start());
  after(() => server.close());
  beforeEach(() => {
    server.requests.length = 0;
    server.answer = (p, params) => {
      if (p === NCOV_PATH) return { body: layerDefinition('ncov_cases_US', NCOV_FIELDS, 'JSON, geoJSON, PBF') };
      if (p !== `${NCOV_PATH}/query` || params.get('orderByFields') !== 'OBJECTID' || params.get('where') !== '1=1') return unexpected(params);
      if (params.get('f') === 'geojson' && params.get('resultOffset') === '0') return { body: page };
      // The one-row check past a page without the flag: this layer has nothing after the saved page.
      if (params.get('f') === 'json' && params.get('resultOffset') === '1' && params.get('resultRecordCount') === '1') return { body: '{"features":[]}' };
      return unexpected(params);
    };
  });

  test('reads properties as attributes and the GeoJSON geometry as it came; a page without the flag is checked once past its end', async () => {
    const src = openArcgisLayer({
      datasetName: 'ncov_cases_us',
      url: NCOV_URL,
      endpoint: server.origin,
      primaryKey: 'objectid',
      timeoutMs: 2_000,
      retry: recordingRetry(3),
      now: () => new Date(NOW),
    }) as SourceAdapter<unknown>;
    const { rows, positions } = await readAll(src);
    assert.deepEqual(rows, [
      {
        objectid: '1',
        province_state: 'South Carolina',
        country_region: 'US',
        last_update: '2020-03-31T23:43:56.000Z',
        lat: '34.22333378',
        long_: '-82.46170658',
        confirmed: '4',
        recovered: '0',
        deaths: '0',
        active: '0',
        admin2: 'Abbeville',
        fips: '45001',
        combined_key: 'Abbeville, South Carolina, US',
        incident_rate: null,
        people_tested: null,
        geometry: { type: 'Point', coordinates: [-82.4617065799999, 34.2233337800001] },
        ':updated_at': NOW,
        ':id': '1',
      },
    ]);
    const version = (positions[0] as { version: string }).version;
    assert.deepEqual(positions, [{ version, oid: 1, end: true }], 'the only row is the end of the layer');
    const asked = server.queries().map((q) => `${q.f} offset ${q.resultOffset} count ${q.resultRecordCount} fields ${q.outFields}`);
    const walk = ['geojson offset 0 count 2000 fields *', 'json offset 1 count 1 fields OBJECTID'];
    assert.deepEqual(asked, [...walk, 'geojson offset 0 count 100 fields *', 'json offset 1 count 1 fields OBJECTID']);
  });
});

// ---------------------------------------------------------------------------------------------
// CKAN
// ---------------------------------------------------------------------------------------------

/**
 * A saved `datastore_search` answer as the portal sent it. The data.gov.au and hcdn fixtures were
 * cut to a few records and lost the answer's `total` with the tail they were cut from; it is put
 * back here from the saved originals (test/fixtures/README.md), since the adapter pages by it.
 */
function searchAnswer(file: string, total?: number): string {
  const saved = JSON.parse(text(`ckan/${file}`)) as { result: Record<string, unknown> };
  if (total !== undefined) saved.result.total = total;
  return JSON.stringify(saved);
}

/** The resource_show answer (none was saved with these pages): the fields the adapter reads. */
const LAST_MODIFIED = '2021-02-22T04:43:49.368545';
const resourceShow = (id: string) => JSON.stringify({ success: true, result: { id, datastore_active: true, last_modified: LAST_MODIFIED } });

describe('real CKAN datastore_search answers through the CKAN adapter', () => {
  const server = new SavedAnswerServer();
  before(() => server.start());
  after(() => server.close());

  function resource(base: string, id: string, search: (params: URLSearchParams) => Answer) {
    server.requests.length = 0;
    server.answer = (p, params) => {
      if (p === `${base}/resource_show` && params.get('id') === id) return { body: resourceShow(id) };
      if (p === `${base}/datastore_search` && params.get('resource_id') === id) return search(params);
      return { status: 404, body: JSON.stringify({ success: false, error: { __type: 'Not Found Error', message: `test server: ${p}` } }) };
    };
    return new CkanDatastoreSource({
      datasetName: 'real_ckan',
      url: `https://portal.example${base}/datastore_search?resource_id=${id}`,
      endpoint: server.origin,
      primaryKey: 'id',
      timeoutMs: 2_000,
      retry: recordingRetry(3),
      now: () => new Date(NOW),
    });
  }

  const firstPageOnly = (body: string) => (params: URLSearchParams) => {
    if (params.get('sort') !== '_id asc' || params.get('offset') !== '0') return { status: 409, body: JSON.stringify({ success: false, error: { __type: 'Validation Error', message: `test server: ${params.toString()}` } }) };
    return { body };
  };

  test("datos.hcdn.gob.ar's unsorted answer (_id 66, 67, 2732, 68) fails as an ignored sort, delivering nothing", async () => {
    const id = '6e49506e-6757-44cd-94e9-0e75f3bd8c38';
    const src = resource('/api/3/action', id, firstPageOnly(searchAnswer('hcdn-datastore-search-unsorted.json', 4345)));
    const delivered: SourceRow[] = [];
    await assert.rejects(
      src.streamPage({ after: null, limit: 1000, onRow: (r) => void delivered.push(r) }),
      (err: unknown) => err instanceof CkanSourceError && /_id 68 follows _id 2732 \(sort=_id asc was not applied\)/.test(err.message) && err.message.includes(id),
    );
    assert.deepEqual(delivered, [], 'not one row of the page is delivered');
    assert.equal(server.requests.find((r) => r.path.endsWith('/datastore_search'))?.params.get('sort'), '_id asc', 'the sort was asked for');
  });

  test("data.gov.au's answer is a normal first page: rows by their field types, positions by offset against its total", async () => {
    const id = 'c6b211ad-3aa2-4f53-8427-01b52a6433a7';
    const src = resource('/data/api/3/action', id, firstPageOnly(searchAnswer('data-gov-au-datastore-search.json', 13480)));
    const rows: SourceRow[] = [];
    const positions: CkanPosition[] = [];
    const page = await src.streamPage({ after: null, limit: 1000, onRow: (r, p) => void (rows.push(r), positions.push(p)) });
    assert.equal(page.rows, 3);
    assert.deepEqual(rows[0], {
      Location_Name: 'Cotter River Recreation Area',
      Identifier: 'ACT-0001',
      Road_Section: 'N/A',
      Public_Interest_Premises: 'No',
      State: 'Australian Capital Territory',
      Latitude: '-35.32488745',
      Longitude: '148.939594',
      Electorate: 'Bean',
      Local_Government_Area: 'Unincorporated ACT',
      Post_Code: '2611',
      Remoteness_Area: 'Inner Regional Australia',
      Regional_Development_Authority: 'Australian Capital Territory',
      Updated: 'February 2016',
      ':updated_at': '2021-02-22T04:43:49.368Z',
      ':id': '1',
    });
    assert.deepEqual(
      rows.map((r) => r.Identifier),
      ['ACT-0001', 'ACT-0002', 'ACT-0003'],
    );
    const version = `modified:${LAST_MODIFIED}`;
    assert.deepEqual(positions, [
      { version, offset: 1, lastId: 1, total: 13480 },
      { version, offset: 2, lastId: 2, total: 13480 },
      { version, offset: 3, lastId: 3, total: 13480 },
    ]);
    const asked = Object.fromEntries(server.requests.find((r) => r.path.endsWith('/datastore_search'))!.params);
    assert.deepEqual(asked, { resource_id: id, sort: '_id asc', limit: '1000', offset: '0', include_total: 'true' });
  });

  test("odaa.dk's whole resource (9 records, total 9) is read to its end; the next read asks nothing", async () => {
    const id = '38d6520a-b1b9-4224-a7ae-23d4b14f598f';
    const src = resource('/api/3/action', id, firstPageOnly(searchAnswer('odaa-datastore-search.json')));
    const rows: SourceRow[] = [];
    const positions: CkanPosition[] = [];
    await src.streamPage({ after: null, limit: 1000, onRow: (r, p) => void (rows.push(r), positions.push(p)) });
    assert.equal(rows.length, 9);
    assert.deepEqual(rows[1], {
      AvgWaitingSQ: '2017-05-22T00:00:00',
      WaitingCustomersSQ: '0',
      LongestWaitingTimeTicketBQ: '2017-05-22T00:00:00',
      LongestWaitingTimeTicketSQ: '2017-05-22T00:00:00',
      ServiceTypeName: 'Kørekort',
      LongestWaitingTimeTicketMQ: '2017-05-22T00:00:00',
      date: '2017/05/22 09:30:04',
      WaitingCustomersMQ: '0',
      ':updated_at': '2021-02-22T04:43:49.368Z',
      ':id': '2',
    });
    assert.deepEqual(positions.at(-1), { version: `modified:${LAST_MODIFIED}`, offset: 9, lastId: 9, total: 9, end: true });
    assert.ok(positions.slice(0, -1).every((p) => p.end === undefined));
    const before = server.requests.length;
    const again = await src.streamPage({ after: positions.at(-1)!, limit: 1000, onRow: () => assert.fail('nothing after the end') });
    assert.equal(again.rows, 0);
    assert.equal(server.requests.length, before, 'the end of a version read by this source needs no request');
  });
});
