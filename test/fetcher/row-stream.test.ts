/**
 * The incremental row parser: for every way the network can cut a body into chunks, the rows
 * handed out are exactly JSON.parse(body), with their exact bytes; a body cut off mid-row hands
 * out the complete rows and then fails "truncated"; malformed bodies fail clearly.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { RowStreamError, RowStreamParser, streamRows, type StreamedRow } from '../../lambdas/fetcher/row-stream';
import { generateFireIncidents, seededRandom } from '../../local/fire-incidents-generator';
import { startSocrataServer, type SocrataServer } from '../../local/socrata-server';
import { startSourceProfileProxy, type SourceProfileProxy } from '../../local/source-profile';

/** Rows chosen to hit every trap of a framing scanner. */
const TRICKY_ROWS: string[] = [
  '{"id":"1","name":"plain"}',
  '{"id":"2","text":"braces } { ] [ and a comma, inside a string"}',
  '{"id":"3","text":"escaped quote \\" then brace } and backslash \\\\"}',
  '{"id":"4","text":"ends with backslash \\\\","next":"x"}',
  '{"id":"5","text":"unicode escapes \\u00e9 \\ud83d\\ude00 \\u007b \\u0022"}',
  '{"id":"6","text":"multi-byte UTF-8: é ü 漢字 😀 ‰"}',
  '{"id":"7","point":{"type":"Point","coordinates":[-122.41,37.77]},"location":{"latitude":"37.7","human_address":"{\\"address\\": \\"1 Main\\"}"}}',
  '{ "id" : "8" , "spaced" : "out" }',
  '{}',
  '{"id":"10","empty":"","quotes":"\\"\\"\\"","slashes":"\\/\\\\\\/"}',
];

function bodyOf(rows: string[], sep = ',\n', open = '[\n', close = '\n]\n'): string {
  return `${open}${rows.join(sep)}${close}`;
}

/** Feed `body` split at the given byte offsets; returns the rows and what end() threw. */
function parseSplit(body: Buffer, cuts: number[], parser = new RowStreamParser()): { rows: StreamedRow[]; error?: RowStreamError } {
  const rows: StreamedRow[] = [];
  let prev = 0;
  try {
    for (const cut of [...cuts, body.length]) {
      rows.push(...parser.push(body.subarray(prev, cut)));
      prev = cut;
    }
    parser.end();
    return { rows };
  } catch (err) {
    if (!(err instanceof RowStreamError)) throw err;
    return { rows, error: err };
  }
}

function chunked(body: Buffer, size: number): number[] {
  const cuts: number[] = [];
  for (let c = size; c < body.length; c += size) cuts.push(c);
  return cuts;
}

function assertRows(got: StreamedRow[], texts: string[], label: string): void {
  assert.deepEqual(
    got.map((r) => r.row),
    texts.map((t) => JSON.parse(t) as unknown),
    `${label}: rows equal JSON.parse of the body`,
  );
  assert.deepEqual(
    got.map((r) => r.raw.toString('utf8')),
    texts,
    `${label}: raw bytes are the exact row text`,
  );
  assert.deepEqual(
    got.map((r) => r.index),
    texts.map((_, i) => i),
  );
}

