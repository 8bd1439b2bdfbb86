/**
 * A skipped UTF-8 BOM still counts in the byte offsets errors name: they are offsets in the file as
 * decompressed, so a person can seek to them, and each parser starts counting after the BOM.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { outcome } from './read-helpers';

const BOM = '\uFEFF';

test('CSV and JSON array errors name the same byte with or without a BOM, plus its three bytes', async () => {
  const csv = 'a,b\n1,2\n3,"never\nclosed\n';
  for (const [prefix, shift] of [['', 0], [BOM, 3]] as const) {
    const got = await outcome(prefix + csv, { format: 'csv' });
    assert.match(got.error!.message, new RegExp(`the input ends inside it \\(line 5, byte ${24 + shift}\\)`));
    const json = await outcome(`${prefix}[{"a": 1},]`, { format: 'json' });
    assert.match(json.error!.message, new RegExp(`\\(line 1, byte ${10 + shift}\\)`), json.error!.message);
  }
});
