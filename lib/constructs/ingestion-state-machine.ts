import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { type DatasetConfig } from '../../runtime/dataset-config';
import { historyKey, reportKey } from '../../runtime/storage-layout';

/** Extra wait after Firehose's buffering interval before the crawler and transform read raw/. */
export const FIREHOSE_FLUSH_MARGIN_SECONDS = 60;
/** Poll interval of the crawler state. */
export const CRAWLER_POLL_SECONDS = 30;
/** The run modes the fetcher accepts; any other `mode` fails the run before it fetches. */
export const RUN_MODES = ['incremental', 'full-refresh'] as const;
/**
 * Error names RunTask (.sync) fails with when Fargate cannot place the task now: the API's
 * exceptions, and `AmazonECS.Unknown`, the name Step Functions gives a non-empty `Failures`
 * answer (e.g. capacity). All are transient and retried; a task that ran and exited non-zero
 * is not an error of the state (the exit code is checked after it).
 */
export const RUN_TASK_TRANSIENT_ERRORS = [
  'ECS.AmazonECSException',
  'AmazonECS.Unknown',
  'ECS.ServerException',
  'ECS.ThrottlingException',
  'ECS.LimitExceededException',
];

/**
 * EcsRunTask with ecs:DescribeTasks / ecs:StopTask (what .sync polls and, on abort, stops)
 * scoped to tasks of its cluster; the construct grants them on `*`.
 */
class ScopedEcsRunTask extends tasks.EcsRunTask {
  constructor(scope: Construct, id: string, props: tasks.EcsRunTaskProps) {
    super(scope, id, props);
    const policies = this.taskPolicies as iam.PolicyStatement[] | undefined;
    const at = policies?.findIndex((p) => p.actions.includes('ecs:StopTask')) ?? -1;
    if (!policies || at < 0) throw new Error('EcsRunTask no longer grants ecs:StopTask as expected: revisit ScopedEcsRunTask');
    policies[at] = new iam.PolicyStatement({
      actions: ['ecs:StopTask', 'ecs:DescribeTasks'],
      resources: [Stack.of(this).formatArn({ service: 'ecs', resource: 'task', resourceName: `${props.cluster.clusterName}/*` })],
    });
  }
}

/**
 * Step Functions delivers execution logs as vended logs. Under `/aws/vendedlogs/` CloudWatch Logs
 * authorizes the delivery without adding the group to the account's log resource policy (5,120
 * characters per account and region, which every other group name would grow until state
 * machines fail to create): Step Functions docs, "Logging using CloudWatch Logs" / bp-cwl.
 */
export const stateMachineLogGroupName = (stateMachineName: string): string => `/aws/vendedlogs/states/${stateMachineName}`;

export interface IngestionStateMachineProps {
  readonly dataset: DatasetConfig;
  /** Physical name, so operators can start runs by a predictable ARN. */
  readonly stateMachineName: string;
  readonly fetcher: lambda.IFunction;
  /** Acquires / releases the dataset's run lease (lambdas/run-lease). */
  readonly runLease: lambda.IFunction;
  readonly crawlerName: string;
  readonly cluster: ecs.ICluster;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly container: ecs.ContainerDefinition;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly topic: sns.ITopic;
  /** Where the transform writes the run report and history page (named in the success notice). */
  readonly curatedBucketName: string;
  readonly timeout: Duration;
  readonly logRetention: logs.RetentionDays;
  /**
   * What happens to the execution log group when the stack goes. It has a fixed name, so a
   * retained group blocks re-creating the stack until it is deleted by hand.
   */
  readonly logRemovalPolicy: RemovalPolicy;
}

