/**
 * Smoke test of `npm run bench` at a tiny N: every field of the table is present and the counts
 * are consistent with each other. Never a timing assertion: speed belongs to the bench itself.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseBenchArgs, renderResults, runBench, type BenchResults } from '../../bench/bench';

const ROWS = 2_000;

describe('npm run bench at 2,000 rows', { timeout: 120_000 }, () => {
  let results: BenchResults;

  test('runs every part and reports the same rows for every contender', async () => {
    results = await runBench({ rows: ROWS, seed: 7, cost: true, resultsPath: null, log: () => {} });
    const { ours, baseline, limit } = results.fetch;
    assert.equal(ours.rows, ROWS);
    assert.equal(baseline.rows, ROWS);
    assert.equal(limit.rows, ROWS);
    assert.equal(results.memoryScaling.ours4N.rows, 4 * ROWS);
    assert.equal(results.transform.curatedRows, ROWS);
    assert.equal(results.transform.rowsRead, ROWS);
  });

  test('Firehose counts agree between each contender and the server, and within the service limits', () => {
    for (const c of [results.fetch.ours, results.fetch.baseline, results.memoryScaling.ours4N]) {
      const fh = c.firehose!;
      assert.ok(fh, `${c.kind} has Firehose counters`);
      assert.equal(fh.recordsAccepted, c.records, `${c.kind}: records sent = records the server accepted`);
      assert.equal(fh.putRecordBatchCalls, c.putCalls, `${c.kind}: calls made = calls received`);
      assert.equal(fh.bytesAccepted, c.payloadBytes, `${c.kind}: payload bytes sent = accepted`);
      assert.equal(fh.recordsFailed, 0);
      assert.ok(fh.recordsAccepted <= fh.putRecordBatchCalls * 500, `${c.kind}: at most 500 records per call`);
      assert.ok(fh.billedBytes >= fh.bytesAccepted, `${c.kind}: billed ≥ payload`);
      assert.equal(fh.billedBytes % 5120, 0, `${c.kind}: billed in 5 KB increments`);
      assert.ok(c.billedPerPayloadByte! >= 1);
      assert.ok(fh.objectsWritten >= 1 && fh.objectBytesWritten > 0);
    }
    // One record per row in the earlier design; ours packs many rows per record.
    assert.equal(results.fetch.baseline.records, ROWS);
    assert.ok(results.fetch.ours.records < ROWS / 10);
    assert.equal(results.fetch.limit.firehose, undefined);
    assert.ok(results.fetch.limit.payloadBytes > 0, 'the limit downloaded bytes');
  });

  test('memory, ratios, transform and query bytes are present and sane', () => {
    const r = results;
    for (const c of [r.fetch.ours, r.fetch.baseline, r.fetch.limit, r.memoryScaling.ours4N]) {
      assert.ok(c.peakRssBytes >= c.idleRssBytes && c.idleRssBytes > 0, `${c.kind}: peak RSS ≥ idle RSS > 0`);
      assert.ok(c.rowsPerSecond > 0 && c.mbPerSecond > 0 && c.seconds > 0);
    }
    assert.equal(r.memoryScaling.peakRssN, r.fetch.ours.peakRssBytes);
    assert.ok(Math.abs(r.ratios.oursToBaselineRowsPerSecond - r.fetch.ours.rowsPerSecond / r.fetch.baseline.rowsPerSecond) < 1e-9);
    assert.ok(r.transform.transformSeconds > 0 && r.transform.copyFloorSeconds > 0);
    assert.ok(r.transform.curatedParquetBytes > 0 && r.transform.rawGzipBytes > 0);
    assert.deepEqual(
      r.queryBytes.map((q) => q.mart).sort(),
      ['battalion_totals', 'incidents_by_month_battalion', 'losses_by_primary_situation', 'response_time_by_neighborhood'],
    );
    const byMart = Object.fromEntries(r.queryBytes.map((q) => [q.mart, q]));
    // Column pruning as the planner does it: exactly the columns each query uses.
    assert.deepEqual(byMart.incidents_by_month_battalion!.columns, ['battalion', 'incident_date']);
    assert.deepEqual(byMart.response_time_by_neighborhood!.columns, ['alarm_dttm', 'arrival_dttm', 'neighborhood_district']);
    for (const q of r.queryBytes) {
      assert.ok(q.parquetBytes > 0 && q.parquetBytes < r.transform.curatedParquetBytes, `${q.mart}: reads part of the curated table`);
      assert.equal(q.rawJsonGzipBytes, r.transform.rawGzipBytes);
    }
    assert.ok(r.cost && r.cost.this.totalUsd > 0 && r.cost.earlier.totalUsd > 0);
    assert.ok(r.cost.inputs.gzipRatio > 0 && r.cost.inputs.gzipRatio < 1);
  });

  test('the table lists every target with PASS or MISS', () => {
    const names = results.targets.map((t) => t.name).join('\n');
    for (const want of ['ours ÷ limit', 'ours ÷ baseline', 'Peak RSS ours at N', 'Peak RSS ours at 4N', '4N ÷ N', 'payload, ours', 'PutRecordBatch', 'COPY floor', 'raw JSON ÷ Parquet']) {
      assert.ok(names.includes(want), `target "${want}" is in the table`);
    }
    // Targets that do not depend on timing must hold even at this size.
    const byName = (s: string) => results.targets.find((t) => t.name.includes(s))!;
    assert.equal(byName('payload, ours').pass, true);
    assert.equal(byName('payload, baseline').pass, true);
    assert.equal(byName('PutRecordBatch').pass, true);
    const table = renderResults(results);
    assert.equal((table.match(/\| (PASS|\*\*MISS\*\*) \|/g) ?? []).length, results.targets.length);
  });

  test('argument parsing', () => {
    assert.deepEqual(parseBenchArgs([]), { rows: 100_000, seed: 1, json: false, cost: false, keep: false });
    assert.equal(parseBenchArgs(['--rows', '5000', '--json']).rows, 5000);
    assert.equal(parseBenchArgs(['--rows=42']).rows, 42);
    assert.throws(() => parseBenchArgs(['--rows', 'x']), /positive integer/);
    assert.throws(() => parseBenchArgs(['--fast']), /Unknown option/);
  });
});
