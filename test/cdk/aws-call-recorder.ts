/**
 * Records the AWS calls the runtime code really makes, as IAM sees them (action, resource ARN,
 * condition context), by serving the SDK clients with aws-sdk-client-mock: an in-memory S3 with
 * S3's conditional-write answers, an accepting Firehose, a Secrets Manager holding the token, and
 * an Athena that answers every query. Also derives the calls S3 and Athena make on the caller's
 * behalf (KMS for SSE-KMS objects; Glue and S3 for each query), from their documentation.
 */
import {
  AthenaClient,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
  StopQueryExecutionCommand,
  type StartQueryExecutionCommandInput,
} from '@aws-sdk/client-athena';
import { FirehoseClient, PutRecordBatchCommand, PutRecordCommand, type PutRecordBatchCommandInput } from '@aws-sdk/client-firehose';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type GetObjectCommandInput,
  type ListObjectsV2CommandInput,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient, type GetSecretValueCommandInput } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { createHash } from 'node:crypto';
import { FAKE } from './cfn-resolve';

const { account: A, region: R } = FAKE;

export interface IamRequest {
  action: string;
  resource: string;
  context?: Record<string, string | string[]>;
  /** What made the request: the SDK command, or the service acting on the caller's behalf. */
  why: string;
}

export interface RecorderOptions {
  /** The data key every bucket uses (SSE-KMS): S3 calls KMS with it on the caller's behalf. Undefined: SSE-S3, no KMS call. */
  dataKeyArn: string | undefined;
  /** Secret values by name. */
  secrets?: Record<string, string>;
}

/** The recorder: `current` names the caller whose requests are being recorded. */
export class AwsCallRecorder {
  readonly objects = new Map<string, { body: Buffer; etag: string }>();
  readonly requests = new Map<string, IamRequest[]>();
  /** SQL of each Athena query, by caller. */
  readonly queries = new Map<string, string[]>();
  current = 'nobody';
  private readonly sqlById = new Map<string, string>();
  private readonly mocks: Array<{ restore(): void }> = [];

  constructor(private readonly opts: RecorderOptions) {}

  record(req: IamRequest): void {
    const list = this.requests.get(this.current) ?? [];
    list.push(req);
    this.requests.set(this.current, list);
  }

  private viaS3(action: 'kms:Decrypt' | 'kms:GenerateDataKey', why: string): void {
    if (this.opts.dataKeyArn === undefined) return;
    this.record({ action, resource: this.opts.dataKeyArn, context: { 'kms:ViaService': `s3.${R}.amazonaws.com` }, why: `${why} (SSE-KMS, by S3 on the caller's behalf)` });
  }

