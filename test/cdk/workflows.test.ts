/** The GitHub Actions workflows: schema-valid (action-validator), pinned, least-privilege, time-limited. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT } from './app-fixture';

const VALIDATOR = path.join(REPO_ROOT, 'node_modules', '.bin', 'action-validator');
const WORKFLOWS = ['ci.yml', 'deploy.yml'].map((f) => path.join(REPO_ROOT, '.github', 'workflows', f));

const validate = (file: string) => spawnSync(VALIDATOR, [file], { encoding: 'utf8' });
const read = (file: string) => readFileSync(file, 'utf8');
/** Everything under the top-level `jobs:` key. */
function jobsSection(text: string): string {
  const at = text.indexOf('\njobs:\n');
  assert.ok(at >= 0, 'no jobs: section');
  return text.slice(at + '\njobs:\n'.length);
}

/** The lines of one job (from `  <job>:` to the next job or the end). */
function jobBlock(text: string, job: string): string {
  const lines = jobsSection(text).split('\n');
  const start = lines.findIndex((l) => l === `  ${job}:`);
  assert.ok(start >= 0, `job ${job} not found`);
  const end = lines.findIndex((l, i) => i > start && /^ {2}[a-z][\w-]*:$/.test(l));
  return lines.slice(start, end < 0 ? undefined : end).join('\n');
}

describe('GitHub Actions workflows', () => {
  test('the validator rejects a malformed workflow (so its approval below means something)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'wf-'));
    const bad = path.join(dir, 'bad.yml');
    writeFileSync(bad, 'on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    stepz: []\n');
    const result = validate(bad);
    assert.notEqual(result.status, 0);
    assert.match(result.stdout + result.stderr, /stepz/);
  });

  for (const file of WORKFLOWS) {
    test(`${path.basename(file)} passes action-validator`, () => {
      const result = validate(file);
      assert.equal(result.status, 0, result.stdout + result.stderr);
    });

    test(`${path.basename(file)}: every action pinned to a full commit SHA with its version noted`, () => {
      const uses = read(file).split('\n').filter((l) => /^\s*-?\s*uses:/.test(l));
      assert.ok(uses.length >= 2);
      for (const line of uses) assert.match(line, /uses: [\w.-]+\/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/, line);
    });

    test(`${path.basename(file)}: read-only token by default, a timeout on every job`, () => {
      const text = read(file);
      assert.match(text, /^permissions:\n {2}contents: read\n/m);
      const jobs = [...jobsSection(text).matchAll(/^ {2}([a-z][\w-]*):$/gm)].map((m) => m[1]!);
      assert.ok(jobs.length >= 1);
      for (const job of jobs) assert.match(jobBlock(text, job), /timeout-minutes: \d+/, job);
      assert.doesNotMatch(text, /aws-access-key-id|AWS_SECRET_ACCESS_KEY/);
    });
  }

  test('ci: typecheck, lint, test and synth of both environments', () => {
    const text = read(WORKFLOWS[0]!);
    assert.match(text, /^ {2}pull_request:/m);
    assert.match(text, /^ {2}push:/m);
    for (const step of ['npm ci', 'npm run typecheck', 'npm run lint', 'npm test', 'cdk synth -c env=dev', 'cdk synth -c env=prod']) assert.ok(text.includes(step), step);
    assert.doesNotMatch(text, /id-token/);
  });

  test('deploy: dev on push to main, prod after dev behind its environment, OIDC only in deploy jobs', () => {
    const text = read(WORKFLOWS[1]!);
    assert.match(text, /^on:\n {2}push:\n {4}branches: \[main\]/m);
    const devJob = jobBlock(text, 'deploy-dev');
    const prodJob = jobBlock(text, 'deploy-prod');
    assert.match(devJob, /environment: dev\n/);
    assert.match(devJob, /id-token: write/);
    assert.match(devJob, /cdk deploy -c env=dev 'SocrataPipeline-dev-\*'/);
    assert.match(prodJob, /needs: deploy-dev/);
    assert.match(prodJob, /environment: prod\n/);
    assert.match(prodJob, /id-token: write/);
    assert.match(prodJob, /role-to-assume: \$\{\{ vars\.AWS_DEPLOY_ROLE_ARN \}\}/);
    assert.match(prodJob, /cdk deploy -c env=prod 'SocrataPipeline-prod-\*'/);
  });
});
