import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RawRowSerializer, toRawRow } from '../../lambdas/fetcher/raw-row';
import { MAX_RECORD_BYTES, packRecords, RecordBufferPool, RecordPacker } from '../../lambdas/fetcher/record-packer';
import { FireIncidentGenerator } from '../../local/fire-incidents-generator';

const ctx = { pointColumns: ['point'], runId: 'run-1', ingestedAt: '2026-11-22T10:00:00.000Z' };

describe('RawRowSerializer', () => {
  test('each line parses to exactly what toRawRow builds, for realistic rows', () => {
    const gen = new FireIncidentGenerator({ seed: 3 });
    const rows = Array.from({ length: 2_000 }, () => gen.next());
    assert.ok(rows.some((r) => r.point === undefined) && rows.some((r) => r.point !== undefined));
    const s = new RawRowSerializer(ctx);
    for (const row of rows) {
      const line = s.line(row);
      assert.ok(line.endsWith('}\n') && !line.slice(0, -1).includes('\n'));
      assert.deepEqual(JSON.parse(line), toRawRow(row, ctx));
    }
  });

  test('drops system fields wherever they stand, keeps nested objects whole, replaces reserved names, drops nulls, handles an empty row', () => {
    const s = new RawRowSerializer(ctx);
    const rows = [
      {
        ':id': 'row-aaaa-bbbb', ':updated_at': '2024-01-01T00:00:00.000Z', ':created_at': 'x', id: '1',
        point: { type: 'Point', coordinates: [-122.4, 37.7] },
        nested: { human_address: '{"city":"SF"}', inner: [{ deep: 'yes' }] },
        longitude: 'a source column that the point replaces', _run_id: 'spoofed',
      },
      { ':id': 'row-cccc-dddd', ':updated_at': '2024-01-01T00:00:01.000Z' },
      { id: '3', ':id': 'row-eeee-ffff', b: null, ':updated_at': '2024-01-01T00:00:02.000Z', c: 'x' },
    ];
    const first = JSON.parse(s.line(rows[0]!));
    assert.deepEqual(first, toRawRow(rows[0]!, ctx));
    assert.equal(first.longitude, -122.4);
    assert.equal(first._run_id, 'run-1');
    assert.deepEqual(first.nested, { human_address: '{"city":"SF"}', inner: [{ deep: 'yes' }] });
    assert.equal(Object.keys(first).filter((k) => k.startsWith(':')).length, 0);
    assert.deepEqual(JSON.parse(s.line(rows[2]!)), toRawRow(rows[2]!, ctx));
    assert.deepEqual(Object.keys(JSON.parse(s.line(rows[2]!))).slice(0, 2), ['id', 'c']);
    assert.deepEqual(JSON.parse(s.line(rows[1]!)), {
      _source_updated_at: '2024-01-01T00:00:01.000Z', _source_id: 'row-cccc-dddd', _ingested_at: ctx.ingestedAt, _run_id: 'run-1',
    });
  });
});

describe('packRecords', () => {
  test('records stay under the limit, never split a row, and concatenate back to the input', () => {
    const lines = Array.from({ length: 3_000 }, (_, i) => `{"i":${i},"s":"${'é'.repeat(i % 700)}"}\n`);
    const lengths = lines.map((l) => Buffer.byteLength(l));
    const max = 64 * 1024;
    const records = packRecords(lines, lengths, max);
    assert.ok(records.length > 1);
    for (const r of records) {
      assert.ok(r.length <= max);
      assert.equal(r.at(-1), 0x0a, 'a record ends at a row boundary');
    }
    assert.equal(Buffer.concat(records).toString('utf8'), lines.join(''));
    assert.ok(packRecords(lines, lengths).every((r) => r.length <= MAX_RECORD_BYTES));
    assert.throws(() => packRecords(['x'.repeat(11) + '\n'], [12], 10), /exceeds the Firehose record limit/);
  });
});

describe('RecordPacker (rows one at a time, as a page streams in)', () => {
  test('closes exactly the records packRecords builds, each as soon as the next row would not fit', () => {
    const lines = Array.from({ length: 3_000 }, (_, i) => `{"i":${i},"s":"${'é'.repeat((i * 7) % 900)}"}\n`);
    const lengths = lines.map((l) => Buffer.byteLength(l));
    const max = 64 * 1024;
    const packer = new RecordPacker(max);
    const streamed: Buffer[] = [];
    let size = 0;
    lines.forEach((line, i) => {
      const closed = packer.add(line, lengths[i]!);
      // A record closes on the row that would overflow it, never earlier.
      assert.equal(closed !== undefined, size + lengths[i]! > max, `row ${i}`);
      if (closed) {
        streamed.push(closed);
        size = 0;
      }
      size += lengths[i]!;
    });
    const last = packer.flush();
    if (last) streamed.push(last);
    assert.equal(packer.flush(), undefined, 'nothing is left after a flush');
    assert.deepEqual(streamed, packRecords(lines, lengths, max));
    assert.throws(() => new RecordPacker(10).add('x'.repeat(11) + '\n', 12), /exceeds the Firehose record limit/);
  });
});

describe('RecordBufferPool (record buffers reused once their batch is accepted)', () => {
  test('a released record\'s buffer is reused, and the next record holds exactly its own rows', () => {
    const pool = new RecordBufferPool(64);
    const packer = new RecordPacker(64, pool);
    const long = `{"a":"${'x'.repeat(52)}"}\n`; // 61 bytes: the next row closes the record
    assert.equal(packer.add(long, long.length), undefined);
    const first = packer.add('{"b":1}\n', 8)!;
    assert.equal(first.toString(), long);
    pool.release([first]);
    assert.equal(pool.available, 1);
    const second = packer.flush()!;
    assert.equal(second.toString(), '{"b":1}\n');
    assert.notEqual(second.buffer, first.buffer, 'taken before the release');
    packer.add('{"c":2}\n', 8);
    const third = packer.flush()!;
    assert.equal(third.buffer, first.buffer, 'the released buffer is reused');
    assert.equal(third.toString(), '{"c":2}\n', 'none of the earlier record\'s bytes show');
    assert.equal(pool.available, 0);
    // Buffers that are not the pool's (a Buffer the caller made) are not taken in.
    pool.release([Buffer.from('{"d":3}\n')]);
    assert.equal(pool.available, 0);
  });
});

describe('point columns with their own coordinate names', () => {
  test('the dataset\'s `coordinates` names are written; a source column with the default name is then kept', () => {
    const named = { pointColumns: [{ name: 'point', longitude: 'point_lon', latitude: 'point_lat' }], runId: 'r', ingestedAt: '2026-11-22T10:00:00.000Z' };
    const row = { ':id': 'row-aaaa-bbbb', ':updated_at': '2024-01-01T00:00:00.000Z', id: '1', longitude: '-122.5', latitude: '37.8', point: { type: 'Point', coordinates: [-122.4, 37.7] } };
    const line = JSON.parse(new RawRowSerializer(named).line(row)) as Record<string, unknown>;
    assert.deepEqual(line, toRawRow(row, named));
    assert.equal(line.point_lon, -122.4);
    assert.equal(line.point_lat, 37.7);
    assert.equal(line.longitude, '-122.5', "the source's own longitude survives");
    assert.equal(line.latitude, '37.8');
    // By name: the default derived names, which replace a source column of that name.
    const byName = JSON.parse(new RawRowSerializer({ ...named, pointColumns: ['point'] }).line(row)) as Record<string, unknown>;
    assert.equal(byName.longitude, -122.4);
  });
});
