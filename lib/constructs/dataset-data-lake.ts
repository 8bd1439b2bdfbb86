import type * as athena from 'aws-cdk-lib/aws-athena';
import type * as glue from 'aws-cdk-lib/aws-glue';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { DatasetConfig } from '../../runtime/dataset-config';

/** One dataset and the shared data lake its constructs read and write (storage and shared stacks). */
export interface DatasetDataLakeProps {
  readonly dataset: DatasetConfig;
  readonly rawBucket: s3.IBucket;
  readonly curatedBucket: s3.IBucket;
  readonly resultsBucket: s3.IBucket;
  /** The data key; undefined with AWS-managed encryption (SSE-S3, nothing to grant). */
  readonly key: kms.IKey | undefined;
  readonly rawDatabase: glue.IDatabase;
  readonly curatedDatabase: glue.IDatabase;
  readonly workgroup: athena.CfnWorkGroup;
}
