import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { createHash } from 'node:crypto';
import { Construct } from 'constructs';
import type { EnvironmentConfig } from '../config/environment-config';
import type { DatasetDataLakeProps } from './dataset-data-lake';
import { FetcherFunction } from './fetcher-function';
import { IngestionSchedule } from './ingestion-schedule';
import { IngestionStateMachine } from './ingestion-state-machine';
import { ALARM_PERIOD, DatasetAlarms, type DatasetDashboardRow } from './pipeline-monitoring';
import { RawDeliveryStream } from './raw-delivery-stream';
import { RawTable } from './raw-table';
import { RunLeaseFunction } from './run-lease-function';
import type { TransformNetwork } from './transform-network';
import { TransformTask } from './transform-task';

/** `base` if it fits in `max` characters, else cut with a hash of the whole, so names stay distinct. */
function bounded(base: string, max: number): string {
  if (base.length <= max) return base;
  const hash = createHash('sha256').update(base).digest('hex').slice(0, 8);
  return `${base.slice(0, max - hash.length - 1).replace(/-+$/, '')}-${hash}`;
}

/**
 * Physical names of a dataset's resources that the shared dashboard graphs: fixed by environment
 * and dataset, so the shared stack can name them without referring into the dataset's stack.
 * Lambda and Firehose names are at most 64 characters; state machine names 80.
 */
export function datasetResourceNames(environmentName: string, datasetName: string): Omit<DatasetDashboardRow, 'metricsNamespace'> {
  return {
    name: datasetName,
    stateMachineName: `socrata-${environmentName}-${datasetName}`,
    fetcherFunctionName: bounded(`socrata-${environmentName}-${datasetName}-fetcher`, 64),
    deliveryStreamName: bounded(`socrata-${environmentName}-${datasetName}`, 64),
  };
}

/** The namespace of the pipeline's own metrics (SkippedRuns, UndeclaredColumns, MassDeleteRefused). */
export const metricsNamespace = (environmentName: string): string => `SocrataPipeline/${environmentName}`;

/** A dataset's row on the shared dashboard. */
export const dashboardRow = (environmentName: string, datasetName: string): DatasetDashboardRow => ({
  ...datasetResourceNames(environmentName, datasetName),
  metricsNamespace: metricsNamespace(environmentName),
});

/** A run lease outlives the state machine timeout by this much. */
export const RUN_LEASE_MARGIN_MINUTES = 10;

export interface DatasetPipelineProps extends DatasetDataLakeProps {
  readonly config: EnvironmentConfig;
  readonly network: TransformNetwork;
  /** Alarms and run notifications go here. */
  readonly topic: sns.ITopic;
  readonly logRetention: logs.RetentionDays;
}

/** Everything one dataset file adds: stream, fetcher, raw table + crawler, transform, run, schedule, alarms. */
export class DatasetPipeline extends Construct {
  readonly delivery: RawDeliveryStream;
  readonly fetcher: FetcherFunction;
  readonly rawTable: RawTable;
  readonly transform: TransformTask;
  readonly runLease: RunLeaseFunction;
  readonly run: IngestionStateMachine;
  readonly schedule: IngestionSchedule;
  readonly alarms: DatasetAlarms;

