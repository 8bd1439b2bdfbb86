import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startSocrataServer, type SocrataServer } from '../../local/socrata-server';
import type { Row } from '../../local/soql';

const TOKEN = 'local-test-token';

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as unknown) : undefined };
}

/** A SODA 3 POST as the docs show it: JSON body, X-App-Token, Content-Type: application/json. */
async function soda3(server: SocrataServer, body: unknown, opts: { token?: string | null; contentType?: string | null } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? TOKEN : opts.token;
  if (token !== null) headers['X-App-Token'] = token;
  const contentType = opts.contentType === undefined ? 'application/json' : opts.contentType;
  if (contentType !== null) headers['Content-Type'] = contentType;
  const res = await fetch(`${server.url}/api/v3/views/${server.datasetId}/query.json`, {
    method: 'POST',
    headers,
    // Bytes, so fetch adds no Content-Type of its own.
    body: new TextEncoder().encode(typeof body === 'string' ? body : JSON.stringify(body)),
  });
  return answer(res);
}

async function soda3Rows(server: SocrataServer, body: Record<string, unknown>): Promise<Row[]> {
  const a = await soda3(server, body);
  assert.equal(a.status, 200, `SODA 3 ${JSON.stringify(body)}: ${JSON.stringify(a.body)}`);
  return a.body as Row[];
}

async function soda2Rows(server: SocrataServer, params: Record<string, string>): Promise<Row[]> {
  const res = await fetch(`${server.resourceUrl}?${new URLSearchParams(params).toString()}`);
  const a = await answer(res);
  assert.equal(a.status, 200, `SODA 2 ${JSON.stringify(params)}: ${JSON.stringify(a.body)}`);
  return a.body as Row[];
}

