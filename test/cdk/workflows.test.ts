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
      // A workflow of this repository (./.github/workflows/...) is the same commit: nothing to pin.
      for (const line of uses.filter((l) => !/uses: \.\/\.github\/workflows\//.test(l))) {
        assert.match(line, /uses: [\w.-]+\/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/, line);
      }
    });

    test(`${path.basename(file)}: read-only token by default, a timeout on every job`, () => {
      const text = read(file);
      assert.match(text, /^permissions:\n {2}contents: read\n/m);
      const jobs = [...jobsSection(text).matchAll(/^ {2}([a-z][\w-]*):$/gm)].map((m) => m[1]!);
      assert.ok(jobs.length >= 1);
      for (const job of jobs) {
        const block = jobBlock(text, job);
        // A job calling a reusable workflow takes no timeout-minutes; that workflow's jobs have theirs.
        if (/^ {4}uses: \.\/\.github\/workflows\/[\w-]+\.yml$/m.test(block)) continue;
        assert.match(block, /timeout-minutes: \d+/, job);
      }
      assert.doesNotMatch(text, /aws-access-key-id|AWS_SECRET_ACCESS_KEY/);
    });
  }

  test('ci: typecheck, lint, test (with cfn-lint, moto and Chromium, as .ci/run) and synth of both environments; callable by deploy', () => {
    const text = read(WORKFLOWS[0]!);
    assert.match(text, /^ {2}pull_request:/m);
    assert.match(text, /^ {2}push:/m);
    assert.match(text, /^ {2}workflow_call:/m);
    for (const step of ['npm ci', 'npm run typecheck', 'npm run lint', 'npm test', 'cdk synth -c env=dev', 'cdk synth -c env=prod', 'cfn-lint', "moto[server]", 'chromium']) assert.ok(text.includes(step), step);
    assert.doesNotMatch(text, /id-token/);
  });

  test('deploy: only main, only after CI passed on the commit, synthesized once, prod approver sees the diff, prod deploys the same assembly', () => {
    const text = read(WORKFLOWS[1]!);
    assert.match(text, /^on:\n {2}push:\n {4}branches: \[main\]/m);
    const ci = jobBlock(text, 'ci');
    assert.match(ci, /uses: \.\/\.github\/workflows\/ci\.yml/);
    assert.match(ci, /if: github\.ref == 'refs\/heads\/main'/);
    const synthJob = jobBlock(text, 'synth');
    assert.match(synthJob, /needs: ci\n/);
    assert.match(synthJob, /if: github\.ref == 'refs\/heads\/main'/);
    assert.match(synthJob, /cdk synth -c env=dev --quiet --output cdk\.out\/dev/);
    assert.match(synthJob, /cdk synth -c env=prod --quiet --output cdk\.out\/prod/);
    assert.match(synthJob, /actions\/upload-artifact@/);
    assert.doesNotMatch(synthJob, /id-token|configure-aws-credentials/, 'synth needs no credentials');

    const devJob = jobBlock(text, 'deploy-dev');
    const diffJob = jobBlock(text, 'diff-prod');
    const prodJob = jobBlock(text, 'deploy-prod');
    for (const [job, block] of [['deploy-dev', devJob], ['diff-prod', diffJob], ['deploy-prod', prodJob]] as const) {
      assert.match(block, /actions\/download-artifact@/, job);
      assert.match(block, /id-token: write/, job);
      assert.match(block, /role-to-assume: \$\{\{ vars\.AWS_DEPLOY_ROLE_ARN \}\}/, job);
      assert.match(block, /configure-aws-credentials@[0-9a-f]{40} # v5\./, `${job}: configure-aws-credentials on a current major`);
      assert.doesNotMatch(block, /cdk synth|cdk deploy -c /, `${job} uses the synthesized assembly, never a new synth`);
    }
    assert.match(devJob, /needs: synth\n/);
    assert.match(devJob, /environment: dev\n/);
    assert.match(devJob, /cdk deploy --app cdk\.out\/dev 'SocrataPipeline-dev-\*'/);
    assert.match(diffJob, /needs: deploy-dev\n/);
    assert.match(diffJob, /environment: prod-diff\n/);
    assert.match(diffJob, /cdk diff --app cdk\.out\/prod 'SocrataPipeline-prod-\*'/);
    assert.match(diffJob, /GITHUB_STEP_SUMMARY/);
    assert.match(prodJob, /needs: \[deploy-dev, diff-prod\]/);
    assert.match(prodJob, /environment: prod\n/);
    assert.match(prodJob, /cdk deploy --app cdk\.out\/prod 'SocrataPipeline-prod-\*'/);
  });
});