describe('RowStreamParser: every split of a body gives the same rows', () => {
  const body = Buffer.from(bodyOf(TRICKY_ROWS));
  const expected = JSON.parse(body.toString('utf8')) as unknown[];

  test('the test body itself is what JSON.parse reads', () => {
    assert.equal(expected.length, TRICKY_ROWS.length);
  });

  test('every single split point (two chunks)', () => {
    for (let cut = 0; cut <= body.length; cut++) {
      const { rows, error } = parseSplit(body, [cut]);
      assert.equal(error, undefined, `split at ${cut}: ${error?.message}`);
      assertRows(rows, TRICKY_ROWS, `split at ${cut}`);
    }
  });

  test('every pair of split points (three chunks) in the rows with escapes and multi-byte characters', () => {
    // Pairs over the whole body would be ~450k parses; the escapes and UTF-8 sit in rows 3-7.
    const from = body.indexOf('"id":"3"');
    const to = body.indexOf('"id":"8"');
    for (let a = from; a < to; a += 1) {
      for (let b = a; b < to; b += 3) {
        const { rows, error } = parseSplit(body, [a, b]);
        assert.equal(error, undefined, `splits at ${a},${b}: ${error?.message}`);
        assert.deepEqual(
          rows.map((r) => r.row),
          expected,
          `splits at ${a},${b}`,
        );
      }
    }
  });

  for (const size of [1, 7, 64 * 1024]) {
    test(`chunks of ${size} bytes`, () => {
      const { rows, error } = parseSplit(body, chunked(body, size));
      assert.equal(error, undefined);
      assertRows(rows, TRICKY_ROWS, `chunks of ${size}`);
    });
  }

  test('generated fire-incident rows (points, absent fields) in chunks of 1, 7 and 64 KiB', () => {
    const texts = generateFireIncidents({ rows: 300, seed: 3 }).map((r) => JSON.stringify(r));
    const fire = Buffer.from(bodyOf(texts));
    for (const size of [1, 7, 64 * 1024]) {
      const { rows, error } = parseSplit(fire, chunked(fire, size));
      assert.equal(error, undefined);
      assertRows(rows, texts, `fire incidents, chunks of ${size}`);
    }
  });

  test('random rows with hostile strings, random chunkings (property, 300 cases)', () => {
    const alphabet = ['a', 'Z', '0', ' ', '"', '\\', '{', '}', '[', ']', ',', ':', '\n', '\t', '\u0001', 'é', '漢', '😀', '\u2028', '/'];
    for (let seed = 1; seed <= 300; seed++) {
      // Deterministic, so a failing case can be replayed.
      const rand = seededRandom(seed);
      const pick = (): string => alphabet[Math.floor(rand() * alphabet.length)]!;
      const str = (): string => Array.from({ length: Math.floor(rand() * 12) }, pick).join('');
      const texts: string[] = [];
      const nRows = Math.floor(rand() * 6);
      for (let r = 0; r < nRows; r++) {
        const row: Record<string, unknown> = {};
        for (let f = Math.floor(rand() * 5); f > 0; f--) row[str()] = rand() < 0.2 ? { type: 'Point', coordinates: [rand(), -rand()], note: str() } : str();
        texts.push(JSON.stringify(row));
      }
      const body = Buffer.from(bodyOf(texts, rand() < 0.5 ? ',' : ' ,\r\n ', rand() < 0.5 ? '[' : ' \n[ ', rand() < 0.5 ? ']' : ' ]\n\n'));
      const cuts: number[] = [];
      for (let c = 0; c < body.length; c += 1 + Math.floor(rand() * 9)) cuts.push(c);
      const { rows, error } = parseSplit(body, cuts);
      assert.equal(error, undefined, `seed ${seed}: ${error?.message}`);
      assertRows(rows, texts, `seed ${seed}`);
      assert.deepEqual(
        rows.map((r) => r.row),
        JSON.parse(body.toString('utf8')),
        `seed ${seed}`,
      );
    }
  });

  test('an empty page, with or without whitespace, and a leading byte-order mark', () => {
    for (const text of ['[]', ' [ ] ', '[\n]\n']) assert.deepEqual(parseSplit(Buffer.from(text), [1]).rows, []);
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('[{"a":"1"}]')]);
    for (let cut = 0; cut <= bom.length; cut++) assert.deepEqual(parseSplit(bom, [cut]).rows.map((r) => r.row), [{ a: '1' }]);
  });

  test('rows come out as soon as their closing brace arrives, not at the end of the body', () => {
    const parser = new RowStreamParser();
    assert.equal(parser.push(Buffer.from('[{"a":"1"},{"b":')).length, 1);
    assert.equal(parser.push(Buffer.from('"2"}')).length, 1);
    assert.equal(parser.complete, false);
    assert.equal(parser.push(Buffer.from(']')).length, 0);
    assert.equal(parser.complete, true);
  });

  test('memory: only the unfinished row is held between chunks, never the page', () => {
    const texts = generateFireIncidents({ rows: 200, seed: 5 }).map((r) => JSON.stringify(r));
    const largestRow = Math.max(...texts.map((t) => Buffer.byteLength(t)));
    const fire = Buffer.from(bodyOf(texts));
    for (const size of [7, 1000]) {
      const parser = new RowStreamParser();
      let maxBuffered = 0;
      for (let c = 0; c < fire.length; c += size) {
        parser.push(fire.subarray(c, c + size));
        maxBuffered = Math.max(maxBuffered, parser.bufferedBytes);
      }
      parser.end();
      assert.ok(maxBuffered > 0, 'rows did span chunks');
      assert.ok(maxBuffered < largestRow, `held ${maxBuffered} bytes between chunks; the largest row is ${largestRow}, the page ${fire.length}`);
    }
  });
});

