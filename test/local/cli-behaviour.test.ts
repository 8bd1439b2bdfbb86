/**
 * How the commands behave for the person typing them: `--help` and usage errors on every command,
 * one error line, fetch progress on a terminal and in CI, right-aligned numbers in query tables.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { progressPrinter } from '../../local/cli-progress';
import { runLocalPipeline, type FetchProgress } from '../../local/pipeline';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { formatTable } from '../../local/text-table';
import { suiteTempDir } from '../support/suite-fixtures';

const REPO = path.join(import.meta.dirname, '..', '..');
// Resolved here: the children run in a temporary directory, where a bare `tsx` would not resolve.
const TSX_LOADER = import.meta.resolve('tsx');

let root: string;
suiteTempDir('cli-behaviour-', (dir) => (root = dir));

/** A command as `npm run <script> -- args` runs it: `node --import tsx <file> args`. */
function spawnCli(file: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', TSX_LOADER, path.join(REPO, file), ...args],
      { cwd: root, env: { ...process.env, ...env }, maxBuffer: 32 << 20, timeout: 120_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

const COMMANDS: { name: string; file: string; args: string[]; usage: RegExp }[] = [
  { name: 'npm run local', file: 'local/cli.ts', args: [], usage: /npm run local \[-- options\]/ },
  { name: 'npm run local -- serve', file: 'local/cli.ts', args: ['serve'], usage: /npm run local -- serve/ },
  { name: 'npm run query', file: 'local/query-cli.ts', args: [], usage: /usage: npm run query --/ },
  { name: 'npm run status', file: 'local/status.ts', args: [], usage: /usage: npm run status --/ },
  { name: 'npm run dataset', file: 'local/dataset-cli.ts', args: [], usage: /usage: npm run dataset --/ },
  { name: 'npm run bench', file: 'bench/bench.ts', args: [], usage: /usage: npm run bench --/ },
  { name: 'npm run cost', file: 'bench/cost.ts', args: [], usage: /usage: npm run cost --/ },
];

describe('--help and usage errors on every command', () => {
  for (const c of COMMANDS) {
    test(`${c.name} -- --help prints its usage on stdout and exits 0; an unknown option exits 2`, async () => {
      const help = await spawnCli(c.file, [...c.args, '--help']);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, c.usage);
      assert.equal(help.stderr.replace(/^npm warn.*\n/gm, ''), '');
      const bad = await spawnCli(c.file, [...c.args, '--no-such-option']);
      assert.equal(bad.code, 2, `${c.name} --no-such-option: ${bad.stderr}`);
      assert.match(bad.stderr, /no-such-option/);
      assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
    });
  }

  test('other usage errors exit 2: a bad --rows, an unknown command, a query without SQL, an unknown dataset', async () => {
    for (const [file, args, message] of [
      ['local/cli.ts', ['--rows', 'many'], /--rows must be a whole number ≥ 1, got "many"/],
      ['local/cli.ts', ['serve', 'extra'], /Unknown command "serve extra"/],
      ['local/cli.ts', ['--dataset', 'no-such-dataset', '--data-dir', path.join(root, 'unused')], /No dataset "no-such-dataset"/],
      ['local/query-cli.ts', [], /query: no SQL given/],
    ] as const) {
      const r = await spawnCli(file, [...args]);
      assert.equal(r.code, 2, `${file} ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });

  test('a bad LOCAL_PROGRESS_INTERVAL_MS is a usage error naming the variable', async () => {
    const r = await spawnCli('local/cli.ts', ['--rows', '10', '--data-dir', path.join(root, 'interval')], { LOCAL_PROGRESS_INTERVAL_MS: 'soon' });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /LOCAL_PROGRESS_INTERVAL_MS must be a whole number of milliseconds ≥ 1, got "soon"/);
  });
});

describe('npm run local: errors and progress as printed', () => {
  test('an unreachable --source prints exactly one error line (no Powertools JSON, no stack) and exits 1', async () => {
    // A port that was free a moment ago: connections are refused.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = s.address() as { port: number };
        s.close(() => resolve(p));
      });
    });
    const r = await spawnCli('local/cli.ts', ['--source', `http://127.0.0.1:${port}/resource/abcd-1234.json`, '--data-dir', path.join(root, 'offline')], {
      POWERTOOLS_LOG_LEVEL: '',
      DEBUG: '',
    });
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('npm warn'));
    const errors = lines.filter((l) => /error/i.test(l));
    assert.equal(errors.length, 1, `one error line, got:\n${r.stderr}`);
    assert.match(errors[0]!, /^error: Socrata request for dataset sf-fire-incidents failed \(ECONNREFUSED/);
    assert.match(errors[0]!, new RegExp(`127\\.0\\.0\\.1:${port}/resource/abcd-1234\\.json`));
    assert.ok(!lines.some((l) => l.startsWith('{')), `no JSON log line:\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  test('with stderr not a terminal, a progress line is printed every interval, each on its own line', async () => {
    const r = await spawnCli('local/cli.ts', ['--rows', '8000', '--data-dir', path.join(root, 'progress')], { LOCAL_PROGRESS_INTERVAL_MS: '20' });
    assert.equal(r.code, 0, r.stderr);
    const progress = r.stderr.split('\n').filter((l) => l.startsWith('fetch progress: '));
    assert.ok(progress.length >= 1, `periodic progress lines expected:\n${r.stderr}`);
    for (const l of progress) assert.match(l, /^fetch progress: [\d,]+\/8,000 rows {2}[\d,]+ rows\/s {2}\d+ pages {2}\d+ retries {2}\d+ quarantined$/);
    assert.doesNotMatch(r.stderr, /\r/, 'no carriage returns when stderr is not a terminal');
  });
});

const at = (rows: number, extra: Partial<FetchProgress> = {}): FetchProgress => ({
  rowsFetched: rows,
  rowsDelivered: rows,
  rowsQuarantined: 0,
  pages: rows / 1000,
  retries: 0,
  expectedRows: 4000,
  elapsedMs: 1000,
  ...extra,
});

describe('progress printer', () => {
  test('the pipeline reports done on its last progress update only (what lets the bar reach 100%)', async () => {
    const updates: FetchProgress[] = [];
    const summary = await runLocalPipeline({
      dataset: loadDatasetFile(path.join(REPO, 'datasets', 'sf-fire-incidents.json')),
      dataDir: path.join(root, 'done-flag'),
      rows: 3000,
      onProgress: (p) => updates.push(p),
    });
    assert.equal(summary.fetch.rowsFetched, 3000);
    assert.ok(updates.length >= 1);
    assert.equal(updates.at(-1)!.done, true);
    assert.equal(updates.at(-1)!.rowsFetched, 3000);
    assert.equal(updates.filter((u) => u.done).length, 1, 'done exactly once');
  });

  test('on a terminal: a later log line starts on a new line, and 100% shows only when the fetch is done', () => {
    let out = '';
    const p = progressPrinter({ isTTY: true, write: (t) => (out += t) }, 5_000);
    p.update(at(2000));
    p.update(at(4000)); // every row served, the last page not yet delivered
    assert.match(out, /\r\[#+\.*\] 99% 4,000\/4,000 rows/);
    assert.doesNotMatch(out, /100%/);
    p.log('crawl: something');
    assert.match(out, / \ncrawl: something\n$/, 'the bar is ended before the log line');
    p.update(at(4000, { done: true }));
    assert.match(out, /\r\[#{24}\] 100% 4,000\/4,000 rows .*\n$/);
    const before = out;
    p.update(at(4000)); // a late tick after the end changes nothing
    p.log('transform');
    p.done();
    assert.equal(out, `${before}transform\n`);
  });

  test('not a terminal: one plain line per interval with the latest figures, none after the end', async () => {
    let out = '';
    const p = progressPrinter({ isTTY: false, write: (t) => (out += t) }, 10);
    p.update(at(1000));
    await new Promise((r) => setTimeout(r, 60));
    p.update(at(3000, { retries: 2 }));
    await new Promise((r) => setTimeout(r, 60));
    p.done();
    const lines = out.trim().split('\n');
    assert.ok(lines.length >= 2, out);
    assert.equal(lines[0], 'fetch progress: 1,000/4,000 rows  1,000 rows/s  1 pages  0 retries  0 quarantined');
    assert.equal(lines.at(-1), 'fetch progress: 3,000/4,000 rows  3,000 rows/s  3 pages  2 retries  0 quarantined');
    assert.doesNotMatch(out, /\r/);
    const ended = out;
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(out, ended, 'the timer stops with the fetch');
  });
});

describe('query tables', () => {
  test('numbers (numbers, bigints, DECIMAL strings) are right-aligned with their header; text and codes stay left', () => {
    const t = formatTable(
      ['battalion', 'incidents', 'share', 'code'],
      [
        { battalion: 'B01', incidents: 9, share: '0.50', code: '01' },
        { battalion: 'B10', incidents: 12_345, share: '12.25', code: '2' },
        { battalion: 'B2', incidents: null, share: null, code: null },
      ],
    ).split('\n');
    assert.deepEqual(t, [
      'battalion | incidents | share | code',
      '----------+-----------+-------+-----',
      'B01       |         9 |  0.50 | 01  ',
      'B10       |     12345 | 12.25 | 2   ',
      'B2        |      NULL |  NULL | NULL',
      '(3 rows)',
    ]);
  });
});
