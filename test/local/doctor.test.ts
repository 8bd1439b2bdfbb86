/**
 * `npm run doctor` without credentials, network or Docker: every collaborator is a fake, and each
 * check is shown both passing and failing with its fix; the exit code follows "would a deploy fail".
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { checkBootstrap, checkDatasets, checkDocker, checkGitHub, checkNode, exitCodeOf, formatResults, runChecks, workflowVariables, type CommandResult, type DoctorDeps } from '../../local/doctor-checks';

const ROOT = path.join(import.meta.dirname, '..', '..');
const notInstalled: CommandResult = { status: null, stdout: '', stderr: '' };
const okRun = (stdout: string): CommandResult => ({ status: 0, stdout, stderr: '' });
const credentialsError = Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });

/** A machine with everything a deploy needs; tests take one thing away. */
function deps(overrides: Partial<DoctorDeps> = {}, commands: Record<string, CommandResult> = {}): DoctorDeps & { parameterReads: string[] } {
  const parameterReads: string[] = [];
  const run = (command: string, args: readonly string[]): CommandResult => {
    const key = [command, ...args].join(' ');
    if (key in commands) return commands[key]!;
    if (key.startsWith('docker info')) return okRun('27.0.3\n');
    if (key === 'docker buildx ls') return okRun('default * docker\n  default default running v0.16 linux/amd64, linux/arm64\n');
    if (key === 'gh variable list --json name') return okRun('[{"name":"ALARM_EMAIL"}]');
    if (key.startsWith('gh variable list --env')) return okRun('[{"name":"AWS_DEPLOY_ROLE_ARN"},{"name":"AWS_REGION"}]');
    return notInstalled;
  };
  return {
    nodeVersion: 'v22.12.0',
    arch: 'x64',
    env: { AWS_REGION: 'eu-west-1' },
    run,
    getParameter: async (name, region) => {
      parameterReads.push(`${region}:${name}`);
      return '30';
    },
    readFile: (p) => readFileSync(path.join(ROOT, p), 'utf8'),
    datasetsDir: path.join(ROOT, 'datasets'),
    parameterReads,
    ...overrides,
  };
}