  install(): this {
    const s3 = mockClient(S3Client);
    this.mocks.push(s3);
    s3.on(GetObjectCommand).callsFake(async (input: GetObjectCommandInput) => {
      const key = `${input.Bucket}/${input.Key}`;
      this.record({ action: 's3:GetObject', resource: `arn:aws:s3:::${key}`, why: 'S3 GetObject' });
      const o = this.objects.get(key);
      if (!o) {
        // S3 answers 404 (not 403) for a missing key only to callers allowed to list the bucket.
        this.record({ action: 's3:ListBucket', resource: `arn:aws:s3:::${input.Bucket}`, context: { 's3:prefix': input.Key! }, why: 'S3 GetObject of a missing key (404 needs s3:ListBucket)' });
        throw new NoSuchKey({ message: `no ${key}`, $metadata: { httpStatusCode: 404 } });
      }
      this.viaS3('kms:Decrypt', 'S3 GetObject');
      const body = o.body;
      return { ETag: o.etag, Body: { transformToByteArray: async () => new Uint8Array(body), transformToString: async () => body.toString('utf8') } as never };
    });
    s3.on(PutObjectCommand).callsFake(async (input: PutObjectCommandInput) => {
      const key = `${input.Bucket}/${input.Key}`;
      const context: Record<string, string> = {};
      if (input.IfNoneMatch) context['s3:if-none-match'] = input.IfNoneMatch;
      if (input.IfMatch) context['s3:if-match'] = input.IfMatch;
      this.record({ action: 's3:PutObject', resource: `arn:aws:s3:::${key}`, context, why: `S3 PutObject${input.IfNoneMatch ? ' If-None-Match' : ''}${input.IfMatch ? ' If-Match' : ''}` });
      this.viaS3('kms:GenerateDataKey', 'S3 PutObject');
      const current = this.objects.get(key);
      const failed = (input.IfNoneMatch === '*' && current) || (input.IfMatch !== undefined && current?.etag !== input.IfMatch);
      if (failed) throw new S3ServiceException({ name: 'PreconditionFailed', $fault: 'client', $metadata: { httpStatusCode: 412 }, message: 'At least one of the pre-conditions you specified did not hold' });
      const body = Buffer.from(input.Body as string | Uint8Array);
      const etag = `"${createHash('md5').update(body).digest('hex')}"`;
      this.objects.set(key, { body, etag });
      return { ETag: etag };
    });
    s3.on(DeleteObjectCommand).callsFake(async (input: { Bucket: string; Key: string }) => {
      this.record({ action: 's3:DeleteObject', resource: `arn:aws:s3:::${input.Bucket}/${input.Key}`, why: 'S3 DeleteObject' });
      this.objects.delete(`${input.Bucket}/${input.Key}`);
      return {};
    });
    s3.on(ListObjectsV2Command).callsFake(async (input: ListObjectsV2CommandInput) => {
      this.record({ action: 's3:ListBucket', resource: `arn:aws:s3:::${input.Bucket}`, context: { 's3:prefix': input.Prefix ?? '' }, why: 'S3 ListObjectsV2' });
      const prefix = `${input.Bucket}/${input.Prefix ?? ''}`;
      const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
      return { Contents: keys.map((k) => ({ Key: k.slice(input.Bucket!.length + 1) })), IsTruncated: false };
    });

    const firehose = mockClient(FirehoseClient);
    this.mocks.push(firehose);
    const put = async (input: PutRecordBatchCommandInput) => {
      this.record({ action: 'firehose:PutRecordBatch', resource: `arn:aws:firehose:${R}:${A}:deliverystream/${input.DeliveryStreamName}`, why: 'Firehose PutRecordBatch' });
      return { FailedPutCount: 0, Encrypted: true, RequestResponses: (input.Records ?? []).map((_, i) => ({ RecordId: `r${i}` })) };
    };
    firehose.on(PutRecordBatchCommand).callsFake(put);
    firehose.on(PutRecordCommand).callsFake(async (input: { DeliveryStreamName: string }) => {
      this.record({ action: 'firehose:PutRecord', resource: `arn:aws:firehose:${R}:${A}:deliverystream/${input.DeliveryStreamName}`, why: 'Firehose PutRecord' });
      return { RecordId: 'r', Encrypted: true };
    });

    const secrets = mockClient(SecretsManagerClient);
    this.mocks.push(secrets);
    secrets.on(GetSecretValueCommand).callsFake(async (input: GetSecretValueCommandInput) => {
      const name = input.SecretId!;
      // Secrets Manager appends "-" and six random characters to every secret's ARN.
      this.record({ action: 'secretsmanager:GetSecretValue', resource: `arn:aws:secretsmanager:${R}:${A}:secret:${name}-AbCdEf`, why: 'Secrets Manager GetSecretValue' });
      const value = this.opts.secrets?.[name];
      if (value === undefined) throw new Error(`test has no secret ${name}`);
      return { SecretString: value };
    });

    const athena = mockClient(AthenaClient);
    this.mocks.push(athena);
    let n = 0;
    const workgroupOf = new Map<string, string>();
    const wgArn = (id: string) => `arn:aws:athena:${R}:${A}:workgroup/${workgroupOf.get(id) ?? 'unknown'}`;
    athena.on(StartQueryExecutionCommand).callsFake(async (input: StartQueryExecutionCommandInput) => {
      const id = `q-${++n}`;
      workgroupOf.set(id, input.WorkGroup ?? 'primary');
      this.sqlById.set(id, input.QueryString ?? '');
      const list = this.queries.get(this.current) ?? [];
      list.push(input.QueryString ?? '');
      this.queries.set(this.current, list);
      this.record({ action: 'athena:StartQueryExecution', resource: wgArn(id), why: 'Athena StartQueryExecution' });
      return { QueryExecutionId: id };
    });
    athena.on(GetQueryExecutionCommand).callsFake(async (input: { QueryExecutionId: string }) => {
      this.record({ action: 'athena:GetQueryExecution', resource: wgArn(input.QueryExecutionId), why: 'Athena GetQueryExecution' });
      return { QueryExecution: { QueryExecutionId: input.QueryExecutionId, Status: { State: 'SUCCEEDED' } } };
    });
    athena.on(StopQueryExecutionCommand).callsFake(async (input: { QueryExecutionId: string }) => {
      this.record({ action: 'athena:StopQueryExecution', resource: wgArn(input.QueryExecutionId), why: 'Athena StopQueryExecution' });
      return {};
    });
    athena.on(GetQueryResultsCommand).callsFake(async (input: { QueryExecutionId: string }) => {
      this.record({ action: 'athena:GetQueryResults', resource: wgArn(input.QueryExecutionId), why: 'Athena GetQueryResults' });
      return athenaAnswer(this.sqlById.get(input.QueryExecutionId) ?? '');
    });
    return this;
  }

