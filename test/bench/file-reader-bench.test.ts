/**
 * The file-reader table: its flatness target, the generated CSV it reads (every row a record,
 * its quoted commas and newlines included), and the children it runs reporting every row.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileReaderTable, fileReaderTargets, runFileReaderBench, type FileReaderResult } from '../../bench/file-reader-bench';
import { csvBlock } from '../../bench/file-reader-run';
import { readRecords } from '../../runtime/file-formats';

const run = (bytes: number, gzip: boolean, peakMB: number): FileReaderResult =>
  ({ bytes, gzip, peakRssBytes: peakMB * 1e6, rows: 1, problems: 0, inputBytes: bytes, seconds: 1, cpuSeconds: 1, idleRssBytes: 1, rowsPerSecond: 1, mbPerSecond: 1 });

test('flat means the larger file peaks within 10% of the smaller, or within 20 MB', () => {
  const [plain, gzip] = fileReaderTargets([run(100e6, false, 150), run(1e9, false, 164), run(100e6, true, 300), run(1e9, true, 331)]);
  assert.equal(plain!.pass, true, plain!.measured);
  assert.match(plain!.target, /≤ 170 MB/);
  assert.equal(gzip!.pass, false, gzip!.measured);
  assert.match(gzip!.target, /≤ 330 MB/);
  assert.equal(fileReaderTargets([run(100e6, false, 100), run(1e9, false, 121), run(100e6, true, 100), run(1e9, true, 120)]).map((t) => t.pass).join(), 'false,true');
});

test('a size not measured is a miss, not a pass', () => {
  const targets = fileReaderTargets([run(100e6, false, 100)]);
  assert.deepEqual(targets.map((t) => [t.measured, t.pass]), [['not measured', false], ['not measured', false]]);
});

test('the generated block is CSV that reads back as its rows, quoted commas and newlines included', async () => {
  const block = csvBlock();
  const header = Buffer.from('a,b,c,d,e,f,g,h,i,j,k,l,m,n\r\n');
  let rows = 0;
  let multiline = 0;
  for await (const item of readRecords([header, block.text], { format: 'csv' })) {
    assert.ok(!('problem' in item), JSON.stringify(item));
    rows++;
    if (String(item.record.k).includes('\n')) multiline++;
  }
  assert.equal(rows, block.rows);
  assert.equal(multiline, Math.ceil(block.rows / 50));
});

test('each case runs in its own process and reads every generated row', async () => {
  const results = await runFileReaderBench({ sizes: [4e6, 8e6], log: () => {} });
  assert.deepEqual(results.map((r) => [r.gzip, r.problems]), [[false, 0], [false, 0], [true, 0], [true, 0]]);
  assert.equal(results[1]!.rows, 2 * results[0]!.rows);
  assert.equal(results[3]!.rows, results[1]!.rows);
  for (const r of results) assert.ok(r.peakRssBytes >= r.idleRssBytes && r.peakRssBytes > 0);
  assert.equal(fileReaderTable(results).length, 2 + 4);
});
