/** Nested fields by dotted path, and composite keys that name every missing or unusable part. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compilePath, keyExtractor, valueAt } from '../../runtime/file-formats';

const event = { on: 'register', at: '2026-12-07T10:00:00Z', data: { id: 'v-17', location: { lat: 51.5, lng: -0.12 }, tags: ['a', 'b'], parts: [{ sku: 'x1' }] } };

test('valueAt walks nested objects; absent anywhere on the way is undefined', () => {
  assert.equal(valueAt(event, 'data.location.lat'), 51.5);
  assert.equal(valueAt(event, 'on'), 'register');
  assert.deepEqual(valueAt(event, 'data.location'), { lat: 51.5, lng: -0.12 });
  assert.equal(valueAt(event, 'data.location.alt'), undefined);
  assert.equal(valueAt(event, 'data.id.x'), undefined);
  assert.equal(valueAt(event, 'nope.at.all'), undefined);
  assert.equal(valueAt(null, 'a'), undefined);
  assert.equal(valueAt({ a: null }, 'a.b'), undefined);
  assert.equal(valueAt({ a: null }, 'a'), null);
});

test('arrays are indexed by whole-number segments only', () => {
  assert.equal(valueAt(event, 'data.tags.1'), 'b');
  assert.equal(valueAt(event, 'data.parts.0.sku'), 'x1');
  assert.equal(valueAt(event, 'data.tags.5'), undefined);
  assert.equal(valueAt(event, 'data.tags.length'), undefined);
  assert.equal(valueAt(event, 'data.tags.01'), undefined);
});

test('a key that itself holds dots is reached by the same path (the longest key at each level wins)', () => {
  assert.equal(valueAt({ 'data.id': 7 }, 'data.id'), 7);
  assert.equal(valueAt({ data: { 'location.lat': 1 } }, 'data.location.lat'), 1);
  assert.equal(valueAt({ 'data.id': 7, data: { id: 8 } }, 'data.id'), 7);
  // Inherited properties are not fields.
  assert.equal(valueAt({}, 'toString'), undefined);
  assert.equal(valueAt({ a: {} }, 'a.constructor'), undefined);
});

test('an invalid path is refused when compiled', () => {
  for (const bad of ['', '.a', 'a.', 'a..b']) assert.throws(() => compilePath(bad), /invalid field path/);
});

test('a composite key gives its parts in order', () => {
  const key = keyExtractor(['on', 'data.id', 'at']);
  assert.deepEqual(key(event), { ok: true, values: ['register', 'v-17', '2026-12-07T10:00:00Z'] });
  assert.deepEqual(keyExtractor('data.location.lat')(event), { ok: true, values: [51.5] });
  assert.deepEqual(keyExtractor(['b'])({ b: false }), { ok: true, values: [false] });
  assert.deepEqual(keyExtractor(['n'])({ n: 0 }), { ok: true, values: [0] });
});

test('a key says which parts are missing (absent, null, empty) or not scalars, all of them', () => {
  const key = keyExtractor(['on', 'data.id', 'at']);
  assert.deepEqual(key({ data: { id: null }, at: '' }), {
    ok: false,
    problems: [
      { part: 'on', reason: 'missing_primary_key', detail: 'key part "on" is absent' },
      { part: 'data.id', reason: 'missing_primary_key', detail: 'key part "data.id" is absent' },
      { part: 'at', reason: 'missing_primary_key', detail: 'key part "at" is empty' },
    ],
  });
  assert.deepEqual(key({ on: 'x', data: { id: { nested: 1 } }, at: ['t'] }), {
    ok: false,
    problems: [
      { part: 'data.id', reason: 'invalid_primary_key', detail: 'key part "data.id" is an object, not a text, number or boolean: {"nested":1}' },
      { part: 'at', reason: 'invalid_primary_key', detail: 'key part "at" is an array, not a text, number or boolean: ["t"]' },
    ],
  });
});

test('a key with no parts, or a part named twice, is refused', () => {
  assert.throws(() => keyExtractor([]), /at least one part/);
  assert.throws(() => keyExtractor(['a', 'b', 'a']), /"a" is named twice/);
});
