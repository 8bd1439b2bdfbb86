import path from 'node:path';
import { Stack } from 'aws-cdk-lib';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { tableName } from '../../runtime/dataset-config';
import type { DatasetDataLakeProps } from './dataset-data-lake';
import { curatedPrefix, fetchRunsPrefix, keysetPrefix, quarantinePrefix, rawPrefix, reportPrefix, runSummaryPrefix, transformStatePrefix } from '../../runtime/storage-layout';

/** Where the workgroup writes query results in the results bucket (query-catalog.ts). */
export const ATHENA_RESULTS_PREFIX = 'athena/';

const REPO_ROOT = path.join(import.meta.dirname, '..', '..');
export const TRANSFORM_DOCKERFILE = 'containers/transform/Dockerfile';

/** Not part of the transform image's build context: keeps asset hashes stable and uploads small. */
export const TRANSFORM_CONTEXT_EXCLUDES = [
  'node_modules',
  'cdk.out',
  '.local-data',
  '.git',
  '.github',
  '.ci',
  'test',
  'bench',
  'docs',
  'reports',
  'coverage',
  'bin',
  'lib',
  'local',
  '*.log',
  '.DS_Store',
];

export interface TransformTaskProps extends DatasetDataLakeProps {
  readonly cpu: number;
  readonly memoryMiB: number;
  readonly logRetention: logs.RetentionDays;
}

/**
 * The Fargate task definition of one dataset's transform (ARM64, read-only root filesystem, no
 * writable volume: the Athena engine writes only to S3). The dataset definition travels in
 * DATASET_CONFIG. The task never receives the Socrata app token: only the fetcher reads it.
 *
 * The task role may touch this dataset only: its raw table and prefix, its curated tables
 * (`<table>`, marts `<table>__<mart>` and their build/swap tables) and curated/report prefixes,
 * plus what Athena itself checks on the caller's behalf (the default database, the results
 * location, the data key).
 */
export class TransformTask extends Construct {
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly container: ecs.ContainerDefinition;
  /** The task's JSON log lines (metric filters read them, e.g. MassDeleteRefused). */
  readonly logGroup: logs.LogGroup;
  /** Container name, for run-time overrides. */
  static readonly CONTAINER_NAME = 'transform';

