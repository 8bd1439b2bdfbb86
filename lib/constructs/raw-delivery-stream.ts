import { Stack } from 'aws-cdk-lib';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { type DatasetConfig } from '../../runtime/dataset-config';
import { firehoseDataPrefix, firehoseErrorPrefix, rawPrefix } from '../../runtime/storage-layout';

export interface RawDeliveryStreamProps {
  readonly dataset: DatasetConfig;
  /** Fixed, so the shared dashboard can graph the stream by name. */
  readonly deliveryStreamName: string;
  readonly rawBucket: s3.IBucket;
  /** Encrypts the stream and its objects; undefined: the AWS-owned key and the bucket’s SSE-S3. */
  readonly key: kms.IKey | undefined;
  readonly logRetention: logs.RetentionDays;
}

/** The literal (expression-free) start of a Firehose prefix: `errors/<dataset>/` of `errors/<dataset>/!{...}/`. */
const literalPart = (prefix: string): string => prefix.slice(0, prefix.indexOf('!{') < 0 ? undefined : prefix.indexOf('!{'));

/**
 * Direct-PUT Firehose stream of one dataset into `raw/<dataset>/ingest_date=YYYY-MM-DD/`,
 * GZIP-compressed and KMS-encrypted at rest in the stream and in S3, with delivery errors logged.
 *
 * Built from the L1 resource with its own delivery role: the DeliveryStream L2 always grants
 * its role read/write/delete on the whole bucket (checkpoints, leases and other datasets
 * included). This role may only write this dataset's raw/ and errors/ prefixes, never delete.
 */
export class RawDeliveryStream extends Construct {
  readonly deliveryStream: firehose.IDeliveryStream;
  readonly logGroup: logs.LogGroup;
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: RawDeliveryStreamProps) {
    super(scope, id);
    const { dataset } = props;
    const stack = Stack.of(this);
    this.logGroup = new logs.LogGroup(this, 'DeliveryLogs', { retention: props.logRetention });
    const logStream = new logs.LogStream(this, 'S3DeliveryLogStream', { logGroup: this.logGroup });

    const prefixes = [rawPrefix(dataset), literalPart(firehoseErrorPrefix(dataset))];
    this.role = new iam.Role(this, 'DeliveryRole', {
      assumedBy: new iam.ServicePrincipal('firehose.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      description: `Firehose delivery of ${dataset.name} into its raw/ and errors/ prefixes`,
    });
    // The S3-destination permissions Firehose documents, each on the narrowest resource.
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnPrefixes',
        actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:GetObject'],
        resources: prefixes.map((p) => props.rawBucket.arnForObjects(`${p}*`)),
      }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'BucketOfOwnPrefixes',
        actions: ['s3:GetBucketLocation', 's3:ListBucketMultipartUploads'],
        resources: [props.rawBucket.bucketArn],
      }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ListOwnPrefixes',
        actions: ['s3:ListBucket'],
        resources: [props.rawBucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': prefixes.map((p) => `${p}*`) } },
      }),
    );
    if (props.key) {
      this.role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'EncryptObjectsViaS3',
          actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
          resources: [props.key.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` } },
        }),
      );
    }
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DeliveryErrorLogs',
        actions: ['logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    // Stream-side encryption with the customer-managed key: Firehose creates a KMS grant with
    // the deploying principal's permissions (CreateDeliveryStream), so the role needs no key use.
    // Without one, the AWS-owned key (free, no grants), and objects take the bucket's SSE-S3.
    const stream = new firehose.CfnDeliveryStream(this, 'Stream', {
      deliveryStreamName: props.deliveryStreamName,
      deliveryStreamType: 'DirectPut',
      deliveryStreamEncryptionConfigurationInput: props.key ? { keyType: 'CUSTOMER_MANAGED_CMK', keyArn: props.key.keyArn } : { keyType: 'AWS_OWNED_CMK' },
      extendedS3DestinationConfiguration: {
        bucketArn: props.rawBucket.bucketArn,
        roleArn: this.role.roleArn,
        prefix: firehoseDataPrefix(dataset),
        errorOutputPrefix: firehoseErrorPrefix(dataset),
        compressionFormat: 'GZIP',
        bufferingHints: { intervalInSeconds: dataset.delivery.bufferingIntervalSeconds, sizeInMBs: dataset.delivery.bufferingSizeMiB },
        encryptionConfiguration: props.key ? { kmsEncryptionConfig: { awskmsKeyArn: props.key.keyArn } } : { noEncryptionConfig: 'NoEncryption' },
        cloudWatchLoggingOptions: { enabled: true, logGroupName: this.logGroup.logGroupName, logStreamName: logStream.logStreamName },
      },
    });
    // The role's policy must exist before Firehose validates access at creation.
    stream.node.addDependency(this.role);
    this.deliveryStream = firehose.DeliveryStream.fromDeliveryStreamAttributes(this, 'Imported', {
      deliveryStreamName: stream.ref,
      deliveryStreamArn: stream.attrArn,
    });
  }
}
