/**
 * Preflight of a first deploy (`npm run doctor`): what can be checked on this machine, offline and
 * with read-only AWS credentials when there are some, before `cdk bootstrap` / `cdk deploy` or the
 * first push to main. Each check answers ok / missing (a deploy would fail: exit 1) / warn /
 * skipped, with the fix. Every collaborator (commands, AWS, files, environment) is injected, so the
 * tests run without credentials, network or Docker.
 */
import { loadDatasetDir } from '../runtime/dataset-config';
import { OIDC_PROVIDER_ARN, OIDC_SUBJECT_PREFIX, cicdConfig } from '../lib/config/environment-config';

export type CheckStatus = 'ok' | 'missing' | 'warn' | 'skipped';

export interface CheckResult {
  readonly name: string;
  readonly status: CheckStatus;
  /** What was found. */
  readonly detail: string;
  /** What to do, when the status is not ok. */
  readonly fix?: string;
}

export interface CommandResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface DoctorDeps {
  /** `process.version`. */
  readonly nodeVersion: string;
  /** `process.arch`. */
  readonly arch: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Runs a command without a shell; status null when it could not start (not installed). */
  readonly run: (command: string, args: readonly string[]) => CommandResult;
  /**
   * Reads an SSM parameter in `region`: its value, `undefined` when it does not exist; throws an
   * error named `CredentialsProviderError` when there are no credentials.
   */
  readonly getParameter: (name: string, region: string) => Promise<string | undefined>;
  /** The text of a repository file (package.json, the workflows). */
  readonly readFile: (relativePath: string) => string;
  readonly datasetsDir: string;
}

/** `cdk bootstrap` stack version this app's synthesizer requires (the templates' BootstrapVersion rule). */
export const MIN_BOOTSTRAP_VERSION = 6;

const ok = (name: string, detail: string): CheckResult => ({ name, status: 'ok', detail });
const missing = (name: string, detail: string, fix: string): CheckResult => ({ name, status: 'missing', detail, fix });

/** The smallest version `engines.node` allows (`>=20.10` → [20, 10, 0]). */
function minimumNode(packageJson: string): number[] {
  const range = (JSON.parse(packageJson) as { engines?: { node?: string } }).engines?.node ?? '>=22';
  return (/>=\s*(\d+(?:\.\d+){0,2})/.exec(range)?.[1] ?? '22').split('.').map(Number);
}

const atLeast = (version: number[], minimum: number[]): boolean => {
  for (let i = 0; i < 3; i++) {
    if ((version[i] ?? 0) !== (minimum[i] ?? 0)) return (version[i] ?? 0) > (minimum[i] ?? 0);
  }
  return true;
};

export function checkNode(deps: DoctorDeps): CheckResult {
  const minimum = minimumNode(deps.readFile('package.json'));
  const version = deps.nodeVersion.replace(/^v/, '').split('.').map(Number);
  const name = 'Node.js';
  return atLeast(version, minimum)
    ? ok(name, `${deps.nodeVersion} (package.json asks >=${minimum.join('.')}; the Lambdas run Node.js 22)`)
    : missing(name, `${deps.nodeVersion}, below ${minimum.join('.')}`, `install Node.js 22 (nvm install 22), then npm ci`);
}

/** Docker builds the ARM64 transform image at deploy: a daemon, and ARM64 natively or emulated. */
export function checkDocker(deps: DoctorDeps): CheckResult[] {
  const name = 'Docker (the ARM64 transform image is built at deploy)';
  const info = deps.run('docker', ['info', '--format', '{{.ServerVersion}}']);
  if (info.status === null) return [missing(name, 'no docker command', 'install Docker (Docker Engine, or Docker Desktop); only the machine that runs cdk deploy needs it')];
  if (info.status !== 0) return [missing(name, `docker is installed but its daemon does not answer: ${info.stderr.trim().split('\n')[0] ?? ''}`, 'start the Docker daemon (sudo systemctl start docker, or open Docker Desktop)')];
  const results = [ok(name, `daemon ${info.stdout.trim()}`)];
  const arm = 'Building linux/arm64 images';
  if (deps.arch === 'arm64') return [...results, ok(arm, 'this machine is ARM64: native builds')];
  const builders = deps.run('docker', ['buildx', 'ls']);
  if (builders.status !== 0) {
    return [...results, missing(arm, 'no docker buildx on an x86 machine', 'install the Docker Buildx plugin (docker-buildx-plugin), then register ARM64 emulation: docker run --privileged --rm tonistiigi/binfmt --install arm64')];
  }
  return /linux\/arm64/.test(builders.stdout)
    ? [...results, ok(arm, 'buildx lists linux/arm64 (QEMU emulation registered)')]
    : [...results, missing(arm, 'buildx does not list linux/arm64', 'register ARM64 emulation: docker run --privileged --rm tonistiigi/binfmt --install arm64 (or deploy from an ARM64 machine)')];
}

