import { Duration, Size } from 'aws-cdk-lib';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { type DatasetConfig } from '../../runtime/dataset-config';
import { firehoseDataPrefix, firehoseErrorPrefix } from '../../runtime/storage-layout';

export interface RawDeliveryStreamProps {
  readonly dataset: DatasetConfig;
  readonly rawBucket: s3.IBucket;
  readonly key: kms.IKey;
  readonly logRetention: logs.RetentionDays;
}

/**
 * Direct-PUT Firehose stream of one dataset into `raw/<dataset>/ingest_date=YYYY-MM-DD/`,
 * GZIP-compressed and KMS-encrypted at rest in the stream and in S3, with delivery errors logged.
 */
export class RawDeliveryStream extends Construct {
  readonly deliveryStream: firehose.DeliveryStream;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: RawDeliveryStreamProps) {
    super(scope, id);
    const { dataset } = props;
    this.logGroup = new logs.LogGroup(this, 'DeliveryLogs', { retention: props.logRetention });
    this.deliveryStream = new firehose.DeliveryStream(this, 'Stream', {
      encryption: firehose.StreamEncryption.customerManagedKey(props.key),
      destination: new firehose.S3Bucket(props.rawBucket, {
        dataOutputPrefix: firehoseDataPrefix(dataset),
        errorOutputPrefix: firehoseErrorPrefix(dataset),
        compression: firehose.Compression.GZIP,
        encryptionKey: props.key,
        bufferingInterval: Duration.seconds(dataset.delivery.bufferingIntervalSeconds),
        bufferingSize: Size.mebibytes(dataset.delivery.bufferingSizeMiB),
        loggingConfig: new firehose.EnableLogging(this.logGroup),
      }),
    });
  }
}