describe('SODA 3 on the local Socrata server', () => {
  let server: SocrataServer;
  let keyset: Row[];
  before(async () => {
    server = await startSocrataServer({ rows: 2_000, seed: 7 });
    keyset = await soda2Rows(server, { $select: ':*,*', $order: ':updated_at, :id', $limit: '5000' });
    assert.equal(keyset.length, 2_000);
  });
  after(() => server.close());

  test("the fetcher's queries answer the same rows as SODA 2.1", async () => {
    const at = keyset[300]!;
    const after = `:updated_at > '${String(at[':updated_at'])}' OR (:updated_at = '${String(at[':updated_at'])}' AND :id > '${String(at[':id'])}')`;
    const quoted = after.replaceAll(':updated_at', '`:updated_at`').replaceAll(':id', '`:id`');
    const keys = keyset.slice(10, 14).map((r) => `'${String(r.id)}'`).join(', ');
    const cases: [Record<string, unknown>, Record<string, string>][] = [
      // A keyset page, system fields quoted as SODA 3 clients quote them.
      [{ query: `SELECT :*, * WHERE ${quoted} ORDER BY \`:updated_at\`, \`:id\` LIMIT 250` }, { $select: ':*,*', $where: after, $order: ':updated_at, :id', $limit: '250' }],
      // The key scan, a count and a repair by keys.
      [{ query: 'SELECT id, :id ORDER BY :id LIMIT 700 OFFSET 100' }, { $select: 'id, :id', $order: ':id', $limit: '700', $offset: '100' }],
      [{ query: `select count(*) as n where ${after}` }, { $select: 'count(*) as n', $where: after }],
      [{ query: `SELECT :*, * WHERE id IN (${keys}) ORDER BY :updated_at, :id` }, { $select: ':*,*', $where: `id IN (${keys})`, $order: ':updated_at, :id' }],
      // Clause keywords inside a string literal and inside parentheses are not clauses.
      [
        { query: "SELECT id WHERE action_taken_primary != 'it''s ORDER BY y LIMIT 1' AND (battalion = 'B01' OR battalion = 'B02') ORDER BY id DESC LIMIT 40" },
        { $select: 'id', $where: "action_taken_primary != 'it''s ORDER BY y LIMIT 1' AND (battalion = 'B01' OR battalion = 'B02')", $order: 'id DESC', $limit: '40' },
      ],
    ];
    for (const [body, params] of cases) {
      const rows = await soda3Rows(server, body);
      assert.ok(rows.length > 0, `${body.query as string} selects rows`);
      assert.deepEqual(rows, await soda2Rows(server, params), String(body.query));
    }
    const n = (await soda3Rows(server, { query: `SELECT count(*) AS n WHERE ${after}` }))[0]!.n;
    assert.equal(n, String(2_000 - 301), 'a count is a string, as Socrata serves it');
    const last = server.requests.at(-1)!;
    assert.equal(last.soql, `SELECT count(*) AS n WHERE ${after}`);
    assert.equal(last.params.$where, after, 'the request log holds the SODA 2 parameters it was served as');
  });

  test('SELECT * carries :id, :created_at, :updated_at by default; includeSystem or includeSynthetic false drops them', async () => {
    const plain = await soda2Rows(server, { $select: '*', $order: ':id', $limit: '20' });
    assert.deepEqual(await soda3Rows(server, { query: 'SELECT * LIMIT 20' }), await soda2Rows(server, { $select: ':*,*', $order: ':id', $limit: '20' }));
    assert.deepEqual(await soda3Rows(server, { query: 'LIMIT 20' }), await soda3Rows(server, { query: 'SELECT * LIMIT 20' }), 'no SELECT is SELECT *');
    assert.deepEqual(await soda3Rows(server, { query: 'SELECT * LIMIT 20', includeSystem: false }), plain);
    assert.deepEqual(await soda3Rows(server, { query: 'SELECT * LIMIT 20', includeSynthetic: false }), plain);
    assert.ok(plain.every((r) => !(':id' in r)));
  });

  test('page slices the rows the query selects: pages 1..n are the whole ordered result, past the end is empty', async () => {
    const query = 'SELECT :*, * ORDER BY :updated_at, :id';
    const pages: Row[][] = [];
    for (let pageNumber = 1; pageNumber <= 8; pageNumber++) pages.push(await soda3Rows(server, { query, page: { pageNumber, pageSize: 300 } }));
    assert.deepEqual(pages.map((p) => p.length), [300, 300, 300, 300, 300, 300, 200, 0]);
    assert.deepEqual(pages.flat(), keyset);
    // The query's own LIMIT/OFFSET bound what the pages cut.
    const bounded = 'SELECT :*, * ORDER BY :updated_at, :id LIMIT 650 OFFSET 10';
    const cut: Row[][] = [];
    for (let pageNumber = 1; pageNumber <= 4; pageNumber++) cut.push(await soda3Rows(server, { query: bounded, page: { pageNumber, pageSize: 300 } }));
    assert.deepEqual(cut.map((p) => p.length), [300, 300, 50, 0]);
    assert.deepEqual(cut.flat(), keyset.slice(10, 660));
    // The documented example: page 5 of 10 rows is rows 41-50.
    const documented = JSON.parse(readFileSync(new URL('../fixtures/soda3/documented-page-request.json', import.meta.url), 'utf8')) as { request: { body: Record<string, unknown> } };
    assert.deepEqual(await soda3Rows(server, documented.request.body), (await soda2Rows(server, { $select: '*', $order: ':id', $limit: '50' })).slice(40, 50));
    // No page and no LIMIT: every row (not SODA 2's default 1,000).
    assert.equal((await soda3Rows(server, { query: 'SELECT id' })).length, 2_000);
  });

  test('GET takes query, pageNumber and pageSize as URL parameters', async () => {
    const query = 'SELECT :*, * ORDER BY :updated_at, :id';
    const url = `${server.url}/api/v3/views/${server.datasetId}/query.json?${new URLSearchParams({ query, pageNumber: '2', pageSize: '300' }).toString()}`;
    const a = await answer(await fetch(url, { headers: { 'X-App-Token': TOKEN } }));
    assert.equal(a.status, 200);
    assert.deepEqual(a.body, keyset.slice(300, 600));
    const bad = await answer(await fetch(`${url}&$limit=5`, { headers: { 'X-App-Token': TOKEN } }));
    assert.equal(bad.status, 400);
    assert.equal((bad.body as { errorCode: string }).errorCode, 'req.bad-parameter');
  });

  test('without an app token: 403 permission_denied, and no rows are served', async () => {
    for (const token of [null, '', '  ']) {
      const before = server.requests.length;
      const a = await soda3(server, { query: 'SELECT * LIMIT 5' }, { token });
      assert.equal(a.status, 403, `token ${JSON.stringify(token)}`);
      assert.deepEqual(Object.keys(a.body as object).sort(), ['code', 'error', 'message']);
      assert.equal((a.body as { code: string }).code, 'permission_denied');
      assert.equal((a.body as { error: boolean }).error, true);
      assert.match((a.body as { message: string }).message, /X-App-Token/);
      assert.equal(server.requests.length, before + 1);
      const record = server.requests.at(-1)!;
      assert.equal(record.status, 403);
      assert.equal(record.n, 0, 'not counted as a row request');
      assert.equal(record.rows, undefined);
    }
    const get = await answer(await fetch(`${server.url}/api/v3/views/${server.datasetId}/query.json?query=SELECT%20*`));
    assert.equal(get.status, 403);
  });

  test("a malformed query is a 400 in the query layer's shape (message, errorCode, data)", async () => {
    const recorded = JSON.parse(readFileSync(new URL('../fixtures/soda3/soda21-error-no-such-column.json', import.meta.url), 'utf8')) as {
      response: { body: { message: string; errorCode: string } };
    };
    const cases: [string, string][] = [
      ['SELECT nonexistent_col', 'query.soql.no-such-column'],
      ['SELEC *', 'query.compiler.malformed'],
      ["SELECT * WHERE id = 'unterminated", 'query.compiler.malformed'],
      ['SELECT * WHERE `:updated_at > 1', 'query.compiler.malformed'],
      ['SELECT * LIMIT ten', 'query.compiler.malformed'],
      ['SELECT * LIMIT -1', 'query.compiler.malformed'],
      ['SELECT * ORDER BY :id WHERE id = 1', 'query.compiler.malformed'],
      ['SELECT * WHERE', 'query.compiler.malformed'],
      ['', 'query.compiler.malformed'],
      ['SELECT battalion, count(*) GROUP BY battalion', 'query.soql.unsupported'],
      ['SELECT * |> SELECT id', 'query.soql.unsupported'],
    ];
    for (const [query, errorCode] of cases) {
      const a = await soda3(server, { query });
      assert.equal(a.status, 400, query);
      const body = a.body as { message: string; errorCode: string; data: { query: string } };
      assert.deepEqual(Object.keys(body).sort(), Object.keys(recorded.response.body).sort(), `${query}: the recorded error's keys`);
      assert.equal(body.errorCode, errorCode, query);
      assert.ok(body.message.startsWith(`Query coordinator error: ${errorCode}; `), body.message);
      assert.equal(body.data.query, query);
      assert.equal(server.requests.at(-1)!.status, 400);
    }
    assert.ok(recorded.response.body.message.startsWith(`Query coordinator error: ${recorded.response.body.errorCode}; `));
    // Backticked identifiers reach SODA 2 too; an unterminated one is a 400 there as well.
    assert.equal((await fetch(`${server.resourceUrl}?${new URLSearchParams({ $where: "`:id > 'a'" }).toString()}`)).status, 400);
    assert.equal((await soda2Rows(server, { $select: '`id`', $where: "`:id` > 'row-m'", $order: '`:id`' })).length > 0, true);
  });

  test('a malformed request body is a 400 (415 for a content type that is not JSON) naming what is wrong', async () => {
    const cases: [unknown, { contentType?: string | null }, number, string, RegExp][] = [
      ['{"query": "SELECT *"', {}, 400, 'req.body.malformed-json', /malformed/],
      ['["SELECT *"]', {}, 400, 'req.content.json.not-object', /JSON object/],
      [{ query: 1 }, {}, 400, 'req.bad-parameter', /'query'/],
      [{}, {}, 400, 'req.bad-parameter', /'query'/],
      [{ query: 'SELECT *', pagesize: 10 }, {}, 400, 'req.bad-parameter', /'pagesize'/],
      [{ query: 'SELECT *', page: { pageNumber: 0, pageSize: 10 } }, {}, 400, 'req.bad-parameter', /'page'/],
      [{ query: 'SELECT *', page: { pageNumber: 1 } }, {}, 400, 'req.bad-parameter', /'page'/],
      [{ query: 'SELECT *', page: { pageNumber: 1, pageSize: 2.5 } }, {}, 400, 'req.bad-parameter', /'page'/],
      [{ query: 'SELECT *', includeSystem: 'false' }, {}, 400, 'req.bad-parameter', /'includeSystem'/],
      [{ query: 'SELECT *', orderingSpecifier: 'fast' }, {}, 400, 'req.bad-parameter', /'orderingSpecifier'/],
      [{ query: 'SELECT *', parameters: { p: 1 } }, {}, 400, 'req.bad-parameter', /'parameters'/],
      [{ query: 'SELECT *' }, { contentType: 'text/plain' }, 415, 'req.content-type.not-json', /application\/json/],
      [{ query: 'SELECT *' }, { contentType: null }, 400, 'req.content-type.missing', /content-type/],
    ];
    for (const [body, opts, status, errorCode, message] of cases) {
      const a = await soda3(server, body, opts);
      assert.equal(a.status, status, JSON.stringify(body));
      const b = a.body as { message: string; errorCode: string };
      assert.equal(b.errorCode, errorCode, JSON.stringify(body));
      assert.match(b.message, message);
    }
    // The documented options with their documented values are accepted.
    const ok = await soda3Rows(server, { query: 'SELECT id LIMIT 3', timeout: 600, orderingSpecifier: 'discard', parameters: {}, includeSystem: true, includeSynthetic: true });
    assert.equal(ok.length, 3);
  });

  test('other paths are 404 and other methods 405, in the same shape', async () => {
    const other = await answer(await fetch(`${server.url}/api/v3/views/abcd-1234/query.json`, { method: 'POST', headers: { 'X-App-Token': TOKEN } }));
    assert.equal(other.status, 404);
    assert.equal((other.body as { errorCode: string }).errorCode, 'not-found');
    const put = await answer(await fetch(`${server.url}/api/v3/views/${server.datasetId}/query.json`, { method: 'PUT', headers: { 'X-App-Token': TOKEN } }));
    assert.equal(put.status, 405);
    assert.equal((put.body as { errorCode: string }).errorCode, 'method-not-allowed');
  });

  test('injected faults apply to SODA 3 requests as to SODA 2 ones', async () => {
    server.setFaults([{ kind: 'status', status: 429, retryAfter: '3', times: 1 }]);
    const limited = await soda3(server, { query: 'SELECT id LIMIT 2' });
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '3');
    assert.equal((await soda3(server, { query: 'SELECT id LIMIT 2' })).status, 200, 'the fault was used up');
    // whereIncludes matches the query's WHERE.
    server.setFaults([{ kind: 'status', status: 500, times: 5, whereIncludes: 'battalion' }]);
    assert.equal((await soda3(server, { query: "SELECT id WHERE id > 'a' LIMIT 2" })).status, 200);
    assert.equal((await soda3(server, { query: 'SELECT battalion ORDER BY battalion LIMIT 2' })).status, 200, 'the text outside WHERE does not count');
    assert.equal((await soda3(server, { query: "SELECT id WHERE battalion = 'B02' LIMIT 2" })).status, 500);
    server.setFaults([{ kind: 'truncate', times: 1 }]);
    const cut = await fetch(`${server.url}/api/v3/views/${server.datasetId}/query.json`, {
      method: 'POST',
      headers: { 'X-App-Token': TOKEN, 'Content-Type': 'application/json' },
      body: JSON.stringify({ query: 'SELECT * LIMIT 50' }),
    });
    const text = await cut.text();
    assert.equal(cut.status, 200);
    assert.throws(() => JSON.parse(text) as unknown, SyntaxError, 'a truncated body');
    server.setFaults([]);
  });
});

describe('the recorded data.sfgov.org SODA 3 request', () => {
  const fixture = JSON.parse(readFileSync(new URL('../fixtures/soda3/sf-films-query.json', import.meta.url), 'utf8')) as {
    request: { body: Record<string, unknown> };
    response: { headers: Record<string, string>; body: Row[] };
  };
  // The local server produces neither `:version` nor computed-region columns.
  const modelled = (r: Row): Row => Object.fromEntries(Object.entries(r).filter(([k]) => k !== ':version' && !k.startsWith(':@')));
  let server: SocrataServer;
  before(async () => {
    const fields = JSON.parse(fixture.response.headers['x-soda2-fields']!) as string[];
    const types = JSON.parse(fixture.response.headers['x-soda2-types']!) as string[];
    const columns = fields.map((fieldName, i) => ({ fieldName, dataTypeName: types[i]! })).filter((c) => !c.fieldName.startsWith(':'));
    server = await startSocrataServer({ datasetId: 'yitu-d5am', columns, primaryKey: 'title', rows: fixture.response.body.map(modelled) });
  });
  after(() => server.close());

  test('gets the recorded rows back: a bare array, strings for numbers, system fields with SELECT *', async () => {
    const rows = await soda3Rows(server, fixture.request.body);
    const byId = (a: Row, b: Row): number => String(a[':id']).localeCompare(String(b[':id']));
    assert.deepEqual([...rows].sort(byId), fixture.response.body.map(modelled).sort(byId));
    assert.equal(typeof rows[0]!.release_year, 'string');
  });
});
