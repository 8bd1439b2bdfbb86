/**
 * The S3 source's grant, proven on the SYNTHESIZED policies with @cloud-copilot/iam-simulate: the
 * fetcher of a dataset reading `s3://source-landing/events/` may list that prefix and read the
 * objects under it, and nothing else of the bucket or of any other; a Socrata dataset's fetcher
 * has no source-bucket grant and an S3 dataset's fetcher no app-token secret; only Lambda may
 * assume the role; the data key is usable only through S3.
 *
 * Prod (customer-managed data key), so the data-key statement is synthesized; the source grant
 * does not depend on the environment. Both datasets in one app, as a deployment would have them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { encodeKeyList } from '../../runtime/key-list';
import { LocalObjectStore } from '../../runtime/object-store';
import { missingKeysKey } from '../../runtime/storage-layout';
import { CheckpointStore } from '../../lambdas/fetcher/checkpoint-store';
import { runFetch } from '../../lambdas/fetcher/fetch-run';
import { runKeyScan } from '../../lambdas/fetcher/key-scan';
import { runRepair } from '../../lambdas/fetcher/repair';
import { S3FilesSource } from '../../lambdas/fetcher/sources/s3/s3-files-source';
import { acceptingFirehose, wholeSourceDeps } from '../fetcher/harness';
import { keyScanSettings, rowFetchSettings } from '../support/fetch-settings';
import { motoAvailable, startMotoS3, type MotoS3 } from '../support/moto-s3';
import { REPO_ROOT, synth } from './app-fixture';
import { CfnResolver, FAKE, loadTemplates } from './cfn-resolve';
import { decide, resourcePolicies, rolePolicies, type Decision, type PolicyDocument } from './iam-policies';

const { account: A, region: R } = FAKE;
const ENV = 'prod';
const SOURCE_BUCKET = 'source-landing';
const PREFIX = 'events/';
const SECRET = 'socrata/app-token';
const SOCRATA = 'sf-fire-incidents';
const S3_DATASET = 'vehicle-events';
/** A source that is a whole bucket (`s3://whole-landing`, prefix ''), as the schema allows. */
const WHOLE_BUCKET = 'whole-landing';
const WHOLE_DATASET = 'fleet-register';

const datasetsDir = mkdtempSync(path.join(os.tmpdir(), 'iam-s3-source-'));
const socrataJson = JSON.parse(readFileSync(path.join(REPO_ROOT, 'datasets', `${SOCRATA}.json`), 'utf8')) as { source: Record<string, unknown> };
// With an app token: the Socrata fetcher's secret grant is the one the S3 fetcher must not have.
socrataJson.source.appTokenSecretName = SECRET;
writeFileSync(path.join(datasetsDir, `${SOCRATA}.json`), JSON.stringify(socrataJson));
const s3Definition = (name: string, url: string) => ({
  name,
  source: { type: 's3', url, format: 'ndjson', mode: 'snapshot' },
  primaryKey: 'event_id',
  eventTimeColumn: 'at',
  columns: [
    { name: 'event_id', type: 'text' },
    { name: 'at', type: 'fixed_timestamp' },
    { name: 'lat', type: 'number', path: 'data.location.lat' },
  ],
});
writeFileSync(path.join(datasetsDir, `${S3_DATASET}.json`), JSON.stringify(s3Definition(S3_DATASET, `s3://${SOURCE_BUCKET}/${PREFIX}`)));
writeFileSync(path.join(datasetsDir, `${WHOLE_DATASET}.json`), JSON.stringify(s3Definition(WHOLE_DATASET, `s3://${WHOLE_BUCKET}`)));

const result = synth({ env: ENV, datasetsDir });
const resolver = new CfnResolver(loadTemplates(result.outdir));
const stackOf = (dataset: string) => `SocrataPipeline-${ENV}-Dataset-${dataset}`;
const STORAGE = `SocrataPipeline-${ENV}-Storage`;
const SHARED = `SocrataPipeline-${ENV}-Shared`;