/**
 * One run of a dataset: input check → run lease (one run at a time) → fetch loop (cursor passed
 * back until `done`) → key-scan loop (the fetcher's "keys" phase) → wait for Firehose to flush →
 * crawler, only when the fetcher reported undeclared columns (polled until READY, last crawl
 * SUCCEEDED) → transform task (.sync, exit code checked;
 * exit 5 "repair needed": repair loop (the "repair" phase) → wait for the flush → transform
 * again, once; exit 4: MassDeleteRefused) → lease released → SNS success.
 * Every failure, bad input included, ends in the failure notification, a lease release and a
 * failed execution. A run that finds the lease held ends as `SkippedOverlappingRun`.
 */
export class IngestionStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: IngestionStateMachineProps) {
    super(scope, id);
    const { dataset } = props;
    const stack = Stack.of(this);
    const lambdaServiceErrors = ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'];

    const leaseCall = (id: string, action: 'acquire' | 'release', resultPath: string): tasks.LambdaInvoke => {
      const call = new tasks.LambdaInvoke(this, id, {
        lambdaFunction: props.runLease,
        payload: sfn.TaskInput.fromObject({ action, runId: sfn.JsonPath.executionName }),
        payloadResponseOnly: true,
        resultPath,
        retryOnServiceExceptions: false,
      });
      call.addRetry({ errors: [...lambdaServiceErrors, sfn.Errors.TASKS_FAILED], interval: Duration.seconds(2), maxAttempts: 4, backoffRate: 2 });
      return call;
    };

    const runFailed = new sfn.Fail(this, 'RunFailed', { error: 'IngestionRunFailed', cause: 'See the failure notification and the execution history' });
    // The failure path releases the lease too; release is a no-op for a run that does not hold it.
    const releaseAfterFailure = leaseCall('ReleaseLeaseAfterFailure', 'release', '$.leaseRelease');
    releaseAfterFailure.addCatch(runFailed, { errors: [sfn.Errors.ALL], resultPath: '$.leaseReleaseError' });
    releaseAfterFailure.next(runFailed);
    const notifyFailure = new tasks.SnsPublish(this, 'NotifyFailure', {
      topic: props.topic,
      subject: `Socrata pipeline ${dataset.name}: run FAILED`,
      message: sfn.TaskInput.fromObject({
        dataset: dataset.name,
        status: 'FAILED',
        execution: sfn.JsonPath.executionId,
        error: sfn.JsonPath.objectAt('$.error'),
        detail: sfn.JsonPath.jsonToString(sfn.JsonPath.objectAt('$')),
      }),
      resultPath: sfn.JsonPath.DISCARD,
    });
    notifyFailure.addRetry({ errors: [sfn.Errors.TASKS_FAILED], interval: Duration.seconds(5), maxAttempts: 2, backoffRate: 2 });
    notifyFailure.addCatch(releaseAfterFailure, { errors: [sfn.Errors.ALL], resultPath: '$.notifyError' });
    notifyFailure.next(releaseAfterFailure);
    const onError = { resultPath: '$.error', errors: [sfn.Errors.ALL] };
    /** A failure decided by a Choice: sets `$.error` like a caught error, then notifies. */
    const failWith = (id: string, error: string, cause: string): sfn.Pass => {
      const pass = new sfn.Pass(this, id, { result: sfn.Result.fromObject({ Error: error, Cause: cause }), resultPath: '$.error' });
      pass.next(notifyFailure);
      return pass;
    };

