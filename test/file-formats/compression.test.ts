/**
 * Gzip: declared or detected by its magic bytes, cut anywhere (the magic bytes and a BOM
 * included); a file that is not gzip, or is truncated, fails clearly with where it stopped;
 * gzipped bytes read as plain text are refused rather than parsed as garbage.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { isProblem } from '../../runtime/file-formats';
import { assertSameAtEveryCut, collect, oneBytePieces, outcome, randomCuts, splitAt } from './read-helpers';

const text = '\uFEFFid,name\r\n1,"a, b"\r\n2,"x\ny"\r\n3,c\r\n';
const expected = {
  items: [
    { line: 2, record: { id: '1', name: 'a, b' } },
    { line: 3, record: { id: '2', name: 'x\ny' } },
    { line: 5, record: { id: '3', name: 'c' } },
  ],
};

test('gzip declared, or detected (auto), reads the same as the plain text at every cut', async () => {
  const gz = gzipSync(text);
  await assertSameAtEveryCut(gz, { format: 'csv', compression: 'gzip' }, expected);
  await assertSameAtEveryCut(gz, { format: 'csv', compression: 'auto' }, expected);
  await assertSameAtEveryCut(gz, { format: 'csv' }, expected);
  await assertSameAtEveryCut(Buffer.from(text), { format: 'csv', compression: 'auto' }, expected);
  await assertSameAtEveryCut(Buffer.from(text), { format: 'csv', compression: 'none' }, expected);
});

test('NDJSON and JSON arrays gzipped', async () => {
  assert.deepEqual(await collect(oneBytePieces(gzipSync('{"a":1}\n{"a":2}\n')), { format: 'ndjson' }), [
    { line: 1, record: { a: 1 } },
    { line: 2, record: { a: 2 } },
  ]);
  assert.deepEqual(await collect(gzipSync('[{"a":1}]'), { format: 'json', compression: 'gzip' }), [{ line: 1, record: { a: 1 } }]);
});

test('a large gzipped file arrives in many decompressed pieces and every record is read', async () => {
  const rows = Array.from({ length: 20_000 }, (_, i) => `${i},"name ${i}, with comma"`).join('\n');
  const gz = gzipSync(`id,name\n${rows}\n`);
  const got = await collect(splitAt(gz, randomCuts(gz.length, 50, 3)), { format: 'csv' });
  assert.equal(got.length, 20_000);
  assert.deepEqual(got[19_999], { line: 20_001, record: { id: '19999', name: 'name 19999, with comma' } });
  assert.ok(got.every((i) => !isProblem(i)));
});

test('concatenated gzip members (as some writers append) read as one text', async () => {
  const gz = Buffer.concat([gzipSync('a\n1\n'), gzipSync('2\n')]);
  assert.deepEqual(await collect(gz, { format: 'csv' }), [
    { line: 2, record: { a: '1' } },
    { line: 3, record: { a: '2' } },
  ]);
});

test('compression "gzip" on bytes that are not gzip fails saying so', async () => {
  const got = await outcome('id\n1\n', { format: 'csv', compression: 'gzip' });
  assert.match(got.error!.message, /^not valid gzip \(incorrect header check\) after 5 compressed bytes; if the file is not gzipped, use compression "none" or "auto"/);
  assert.deepEqual(got.items, []);
});

test('a corrupt gzip body fails, naming the compressed offset and how far the text was read', async () => {
  const gz = gzipSync(Array.from({ length: 5000 }, (_, i) => `{"i":${i}}`).join('\n'));
  const corrupt = Buffer.from(gz);
  for (let k = 200; k < 260; k++) corrupt[k] = 0xff;
  const got = await outcome(corrupt, { format: 'ndjson', name: 'events/2026-12-07.ndjson.gz' });
  assert.match(got.error!.message, /^events\/2026-12-07\.ndjson\.gz: not valid gzip \(.+\) after \d+ compressed bytes/);
});

test('a truncated gzip file fails clearly after the records it could read', async () => {
  const gz = gzipSync(Array.from({ length: 20_000 }, (_, i) => `{"i":${i}}`).join('\n'));
  const got = await outcome(gz.subarray(0, gz.length - 40), { format: 'ndjson' });
  assert.match(got.error!.message, /^the gzip stream is truncated \(unexpected end of file\) after \d+ compressed bytes; the text before it was read to line \d+ \(byte \d+\)/);
  assert.ok(got.error!.line! > 1);
  // Every record handed out before the failure is a whole, correct one.
  got.items.forEach((item, i) => assert.deepEqual(item, { line: i + 1, record: { i } }));
});

test('gzipped bytes with compression "none" are refused, not parsed as garbage', async () => {
  const got = await outcome(gzipSync('a\n1\n'), { format: 'csv', compression: 'none' });
  assert.match(got.error!.message, /starts with gzip's magic bytes \(1f 8b\) but compression is "none"/);
});

test('a UTF-16 file is refused with the reason', async () => {
  const got = await outcome(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('a\n', 'utf16le')]), { format: 'csv' });
  assert.match(got.error!.message, /UTF-16/);
});

test('an input of one byte, or none, is handled by every compression setting', async () => {
  assert.deepEqual(await collect('a', { format: 'csv' }), []);
  assert.deepEqual(await collect('', { format: 'ndjson' }), []);
  assert.match((await outcome('', { format: 'csv', compression: 'gzip' })).error!.message, /gzip stream is truncated/);
});

test('a source that fails mid-stream passes its own error through, gzipped or not', async () => {
  const boom = new Error('socket hang up');
  async function* failing(first: Buffer): AsyncGenerator<Buffer> {
    yield first;
    throw boom;
  }
  const { readRecords } = await import('../../runtime/file-formats');
  for (const first of [Buffer.from('a\n1\n'), gzipSync('a\n1\n').subarray(0, 12)]) {
    await assert.rejects(async () => {
      for await (const item of readRecords(failing(first), { format: 'csv' })) void item;
    }, (err) => err === boom);
  }
});

test('a consumer that stops early releases the source, gzipped or not', async () => {
  const { readRecords } = await import('../../runtime/file-formats');
  for (const gz of [false, true]) {
    let released = false;
    let pulled = 0;
    let blockBytes = 0;
    async function* endless(): AsyncGenerator<Buffer> {
      try {
        const rows = Buffer.from('1,x\n'.repeat(10_000));
        const block = gz ? gzipSync(rows) : rows;
        blockBytes = block.length;
        yield gz ? gzipSync('a,b\n') : Buffer.from('a,b\n');
        for (;;) {
          pulled++;
          yield block;
        }
      } finally {
        released = true;
      }
    }
    let seen = 0;
    for await (const item of readRecords(endless(), { format: 'csv' })) {
      assert.deepEqual(item, { line: 2, record: { a: '1', b: 'x' } });
      if (++seen === 1) break;
    }
    // The gunzip side may have one more block in flight; it is released when that block arrives.
    for (let i = 0; i < 50 && !released; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(released, true, `source released (${gz ? 'gzip' : 'plain'})`);
    // Plain: the block being parsed and at most one more. Gzipped: what gunzip's write buffer holds
    // (~16 KiB of these ~100-byte blocks, each 40 KB of text) before backpressure stops the feeding.
    const bound = gz ? Math.ceil((64 * 1024) / blockBytes) : 3;
    assert.ok(pulled <= bound, `pulled ${pulled} blocks of ${blockBytes} bytes (${gz ? 'gzip' : 'plain'})`);
  }
});