describe('npm run doctor', () => {
  test('a machine ready to deploy: every check ok, exit 0, and the bootstrap version read from its SSM parameter', async () => {
    const d = deps();
    const results = await runChecks(d);
    assert.deepEqual(results.filter((r) => r.status !== 'ok').map((r) => `${r.name}: ${r.detail}`), []);
    assert.equal(exitCodeOf(results), 0);
    assert.deepEqual(d.parameterReads, ['eu-west-1:/cdk-bootstrap/hnb659fds/version']);
    assert.match(formatResults(results), /^ok {7}Node\.js: v22\.12\.0/m);
  });

  test('Node.js below package.json’s engines is missing, with the fix', () => {
    const r = checkNode(deps({ nodeVersion: 'v18.19.0' }));
    assert.equal(r.status, 'missing');
    assert.match(r.fix!, /install Node\.js 22/);
    assert.equal(checkNode(deps({ nodeVersion: 'v20.10.0' })).status, 'ok');
    assert.equal(checkNode(deps({ nodeVersion: 'v20.9.9' })).status, 'missing');
  });

  test('Docker: not installed, daemon down, no ARM64 emulation on x86 are each missing; an ARM64 machine needs no emulation', () => {
    const status = (d: DoctorDeps) => checkDocker(d).map((r) => r.status);
    assert.deepEqual(status(deps({}, { 'docker info --format {{.ServerVersion}}': notInstalled })), ['missing']);
    const down = checkDocker(deps({}, { 'docker info --format {{.ServerVersion}}': { status: 1, stdout: '', stderr: 'Cannot connect to the Docker daemon\n' } }));
    assert.deepEqual(down.map((r) => r.status), ['missing']);
    assert.match(down[0]!.fix!, /start the Docker daemon/);
    const noArm = checkDocker(deps({}, { 'docker buildx ls': okRun('default * docker\n  default default running v0.16 linux/amd64\n') }));
    assert.deepEqual(noArm.map((r) => r.status), ['ok', 'missing']);
    assert.match(noArm[1]!.fix!, /tonistiigi\/binfmt --install arm64/);
    assert.deepEqual(status(deps({ arch: 'arm64' }, { 'docker buildx ls': notInstalled })), ['ok', 'ok']);
    assert.deepEqual(status(deps({}, { 'docker buildx ls': notInstalled })), ['ok', 'missing']);
  });

  test('bootstrap: absent or older than 6 is missing; no credentials or no region is skipped (and reads nothing)', async () => {
    assert.equal((await checkBootstrap(deps({ getParameter: async () => undefined }))).status, 'missing');
    const old = await checkBootstrap(deps({ getParameter: async () => '5' }));
    assert.equal(old.status, 'missing');
    assert.match(old.fix!, /cdk bootstrap aws:\/\/<account>\/eu-west-1/);
    assert.equal((await checkBootstrap(deps({ getParameter: async () => '6' }))).status, 'ok');
    const noCreds = await checkBootstrap(deps({ getParameter: async () => Promise.reject(credentialsError) }));
    assert.equal(noCreds.status, 'skipped');
    const noRegion = deps({ env: {} });
    assert.equal((await checkBootstrap(noRegion)).status, 'skipped');
    assert.deepEqual(noRegion.parameterReads, []);
    const qualified = deps({ env: { AWS_REGION: 'us-east-2', CDK_QUALIFIER: 'abc123' } });
    await checkBootstrap(qualified);
    assert.deepEqual(qualified.parameterReads, ['us-east-2:/cdk-bootstrap/abc123/version']);
  });

  test('dataset files: an invalid one is missing, naming the file and field', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'doctor-datasets-'));
    const file = path.join(dir, 'sf-fire-incidents.json');
    copyFileSync(path.join(ROOT, 'datasets', 'sf-fire-incidents.json'), file);
    assert.equal(checkDatasets(deps({ datasetsDir: dir })).status, 'ok');
    const bad = JSON.parse(readFileSync(file, 'utf8'));
    bad.columns.push({ name: 'ingest_date', type: 'text' });
    writeFileSync(file, JSON.stringify(bad));
    const r = checkDatasets(deps({ datasetsDir: dir }));
    assert.equal(r.status, 'missing');
    assert.ok(r.detail.includes(file));
    assert.match(r.detail, /columns\.\d+\.name: column "ingest_date" is the raw table's partition key/);
  });

  test('GitHub: the variables the workflows read, checked with the GitHub CLI when logged in, else listed', () => {
    assert.deepEqual(workflowVariables(deps()), ['ALARM_EMAIL', 'AWS_DEPLOY_ROLE_ARN', 'AWS_REGION', 'RUNNER_ARM64', 'RUNNER_X64']);
    assert.deepEqual(checkGitHub(deps()).map((r) => r.status), ['ok']);
    const noEmail = checkGitHub(deps({}, { 'gh variable list --json name': okRun('[]') }));
    assert.equal(noEmail[0]!.status, 'missing');
    assert.match(noEmail[0]!.detail, /repository variable ALARM_EMAIL/);
    const noProdEnv = checkGitHub(deps({}, { 'gh variable list --env prod --json name': { status: 1, stdout: '', stderr: 'HTTP 404' } }));
    assert.match(noProdEnv[0]!.detail, /environment prod\b/);
    const noRole = checkGitHub(deps({}, { 'gh variable list --env prod-diff --json name': okRun('[{"name":"AWS_REGION"}]') }));
    assert.match(noRole[0]!.detail, /prod-diff: AWS_DEPLOY_ROLE_ARN/);
    const noCli = checkGitHub(deps({}, { 'gh variable list --json name': notInstalled }));
    assert.equal(noCli[0]!.status, 'skipped');
    assert.match(noCli[0]!.fix!, /ALARM_EMAIL.*AWS_DEPLOY_ROLE_ARN, AWS_REGION/);
  });

  test('a malformed OIDC subject prefix or provider ARN in the environment is missing', () => {
    const bad = checkGitHub(deps({ env: { GITHUB_OIDC_SUBJECT_PREFIX: 'repo:acme/*', GITHUB_OIDC_PROVIDER_ARN: 'arn:aws:iam::1:oidc-provider/x' } }));
    assert.deepEqual(bad.filter((r) => r.status === 'missing').map((r) => r.name), ['OIDC subject prefix (GITHUB_OIDC_SUBJECT_PREFIX)', 'Existing OIDC provider (GITHUB_OIDC_PROVIDER_ARN)']);
    assert.deepEqual(checkGitHub(deps({ env: { GITHUB_OIDC_SUBJECT_PREFIX: 'repo:acme-1/pipeline-2' } })).map((r) => r.status), ['ok']);
  });

  test('exit 1 when anything is missing, 0 when only skipped or warned', () => {
    assert.equal(exitCodeOf([{ name: 'a', status: 'skipped', detail: '' }, { name: 'b', status: 'warn', detail: '' }]), 0);
    assert.equal(exitCodeOf([{ name: 'a', status: 'ok', detail: '' }, { name: 'b', status: 'missing', detail: '', fix: 'x' }]), 1);
  });
});
