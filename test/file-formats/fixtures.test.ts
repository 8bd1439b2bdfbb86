/**
 * Real files (test/fixtures/files/README.md names their origin): an Edinburgh STATS19 accidents
 * extract and Tableau's Superstore orders, both CRLF with quoted commas, the orders with a BOM,
 * doubled quotes and non-ASCII text. The counts were taken with Python's csv module, an
 * independent reader: 90 and 175 records, 11 and 49 values holding a comma, 216 and 0 empty values.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { isProblem, type RecordItem } from '../../runtime/file-formats';
import { collect, oneBytePieces, randomCuts, splitAt } from './read-helpers';

const fixture = (name: string): Buffer => readFileSync(path.join(import.meta.dirname, '..', 'fixtures', 'files', name));

async function readAllWays(bytes: Buffer): Promise<RecordItem[]> {
  const whole = await collect(bytes, { format: 'csv' });
  assert.ok(whole.every((i) => !isProblem(i)), JSON.stringify(whole.find(isProblem)));
  assert.deepEqual(await collect(oneBytePieces(bytes), { format: 'csv' }), whole);
  assert.deepEqual(await collect(splitAt(bytes, randomCuts(bytes.length, 300, 11)), { format: 'csv' }), whole);
  assert.deepEqual(await collect(splitAt(gzipSync(bytes), randomCuts(bytes.length / 4, 40, 5)), { format: 'csv' }), whole);
  return whole as RecordItem[];
}

const count = (items: RecordItem[], keep: (v: unknown) => boolean): number => items.reduce((n, i) => n + Object.values(i.record).filter(keep).length, 0);

test('STATS19 accidents (Edinburgh 2010): every record, quoted commas, empty fields absent', async () => {
  const items = await readAllWays(fixture('edinburgh-stats19-accidents-2010-head.csv'));
  assert.equal(items.length, 90);
  assert.deepEqual(items.map((i) => i.line), Array.from({ length: 90 }, (_, k) => k + 2));
  assert.equal(count(items, (v) => String(v).includes(',')), 11);
  // Empty values are absent: 90 records × 38 columns, less Python's 216 empty values.
  assert.equal(count(items, () => true), 90 * 38 - 216);
  const second = items[1]!.record;
  assert.equal(second.acc_ref, '4810');
  assert.equal(second.ped_xing_p, 'Pelican, puffin, toucan or similar non-junction pedestrian light crossing');
  assert.equal(second.place_reported, 'At scene');
  assert.equal('beat_no' in second, false);
});

test('Superstore orders: BOM, CRLF, quoted commas, doubled quotes, non-ASCII', async () => {
  const items = await readAllWays(fixture('superstore-orders-head.csv'));
  assert.equal(items.length, 175);
  assert.equal(count(items, (v) => String(v).includes(',')), 49);
  assert.equal(count(items, () => true), 175 * 21);
  const first = items[0]!.record;
  assert.equal(Object.keys(first)[0], 'Row ID');
  assert.equal(first['Order ID'], 'US-2019-103800');
  assert.equal(first['Product Name'], 'Message Book, Wirebound, Four 5 1/2" X 4" Forms/Pg., 200 Dupl. Sets/Book');
  assert.equal(items.find((i) => i.record['Row ID'] === '62')!.record['Product Name'], 'Eldon Imàge Series Desk Accessories, Clear');
  assert.equal(items.at(-1)!.record['Row ID'], '175');
});
