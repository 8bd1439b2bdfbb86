/**
 * The command line of `npm run dataset`: help, usage errors, portal URLs (fetched over real HTTP
 * from a local stand-in for the portal, and offline), files that are not Socrata metadata, and
 * never overwriting a definition by accident. Exit codes: 0 done, 1 could not fetch or write,
 * 2 bad usage or input; every failure is one line on stderr.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import axios from 'axios';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { defaultDeps, parsePortalUrl, runDatasetCommand, type DatasetCommandDeps } from '../../local/dataset-command';

const REPO_ROOT = path.join(import.meta.dirname, '..', '..');
const CLI = path.join(REPO_ROOT, 'local', 'dataset-cli.ts');
const CRIMES = path.join(REPO_ROOT, 'test', 'fixtures', 'socrata-views', 'chicago-crimes-6zsd-86xi.json');

/** The real entry point, as `npm run dataset --` runs it. */
function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function run(argv: string[], deps: Partial<DatasetCommandDeps>) {
  let out = '';
  let err = '';
  const code = await runDatasetCommand(argv, { ...defaultDeps, stdout: (t) => (out += t), stderr: (t) => (err += t), ...deps });
  return { code, out, err };
}

const oneLine = (text: string) => assert.equal(text.trimEnd().split('\n').length, 1, `expected one line, got:\n${text}`);

describe('npm run dataset: command line', () => {
  test('--help exits 0 on the command and on add, printing the usage', () => {
    for (const args of [['--help'], ['add', '--help'], ['schema', '--help']]) {
      const r = cli(...args);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^usage: npm run dataset -- <command>/);
      assert.match(r.out, /add <portal URL \| metadata file>/);
      assert.equal(r.err, '');
    }
  });

  test('usage errors exit 2 with one line: no command, unknown command, unknown option, two sources', () => {
    assert.equal(cli().code, 2);
    for (const [args, message] of [
      [['frobnicate'], /^dataset: unknown command "frobnicate"/],
      [['add', CRIMES, '--colour', 'red'], /^dataset: Unknown option '--colour'.*--help/],
      [['add', CRIMES, CRIMES], /^dataset: add takes one portal URL or metadata file, got 2/],
    ] as const) {
      const r = cli(...args);
      assert.equal(r.code, 2, r.err);
      assert.match(r.err, message);
      oneLine(r.err);
    }
  });

  test('a URL that names no Socrata dataset, or is no URL, fails with one line and exit 2 (nothing fetched)', async () => {
    let fetched = 0;
    const fetchJson = () => {
      fetched++;
      return Promise.resolve({});
    };
    for (const [url, message] of [
      ['https://data.sfgov.org/Public-Safety/Fire-Incidents', /names no Socrata dataset id \(a 4x4 such as wr8u-xric\)/],
      ['ftp://data.sfgov.org/d/wr8u-xric', /ftp: URLs are not supported/],
      ['https://localhost/d/wr8u-xric', /"localhost" is not a portal host name/],
      ['data.sfgov.org/d/wr8u-xric', /cannot read metadata file data\.sfgov\.org\/d\/wr8u-xric: ENOENT \(for a portal URL, start it with https:\/\/\)/],
    ] as const) {
      const r = await run(['add', url, '--dry-run'], { fetchJson });
      assert.equal(r.code, 2, `${url}: ${r.err}`);
      assert.match(r.err, message);
      oneLine(r.err);
    }
    assert.equal(fetched, 0);
  });

  test('every portal URL form reads /api/views/<id>.json of that portal', () => {
    for (const url of [
      'https://data.sfgov.org/d/wr8u-xric',
      'https://data.sfgov.org/resource/wr8u-xric.json',
      'https://data.sfgov.org/resource/wr8u-xric.csv?$limit=5',
      'https://data.sfgov.org/api/views/wr8u-xric.json',
      'https://data.sfgov.org/api/views/wr8u-xric/rows.json?accessType=DOWNLOAD',
      'https://data.sfgov.org/Public-Safety/Fire-Incidents/wr8u-xric/about_data',
      'https://DATA.SFGOV.ORG/Public-Safety/Fire-Incidents/wr8u-xric',
    ]) {
      assert.deepEqual(parsePortalUrl(url), { domain: 'data.sfgov.org', datasetId: 'wr8u-xric' }, url);
    }
  });

  test('a file that is not Socrata view metadata fails with one line naming it, exit 2', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'not-socrata-'));
    const cases: [string, string, RegExp][] = [
      ['rows.json', JSON.stringify([{ incident_number: '1' }]), /rows\.json is not Socrata view metadata .*no "columns" array/],
      ['broken.json', '{"columns": [', /broken\.json is not JSON/],
      ['no-id.json', JSON.stringify({ columns: [{ fieldName: 'a', dataTypeName: 'text' }] }), /no-id\.json is not Socrata view metadata .*no 4x4 dataset "id"/],
      ['package.json', readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'), /package\.json is not Socrata view metadata/],
    ];
    for (const [name, body, message] of cases) {
      writeFileSync(path.join(dir, name), body);
      const r = cli('add', path.join(dir, name), '--domain', 'data.example.org', '--dry-run');
      assert.equal(r.code, 2, `${name}: ${r.err}`);
      assert.match(r.err, message);
      oneLine(r.err);
    }
    const missing = cli('add', path.join(dir, 'nope.json'));
    assert.equal(missing.code, 2);
    assert.match(missing.err, /cannot read metadata file .*nope\.json: ENOENT/);
  });

  test('a file that does not name its portal asks for --domain', () => {
    const r = cli('add', CRIMES, '--dry-run');
    assert.equal(r.code, 2);
    assert.equal(r.err, `dataset: ${CRIMES} does not name its portal: pass --domain <portal host>, e.g. --domain data.sfgov.org\n`);
  });

  test('offline: an unreachable portal fails within the deadline with one line (no stack), exit 1', () => {
    // .invalid never resolves (RFC 2606), online or not.
    const r = cli('add', 'https://data.portal.invalid/d/abcd-1234', '--dry-run');
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /^dataset: cannot reach data\.portal\.invalid \((ENOTFOUND|EAI_AGAIN)\) for https:\/\/data\.portal\.invalid\/api\/views\/abcd-1234\.json: check the host name and the network, or save that URL's JSON and pass the file\n$/);
  });

  test('an existing definition is not overwritten without --force', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dataset-force-'));
    const first = cli('add', CRIMES, '--domain', 'data.cityofchicago.org', '--out-dir', dir);
    assert.equal(first.code, 0, first.err);
    const file = path.join(dir, 'crimes-2001-to-present.json');
    writeFileSync(file, '{"edited": true}\n');
    const again = cli('add', CRIMES, '--domain', 'data.cityofchicago.org', '--out-dir', dir);
    assert.equal(again.code, 2);
    assert.match(again.err, /crimes-2001-to-present\.json already exists: pass --force to overwrite it, or --name <another-name>\n$/);
    assert.equal(readFileSync(file, 'utf8'), '{"edited": true}\n');
    const forced = cli('add', CRIMES, '--domain', 'data.cityofchicago.org', '--out-dir', dir, '--force');
    assert.equal(forced.code, 0, forced.err);
    assert.equal(loadDatasetFile(file).primaryKey, 'id');
    assert.ok(!existsSync(`${file}.tmp`));
  });
});