/** The bootstrap stack's version, from the SSM parameter `cdk bootstrap` writes. */
export async function checkBootstrap(deps: DoctorDeps): Promise<CheckResult> {
  const qualifier = deps.env.CDK_QUALIFIER ?? cicdConfig.bootstrapQualifier;
  const parameter = `/cdk-bootstrap/${qualifier}/version`;
  const name = `CDK bootstrap (${parameter})`;
  const region = deps.env.AWS_REGION ?? deps.env.AWS_DEFAULT_REGION ?? deps.env.CDK_DEFAULT_REGION;
  if (!region) return { name, status: 'skipped', detail: 'no region set', fix: 'set AWS_REGION to the target region (with read-only credentials) to check the bootstrap version' };
  let value: string | undefined;
  try {
    value = await deps.getParameter(parameter, region);
  } catch (err) {
    const e = err as Error;
    if (e.name === 'CredentialsProviderError') return { name, status: 'skipped', detail: `no AWS credentials (${region})`, fix: 'run with read-only credentials of the target account (AWS_PROFILE=...) to check it' };
    return { name, status: 'warn', detail: `could not read it in ${region}: ${e.name}: ${e.message}`, fix: 'the credentials need ssm:GetParameter on the parameter (the CDK lookup role has it)' };
  }
  if (value === undefined) return missing(name, `not found in ${region}: the account/region is not bootstrapped with qualifier ${qualifier}`, `npx cdk bootstrap aws://<account>/${region} (administrator credentials, once per account and region)`);
  const version = Number(value);
  return version >= MIN_BOOTSTRAP_VERSION
    ? ok(name, `version ${version} in ${region}`)
    : missing(name, `version ${value} in ${region}, below ${MIN_BOOTSTRAP_VERSION}`, `npx cdk bootstrap aws://<account>/${region} again to upgrade it`);
}

/** Dataset files validate (synth would refuse them) and fit the layout's quotas. */
export function checkDatasets(deps: DoctorDeps): CheckResult {
  const name = `Dataset definitions (${deps.datasetsDir})`;
  try {
    const datasets = loadDatasetDir(deps.datasetsDir);
    if (datasets.length === 0) return missing(name, 'no *.json file', 'add one: npm run dataset -- add <portal URL>');
    return ok(name, `${datasets.length} valid: ${datasets.map((d) => d.name).join(', ')} (one stack each)`);
  } catch (err) {
    return missing(name, (err as Error).message, 'fix the file and field named above');
  }
}

/** The GitHub Actions variables (`${{ vars.X }}`) the workflows read. */
export function workflowVariables(deps: DoctorDeps): string[] {
  const names = new Set<string>();
  for (const file of ['.github/workflows/ci.yml', '.github/workflows/deploy.yml']) {
    for (const m of deps.readFile(file).matchAll(/vars\.([A-Z0-9_]+)/g)) names.add(m[1]!);
  }
  return [...names].sort();
}

/** Variables without which a workflow fails; the RUNNER_* ones have defaults. */
const REPOSITORY_VARIABLES = ['ALARM_EMAIL'];
const ENVIRONMENT_VARIABLES = ['AWS_DEPLOY_ROLE_ARN', 'AWS_REGION'];
export const GITHUB_ENVIRONMENTS = ['dev', 'prod-diff', 'prod'];

/**
 * The GitHub settings the workflows read, through the GitHub CLI when it is installed and logged
 * in (read-only calls: `gh variable list`), else listed for a person to check.
 */
