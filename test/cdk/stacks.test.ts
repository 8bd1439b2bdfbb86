/* eslint-disable @typescript-eslint/no-explicit-any -- assertions navigate synthesized CloudFormation JSON ad hoc */
/**
 * Fine-grained assertions on the synthesized dev and prod templates, one describe per construct,
 * plus cdk-nag (through the synth itself) and cfn-lint on every template. Two synths in total.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Match } from 'aws-cdk-lib/assertions';
import { REPO_ROOT, stateMachineDefinition, statementsOfRole, synth } from './app-fixture';

const dev = synth({ env: 'dev' });
const prod = synth({ env: 'prod' });
const { storage, shared, dataset, cicd } = dev.templates;

const actionsOf = (statements: Array<Record<string, unknown>>): string[] => statements.flatMap((s) => [s.Action].flat() as string[]);

describe('every environment synthesizes with zero cdk-nag findings', () => {
  for (const [name, result] of [['dev', dev], ['prod', prod]] as const) {
    test(`${name}: no unacknowledged violation in the validation report`, () => {
      const report = JSON.parse(readFileSync(path.join(result.outdir, 'validation-report.json'), 'utf8')) as {
        pluginReports: Array<{ pluginName: string; violations: unknown[] }>;
      };
      for (const plugin of report.pluginReports) assert.deepEqual(plugin.violations, [], plugin.pluginName);
      assert.deepEqual(result.assembly.stacks.map((s) => s.stackName).sort(), [
        'SocrataPipeline-CiCd',
        `SocrataPipeline-${name}-Dataset-sf-fire-incidents`,
        `SocrataPipeline-${name}-Shared`,
        `SocrataPipeline-${name}-Storage`,
      ]);
    });
  }

  test('stacks are env-agnostic: no account or region baked in', () => {
    for (const s of dev.assembly.stacks) assert.equal(s.environment.account, 'unknown-account');
  });

  test('the dev app has every resource the issue asks for; prod adds the customer-managed keys and the dashboard', () => {
    const all = { ...storage.toJSON().Resources, ...shared.toJSON().Resources, ...dataset.toJSON().Resources, ...cicd.toJSON().Resources } as Record<string, { Type: string }>;
    const types = new Set(Object.values(all).map((r) => r.Type));
    for (const t of [
      'AWS::Lambda::Function', 'AWS::KinesisFirehose::DeliveryStream', 'AWS::Glue::Database', 'AWS::Glue::Table',
      'AWS::Glue::Crawler', 'AWS::Athena::WorkGroup', 'AWS::ECS::TaskDefinition', 'AWS::StepFunctions::StateMachine',
      'AWS::Scheduler::Schedule', 'AWS::SNS::Topic', 'AWS::CloudWatch::Alarm', 'AWS::IAM::OIDCProvider', 'AWS::IAM::Role',
    ]) assert.ok(types.has(t), `missing ${t}`);
    assert.equal(types.has('AWS::EC2::NatGateway'), false, 'no NAT gateway');
    // dev: AWS-managed encryption and no dashboard (lib/config/dev.ts; docs/cost.md).
    assert.equal(types.has('AWS::KMS::Key'), false, 'dev has no customer-managed key');
    assert.equal(types.has('AWS::CloudWatch::Dashboard'), false, 'dev has no dashboard');
    prod.templates.storage.resourceCountIs('AWS::KMS::Key', 1);
    prod.templates.shared.resourceCountIs('AWS::KMS::Key', 1);
    prod.templates.shared.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
  });
});

describe('storage: key, buckets, catalog, workgroup', () => {
  test('prod: the KMS key rotates and is retained; dev destroys its buckets', () => {
    prod.templates.storage.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    prod.templates.storage.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain' });
    storage.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Delete' });
    prod.templates.storage.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain' });
  });

  test('four buckets, all blocking public access; three under the data key (prod) or SSE-S3 (dev), logging to the fourth', () => {
    for (const t of [storage, prod.templates.storage]) {
      const buckets = t.findResources('AWS::S3::Bucket');
      assert.equal(Object.keys(buckets).length, 4);
      for (const b of Object.values(buckets) as Array<{ Properties: Record<string, unknown> }>) {
        assert.deepEqual(b.Properties.PublicAccessBlockConfiguration, { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
      }
    }
    const logged = (t: typeof storage, byDefault: Record<string, unknown>) =>
      Object.keys(t.findResources('AWS::S3::Bucket', {
        Properties: { BucketEncryption: { ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: byDefault })] }, LoggingConfiguration: Match.objectLike({ DestinationBucketName: Match.anyValue() }) },
      })).length;
    assert.equal(logged(prod.templates.storage, { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: Match.anyValue() }), 3);
    assert.equal(logged(storage, { SSEAlgorithm: 'AES256' }), 3);
  });

  test('every bucket policy denies plain HTTP', () => {
    const policies = Object.values(storage.findResources('AWS::S3::BucketPolicy')) as Array<{ Properties: { PolicyDocument: { Statement: Array<Record<string, unknown>> } } }>;
    assert.equal(policies.length, 4);
    for (const p of policies) {
      assert.ok(p.Properties.PolicyDocument.Statement.some((s) => s.Effect === 'Deny' && JSON.stringify(s.Condition) === '{"Bool":{"aws:SecureTransport":"false"}}'));
    }
  });

  test('raw is versioned and its raw/ zone (not checkpoints or quarantine) moves to Standard-IA and never expires; results expire', () => {
    storage.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Prefix: 'raw/', Transitions: [{ StorageClass: 'STANDARD_IA', TransitionInDays: 30 }], NoncurrentVersionExpiration: { NoncurrentDays: 7 } })]) },
    });
    const rawRules = Object.values(storage.findResources('AWS::S3::Bucket', { Properties: { VersioningConfiguration: { Status: 'Enabled' } } }))
      .flatMap((b) => (b as { Properties: { LifecycleConfiguration: { Rules: Record<string, unknown>[] } } }).Properties.LifecycleConfiguration.Rules);
    // keysets/ (key scans, read only by their own run) is not raw data: the one prefix that expires.
    const dataRules = rawRules.filter((r) => r.Prefix !== 'keysets/');
    assert.ok(dataRules.every((r) => r.Prefix === 'raw/' || (r.Transitions === undefined && r.ExpirationInDays === undefined)), JSON.stringify(rawRules));
    assert.ok(dataRules.every((r) => r.ExpirationInDays === undefined), 'raw data never expires by default: reconciliation counts keys over all of it');
    assert.ok(rawRules.some((r) => r.Prefix === 'keysets/' && r.ExpirationInDays === 30));
    storage.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Id: 'expire-results', ExpirationInDays: 3 })]) },
    });
  });

  test('Glue databases and an Athena v3 workgroup with enforced, encrypted results and a scan cutoff', () => {
    storage.hasResourceProperties('AWS::Glue::Database', { DatabaseInput: { Name: 'socrata_dev_raw' } });
    storage.hasResourceProperties('AWS::Glue::Database', { DatabaseInput: { Name: 'socrata_dev_curated' } });
    storage.hasResourceProperties('AWS::Athena::WorkGroup', {
      Name: 'socrata-dev',
      WorkGroupConfiguration: {
        EngineVersion: { SelectedEngineVersion: 'Athena engine version 3' },
        EnforceWorkGroupConfiguration: true,
        BytesScannedCutoffPerQuery: 10 * 1024 ** 3,
        ResultConfiguration: { EncryptionConfiguration: { EncryptionOption: 'SSE_S3' }, OutputLocation: Match.anyValue() },
      },
    });
    prod.templates.storage.hasResourceProperties('AWS::Athena::WorkGroup', {
      WorkGroupConfiguration: Match.objectLike({ ResultConfiguration: { EncryptionConfiguration: { EncryptionOption: 'SSE_KMS', KmsKey: Match.anyValue() }, OutputLocation: Match.anyValue() } }),
    });
  });
});

describe('storage: key policy and version expiry', () => {
  test('the data key grants no service principal without a condition; CloudWatch Logs only for crawler log groups', () => {
    const keys = Object.values(prod.templates.storage.findResources('AWS::KMS::Key')) as Array<{ Properties: { KeyPolicy: { Statement: Array<Record<string, any>> } } }>;
    assert.equal(keys.length, 1);
    const services = keys[0]!.Properties.KeyPolicy.Statement.filter((st) => st.Principal?.Service);
    assert.equal(services.length, 1);
    assert.match(JSON.stringify(services[0]!.Principal.Service), /logs\.".*\.amazonaws\.com|logs\.\$\{AWS::Region\}|"logs\.",\{"Ref":"AWS::Region"\}/);
    assert.match(JSON.stringify(services[0]!.Condition.ArnLike['kms:EncryptionContext:aws:logs:arn']), /log-group:\/aws-glue\/crawlers-role\/\*/);
  });

  test('old versions of checkpoints and run leases expire (every write makes a version)', () => {
    const rules = Object.values(storage.findResources('AWS::S3::Bucket', { Properties: { VersioningConfiguration: { Status: 'Enabled' } } }))
      .flatMap((b) => (b as { Properties: { LifecycleConfiguration: { Rules: Array<Record<string, any>> } } }).Properties.LifecycleConfiguration.Rules);
    for (const prefix of ['checkpoints/', 'leases/']) {
      const rule = rules.find((r) => r.Prefix === prefix);
      assert.deepEqual(rule?.NoncurrentVersionExpiration, { NoncurrentDays: 7 }, prefix);
      assert.equal(rule?.ExpirationInDays, undefined, `${prefix}: the current version never expires`);
    }
  });
});

