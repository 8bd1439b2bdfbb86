import { Stack, type StackProps } from 'aws-cdk-lib';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { type DatasetConfig } from '../../runtime/dataset-config';
import type { EnvironmentConfig } from '../config/environment-config';
import { DatasetPipeline } from '../constructs/dataset-pipeline';
import { PipelineMonitoring } from '../constructs/pipeline-monitoring';
import { TransformNetwork } from '../constructs/transform-network';
import type { StorageStack } from './storage-stack';

export interface PipelineStackProps extends StackProps {
  readonly config: EnvironmentConfig;
  /** One pipeline per dataset definition. */
  readonly datasets: readonly DatasetConfig[];
  readonly storage: StorageStack;
}

/** Stateless side: shared network and monitoring, then one `DatasetPipeline` per dataset file. */
export class PipelineStack extends Stack {
  readonly network: TransformNetwork;
  readonly monitoring: PipelineMonitoring;
  readonly pipelines: DatasetPipeline[];

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id, props);
    const { config, storage } = props;
    const logRetention = config.logRetentionDays as logs.RetentionDays;
    this.network = new TransformNetwork(this, 'Network', { logRetention });
    this.monitoring = new PipelineMonitoring(this, 'Monitoring', {
      namePrefix: id,
      ...(config.alarmEmail ? { alarmEmail: config.alarmEmail } : {}),
      freshnessAlarmSeconds: config.orchestration.freshnessAlarmSeconds,
    });
    this.pipelines = props.datasets.map(
      (dataset) =>
        new DatasetPipeline(this, `Dataset-${dataset.name}`, {
          dataset,
          config,
          rawBucket: storage.buckets.raw,
          curatedBucket: storage.buckets.curated,
          resultsBucket: storage.buckets.athenaResults,
          key: storage.buckets.key,
          rawDatabase: storage.catalog.rawDatabase,
          curatedDatabase: storage.catalog.curatedDatabase,
          workgroup: storage.catalog.workgroup,
          network: this.network,
          monitoring: this.monitoring,
          logRetention,
        }),
    );
  }
}