  constructor(scope: Construct, id: string, props: DatasetPipelineProps) {
    super(scope, id);
    const { dataset, config } = props;
    const names = datasetResourceNames(config.name, dataset.name);

    this.delivery = new RawDeliveryStream(this, 'Delivery', {
      dataset,
      deliveryStreamName: names.deliveryStreamName,
      rawBucket: props.rawBucket,
      key: props.key,
      logRetention: props.logRetention,
    });
    this.fetcher = new FetcherFunction(this, 'Fetcher', {
      dataset,
      functionName: names.fetcherFunctionName,
      deliveryStream: this.delivery.deliveryStream,
      rawBucket: props.rawBucket,
      key: props.key,
      environmentName: config.name,
      memoryMiB: config.fetcher.memoryMiB,
      timeoutSeconds: config.fetcher.timeoutSeconds,
      logRetention: props.logRetention,
    });
    this.rawTable = new RawTable(this, 'RawTable', {
      dataset,
      rawBucket: props.rawBucket,
      key: props.key,
      databaseName: props.rawDatabase.databaseName,
    });
    this.transform = new TransformTask(this, 'Transform', {
      dataset,
      rawBucket: props.rawBucket,
      curatedBucket: props.curatedBucket,
      resultsBucket: props.resultsBucket,
      key: props.key,
      rawDatabase: props.rawDatabase,
      curatedDatabase: props.curatedDatabase,
      workgroup: props.workgroup,
      cpu: config.transform.cpu,
      memoryMiB: config.transform.memoryMiB,
      logRetention: props.logRetention,
    });
    const runTimeout = Duration.minutes(config.orchestration.runTimeoutMinutes);
    this.runLease = new RunLeaseFunction(this, 'RunLease', {
      dataset,
      rawBucket: props.rawBucket,
      key: props.key,
      environmentName: config.name,
      // A run killed by the timeout never reaches its release step: its lease must outlive it.
      leaseDuration: runTimeout.plus(Duration.minutes(RUN_LEASE_MARGIN_MINUTES)),
      logRetention: props.logRetention,
    });
    this.run = new IngestionStateMachine(this, 'Run', {
      dataset,
      stateMachineName: names.stateMachineName,
      fetcher: this.fetcher.function,
      runLease: this.runLease.function,
      crawlerName: this.rawTable.crawlerName,
      cluster: props.network.cluster,
      taskDefinition: this.transform.taskDefinition,
      container: this.transform.container,
      securityGroup: props.network.securityGroup,
      topic: props.topic,
      curatedBucketName: props.curatedBucket.bucketName,
      timeout: runTimeout,
      logRetention: props.logRetention,
      logRemovalPolicy: config.removalPolicy === 'retain' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    this.schedule = new IngestionSchedule(this, 'Schedule', {
      dataset,
      stateMachine: this.run.stateMachine,
      enabled: config.scheduleEnabled,
    });
    // The transform's exit-4 log line (containers/transform/src/main.ts) as a metric, for the
    // record: the alarm sees a refused mass delete as the failed run it ends in.
    const massDeleteNamespace = metricsNamespace(config.name);
    this.transform.logGroup.addMetricFilter('MassDeleteRefused', {
      filterPattern: logs.FilterPattern.stringValue('$.error', '=', 'MassDeleteRefusedError'),
      metricNamespace: massDeleteNamespace,
      metricName: 'MassDeleteRefused',
      dimensions: { Dataset: '$.dataset' },
      metricValue: '1',
    });
    this.alarms = new DatasetAlarms(this, 'Alarms', {
      topic: props.topic,
      freshnessAlarmSeconds: config.orchestration.freshnessAlarmSeconds,
      name: dataset.name,
      fetcher: this.fetcher.function,
      deliveryStream: this.delivery.deliveryStream,
      stateMachine: this.run.stateMachine,
      // Powertools Metrics adds the `service` dimension to every metric it publishes.
      skippedRuns: new cloudwatch.Metric({
        namespace: metricsNamespace(config.name),
        metricName: 'SkippedRuns',
        dimensionsMap: { service: `run-lease-${dataset.name}`, Dataset: dataset.name },
        statistic: 'Sum',
        period: ALARM_PERIOD,
      }),
      undeclaredColumns: new cloudwatch.Metric({
        namespace: metricsNamespace(config.name),
        metricName: 'UndeclaredColumns',
        dimensionsMap: { service: `fetcher-${dataset.name}`, Dataset: dataset.name },
        statistic: 'Maximum',
        period: ALARM_PERIOD,
      }),
    });
  }
}
