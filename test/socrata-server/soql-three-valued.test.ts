/**
 * The local server's $where in SQL's three-valued logic: a comparison with a missing value is
 * unknown, AND/OR decide only where one operand decides, and NOT of unknown is still unknown (the
 * row is left out), as Socrata does.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileWhere, parseWhere, type Row } from '../../local/soql';

const matches = (where: string, row: Row): boolean => compileWhere(parseWhere(where), () => 'text')(row);

test('AND, OR and NOT keep an unknown operand unknown unless another operand decides', () => {
  const row = { a: 'x' }; // b is missing: b = 'y' is unknown
  assert.equal(matches("a = 'x' AND b = 'y'", row), false);
  assert.equal(matches("NOT (a = 'x' AND b = 'y')", row), false, 'true AND unknown is unknown, and so is its NOT');
  assert.equal(matches("NOT (a = 'z' AND b = 'y')", row), true, 'false AND unknown is false');
  assert.equal(matches("a = 'x' OR b = 'y'", row), true, 'true OR unknown is true');
  assert.equal(matches("NOT (a = 'z' OR b = 'y')", row), false, 'false OR unknown is unknown, and so is its NOT');
  assert.equal(matches("NOT (a = 'z' OR a = 'w')", row), true, 'false OR false is false');
});
