/**
 * NDJSON and JSON arrays: one object per line or per element, streamed, read the same at every
 * cut; bad lines and elements are problem rows with their line; a broken or unclosed array stops
 * the read with the line and byte.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isProblem } from '../../runtime/file-formats';
import { assertSameAtEveryCut, collect, outcome } from './read-helpers';

const ndjson = { format: 'ndjson' } as const;
const json = { format: 'json' } as const;

describe('NDJSON', () => {
  test('objects with nested fields, CRLF or LF, blank lines skipped, no newline at the end', async () => {
    const bytes = Buffer.from('{"event":"register","data":{"id":"v1","location":{"lat":51.5}}}\r\n\n  \r\n{"s":"\\n\\"é\\u00e9"}\n{"x":[1,{"y":null}]}');
    await assertSameAtEveryCut(bytes, ndjson, {
      items: [
        { line: 1, record: { event: 'register', data: { id: 'v1', location: { lat: 51.5 } } } },
        { line: 4, record: { s: '\n"éé' } },
        { line: 5, record: { x: [1, { y: null }] } },
      ],
    });
  });

  test('an invalid JSON line, and a line that is JSON but not an object, are problem rows; the next line is read', async () => {
    // CRLF on the bad line: its raw text is the line without the CR.
    const bytes = Buffer.from('{"a":1}\n{"a":\r\n[1,2]\n"text"\nnull\n42\n{"a":2} trailing\n{"a":3}\n');
    const got = await assertSameAtEveryCut(bytes, ndjson);
    assert.deepEqual(
      got.items.map((i) => (isProblem(i) ? [i.line, i.problem.replace(/:.*/, ''), i.raw] : [i.line, i.record])),
      [
        [1, { a: 1 }],
        [2, 'invalid JSON', '{"a":'],
        [3, 'not a JSON object but an array; each line must be one object', '[1,2]'],
        [4, 'not a JSON object but a string; each line must be one object', '"text"'],
        [5, 'not a JSON object but null; each line must be one object', 'null'],
        [6, 'not a JSON object but a number; each line must be one object', '42'],
        [7, 'invalid JSON', '{"a":2} trailing'],
        [8, { a: 3 }],
      ],
    );
    assert.equal(got.error, undefined);
  });

  test('a line that is not UTF-8 is a problem row', async () => {
    const bytes = Buffer.concat([Buffer.from('{"a":"x'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n{"a":"ok"}\n')]);
    const got = await assertSameAtEveryCut(bytes, ndjson);
    assert.deepEqual(got.items.map((i) => (isProblem(i) ? i.problem : i.record)), ['the line is not valid UTF-8', { a: 'ok' }]);
  });

  test('a line over maxRecordBytes is a problem row, its raw text cut; the next line is read', async () => {
    const bytes = Buffer.from(`{"a":1}\n{"big":"${'y'.repeat(3000)}"}\r\n{"a":2}\n`);
    const got = await assertSameAtEveryCut(bytes, { format: 'ndjson', maxRecordBytes: 500, maxRawBytes: 20 });
    assert.equal(got.items.length, 3);
    const p = got.items[1]!;
    assert.ok(isProblem(p));
    assert.equal(p.line, 2);
    assert.equal(p.raw, `{"big":"${'y'.repeat(12)}`);
    assert.match(p.problem, /^record larger than maxRecordBytes \(500 bytes\).*first 20 of 30\d\d bytes/);
    assert.deepEqual(got.items[2], { line: 3, record: { a: 2 } });
  });

  test('an empty input is no records', async () => {
    assert.deepEqual(await outcome('', ndjson), { items: [] });
  });
});

describe('JSON array', () => {
  test('elements streamed one by one: nesting, brackets and quotes inside strings, escapes, lines', async () => {
    const bytes = Buffer.from('\uFEFF[\n  {"a": "x]}\\"{[", "n": {"b": [1, 2, {"c": "}"}]}},\n  {"e": "\\\\"},{"f":\n"multi"}\n]\n');
    await assertSameAtEveryCut(bytes, json, {
      items: [
        { line: 2, record: { a: 'x]}"{[', n: { b: [1, 2, { c: '}' }] } } },
        { line: 3, record: { e: '\\' } },
        { line: 3, record: { f: 'multi' } },
      ],
    });
  });

  test('an empty array is no records', async () => {
    assert.deepEqual(await outcome(' [ ] \n', json), { items: [] });
  });

  test('an element that is not an object, or not valid JSON, is a problem row; the next element is read', async () => {
    const bytes = Buffer.from('[{"a":1}, 2, "s", null, [1], {"x": tru}, {"a":3}]');
    const got = await assertSameAtEveryCut(bytes, json);
    assert.deepEqual(
      got.items.map((i) => (isProblem(i) ? [i.problem.replace(/[:;].*/, ''), i.raw] : i.record)),
      [{ a: 1 }, ['not a JSON object but a number', '2'], ['not a JSON object but a string', '"s"'], ['not a JSON object but null', 'null'], ['not a JSON object but an array', '[1]'], ['invalid JSON', '{"x": tru}'], { a: 3 }],
    );
  });

  test('an element over maxRecordBytes is a problem row; the next element is read', async () => {
    const bytes = Buffer.from(`[{"a":1},\n{"big":["${'z'.repeat(2000)}", {"deep": "]"}]},\n{"a":2}]`);
    const got = await assertSameAtEveryCut(bytes, { format: 'json', maxRecordBytes: 300, maxRawBytes: 10 });
    assert.deepEqual(got.items.map((i) => (isProblem(i) ? [i.line, i.raw] : [i.line, i.record])), [[1, { a: 1 }], [2, '{"big":["z'], [3, { a: 2 }]]);
  });

  test('an array that does not close fails naming where the input ends and the open element', async () => {
    const got = await assertSameAtEveryCut(Buffer.from('[{"a":1},\n{"a":2},\n{"a":'), json);
    assert.deepEqual(got.items.map((i) => i.line), [1, 2]);
    assert.equal(
      got.error!.message,
      'the JSON array opened on line 1 does not close: the input ends on line 3 (byte 24) inside the element starting on line 3; the file is truncated or not one JSON array',
    );
    assert.match((await outcome('[{"a":1}\n', json)).error!.message, /does not close: the input ends on line 2 \(byte 9\);/);
    assert.match((await outcome('[{"a":"open string}]', json)).error!.message, /does not close/);
  });

  test('what breaks the array itself stops the read with line and byte', async () => {
    const cases: [string, RegExp][] = [
      ['{"a":1}', /expected a JSON array \(a file starting with "\["\), found "\{"; for one object per line use format "ndjson" \(line 1, byte 0\)/],
      ['\n\n  x', /found "x" \(line 3, byte 4\)/],
      ['[{"a":1} {"b":2}]', /expected "," or "\]" after the element starting on line 1, found "\{" \(line 1, byte 9\)/],
      ['[{"a":1},,{"b":2}]', /an empty element/],
      ['[{"a":1},]', /a trailing comma before "\]" \(line 1, byte 9\)/],
      ['[{"a":[1}]', /"\}" closes a "\[" in the element starting on line 1 \(line 1, byte 8\)/],
      ['[{"a":1}]\n[]', /"\[" after the array's closing "\]"; a file holds one array \(line 2, byte 10\)/],
      ['', /no JSON array: the input is empty/],
    ];
    for (const [text, message] of cases) {
      const got = await outcome(text, json);
      assert.match(got.error?.message ?? 'no error', message, text);
    }
  });

  test('a bracket-heavy element deeper than the matched depth is still read', async () => {
    const depth = 5000;
    const text = `[{"d":${'['.repeat(depth)}${']'.repeat(depth)}}]`;
    const [item] = await collect(text, json);
    assert.ok(item && !isProblem(item));
  });
});
