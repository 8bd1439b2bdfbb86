import path from 'node:path';
import { Stack } from 'aws-cdk-lib';
import type * as athena from 'aws-cdk-lib/aws-athena';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as glue from 'aws-cdk-lib/aws-glue';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { type DatasetConfig } from '../../runtime/dataset-config';
import { rawPrefix } from '../../runtime/storage-layout';

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

export interface TransformTaskProps {
  readonly dataset: DatasetConfig;
  readonly rawBucket: s3.IBucket;
  readonly curatedBucket: s3.IBucket;
  readonly resultsBucket: s3.IBucket;
  readonly key: kms.IKey;
  readonly rawDatabase: glue.IDatabase;
  readonly curatedDatabase: glue.IDatabase;
  readonly workgroup: athena.CfnWorkGroup;
  readonly cpu: number;
  readonly memoryMiB: number;
  readonly logRetention: logs.RetentionDays;
}

/**
 * The Fargate task definition of one dataset's transform (ARM64, read-only root filesystem,
 * a scratch volume on /tmp). The dataset definition travels in DATASET_CONFIG; the app token,
 * when there is one, only as an ECS secret.
 */
export class TransformTask extends Construct {
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly container: ecs.ContainerDefinition;
  /** Container name, for run-time overrides. */
  static readonly CONTAINER_NAME = 'transform';

  constructor(scope: Construct, id: string, props: TransformTaskProps) {
    super(scope, id);
    const { dataset } = props;
    const stack = Stack.of(this);

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      cpu: props.cpu,
      memoryLimitMiB: props.memoryMiB,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.ARM64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
      volumes: [{ name: 'scratch' }],
    });

    const secrets: Record<string, ecs.Secret> = {};
    if (dataset.source.appTokenSecretName) {
      const secret = secretsmanager.Secret.fromSecretNameV2(this, 'AppToken', dataset.source.appTokenSecretName);
      secrets.APP_TOKEN = ecs.Secret.fromSecretsManager(secret);
    }

    this.container = this.taskDefinition.addContainer('Transform', {
      containerName: TransformTask.CONTAINER_NAME,
      image: ecs.ContainerImage.fromAsset(REPO_ROOT, {
        file: TRANSFORM_DOCKERFILE,
        platform: ecrAssets.Platform.LINUX_ARM64,
        exclude: TRANSFORM_CONTEXT_EXCLUDES,
      }),
      readonlyRootFilesystem: true,
      logging: ecs.LogDrivers.awsLogs({
        streamPrefix: dataset.name,
        logGroup: new logs.LogGroup(this, 'Logs', { retention: props.logRetention }),
      }),
      environment: {
        DATASET_CONFIG: JSON.stringify(dataset),
        ENGINE: 'athena',
        RAW_LOCATION: `s3://${props.rawBucket.bucketName}`,
        CURATED_LOCATION: `s3://${props.curatedBucket.bucketName}`,
        ATHENA_WORKGROUP: props.workgroup.ref,
        RAW_DATABASE: props.rawDatabase.databaseName,
        CURATED_DATABASE: props.curatedDatabase.databaseName,
      },
      secrets,
    });
    this.container.addMountPoints({ containerPath: '/tmp', sourceVolume: 'scratch', readOnly: false });

    const role = this.taskDefinition.taskRole;
    const workgroupArn = stack.formatArn({ service: 'athena', resource: 'workgroup', resourceName: props.workgroup.ref });
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'AthenaInWorkgroup',
        actions: [
          'athena:StartQueryExecution',
          'athena:GetQueryExecution',
          'athena:GetQueryResults',
          'athena:StopQueryExecution',
          'athena:GetWorkGroup',
        ],
        resources: [workgroupArn],
      }),
    );
    const catalogArn = stack.formatArn({ service: 'glue', resource: 'catalog' });
    const dbArn = (db: glue.IDatabase): string => stack.formatArn({ service: 'glue', resource: 'database', resourceName: db.databaseName });
    const tablesArn = (db: glue.IDatabase): string => stack.formatArn({ service: 'glue', resource: 'table', resourceName: `${db.databaseName}/*` });
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadRawCatalog',
        actions: ['glue:GetDatabase', 'glue:GetTable', 'glue:GetTables', 'glue:GetPartition', 'glue:GetPartitions'],
        resources: [catalogArn, dbArn(props.rawDatabase), tablesArn(props.rawDatabase)],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ManageCuratedTables',
        actions: [
          'glue:GetDatabase',
          'glue:GetTable',
          'glue:GetTables',
          'glue:CreateTable',
          'glue:UpdateTable',
          'glue:DeleteTable',
          'glue:GetPartition',
          'glue:GetPartitions',
          'glue:BatchCreatePartition',
          'glue:BatchDeletePartition',
        ],
        resources: [catalogArn, dbArn(props.curatedDatabase), tablesArn(props.curatedDatabase)],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadRawObjects',
        actions: ['s3:GetObject'],
        resources: [props.rawBucket.arnForObjects(`${rawPrefix(dataset)}*`)],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ListRawPrefix',
        actions: ['s3:ListBucket', 's3:GetBucketLocation'],
        resources: [props.rawBucket.bucketArn],
      }),
    );
    // Explicit actions instead of grantReadWrite(): no action wildcards on the task role.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadWriteCuratedAndResults',
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
        resources: [props.curatedBucket.arnForObjects('*'), props.resultsBucket.arnForObjects('*')],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ListCuratedAndResults',
        actions: ['s3:ListBucket', 's3:GetBucketLocation', 's3:ListBucketMultipartUploads'],
        resources: [props.curatedBucket.bucketArn, props.resultsBucket.bucketArn],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'UseDataKey',
        actions: ['kms:Decrypt', 'kms:GenerateDataKey', 'kms:Encrypt'],
        resources: [props.key.keyArn],
      }),
    );
  }
}