describe('npm run dataset: a portal over HTTP', () => {
  let server: Server;
  let base = '';
  const requests: string[] = [];
  const crimes = readFileSync(CRIMES, 'utf8');

  before(async () => {
    // A stand-in for the portal: the real view JSON at its views path, 404 elsewhere.
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      if (req.url === '/api/views/6zsd-86xi.json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(crimes);
      } else if (req.url === '/api/views/wr8u-xric.json') {
        res.writeHead(500).end('oops');
      } else {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"not_found"}');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** The default axios fetch, with the portal host routed to the local server. */
  const viaLocalPortal: DatasetCommandDeps['fetchJson'] = async (url) => {
    const u = new URL(url);
    assert.equal(u.protocol, 'https:');
    return (await axios.get<unknown>(`${base}${u.pathname}`, { responseType: 'json', timeout: 10_000 })).data;
  };

  test('a dataset page URL fetches its view metadata and writes the definition for that portal', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dataset-http-'));
    const r = await run(['add', 'https://data.cityofchicago.org/Public-Safety/Crimes-2001-to-present/6zsd-86xi', '--out-dir', dir], { fetchJson: viaLocalPortal });
    assert.equal(r.code, 0, r.err);
    assert.ok(requests.includes('/api/views/6zsd-86xi.json'));
    const d = loadDatasetFile(path.join(dir, 'crimes-2001-to-present.json'));
    assert.deepEqual(d.source, { domain: 'data.cityofchicago.org', datasetId: '6zsd-86xi' });
    assert.match(r.out, /^wrote .*crimes-2001-to-present\.json: Crimes - 2001 to present \(data\.cityofchicago\.org\/6zsd-86xi\), 26 columns\n/);
  });

  test('a dataset the portal does not have is bad input (exit 2); a failing portal is exit 1; one line each', async () => {
    const missing = await run(['add', 'https://data.cityofchicago.org/d/zzzz-9999', '--dry-run'], { fetchJson: viaLocalPortal });
    assert.equal(missing.code, 2);
    assert.equal(missing.err, 'dataset: no dataset at https://data.cityofchicago.org/api/views/zzzz-9999.json (HTTP 404): check the dataset id in the URL\n');
    const failing = await run(['add', 'https://data.sfgov.org/d/wr8u-xric', '--dry-run'], { fetchJson: viaLocalPortal });
    assert.equal(failing.code, 1);
    assert.equal(failing.err, "dataset: https://data.sfgov.org/api/views/wr8u-xric.json answered HTTP 500: try again later, or save that URL's JSON from a browser and pass the file\n");
  });
});
