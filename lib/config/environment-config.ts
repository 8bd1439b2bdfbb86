/**
 * Per-environment configuration, typed and validated. `cdk synth|deploy -c env=<name>` picks one;
 * nothing environment-specific lives in the stacks themselves.
 */
import { z } from 'zod';
import { devConfig } from './dev';
import { prodConfig } from './prod';
import { ConfigError } from '../../runtime/pipeline-error';

/** Retention periods CloudWatch Logs accepts; anything else fails synth instead of deploy. */
export const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

export const environmentSchema = z
  .strictObject({
    /** Short name, part of every stack and resource name (`SocrataPipeline-<name>-...`). */
    name: z.string().regex(/^[a-z][a-z0-9]{1,11}$/, 'must be 2-12 lower-case letters/digits'),
    /** Target account and region; unset means env-agnostic (CDK_DEFAULT_ACCOUNT/REGION at deploy). */
    account: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id').optional(),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region such as eu-west-1').optional(),
    /** Whether each dataset's EventBridge schedule is enabled (runs can always be started by hand). */
    scheduleEnabled: z.boolean(),
    /**
     * `customer-managed`: one KMS key of this environment encrypts the buckets, the Firehose stream,
     * Athena results and crawler logs, and another the notification topic (1 USD a month each).
     * `aws-managed`: no customer-managed key: SSE-S3 on the buckets and Athena results, the AWS-owned
     * key on the stream, CloudWatch Logs' default encryption, and an unencrypted topic (alarms
     * cannot publish to a topic under the AWS-managed SNS key). For a development account.
     */
    encryption: z.enum(['customer-managed', 'aws-managed']),
    /** One CloudWatch dashboard for the environment, a row per dataset (3 USD a month at list price). */
    dashboard: z.boolean(),
    /** `retain` keeps buckets, key and catalog when a stack is deleted; `destroy` removes them. */
    removalPolicy: z.enum(['retain', 'destroy']),
    logRetentionDays: z.number().refine((n) => (LOG_RETENTION_DAYS as readonly number[]).includes(n), {
      message: `must be one of ${LOG_RETENTION_DAYS.join(', ')}`,
    }),
    /**
     * Alarm and run notifications go here (an SNS e-mail subscription, confirmed by the recipient).
     * Given at synth (`-c alarmEmail=` or ALARM_EMAIL), not committed: see `resolveDeploySettings`.
     */
    alarmEmail: z.email().optional(),
    /**
     * Settings this environment cannot be synthesized without (no placeholder may reach it):
     * `alarmEmail` (nobody would hear of a failed run) and `githubRepository` (the deploy roles
     * would trust a repository that is not yours).
     */
    requiredSettings: z.array(z.enum(['alarmEmail', 'githubRepository'])).optional(),
    data: z.strictObject({
      /** Raw objects move to S3 Standard-IA after this many days (S3 requires at least 30). */
      rawInfrequentAccessAfterDays: z.number().int().min(30),
      /** Raw objects expire after this many days; unset keeps them forever. */
      rawExpireAfterDays: z.number().int().min(1).optional(),
      /** Noncurrent versions of raw objects (the raw bucket is versioned) expire after this many days. */
      rawNoncurrentExpireAfterDays: z.number().int().min(1),
      /** Athena query results expire after this many days. */
      athenaResultsExpireAfterDays: z.number().int().min(1),
      /** S3 server access logs expire after this many days. */
      accessLogsExpireAfterDays: z.number().int().min(1),
    }),
    athena: z.strictObject({
      /** Per-query bytes-scanned cutoff of the workgroup (Athena's minimum is 10 MB). */
      bytesScannedCutoffPerQuery: z.number().int().min(10_000_000),
    }),
    fetcher: z.strictObject({
      memoryMiB: z.number().int().min(128).max(10_240),
      /** Each invocation works until close to this limit, then returns a cursor. */
      timeoutSeconds: z.number().int().min(30).max(900),
    }),
    transform: z.strictObject({
      /** Fargate CPU units and memory; must be a valid Fargate combination. */
      cpu: z.union([z.literal(256), z.literal(512), z.literal(1024), z.literal(2048), z.literal(4096)]),
      memoryMiB: z.number().int().min(512).max(30_720),
    }),
    orchestration: z.strictObject({
      /** A whole run (fetch loop, crawler, transform) fails after this long. */
      runTimeoutMinutes: z.number().int().min(10).max(24 * 60),
      /** Data-freshness alarm threshold on Firehose delivery to S3. */
      freshnessAlarmSeconds: z.number().int().min(60),
    }),
  });