    // Input: {} or {"mode": "incremental" | "full-refresh"}. Both paths build { mode, cursor: null }
    // (CDK drops a null in Pass parameters, so the null comes from an intrinsic), so FetchPage
    // always finds $.cursor; any other mode fails the run, with a notice, before it takes the lease.
    const useRequestedMode = new sfn.Pass(this, 'UseRequestedMode', {
      parameters: { mode: sfn.JsonPath.stringAt('$.mode'), cursor: sfn.JsonPath.stringToJson('null') },
    });
    const useIncrementalMode = new sfn.Pass(this, 'UseIncrementalMode', {
      result: sfn.Result.fromObject({ mode: 'incremental', cursor: null }),
    });
    const rejectInput = failWith(
      'RejectInput',
      'InvalidInput',
      `Start a run with {} or {"mode": "incremental"} or {"mode": "full-refresh"}; "mode" must be one of ${RUN_MODES.join(', ')}`,
    );
    // A bare string, number, boolean or null (e.g. --input '"full-refresh"') is no run request
    // either; it replaces the state, since a path cannot be set inside a scalar.
    const rejectScalarInput = new sfn.Pass(this, 'RejectNonObjectInput', {
      result: sfn.Result.fromObject({
        error: { Error: 'InvalidInput', Cause: 'The input must be a JSON object: {} or {"mode": "incremental"} or {"mode": "full-refresh"}' },
      }),
    });
    rejectScalarInput.next(notifyFailure);
    const checkInput = new sfn.Choice(this, 'CheckInput')
      .when(
        sfn.Condition.or(sfn.Condition.isString('$'), sfn.Condition.isNumeric('$'), sfn.Condition.isBoolean('$'), sfn.Condition.isNull('$')),
        rejectScalarInput,
      )
      // not(isPresent) rather than isNotPresent: the same in Step Functions, and the form the
      // test interpreter (aws-local-stepfunctions 3.0.0, which mis-evaluates IsPresent: false) runs right.
      .when(sfn.Condition.not(sfn.Condition.isPresent('$.mode')), useIncrementalMode)
      .when(
        sfn.Condition.and(sfn.Condition.isString('$.mode'), sfn.Condition.or(...RUN_MODES.map((m) => sfn.Condition.stringEquals('$.mode', m)))),
        useRequestedMode,
      )
      .otherwise(rejectInput);

    const acquireLease = leaseCall('AcquireLease', 'acquire', '$.lease');
    acquireLease.addCatch(notifyFailure, onError);
    const skipped = new sfn.Succeed(this, 'SkippedOverlappingRun', {
      comment: 'Another run of this dataset holds the lease (see $.lease.holder); counted in the SkippedRuns metric',
    });

    const fetch = new tasks.LambdaInvoke(this, 'FetchPage', {
      lambdaFunction: props.fetcher,
      payload: sfn.TaskInput.fromObject({
        runId: sfn.JsonPath.executionName,
        mode: sfn.JsonPath.stringAt('$.mode'),
        cursor: sfn.JsonPath.objectAt('$.cursor'),
      }),
      resultSelector: {
        done: sfn.JsonPath.objectAt('$.Payload.done'),
        cursor: sfn.JsonPath.objectAt('$.Payload.cursor'),
        stats: sfn.JsonPath.objectAt('$.Payload.stats'),
      },
      resultPath: '$.fetch',
      retryOnServiceExceptions: true,
    });
    // A failed invocation is retried with the same cursor; the fetcher re-reads its checkpoint and
    // continues from whichever is further (rows re-sent are deduplicated downstream).
    fetch.addRetry({ errors: [sfn.Errors.TASKS_FAILED, sfn.Errors.TIMEOUT], interval: Duration.seconds(30), maxAttempts: 2, backoffRate: 2, jitterStrategy: sfn.JitterType.FULL });
    fetch.addCatch(notifyFailure, onError);

