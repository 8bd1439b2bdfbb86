/**
 * Permissions, proven sufficient and tight: every AWS call the runtime code makes (recorded by
 * running the fetcher handler, the run-lease handler and the transform's Athena engine against
 * SDK mocks), plus what Athena, S3, Firehose, Glue and Step Functions do with each role on its
 * behalf (from their documentation), is evaluated against the SYNTHESIZED role policies with
 * @cloud-copilot/iam-simulate: all must be allowed. Then calls just outside each narrowed grant
 * must be denied.
 *
 * Runs for dev (AWS-managed encryption: SSE-S3, no key of ours) by default; iam-simulation-cmk.test.ts
 * runs the same file for prod (customer-managed keys: every S3 call also needs the data key).
 */
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AthenaClient } from '@aws-sdk/client-athena';
import { startSocrataServer, type SocrataServer } from '../../local/socrata-server';
import { synth, REPO_ROOT } from './app-fixture';
import { AwsCallRecorder, athenaOnBehalf, type IamRequest } from './aws-call-recorder';
import { CfnResolver, FAKE, loadTemplates } from './cfn-resolve';
import { decide, resourcePolicies, rolePolicies, type PolicyDocument } from './iam-policies';

const { account: A, region: R } = FAKE;
const ENV = process.env.IAM_SIMULATION_ENV ?? 'dev';
const STACK = `SocrataPipeline-${ENV}-Dataset-sf-fire-incidents`;
const SHARED = `SocrataPipeline-${ENV}-Shared`;
const STORAGE = `SocrataPipeline-${ENV}-Storage`;
const DS = 'sf-fire-incidents';
const TABLE = 'sf_fire_incidents';
const SECRET = 'socrata/app-token';
const RUN_ID = 'run-2026-01-01T06-00-00';

// The dataset with an app token, so the fetcher's secret grant is synthesized and exercised.
const datasetsDir = mkdtempSync(path.join(os.tmpdir(), 'iam-datasets-'));
const datasetJson = JSON.parse(readFileSync(path.join(REPO_ROOT, 'datasets', `${DS}.json`), 'utf8')) as { source: Record<string, unknown> };
datasetJson.source.appTokenSecretName = SECRET;
writeFileSync(path.join(datasetsDir, `${DS}.json`), JSON.stringify(datasetJson));
const result = synth({ env: ENV, datasetsDir });
const resolver = new CfnResolver(loadTemplates(result.outdir));
const resources = resolver.template(STACK).Resources;

function logicalId(type: string, hint: RegExp): string {
  const ids = Object.entries(resources).filter(([id, r]) => r.Type === type && hint.test(id)).map(([id]) => id);
  if (ids.length !== 1) throw new Error(`${type} matching ${hint}: ${ids.join(', ') || 'none'}`);
  return ids[0]!;
}
const ROLES = {
  fetcher: logicalId('AWS::IAM::Role', /FetcherRole/),
  runLease: logicalId('AWS::IAM::Role', /RunLeaseRole/),
  transform: logicalId('AWS::IAM::Role', /TransformTaskDefinitionTaskRole/),
  delivery: logicalId('AWS::IAM::Role', /DeliveryDeliveryRole/),
  crawler: logicalId('AWS::IAM::Role', /CrawlerRole/),
  stateMachine: logicalId('AWS::IAM::Role', /RunStateMachineRole/),
} as const;
type Caller = keyof typeof ROLES;
const resourcePolicy = resourcePolicies(resolver, [STACK, STORAGE, SHARED]);
const policies = Object.fromEntries(Object.entries(ROLES).map(([k, id]) => [k, rolePolicies(resolver, STACK, id)])) as Record<Caller, PolicyDocument[]>;