describe('pipeline: Firehose delivery', () => {
  test('dev: the AWS-owned key on the stream, the bucket’s SSE-S3 for its objects, no key statement in its role', () => {
    dataset.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      DeliveryStreamEncryptionConfigurationInput: { KeyType: 'AWS_OWNED_CMK' },
      ExtendedS3DestinationConfiguration: Match.objectLike({ EncryptionConfiguration: { NoEncryptionConfig: 'NoEncryption' } }),
    });
    assert.equal(JSON.stringify(dataset.toJSON()).includes('kms:'), false, 'no KMS permission anywhere in the dev dataset stack');
  });

  test('prefixes from storage-layout, GZIP, KMS in stream and S3 (prod), buffering from the dataset, logging on', () => {
    prod.templates.dataset.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      DeliveryStreamType: 'DirectPut',
      DeliveryStreamEncryptionConfigurationInput: { KeyType: 'CUSTOMER_MANAGED_CMK', KeyARN: Match.anyValue() },
      ExtendedS3DestinationConfiguration: Match.objectLike({
        Prefix: 'raw/sf-fire-incidents/ingest_date=!{timestamp:yyyy-MM-dd}/',
        ErrorOutputPrefix: 'errors/sf-fire-incidents/!{firehose:error-output-type}/ingest_date=!{timestamp:yyyy-MM-dd}/',
        CompressionFormat: 'GZIP',
        BufferingHints: { IntervalInSeconds: 60, SizeInMBs: 64 },
        EncryptionConfiguration: { KMSEncryptionConfig: { AWSKMSKeyARN: Match.anyValue() } },
        CloudWatchLoggingOptions: Match.objectLike({ Enabled: true }),
      }),
    });
  });
});