  constructor(scope: Construct, id: string, props: TransformTaskProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention });
    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      cpu: props.cpu,
      memoryLimitMiB: props.memoryMiB,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.ARM64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    });
    this.container = this.addTransformContainer(props);
    // The task role's statements, in the order the policy lists them: the catalog, then each bucket.
    const role = this.taskDefinition.taskRole;
    this.grantAthenaAndCatalog(role, props);
    this.grantRawObjects(role, props);
    this.grantCuratedObjects(role, props);
    this.grantAthenaResults(role, props);
    this.grantBucketLocationsAndKey(role, props);
  }

  private addTransformContainer(props: TransformTaskProps): ecs.ContainerDefinition {
    return this.taskDefinition.addContainer('Transform', {
      containerName: TransformTask.CONTAINER_NAME,
      image: ecs.ContainerImage.fromAsset(REPO_ROOT, {
        file: TRANSFORM_DOCKERFILE,
        platform: ecrAssets.Platform.LINUX_ARM64,
        exclude: TRANSFORM_CONTEXT_EXCLUDES,
      }),
      readonlyRootFilesystem: true,
      logging: ecs.LogDrivers.awsLogs({
        streamPrefix: props.dataset.name,
        logGroup: this.logGroup,
      }),
      environment: {
        DATASET_CONFIG: JSON.stringify(props.dataset),
        ENGINE: 'athena',
        RAW_LOCATION: `s3://${props.rawBucket.bucketName}`,
        CURATED_LOCATION: `s3://${props.curatedBucket.bucketName}`,
        ATHENA_WORKGROUP: props.workgroup.ref,
        RAW_DATABASE: props.rawDatabase.databaseName,
        CURATED_DATABASE: props.curatedDatabase.databaseName,
      },
    });
  }

  private glueArn(resource: string, resourceName?: string): string {
    return Stack.of(this).formatArn({ service: 'glue', resource, ...(resourceName ? { resourceName } : {}) });
  }

  /** Queries in the workgroup, and the Glue tables they read and write: this dataset's only. */
  private grantAthenaAndCatalog(role: iam.IRole, props: TransformTaskProps): void {
    const table = tableName(props.dataset);
    const catalogArn = this.glueArn('catalog');
    const workgroupArn = Stack.of(this).formatArn({ service: 'athena', resource: 'workgroup', resourceName: props.workgroup.ref });
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'AthenaInWorkgroup',
        actions: ['athena:StartQueryExecution', 'athena:GetQueryExecution', 'athena:GetQueryResults', 'athena:StopQueryExecution', 'athena:GetWorkGroup'],
        resources: [workgroupArn],
      }),
    );
    // Athena looks up (and would create) the default database for every query, even one that
    // names other databases: the statement the Athena user guide marks as required.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'AthenaDefaultDatabase',
        actions: ['glue:GetDatabase', 'glue:GetDatabases', 'glue:CreateDatabase'],
        resources: [catalogArn, this.glueArn('database', 'default')],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadOwnRawTable',
        actions: ['glue:GetDatabase', 'glue:GetTable', 'glue:GetPartition', 'glue:GetPartitions', 'glue:BatchGetPartition'],
        resources: [catalogArn, this.glueArn('database', props.rawDatabase.databaseName), this.glueArn('table', `${props.rawDatabase.databaseName}/${table}`)],
      }),
    );
    // MERGE / CTAS / DROP / rename-swap / OPTIMIZE / VACUUM on this dataset's curated tables.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ManageOwnCuratedTables',
        actions: [
          'glue:GetDatabase',
          'glue:GetTable',
          'glue:CreateTable',
          'glue:UpdateTable',
          'glue:DeleteTable',
          'glue:GetPartition',
          'glue:GetPartitions',
          'glue:BatchGetPartition',
          'glue:BatchCreatePartition',
          'glue:BatchDeletePartition',
        ],
        resources: [
          catalogArn,
          this.glueArn('database', props.curatedDatabase.databaseName),
          this.glueArn('table', `${props.curatedDatabase.databaseName}/${table}`),
          this.glueArn('table', `${props.curatedDatabase.databaseName}/${table}__*`),
        ],
      }),
    );
    // information_schema.tables (does the curated table exist yet?) lists the database's tables.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ListCuratedTables',
        actions: ['glue:GetTables'],
        resources: [catalogArn, this.glueArn('database', props.curatedDatabase.databaseName), this.glueArn('table', `${props.curatedDatabase.databaseName}/*`)],
      }),
    );
  }

  /** Raw objects, the key scan's lists, the fetcher's run figures and quarantine: read (missing keys: written). */
  private grantRawObjects(role: iam.IRole, props: TransformTaskProps): void {
    const { dataset } = props;
    const raw = rawPrefix(dataset);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'ReadOwnRawObjects', actions: ['s3:GetObject'], resources: [props.rawBucket.arnForObjects(`${raw}*`)] }),
    );
    // The run's key scan (deletions; Athena reads it as the keyset table) and the missing keys
    // the transform lists for the fetcher's repair phase.
    const keysets = keysetPrefix(dataset);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadKeysetsWriteMissingKeys',
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [props.rawBucket.arnForObjects(`${keysets}*`)],
      }),
    );
    // The fetcher's per-invocation figures of the run, summed into the run summary and report.
    const fetchRuns = fetchRunsPrefix(dataset);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'ReadRunFetchStats', actions: ['s3:GetObject'], resources: [props.rawBucket.arnForObjects(`${fetchRuns}*`)] }),
    );
    // The fetcher's quarantine files: source keys missing from curated because it quarantined
    // their rows are reported, not failed on (read only).
    const quarantine = quarantinePrefix(dataset);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'ReadQuarantine', actions: ['s3:GetObject'], resources: [props.rawBucket.arnForObjects(`${quarantine}*`)] }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ListOwnRawPrefix',
        actions: ['s3:ListBucket'],
        resources: [props.rawBucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${raw}*`, `${keysets}*`, `${fetchRuns}*`, `${quarantine}*`] } },
      }),
    );
  }

  /** Curated tables' objects, the run summaries, the transform's state and the reports. */
  private grantCuratedObjects(role: iam.IRole, props: TransformTaskProps): void {
    const { dataset } = props;
    const curatedPrefixes = [curatedPrefix(dataset), runSummaryPrefix(dataset), transformStatePrefix(dataset), reportPrefix(dataset)];
    // Explicit actions instead of grantReadWrite(): no action wildcards on the task role.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadWriteOwnCuratedObjects',
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        resources: curatedPrefixes.map((p) => props.curatedBucket.arnForObjects(`${p}*`)),
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ListOwnCuratedPrefixes',
        actions: ['s3:ListBucket'],
        resources: [props.curatedBucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': curatedPrefixes.map((p) => `${p}*`) } },
      }),
    );
  }

  /** The workgroup's query results. */
  private grantAthenaResults(role: iam.IRole, props: TransformTaskProps): void {
    const resultsPrefix = ATHENA_RESULTS_PREFIX;
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'AthenaResultsObjects',
        actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'],
        resources: [props.resultsBucket.arnForObjects(`${resultsPrefix}*`)],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'AthenaResultsBucket',
        actions: ['s3:ListBucket'],
        resources: [props.resultsBucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${resultsPrefix}*`] } },
      }),
    );
  }

  private grantBucketLocationsAndKey(role: iam.IRole, props: TransformTaskProps): void {
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'BucketLocations',
        actions: ['s3:GetBucketLocation', 's3:ListBucketMultipartUploads'],
        resources: [props.rawBucket.bucketArn, props.curatedBucket.bucketArn, props.resultsBucket.bucketArn],
      }),
    );
    if (props.key) {
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'UseDataKey',
          // SSE-KMS objects and results: decrypt to read, a data key to write.
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [props.key.keyArn],
        }),
      );
    }
  }
}