describe('RowStreamParser: a body cut off', () => {
  const body = Buffer.from(bodyOf(TRICKY_ROWS));
  const rowEnds: number[] = [];
  for (let i = 0, from = 0; i < TRICKY_ROWS.length; i++) {
    const at = body.indexOf(TRICKY_ROWS[i]!, from);
    rowEnds.push(at + Buffer.byteLength(TRICKY_ROWS[i]!));
    from = at + 1;
  }
  const closing = body.lastIndexOf(']');

  test('at every byte: the complete rows, then "truncated" with how many were complete', () => {
    for (let len = 0; len <= closing; len++) {
      const complete = rowEnds.filter((e) => e <= len).length;
      const { rows, error } = parseSplit(body.subarray(0, len), [Math.floor(len / 2)]);
      assert.ok(error, `cut at ${len}: fails`);
      assert.equal(error.kind, 'truncated', `cut at ${len}: ${error.message}`);
      assert.equal(error.rowsComplete, complete, `cut at ${len}`);
      assert.equal(error.byteOffset, len);
      assertRows(rows, TRICKY_ROWS.slice(0, complete), `cut at ${len}`);
      assert.match(error.message, new RegExp(`truncated after ${complete} complete rows.*resume after the last complete row`));
    }
  });

  test('after the closing bracket the body is complete (trailing whitespace is optional)', () => {
    const { rows, error } = parseSplit(body.subarray(0, closing + 1), []);
    assert.equal(error, undefined);
    assert.equal(rows.length, TRICKY_ROWS.length);
  });

  test('streamRows: a connection error mid-row yields the complete rows, then "truncated" with the cause', async () => {
    const cutAt = rowEnds[3]! + 5;
    async function* dropping(): AsyncGenerator<Buffer> {
      yield body.subarray(0, 20);
      yield body.subarray(20, cutAt);
      throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    }
    const got: StreamedRow[] = [];
    await assert.rejects(
      async () => {
        for await (const r of streamRows(dropping(), { context: 'dataset wr8u-xric, page 2' })) got.push(r);
      },
      (err: unknown) => {
        assert.ok(err instanceof RowStreamError);
        assert.equal(err.kind, 'truncated');
        assert.equal(err.rowsComplete, 4);
        assert.match(err.message, /^dataset wr8u-xric, page 2: connection failed .* after 4 complete rows.*ECONNRESET/);
        assert.equal((err.cause as { code?: string }).code, 'ECONNRESET');
        return true;
      },
    );
    assertRows(got, TRICKY_ROWS.slice(0, 4), 'rows before the drop');
  });

  test('streamRows: a body that just ends early fails "truncated" after its complete rows', async () => {
    async function* short(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(body.subarray(0, rowEnds[1]! + 3));
    }
    const got: StreamedRow[] = [];
    await assert.rejects(async () => {
      for await (const r of streamRows(short())) got.push(r);
    }, /truncated after 2 complete rows/);
    assert.equal(got.length, 2);
  });
});

