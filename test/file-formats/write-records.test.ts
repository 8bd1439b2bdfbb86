/** The writers are the readers' inverse: what recordLines writes, readRecords reads back unchanged. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isProblem, recordLines } from '../../runtime/file-formats';
import { collect } from './read-helpers';

const HARD = [
  { id: '1', name: 'Smith, "Jo"', note: 'two\r\nlines', empty: '' },
  { id: '2', name: 'plain', note: '", ,"', empty: '' },
];

test('CSV written by recordLines reads back field for field: commas, quotes, line breaks, empty fields', async () => {
  const text = [...recordLines('csv', HARD, ['id', 'name', 'note', 'empty'])].join('');
  const items = await collect(text, { format: 'csv', name: 't.csv' });
  // An empty CSV field is a missing value to the reader (the column is null), as in the source's file.
  assert.deepEqual(
    items.map((i) => (isProblem(i) ? i : i.record)),
    HARD.map(({ empty: _, ...rest }) => rest),
  );
});

test('NDJSON and JSON arrays keep nested records and numbers', async () => {
  const records = [{ event: 'register', data: { id: 7, location: { lat: 51.5, lng: -0.12 } } }, { event: 'update', data: { id: 8 } }];
  for (const format of ['ndjson', 'json'] as const) {
    const items = await collect([...recordLines(format, records, [])].join(''), { format, name: `t.${format}` });
    assert.deepEqual(
      items.map((i) => (isProblem(i) ? i : i.record)),
      records,
      format,
    );
  }
});