describe('pipeline: fetcher Lambda', () => {
  test('Node.js 22 on ARM64, traced, env contract, no reserved concurrency', () => {
    dataset.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      TracingConfig: { Mode: 'Active' },
      Environment: {
        Variables: Match.objectLike({
          DATASET_NAME: 'sf-fire-incidents',
          SOURCE_DOMAIN: 'data.sfgov.org',
          SOURCE_DATASET_ID: 'wr8u-xric',
          PRIMARY_KEY: 'id',
          POINT_COLUMNS: 'point',
          DELIVERY_STREAM_NAME: Match.anyValue(),
          STATE_LOCATION: { 'Fn::Join': ['', ['s3://', Match.anyValue()]] },
          POWERTOOLS_SERVICE_NAME: 'fetcher-sf-fire-incidents',
        }),
      },
    });
    const fn = Object.values(dataset.findResources('AWS::Lambda::Function', { Properties: { Runtime: 'nodejs22.x' } }))[0] as { Properties: Record<string, unknown> };
    assert.equal(fn.Properties.ReservedConcurrentExecutions, undefined);
    assert.equal((fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables.APP_TOKEN_SECRET_NAME, undefined);
  });

  test('may touch only its checkpoint, range progress, quarantine and keysets prefixes, its own raw object names, and put only to its stream', () => {
    const statements = statementsOfRole(dataset, 'FetcherRole');
    const s3Objects = statements.find((s) => s.Sid === 'CheckpointAndQuarantineObjects')!;
    assert.deepEqual(s3Objects.Action, ['s3:GetObject', 's3:PutObject']);
    const resources = JSON.stringify(s3Objects.Resource);
    assert.match(resources, /\/checkpoints\/sf-fire-incidents\.json"/);
    assert.match(resources, /\/quarantine\/sf-fire-incidents\/\*"/);
    assert.match(resources, /\/keysets\/sf-fire-incidents\/\*"/);
    assert.match(resources, /\/checkpoints\/sf-fire-incidents\.ranges\.json"/, 'a parallel backfill\'s range progress');
    assert.equal((s3Objects.Resource as unknown[]).length, 4);
    // Into raw/ only its own object names: rows too large for a record, a parallel backfill's objects.
    const own = JSON.stringify(statements.find((s) => s.Sid === 'WriteOwnRawObjects')!.Resource);
    assert.match(own, /\/raw\/sf-fire-incidents\/ingest_date=\*\/large-row-\*"/);
    assert.match(own, /\/raw\/sf-fire-incidents\/ingest_date=\*\/direct-\*"/);
    const firehose = statements.find((s) => actionsOf([s]).includes('firehose:PutRecordBatch'))!;
    assert.equal(JSON.stringify(firehose.Resource).includes('DeliveryStream'), true);
    assert.equal(actionsOf(statements).some((a) => a === 's3:*' || a === 's3:DeleteObject*' || a.startsWith('secretsmanager:')), false);
  });
});

describe('pipeline: raw Glue table and crawler', () => {
  test('JSON SerDe tolerant of malformed lines, partition projection on ingest_date, raw prefix location', () => {
    dataset.hasResourceProperties('AWS::Glue::Table', {
      TableInput: Match.objectLike({
        Name: 'sf_fire_incidents',
        PartitionKeys: [Match.objectLike({ Name: 'ingest_date', Type: 'string' })],
        Parameters: Match.objectLike({
          'projection.enabled': 'true',
          'projection.ingest_date.type': 'date',
          'projection.ingest_date.format': 'yyyy-MM-dd',
          'projection.ingest_date.range': '2020-01-01,NOW',
        }),
        StorageDescriptor: Match.objectLike({
          Location: { 'Fn::Join': ['', ['s3://', Match.anyValue(), '/raw/sf-fire-incidents/']] },
          SerdeInfo: { SerializationLibrary: 'org.openx.data.jsonserde.JsonSerDe', Parameters: Match.objectLike({ 'ignore.malformed.json': 'true' }) },
          Columns: Match.arrayWith([
            { Name: 'point', Type: 'struct<type:string,coordinates:array<double>>', Comment: Match.anyValue() },
            { Name: 'longitude', Type: 'double', Comment: Match.anyValue() },
            { Name: '_source_updated_at', Type: 'string', Comment: Match.anyValue() },
          ]),
        }),
      }),
    });
  });

  test('crawler targets the raw table and only merges new columns', () => {
    const crawler = Object.values(dataset.findResources('AWS::Glue::Crawler'))[0] as { Properties: Record<string, any> };
    assert.equal(crawler.Properties.Targets.CatalogTargets[0].Tables[0], 'sf_fire_incidents');
    assert.equal(JSON.parse(crawler.Properties.Configuration).CrawlerOutput.Tables.AddOrUpdateBehavior, 'MergeNewColumns');
    assert.equal(crawler.Properties.SchemaChangePolicy.DeleteBehavior, 'LOG');
  });
});

describe('pipeline: transform task', () => {
  test('ARM64 Fargate, read-only root filesystem, logging, the container environment contract', () => {
    const td = Object.values(dataset.findResources('AWS::ECS::TaskDefinition'))[0] as { Properties: Record<string, any> };
    assert.deepEqual(td.Properties.RuntimePlatform, { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' });
    assert.deepEqual(td.Properties.RequiresCompatibilities, ['FARGATE']);
    const container = td.Properties.ContainerDefinitions[0];
    assert.equal(container.ReadonlyRootFilesystem, true);
    assert.equal(container.LogConfiguration.LogDriver, 'awslogs');
    // Nothing writes locally with the Athena engine: no volume, so nothing is writable at all.
    assert.equal(container.MountPoints, undefined);
    assert.equal(td.Properties.Volumes, undefined);
    const env = Object.fromEntries(container.Environment.map((e: { Name: string; Value: unknown }) => [e.Name, e.Value]));
    assert.deepEqual(Object.keys(env).sort(), ['ATHENA_WORKGROUP', 'CURATED_DATABASE', 'CURATED_LOCATION', 'DATASET_CONFIG', 'ENGINE', 'RAW_DATABASE', 'RAW_LOCATION']);
    assert.equal(env.ENGINE, 'athena');
    assert.equal(JSON.parse(env.DATASET_CONFIG as string).name, 'sf-fire-incidents');
    assert.equal(container.Secrets, undefined, 'the transform never reads the app token');
  });

  test('the image is built from the repository root with the transform Dockerfile', () => {
    const manifest = JSON.parse(readFileSync(path.join(dev.outdir, 'SocrataPipeline-dev-Dataset-sf-fire-incidents.assets.json'), 'utf8')) as { dockerImages: Record<string, { source: { directory: string; dockerFile?: string; platform?: string } }> };
    const images = Object.values(manifest.dockerImages);
    assert.equal(images.length, 1);
    assert.equal(images[0]!.source.dockerFile, 'containers/transform/Dockerfile');
    assert.equal(images[0]!.source.platform, 'linux/arm64');
    const staged = readdirSync(path.join(dev.outdir, images[0]!.source.directory));
    for (const needed of ['runtime', 'containers', 'package.json', 'package-lock.json', 'datasets']) assert.ok(staged.includes(needed), `context lacks ${needed}`);
    for (const excluded of ['node_modules', 'cdk.out', '.git', 'test', 'bench']) assert.ok(!staged.includes(excluded), `context includes ${excluded}`);
  });

  test('task role: Athena in its workgroup, Glue on the two databases, raw prefix read-only', () => {
    const statements = statementsOfRole(dataset, 'TransformTaskDefinitionTaskRole');
    const athena = statements.find((s) => s.Sid === 'AthenaInWorkgroup')!;
    assert.match(JSON.stringify(athena.Resource), /:workgroup\//);
    const raw = statements.find((s) => s.Sid === 'ReadOwnRawObjects')!;
    assert.deepEqual(raw.Action, 's3:GetObject');
    assert.match(JSON.stringify(raw.Resource), /\/raw\/sf-fire-incidents\/\*"/);
    const curated = statements.find((s) => s.Sid === 'ManageOwnCuratedTables')!;
    assert.ok(actionsOf([curated]).includes('glue:CreateTable'));
    assert.match(JSON.stringify(curated.Resource), /\/sf_fire_incidents__\*"/);
    assert.equal(actionsOf(statements).some((a) => a.endsWith('*')), false, 'no action wildcards');
  });

  test('no NAT gateway: public subnets, egress-only security group', () => {
    shared.resourceCountIs('AWS::EC2::NatGateway', 0);
    shared.resourceCountIs('AWS::EC2::Subnet', 2);
    shared.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('no inbound'),
      SecurityGroupEgress: [Match.objectLike({ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443, IpProtocol: 'tcp' })],
      SecurityGroupIngress: Match.absent(),
    });
  });
});

describe('pipeline: state machine', () => {
  const def = stateMachineDefinition(dataset);
  const s = def.States;

  test('starts by checking the input, then takes the run lease; a held lease ends the run as SkippedOverlappingRun', () => {
    assert.equal(def.StartAt, 'CheckInput');
    assert.equal(s.UseRequestedMode!.Next, 'AcquireLease');
    assert.equal(s.UseIncrementalMode!.Next, 'AcquireLease');
    assert.deepEqual(s.AcquireLease!.Parameters, { action: 'acquire', 'runId.$': '$$.Execution.Name' });
    const choice = s.HoldsRunLease as { Choices: Array<Record<string, unknown>>; Default: string };
    assert.deepEqual(choice.Choices[0], { Variable: '$.lease.acquired', BooleanEquals: true, Next: 'FetchPage' });
    assert.equal(choice.Default, 'SkippedOverlappingRun');
    assert.equal(s.SkippedOverlappingRun!.Type, 'Succeed');
    assert.equal(JSON.stringify(def).includes('listExecutions'), false, 'the eventually consistent ListExecutions guard is gone');
  });

  test('fetch loop: invoke, Choice on done, pass the cursor back', () => {
    assert.deepEqual((s.FetchPage!.Parameters as Record<string, unknown>).Payload, { 'runId.$': '$$.Execution.Name', 'mode.$': '$.mode', 'cursor.$': '$.cursor' });
    const done = s.FetchDone as { Choices: Array<Record<string, unknown>>; Default: string };
    assert.deepEqual(done.Choices[0], { Variable: '$.fetch.done', BooleanEquals: true, Next: 'StartKeyScan' });
    assert.equal(done.Default, 'NextPage');
    assert.equal(s.NextPage!.Next, 'FetchPage');
    assert.equal((s.NextPage!.Parameters as Record<string, unknown>)['cursor.$'], '$.fetch.cursor');
    // Then the key scan loop (the fetcher's "keys" phase), and only then the flush wait.
    assert.deepEqual((s.ScanKeys!.Parameters as Record<string, unknown>).Payload, { 'runId.$': '$$.Execution.Name', phase: 'keys', 'cursor.$': '$.keyScan.cursor' });
    const scanned = s.KeyScanDone as { Choices: Array<Record<string, unknown>>; Default: string };
    assert.deepEqual(scanned.Choices[0], { Variable: '$.keyScan.done', BooleanEquals: true, Next: 'WaitForFirehoseFlush' });
    assert.equal(scanned.Default, 'ScanKeys');
  });

  test('waits for the Firehose buffer (interval + margin), then, on schema drift only, the crawler polled until READY', () => {
    assert.equal(s.WaitForFirehoseFlush!.Seconds, 60 + 60);
    assert.equal(s.WaitForFirehoseFlush!.Next, 'SchemaDrifted');
    const drifted = s.SchemaDrifted as { Choices: Array<Record<string, unknown>>; Default: string };
    assert.deepEqual(drifted.Choices, [{ Variable: '$.fetch.stats.undeclaredColumns[0]', IsPresent: true, Next: 'StartCrawler' }]);
    assert.equal(drifted.Default, 'RunTransform');
    assert.equal(s.StartCrawler!.Next, 'WaitForCrawler');
    assert.equal(s.GetCrawler!.Next, 'CrawlerFinished');
    const finished = s.CrawlerFinished as { Choices: Array<{ Next: string }>; Default: string };
    assert.deepEqual(finished.Choices.map((c) => c.Next), ['WaitForCrawler', 'CrawlNotSucceeded', 'RunTransform']);
    assert.equal(finished.Default, 'CrawlNotSucceeded');
  });

  test('transform runs as .sync and a non-zero exit code fails the run', () => {
    assert.match(String(s.RunTransform!.Resource), /ecs:runTask\.sync$/);
    const overrides = (s.RunTransform!.Parameters as { Overrides: { ContainerOverrides: Array<{ Environment: unknown[] }> } }).Overrides;
    assert.deepEqual(overrides.ContainerOverrides[0]!.Environment, [
      { Name: 'RUN_ID', 'Value.$': '$$.Execution.Name' },
      { Name: 'UNDECLARED_COLUMNS', 'Value.$': 'States.JsonToString($.fetch.stats.undeclaredColumns)' },
    ]);
    const exit = s.TransformExitedZero as { Choices: Array<Record<string, unknown>>; Default: string };
    // Exit 4: mass delete refused; exit 5: repair (once), then RepairDidNotReconcile.
    assert.deepEqual(exit.Choices.map((c) => c.Next), ['TransformFailed', 'ReleaseLease', 'MassDeleteRefused', 'StartRepair', 'RepairDidNotReconcile']);
    assert.equal(exit.Default, 'TransformFailed');
    assert.equal(s.ReleaseLease!.Next, 'NotifySuccess');
    assert.equal(s.NotifyFailure!.Next, 'ReleaseLeaseAfterFailure');
    assert.equal(s.ReleaseLeaseAfterFailure!.Next, 'RunFailed');
    assert.equal(s.RunFailed!.Type, 'Fail');
  });

  test('every task retries with backoff and is caught into the failure notification', () => {
    for (const name of ['AcquireLease', 'FetchPage', 'StartCrawler', 'GetCrawler', 'RunTransform', 'ReleaseLease']) {
      const state = s[name] as { Retry: Array<{ BackoffRate?: number }>; Catch: Array<{ Next: string }> };
      assert.ok(state.Retry.some((r) => (r.BackoffRate ?? 1) >= 1.5), `${name} backoff`);
      assert.equal(state.Catch[0]!.Next, 'NotifyFailure', name);
    }
  });

  test('timeout, logging ALL and X-Ray', () => {
    dataset.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'socrata-dev-sf-fire-incidents',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: Match.objectLike({ Level: 'ALL', IncludeExecutionData: true }),
    });
    assert.equal(def.TimeoutSeconds, 180 * 60);
    // A vended-logs name, so the log delivery does not grow the account's 5,120-character
    // CloudWatch Logs resource policy (one entry per other log group).
    const machine = Object.values(dataset.findResources('AWS::StepFunctions::StateMachine'))[0] as { Properties: Record<string, any> };
    const [groupId] = machine.Properties.LoggingConfiguration.Destinations[0].CloudWatchLogsLogGroup.LogGroupArn['Fn::GetAtt'] as [string];
    assert.equal(dataset.toJSON().Resources[groupId].Properties.LogGroupName, '/aws/vendedlogs/states/socrata-dev-sf-fire-incidents');
  });

  test('the state machine may invoke its fetcher and run-lease functions, and list nothing', () => {
    const statements = statementsOfRole(dataset, 'RunStateMachineRole');
    assert.equal(actionsOf(statements).some((a) => a.startsWith('states:')), false);
    const invoke = JSON.stringify(statements.filter((st) => actionsOf([st]).includes('lambda:InvokeFunction')).map((st) => st.Resource));
    assert.match(invoke, /Fetcher/);
    assert.match(invoke, /RunLease/);
  });
});

describe('pipeline: schedule and monitoring', () => {
  test('schedule from the dataset, off in dev and on in prod, starting an incremental run', () => {
    dataset.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 6 * * ? *)',
      ScheduleExpressionTimezone: 'America/Los_Angeles',
      State: 'DISABLED',
      Target: Match.objectLike({ Input: JSON.stringify({ mode: 'incremental' }) }),
    });
    prod.templates.dataset.hasResourceProperties('AWS::Scheduler::Schedule', { State: 'ENABLED' });
  });

  test('one metric-math alarm per dataset, to the topic, over fetcher errors, Firehose delivery and freshness, failed, timed-out and skipped runs, schema drift', () => {
    const alarms = Object.values(dataset.findResources('AWS::CloudWatch::Alarm')) as Array<{ Properties: Record<string, any> }>;
    assert.equal(alarms.length, 1);
    const alarm = alarms[0]!.Properties;
    assert.equal(alarm.AlarmActions.length, 1);
    assert.equal(alarm.TreatMissingData, 'notBreaching');
    const inputs = (alarm.Metrics as Array<Record<string, any>>).filter((m) => m.MetricStat);
    assert.deepEqual(inputs.map((m) => `${m.MetricStat.Metric.Namespace}:${m.MetricStat.Metric.MetricName}`).sort(), [
      'AWS/Firehose:DeliveryToS3.DataFreshness',
      'AWS/Firehose:DeliveryToS3.Success',
      'AWS/Lambda:Errors',
      'AWS/States:ExecutionsFailed',
      'AWS/States:ExecutionsTimedOut',
      'SocrataPipeline/dev:SkippedRuns',
      'SocrataPipeline/dev:UndeclaredColumns',
    ]);
    // Schema drift: the fetcher's own metric, with the dimensions Powertools publishes it under.
    const drift = inputs.find((m) => m.MetricStat.Metric.MetricName === 'UndeclaredColumns')!;
    assert.deepEqual(drift.MetricStat.Metric.Dimensions, [
      { Name: 'Dataset', Value: 'sf-fire-incidents' },
      { Name: 'service', Value: 'fetcher-sf-fire-incidents' },
    ]);
    assert.ok(alarm.AlarmDescription.length <= 1024);
    // MassDeleteRefused still comes from the transform's exit-4 log line, per dataset (for the
    // record; the alarm sees the failed run it ends in).
    dataset.hasResourceProperties('AWS::Logs::MetricFilter', {
      FilterPattern: '{ $.error = "MassDeleteRefusedError" }',
      MetricTransformations: [Match.objectLike({ MetricNamespace: 'SocrataPipeline/dev', MetricName: 'MassDeleteRefused', MetricValue: '1', Dimensions: [{ Key: 'Dataset', Value: '$.dataset' }] })],
    });
    shared.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.absent() });
    prod.templates.shared.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    shared.resourceCountIs('AWS::SNS::Subscription', 0);
    prod.templates.shared.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'data-platform-alerts@example.org' });
  });

  describe('each condition the eight former alarms watched raises the consolidated alarm', () => {
    const alarm = (Object.values(dataset.findResources('AWS::CloudWatch::Alarm'))[0] as { Properties: Record<string, any> }).Properties;
    /** Evaluates the synthesized alarm for one 5-minute period: metric values by `Namespace:MetricName:Stat`. */
    const breaches = (values: Record<string, number>): boolean => {
      const metrics = alarm.Metrics as Array<Record<string, any>>;
      const byId = new Map(metrics.filter((m) => m.MetricStat).map((m) => [m.Id as string, `${m.MetricStat.Metric.Namespace}:${m.MetricStat.Metric.MetricName}:${m.MetricStat.Stat}`]));
      for (const m of metrics.filter((x) => x.MetricStat)) assert.equal(m.MetricStat.Period, 300, m.Id);
      const expression = metrics.find((m) => m.ReturnData !== false)!.Expression as string;
      const term = /IF\((\w+) (>=|>|<) ([\d.]+), 1, 0\)/g;
      const terms = [...expression.matchAll(term)];
      // Nothing in the expression this evaluator does not understand.
      assert.equal(expression, `MAX([${terms.map((t) => t[0]).join(', ')}])`);
      const results = terms.flatMap(([, id, op, limit]) => {
        const v = values[byId.get(id!)!];
        if (v === undefined) return []; // no datapoint: the term is missing, not 0
        const n = Number(limit);
        return [op === '>=' ? Number(v >= n) : op === '>' ? Number(v > n) : Number(v < n)];
      });
      if (results.length === 0) return false; // missing data: notBreaching
      assert.equal(alarm.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
      return Math.max(...results) >= alarm.Threshold;
    };
    const healthy = {
      'AWS/Lambda:Errors:Sum': 0,
      'AWS/Firehose:DeliveryToS3.Success:Minimum': 1,
      'AWS/Firehose:DeliveryToS3.DataFreshness:Maximum': 120,
      'AWS/States:ExecutionsFailed:Sum': 0,
      'AWS/States:ExecutionsTimedOut:Sum': 0,
      'SocrataPipeline/dev:SkippedRuns:Sum': 0,
      'SocrataPipeline/dev:UndeclaredColumns:Maximum': 0,
    };
    test('a healthy period, a period at the freshness threshold and a period with no data do not alarm', () => {
      assert.equal(breaches(healthy), false);
      assert.equal(breaches({ ...healthy, 'AWS/Firehose:DeliveryToS3.DataFreshness:Maximum': 1800 }), false);
      assert.equal(breaches({}), false);
    });
    // The former alarms, one per line: the metric and the value that raised it (threshold 1, or
    // freshness over 1,800 s, or delivery success under 1).
    const former: Array<[string, string, number]> = [
      ['FetcherErrors', 'AWS/Lambda:Errors:Sum', 1],
      ['DeliveryToS3Failed', 'AWS/Firehose:DeliveryToS3.Success:Minimum', 0],
      ['DeliveryFreshness', 'AWS/Firehose:DeliveryToS3.DataFreshness:Maximum', 1801],
      ['RunFailed', 'AWS/States:ExecutionsFailed:Sum', 1],
      ['RunTimedOut', 'AWS/States:ExecutionsTimedOut:Sum', 1],
      ['RunSkipped', 'SocrataPipeline/dev:SkippedRuns:Sum', 1],
      ['SchemaDrift', 'SocrataPipeline/dev:UndeclaredColumns:Maximum', 1],
      // A refused mass delete ends the run in the Fail state (state-machine-execution.test.ts, exit 4): a failed execution.
      ['MassDeleteRefused', 'AWS/States:ExecutionsFailed:Sum', 1],
    ];
    for (const [name, metric, value] of former) {
      test(`${name}: ${metric} = ${value} alone raises it, also with every other input missing`, () => {
        assert.equal(breaches({ ...healthy, [metric]: value }), true);
        assert.equal(breaches({ [metric]: value }), true);
      });
    }
  });
});

