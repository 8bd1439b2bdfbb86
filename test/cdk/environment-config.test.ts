import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadDatasetFile, pointFieldNames } from '../../runtime/dataset-config';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { App } from 'aws-cdk-lib';
import { ENVIRONMENT_NAMES, loadEnvironment, oidcSubject, parseCicd, parseEnvironment, PLACEHOLDER_REPOSITORY, resolveDeploySettings } from '../../lib/config/environment-config';
import { buildPipelineApp } from '../../lib/pipeline-app';
import { readFetcherConfig } from '../../lambdas/fetcher/config';
import { fetcherEnvironment } from '../../runtime/fetcher-environment';
import { rawTableColumns } from '../../lib/constructs/raw-table';

const sfFire = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'));

describe('environment configuration', () => {
  test('dev and prod validate; prod retains data and runs on schedule, dev does not', () => {
    assert.deepEqual([...ENVIRONMENT_NAMES].sort(), ['dev', 'prod']);
    const dev = loadEnvironment('dev');
    const prod = loadEnvironment('prod');
    assert.equal(dev.scheduleEnabled, false);
    assert.equal(dev.removalPolicy, 'destroy');
    assert.equal(prod.scheduleEnabled, true);
    assert.equal(prod.removalPolicy, 'retain');
    assert.ok(prod.logRetentionDays > dev.logRetentionDays);
  });

  test('an unknown environment names the valid ones', () => {
    assert.throws(() => loadEnvironment('staging'), /Unknown environment "staging": use -c env=<dev\|prod>/);
  });

  test('a bad value fails naming the field', () => {
    const bad = { ...loadEnvironment('dev'), logRetentionDays: 15, alarmEmail: 'not-an-address' };
    assert.throws(
      () => parseEnvironment(bad, 'test'),
      (err: Error) => /logRetentionDays: must be one of 1, 3, 5/.test(err.message) && /alarmEmail:/.test(err.message),
    );
    assert.throws(() => parseEnvironment({ ...loadEnvironment('dev'), data: { ...loadEnvironment('dev').data, rawInfrequentAccessAfterDays: 10 } }, 'test'), /data\.rawInfrequentAccessAfterDays/);
  });

  describe('deploy settings (alarm e-mail, GitHub repository) come from context or environment variables', () => {
    const noContext = (): undefined => undefined;
    const context = (values: Record<string, string>) => (key: string) => values[key];

    test('prod without them fails naming the context keys and variables to set', () => {
      assert.throws(
        () => resolveDeploySettings('prod', noContext, {}),
        (err: Error) =>
          err.name === 'EnvironmentConfigError' &&
          /Environment "prod" needs alarmEmail and githubRepository/.test(err.message) &&
          /-c alarmEmail=\S+ \(or ALARM_EMAIL\)/.test(err.message) &&
          /-c githubRepository=\S+ \(or GITHUB_REPOSITORY\)/.test(err.message) &&
          !err.message.includes('\n'),
      );
      // Only the one still missing is named.
      assert.throws(() => resolveDeploySettings('prod', noContext, { GITHUB_REPOSITORY: 'acme/pipeline' }), (err: Error) => /needs alarmEmail \(never committed\)/.test(err.message) && !/githubRepository/.test(err.message.split(':')[0]!));
    });

    test('cdk synth -c env=prod (buildPipelineApp) fails the same way before building anything', () => {
      const saved = { a: process.env.ALARM_EMAIL, g: process.env.GITHUB_REPOSITORY };
      delete process.env.ALARM_EMAIL;
      delete process.env.GITHUB_REPOSITORY;
      try {
        const app = new App({ outdir: mkdtempSync(path.join(tmpdir(), 'cdk-out-')), context: { env: 'prod' } });
        assert.throws(() => buildPipelineApp(app), /Environment "prod" needs alarmEmail and githubRepository/);
      } finally {
        if (saved.a !== undefined) process.env.ALARM_EMAIL = saved.a;
        if (saved.g !== undefined) process.env.GITHUB_REPOSITORY = saved.g;
      }
    });

    test('bin/app.ts (what `cdk synth` runs) prints that message as one line, no stack, and exits 2', () => {
      const env: Record<string, string | undefined> = { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ env: 'prod' }), CDK_OUTDIR: mkdtempSync(path.join(tmpdir(), 'cdk-out-')) };
      delete env.ALARM_EMAIL;
      delete env.GITHUB_REPOSITORY;
      const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, '..', '..', 'bin', 'app.ts')], { env, encoding: 'utf8', timeout: 120_000 });
      assert.equal(r.status, 2, r.stderr);
      assert.deepEqual(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^Environment "prod" needs alarmEmail and githubRepository/);
    });

    test('from environment variables (as GitHub Actions passes them), context winning over them', () => {
      const fromEnv = resolveDeploySettings('prod', noContext, { ALARM_EMAIL: 'ops@acme.test', GITHUB_REPOSITORY: 'acme/pipeline' });
      assert.equal(fromEnv.config.alarmEmail, 'ops@acme.test');
      assert.equal(fromEnv.cicd.repository, 'acme/pipeline');
      const both = resolveDeploySettings('prod', context({ alarmEmail: 'oncall@acme.test', githubRepository: 'acme/fork' }), { ALARM_EMAIL: 'ops@acme.test', GITHUB_REPOSITORY: 'acme/pipeline' });
      assert.equal(both.config.alarmEmail, 'oncall@acme.test');
      assert.equal(both.cicd.repository, 'acme/fork');
    });

    test('a given value is validated like the rest of the configuration', () => {
      assert.throws(() => resolveDeploySettings('prod', context({ alarmEmail: 'nobody', githubRepository: 'acme/pipeline' }), {}), /alarmEmail: /);
      assert.throws(() => resolveDeploySettings('prod', context({ alarmEmail: 'ops@acme.test', githubRepository: 'acme' }), {}), /repository: must be owner\/name/);
    });

    test('both workflows give prod synth its alarm e-mail from the repository variable, and only prod', () => {
      for (const file of ['ci.yml', 'deploy.yml']) {
        const text = readFileSync(path.join(import.meta.dirname, '..', '..', '.github', 'workflows', file), 'utf8');
        assert.match(text, /PROD_ALARM_EMAIL: \$\{\{ vars\.ALARM_EMAIL \}\}/, file);
        assert.match(text, /ALARM_EMAIL="\$PROD_ALARM_EMAIL" npx cdk synth -c env=prod /, file);
        assert.match(text, /^ {10}npx cdk synth -c env=dev /m, `${file}: dev is synthesized without it`);
      }
    });

    test('dev needs neither: no alarm subscription, the placeholder repository until one is given', () => {
      const dev = resolveDeploySettings('dev', noContext, {});
      assert.equal(dev.config.alarmEmail, undefined);
      assert.equal(dev.cicd.repository, PLACEHOLDER_REPOSITORY);
      assert.equal(resolveDeploySettings('dev', noContext, { GITHUB_REPOSITORY: 'acme/pipeline' }).cicd.repository, 'acme/pipeline');
    });
  });

  test('CI/CD repository must be owner/name', () => {
    assert.throws(() => parseCicd({ repository: 'just-a-name', bootstrapQualifier: 'hnb659fds' }), /repository: must be owner\/name/);
  });

  test('the OIDC subject prefix: today’s format by default, the immutable one when given, never a pattern', () => {
    const noContext = () => undefined;
    assert.equal(oidcSubject(resolveDeploySettings('dev', noContext, { GITHUB_REPOSITORY: 'acme/pipeline' }).cicd, 'dev'), 'repo:acme/pipeline:environment:dev');
    const immutable = resolveDeploySettings('dev', (k) => (k === 'githubOidcSubjectPrefix' ? 'repo:acme-123/pipeline-456' : undefined), { GITHUB_REPOSITORY: 'acme/pipeline' });
    assert.equal(oidcSubject(immutable.cicd, 'prod-diff'), 'repo:acme-123/pipeline-456:environment:prod-diff');
    assert.equal(oidcSubject(resolveDeploySettings('dev', noContext, { GITHUB_OIDC_SUBJECT_PREFIX: 'repo:acme-123/pipeline-456' }).cicd, 'dev'), 'repo:acme-123/pipeline-456:environment:dev');
    for (const bad of ['repo:acme/*', 'repo:acme/pipeline:environment:dev', 'acme/pipeline', 'repo:acme/pipe?ine']) {
      assert.throws(() => resolveDeploySettings('dev', (k) => (k === 'githubOidcSubjectPrefix' ? bad : undefined), {}), /oidcSubjectPrefix: must be repo:<owner>\/<name> or repo:<owner>-<owner-id>/, bad);
    }
  });

  test('an existing OIDC provider is given by its ARN, for GitHub’s URL only', () => {
    const arn = 'arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com';
    assert.equal(resolveDeploySettings('dev', (k) => (k === 'githubOidcProviderArn' ? arn : undefined), {}).cicd.oidcProviderArn, arn);
    assert.throws(() => resolveDeploySettings('dev', () => undefined, { GITHUB_OIDC_PROVIDER_ARN: 'arn:aws:iam::111122223333:oidc-provider/accounts.google.com' }), /oidcProviderArn: must be arn:aws:iam/);
  });
});

