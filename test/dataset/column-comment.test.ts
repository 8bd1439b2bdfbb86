/**
 * Column descriptions become catalog comments (columnComment, for the Glue raw table): one line,
 * at most 255 characters, only characters Glue's `Column.Comment` pattern admits, on every column
 * that `add` proposes from real portal metadata.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { columnComment, COLUMN_TYPES, MAX_COMMENT_LENGTH, parseDataset } from '../../runtime/dataset-config';
import { proposeDataset, readViewDocument, SocrataMetadataError } from '../../runtime/socrata-metadata';
import { testDataset } from '../support/dataset-builder';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'socrata-views');
// Glue's Column.Comment: tab and printable characters, no line breaks or other controls.
const GLUE_COMMENT = /^[\t\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]*$/u;

describe('column comments', () => {
  test('a multi-line description is folded into one line', () => {
    assert.equal(columnComment({ type: 'text', description: 'Latitude of the worksite.\nMay be missing for\r\n"Unaddressable" permits\n' }), 'Latitude of the worksite. May be missing for "Unaddressable" permits');
  });

  test('a long description is cut to Glue\'s 255 characters, marked with an ellipsis', () => {
    const comment = columnComment({ type: 'text', description: 'word '.repeat(100) });
    assert.equal(comment.length, MAX_COMMENT_LENGTH);
    assert.ok(comment.endsWith('…'));
    assert.equal(columnComment({ type: 'text', description: 'x'.repeat(255) }), 'x'.repeat(255));
  });

  test('without a description, the comment says what the type holds', () => {
    for (const type of COLUMN_TYPES) assert.ok(columnComment({ type }).length > 0, type);
    assert.equal(columnComment({ type: 'fixed_timestamp', description: '  ' }), 'Socrata fixed timestamp, in UTC');
  });

  test('every column proposed from the real fixtures gets a comment Glue accepts', () => {
    let described = 0;
    for (const f of readdirSync(FIXTURES).filter((n) => n.endsWith('.json') && !n.endsWith('.rows.json'))) {
      const view = readViewDocument(JSON.parse(readFileSync(path.join(FIXTURES, f), 'utf8')), f);
      let definition;
      try {
        definition = proposeDataset(view, { domain: 'data.example.org' }).definition;
      } catch (err) {
        if (err instanceof SocrataMetadataError) continue; // the no-timestamp fixture
        throw err;
      }
      for (const c of parseDataset(definition, f).columns) {
        const comment = columnComment(c);
        assert.ok(comment.length > 0 && comment.length <= MAX_COMMENT_LENGTH, `${f} ${c.name}`);
        assert.match(comment, GLUE_COMMENT, `${f} ${c.name}`);
        if (c.description && c.description.length > 40) described++;
      }
    }
    assert.ok(described > 10, 'the fixtures carry real descriptions');
  });
});

describe('descriptions reach the Glue raw table', () => {
  test('a described column carries its description as the Glue comment; an undescribed one says its type', async () => {
    const { rawTableColumns } = await import('../../lib/constructs/raw-table');
    const dataset = testDataset({
      name: 'comments-demo',
      eventTimeColumn: 'opened_at',
      columns: [
        { name: 'id', type: 'text', description: 'Permit number,\nunique per permit' },
        { name: 'opened_at', type: 'floating_timestamp' },
        { name: 'location', type: 'point', description: 'Where the work happens' },
      ],
    });
    const byName = new Map(rawTableColumns(dataset).map((c) => [c.name, c.comment]));
    assert.equal(byName.get('id'), 'Permit number, unique per permit');
    assert.equal(byName.get('opened_at'), columnComment({ type: 'floating_timestamp' }));
    assert.equal(byName.get('location'), 'Where the work happens');
  });
});