describe('RowStreamParser: malformed bodies fail with a clear error', () => {
  const cases: Array<[string, string, RegExp, number]> = [
    ['not an array (a Socrata error object)', '{"error":true,"message":"no such column"}', /"\{" at byte 0 where "\[" \(the start of the array of rows\) was expected/, 0],
    ['HTML', '<html>502</html>', /"<" at byte 0 where "\["/, 0],
    ['garbage between rows', '[{"a":"1"} x {"b":"2"}]', /"x" at byte 11 where "," or "\]" \(after a row\) was expected \(after 1 complete rows\)/, 1],
    ['missing comma', '[{"a":"1"}{"b":"2"}]', /"\{" at byte 10 where "," or "\]"/, 1],
    ['trailing comma', '[{"a":"1"},]', /"\]" at byte 11 where "\{" \(a row\) was expected/, 1],
    ['leading comma', '[,{"a":"1"}]', /"," at byte 1 where "\{" \(a row\) or "\]"/, 0],
    ['a row that is not an object', '[{"a":"1"},"x"]', /'"' at byte 11 where "\{" \(a row\)/, 1],
    ['an extra closing brace', '[{"a":{"b":"1"}}}]', /"\}" at byte 16 where "," or "\]"/, 1],
    ['unbalanced: a bracket closes the row', '[{"a":{"b":"1"}]', /row 1 \(ending at byte 15\) is not valid JSON/, 0],
    ['invalid JSON inside a row', '[{"a":tru}]', /row 1 .* is not valid JSON.*row starts "\{\\"a\\":tru\}"/, 0],
    ['a bad escape inside a row', '[{"a":"\\x"}]', /row 1 .* is not valid JSON/, 0],
    ['content after the closing bracket', '[{"a":"1"}] []', /"\[" at byte 12 where nothing \(after the closing "\]"\)/, 1],
  ];
  for (const [name, text, message, rowsComplete] of cases) {
    test(name, () => {
      const buf = Buffer.from(text);
      // Whole, and one byte at a time: the same error either way.
      for (const cuts of [[], chunked(buf, 1)]) {
        const parser = new RowStreamParser({ context: 'dataset wr8u-xric, page 1 (http://127.0.0.1/resource/wr8u-xric.json)' });
        const { error } = parseSplit(buf, cuts, parser);
        assert.ok(error, `${name}: fails`);
        assert.equal(error.kind, 'malformed', error.message);
        assert.match(error.message, /^dataset wr8u-xric, page 1 \(http:\/\/127\.0\.0\.1\/resource\/wr8u-xric\.json\): /);
        assert.match(error.message, message);
        assert.equal(error.rowsComplete, rowsComplete);
        assert.equal(error.message.includes('\n'), false, 'one line');
      }
    });
  }

  test('a row larger than maxRowBytes fails "oversize" instead of growing without bound', () => {
    const big = Buffer.from(`[{"a":"${'x'.repeat(5000)}"}]`);
    for (const cuts of [[], chunked(big, 1000)]) {
      const { error } = parseSplit(big, cuts, new RowStreamParser({ maxRowBytes: 4096 }));
      assert.equal(error?.kind, 'oversize');
      assert.match(error.message, /row 1 .*larger than 4096 bytes/);
    }
    // A row that never closes fails as soon as it passes the limit, not at the end of the body.
    const parser = new RowStreamParser({ maxRowBytes: 4096 });
    parser.push(Buffer.from('[{"a":"'));
    assert.throws(() => {
      for (let i = 0; i < 100; i++) parser.push(Buffer.from('x'.repeat(1000)));
    }, (err: unknown) => err instanceof RowStreamError && err.kind === 'oversize' && err.byteOffset < 6000);
    // At the limit it still passes.
    assert.equal(parseSplit(big, chunked(big, 1000), new RowStreamParser({ maxRowBytes: 5010 })).rows.length, 1);
  });
});