export function checkGitHub(deps: DoctorDeps): CheckResult[] {
  const read = workflowVariables(deps);
  const unknown = read.filter((v) => ![...REPOSITORY_VARIABLES, ...ENVIRONMENT_VARIABLES, 'RUNNER_X64', 'RUNNER_ARM64'].includes(v));
  const results: CheckResult[] = [];
  if (unknown.length) results.push({ name: 'Workflow variables', status: 'warn', detail: `the workflows read ${unknown.join(', ')}, which this check does not know`, fix: 'update local/doctor-checks.ts' });

  const prefix = deps.env.GITHUB_OIDC_SUBJECT_PREFIX;
  if (prefix !== undefined && !OIDC_SUBJECT_PREFIX.test(prefix)) {
    results.push(missing('OIDC subject prefix (GITHUB_OIDC_SUBJECT_PREFIX)', `"${prefix}" is not repo:<owner>/<name> or repo:<owner>-<id>/<name>-<id>`, 'copy the prefix GitHub shows under Settings → Actions → OIDC, without ":environment:..."'));
  }
  const provider = deps.env.GITHUB_OIDC_PROVIDER_ARN;
  if (provider !== undefined && !OIDC_PROVIDER_ARN.test(provider)) {
    results.push(missing('Existing OIDC provider (GITHUB_OIDC_PROVIDER_ARN)', `"${provider}" is not a token.actions.githubusercontent.com provider ARN`, 'aws iam list-open-id-connect-providers shows it'));
  }

  const name = 'GitHub variables the workflows read';
  const expected = `repository: ${REPOSITORY_VARIABLES.join(', ')} (optional RUNNER_X64, RUNNER_ARM64); environments ${GITHUB_ENVIRONMENTS.join(', ')}: ${ENVIRONMENT_VARIABLES.join(', ')}`;
  const repoList = deps.run('gh', ['variable', 'list', '--json', 'name']);
  if (repoList.status === null || repoList.status !== 0) {
    results.push({ name, status: 'skipped', detail: `GitHub CLI ${repoList.status === null ? 'not installed' : 'not logged in or no repository'}: check by hand`, fix: `Settings → Secrets and variables → Actions: ${expected} (docs/deploy.md, first deploy)` });
    return results;
  }
  const names = (text: string) => new Set((JSON.parse(text || '[]') as Array<{ name: string }>).map((v) => v.name));
  const absent: string[] = [];
  const repoVars = names(repoList.stdout);
  for (const v of REPOSITORY_VARIABLES) if (!repoVars.has(v)) absent.push(`repository variable ${v}`);
  for (const environment of GITHUB_ENVIRONMENTS) {
    const list = deps.run('gh', ['variable', 'list', '--env', environment, '--json', 'name']);
    if (list.status !== 0) {
      absent.push(`environment ${environment}`);
      continue;
    }
    const envVars = names(list.stdout);
    for (const v of ENVIRONMENT_VARIABLES) if (!envVars.has(v)) absent.push(`${environment}: ${v}`);
  }
  results.push(absent.length ? missing(name, `absent: ${absent.join('; ')}`, `create them: ${expected} (docs/deploy.md, first deploy)`) : ok(name, expected));
  return results;
}

/** Every check, in the order a first deploy needs them. */
export async function runChecks(deps: DoctorDeps): Promise<CheckResult[]> {
  return [checkNode(deps), ...checkDocker(deps), await checkBootstrap(deps), checkDatasets(deps), ...checkGitHub(deps)];
}

/** Exit code: 1 when a deploy would fail (something missing), else 0. */
export const exitCodeOf = (results: readonly CheckResult[]): number => (results.some((r) => r.status === 'missing') ? 1 : 0);

export function formatResults(results: readonly CheckResult[]): string {
  const mark: Record<CheckStatus, string> = { ok: 'ok     ', missing: 'MISSING', warn: 'warn   ', skipped: 'skipped' };
  return results.map((r) => `${mark[r.status]}  ${r.name}: ${r.detail}${r.fix && r.status !== 'ok' ? `\n         fix: ${r.fix}` : ''}`).join('\n');
}