describe('CI/CD stack', () => {
  test('GitHub OIDC provider and one deploy role per environment, trust limited to the environment subject', () => {
    cicd.hasResourceProperties('AWS::IAM::OIDCProvider', { Url: 'https://token.actions.githubusercontent.com', ClientIdList: ['sts.amazonaws.com'] });
    for (const env of ['dev', 'prod']) {
      cicd.hasResourceProperties('AWS::IAM::Role', {
        AssumeRolePolicyDocument: {
          Statement: [
            Match.objectLike({
              Action: 'sts:AssumeRoleWithWebIdentity',
              Condition: {
                StringEquals: {
                  'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
                  'token.actions.githubusercontent.com:sub': `repo:example-org/socrata-athena-pipeline:environment:${env}`,
                },
              },
            }),
          ],
        },
      });
    }
    const policies = Object.values(cicd.findResources('AWS::IAM::Policy')) as Array<{ Properties: { PolicyDocument: { Statement: Array<Record<string, unknown>> } } }>;
    assert.equal(policies.length, 4, 'a deploy role and a read-only diff role per environment');
    for (const p of policies) assert.deepEqual(p.Properties.PolicyDocument.Statement.map((st) => st.Action), [['sts:AssumeRole', 'sts:TagSession']]);
    const diff = policies.filter((p) => p.Properties.PolicyDocument.Statement[0]!.Sid === 'AssumeCdkLookupRoleOnly');
    assert.equal(diff.length, 2);
    for (const p of diff) assert.match(JSON.stringify(p.Properties.PolicyDocument.Statement[0]!.Resource), /:role\/cdk-hnb659fds-lookup-role-\*"/);
    cicd.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Condition: { StringEquals: Match.objectLike({ 'token.actions.githubusercontent.com:sub': 'repo:example-org/socrata-athena-pipeline:environment:prod-diff' }) } })] },
    });
  });
});

describe('cfn-lint on every synthesized template', () => {
  const probe = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
  const available = probe.status === 0;
  test('no errors, and no warnings beyond .cfnlintrc.yaml', { skip: available ? false : 'cfn-lint is not installed (pip install cfn-lint): templates NOT linted' }, () => {
    for (const result of [dev, prod]) {
      const templates = readdirSync(result.outdir).filter((f) => f.endsWith('.template.json')).map((f) => path.join(result.outdir, f));
      assert.equal(templates.length, 4);
      const run = spawnSync('cfn-lint', ['--config-file', path.join(REPO_ROOT, '.cfnlintrc.yaml'), '--', ...templates], { encoding: 'utf8' });
      assert.equal(run.status, 0, `cfn-lint findings:\n${run.stdout}${run.stderr}`);
    }
  });
});