const fnEnv = (hint: RegExp): Record<string, string> => resolver.resolve(resources[logicalId('AWS::Lambda::Function', hint)]!.Properties!.Environment, STACK).Variables;
const fnLogGroup = (hint: RegExp): string => resolver.resolve(resources[logicalId('AWS::Lambda::Function', hint)]!.Properties!.LoggingConfig, STACK).LogGroup;
const fetcherEnv = fnEnv(/FetcherFunction/);
const leaseEnv = fnEnv(/RunLeaseFunction/);
const container = resolver.resolve(resources[logicalId('AWS::ECS::TaskDefinition', /Transform/)]!.Properties!.ContainerDefinitions, STACK)[0] as { Environment: Array<{ Name: string; Value: string }> };
const taskEnv = Object.fromEntries(container.Environment.map((e) => [e.Name, e.Value]));
const bucketOf = (location: string): string => location.replace(/^s3:\/\//, '');
const rawBucket = bucketOf(fetcherEnv.STATE_LOCATION!);
const curatedBucket = bucketOf(taskEnv.CURATED_LOCATION!);
const storage = resolver.template(STORAGE);
const resultsBucket = Object.keys(storage.Resources).find((id) => /AthenaResults/.test(id) && storage.Resources[id]!.Type === 'AWS::S3::Bucket')!.toLowerCase();
const dataKeyId = Object.keys(storage.Resources).find((id) => storage.Resources[id]!.Type === 'AWS::KMS::Key');
/** The customer-managed data key; undefined with AWS-managed encryption (SSE-S3). */
const dataKeyArn = dataKeyId ? resolver.arn(STORAGE, dataKeyId) : undefined;
/** The KMS calls S3 makes with the data key, when there is one. */
const withKey = (reqs: (key: string) => IamRequest[]): IamRequest[] => (dataKeyArn ? reqs(dataKeyArn) : []);
/** Any key ARN: with AWS-managed encryption no role may use any key; with a data key, not to Encrypt directly. */
const someKey = dataKeyArn ?? `arn:aws:kms:${R}:${A}:key/00000000-0000-0000-0000-000000000000`;

test(`encryption mode of ${ENV}: a data key exactly when the environment is customer-managed`, () => {
  assert.equal(dataKeyArn !== undefined, result.config.encryption === 'customer-managed');
});
const deliveryStream = resolver.resolve({ Ref: logicalId('AWS::KinesisFirehose::DeliveryStream', /Delivery/) }, STACK) as string;

const recorder = new AwsCallRecorder({ dataKeyArn, secrets: { [SECRET]: '{"appToken":"tok-123"}' } });
const calls = new Map<Caller, IamRequest[]>();
const add = (caller: Caller, reqs: IamRequest[]) => calls.set(caller, [...(calls.get(caller) ?? []), ...reqs]);
/** The Lambda runtime's own calls with the function's role: its logs and X-Ray segments. */
const lambdaRuntime = (logGroup: string): IamRequest[] => [
  { action: 'logs:CreateLogStream', resource: `arn:aws:logs:${R}:${A}:log-group:${logGroup}:log-stream:2026/01/01/[$LATEST]0123`, why: 'Lambda runtime log stream' },
  { action: 'logs:PutLogEvents', resource: `arn:aws:logs:${R}:${A}:log-group:${logGroup}:log-stream:2026/01/01/[$LATEST]0123`, why: 'Lambda runtime logs' },
  { action: 'xray:PutTraceSegments', resource: '*', why: 'active tracing' },
];

let socrata: SocrataServer;
const savedEnv = { ...process.env };

before(async () => {
  recorder.install();
  socrata = await startSocrataServer({ rows: 300, seed: 4 });
  socrata.mutate({ addKeyless: 2, addOversize: 1 });
  Object.assign(process.env, fetcherEnv, leaseEnv, {
    DATASET_NAME: DS,
    SOURCE_BASE_URL: socrata.url,
    AWS_REGION: R,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_TRACE_ENABLED: 'false',
  });
  delete process.env.AWS_ENDPOINT_URL_S3;
  delete process.env.AWS_ENDPOINT_URL_FIREHOSE;

  // Fetcher: a first run (creates the checkpoint, quarantines the keyless rows), then an
  // incremental run after the source changed (advances the checkpoint with If-Match).
  const { handler: fetch } = await import('../../lambdas/fetcher/handler');
  const ctx = { getRemainingTimeInMillis: () => 600_000, awsRequestId: 'req' };
  recorder.current = 'fetcher';
  const first = await fetch({ runId: RUN_ID, mode: 'full-refresh', cursor: null }, ctx);
  assert.equal(first.done, true);
  socrata.mutate({ update: 5 });
  await fetch({ runId: `${RUN_ID}-2`, mode: 'incremental', cursor: null }, ctx);
  // A full refresh read by parallel streams (the threshold lowered for 300 rows): range progress
  // beside the checkpoint, rows written straight to the raw zone.
  process.env.PARALLEL_MIN_ROWS = '100';
  const parallel = await fetch({ runId: `${RUN_ID}-3`, mode: 'full-refresh', cursor: null }, ctx);
  delete process.env.PARALLEL_MIN_ROWS;
  assert.equal(parallel.stats.streams, Number(fetcherEnv.STREAMS));
  // The key scan (keysets/: part files, _SUCCESS, _latest) and the repair of a listed missing key.
  assert.equal((await fetch({ runId: RUN_ID, phase: 'keys', cursor: null }, ctx)).done, true);
  recorder.objects.set(`${rawBucket}/keysets/${DS}/${RUN_ID}/missing-keys.txt.gz`, { body: gzipSync(`${String(socrata.rows[0]!.id)}\n`), etag: '"m"' });
  assert.equal((await fetch({ runId: RUN_ID, phase: 'repair', cursor: null }, ctx)).stats.rowsDelivered, 1);
  add('fetcher', [...(recorder.requests.get('fetcher') ?? []), ...lambdaRuntime(fnLogGroup(/FetcherFunction/))]);

  // Run lease: take it, be refused as a second run, release it.
  const { handler: lease } = await import('../../lambdas/run-lease/handler');
  recorder.current = 'runLease';
  assert.equal(((await lease({ action: 'acquire', runId: RUN_ID })) as { acquired: boolean }).acquired, true);
  assert.equal(((await lease({ action: 'acquire', runId: 'other-run' })) as { acquired: boolean }).acquired, false);
  assert.deepEqual(await lease({ action: 'release', runId: RUN_ID }), { released: true, reason: 'released' });
  add('runLease', [...(recorder.requests.get('runLease') ?? []), ...lambdaRuntime(fnLogGroup(/RunLeaseFunction/))]);

  // Transform with the Athena engine, configured exactly as the task definition configures it.
  recorder.current = 'transform';
  recorder.objects.set(`${rawBucket}/raw/${DS}/ingest_date=2026-01-01/${DS}-raw-1-2026-01-01-06-00-00-abc.gz`, { body: Buffer.from('x'), etag: '"1"' });
  const { main } = await import('../../containers/transform/src/main');
  const logs: Array<Record<string, unknown>> = [];
  const code = await main({ ...taskEnv, RUN_ID }, { log: (r) => logs.push(r), athenaClient: () => new AthenaClient({ region: R }) });
  assert.ok(code === 0 || code === 3, `transform exit ${code}: ${JSON.stringify(logs.filter((l) => l.level === 'error'))}`);
  const athenaCtx = {
    workgroup: taskEnv.ATHENA_WORKGROUP!,
    rawDatabase: taskEnv.RAW_DATABASE!,
    curatedDatabase: taskEnv.CURATED_DATABASE!,
    rawBucket,
    curatedBucket,
    resultsBucket,
    resultsPrefix: 'athena/',
    dataKeyArn,
    location: (db: string, table: string) =>
      db === taskEnv.RAW_DATABASE
        ? { bucket: rawBucket, prefix: `raw/${DS}/` }
        : { bucket: curatedBucket, prefix: table === TABLE ? `curated/${DS}/table/` : `curated/${DS}/marts/${table.split('__')[1] ?? table}/` },
  };
  const curated = `"${taskEnv.CURATED_DATABASE}"`;
  // Statements of issue 9's mart swap and Iceberg maintenance (transform helper's code): the
  // task role must allow them too.
  const maintenance = [
    `CREATE TABLE ${curated}."${TABLE}__by_month__ha" WITH (table_type = 'ICEBERG') AS SELECT 1 AS n`,
    `ALTER TABLE ${curated}."${TABLE}__by_month" RENAME TO ${curated}."${TABLE}__by_month__bkp"`,
    `ALTER TABLE ${curated}."${TABLE}__by_month__ha" RENAME TO ${curated}."${TABLE}__by_month"`,
    `DROP TABLE IF EXISTS ${curated}."${TABLE}__by_month__bkp"`,
    `OPTIMIZE ${curated}."${TABLE}" REWRITE DATA USING BIN_PACK`,
    `VACUUM ${curated}."${TABLE}"`,
  ];
  const queries = recorder.queries.get('transform') ?? [];
  add('transform', [...(recorder.requests.get('transform') ?? []), ...[...queries, ...maintenance].flatMap((q) => athenaOnBehalf(q, athenaCtx))]);
});

after(async () => {
  recorder.restore();
  await socrata?.close();
  process.env = savedEnv;
});

async function denied(caller: Caller, action: string, resource: string, context?: Record<string, string>): Promise<void> {
  assert.notEqual(await decide(policies[caller], { action, resource, ...(context ? { context } : {}) }, resourcePolicy), 'Allowed', `${caller} must NOT be allowed ${action} on ${resource}`);
}
async function allowedAll(caller: Caller, reqs: IamRequest[]): Promise<void> {
  const refused: string[] = [];
  for (const r of reqs) {
    const d = await decide(policies[caller], r, resourcePolicy);
    if (d !== 'Allowed') refused.push(`${d}: ${r.action} ${r.resource} ${JSON.stringify(r.context ?? {})} (${r.why})`);
  }
  assert.deepEqual(refused, [], `${caller} role lacks permissions:\n${refused.join('\n')}`);
}

const raw = (key: string) => `arn:aws:s3:::${rawBucket}/${key}`;
const cur = (key: string) => `arn:aws:s3:::${curatedBucket}/${key}`;
const glue = (r: string) => `arn:aws:glue:${R}:${A}:${r}`;
const viaS3 = { 'kms:ViaService': `s3.${R}.amazonaws.com` };

describe('fetcher role', () => {
  test('recorded: conditional checkpoint writes, quarantine, Firehose, the app-token secret', () => {
    const reqs = calls.get('fetcher')!;
    const has = (action: string, pattern: RegExp, ctx?: string) => reqs.some((r) => r.action === action && pattern.test(r.resource) && (!ctx || ctx in (r.context ?? {})));
    assert.ok(has('s3:PutObject', /\/checkpoints\/sf-fire-incidents\.json$/, 's3:if-none-match'), 'first checkpoint created with If-None-Match');
    assert.ok(has('s3:PutObject', /\/checkpoints\/sf-fire-incidents\.json$/, 's3:if-match'), 'checkpoint advanced with If-Match');
    assert.ok(has('s3:PutObject', /\/quarantine\/sf-fire-incidents\/ingest_date=/), 'quarantine file');
    assert.ok(has('s3:PutObject', /\/raw\/sf-fire-incidents\/ingest_date=\d{4}-\d{2}-\d{2}\/large-row-[^/]+\.gz$/), 'a row too large for Firehose, written as its own raw object');
    assert.ok(has('s3:PutObject', /\/raw\/sf-fire-incidents\/ingest_date=\d{4}-\d{2}-\d{2}\/direct-[^/]+\.gz$/), 'a parallel backfill\'s rows, written as raw objects');
    assert.ok(has('s3:PutObject', /\/checkpoints\/sf-fire-incidents\.ranges\.json$/, 's3:if-none-match'), 'range progress created');
    assert.ok(has('s3:PutObject', /\/checkpoints\/sf-fire-incidents\.ranges\.json$/, 's3:if-match'), 'range progress advanced');
    assert.ok(has('s3:GetObject', /\/checkpoints\/sf-fire-incidents\.ranges\.json$/), 'range progress read');
    assert.ok(has('firehose:PutRecordBatch', new RegExp(`deliverystream/${deliveryStream}$`)));
    assert.ok(has('secretsmanager:GetSecretValue', /secret:socrata\/app-token-/));
    assert.ok(has('s3:PutObject', /\/keysets\/sf-fire-incidents\/[^/]+\/part-00001\.jsonl\.gz$/), 'key scan part');
    assert.ok(has('s3:PutObject', /\/keysets\/sf-fire-incidents\/[^/]+\/_SUCCESS\.json$/), 'key scan marker');
    assert.ok(has('s3:GetObject', /\/keysets\/sf-fire-incidents\/[^/]+\/missing-keys\.jsonl\.gz$/), 'repair reads the missing keys');
    assert.ok(has('s3:GetObject', /\/keysets\/sf-fire-incidents\/[^/]+\/missing-keys\.txt\.gz$/), 'and, without them, the earlier format\'s file');
    for (const phase of ['rows', 'keys', 'repair']) {
      assert.ok(has('s3:PutObject', new RegExp(`/runs/sf-fire-incidents/${RUN_ID}/fetch-${phase}-00001\\.json$`)), `the ${phase} phase's figures for the run report`);
    }
  });
  test('every recorded call is allowed', async () => allowedAll('fetcher', calls.get('fetcher')!));
  test('nothing beyond its own state, stream and log group', async () => {
    await denied('fetcher', 's3:PutObject', raw(`leases/${DS}.json`));
    await denied('fetcher', 's3:PutObject', raw('checkpoints/other-dataset.json'));
    await denied('fetcher', 's3:DeleteObject', raw(`checkpoints/${DS}.json`));
    await denied('fetcher', 's3:PutObject', raw(`raw/${DS}/ingest_date=2026-01-01/x.gz`));
    await denied('fetcher', 's3:PutObject', raw(`raw/other-dataset/ingest_date=2026-01-01/large-row-x.gz`));
    await denied('fetcher', 's3:PutObject', raw(`raw/${DS}/large-row-x.gz`));
    await denied('fetcher', 's3:PutObject', raw(`raw/other-dataset/ingest_date=2026-01-01/direct-x.gz`));
    await denied('fetcher', 's3:PutObject', raw('checkpoints/other-dataset.ranges.json'));
    await denied('fetcher', 's3:PutObject', raw(`runs/other-dataset/${RUN_ID}/fetch-rows-00001.json`));
    await denied('fetcher', 's3:GetObject', raw(`runs/${DS}/${RUN_ID}/fetch-rows-00001.json`));
    await denied('fetcher', 'firehose:PutRecordBatch', `arn:aws:firehose:${R}:${A}:deliverystream/other-stream`);
    await denied('fetcher', 'secretsmanager:GetSecretValue', `arn:aws:secretsmanager:${R}:${A}:secret:other-AbCdEf`);
    // Lambda logs: its own log group only (AWSLambdaBasicExecutionRole allowed every group).
    await denied('fetcher', 'logs:PutLogEvents', `arn:aws:logs:${R}:${A}:log-group:${fnLogGroup(/RunLeaseFunction/)}:log-stream:x`);
    await denied('fetcher', 'logs:PutLogEvents', `arn:aws:logs:${R}:${A}:log-group:/aws/lambda/anything:log-stream:x`);
    await denied('fetcher', 'logs:CreateLogGroup', `arn:aws:logs:${R}:${A}:log-group:/aws/lambda/anything`);
  });
});

describe('run-lease role', () => {
  test('recorded: create with If-None-Match, read, release with If-Match', () => {
    const reqs = calls.get('runLease')!;
    assert.ok(reqs.some((r) => r.action === 's3:PutObject' && r.resource.endsWith(`/leases/${DS}.json`) && r.context?.['s3:if-none-match'] === '*'));
    assert.ok(reqs.some((r) => r.action === 's3:PutObject' && r.context?.['s3:if-match']));
    assert.ok(reqs.some((r) => r.action === 's3:GetObject'));
  });
  test('every recorded call is allowed', async () => allowedAll('runLease', calls.get('runLease')!));
  test('the lease object only, never a delete', async () => {
    await denied('runLease', 's3:DeleteObject', raw(`leases/${DS}.json`));
    await denied('runLease', 's3:PutObject', raw('leases/other-dataset.json'));
    await denied('runLease', 's3:PutObject', raw(`checkpoints/${DS}.json`));
    await denied('runLease', 's3:GetObject', raw(`raw/${DS}/ingest_date=2026-01-01/x.gz`));
  });
});

describe('transform task role', () => {
  test('recorded: the engine ran its statements in the workgroup, Athena acts on them', () => {
    const reqs = calls.get('transform')!;
    const queries = recorder.queries.get('transform') ?? [];
    assert.ok(queries.some((q) => /information_schema/.test(q)), 'table lookup');
    assert.ok(queries.some((q) => /^CREATE TABLE/.test(q)), 'curated table created');
    assert.ok(queries.some((q) => /^MERGE INTO/.test(q)), 'merge');
    // The run's key scan (written by the fetcher above) is read: the keyset table over keysets/.
    assert.ok(queries.some((q) => /^CREATE EXTERNAL TABLE IF NOT EXISTS .*___keyset/.test(q)), 'keyset table');
    assert.ok(reqs.some((r) => r.action === 's3:GetObject' && r.resource.includes(`/keysets/${DS}/${RUN_ID}/_SUCCESS.json`)), 'keyset marker read');
    assert.ok(reqs.some((r) => r.action === 'athena:StartQueryExecution' && r.resource.endsWith(`workgroup/${taskEnv.ATHENA_WORKGROUP}`)));
    assert.ok(reqs.some((r) => r.action === 'glue:GetDatabase' && r.resource.endsWith('database/default')));
    assert.ok(reqs.some((r) => r.action === 's3:ListMultipartUploadParts'));
    assert.ok(reqs.some((r) => r.action === 's3:PutObject' && r.resource.includes(`/curated/_runs/${DS}/`)), 'run summary written');
    // The fetcher's figures of the run (written above) are listed and read for the report.
    assert.ok(reqs.some((r) => r.action === 's3:ListBucket' && r.context?.['s3:prefix'] === `runs/${DS}/${RUN_ID}/`), 'fetch figures listed');
    assert.ok(reqs.some((r) => r.action === 's3:GetObject' && r.resource.endsWith(`/runs/${DS}/${RUN_ID}/fetch-rows-00001.json`)), 'fetch figures read');
    // Source keys missing from curated: the run's quarantine files are listed and read (reported, not failed on).
    assert.ok(reqs.some((r) => r.action === 's3:ListBucket' && r.context?.['s3:prefix'] === `quarantine/${DS}/`), 'quarantine listed');
    assert.ok(reqs.some((r) => r.action === 's3:GetObject' && r.resource.includes(`/quarantine/${DS}/ingest_date=`)), 'quarantine file read');
    // The history page: the run summaries listed, the page and its index written.
    assert.ok(reqs.some((r) => r.action === 's3:ListBucket' && r.context?.['s3:prefix'] === `curated/_runs/${DS}/`), 'run summaries listed');
    assert.ok(reqs.some((r) => r.action === 's3:PutObject' && r.resource.endsWith(`/reports/${DS}/index.html`)), 'history page written');
  });
  test('every recorded call (and Athena’s on its behalf) is allowed', async () => allowedAll('transform', calls.get('transform')!));
  test('this dataset only: other datasets’ tables and objects, checkpoints and secrets are denied', async () => {
    const curatedDb = taskEnv.CURATED_DATABASE!;
    const rawDb = taskEnv.RAW_DATABASE!;
    await denied('transform', 'glue:UpdateTable', glue(`table/${curatedDb}/other_dataset`));
    await denied('transform', 's3:PutObject', raw(`quarantine/${DS}/ingest_date=2026-01-01/x-00001.ndjson.gz`));
    await denied('transform', 's3:GetObject', raw(`quarantine/other-dataset/ingest_date=2026-01-01/x-00001.ndjson.gz`));
    await denied('transform', 'glue:DeleteTable', glue(`table/${curatedDb}/other_dataset__mart`));
    await denied('transform', 'glue:GetTable', glue(`table/${rawDb}/other_dataset`));
    await denied('transform', 'glue:UpdateTable', glue(`table/${rawDb}/${TABLE}`));
    await denied('transform', 'glue:CreateDatabase', glue(`database/${curatedDb}`));
    await denied('transform', 's3:PutObject', cur('curated/other-dataset/table/x.parquet'));
    await denied('transform', 's3:PutObject', cur(`curated/_runs/other-dataset/${RUN_ID}.json`));
    await denied('transform', 's3:GetObject', raw('raw/other-dataset/ingest_date=2026-01-01/x.gz'));
    await denied('transform', 's3:GetObject', raw(`checkpoints/${DS}.json`));
    await denied('transform', 's3:PutObject', raw(`raw/${DS}/ingest_date=2026-01-01/x.gz`));
    await denied('transform', 's3:PutObject', raw(`runs/${DS}/${RUN_ID}/fetch-rows-00001.json`));
    await denied('transform', 's3:GetObject', raw(`runs/other-dataset/${RUN_ID}/fetch-rows-00001.json`));
    await denied('transform', 's3:ListBucket', `arn:aws:s3:::${rawBucket}`, { 's3:prefix': 'runs/other-dataset/' });
    await denied('transform', 's3:ListBucket', `arn:aws:s3:::${rawBucket}`, { 's3:prefix': 'checkpoints/' });
    await denied('transform', 'secretsmanager:GetSecretValue', `arn:aws:secretsmanager:${R}:${A}:secret:${SECRET}-AbCdEf`);
    await denied('transform', 'kms:Encrypt', someKey);
    if (!dataKeyArn) await denied('transform', 'kms:Decrypt', someKey);
  });
});

describe('Firehose delivery role (what Firehose does with it, per its S3-destination documentation)', () => {
  const key = `raw/${DS}/ingest_date=2026-01-01/${DS}-1-2026-01-01-06-00-00-abc.gz`;
  const errorKey = `errors/${DS}/processing-failed/ingest_date=2026-01-01/x`;
  const logGroup = resolver.resolve({ Ref: logicalId('AWS::Logs::LogGroup', /DeliveryLogs/) }, STACK) as string;
  const needs: IamRequest[] = [
    ...[key, errorKey].flatMap((k) => ['s3:PutObject', 's3:AbortMultipartUpload', 's3:GetObject'].map((action) => ({ action, resource: raw(k), why: 'delivery' }))),
    { action: 's3:GetBucketLocation', resource: `arn:aws:s3:::${rawBucket}`, why: 'delivery' },
    { action: 's3:ListBucketMultipartUploads', resource: `arn:aws:s3:::${rawBucket}`, why: 'delivery' },
    { action: 's3:ListBucket', resource: `arn:aws:s3:::${rawBucket}`, context: { 's3:prefix': `raw/${DS}/` }, why: 'delivery' },
    ...withKey((k) => [{ action: 'kms:GenerateDataKey', resource: k, context: viaS3, why: 'SSE-KMS objects' }]),
    { action: 'logs:PutLogEvents', resource: `arn:aws:logs:${R}:${A}:log-group:${logGroup}:log-stream:S3Delivery`, why: 'error logging' },
  ];
  test('every call Firehose makes for S3 delivery is allowed', async () => allowedAll('delivery', needs));
  test('its dataset’s raw/ and errors/ only: no delete, no checkpoints or leases, no other dataset', async () => {
    await denied('delivery', 's3:DeleteObject', raw(key));
    await denied('delivery', 's3:PutObject', raw(`checkpoints/${DS}.json`));
    await denied('delivery', 's3:GetObject', raw(`checkpoints/${DS}.json`));
    await denied('delivery', 's3:PutObject', raw(`leases/${DS}.json`));
    await denied('delivery', 's3:PutObject', raw('raw/other-dataset/ingest_date=2026-01-01/x.gz'));
    await denied('delivery', 's3:PutObject', raw(`quarantine/${DS}/x`));
    await denied('delivery', 'kms:GenerateDataKey', someKey);
  });
});

describe('crawler role (what the Glue crawler does with it)', () => {
  const rawDb = taskEnv.RAW_DATABASE!;
  const crawlerName = resolver.resolve(Object.values(resources).find((r) => r.Type === 'AWS::Glue::Crawler')!.Properties!.Name, STACK) as string;
  // With a security configuration (the data key), Glue names the group after the role and the
  // configuration; without one it writes to /aws-glue/crawlers, a stream per crawler.
  const logGroup = dataKeyArn ? `/aws-glue/crawlers-role/${ROLES.crawler}-${STACK}-${DS}-crawler` : '/aws-glue/crawlers';
  const logStream = dataKeyArn ? 'crawler' : crawlerName;
  const needs: IamRequest[] = [
    ...['glue:GetDatabase', 'glue:GetTable', 'glue:UpdateTable', 'glue:GetPartitions', 'glue:BatchCreatePartition', 'glue:BatchGetPartition'].map((action) => ({
      action,
      resource: glue(action === 'glue:GetDatabase' ? `database/${rawDb}` : `table/${rawDb}/${TABLE}`),
      why: 'crawl of the raw table',
    })),
    { action: 's3:ListBucket', resource: `arn:aws:s3:::${rawBucket}`, context: { 's3:prefix': `raw/${DS}/ingest_date=2026-01-01/` }, why: 'crawl' },
    { action: 's3:GetObject', resource: raw(`raw/${DS}/ingest_date=2026-01-01/x.gz`), why: 'crawl' },
    ...withKey((k) => [{ action: 'kms:Decrypt', resource: k, why: 'SSE-KMS objects' }]),
    ...(dataKeyArn ? ['logs:CreateLogGroup', 'logs:AssociateKmsKey'] : ['logs:CreateLogGroup']).map((action) => ({ action, resource: `arn:aws:logs:${R}:${A}:log-group:${logGroup}`, why: 'crawler log group' })),
    ...['logs:CreateLogStream', 'logs:PutLogEvents'].map((action) => ({ action, resource: `arn:aws:logs:${R}:${A}:log-group:${logGroup}:log-stream:${logStream}`, why: 'crawler logs' })),
  ];
  test('no AWS-managed policy (AWSGlueServiceRole is glue:* on *): rolePolicies refuses managed ones', () => {
    assert.equal(resources[ROLES.crawler]!.Properties!.ManagedPolicyArns, undefined);
    const crawler = Object.values(resources).find((r) => r.Type === 'AWS::Glue::Crawler')!;
    const sc = Object.values(resources).find((r) => r.Type === 'AWS::Glue::SecurityConfiguration');
    if (dataKeyArn) {
      assert.ok(crawler.Properties!.CrawlerSecurityConfiguration, 'crawler has a security configuration');
      assert.equal(sc!.Properties!.EncryptionConfiguration.CloudWatchEncryption.CloudWatchEncryptionMode, 'SSE-KMS');
    } else {
      assert.equal(crawler.Properties!.CrawlerSecurityConfiguration, undefined);
      assert.equal(sc, undefined);
    }
  });
  test('every call the crawl makes is allowed', async () => allowedAll('crawler', needs));
  test('its own table only', async () => {
    await denied('crawler', 'glue:UpdateTable', glue(`table/${rawDb}/other_dataset`));
    await denied('crawler', 'glue:DeleteTable', glue(`table/${rawDb}/${TABLE}`));
    await denied('crawler', 'glue:CreateTable', glue(`table/${rawDb}/new_table`));
    await denied('crawler', 'glue:CreateDatabase', glue('database/anything'));
    await denied('crawler', 'glue:UpdateTable', glue(`table/${taskEnv.CURATED_DATABASE}/${TABLE}`));
    await denied('crawler', 's3:GetObject', raw(`checkpoints/${DS}.json`));
    await denied('crawler', 'logs:PutLogEvents', `arn:aws:logs:${R}:${A}:log-group:/aws-glue/crawlers:log-stream:other`);
  });
});

describe('state machine role (the calls of every Task state of the synthesized definition)', () => {
  const machine = resolver.resources(STACK, 'AWS::StepFunctions::StateMachine')[0]!.properties;
  const states = (JSON.parse(machine.DefinitionString as string) as { States: Record<string, { Type: string; Resource?: string; Parameters?: Record<string, unknown> }> }).States;
  // The cluster and the topic are the shared stack's, imported.
  const shared = resolver.template(SHARED);
  const sharedId = (type: string, hint: RegExp) => Object.keys(shared.Resources).find((id) => shared.Resources[id]!.Type === type && hint.test(id))!;
  const clusterName = resolver.resolve({ Ref: sharedId('AWS::ECS::Cluster', /Cluster/) }, SHARED) as string;
  const topicKeyId = Object.keys(shared.Resources).find((id) => shared.Resources[id]!.Type === 'AWS::KMS::Key' && /TopicKey/.test(id));
  const topicKey = topicKeyId ? resolver.arn(SHARED, topicKeyId) : undefined;
  const needs: IamRequest[] = [];
  for (const [name, s] of Object.entries(states)) {
    if (s.Type !== 'Task') continue;
    const resource = s.Resource!;
    const p = s.Parameters ?? {};
    if (resource.startsWith('arn:aws:lambda:')) needs.push({ action: 'lambda:InvokeFunction', resource, why: name });
    else if (resource.endsWith(':lambda:invoke')) needs.push({ action: 'lambda:InvokeFunction', resource: p.FunctionName as string, why: name });
    else if (resource.endsWith(':sns:publish')) {
      needs.push({ action: 'sns:Publish', resource: p.TopicArn as string, why: name });
      if (topicKey) needs.push({ action: 'kms:GenerateDataKey', resource: topicKey, why: `${name} (encrypted topic)` }, { action: 'kms:Decrypt', resource: topicKey, why: `${name} (encrypted topic)` });
    } else if (resource.endsWith(':glue:startCrawler') || resource.endsWith(':aws-sdk:glue:getCrawler')) {
      needs.push({ action: resource.endsWith('startCrawler') ? 'glue:StartCrawler' : 'glue:GetCrawler', resource: glue(`crawler/${p.Name as string}`), why: name });
    } else if (resource.endsWith(':ecs:runTask.sync')) {
      // The definition names the family; ECS authorizes the revision it starts (the newest).
      needs.push({ action: 'ecs:RunTask', resource: `arn:aws:ecs:${R}:${A}:task-definition/${p.TaskDefinition as string}:1`, why: name });
      for (const action of ['ecs:DescribeTasks', 'ecs:StopTask']) needs.push({ action, resource: `arn:aws:ecs:${R}:${A}:task/${clusterName}/0123456789abcdef`, why: `${name} (.sync)` });
      for (const role of [/TransformTaskDefinitionTaskRole/, /TransformTaskDefinitionExecutionRole/]) {
        needs.push({ action: 'iam:PassRole', resource: resolver.arn(STACK, logicalId('AWS::IAM::Role', role)), why: name });
      }
      for (const action of ['events:PutTargets', 'events:PutRule', 'events:DescribeRule']) {
        needs.push({ action, resource: `arn:aws:events:${R}:${A}:rule/StepFunctionsGetEventsForECSTaskRule`, why: `${name} (.sync)` });
      }
    } else throw new Error(`task state ${name} calls ${resource}: add it to this test`);
  }
  test('every Task state’s call is allowed', async () => {
    assert.ok(needs.length >= 10);
    await allowedAll('stateMachine', needs);
  });
  test('ecs:DescribeTasks/StopTask on its cluster’s tasks only; no ListExecutions guard left', async () => {
    await denied('stateMachine', 'ecs:StopTask', `arn:aws:ecs:${R}:${A}:task/other-cluster/0123456789abcdef`);
    await denied('stateMachine', 'ecs:DescribeTasks', `arn:aws:ecs:${R}:${A}:task/other-cluster/0123456789abcdef`);
    await denied('stateMachine', 'states:ListExecutions', `arn:aws:states:${R}:${A}:stateMachine:socrata-${ENV}-${DS}`);
    await denied('stateMachine', 'lambda:InvokeFunction', `arn:aws:lambda:${R}:${A}:function:other`);
  });
});

describe('the simulation can fail', () => {
  test('a call outside every statement is denied, and an unknown action is rejected', async () => {
    assert.equal(await decide(policies.fetcher, { action: 's3:GetObject', resource: raw('anything') }), 'ImplicitlyDenied');
    await assert.rejects(decide(policies.fetcher, { action: 's3:NoSuchAction', resource: raw('x') }), /rejected/);
  });
});
