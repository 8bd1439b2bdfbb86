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
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: PipelineMonitoringProps) {
    super(scope, id);
    // A customer-managed key: CloudWatch alarms cannot publish to a topic under the AWS-managed SNS key.
    const key = new kms.Key(this, 'TopicKey', { description: 'Encrypts the pipeline notification topic', enableKeyRotation: true });
    key.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    this.topic = new sns.Topic(this, 'Topic', { displayName: `${props.namePrefix} alarms and runs`, masterKey: key, enforceSSL: true });
    if (props.alarmEmail) this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.namePrefix,
      defaultInterval: Duration.days(7),
    });
  }

  addDashboardRow(d: DatasetDashboardRow): void {
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
  /** Where every alarm goes (the shared topic). */
  readonly topic: sns.ITopic;
  /** Firehose DataFreshness above this many seconds raises an alarm. */
  readonly freshnessAlarmSeconds: number;
  readonly fetcher: lambda.IFunction;
  readonly deliveryStream: firehose.IDeliveryStream;
  readonly stateMachine: sfn.IStateMachine;
  /** Runs that ended as SkippedOverlappingRun (published by the run-lease function). */
  readonly skippedRuns: cloudwatch.IMetric;
  /** Source columns the dataset does not declare, per fetcher invocation (schema drift). */
  readonly undeclaredColumns?: cloudwatch.IMetric;
  /** Transforms that refused a mass delete (exit 4; a metric filter on the task's log group). */
  readonly massDeletesRefused?: cloudwatch.IMetric;
}

/**
 * A dataset's alarms (fetcher errors, Firehose delivery/freshness, failed, timed-out or skipped
 * runs, schema drift, refused mass deletes), in the dataset's own stack, all to the shared topic.
 */
export class DatasetAlarms extends Construct {
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, d: DatasetAlarmsProps) {
    super(scope, id);
    const action = new actions.SnsAction(d.topic);
    const alarm = (alarmId: string, metric: cloudwatch.IMetric, opts: Omit<cloudwatch.CreateAlarmOptions, 'evaluationPeriods'> & { evaluationPeriods?: number }): cloudwatch.Alarm => {
      const created = new cloudwatch.Alarm(this, alarmId, { metric, evaluationPeriods: 1, ...opts });
      created.addAlarmAction(action);
      this.alarms.push(created);
      return created;
    };

    const fetcherErrors = d.fetcher.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' });
    alarm('FetcherErrors', fetcherErrors, {
      alarmDescription: `${d.name}: the fetcher Lambda failed (see its log group; the run retries, then fails)`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    const deliverySuccess = d.deliveryStream.metric('DeliveryToS3.Success', { period: Duration.minutes(5), statistic: 'Minimum' });
    alarm('DeliveryToS3Failed', deliverySuccess, {
      alarmDescription: `${d.name}: Firehose could not deliver to S3 (key, bucket policy or prefix); records go to errors/`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    const freshness = d.deliveryStream.metric('DeliveryToS3.DataFreshness', { period: Duration.minutes(5), statistic: 'Maximum' });
    alarm('DeliveryFreshness', freshness, {
      alarmDescription: `${d.name}: records wait more than ${d.freshnessAlarmSeconds}s in Firehose before reaching S3`,
      threshold: d.freshnessAlarmSeconds,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    const failed = d.stateMachine.metricFailed({ period: Duration.minutes(5), statistic: 'Sum' });
    alarm('RunFailed', failed, {
      alarmDescription: `${d.name}: an ingestion run failed (open the execution in Step Functions)`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const timedOut = d.stateMachine.metricTimedOut({ period: Duration.minutes(5), statistic: 'Sum' });
    alarm('RunTimedOut', timedOut, {
      alarmDescription: `${d.name}: an ingestion run hit the state machine timeout`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    alarm('RunSkipped', d.skippedRuns, {
      alarmDescription: `${d.name}: a run was skipped because the previous one still held the run lease (a run longer than the schedule period, or a lease left by a killed run until it expires)`,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    if (d.undeclaredColumns) {
      alarm('SchemaDrift', d.undeclaredColumns, {
        alarmDescription: `${d.name}: the source serves columns the dataset does not declare; they are kept in raw but not loaded into curated. See the run summary's schemaDrift, then declare them (docs/operations.md, adding a column)`,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }

    if (d.massDeletesRefused) {
      alarm('MassDeleteRefused', d.massDeletesRefused, {
        alarmDescription: `${d.name}: a key scan would have deleted more than deletions.maxDeleteShare of curated; nothing was deleted. Check the source (outage, wrong URL, publisher mistake); if the rows are really gone, raise maxDeleteShare for one run`,
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }

  }
}
