/**
 * `npm run bench -- --full-size`: the flags parse, the targets judge the numbers they are given,
 * and a small run reports every phase, every process and every row (never a timing assertion).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseBenchArgs, USAGE } from '../../bench/bench';
import { FULL_SIZE_PEAK_RSS_BYTES, fullSizeTargets, renderFullSize, runFullSizeBench } from '../../bench/full-size-bench';

describe('bench --full-size', { timeout: 180_000 }, () => {
  test('flags: --full-size alone means 650,000 rows; --rows overrides; --help lists the mode', () => {
    const a = parseBenchArgs(['--full-size']);
    assert.equal(a.fullSize, true);
    assert.equal(a.rowsGiven, false, 'the mode then uses its own default, 650,000');
    const b = parseBenchArgs(['--full-size', '--rows', '3000', '--keep']);
    assert.deepEqual([b.fullSize, b.rows, b.rowsGiven, b.keep], [true, 3000, true, true]);
    assert.equal(parseBenchArgs(['--rows=5']).fullSize, false);
    assert.match(USAGE, /--full-size/);
  });

  test('targets: the largest process and the wall time, PASS only under the bounds, and no lost rows', () => {
    const base = { rows: 10, curatedRows: 10, failedTests: [] as string[], wallSeconds: 100 };
    const ok = fullSizeTargets({ ...base, peakRss: { pipeline: 600e6, socrata: 400e6, transform: 1.2e9 } });
    assert.deepEqual(ok.map((t) => t.pass), [true, true, true]);
    assert.match(ok[0]!.measured, /1200 MB \(crawl \+ transform\)/);
    const bad = fullSizeTargets({ ...base, wallSeconds: 121, curatedRows: 9, peakRss: { pipeline: FULL_SIZE_PEAK_RSS_BYTES, socrata: 1, transform: 1 } });
    assert.deepEqual(bad.map((t) => t.pass), [false, false, false]);
    assert.match(bad[0]!.measured, /\(pipeline\)/);
  });

  test('a small run: every phase, the three processes, every row curated', async () => {
    const r = await runFullSizeBench({ rows: 3_000, seed: 2, log: () => {} });
    assert.deepEqual(
      r.phases.map((p) => p.phase),
      ['source server start', 'fetch + deliver (+ key scan)', 'Firehose flush', 'crawl', 'transform: merge', 'deletions, marts, tests, report', 'sample query'],
    );
    assert.equal(r.rows, 3_000);
    assert.equal(r.curatedRows, 3_000);
    assert.deepEqual(r.failedTests, []);
    for (const p of r.phases) {
      assert.ok(p.peakRss.pipeline > 0 && p.seconds >= 0 && p.cpuSeconds.pipeline >= 0, p.phase);
      // The Socrata child runs from the first phase, the transform child from the crawl on.
      assert.ok(p.peakRss.socrata! > 0, `${p.phase}: Socrata child measured`);
      assert.equal(p.peakRss.transform !== undefined, ['crawl', 'transform: merge', 'deletions, marts, tests, report', 'sample query'].includes(p.phase), p.phase);
    }
    assert.ok(r.peakRss.transform > 0 && r.peakRss.socrata > 0 && r.peakRss.pipeline > 0);
    assert.equal(r.targets.length, 3);
    const table = renderFullSize(r);
    for (const t of r.targets) assert.ok(table.includes(`| ${t.name} |`) && table.includes(t.pass ? 'PASS' : 'MISS'));
  });
});
