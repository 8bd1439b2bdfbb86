import { Stack, type StackProps } from 'aws-cdk-lib';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { DatasetConfig } from '../../runtime/dataset-config';
import type { EnvironmentConfig } from '../config/environment-config';
import { DatasetPipeline } from '../constructs/dataset-pipeline';
import type { SharedStack } from './shared-stack';
import type { StorageStack } from './storage-stack';

export interface DatasetStackProps extends StackProps {
  readonly config: EnvironmentConfig;
  readonly dataset: DatasetConfig;
  readonly storage: StorageStack;
  readonly shared: SharedStack;
}

/**
 * Everything one dataset file adds, in a stack of its own (`SocrataPipeline-<env>-Dataset-<name>`,
 * about 60 resources): a dataset's change deploys this stack only, and the number of datasets is
 * bounded by the account's stack quota rather than by CloudFormation's 500 resources per stack.
 * It reads the storage and shared stacks through CloudFormation exports (Fn::ImportValue).
 */
export class DatasetStack extends Stack {
  readonly pipeline: DatasetPipeline;

  constructor(scope: Construct, id: string, props: DatasetStackProps) {
    super(scope, id, props);
    const { config, dataset, storage, shared } = props;
    this.pipeline = new DatasetPipeline(this, 'Dataset', {
      dataset,
      config,
      rawBucket: storage.buckets.raw,
      curatedBucket: storage.buckets.curated,
      resultsBucket: storage.buckets.athenaResults,
      key: storage.buckets.key,
      rawDatabase: storage.catalog.rawDatabase,
      curatedDatabase: storage.catalog.curatedDatabase,
      workgroup: storage.catalog.workgroup,
      network: shared.network,
      topic: shared.monitoring.topic,
      logRetention: config.logRetentionDays as logs.RetentionDays,
    });
  }
}