/** The one resource of `type` whose logical id matches `hint` in `stack`. */
function logicalId(stack: string, type: string, hint: RegExp): string {
  const ids = Object.entries(resolver.template(stack).Resources)
    .filter(([id, r]) => r.Type === type && hint.test(id))
    .map(([id]) => id);
  if (ids.length !== 1) throw new Error(`${stack}: ${type} matching ${hint}: ${ids.join(', ') || 'none'}`);
  return ids[0]!;
}

interface Fetcher {
  policies: PolicyDocument[];
  statements: Array<Record<string, unknown>>;
  trust: PolicyDocument;
  roleArn: string;
  environment: Record<string, string>;
}

function fetcherOf(dataset: string): Fetcher {
  const stack = stackOf(dataset);
  const role = logicalId(stack, 'AWS::IAM::Role', /FetcherRole/);
  const policies = rolePolicies(resolver, stack, role);
  const fn = resolver.template(stack).Resources[logicalId(stack, 'AWS::Lambda::Function', /FetcherFunction/)]!;
  return {
    policies,
    statements: policies.flatMap((p) => p.Statement),
    trust: resolver.resolve(resolver.template(stack).Resources[role]!.Properties!.AssumeRolePolicyDocument, stack) as PolicyDocument,
    roleArn: resolver.arn(stack, role),
    environment: resolver.resolve(fn.Properties!.Environment, stack).Variables as Record<string, string>,
  };
}

const s3Fetcher = fetcherOf(S3_DATASET);
const socrataFetcher = fetcherOf(SOCRATA);
const wholeBucketFetcher = fetcherOf(WHOLE_DATASET);
const resourcePolicy = resourcePolicies(resolver, [stackOf(S3_DATASET), stackOf(SOCRATA), stackOf(WHOLE_DATASET), STORAGE, SHARED]);
const dataKeyArn = resolver.arn(STORAGE, resolver.resources(STORAGE, 'AWS::KMS::Key').find((k) => /DataKey/.test(k.id))!.id);

const object = (bucket: string, key: string) => `arn:aws:s3:::${bucket}/${key}`;
const bucketArn = (bucket: string) => `arn:aws:s3:::${bucket}`;
const secretArn = `arn:aws:secretsmanager:${R}:${A}:secret:${SECRET}-AbCdEf`;

const decideFor = (f: Fetcher, action: string, resource: string, context?: Record<string, string>): Promise<Decision> =>
  decide(f.policies, { action, resource, ...(context ? { context } : {}) }, resourcePolicy);

async function allowed(f: Fetcher, action: string, resource: string, context?: Record<string, string>): Promise<void> {
  assert.equal(await decideFor(f, action, resource, context), 'Allowed', `${action} on ${resource} ${JSON.stringify(context ?? {})} must be allowed`);
}
async function denied(f: Fetcher, action: string, resource: string, context?: Record<string, string>): Promise<void> {
  assert.notEqual(await decideFor(f, action, resource, context), 'Allowed', `${action} on ${resource} ${JSON.stringify(context ?? {})} must NOT be allowed`);
}

/** Statements of a role that mention the source bucket in any resource. */
const sourceBucketStatements = (f: Fetcher) => f.statements.filter((s) => JSON.stringify(s.Resource ?? '').includes(`:::${SOURCE_BUCKET}`));