    // A fetcher phase looped on `done` like the row fetch: a Pass that starts it with a null
    // cursor at `path`, and the invocation that passes the cursor back, with the row fetch's retries.
    const phaseLoop = (startId: string, id: string, phase: 'keys' | 'repair', path: '$.keyScan' | '$.repair') => {
      const start = new sfn.Pass(this, startId, { parameters: { cursor: sfn.JsonPath.stringToJson('null') }, resultPath: path });
      const invoke = new tasks.LambdaInvoke(this, id, {
        lambdaFunction: props.fetcher,
        payload: sfn.TaskInput.fromObject({ runId: sfn.JsonPath.executionName, phase, cursor: sfn.JsonPath.objectAt(`${path}.cursor`) }),
        resultSelector: {
          done: sfn.JsonPath.objectAt('$.Payload.done'),
          cursor: sfn.JsonPath.objectAt('$.Payload.cursor'),
          stats: sfn.JsonPath.objectAt('$.Payload.stats'),
        },
        resultPath: path,
        retryOnServiceExceptions: true,
      });
      invoke.addRetry({ errors: [sfn.Errors.TASKS_FAILED, sfn.Errors.TIMEOUT], interval: Duration.seconds(30), maxAttempts: 2, backoffRate: 2, jitterStrategy: sfn.JitterType.FULL });
      invoke.addCatch(notifyFailure, onError);
      return [start, invoke] as const;
    };
    // The key scan (deletion detection): the fetcher's "keys" phase. A scan that is not due returns done at once.
    const [startKeyScan, scanKeys] = phaseLoop('StartKeyScan', 'ScanKeys', 'keys', '$.keyScan');
    // The repair (transform exit 5: curated lacks source keys): the fetcher's "repair" phase
    // fetches them by key, Firehose flushes, the transform runs once more. $.repaired bounds it.
    const [startRepair, repairRows] = phaseLoop('StartRepair', 'RepairRows', 'repair', '$.repair');
    const markRepaired = new sfn.Pass(this, 'MarkRepaired', { result: sfn.Result.fromBoolean(true), resultPath: '$.repaired' });
    const waitRepairFlush = new sfn.Wait(this, 'WaitForRepairFlush', {
      time: sfn.WaitTime.duration(Duration.seconds(dataset.delivery.bufferingIntervalSeconds + FIREHOSE_FLUSH_MARGIN_SECONDS)),
    });

    const nextPage = new sfn.Pass(this, 'NextPage', {
      parameters: { mode: sfn.JsonPath.stringAt('$.mode'), cursor: sfn.JsonPath.objectAt('$.fetch.cursor'), lastStats: sfn.JsonPath.objectAt('$.fetch.stats') },
    });

    const waitFlush = new sfn.Wait(this, 'WaitForFirehoseFlush', {
      time: sfn.WaitTime.duration(Duration.seconds(dataset.delivery.bufferingIntervalSeconds + FIREHOSE_FLUSH_MARGIN_SECONDS)),
    });

    const startCrawler = new tasks.GlueStartCrawlerRun(this, 'StartCrawler', {
      crawlerName: props.crawlerName,
      resultPath: sfn.JsonPath.DISCARD,
    });
    // Already running (a crawl started by hand, or by an earlier run): wait for it to end, then
    // start ours, so the crawl we wait for has seen this run's objects.
    startCrawler.addRetry({ errors: ['Glue.CrawlerRunningException'], interval: Duration.seconds(60), maxAttempts: 10, backoffRate: 1.5, maxDelay: Duration.minutes(10) });
    startCrawler.addRetry({ errors: ['Glue.ThrottlingException', 'Glue.OperationTimeoutException', 'Glue.InternalServiceException'], interval: Duration.seconds(10), maxAttempts: 5, backoffRate: 2 });
    startCrawler.addCatch(notifyFailure, onError);

    const waitCrawler = new sfn.Wait(this, 'WaitForCrawler', { time: sfn.WaitTime.duration(Duration.seconds(CRAWLER_POLL_SECONDS)) });
    const getCrawler = new tasks.CallAwsService(this, 'GetCrawler', {
      service: 'glue',
      action: 'getCrawler',
      iamResources: [stack.formatArn({ service: 'glue', resource: 'crawler', resourceName: props.crawlerName })],
      parameters: { Name: props.crawlerName },
      resultSelector: { crawler: sfn.JsonPath.objectAt('$.Crawler') },
      resultPath: '$.crawl',
    });
    getCrawler.addRetry({ errors: [sfn.Errors.TASKS_FAILED], interval: Duration.seconds(10), maxAttempts: 5, backoffRate: 2 });
    getCrawler.addCatch(notifyFailure, onError);
    const crawlFailed = failWith('CrawlNotSucceeded', 'CrawlNotSucceeded', 'The crawl ended FAILED or CANCELLED (see $.crawl.crawler.LastCrawl and the crawler log)');

