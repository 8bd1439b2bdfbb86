/**
 * Usage errors as a person meets them: one line, the option they meant, and `serve --help` about serve.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { didYouMean, parseArgsErrorLine } from '../../local/cli-usage';
import { runCli } from './local-run-fixture';

const LOCAL_OPTIONS = ['dataset', 'dataset-file', 'source', 'rows', 'data-dir', 'engine', 'fresh', 'full-refresh', 'rebuild', 'select', 'tests-only', 'json', 'port', 'help'];

describe('did you mean', () => {
  test('a typo or a unique prefix names the option meant; something unrelated names none', () => {
    assert.equal(didYouMean('fresch', LOCAL_OPTIONS), 'fresh');
    assert.equal(didYouMean('jsno', LOCAL_OPTIONS), 'json');
    assert.equal(didYouMean('datadir', LOCAL_OPTIONS), 'data-dir');
    assert.equal(didYouMean('full', LOCAL_OPTIONS), 'full-refresh');
    assert.equal(didYouMean('test-only', LOCAL_OPTIONS), 'tests-only');
    assert.equal(didYouMean('verbose', LOCAL_OPTIONS), undefined);
    assert.equal(didYouMean('x', LOCAL_OPTIONS), undefined);
  });

  test("parseArgs' messages become one line without Node's advice", () => {
    const unknown = Object.assign(new TypeError("Unknown option '--fresch'. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- \"--fresch\""), {
      code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION',
    });
    assert.equal(parseArgsErrorLine(unknown, LOCAL_OPTIONS), 'unknown option --fresch; did you mean --fresh?');
    const missing = Object.assign(new TypeError("Option '--rows <value>' argument missing"), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
    assert.equal(parseArgsErrorLine(missing, LOCAL_OPTIONS), "Option '--rows <value>' argument missing");
  });
});

describe('npm run local usage errors', () => {
  test('a typo of an option is one line naming the option meant, exit 2, without the whole usage', async () => {
    const r = await runCli(['--fresch']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, 'error: unknown option --fresch; did you mean --fresh? (see --help)\n');
    assert.equal(r.stdout, '');
  });

  test('a typo of the command names serve', async () => {
    const r = await runCli(['sevre']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: Unknown command "sevre".*; did you mean "serve"\? \(see --help\)\n$/);
  });

  test('a dataset file that does not validate: every bad field, exit 2, and what to do, before anything runs', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'cli-usage-'));
    try {
      const file = path.join(dir, 'bad.json');
      await writeFile(file, JSON.stringify({ name: 'Bad Name' }));
      const r = await runCli(['--dataset-file', file, '--data-dir', path.join(dir, 'data')]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^error: Invalid dataset definition .*bad\.json:\n {4}- name: must be kebab-case/);
      assert.match(r.stderr, /\n {4}- columns: [^\n]* \(fix the file and run again\)\n$/);
      assert.equal(r.stdout, '');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('serve --help describes serve, not the whole run', async () => {
    const r = await runCli(['serve', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Usage: npm run local -- serve \[options\]/);
    assert.match(r.stdout, /--port <n>/);
    assert.doesNotMatch(r.stdout, /--full-refresh|--select/, 'options serve does not take are not listed');
  });
});