export type EnvironmentConfig = z.infer<typeof environmentSchema>;

/**
 * The start of the OIDC `sub` claim of one repository, in either format GitHub issues:
 * `repo:<owner>/<name>` (repositories created before 2026-06-18 that did not opt in), or the
 * immutable `repo:<owner>-<owner-id>/<name>-<repo-id>` (GitHub changelog 2026-04-23: repositories
 * created, renamed or transferred after 2026-06-18, and those that opt in). No wildcard and no
 * `:`: the roles compare the whole subject with StringEquals, so one prefix is one repository.
 */
export const OIDC_SUBJECT_PREFIX = /^repo:[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

/** ARN of an IAM OIDC provider for token.actions.githubusercontent.com that already exists. */
export const OIDC_PROVIDER_ARN = /^arn:aws[a-z-]*:iam::\d{12}:oidc-provider\/token\.actions\.githubusercontent\.com$/;

/** The GitHub side of CI/CD: which repository's workflows may assume the deploy roles. */
export const cicdSchema = z.strictObject({
  /** `owner/name` of the GitHub repository. */
  repository: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'must be owner/name'),
  /**
   * What the deploy and diff roles require the token's `sub` to start with (then
   * `:environment:<env>`). Unset: `repo:<repository>`, today's format. Set it to the prefix
   * GitHub's OIDC settings show for the repository when it uses the immutable format.
   */
  oidcSubjectPrefix: z
    .string()
    .regex(OIDC_SUBJECT_PREFIX, 'must be repo:<owner>/<name> or repo:<owner>-<owner-id>/<name>-<repo-id>, without wildcards or ":environment:..."')
    .optional(),
  /**
   * The account's existing GitHub OIDC provider (an account holds one per URL). Unset: the CI/CD
   * stack creates it.
   */
  oidcProviderArn: z.string().regex(OIDC_PROVIDER_ARN, 'must be arn:aws:iam::<account>:oidc-provider/token.actions.githubusercontent.com').optional(),
  /** CDK bootstrap qualifier the deploy roles may assume roles of (`cdk bootstrap --qualifier`). */
  bootstrapQualifier: z.string().regex(/^[a-z0-9]{1,10}$/),
});
export type CicdConfig = z.infer<typeof cicdSchema>;

/**
 * The repository an environment that does not require one (dev) uses when none is given: a
 * placeholder, so synth works on a fresh clone; an environment with `githubRepository` in its
 * `requiredSettings` (prod) refuses it.
 */
export const PLACEHOLDER_REPOSITORY = 'example-org/socrata-athena-pipeline';

export const cicdConfig: CicdConfig = {
  repository: PLACEHOLDER_REPOSITORY,
  bootstrapQualifier: 'hnb659fds',
};

const ENVIRONMENTS: Record<string, unknown> = { dev: devConfig, prod: prodConfig };

export const ENVIRONMENT_NAMES = Object.keys(ENVIRONMENTS);

/** Thrown for an unknown environment name or a configuration that does not validate. */
export class EnvironmentConfigError extends ConfigError {
  override name = 'EnvironmentConfigError';
}

/** Validate one environment's configuration; the message names the environment and each bad field. */
export function parseEnvironment(value: unknown, source: string): EnvironmentConfig {
  const result = environmentSchema.safeParse(value);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  - ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
    throw new EnvironmentConfigError(`Invalid environment configuration ${source}:\n${lines.join('\n')}`);
  }
  return result.data;
}

/** The validated configuration of a named environment. */
export function loadEnvironment(name: string): EnvironmentConfig {
  const value = ENVIRONMENTS[name];
  if (value === undefined) {
    throw new EnvironmentConfigError(`Unknown environment "${name}": use -c env=<${ENVIRONMENT_NAMES.join('|')}>`);
  }
  return parseEnvironment(value, `"${name}" (lib/config/${name}.ts)`);
}

