/**
 * `npm run dataset -- add <file URL>` against a real HTTP server (node:http in this test): the
 * sample is bounded (bytes served are counted), CSV (BOM, quoted commas, an embedded newline),
 * gzipped NDJSON and JSON arrays become definitions the loader accepts and the file adapter reads
 * by the declared names; what the sample cannot decide is a QUESTION with exit 2 and nothing
 * written; an unreachable host is exit 1 with one clear line.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { readFetcherConfig } from '../../lambdas/fetcher/config';
import { openSource } from '../../lambdas/fetcher/sources/registry';
import type { SourceRow } from '../../lambdas/fetcher/sources/source-adapter';
import type { DatasetConfig } from '../../runtime/dataset-config';
import { fetcherEnvironment } from '../../runtime/fetcher-environment';
import { runAdd, writtenDefinition, type AddRun } from '../support/dataset-add';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'files');

interface Served {
  body: Buffer | (() => Generator<Buffer>);
  /** Answer 200 with the whole body whatever the Range header says (as some servers do). */
  ignoreRange?: boolean;
}

/** Bytes written to the socket per path: what the command made the server send. */
const servedBytes = new Map<string, number>();
const files = new Map<string, Served>();
let server: Server;
let origin: string;

before(async () => {
  server = createServer((req, res) => {
    const file = files.get(req.url ?? '');
    if (!file) {
      res.writeHead(404).end('not found');
      return;
    }
    const count = (n: number) => servedBytes.set(req.url!, (servedBytes.get(req.url!) ?? 0) + n);
    if (typeof file.body === 'function') {
      // A large body written piece by piece with backpressure: the count is what left before the client hung up.
      res.writeHead(200, { 'Content-Type': 'text/csv' });
      const pieces = file.body();
      let closed = false;
      res.on('close', () => (closed = true));
      const pump = (): void => {
        for (;;) {
          if (closed) return;
          const next = pieces.next();
          if (next.done) {
            res.end();
            return;
          }
          count(next.value.length);
          if (!res.write(next.value)) {
            res.once('drain', pump);
            return;
          }
        }
      };
      pump();
      return;
    }
    const body = file.body;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range && !file.ignoreRange) {
      const start = Number(range[1]);
      const end = Math.min(range[2] ? Number(range[2]) : body.length - 1, body.length - 1);
      if (start >= body.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
        return;
      }
      const part = body.subarray(start, end + 1);
      count(part.length);
      res.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${body.length}`, 'Content-Length': part.length }).end(part);
      return;
    }
    count(body.length);
    res.writeHead(200, { 'Content-Length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

type Run = AddRun;
const add = (urlPath: string, ...flags: string[]): Promise<Run> => runAdd(urlPath.startsWith('http') ? urlPath : origin + urlPath, flags);
const written = writtenDefinition;

const typesOf = (d: DatasetConfig) => Object.fromEntries(d.columns.map((c) => [c.name, c.type]));

/** Every row the fetcher's file adapter reads for the definition, as it would deliver them. */
async function rowsThroughAdapter(dataset: DatasetConfig): Promise<SourceRow[]> {
  const env = fetcherEnvironment({ dataset, deliveryStreamName: 'stream', stateLocation: 's3://raw', metricsNamespace: 'Test' });
  const source = openSource(readFetcherConfig(env));
  const rows: SourceRow[] = [];
  await source.streamPage({ after: null, limit: 1_000_000, onRow: (row) => void rows.push(row) });
  return rows;
}

// 24 orders: a BOM, CRLF, quoted commas and doubled quotes, one embedded newline, codes with
// leading zeros, one empty amount, ISO timestamps without a zone.
const ORDER_ROWS = Array.from({ length: 24 }, (_, i) => {
  const id = i + 1;
  const note = id === 5 ? '"two\r\nlines"' : id % 3 === 0 ? `"Smith, ${id} ""Jr"""` : `plain ${id}`;
  const amount = id === 7 ? '' : `${id}.5`;
  return `${id},${note},${amount},2025-0${1 + (id % 9)}-1${id % 10}T08:30:00,${id % 2 === 0},0${1000 + id}`;
});
const ORDERS_CSV = Buffer.from(`\ufefforder_id,note,amount,updated_at,paid,zip\r\n${ORDER_ROWS.join('\r\n')}\r\n`);

describe('add <file URL>: definitions the loader accepts', () => {
  test('a CSV with a BOM, quoted commas and an embedded newline: every field typed by its values, key and event time proposed, read back by the adapter under the declared names', async () => {
    files.set('/exports/orders.csv', { body: ORDERS_CSV });
    const r = await add('/exports/orders.csv');
    const d = written(r);
    assert.equal(d.name, 'orders');
    assert.deepEqual(d.source, { type: 'file', url: `${origin}/exports/orders.csv`, format: 'csv' });
    assert.deepEqual(typesOf(d), { order_id: 'integer', note: 'text', amount: 'number', updated_at: 'floating_timestamp', paid: 'checkbox', zip: 'text' });
    assert.equal(d.primaryKey, 'order_id');
    assert.equal(d.eventTimeColumn, 'updated_at');
    // 24 records: the embedded newline did not split one, the BOM did not rename the first field.
    assert.match(r.out, /sampled: 24 record\(s\), \d+ bytes of the file; the whole source/);
    assert.match(r.out, /zip: text \(numeric, but with leading zeros/);
    const rows = await rowsThroughAdapter(d);
    assert.equal(rows.length, 24);
    for (const row of rows) for (const c of d.columns) if (row[c.name] === undefined) assert.equal(c.name, 'amount', `row ${String(row.order_id)} lacks ${c.name}`);
    assert.equal(rows[4]!.note, 'two\r\nlines');
  });

  test('gzipped NDJSON: gzip detected from the bytes, a nested object a json column, Z timestamps fixed', async () => {
    const lines = Array.from({ length: 30 }, (_, i) =>
      JSON.stringify({ sku: `S-${i}`, line_id: i + 1, qty: i % 4, price: i + 0.25, shipped: i % 2 === 0, at: `2025-03-0${1 + (i % 9)}T10:00:0${i % 10}Z`, address: { city: 'Leeds', zip: 'LS1' } }),
    );
    files.set('/feed/lines.ndjson.gz', { body: gzipSync(`${lines.join('\n')}\n`) });
    const r = await add('/feed/lines.ndjson.gz');
    const d = written(r);
    assert.equal(d.name, 'lines');
    assert.deepEqual(d.source, { type: 'file', url: `${origin}/feed/lines.ndjson.gz`, format: 'ndjson' });
    assert.deepEqual(typesOf(d), { sku: 'text', line_id: 'integer', qty: 'integer', price: 'number', shipped: 'checkbox', at: 'fixed_timestamp', address: 'json' });
    // Two columns are distinct in the sample: the one named like an identifier is proposed, the other named.
    assert.equal(d.primaryKey, 'line_id');
    assert.match(r.out, /primary key: line_id \(named like a row identifier.*also distinct in the sample: sku, price; choose another with --primary-key/);
    assert.equal(d.eventTimeColumn, 'at');
    assert.equal((await rowsThroughAdapter(d)).length, 30);
  });

  test('a JSON array, and a .json file that is NDJSON read as what it is, with a note', async () => {
    const records = Array.from({ length: 25 }, (_, i) => ({ id: `r${i}`, modified: `2024-12-${String(1 + i).padStart(2, '0')}T00:00:00`, created: '2024-01-01T00:00:00', score: i }));
    files.set('/api/items.json', { body: Buffer.from(JSON.stringify(records, null, 1)) });
    const d = written(await add('/api/items.json'));
    assert.deepEqual(d.source, { type: 'file', url: `${origin}/api/items.json`, format: 'json' });
    assert.equal(d.primaryKey, 'id');
    // Two timestamps: the one named like an update time is the event time.
    assert.equal(d.eventTimeColumn, 'modified');

    files.set('/api/lines.json', { body: Buffer.from(records.map((x) => JSON.stringify(x)).join('\n')) });
    const r = await add('/api/lines.json');
    assert.deepEqual(written(r).source, { type: 'file', url: `${origin}/api/lines.json`, format: 'ndjson' });
    assert.match(r.out, /format: ndjson \(the \.json file is not one JSON array but one object per line/);
  });
});

describe('add <file URL>: a bounded sample', () => {
  const header = 'id,name,updated_at\n';
  const line = (i: number) => `${i},"name, ${i}",2025-01-01T00:00:${String(i % 60).padStart(2, '0')}\n`;
  const big = Buffer.from(header + Array.from({ length: 20_000 }, (_, i) => line(i + 1)).join(''));

  test('a file larger than --sample-bytes: the server sends the bound and one byte more, the record the cut ended is dropped', async () => {
    files.set('/big/events.csv', { body: big });
    // Two bounds: one ends inside a timestamp (the reader hands out the cut record, which is dropped),
    // one inside a quoted name (the reader refuses the unclosed quote; what it handed out is whole).
    const text = big.toString('latin1');
    const inTimestamp = text.indexOf('2025', 9_000) + 6;
    const inQuotes = text.indexOf('"name', 9_000) + 4;
    for (const [bound, dropped] of [[inTimestamp, true], [inQuotes, false]] as const) {
      servedBytes.delete('/big/events.csv');
      const r = await add('/big/events.csv', '--sample-bytes', String(bound), '--force');
      const d = written(r);
      assert.equal(servedBytes.get('/big/events.csv'), bound + 1, 'a Range request for the bound plus one byte');
      // Whole records in the first `bound` bytes: the lines a newline ends there, less the header.
      const whole = text.slice(0, bound).split('\n').length - 2;
      assert.ok(whole > 100 && whole < 20_000);
      const note = `sampled: ${whole} record(s), ${bound} bytes of the file; the source is larger, cut at --sample-bytes ${bound}${dropped ? ' (the record the cut ended was dropped)' : ''}\n`;
      assert.ok(r.out.includes(note), `${note} in ${r.out}`);
      assert.equal(d.primaryKey, 'id');
    }
  });

  test('a server that ignores Range: the body is cut off at the bound, not read to its end', async () => {
    const total = 40 * 1024 * 1024;
    const piece = Buffer.from(Array.from({ length: 2_000 }, (_, i) => line(i + 1)).join(''));
    files.set('/huge/events.csv', {
      body: function* () {
        yield Buffer.from(header);
        for (let sent = 0; sent < total; sent += piece.length) yield piece;
      },
    });
    servedBytes.delete('/huge/events.csv');
    const r = await add('/huge/events.csv', '--sample-bytes', '20000');
    written(r);
    assert.match(r.out, /20000 bytes of the file; the source is larger, cut at --sample-bytes 20000/);
    // Give the server a moment to see the close; what it wrote is bounded by socket buffers, far below the body.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const sent = servedBytes.get('/huge/events.csv') ?? 0;
    assert.ok(sent < total / 4, `the server wrote ${sent} of ${total} bytes before the client hung up`);
  });

  test('a cut sample too small to trust for a key is a question, not a proposal', async () => {
    files.set('/big/events2.csv', { body: big });
    const r = await add('/big/events2.csv', '--sample-bytes', '400');
    assert.equal(r.code, 2);
    assert.deepEqual(readdirSync(r.dir), [], 'nothing written');
    assert.match(r.err, /QUESTION primary key: only \d+ record\(s\) of a larger source were sampled, too few to trust that values are distinct; raise --sample-bytes, or name the key with --primary-key <column>/);
    // Answered: the definition is written.
    assert.equal(written(await add('/big/events2.csv', '--sample-bytes', '400', '--primary-key', 'id')).primaryKey, 'id');
  });
});

describe('add <file URL>: questions and failures', () => {
  test('an ambiguous key is a question naming the flag; exit 2 and nothing written; the answer writes it', async () => {
    const rows = Array.from({ length: 25 }, (_, i) => `C${i},Label ${i},2025-01-01T00:00:00`);
    files.set('/codes.csv', { body: Buffer.from(`code,label,updated_at\n${rows.join('\n')}\n`) });
    const r = await add('/codes.csv');
    assert.equal(r.code, 2);
    assert.deepEqual(readdirSync(r.dir), []);
    assert.match(r.err, /^dataset: 1 question\(s\) to answer before a definition of http:\/\/127\.0\.0\.1:\d+\/codes\.csv can be written; nothing written\n/);
    assert.match(r.err, /QUESTION primary key: 2 columns are present and distinct in all 25 sampled records \(code, label\) and none is named like a row identifier: name the one that identifies a row with --primary-key <column>/);
    assert.match(r.err, /sampled: 25 record\(s\), \d+ bytes of the file; the whole source/);
    assert.equal(written(await add('/codes.csv', '--primary-key', 'code')).primaryKey, 'code');
  });

  test('a malformed record in the sample is counted and named, and left out of the inference', async () => {
    const rows = Array.from({ length: 25 }, (_, i) => (i === 9 ? `${i},oops` : `${i},${i * 2},2025-01-01T00:00:00`));
    files.set('/ragged.csv', { body: Buffer.from(`id,count,updated_at\n${rows.join('\n')}\n`) });
    const r = await add('/ragged.csv');
    const d = written(r);
    // "oops" would have made count text; the ragged line is the loader's to quarantine.
    assert.equal(d.columns.find((c) => c.name === 'count')?.type, 'integer');
    assert.match(r.out, /sampled: 24 record\(s\)/);
    assert.match(r.out, /1 sampled record\(s\) are malformed and were left out of the inference \(the loader quarantines such rows\): http:\/\/127\.0\.0\.1:\d+\/ragged\.csv line 11: /);
  });

  test('several timestamps without a telling name are a question for --event-time', async () => {
    const rows = Array.from({ length: 25 }, (_, i) => `${i},2025-01-01T00:00:00,2025-02-01T00:00:00`);
    files.set('/two-times.csv', { body: Buffer.from(`id,opened,closed\n${rows.join('\n')}\n`) });
    const r = await add('/two-times.csv');
    assert.equal(r.code, 2);
    assert.match(r.err, /QUESTION event time: 2 timestamp columns could be the event time \(opened, closed\): name it with --event-time <column>/);
    assert.equal(written(await add('/two-times.csv', '--event-time', 'closed')).eventTimeColumn, 'closed');
  });

  test('unreachable host: exit 1, one line naming the host and the reason; a missing file: exit 2', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const r = await add(`http://127.0.0.1:${port}/data/orders.csv`);
    assert.equal(r.code, 1);
    assert.equal(r.err, `dataset: cannot reach 127.0.0.1:${port} (ECONNREFUSED) for http://127.0.0.1:${port}/data/orders.csv: check the host name and the network\n`);
    const missing = await add('/nowhere.csv');
    assert.equal(missing.code, 2);
    assert.match(missing.err, /^dataset: no file at http:\/\/127\.0\.0\.1:\d+\/nowhere\.csv \(HTTP 404\): check the URL\n$/);
  });

  test('a Socrata API URL still reads the portal metadata; flags of the other kind are refused', async () => {
    const r = await add('https://data.sfgov.org/resource/wr8u-xric.json');
    assert.equal(r.code, 1, 'went to fetchJson (which fails in this test), not to the file sampler');
    assert.match(r.err, /a file source must not ask for Socrata metadata/);
    const flags = await add('https://data.sfgov.org/resource/wr8u-xric.json', '--sample-bytes', '10');
    assert.equal(flags.code, 2);
    assert.match(flags.err, /--sample-bytes is for file and S3 sources/);
    assert.match((await add('/codes.csv', '--mode', 'snapshot')).err, /--mode is for S3 sources/);
    for (const bad of ['0', '1e9', 'lots']) {
      const r = await add('/codes.csv', '--sample-bytes', bad);
      assert.equal(r.code, 2);
      assert.equal(r.err, `dataset: --sample-bytes must be a whole number of bytes from 1 to 268435456 (256 MiB), got "${bad}"\n`);
    }
  });
});