  restore(): void {
    for (const m of this.mocks) m.restore();
  }
}

/**
 * A plausible answer to any query: one row with every `AS <alias>` of the statement. The
 * curated table does not exist yet (so it is created), the batch has new rows in one event year
 * (so the MERGE runs), every data test finds 0 failures.
 */
function athenaAnswer(sql: string) {
  const aliases = [...new Set([...sql.matchAll(/\bAS\s+"?([a-z_][a-z0-9_]*)"?/gi)].map((m) => m[1]!.toLowerCase()))];
  if (!/^\s*(SELECT|WITH)\b/i.test(sql) || aliases.length === 0) return { ResultSet: { Rows: [], ResultSetMetadata: { ColumnInfo: [] } } };
  const value = (a: string): string => {
    if (a === 'years') return '2024';
    if (a === 'n' && /information_schema/i.test(sql)) return '0';
    if (['inserted', 'rows_read', 'staged', 'n'].includes(a)) return '1';
    return '0';
  };
  return {
    ResultSet: {
      ResultSetMetadata: { ColumnInfo: aliases.map((a) => ({ Name: a, Type: a === 'years' ? 'varchar' : 'bigint' })) },
      Rows: [{ Data: aliases.map((a) => ({ VarCharValue: a })) }, { Data: aliases.map((a) => ({ VarCharValue: value(a) })) }],
    },
  };
}

export interface AthenaContext {
  workgroup: string;
  rawDatabase: string;
  curatedDatabase: string;
  rawBucket: string;
  curatedBucket: string;
  resultsBucket: string;
  resultsPrefix: string;
  /** Undefined: SSE-S3 buckets and results, no KMS call. */
  dataKeyArn: string | undefined;
  /** Table name → its data location as a key prefix in the raw or curated bucket. */
  location: (database: string, table: string) => { bucket: string; prefix: string };
}

/**
 * What Athena does with the caller's credentials for one statement (Athena user guide: access to
 * Glue resources, to the results location and to the data): Glue lookups of the default database
 * and of every table named, Glue writes for DDL/DML on a target, S3 reads of the data, S3 writes
 * of results and of written tables, KMS through S3.
 */