describe(`the fetcher of an S3 source (s3://${SOURCE_BUCKET}/${PREFIX})`, () => {
  test('may list the declared prefix and anything below it', async () => {
    await allowed(s3Fetcher, 's3:ListBucket', bucketArn(SOURCE_BUCKET), { 's3:prefix': PREFIX });
    await allowed(s3Fetcher, 's3:ListBucket', bucketArn(SOURCE_BUCKET), { 's3:prefix': `${PREFIX}sub/` });
  });

  test('may read the objects under the prefix', async () => {
    await allowed(s3Fetcher, 's3:GetObject', object(SOURCE_BUCKET, `${PREFIX}x.ndjson`));
    await allowed(s3Fetcher, 's3:GetObject', object(SOURCE_BUCKET, `${PREFIX}sub/2025-07-01.ndjson.gz`));
  });

  test('may not read outside the prefix, nor a prefix that merely starts with its name, nor another bucket', async () => {
    await denied(s3Fetcher, 's3:GetObject', object(SOURCE_BUCKET, 'other/x'));
    await denied(s3Fetcher, 's3:GetObject', object(SOURCE_BUCKET, 'eventsx/y'));
    await denied(s3Fetcher, 's3:GetObject', object(SOURCE_BUCKET, 'x.ndjson'));
    await denied(s3Fetcher, 's3:GetObject', object('another-bucket', `${PREFIX}x.ndjson`));
  });

  test('may not list another prefix, the whole bucket, or another bucket', async () => {
    await denied(s3Fetcher, 's3:ListBucket', bucketArn(SOURCE_BUCKET), { 's3:prefix': 'other/' });
    await denied(s3Fetcher, 's3:ListBucket', bucketArn(SOURCE_BUCKET), { 's3:prefix': 'eventsx/' });
    await denied(s3Fetcher, 's3:ListBucket', bucketArn(SOURCE_BUCKET), { 's3:prefix': '' });
    await denied(s3Fetcher, 's3:ListBucket', bucketArn(SOURCE_BUCKET));
    await denied(s3Fetcher, 's3:ListBucket', bucketArn('another-bucket'), { 's3:prefix': PREFIX });
  });

  test('may not write or delete anything in the source bucket, under the prefix or not', async () => {
    for (const action of ['s3:PutObject', 's3:DeleteObject', 's3:DeleteObjectVersion', 's3:PutObjectAcl', 's3:PutObjectTagging']) {
      for (const key of [`${PREFIX}x.ndjson`, 'other/x']) await denied(s3Fetcher, action, object(SOURCE_BUCKET, key));
    }
    for (const action of ['s3:DeleteBucket', 's3:PutBucketPolicy', 's3:PutLifecycleConfiguration']) await denied(s3Fetcher, action, bucketArn(SOURCE_BUCKET));
  });

  test('has no app-token secret: no Secrets Manager statement, no secret variable, the Socrata fetcher\'s secret refused', async () => {
    // The control: the Socrata fetcher of the same app is given that secret.
    await allowed(socrataFetcher, 'secretsmanager:GetSecretValue', secretArn);
    await denied(s3Fetcher, 'secretsmanager:GetSecretValue', secretArn);
    assert.deepEqual(s3Fetcher.statements.filter((s) => JSON.stringify(s.Action).includes('secretsmanager:')), []);
    assert.equal(s3Fetcher.environment.APP_TOKEN_SECRET_NAME, undefined);
    assert.equal(socrataFetcher.environment.APP_TOKEN_SECRET_NAME, SECRET);
  });
});

describe('the fetcher of a Socrata dataset in the same app', () => {
  test('has no source-bucket statement at all, and may neither list nor read the S3 source', async () => {
    assert.deepEqual(sourceBucketStatements(socrataFetcher), []);
    assert.deepEqual(
      socrataFetcher.statements.filter((s) => s.Sid === 'ListSourcePrefix' || s.Sid === 'ReadSourceObjects'),
      [],
    );
    await denied(socrataFetcher, 's3:ListBucket', bucketArn(SOURCE_BUCKET), { 's3:prefix': PREFIX });
    await denied(socrataFetcher, 's3:GetObject', object(SOURCE_BUCKET, `${PREFIX}x.ndjson`));
    // The control: the S3 fetcher's statements do name the bucket (the filter above can match).
    assert.equal(sourceBucketStatements(s3Fetcher).length, 2);
  });
});

/** sts:AssumeRole of the role by `principal`, against the role's SYNTHESIZED trust policy. */
async function assume(f: Fetcher, principal: string): Promise<Decision> {
  const response = await runSimulation(
    {
      resourcePolicy: { Version: '2012-10-17', ...f.trust },
      identityPolicies: [],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: { action: 'sts:AssumeRole', principal, resource: { accountId: A, resource: f.roleArn }, contextVariables: { 'aws:SecureTransport': 'true' } },
    } as never,
    {},
  );
  if (response.resultType === 'error') throw new Error(`iam-simulate rejected sts:AssumeRole by ${principal}: ${JSON.stringify(response.errors)}`);
  return response.overallResult as Decision;
}

