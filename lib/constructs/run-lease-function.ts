import path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { type DatasetConfig } from '../../runtime/dataset-config';
import { leaseKey } from '../../runtime/storage-layout';
import { houseFunction } from './function-role';

const REPO_ROOT = path.join(import.meta.dirname, '..', '..');
export const RUN_LEASE_ENTRY = path.join(REPO_ROOT, 'lambdas', 'run-lease', 'handler.ts');

export interface RunLeaseFunctionProps {
  readonly dataset: DatasetConfig;
  /** Holds `leases/<dataset>.json`. */
  readonly rawBucket: s3.IBucket;
  /** The data key (the lease object); undefined with SSE-S3. */
  readonly key: kms.IKey | undefined;
  readonly environmentName: string;
  /** How long a lease blocks other runs; at least the state machine timeout. */
  readonly leaseDuration: Duration;
  readonly logRetention: logs.RetentionDays;
}

/**
 * Acquires and releases the dataset's run lease (lambdas/run-lease) with conditional writes to
 * one object. Its role may read and write that one object only, and never delete.
 */
export class RunLeaseFunction extends Construct {
  readonly function: nodejs.NodejsFunction;

  constructor(scope: Construct, id: string, props: RunLeaseFunctionProps) {
    super(scope, id);
    const { dataset } = props;
    this.function = houseFunction(this, `Run lease of ${dataset.name}`, props.logRetention, {
      description: `Run lease of ${dataset.name}: one ingestion run at a time`,
      entry: RUN_LEASE_ENTRY,
      memorySize: 256,
      timeout: Duration.seconds(30),
      environment: {
        DATASET_NAME: dataset.name,
        STATE_LOCATION: `s3://${props.rawBucket.bucketName}`,
        LEASE_SECONDS: String(props.leaseDuration.toSeconds()),
        POWERTOOLS_SERVICE_NAME: `run-lease-${dataset.name}`,
        POWERTOOLS_METRICS_NAMESPACE: `SocrataPipeline/${props.environmentName}`,
        POWERTOOLS_LOG_LEVEL: 'INFO',
      },
    });

    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'LeaseObjectOnly',
        // Conditional PUTs (If-None-Match / If-Match) need only s3:PutObject; no delete, no list.
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [props.rawBucket.arnForObjects(leaseKey(dataset))],
      }),
    );
    if (props.key) {
      this.function.addToRolePolicy(
        new iam.PolicyStatement({ sid: 'UseDataKey', actions: ['kms:Decrypt', 'kms:GenerateDataKey'], resources: [props.key.keyArn] }),
      );
    }
  }
}
