import { Stack, type StackProps } from 'aws-cdk-lib';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { EnvironmentConfig } from '../config/environment-config';
import { PipelineMonitoring, type DatasetDashboardRow } from '../constructs/pipeline-monitoring';
import { TransformNetwork } from '../constructs/transform-network';

export interface SharedStackProps extends StackProps {
  readonly config: EnvironmentConfig;
  /** One dashboard row per dataset, by the names of its resources (no reference into its stack). */
  readonly datasets: readonly DatasetDashboardRow[];
}

/**
 * Stateless and shared by every dataset stack of the environment: the transform network (one VPC:
 * five per region is the default quota) and cluster, the notification topic, the dashboard.
 * Nothing in it depends on a dataset stack, so a dataset's change never touches it; adding or
 * removing a dataset changes its dashboard only.
 */
export class SharedStack extends Stack {
  readonly network: TransformNetwork;
  readonly monitoring: PipelineMonitoring;

  constructor(scope: Construct, id: string, props: SharedStackProps) {
    super(scope, id, props);
    const { config } = props;
    const logRetention = config.logRetentionDays as logs.RetentionDays;
    this.network = new TransformNetwork(this, 'Network', { logRetention });
    this.monitoring = new PipelineMonitoring(this, 'Monitoring', {
      namePrefix: `SocrataPipeline-${config.name}`,
      ...(config.alarmEmail ? { alarmEmail: config.alarmEmail } : {}),
      customerManagedKey: config.encryption === 'customer-managed',
      dashboard: config.dashboard,
    });
    for (const row of props.datasets) this.monitoring.addDashboardRow(row);
  }
}
