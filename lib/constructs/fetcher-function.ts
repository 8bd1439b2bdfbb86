import path from 'node:path';
import { Aws, Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kinesisfirehose from 'aws-cdk-lib/aws-kinesisfirehose';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { isSocrata, sourceLabel, type DatasetConfig } from '../../runtime/dataset-config';
import { parseS3Url, type S3Location } from '../../runtime/s3-location';
import { checkpointKey, DIRECT_OBJECT_PREFIX, fetchRunsPrefix, keysetPrefix, LARGE_ROW_OBJECT_PREFIX, quarantinePrefix, RAW_PARTITION_KEY, rangeProgressKey, rawPrefix } from '../../runtime/storage-layout';
import { fetcherEnvironment } from '../../runtime/fetcher-environment';
import { houseFunction } from './function-role';

const REPO_ROOT = path.join(import.meta.dirname, '..', '..');
export const FETCHER_ENTRY = path.join(REPO_ROOT, 'lambdas', 'fetcher', 'handler.ts');

export interface FetcherFunctionProps {
  readonly dataset: DatasetConfig;
  /** Fixed, so the shared dashboard can graph the function by name. */
  readonly functionName: string;
  readonly deliveryStream: kinesisfirehose.IDeliveryStream;
  /** Holds the checkpoint and the quarantine files. */
  readonly rawBucket: s3.IBucket;
  /** The data key (checkpoints, quarantine); undefined with SSE-S3. */
  readonly key: kms.IKey | undefined;
  /** e.g. `dev`; goes into the Powertools namespace. */
  readonly environmentName: string;
  readonly memoryMiB: number;
  readonly timeoutSeconds: number;
  readonly logRetention: logs.RetentionDays;
}

/**
 * The source → Firehose fetcher of one dataset: Node.js 22 on ARM64, bundled locally by esbuild.
 * It may write only its own checkpoint and quarantine prefix, put only to its own stream and read
 * only its own app-token secret (Socrata) or its own source prefix (S3).
 */
export class FetcherFunction extends Construct {
  readonly function: nodejs.NodejsFunction;
  /** The S3 source it may list and read (its GetObject grant is a wildcard under this prefix); undefined for other sources. */
  readonly sourcePrefix: S3Location | undefined;

  constructor(scope: Construct, id: string, props: FetcherFunctionProps) {
    super(scope, id);
    const { dataset } = props;
    this.function = houseFunction(this, `Fetcher of ${dataset.name}`, props.logRetention, {
      functionName: props.functionName,
      description: `Fetches ${sourceLabel(dataset.source)} (${dataset.name}) into Firehose`.slice(0, 256),
      entry: FETCHER_ENTRY,
      memorySize: props.memoryMiB,
      timeout: Duration.seconds(props.timeoutSeconds),
      environment: fetcherEnvironment({
        dataset,
        deliveryStreamName: props.deliveryStream.deliveryStreamName,
        stateLocation: `s3://${props.rawBucket.bucketName}`,
        metricsNamespace: `SocrataPipeline/${props.environmentName}`,
      }),
    });

    props.deliveryStream.grantPutRecords(this.function);

    const bucket = props.rawBucket;
    const checkpoint = checkpointKey(dataset);
    // A parallel backfill's ranges and their progress, beside the checkpoint (range-progress.ts).
    const ranges = rangeProgressKey(dataset);
    const quarantine = quarantinePrefix(dataset);
    // keysets/<dataset>/: the key scan's lists (phase "keys") and the missing keys it repairs (phase "repair").
    const keysets = keysetPrefix(dataset);
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'CheckpointAndQuarantineObjects',
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [bucket.arnForObjects(checkpoint), bucket.arnForObjects(ranges), bucket.arnForObjects(`${quarantine}*`), bucket.arnForObjects(`${keysets}*`)],
      }),
    );
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ListOwnStateOnly',
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        // Without it a missing object (no checkpoint, no scan yet) reads as 403 instead of 404.
        conditions: { StringLike: { 's3:prefix': [checkpoint, ranges, `${quarantine}*`, `${keysets}*`] } },
      }),
    );
    // raw/<dataset>/<partition>/large-row-*: rows too large for a Firehose record, written whole;
    // direct-*: a parallel backfill's rows (direct-delivery.ts). Only those names: Firehose's own
    // objects stay out of the fetcher's reach.
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnRawObjects',
        actions: ['s3:PutObject'],
        resources: [
          bucket.arnForObjects(`${rawPrefix(dataset)}${RAW_PARTITION_KEY}=*/${LARGE_ROW_OBJECT_PREFIX}*`),
          bucket.arnForObjects(`${rawPrefix(dataset)}${RAW_PARTITION_KEY}=*/${DIRECT_OBJECT_PREFIX}*`),
        ],
      }),
    );
    // runs/<dataset>/: each invocation's figures for the run report; written, never read back.
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'WriteRunFetchStats',
        actions: ['s3:PutObject'],
        resources: [bucket.arnForObjects(`${fetchRunsPrefix(dataset)}*`)],
      }),
    );
    if (props.key) {
      this.function.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'UseDataKey',
          // SSE-KMS: GetObject decrypts, PutObject generates a data key; nothing calls Encrypt.
          // S3 is the only caller: Firehose encrypts the stream with its own grant on the key, and
          // the app-token secret is under Secrets Manager's AWS-managed key.
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [props.key.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` } },
        }),
      );
    }

    const { source } = dataset;
    this.sourcePrefix = source.type === 's3' ? parseS3Url(source.url) : undefined;
    if (this.sourcePrefix) this.grantSourcePrefix(this.sourcePrefix);
    else if (isSocrata(source) && source.appTokenSecretName) {
      const secret = secretsmanager.Secret.fromSecretNameV2(this, 'AppToken', source.appTokenSecretName);
      secret.grantRead(this.function);
    }
  }

  /** An S3 source: list the declared prefix and read the objects under it, nothing else of the bucket (or the whole declared bucket). */
  private grantSourcePrefix({ bucket, prefix }: S3Location): void {
    const bucketArn = `arn:${Aws.PARTITION}:s3:::${bucket}`;
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ListSourcePrefix',
        actions: ['s3:ListBucket'],
        resources: [bucketArn],
        // A whole-bucket source (s3://bucket) lists without a prefix, and a request without one has
        // no s3:prefix for a condition to match: the declared bucket is then the whole grant.
        ...(prefix ? { conditions: { StringLike: { 's3:prefix': [`${prefix}*`] } } } : {}),
      }),
    );
    this.function.addToRolePolicy(new iam.PolicyStatement({ sid: 'ReadSourceObjects', actions: ['s3:GetObject'], resources: [`${bucketArn}/${prefix}*`] }));
  }
}
