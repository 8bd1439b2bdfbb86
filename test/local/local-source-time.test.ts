/**
 * A new local source is anchored so that its newest generated `:updated_at` is in the past: the
 * bound on the spread of the load batches must hold for the generator's actual draws.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FireIncidentGenerator } from '../../local/fire-incidents-generator';

test("the generator's load times spread less than loadSpanBoundMs, for small and large sources and several seeds", () => {
  for (const seed of [1, 2, 7]) {
    for (const rows of [1, 150, 2_000, 60_000]) {
      const loadedAt = new Date('2026-01-01T00:00:00.000Z');
      const g = new FireIncidentGenerator({ seed, loadedAt });
      let newest = 0;
      for (let i = 0; i < rows; i++) newest = Math.max(newest, Date.parse(String(g.next()[':updated_at'])));
      const span = newest - loadedAt.getTime();
      const bound = FireIncidentGenerator.loadSpanBoundMs(rows);
      assert.ok(span < bound, `seed ${seed}, ${rows} rows: spread ${span} ms exceeds the bound ${bound} ms`);
      // At large counts the proportional part alone covers the spread (the hour is for small counts).
      if (rows >= 60_000) assert.ok(span < bound - 3_600_000, `seed ${seed}, ${rows} rows: spread ${span} ms needs the hour's slack`);
      // Not a bound so loose that a new source looks days old: within an hour plus 30% of the spread.
      if (rows >= 60_000) assert.ok(bound - span < 3_600_000 + 0.3 * span, `seed ${seed}, ${rows} rows: bound ${bound} ms is far above the spread ${span} ms`);
    }
  }
});