/**
 * Where each deploy setting can be given, first found wins: CDK context (`-c key=value`), then the
 * environment variable (GITHUB_REPOSITORY is set by GitHub Actions on every run; the workflows pass
 * ALARM_EMAIL from the repository variable `vars.ALARM_EMAIL`).
 */
export const DEPLOY_SETTINGS = {
  alarmEmail: { context: 'alarmEmail', variable: 'ALARM_EMAIL', example: 'data-alerts@your-org.example' },
  githubRepository: { context: 'githubRepository', variable: 'GITHUB_REPOSITORY', example: 'your-org/socrata-athena-pipeline' },
  githubOidcSubjectPrefix: { context: 'githubOidcSubjectPrefix', variable: 'GITHUB_OIDC_SUBJECT_PREFIX', example: 'repo:your-org-123456/socrata-athena-pipeline-456789' },
  githubOidcProviderArn: { context: 'githubOidcProviderArn', variable: 'GITHUB_OIDC_PROVIDER_ARN', example: 'arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com' },
} as const;
export type DeploySetting = keyof typeof DEPLOY_SETTINGS;

/**
 * The environment and CI/CD configuration with the deploy settings applied. `context(key)` reads
 * CDK context (undefined when absent or empty). Fails, naming the context key and the variable to
 * set, when the environment requires a setting that was not given.
 */
export function resolveDeploySettings(
  name: string,
  context: (key: string) => string | undefined,
  variables: Record<string, string | undefined> = process.env,
): { config: EnvironmentConfig; cicd: CicdConfig } {
  const given = (setting: DeploySetting): string | undefined => {
    const { context: key, variable } = DEPLOY_SETTINGS[setting];
    return context(key) || variables[variable] || undefined;
  };
  const base = loadEnvironment(name);
  const missing = (base.requiredSettings ?? []).filter((s) => given(s) === undefined);
  if (missing.length) {
    const how = missing.map((s) => `-c ${DEPLOY_SETTINGS[s].context}=${DEPLOY_SETTINGS[s].example} (or ${DEPLOY_SETTINGS[s].variable})`).join(' and ');
    throw new EnvironmentConfigError(
      `Environment "${name}" needs ${missing.join(' and ')} (never committed): pass ${how} to cdk synth/deploy ` +
        '(GitHub Actions: GITHUB_REPOSITORY is set for you; set the repository variable ALARM_EMAIL). See docs/deploy.md.',
    );
  }
  const alarmEmail = given('alarmEmail');
  const repository = given('githubRepository');
  const oidcSubjectPrefix = given('githubOidcSubjectPrefix');
  const oidcProviderArn = given('githubOidcProviderArn');
  const config = alarmEmail ? parseEnvironment({ ...base, alarmEmail }, `"${name}" with alarmEmail "${alarmEmail}" (from -c alarmEmail or ALARM_EMAIL)`) : base;
  const cicd = parseCicd({
    ...cicdConfig,
    ...(repository ? { repository } : {}),
    ...(oidcSubjectPrefix ? { oidcSubjectPrefix } : {}),
    ...(oidcProviderArn ? { oidcProviderArn } : {}),
  });
  return { config, cicd };
}

/** Validate the CI/CD configuration. */
export function parseCicd(value: unknown): CicdConfig {
  const result = cicdSchema.safeParse(value);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  - ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new EnvironmentConfigError(
      `Invalid CI/CD configuration (from -c githubRepository / GITHUB_REPOSITORY, -c githubOidcSubjectPrefix / GITHUB_OIDC_SUBJECT_PREFIX, -c githubOidcProviderArn / GITHUB_OIDC_PROVIDER_ARN):\n${lines.join('\n')}`,
    );
  }
  return result.data;
}

/** The `sub` claim a job of this repository running in GitHub environment `environment` presents. */
export function oidcSubject(cicd: CicdConfig, environment: string): string {
  return `${cicd.oidcSubjectPrefix ?? `repo:${cicd.repository}`}:environment:${environment}`;
}