    const runTransform = new ScopedEcsRunTask(this, 'RunTransform', {
      integrationPattern: sfn.IntegrationPattern.RUN_JOB,
      cluster: props.cluster,
      taskDefinition: props.taskDefinition,
      launchTarget: new tasks.EcsFargateLaunchTarget({ platformVersion: ecs.FargatePlatformVersion.LATEST }),
      assignPublicIp: true,
      subnets: { subnetType: ec2.SubnetType.PUBLIC },
      securityGroups: [props.securityGroup],
      containerOverrides: [
        {
          containerDefinition: props.container,
          environment: [
            { name: 'RUN_ID', value: sfn.JsonPath.executionName },
            // The fetcher's schema drift (cumulative over the run's invocations), for the run summary and report.
            { name: 'UNDECLARED_COLUMNS', value: sfn.JsonPath.jsonToString(sfn.JsonPath.listAt('$.fetch.stats.undeclaredColumns')) },
          ],
        },
      ],
      // Only fields that are always present: a task that never started has no exit code.
      resultSelector: { containers: sfn.JsonPath.listAt('$.Containers'), taskArn: sfn.JsonPath.stringAt('$.TaskArn') },
      resultPath: '$.transform',
    });
    // Capacity can stay short for minutes: 60 s, then doubling, about half an hour in all.
    runTransform.addRetry({ errors: RUN_TASK_TRANSIENT_ERRORS, interval: Duration.seconds(60), maxAttempts: 5, backoffRate: 2, maxDelay: Duration.minutes(15), jitterStrategy: sfn.JitterType.FULL });
    runTransform.addCatch(notifyFailure, onError);
    const transformFailed = failWith('TransformFailed', 'TransformFailed', 'The transform task exited non-zero or never started (see $.transform and the task log)');
    const massDeleteRefused = failWith(
      'MassDeleteRefused',
      'MassDeleteRefused',
      `The key scan would delete more than deletions.maxDeleteShare (${dataset.deletions.maxDeleteShare}) of curated; nothing was deleted (transform exit 4; see the task log). Check the source; if the rows really are gone, raise maxDeleteShare for one run`,
    );
    const repairDidNotReconcile = failWith(
      'RepairDidNotReconcile',
      'RepairDidNotReconcile',
      'Source keys were still missing from curated after the repair (transform exit 5 twice; see keysets/<dataset>/<run>/missing-keys.jsonl.gz and the quarantine)',
    );

    const releaseLease = leaseCall('ReleaseLease', 'release', '$.leaseRelease');
    // A lease left held would skip the next runs until it expires: fail loudly instead.
    releaseLease.addCatch(notifyFailure, onError);

    const notifySuccess = new tasks.SnsPublish(this, 'NotifySuccess', {
      topic: props.topic,
      subject: `Socrata pipeline ${dataset.name}: run succeeded`,
      message: sfn.TaskInput.fromObject({
        dataset: dataset.name,
        status: 'SUCCEEDED',
        execution: sfn.JsonPath.executionId,
        lastFetchStats: sfn.JsonPath.objectAt('$.fetch.stats'),
        // The transform names the report by run id (the execution name), through the same layout
        // function: reports/<dataset>/<run-id>.html, beside the history page.
        report: sfn.JsonPath.format(`s3://${props.curatedBucketName}/${reportKey(dataset, '{}')}`, sfn.JsonPath.executionName),
        history: `s3://${props.curatedBucketName}/${historyKey(dataset)}`,
      }),
      resultPath: sfn.JsonPath.DISCARD,
    });
    notifySuccess.addRetry({ errors: [sfn.Errors.TASKS_FAILED], interval: Duration.seconds(5), maxAttempts: 2, backoffRate: 2 });
    notifySuccess.addCatch(new sfn.Succeed(this, 'SucceededWithoutNotification', { comment: 'The data is in; only the success notice could not be sent' }), { errors: [sfn.Errors.ALL], resultPath: '$.notifyError' });