describe('streamRows over real HTTP: the local Socrata server behind a 2 MB/s source profile', { timeout: 60_000 }, () => {
  let socrata: SocrataServer;
  let proxy: SourceProfileProxy;
  const query = '$select=:*,*&$order=:updated_at,:id&$limit=400';
  before(async () => {
    socrata = await startSocrataServer({ rows: 400, seed: 11 });
    proxy = await startSourceProfileProxy(socrata.url, { name: '10 ms + 2 MB/s', latencyMs: 10, bandwidthBytesPerSecond: 2e6 });
  });
  after(async () => {
    await proxy.close();
    await socrata.close();
  });

  /**
   * GET through the proxy: the body as the socket delivers it, counting bytes; `dropAfterBytes`:
   * the connection is destroyed once that many bytes arrived, as a reset would.
   */
  async function get(dropAfterBytes?: number): Promise<{ body: AsyncIterable<Buffer>; received: () => number }> {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      http.get(`${proxy.url}/resource/${socrata.datasetId}.json?${query}`, resolve).on('error', reject);
    });
    let received = 0;
    async function* body(): AsyncGenerator<Buffer> {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        received += chunk.length;
        yield chunk;
        if (dropAfterBytes !== undefined && received >= dropAfterBytes) res.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
      }
    }
    return { body: body(), received: () => received };
  }

  async function direct(): Promise<{ text: string; rows: unknown[] }> {
    const text = await (await fetch(`${socrata.url}/resource/${socrata.datasetId}.json?${query}`)).text();
    return { text, rows: JSON.parse(text) as unknown[] };
  }

  test('every row, equal to JSON.parse of the whole body, the first one long before the body ends', async () => {
    const { text, rows: expected } = await direct();
    const { body, received } = await get();
    const got: StreamedRow[] = [];
    let receivedAtFirstRow = -1;
    for await (const r of streamRows(body)) {
      if (got.length === 0) receivedAtFirstRow = received();
      got.push(r);
    }
    assert.equal(got.length, 400);
    assert.deepEqual(
      got.map((r) => r.row),
      expected,
    );
    for (const r of got.slice(0, 20)) assert.ok(text.includes(r.raw.toString('utf8')), 'raw bytes are the served text');
    assert.ok(receivedAtFirstRow > 0 && receivedAtFirstRow < Buffer.byteLength(text) / 4, `first row after ${receivedAtFirstRow} of ${Buffer.byteLength(text)} bytes`);
  });

  test('a connection dropped mid-page: the complete rows, then "truncated" naming how many', async () => {
    const { rows: expected } = await direct();
    const { body } = await get(100_000);
    const got: StreamedRow[] = [];
    const err = await (async () => {
      try {
        for await (const r of streamRows(body, { context: `dataset ${socrata.datasetId}` })) got.push(r);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof RowStreamError, String(err));
    assert.equal(err.kind, 'truncated');
    assert.equal(err.rowsComplete, got.length);
    assert.ok(got.length > 10 && got.length < 400, `${got.length} rows before the drop`);
    assert.deepEqual(
      got.map((r) => r.row),
      expected.slice(0, got.length),
      'the rows before the drop are the first rows of the page, complete',
    );
    assert.match(err.message, new RegExp(`^dataset ${socrata.datasetId}: connection failed .*after ${got.length} complete rows.*ECONNRESET`));
  });

  test('a body the server cut short (truncate fault): the complete rows, then "truncated"', async () => {
    const { rows: expected } = await direct();
    socrata.setFaults([{ kind: 'truncate', times: 1 }]);
    const { body } = await get();
    const got: StreamedRow[] = [];
    await assert.rejects(
      async () => {
        for await (const r of streamRows(body)) got.push(r);
      },
      (e: unknown) => e instanceof RowStreamError && e.kind === 'truncated' && e.rowsComplete === got.length,
    );
    assert.ok(got.length > 100 && got.length < 400, `${got.length} rows before the cut`);
    assert.deepEqual(
      got.map((r) => r.row),
      expected.slice(0, got.length),
    );
  });
});