describe('add <file URL>: real published files (test/fixtures/files/)', () => {
  test('Superstore orders (BOM, headers with capitals and spaces): each header is read into a column of its own; its dd/mm/yy dates are the one question', async () => {
    files.set('/Sample-Superstore.csv', { body: readFileSync(path.join(FIXTURES, 'superstore-orders-head.csv')) });
    const r = await add('/Sample-Superstore.csv');
    assert.equal(r.code, 2);
    assert.deepEqual(readdirSync(r.dir), []);
    assert.match(r.err, /sampled: 175 record\(s\)/);
    assert.match(r.err, /columns: 21 field\(s\) whose names are not column names are read into columns of their own \(columns\[\]\.field\): "Row ID" -> row_id, "Order ID" -> order_id, "Order Date" -> order_date/);
    assert.match(r.err, /primary key: row_id \(named like a row identifier, present and distinct in all 175 sampled records/);
    assert.match(r.err, /QUESTION event time: .*order_date \(e\.g\. "03\/01\/19"\), ship_date .* look like dates in another form/);
    assert.equal(r.err.match(/QUESTION/g)?.length, 1, r.err);
  });

  test('headers that are not column names become columns[].field in a definition the loader accepts', async () => {
    files.set('/orders-export.csv', { body: Buffer.from('Order ID,Order Date,Customer Name,Sales\r\n' + Array.from({ length: 30 }, (_, i) => `A-${i},2026-01-${String((i % 28) + 1).padStart(2, '0')}T10:00:00,"Smith, Jo",${i}.5`).join('\r\n') + '\r\n') });
    const r = await add('/orders-export.csv', '--primary-key', 'order_id');
    assert.equal(r.code, 0, r.err);
    const written = JSON.parse(readFileSync(path.join(r.dir, 'orders-export.json'), 'utf8')) as { columns: { name: string; field?: string }[]; eventTimeColumn: string };
    assert.deepEqual(
      written.columns.map((c) => [c.name, c.field]),
      [
        ['order_id', 'Order ID'],
        ['order_date', 'Order Date'],
        ['customer_name', 'Customer Name'],
        ['sales', 'Sales'],
      ],
    );
    assert.equal(written.eventTimeColumn, 'order_date');
  });

  test('Edinburgh STATS19 accidents: two identifier-like columns and dd/mm/yyyy dates are questions, not guesses', async () => {
    files.set('/accident.csv', { body: readFileSync(path.join(FIXTURES, 'edinburgh-stats19-accidents-2010-head.csv')) });
    const r = await add('/accident.csv', '--exclude', 'Postcode');
    assert.equal(r.code, 2);
    assert.deepEqual(readdirSync(r.dir), []);
    assert.match(r.err, /sampled: 90 record\(s\), 39847 bytes of the file; the whole source/);
    assert.match(r.err, /QUESTION primary key: 2 columns named like row identifiers are present and distinct in all 90 sampled records \(text_id, acc_ref\): name the one that identifies a row with --primary-key <column>/);
    assert.match(r.err, /QUESTION event time: no column holds ISO-8601 date-times .*; a_date \(e\.g\. "02\/01\/2010"\).* look like dates in another form/);
    assert.doesNotMatch(r.err, /QUESTION column names/, '--exclude took the one invalid header out');
    const answered = await add('/accident.csv', '--exclude', 'Postcode', '--primary-key', 'acc_ref');
    assert.match(answered.err, /primary key: acc_ref \(--primary-key\); present and distinct in all 90 sampled records/);
    assert.match(answered.err, /^dataset: 1 question\(s\)/, 'the event time is still open');
    const without = await add('/accident.csv');
    assert.match(without.err, /"Postcode" -> postcode/, 'without --exclude the capitalised header is read into a column of its own');
  });
});
