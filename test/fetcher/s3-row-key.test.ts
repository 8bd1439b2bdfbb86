/**
 * The S3 source's pieces without a server: the key of a row (one top-level field, a nested path,
 * a composite key as one text that no other tuple gives), the order of positions (S3 lists keys
 * by their UTF-8 bytes) and the `s3://bucket/prefix/` form.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RowKeyBuilder } from '../../lambdas/fetcher/sources/s3/row-key';
import { parseS3Url } from '../../runtime/s3-location';
import { compareKeys, S3_OBJECT_POSITIONS, S3_SNAPSHOT_POSITIONS } from '../../lambdas/fetcher/sources/s3/s3-positions';

describe('the key of an S3 source row', () => {
  test('a top-level field is the key as it is, written nowhere', () => {
    const key = new RowKeyBuilder({ parts: 'id' });
    assert.deepEqual([key.column, key.computed], ['id', false]);
    assert.deepEqual(key.of({ id: 7 }), { ok: true, value: 7 });
  });

  test('a nested path or a composite key needs the field it is written to', () => {
    assert.throws(() => new RowKeyBuilder({ parts: 'data.id' }), /nested or composite: name the field/);
    assert.throws(() => new RowKeyBuilder({ parts: ['on', 'at'] }), /nested or composite: name the field/);
    assert.throws(() => new RowKeyBuilder({ parts: ['on', 'at'], column: ':key' }), /may not start with ":"/);
    assert.throws(() => new RowKeyBuilder({ parts: ['on', 'on'], column: 'k' }), /named twice/);
    const nested = new RowKeyBuilder({ parts: 'data.id', column: 'vehicle_id' });
    assert.deepEqual([nested.column, nested.computed], ['vehicle_id', true]);
    assert.deepEqual(nested.of({ data: { id: 'V-1' } }), { ok: true, value: 'V-1' });
  });

  test('a composite key is the JSON text of its values: different tuples never give the same text', () => {
    const key = new RowKeyBuilder({ parts: ['on', 'data.id', 'at'], column: 'event_key' });
    const text = (on: unknown, id: unknown, at: unknown) => {
      const k = key.of({ on, data: { id }, at });
      assert.ok(k.ok);
      return k.value;
    };
    const tuples: [unknown, unknown, unknown][] = [
      ['a,b', 'c', 'x'],
      ['a', 'b,c', 'x'],
      ['a', '1', 'x'],
      ['a', 1, 'x'],
      ['a', true, 'x'],
      ['a', 'true', 'x'],
      ['a"', 'b', 'x'],
      ['a', '"b', 'x'],
      ['a\\', '","b', 'x'],
      ['a\\","', 'b', 'x'],
    ];
    const texts = tuples.map((t) => text(...t));
    assert.equal(new Set(texts).size, tuples.length, texts.join('  '));
    assert.deepEqual(JSON.parse(String(texts[0])), ['a,b', 'c', 'x'], 'the text reads back as the tuple');
  });

  test('a missing part leaves the key absent, a non-scalar part gives an object: the fetcher quarantines each under its reason', () => {
    const key = new RowKeyBuilder({ parts: ['on', 'data.id'], column: 'k' });
    const missing = key.of({ on: '', data: {} });
    assert.equal(missing.ok, false);
    assert.equal(missing.value, undefined);
    assert.deepEqual(!missing.ok && missing.problems.map((p) => p.detail), ['key part "on" is empty', 'key part "data.id" is absent']);
    const invalid = key.of({ on: 'x', data: { id: [1] } });
    assert.equal(invalid.ok, false);
    assert.equal(typeof invalid.value, 'object');
  });
});

describe('S3 positions and locations', () => {
  test('keys compare as S3 lists them, by UTF-8 bytes, not by UTF-16 code units', () => {
    const halfwidth = 'landing/\uFF61.ndjson'; // UTF-8 EF BD A1
    const emoji = 'landing/\u{1F600}.ndjson'; // UTF-8 F0 9F 98 80; UTF-16 D83D DE00, below FF61
    assert.ok(emoji < halfwidth, 'JavaScript orders them the other way');
    assert.ok(compareKeys(halfwidth, emoji) < 0);
    assert.ok(compareKeys('a/b', 'a/b') === 0 && compareKeys('a/b', 'a/c') < 0 && compareKeys('a/b/c', 'a/b') > 0);
    const at = (key: string, record: number) => ({ key, etag: '"e"', record });
    assert.ok(S3_OBJECT_POSITIONS.compare(at('b', 1), at('a', 900)) > 0, 'the object first, then the record');
    assert.ok(S3_OBJECT_POSITIONS.compare(at('a', 2), at('a', 10)) < 0);
  });

  test('positions read back from JSON are checked', () => {
    assert.ok(S3_OBJECT_POSITIONS.is({ key: 'a', etag: '"e"', record: 3, end: true }));
    assert.ok(!S3_OBJECT_POSITIONS.is({ key: 'a', etag: '"e"', record: -1 }));
    assert.ok(!S3_OBJECT_POSITIONS.is({ key: '', etag: '"e"', record: 1 }));
    assert.ok(!S3_OBJECT_POSITIONS.is({ key: 'a', record: 1 }));
    assert.ok(!S3_OBJECT_POSITIONS.is({ key: 'a', etag: '"e"', record: 1, end: false }));
    assert.ok(S3_SNAPSHOT_POSITIONS.is({ version: 'sha256:x', key: 'a', etag: '"e"', record: 1 }));
    assert.ok(!S3_SNAPSHOT_POSITIONS.is({ key: 'a', etag: '"e"', record: 1 }), 'an append position is not a snapshot one');
    assert.equal(S3_OBJECT_POSITIONS.show({ key: 'a.csv', etag: '"e"', record: 3, end: true }), '(record 3, the last of a.csv, ETag "e")');
  });

  test('s3://bucket/prefix/ is a bucket and a prefix; anything else is refused with the form', () => {
    assert.deepEqual(parseS3Url('s3://landing-bucket/events/vehicles/'), { bucket: 'landing-bucket', prefix: 'events/vehicles/' });
    assert.deepEqual(parseS3Url('s3://landing-bucket'), { bucket: 'landing-bucket', prefix: '' });
    for (const bad of ['https://x/y', 's3://', 's3://UPPER/x', 's3:/b/x']) assert.throws(() => parseS3Url(bad), /not of the form s3:\/\/bucket\/prefix\//, bad);
  });
});