describe('the fetcher role\'s trust policy', () => {
  for (const [name, f] of [['S3', s3Fetcher], ['Socrata', socrataFetcher]] as const) {
    test(`${name}: only lambda.amazonaws.com may assume it`, async () => {
      assert.equal(await assume(f, 'lambda.amazonaws.com'), 'Allowed');
      for (const other of ['ecs-tasks.amazonaws.com', 'states.amazonaws.com', 'firehose.amazonaws.com', 'edgelambda.amazonaws.com']) {
        assert.notEqual(await assume(f, other), 'Allowed', other);
      }
      for (const other of [`arn:aws:iam::${A}:root`, `arn:aws:iam::${A}:role/someone`, 'arn:aws:iam::210987654321:role/someone']) {
        assert.notEqual(await assume(f, other), 'Allowed', other);
      }
      // As written: one statement, the Lambda service, AssumeRole, nothing else.
      assert.deepEqual(f.trust.Statement, [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } }]);
    });
  }
});

describe('the fetcher\'s data key (customer-managed, prod)', () => {
  const viaS3 = { 'kms:ViaService': `s3.${R}.amazonaws.com` };
  for (const [name, f] of [['S3', s3Fetcher], ['Socrata', socrataFetcher]] as const) {
    test(`${name}: Decrypt and GenerateDataKey through S3 (its state objects are SSE-KMS), and only through S3`, async () => {
      await allowed(f, 'kms:Decrypt', dataKeyArn, viaS3);
      await allowed(f, 'kms:GenerateDataKey', dataKeyArn, viaS3);
      await denied(f, 'kms:Decrypt', dataKeyArn);
      await denied(f, 'kms:GenerateDataKey', dataKeyArn);
      await denied(f, 'kms:Decrypt', dataKeyArn, { 'kms:ViaService': `firehose.${R}.amazonaws.com` });
      await denied(f, 'kms:Decrypt', dataKeyArn, { 'kms:ViaService': `s3.eu-west-1.amazonaws.com` });
      await denied(f, 'kms:Encrypt', dataKeyArn, viaS3);
    });
  }
});

/**
 * The requests the S3 source really sends, as IAM sees them: recorded by a middleware on its
 * client while the real row fetch, key scan and repair read a prefix in moto_server (snapshot),
 * and a row fetch reads it append-only over listing pages of 2 keys (StartAfter, continuation).
 */
async function sourceRequests(s3: S3Client, url: string): Promise<Array<{ action: string; resource: string; context?: Record<string, string> }>> {
  const requests: Array<{ action: string; resource: string; context?: Record<string, string> }> = [];
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Bucket: string; Key?: string; Prefix?: string };
      if (context.commandName === 'ListObjectsV2Command') {
        // s3:prefix is in the request context only when the request has a prefix.
        requests.push({ action: 's3:ListBucket', resource: bucketArn(input.Bucket), ...(input.Prefix !== undefined ? { context: { 's3:prefix': input.Prefix } } : {}) });
      } else if (context.commandName === 'GetObjectCommand') {
        requests.push({ action: 's3:GetObject', resource: object(input.Bucket, input.Key!) });
      } else {
        requests.push({ action: `unexpected:${String(context.commandName)}`, resource: bucketArn(input.Bucket) });
      }
      return next(args);
    },
    { step: 'initialize', name: 'recordIamRequests' },
  );
  const store = new LocalObjectStore(mkdtempSync(path.join(os.tmpdir(), 'iam-s3-source-state-')));
  const checkpoints = new CheckpointStore(store, 'events');
  const settings = rowFetchSettings({ datasetName: 'events', primaryKey: 'event_id', pageSize: 7 });
  const source = (mode: 'snapshot' | 'append') => new S3FilesSource({ datasetName: 'events', url, format: 'ndjson', primaryKey: 'event_id', mode, s3, listPageSize: 2 });
  acceptingFirehose();
  assert.equal((await runFetch({ runId: 'r1' }, settings, wholeSourceDeps(source('snapshot'), store, checkpoints))).stats.rowsDelivered, 30);
  assert.equal((await runKeyScan({ runId: 'r1' }, keyScanSettings({ datasetName: 'events', primaryKey: 'event_id', keyPageSize: 10 }), wholeSourceDeps(source('snapshot'), store, checkpoints))).done, true);
  await store.put(missingKeysKey({ name: 'events' }, 'r1'), gzipSync(encodeKeyList(['E-3', 'E-27'])));
  assert.equal((await runRepair({ runId: 'r1' }, settings, wholeSourceDeps(source('snapshot'), store, checkpoints))).stats.rowsDelivered, 2);
  const appendOnly = new CheckpointStore(new LocalObjectStore(mkdtempSync(path.join(os.tmpdir(), 'iam-s3-source-append-'))), 'events');
  assert.equal((await runFetch({ runId: 'r2' }, settings, wholeSourceDeps(source('append'), store, appendOnly))).stats.rowsDelivered, 30);
  return requests;
}

