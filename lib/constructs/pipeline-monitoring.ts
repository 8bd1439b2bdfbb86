import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

export interface PipelineMonitoringProps {
  /** e.g. `SocrataPipeline-dev`: names the dashboard and the topic. */
  readonly namePrefix: string;
  /** Receives alarms and run notifications; unset: subscribe later by hand. */
  readonly alarmEmail?: string;
  /**
   * Encrypt the topic with a customer-managed key of its own (1 USD a month). Without one the
   * topic is unencrypted: CloudWatch alarms cannot publish to a topic under the AWS-managed SNS
   * key, and the topic carries alarm states and run summaries, never data rows or secrets.
   */
  readonly customerManagedKey: boolean;
  /** Create the environment's dashboard (3 USD a month); without it `addDashboardRow` does nothing. */
  readonly dashboard: boolean;
}

/**
 * A dataset's row on the shared dashboard, by the PHYSICAL NAMES of its resources: the dashboard
 * lives in the shared stack, and a reference into a dataset stack would make the shared stack
 * depend on every dataset stack (and each dataset stack already depends on it, for the topic).
 */
export interface DatasetDashboardRow {
  readonly name: string;
  readonly metricsNamespace: string;
  readonly fetcherFunctionName: string;
  readonly deliveryStreamName: string;
  readonly stateMachineName: string;
}

/** The SNS topic every alarm and run notification goes to, and one dashboard with a row per dataset. */
export class PipelineMonitoring extends Construct {
  readonly topic: sns.Topic;
  readonly dashboard: cloudwatch.Dashboard | undefined;

  constructor(scope: Construct, id: string, props: PipelineMonitoringProps) {
    super(scope, id);
    // A customer-managed key: CloudWatch alarms cannot publish to a topic under the AWS-managed SNS key.
    const key = props.customerManagedKey ? new kms.Key(this, 'TopicKey', { description: 'Encrypts the pipeline notification topic', enableKeyRotation: true }) : undefined;
    key?.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    this.topic = new sns.Topic(this, 'Topic', { displayName: `${props.namePrefix} alarms and runs`, ...(key ? { masterKey: key } : {}), enforceSSL: true });
    if (props.alarmEmail) this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    this.dashboard = props.dashboard
      ? new cloudwatch.Dashboard(this, 'Dashboard', { dashboardName: props.namePrefix, defaultInterval: Duration.days(7) })
      : undefined;
  }

  addDashboardRow(d: DatasetDashboardRow): void {
    if (!this.dashboard) return;
    const hourly = { period: Duration.hours(1) };
    const stateMachineArn = Stack.of(this).formatArn({ service: 'states', resource: 'stateMachine', resourceName: d.stateMachineName, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const run = (metricName: string) => new cloudwatch.Metric({ namespace: 'AWS/States', metricName, dimensionsMap: { StateMachineArn: stateMachineArn }, statistic: 'Sum', ...hourly });
    const fetcher = (metricName: string, statistic: string) => new cloudwatch.Metric({ namespace: 'AWS/Lambda', metricName, dimensionsMap: { FunctionName: d.fetcherFunctionName }, statistic, ...hourly });
    const firehose = (metricName: string, statistic: string) => new cloudwatch.Metric({ namespace: 'AWS/Firehose', metricName, dimensionsMap: { DeliveryStreamName: d.deliveryStreamName }, statistic, ...hourly });
    const skippedRuns = new cloudwatch.Metric({ namespace: d.metricsNamespace, metricName: 'SkippedRuns', dimensionsMap: { service: `run-lease-${d.name}`, Dataset: d.name }, statistic: 'Sum', ...hourly });
    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({ markdown: `## ${d.name}`, width: 24, height: 1 }),
      new cloudwatch.GraphWidget({
        title: `${d.name}: runs`,
        left: [run('ExecutionsSucceeded'), run('ExecutionsFailed'), run('ExecutionsTimedOut'), skippedRuns],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: `${d.name}: fetcher`,
        left: [fetcher('Invocations', 'Sum'), fetcher('Errors', 'Sum')],
        right: [fetcher('Duration', 'Maximum')],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: `${d.name}: Firehose`,
        left: [firehose('IncomingRecords', 'Sum'), firehose('DeliveryToS3.Records', 'Sum')],
        right: [firehose('DeliveryToS3.DataFreshness', 'Maximum')],
        width: 8,
      }),
    );
  }
}

export interface DatasetAlarmsProps {
  readonly name: string;
  /** Where the alarm goes (the shared topic). */
  readonly topic: sns.ITopic;
  /** Firehose DataFreshness above this many seconds raises the alarm. */
  readonly freshnessAlarmSeconds: number;
  readonly fetcher: lambda.IFunction;
  readonly deliveryStream: firehose.IDeliveryStream;
  readonly stateMachine: sfn.IStateMachine;
  /** Runs that ended as SkippedOverlappingRun (published by the run-lease function). */
  readonly skippedRuns: cloudwatch.IMetric;
  /** Source columns the dataset does not declare, per fetcher invocation (schema drift). */
  readonly undeclaredColumns: cloudwatch.IMetric;
}

/** One failure mode of a dataset: a metric, the metric-math test that breaches, and what it means. */
export interface AlarmCondition {
  /** Metric-math id (lower-case start). */
  readonly id: string;
  readonly metric: cloudwatch.IMetric;
  /** The comparison that breaches, e.g. `>= 1`. */
  readonly breach: string;
  readonly meaning: string;
}

/** Every condition is evaluated over 5-minute periods (a math alarm's metrics share one period). */
export const ALARM_PERIOD = Duration.minutes(5);

/**
 * A dataset's alarm: ONE metric-math alarm that is in ALARM while any of its conditions breaches
 * (fetcher errors, Firehose delivery failure or stale delivery, failed, timed-out or skipped runs,
 * schema drift), in the dataset's own stack, to the shared topic.
 *
 * One alarm instead of one per condition: one notification to read and one resource per dataset
 * (the description lists what to check). CloudWatch bills an alarm per metric it references, so
 * this costs what seven single-metric alarms cost; a composite alarm would add 0.50 USD a month
 * on top of its children and was not used. A refused mass delete has no input of its own: it ends
 * the run failed (ExecutionsFailed), and the failure notice names it (docs/operations.md).
 */
export class DatasetAlarms extends Construct {
  readonly alarm: cloudwatch.Alarm;
  readonly conditions: readonly AlarmCondition[];