export function athenaOnBehalf(sql: string, ctx: AthenaContext): IamRequest[] {
  const glue = (r: string) => `arn:aws:glue:${R}:${A}:${r}`;
  const why = `Athena on the caller's behalf for: ${sql.replace(/\s+/g, ' ').slice(0, 80)}`;
  const out: IamRequest[] = [];
  const add = (action: string, resource: string, context?: Record<string, string>) => out.push({ action, resource, why, ...(context ? { context } : {}) });
  for (const action of ['glue:GetDatabase', 'glue:GetDatabases', 'glue:CreateDatabase']) {
    add(action, glue('catalog'));
    add(action, glue('database/default'));
  }
  // Results: written under the workgroup's output location, read back by GetQueryResults.
  const results = `arn:aws:s3:::${ctx.resultsBucket}`;
  add('s3:GetBucketLocation', results);
  add('s3:ListBucket', results, { 's3:prefix': ctx.resultsPrefix });
  add('s3:ListBucketMultipartUploads', results);
  for (const action of ['s3:PutObject', 's3:GetObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts']) add(action, `${results}/${ctx.resultsPrefix}q-1.csv`);
  if (ctx.dataKeyArn) {
    add('kms:GenerateDataKey', ctx.dataKeyArn, { 'kms:ViaService': `s3.${R}.amazonaws.com` });
    add('kms:Decrypt', ctx.dataKeyArn, { 'kms:ViaService': `s3.${R}.amazonaws.com` });
  }

  if (/information_schema\.tables/i.test(sql)) {
    add('glue:GetTables', glue('catalog'));
    add('glue:GetTables', glue(`database/${ctx.curatedDatabase}`));
    add('glue:GetTables', glue(`table/${ctx.curatedDatabase}/*`));
  }
  const tables = [...new Set([...sql.matchAll(/"([a-z0-9_]+)"\."([a-z0-9_]+)"/g)].map((m) => `${m[1]}/${m[2]}`))];
  const target = /^\s*(?:CREATE\s+TABLE|MERGE\s+INTO|INSERT\s+INTO|DROP\s+TABLE(?:\s+IF\s+EXISTS)?|ALTER\s+TABLE|OPTIMIZE|VACUUM)\s+(?:`|")?([a-z0-9_]+)(?:`|")?\.(?:`|")?([a-z0-9_]+)/i.exec(sql);
  const renamed = /RENAME\s+TO\s+(?:`|")?([a-z0-9_]+)(?:`|")?\.(?:`|")?([a-z0-9_]+)/i.exec(sql);
  const written = new Set<string>();
  if (target) written.add(`${target[1]}/${target[2]}`);
  if (renamed) written.add(`${renamed[1]}/${renamed[2]}`);
  for (const t of new Set([...tables, ...written])) {
    const [db, name] = t.split('/') as [string, string];
    add('glue:GetDatabase', glue(`database/${db}`));
    add('glue:GetTable', glue(`table/${db}/${name}`));
    add('glue:GetPartitions', glue(`table/${db}/${name}`));
    const loc = ctx.location(db, name);
    add('s3:ListBucket', `arn:aws:s3:::${loc.bucket}`, { 's3:prefix': loc.prefix });
    add('s3:GetObject', `arn:aws:s3:::${loc.bucket}/${loc.prefix}part-00000.parquet`);
  }
  if (target) {
    const [db, name] = [target[1]!, target[2]!];
    const verb = target[0].trim().split(/\s+/)[0]!.toUpperCase();
    const loc = ctx.location(db, name);
    const object = `arn:aws:s3:::${loc.bucket}/${loc.prefix}data/part-00001.parquet`;
    if (verb === 'CREATE') {
      add('glue:CreateTable', glue(`database/${db}`));
      add('glue:CreateTable', glue(`table/${db}/${name}`));
    }
    if (verb === 'DROP') {
      add('glue:DeleteTable', glue(`table/${db}/${name}`));
      add('s3:DeleteObject', object);
    }
    if (['MERGE', 'INSERT', 'OPTIMIZE', 'VACUUM', 'ALTER'].includes(verb)) add('glue:UpdateTable', glue(`table/${db}/${name}`));
    if (verb === 'VACUUM' || verb === 'OPTIMIZE') add('s3:DeleteObject', object);
    if (renamed) {
      add('glue:CreateTable', glue(`table/${renamed[1]}/${renamed[2]}`));
      add('glue:DeleteTable', glue(`table/${db}/${name}`));
    }
    if (verb !== 'DROP' && !renamed) {
      add('s3:PutObject', object);
      add('s3:AbortMultipartUpload', object);
    }
  }
  return out;
}
