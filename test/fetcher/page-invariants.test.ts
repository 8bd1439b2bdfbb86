import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compareKeyset, pageProblem, rowPosition, rowProblem } from '../../lambdas/fetcher/sources/socrata/page-invariants';

const row = (updatedAt: string, id: string): Record<string, unknown> => ({ ':updated_at': updatedAt, ':id': id, id: id.toUpperCase() });

describe('page invariants', () => {
  test('keyset order: timestamps by instant (zone-less read as UTC), ids as text', () => {
    assert.ok(compareKeyset({ updatedAt: '2024-01-01T00:00:00.000Z', id: 'row-b' }, { updatedAt: '2024-01-01T00:00:01.000Z', id: 'row-a' }) < 0);
    assert.ok(compareKeyset({ updatedAt: '2024-01-01T00:00:01.000Z', id: 'row-a' }, { updatedAt: '2024-01-01T00:00:00.000Z', id: 'row-b' }) > 0);
    assert.equal(compareKeyset({ updatedAt: '2024-01-01T00:00:00Z', id: 'row-a' }, { updatedAt: '2024-01-01T00:00:00.000', id: 'row-a' }), 0, 'one instant, two spellings');
    assert.ok(compareKeyset({ updatedAt: '2024-01-01T01:00:00+01:00', id: 'row-b' }, { updatedAt: '2024-01-01T00:00:00.000Z', id: 'row-a' }) > 0, 'same instant: the id decides');
    assert.ok(compareKeyset({ updatedAt: 'x', id: 'row-a' }, { updatedAt: 'y', id: 'row-a' }) < 0, 'unparseable timestamps compare as text');
    // The lookback start (id '') sorts before every row of its timestamp.
    assert.ok(compareKeyset({ updatedAt: '2024-01-01T00:00:00.000Z', id: '' }, { updatedAt: '2024-01-01T00:00:00.000Z', id: 'row-0' }) < 0);
  });

  test('a good page, an empty page, and each broken rule named', () => {
    const after = { updatedAt: '2024-01-01T00:00:00.000Z', id: 'row-m' };
    const good = [row('2024-01-01T00:00:00.000Z', 'row-n'), row('2024-01-01T00:00:00.000Z', 'row-z'), row('2024-01-01T00:00:01.000Z', 'row-a')];
    assert.equal(pageProblem(good, after, 3), undefined);
    assert.equal(pageProblem(good, null, 3), undefined);
    assert.equal(pageProblem([], after, 3), undefined);
    assert.match(pageProblem(good, after, 2)!, /^3 rows for \$limit=2 \(the source ignored \$limit\)$/);
    assert.match(pageProblem([row('2024-01-01T00:00:00.000Z', 'row-m'), ...good], after, 9)!, /^row 1 .*:id row-m.* is not after the requested position .*ignored \$where/);
    assert.match(pageProblem([...good].reverse(), null, 9)!, /^row 2 .* is not after row 1 .*ignored \$order/);
    assert.match(pageProblem([good[0]!, good[0]!], null, 9)!, /^row 2 .* is not after row 1/, 'a repeated row is not progress');
    assert.match(pageProblem([good[0]!, { id: 'X' }], null, 9)!, /^row 2 has no :updated_at\/:id system fields/);
  });

  test('rowProblem, row by row as a page streams in, agrees with pageProblem on every page above', () => {
    const after = { updatedAt: '2024-01-01T00:00:00.000Z', id: 'row-m' };
    const good = [row('2024-01-01T00:00:00.000Z', 'row-n'), row('2024-01-01T00:00:00.000Z', 'row-z'), row('2024-01-01T00:00:01.000Z', 'row-a')];
    const streamed = (rows: Record<string, unknown>[], start: typeof after | null, limit: number): string | undefined => {
      let previous = start;
      for (let i = 0; i < rows.length; i++) {
        const problem = rowProblem(rows[i]!, i, previous, limit);
        if (problem) return problem;
        previous = rowPosition(rows[i]!)!;
      }
      return undefined;
    };
    const cases: [Record<string, unknown>[], typeof after | null, number][] = [
      [good, after, 3],
      [good, null, 3],
      [[row('2024-01-01T00:00:00.000Z', 'row-m'), ...good], after, 9],
      [[...good].reverse(), null, 9],
      [[good[0]!, good[0]!], null, 9],
      [[good[0]!, { id: 'X' }], null, 9],
    ];
    for (const [rows, start, limit] of cases) assert.equal(streamed(rows, start, limit), pageProblem(rows, start, limit));
    // $limit: the streamed check names the first row past it (the page's length is not known yet).
    assert.match(streamed(good, after, 2)!, /^more than 2 rows for \$limit=2 \(the source ignored \$limit\)$/);
  });
});