const events = (from: number, to: number): string =>
  Array.from({ length: to - from + 1 }, (_, i) => `${JSON.stringify({ event_id: `E-${from + i}`, at: '2025-07-01T00:00:00Z', data: { location: { lat: 1 } } })}\n`).join('');

describe('every request the S3 source sends is allowed by its synthesized role', { skip: !motoAvailable && 'moto_server is not installed' }, () => {
  let moto: MotoS3;
  before(async () => {
    moto = await startMotoS3(SOURCE_BUCKET);
    await moto.s3.send(new CreateBucketCommand({ Bucket: WHOLE_BUCKET }));
    for (const [bucket, prefix] of [[SOURCE_BUCKET, PREFIX], [WHOLE_BUCKET, '']] as const) {
      const put = (key: string, body: string | Buffer) => moto.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
      await put(`${prefix}2025-07-01.ndjson`, events(1, 10));
      await put(`${prefix}2025-07-02.ndjson.gz`, gzipSync(events(11, 20)));
      await put(`${prefix}sub/2025-07-03.ndjson`, events(21, 30));
    }
    // Beside the prefix: neither listed nor read by the prefix's source (which would be refused).
    await moto.s3.send(new PutObjectCommand({ Bucket: SOURCE_BUCKET, Key: 'eventsx/decoy.ndjson', Body: events(91, 99) }));
  });
  after(() => moto?.stop());

  const client = () => new S3Client({ region: R, endpoint: moto.endpoint, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const refused = async (f: Fetcher, requests: Awaited<ReturnType<typeof sourceRequests>>) => {
    const out: string[] = [];
    for (const r of requests) {
      const d = await decideFor(f, r.action, r.resource, r.context);
      if (d !== 'Allowed') out.push(`${d}: ${r.action} ${r.resource} ${JSON.stringify(r.context ?? {})}`);
    }
    return out;
  };

  test(`s3://${SOURCE_BUCKET}/${PREFIX}: its lists and GETs`, async () => {
    const requests = await sourceRequests(client(), `s3://${SOURCE_BUCKET}/${PREFIX}`);
    assert.ok(requests.some((r) => r.action === 's3:ListBucket') && requests.some((r) => r.action === 's3:GetObject' && r.resource.endsWith('/sub/2025-07-03.ndjson')), JSON.stringify(requests));
    assert.deepEqual(await refused(s3Fetcher, requests), []);
    // The control: the same requests are refused to the Socrata fetcher.
    assert.equal((await refused(socrataFetcher, requests)).length, requests.length);
  });

  test(`s3://${WHOLE_BUCKET} (the whole bucket): its lists, which send no prefix, and GETs`, async () => {
    const requests = await sourceRequests(client(), `s3://${WHOLE_BUCKET}`);
    assert.ok(requests.some((r) => r.action === 's3:ListBucket' && r.context === undefined), JSON.stringify(requests));
    assert.deepEqual(await refused(wholeBucketFetcher, requests), []);
    // Its grant is the one bucket: the prefix source's bucket stays out of reach.
    await denied(wholeBucketFetcher, 's3:GetObject', object(SOURCE_BUCKET, `${PREFIX}x.ndjson`));
    await denied(wholeBucketFetcher, 's3:ListBucket', bucketArn(SOURCE_BUCKET), { 's3:prefix': PREFIX });
  });
});
