/**
 * CSV as RFC 4180 writes it, and as files in the wild break it: every corner read the same
 * whichever way the bytes are cut into pieces, malformed records as problem rows with their line,
 * and the files that cannot be read on failing with the line named.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isProblem, readRecords } from '../../runtime/file-formats';
import { assertSameAtEveryCut, collect, outcome } from './read-helpers';

const csv = { format: 'csv' } as const;
const records = (lines: [number, Record<string, unknown>][]) => ({ items: lines.map(([line, record]) => ({ line, record })) });

describe('CSV: RFC 4180 corners, at every cut', () => {
  test('quoted fields with the delimiter, doubled quotes, CRLF and LF inside quotes, CRLF line ends', async () => {
    const bytes = Buffer.from('id,name,note\r\n1,"Smith, J.","said ""hi"""\r\n2,"two\r\nlines","and\nanother"\r\n3,plain,x\r\n');
    await assertSameAtEveryCut(bytes, csv, records([
      [2, { id: '1', name: 'Smith, J.', note: 'said "hi"' }],
      [3, { id: '2', name: 'two\r\nlines', note: 'and\nanother' }],
      // The two LFs quoted in record 2 (line 3) move record 3 down to line 6.
      [6, { id: '3', name: 'plain', note: 'x' }],
    ]));
  });

  test('LF line ends, no newline at the end, and a lone CR as a line end', async () => {
    await assertSameAtEveryCut(Buffer.from('a,b\n1,2\n3,4'), csv, records([[2, { a: '1', b: '2' }], [3, { a: '3', b: '4' }]]));
    await assertSameAtEveryCut(Buffer.from('a,b\r1,2\r3,4\r'), csv, records([[2, { a: '1', b: '2' }], [3, { a: '3', b: '4' }]]));
    await assertSameAtEveryCut(Buffer.from('a,b\r\n1,2\n3,4\r5,6'), csv, records([[2, { a: '1', b: '2' }], [3, { a: '3', b: '4' }], [4, { a: '5', b: '6' }]]));
  });

  test('a UTF-8 BOM is not part of the first column name; multi-byte characters survive any cut', async () => {
    const bytes = Buffer.from('\uFEFFnom,ville\r\n"Zoë","Besançon ”quoted”"\r\n');
    const got = await assertSameAtEveryCut(bytes, csv, records([[2, { nom: 'Zoë', ville: 'Besançon ”quoted”' }]]));
    assert.deepEqual(Object.keys((got.items[0] as { record: object }).record), ['nom', 'ville']);
  });

  test('an empty unquoted field is absent (null); an empty quoted field is the empty string', async () => {
    await assertSameAtEveryCut(Buffer.from('a,b,c\n,"",x\n1,,\n"",,""\n'), csv, records([
      [2, { b: '', c: 'x' }],
      [3, { a: '1' }],
      [4, { a: '', c: '' }],
    ]));
  });

  test('blank lines are no records; quoted header names; spaces are kept', async () => {
    await assertSameAtEveryCut(Buffer.from('\n"first name", last \n\n  Ann ,Lee\r\n\r\n\nBo,"Chu"\n\n'), csv, records([
      [4, { 'first name': '  Ann ', ' last ': 'Lee' }],
      [7, { 'first name': 'Bo', ' last ': 'Chu' }],
    ]));
  });

  test('a header and no rows is an empty file of records, not an error', async () => {
    assert.deepEqual(await outcome('a,b\r\n', csv), { items: [] });
    assert.deepEqual(await outcome('a,b', csv), { items: [] });
  });

  test('another delimiter (tab, semicolon)', async () => {
    await assertSameAtEveryCut(Buffer.from('a\tb\n"x\ty"\t2\n'), { format: 'csv', delimiter: '\t' }, records([[2, { a: 'x\ty', b: '2' }]]));
    assert.deepEqual(await collect('a;b\n1,5;2\n', { format: 'csv', delimiter: ';' }), [{ line: 2, record: { a: '1,5', b: '2' } }]);
  });
});

describe('CSV: malformed records are problem rows, and reading goes on', () => {
  test('a ragged row (too few, too many fields) names its line and keeps its raw text', async () => {
    const bytes = Buffer.from('a,b,c\n1,2,3\n4,5\n"multi\nline",6,7,8\n9,10,11\n');
    await assertSameAtEveryCut(bytes, csv, {
      items: [
        { line: 2, record: { a: '1', b: '2', c: '3' } },
        { line: 3, problem: 'has 2 fields, the header has 3', raw: '4,5' },
        { line: 4, problem: 'has 4 fields, the header has 3', raw: '"multi\nline",6,7,8' },
        { line: 6, record: { a: '9', b: '10', c: '11' } },
      ],
    });
  });

  test('bad quoting: a quote inside an unquoted field, text after a closing quote', async () => {
    const bytes = Buffer.from('a,b\r\nab"c,1\r\n"x"y,2\r\nok,3\r\n');
    await assertSameAtEveryCut(bytes, csv, {
      items: [
        { line: 2, problem: 'a quote inside the unquoted field 1 (quote the whole field and double the quote)', raw: 'ab"c,1' },
        { line: 3, problem: 'text after the closing quote of field 1', raw: '"x"y,2' },
        { line: 4, record: { a: 'ok', b: '3' } },
      ],
    });
  });

  test('bytes that are not UTF-8 are a problem, not a silent U+FFFD', async () => {
    const bytes = Buffer.concat([Buffer.from('a,b\n1,caf'), Buffer.from([0xe9]), Buffer.from('\n2,ok\n')]);
    const got = await assertSameAtEveryCut(bytes, csv);
    assert.equal(got.items.length, 2);
    assert.deepEqual({ ...got.items[0], raw: undefined }, { line: 2, problem: 'field 2 is not valid UTF-8', raw: undefined });
    assert.deepEqual(got.items[1], { line: 3, record: { a: '2', b: 'ok' } });
    // A real U+FFFD in the file is text like any other.
    assert.deepEqual(await collect('a\n\uFFFD\n', csv), [{ line: 2, record: { a: '\uFFFD' } }]);
  });

  test('a record over maxRecordBytes is a problem row with its raw text cut, never held; the next record is read', async () => {
    const big = 'x'.repeat(5000);
    const bytes = Buffer.from(`a,b\n1,small\n2,"${big}\n${big}"\n3,after\n`);
    const got = await assertSameAtEveryCut(bytes, { format: 'csv', maxRecordBytes: 1000, maxRawBytes: 50 });
    assert.deepEqual(got.items[0], { line: 2, record: { a: '1', b: 'small' } });
    const problem = got.items[1]!;
    assert.ok(isProblem(problem));
    assert.equal(problem.line, 3);
    assert.match(problem.problem, /^record larger than maxRecordBytes \(1000 bytes\).*raw text cut to the first 50 of 10005 bytes/);
    assert.equal(problem.raw, `2,"${'x'.repeat(47)}`);
    // The quoted newline inside the skipped record still counts.
    assert.deepEqual(got.items[2], { line: 5, record: { a: '3', b: 'after' } });
    assert.equal(got.items.length, 3);
  });

  test('a record of exactly maxRecordBytes is read', async () => {
    assert.deepEqual(await collect('a\n12345\n', { format: 'csv', maxRecordBytes: 5 }), [{ line: 2, record: { a: '12345' } }]);
    const [over] = await collect('a\n123456\n', { format: 'csv', maxRecordBytes: 5 });
    assert.ok(over && isProblem(over));
  });
});

describe('CSV: files that cannot be read on fail with the line named', () => {
  test('a quoted field open at the end of the input (truncated file) names the line its record starts on', async () => {
    const got = await assertSameAtEveryCut(Buffer.from('a,b\n1,2\n3,"never\nclosed\n'), csv);
    assert.deepEqual(got.items, [{ line: 2, record: { a: '1', b: '2' } }]);
    assert.match(got.error!.message, /quoted field 2 of the record starting on line 3 is not closed: the input ends inside it \(line 5, byte 24\)/);
    assert.equal(got.error!.line, 3);
    assert.equal(got.error!.byteOffset, 8);
  });

  test('a header naming a column twice, or not at all', async () => {
    assert.match((await outcome('id,name,id\n1,2,3\n', csv)).error!.message, /names "id" twice \(columns 1 and 3\)/);
    assert.match((await outcome('id,,x\n', csv)).error!.message, /no name for column 2/);
    assert.match((await outcome('id,"  "\n', csv)).error!.message, /no name for column 2/);
    assert.match((await outcome('id,x,\n', csv)).error!.message, /no name for column 3/);
    assert.match((await outcome('\n\nid,ab"c\n', csv)).error!.message, /the header row \(line 3\) is malformed: a quote inside the unquoted field 2/);
  });

  test('an empty input has no header row', async () => {
    const got = await outcome('', csv);
    assert.match(got.error!.message, /no header row/);
    assert.match((await outcome('\r\n\n', csv)).error!.message, /no header row/);
  });

  test('the file name, when given, starts the message', async () => {
    assert.match((await outcome('a,a\n', { format: 'csv', name: 's3://b/k.csv' })).error!.message, /^s3:\/\/b\/k\.csv: the header row/);
  });

  test('bad options are refused before reading', async () => {
    for (const bad of [{ delimiter: '"' }, { delimiter: ',,' }, { delimiter: '\n' }, { maxRecordBytes: 0 }, { maxRawBytes: 1.5 }, { compression: 'zip' }, { format: 'xml' }]) {
      await assert.rejects(collect('a\n', { format: 'csv', ...bad } as never), /readRecords: /);
    }
  });
});

test('a Node Readable is read as well as an async iterable, and strings pieces too', async () => {
  const { Readable } = await import('node:stream');
  const got: unknown[] = [];
  for await (const item of readRecords(Readable.from(['a,b\n1,', '2\n']), csv)) got.push(item);
  assert.deepEqual(got, [{ line: 2, record: { a: '1', b: '2' } }]);
});