describe('fetcher environment contract', () => {
  test('exactly the variables lambdas/fetcher/config.ts reads, derived from the dataset', () => {
    const env = fetcherEnvironment({ dataset: sfFire, deliveryStreamName: 'stream-1', stateLocation: 's3://raw-bucket', metricsNamespace: 'SocrataPipeline/dev' });
    assert.deepEqual(Object.keys(env).sort(), [
      'DATASET_NAME', 'DECLARED_COLUMNS', 'DELETIONS_DETECT', 'DELIVERY_STREAM_NAME', 'KEY_SCAN_EVERY_HOURS', 'LOOKBACK_MINUTES', 'MAX_ATTEMPTS', 'MAX_QUARANTINE_SHARE', 'PAGE_SIZE', 'PARALLEL_MIN_ROWS', 'POINT_COLUMNS',
      'POWERTOOLS_LOG_LEVEL', 'POWERTOOLS_METRICS_NAMESPACE', 'POWERTOOLS_SERVICE_NAME', 'PRIMARY_KEY',
      'REQUEST_TIMEOUT_SECONDS', 'SOURCE_DATASET_ID', 'SOURCE_DOMAIN', 'STATE_LOCATION', 'STREAMS',
    ]);
    // Parallel backfills: the dataset's ranges and threshold; the concurrency limit only when it sets one.
    assert.deepEqual([env.STREAMS, env.PARALLEL_MIN_ROWS], [String(sfFire.fetch.streams), String(sfFire.fetch.parallelMinRows)]);
    const limited = fetcherEnvironment({ dataset: { ...sfFire, fetch: { ...sfFire.fetch, maxConcurrentStreams: 2 } }, deliveryStreamName: 's', stateLocation: 's3://b', metricsNamespace: 'n' });
    assert.equal(limited.MAX_CONCURRENT_STREAMS, '2');
    assert.deepEqual(
      (({ streams, maxConcurrentStreams, parallelMinRows }) => ({ streams, maxConcurrentStreams, parallelMinRows }))(readFetcherConfig(limited)),
      { streams: sfFire.fetch.streams, maxConcurrentStreams: 2, parallelMinRows: sfFire.fetch.parallelMinRows },
    );
    assert.equal(env.SOURCE_DOMAIN, 'data.sfgov.org');
    assert.equal(env.SOURCE_DATASET_ID, 'wr8u-xric');
    assert.equal(env.PRIMARY_KEY, 'id');
    assert.equal(env.POINT_COLUMNS, 'point');
    assert.equal(env.PAGE_SIZE, String(sfFire.fetch.pageSize));
    assert.equal(env.STATE_LOCATION, 's3://raw-bucket');
    // Lambda caps the whole environment at 4 KB.
    assert.ok(Buffer.byteLength(JSON.stringify(env)) < 4096);
  });

  test('the app-token secret is passed by name only, and only when the dataset has one', () => {
    const withToken = { ...sfFire, source: { ...sfFire.source, appTokenSecretName: 'socrata/app-token' } };
    const env = fetcherEnvironment({ dataset: withToken, deliveryStreamName: 's', stateLocation: 's3://b', metricsNamespace: 'n' });
    assert.equal(env.APP_TOKEN_SECRET_NAME, 'socrata/app-token');
  });
});

describe('raw table columns', () => {
  test('every declared column is a string except the point struct; coordinates and metadata follow', () => {
    const columns = rawTableColumns(sfFire);
    const byName = new Map(columns.map((c) => [c.name, c.type]));
    assert.equal(byName.get('incident_date'), 'string');
    assert.equal(byName.get('suppression_units'), 'string');
    assert.equal(byName.get('point'), 'struct<type:string,coordinates:array<double>>');
    const p = pointFieldNames('point');
    assert.equal(byName.get(p.longitude), 'double');
    assert.equal(byName.get(p.latitude), 'double');
    for (const meta of ['_ingested_at', '_run_id', '_source_updated_at', '_source_id']) assert.equal(byName.get(meta), 'string');
    assert.equal(columns.length, sfFire.columns.length + 2 + 4);
  });
});
