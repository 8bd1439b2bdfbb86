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
    assert.match(text, /run: \/usr\/bin\/chromium --version/, 'checks the image’s Chromium');
    assert.match(text, /^ {2}pull_request:/m);
    assert.match(text, /^ {2}push:/m);
    assert.match(text, /^ {2}workflow_call:/m);
    for (const step of ['npm ci', 'npm run typecheck', 'npm run lint', 'npm test', 'cdk synth -c env=dev', 'cdk synth -c env=prod', 'cfn-lint', "moto[server]"]) assert.ok(text.includes(step), step);
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

  describe('the runner image facts (test/fixtures/runner-images/ubuntu-24.04.json, from its published software list)', () => {
    const image = JSON.parse(readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'runner-images', 'ubuntu-24.04.json'), 'utf8')) as {
      label: string;
      commands: Record<string, { paths?: string[] }>;
      notInUbuntuArchive: Record<string, string>;
      availability: Record<string, string>;
    };
    const texts = WORKFLOWS.map((f) => [path.basename(f), read(f)] as const);

    test('no workflow installs a system package: what they need is on the image, and Ubuntu has no `chromium` package', () => {
      for (const [name, text] of texts) {
        assert.doesNotMatch(text, /\bapt(-get)? +install\b|\bsnap +install\b/, name);
        for (const pkg of Object.keys(image.notInUbuntuArchive)) assert.doesNotMatch(text, new RegExp(`install[^\\n]*\\b${pkg}\\b`), `${name} installs ${pkg}`);
      }
    });

    test('the tools the steps call directly are on the image, at the paths the steps and tests use', () => {
      const ci = texts[0]![1];
      const chromium = /run: (\/usr\/bin\/chromium\S*) --version/.exec(ci)?.[1];
      assert.ok(chromium && image.commands.chromium!.paths!.includes(chromium), `${chromium} is where the image links Chromium`);
      // The report tests look Chromium up at these paths (test/local/cli-report.test.ts).
      const lookup = /const CHROMIUM = (\[[^\]]+\])/.exec(read(path.join(REPO_ROOT, 'test', 'local', 'cli-report.test.ts')))?.[1];
      assert.ok(lookup?.includes(`'${chromium}'`), 'the tests look where the image has it');
      for (const [name, text] of texts) {
        for (const tool of ['pipx', 'docker']) if (new RegExp(`^\\s+(run: )?${tool} `, 'm').test(text)) assert.ok(image.commands[tool], `${name}: ${tool} is on the image`);
      }
      assert.match(ci, /^ {10}pipx install cfn-lint==/m);
      assert.ok(image.commands.pipx);
    });

    test('ci executes the Athena SQL on Trino: Java 24+ set up (the image has none) and Trino installed with the image\'s Maven before npm test', () => {
      const ci = texts[0]![1];
      const javaMajors = (image as unknown as { java: { versions: string[] } }).java.versions.map((v) => Number(v.split('.')[0]));
      assert.ok(javaMajors.every((m) => m < 24), 'the image has no Java Trino 476 runs on, so the workflow must bring one');
      const java = /uses: actions\/setup-java@[0-9a-f]{40} # v\S+\n\s+with:\n\s+distribution: temurin\n\s+java-version: '(\d+)'/.exec(ci);
      assert.ok(java && Number(java[1]) >= 24, 'actions/setup-java with Java 24 or newer');
      assert.ok(image.commands.mvn, 'scripts/install-trino.sh uses the image\'s Maven');
      const install = ci.indexOf('run: bash scripts/install-trino.sh');
      assert.ok(install > ci.indexOf('actions/setup-java') && install < ci.indexOf('run: npm test'), 'Trino is installed after Java and before the tests');
    });

    test('every job runs on a runner any repository gets unless a repository variable says otherwise; no hard-coded ARM label', () => {
      const defaultLabel = `'${image.label}'`;
      assert.match(image.availability[image.label]!, /private/);
      for (const [name, text] of texts) {
        const runsOn = [...text.matchAll(/^ {4}runs-on: (.+)$/gm)].map((m) => m[1]!);
        assert.ok(runsOn.length >= 1, name);
        for (const r of runsOn) assert.match(r, new RegExp(`^\\$\\{\\{ (vars\\.RUNNER_ARM64 \\|\\| )?vars\\.RUNNER_X64 \\|\\| ${defaultLabel} \\}\\}$`), `${name}: ${r}`);
        assert.doesNotMatch(text, /runs-on: ubuntu-24\.04-arm/, name);
      }
    });

    test('jobs that build the ARM64 image emulate ARM64 when the runner is not ARM64; the others need no ARM runner', () => {
      const text = read(WORKFLOWS[1]!);
      for (const job of ['deploy-dev', 'deploy-prod']) {
        const block = jobBlock(text, job);
        assert.match(block, /runs-on: \$\{\{ vars\.RUNNER_ARM64 \|\| vars\.RUNNER_X64 \|\| 'ubuntu-24\.04' \}\}/, job);
        assert.match(block, /if: runner\.arch != 'ARM64'\n {8}uses: docker\/setup-qemu-action@[0-9a-f]{40} # v\d+\.\d+\.\d+\n {8}with:\n {10}platforms: arm64/, job);
        assert.ok(block.indexOf('setup-qemu-action') < block.indexOf('cdk deploy'), `${job}: emulation before the image build`);
      }
      for (const job of ['synth', 'diff-prod']) assert.match(jobBlock(text, job), /runs-on: \$\{\{ vars\.RUNNER_X64 \|\| 'ubuntu-24\.04' \}\}/, job);
      // The image is built for ARM64 whatever the runner (the asset manifest's platform, tested in stacks.test.ts).
    });
  });
});