  constructor(scope: Construct, id: string, d: DatasetAlarmsProps) {
    super(scope, id);
    const every5 = { period: ALARM_PERIOD };
    this.conditions = [
      { id: 'fetcherErrors', metric: d.fetcher.metricErrors({ ...every5, statistic: 'Sum' }), breach: '>= 1', meaning: 'the fetcher Lambda failed (its log group; the run retries, then fails)' },
      { id: 'deliverySuccess', metric: d.deliveryStream.metric('DeliveryToS3.Success', { ...every5, statistic: 'Minimum' }), breach: '< 1', meaning: 'Firehose could not deliver to S3 (key, bucket policy or prefix; records go to errors/)' },
      { id: 'freshness', metric: d.deliveryStream.metric('DeliveryToS3.DataFreshness', { ...every5, statistic: 'Maximum' }), breach: `> ${d.freshnessAlarmSeconds}`, meaning: `records waited more than ${d.freshnessAlarmSeconds}s in Firehose` },
      { id: 'runsFailed', metric: d.stateMachine.metricFailed({ ...every5, statistic: 'Sum' }), breach: '>= 1', meaning: 'a run failed, a refused mass delete included (the failure notice names the error)' },
      { id: 'runsTimedOut', metric: d.stateMachine.metricTimedOut({ ...every5, statistic: 'Sum' }), breach: '>= 1', meaning: 'a run hit the state machine timeout' },
      { id: 'runsSkipped', metric: d.skippedRuns, breach: '>= 1', meaning: 'a run was skipped: the previous one still held the run lease' },
      { id: 'undeclaredColumns', metric: d.undeclaredColumns, breach: '>= 1', meaning: 'schema drift: the source serves columns the dataset does not declare (run summary schemaDrift; docs/operations.md, adding a column)' },
    ];
    const expression = `MAX([${this.conditions.map((c) => `IF(${c.id} ${c.breach}, 1, 0)`).join(', ')}])`;
    this.alarm = new cloudwatch.Alarm(this, 'Health', {
      metric: new cloudwatch.MathExpression({
        expression,
        usingMetrics: Object.fromEntries(this.conditions.map((c) => [c.id, c.metric])),
        period: ALARM_PERIOD,
        label: `${d.name}: failure conditions breaching`,
      }),
      alarmDescription: `${d.name}: one of these happened (graph the alarm's metrics to see which): ${this.conditions.map((c) => c.meaning).join('; ')}.`.slice(0, 1024),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.alarm.addAlarmAction(new actions.SnsAction(d.topic));
  }
}