    const crawlerState = '$.crawl.crawler.State';
    const lastCrawl = '$.crawl.crawler.LastCrawl.Status';
    useRequestedMode.next(acquireLease);
    useIncrementalMode.next(acquireLease);
    acquireLease.next(
      new sfn.Choice(this, 'HoldsRunLease')
        .when(sfn.Condition.booleanEquals('$.lease.acquired', true), fetch)
        .otherwise(skipped),
    );
    fetch.next(
      new sfn.Choice(this, 'FetchDone')
        .when(sfn.Condition.booleanEquals('$.fetch.done', true), startKeyScan)
        .otherwise(nextPage),
    );
    nextPage.next(fetch);
    startKeyScan.next(scanKeys).next(
      new sfn.Choice(this, 'KeyScanDone')
        .when(sfn.Condition.booleanEquals('$.keyScan.done', true), waitFlush)
        .otherwise(scanKeys),
    );
    startRepair.next(repairRows).next(
      new sfn.Choice(this, 'RepairDone')
        .when(sfn.Condition.booleanEquals('$.repair.done', true), markRepaired)
        .otherwise(repairRows),
    );
    // No new crawl: repaired rows have the columns the crawl just saw.
    markRepaired.next(waitRepairFlush).next(runTransform);
    // The crawler only merges source columns the raw table lacks into it: partition projection
    // serves every ingest_date, and the table is created with every declared column. So it runs
    // only when the fetcher saw undeclared columns in this run (cumulative over its invocations);
    // a run without drift goes straight to the transform (docs/cost.md, "The crawler").
    waitFlush.next(
      new sfn.Choice(this, 'SchemaDrifted')
        .when(sfn.Condition.isPresent('$.fetch.stats.undeclaredColumns[0]'), startCrawler)
        .otherwise(runTransform),
    );
    startCrawler.next(waitCrawler).next(getCrawler).next(
      // Rules are tried in order, so each path is read only where an earlier rule proved it
      // present (a Choice on a missing path is a States.Runtime error, which no Catch sees).
      new sfn.Choice(this, 'CrawlerFinished')
        .when(sfn.Condition.not(sfn.Condition.stringEquals(crawlerState, 'READY')), waitCrawler)
        .when(sfn.Condition.not(sfn.Condition.isPresent(lastCrawl)), crawlFailed)
        .when(sfn.Condition.stringEquals(lastCrawl, 'SUCCEEDED'), runTransform)
        .otherwise(crawlFailed),
    );
    runTransform.next(
      new sfn.Choice(this, 'TransformExitedZero')
        .when(sfn.Condition.not(sfn.Condition.isPresent('$.transform.containers[0].ExitCode')), transformFailed)
        .when(sfn.Condition.numberEquals('$.transform.containers[0].ExitCode', 0), releaseLease)
        .when(sfn.Condition.numberEquals('$.transform.containers[0].ExitCode', 4), massDeleteRefused)
        .when(
          sfn.Condition.and(sfn.Condition.numberEquals('$.transform.containers[0].ExitCode', 5), sfn.Condition.not(sfn.Condition.isPresent('$.repaired'))),
          startRepair,
        )
        .when(sfn.Condition.numberEquals('$.transform.containers[0].ExitCode', 5), repairDidNotReconcile)
        .otherwise(transformFailed),
    );
    releaseLease.next(notifySuccess);

    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: props.stateMachineName,
      comment: `Ingestion run of ${dataset.name}`,
      definitionBody: sfn.DefinitionBody.fromChainable(checkInput),
      timeout: props.timeout,
      tracingEnabled: true,
      logs: {
        destination: new logs.LogGroup(this, 'Logs', {
          logGroupName: stateMachineLogGroupName(props.stateMachineName),
          retention: props.logRetention,
          removalPolicy: props.logRemovalPolicy,
        }),
        level: sfn.LogLevel.ALL,
        includeExecutionData: true,
      },
    });
    props.topic.grantPublish(this.stateMachine);
  }
}
