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
import { FETCHER_ANSWER_FIELDS, FETCHER_PHASE, RUN_MODES, TRANSFORM_EXIT, type FetcherFollowUpPhase } from '../../runtime/run-protocol';
import { historyKey, reportKey } from '../../runtime/storage-layout';

/** Extra wait after Firehose's buffering interval before the crawler and transform read raw/. */
export const FIREHOSE_FLUSH_MARGIN_SECONDS = 60;
/** Poll interval of the crawler state. */
export const CRAWLER_POLL_SECONDS = 30;
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

const LAMBDA_SERVICE_ERRORS = ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'];
const ON_ERROR = { resultPath: '$.error', errors: [sfn.Errors.ALL] };
/** What the state machine keeps of a fetcher invocation's answer (any phase): a few hundred bytes. */
const FETCHER_RESULT = Object.fromEntries(FETCHER_ANSWER_FIELDS.map((field) => [field, sfn.JsonPath.objectAt(`$.Payload.${field}`)]));
const FETCHER_RETRY: sfn.RetryProps = { errors: [sfn.Errors.TASKS_FAILED, sfn.Errors.TIMEOUT], interval: Duration.seconds(30), maxAttempts: 2, backoffRate: 2, jitterStrategy: sfn.JitterType.FULL };

/** A fetcher phase looped on `done`: the Pass that starts it, the invocation, and where its answer goes. */
interface PhaseLoop {
  readonly start: sfn.Pass;
  readonly invoke: tasks.LambdaInvoke;
  readonly path: string;
}
interface CrawlSteps {
  readonly start: tasks.GlueStartCrawlerRun;
  readonly wait: sfn.Wait;
  readonly poll: tasks.CallAwsService;
  readonly failed: sfn.Pass;
}
interface TransformSteps {
  readonly task: tasks.EcsRunTask;
  readonly failed: sfn.Pass;
  readonly massDeleteRefused: sfn.Pass;
  readonly repairDidNotReconcile: sfn.Pass;
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
 *
 * The constructor reads as the run, phase by phase; each phase's states are built by a method of
 * its own, and the Choices that join the phases are in the constructor, where the order shows.
 */
export class IngestionStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  private readonly props: IngestionStateMachineProps;
  /** Where every caught error and every failing Choice goes (then the lease release and the Fail). */
  private readonly notifyFailure: tasks.SnsPublish;

  constructor(scope: Construct, id: string, props: IngestionStateMachineProps) {
    super(scope, id);
    this.props = props;
    this.notifyFailure = this.failureNotice();
    const input = this.inputCheck();
    const acquireLease = this.leaseCall('AcquireLease', 'acquire', '$.lease');
    acquireLease.addCatch(this.notifyFailure, ON_ERROR);
    const skipped = new sfn.Succeed(this, 'SkippedOverlappingRun', {
      comment: 'Another run of this dataset holds the lease (see $.lease.holder); counted in the SkippedRuns metric',
    });
    const fetch = this.fetchPage();
    // The key scan (deletion detection): the fetcher's "keys" phase. A scan that is not due returns done at once.
    const keyScan = this.fetcherPhaseLoop('StartKeyScan', 'ScanKeys', FETCHER_PHASE.keys, '$.keyScan');
    // The repair (transform exit 5: curated lacks source keys): the fetcher's "repair" phase
    // fetches them by key, Firehose flushes, the transform runs once more. $.repaired bounds it.
    const repair = this.fetcherPhaseLoop('StartRepair', 'RepairRows', FETCHER_PHASE.repair, '$.repair');
    const markRepaired = new sfn.Pass(this, 'MarkRepaired', { result: sfn.Result.fromBoolean(true), resultPath: '$.repaired' });
    const waitRepairFlush = this.flushWait('WaitForRepairFlush');
    const nextPage = new sfn.Pass(this, 'NextPage', {
      parameters: { mode: sfn.JsonPath.stringAt('$.mode'), cursor: sfn.JsonPath.objectAt('$.fetch.cursor'), lastStats: sfn.JsonPath.objectAt('$.fetch.stats') },
    });
    const waitFlush = this.flushWait('WaitForFirehoseFlush');
    const crawl = this.crawlSteps();
    const transform = this.transformSteps();
    const releaseLease = this.leaseCall('ReleaseLease', 'release', '$.leaseRelease');
    // A lease left held would skip the next runs until it expires: fail loudly instead.
    releaseLease.addCatch(this.notifyFailure, ON_ERROR);
    const notifySuccess = this.successNotice();

    for (const accepted of input.accepted) accepted.next(acquireLease);
    acquireLease.next(new sfn.Choice(this, 'HoldsRunLease').when(sfn.Condition.booleanEquals('$.lease.acquired', true), fetch).otherwise(skipped));
    fetch.next(new sfn.Choice(this, 'FetchDone').when(sfn.Condition.booleanEquals('$.fetch.done', true), keyScan.start).otherwise(nextPage));
    nextPage.next(fetch);
    keyScan.start.next(keyScan.invoke).next(this.loopUntilDone('KeyScanDone', keyScan, waitFlush));
    repair.start.next(repair.invoke).next(this.loopUntilDone('RepairDone', repair, markRepaired));
    // No new crawl: repaired rows have the columns the crawl just saw.
    markRepaired.next(waitRepairFlush).next(transform.task);
    // The crawler only merges source columns the raw table lacks into it: partition projection
    // serves every ingest_date, and the table is created with every declared column. So it runs
    // only when the fetcher saw undeclared columns in this run (cumulative over its invocations);
    // a run without drift goes straight to the transform (docs/cost.md, "The crawler").
    waitFlush.next(
      new sfn.Choice(this, 'SchemaDrifted')
        .when(sfn.Condition.isPresent('$.fetch.stats.undeclaredColumns[0]'), crawl.start)
        .otherwise(transform.task),
    );
    crawl.start.next(crawl.wait).next(crawl.poll).next(this.crawlerFinished(crawl, transform.task));
    transform.task.next(this.transformExitCode(transform, releaseLease, repair.start));
    releaseLease.next(notifySuccess);

    this.stateMachine = this.stateMachineOf(input.check);
    props.topic.grantPublish(this.stateMachine);
  }

  /** A call of the run-lease function, retried on Lambda's transient errors. */
  private leaseCall(id: string, action: 'acquire' | 'release', resultPath: string): tasks.LambdaInvoke {
    const call = new tasks.LambdaInvoke(this, id, {
      lambdaFunction: this.props.runLease,
      payload: sfn.TaskInput.fromObject({ action, runId: sfn.JsonPath.executionName }),
      payloadResponseOnly: true,
      resultPath,
      retryOnServiceExceptions: false,
    });
    call.addRetry({ errors: [...LAMBDA_SERVICE_ERRORS, sfn.Errors.TASKS_FAILED], interval: Duration.seconds(2), maxAttempts: 4, backoffRate: 2 });
    return call;
  }

  /** The failure path: SNS notice → lease release → Fail; a step of it that fails goes on to the next. */
  private failureNotice(): tasks.SnsPublish {
    const runFailed = new sfn.Fail(this, 'RunFailed', { error: 'IngestionRunFailed', cause: 'See the failure notification and the execution history' });
    // The failure path releases the lease too; release is a no-op for a run that does not hold it.
    const releaseAfterFailure = this.leaseCall('ReleaseLeaseAfterFailure', 'release', '$.leaseRelease');
    releaseAfterFailure.addCatch(runFailed, { errors: [sfn.Errors.ALL], resultPath: '$.leaseReleaseError' });
    releaseAfterFailure.next(runFailed);
    const notifyFailure = this.runNotice('NotifyFailure', 'FAILED', {
      error: sfn.JsonPath.objectAt('$.error'),
      detail: sfn.JsonPath.jsonToString(sfn.JsonPath.objectAt('$')),
    });
    notifyFailure.addCatch(releaseAfterFailure, { errors: [sfn.Errors.ALL], resultPath: '$.notifyError' });
    notifyFailure.next(releaseAfterFailure);
    return notifyFailure;
  }

  /** A failure decided by a Choice: sets `$.error` like a caught error, then notifies. */
  private failWith(id: string, error: string, cause: string): sfn.Pass {
    const pass = new sfn.Pass(this, id, { result: sfn.Result.fromObject({ Error: error, Cause: cause }), resultPath: '$.error' });
    pass.next(this.notifyFailure);
    return pass;
  }

  /**
   * Input: {} or {"mode": "incremental" | "full-refresh"}. Both accepted paths build
   * { mode, cursor: null } (CDK drops a null in Pass parameters, so the null comes from an
   * intrinsic), so FetchPage always finds $.cursor; any other mode fails the run, with a notice,
   * before it takes the lease.
   */
  private inputCheck(): { check: sfn.Choice; accepted: readonly sfn.Pass[] } {
    const useRequestedMode = new sfn.Pass(this, 'UseRequestedMode', {
      parameters: { mode: sfn.JsonPath.stringAt('$.mode'), cursor: sfn.JsonPath.stringToJson('null') },
    });
    const useIncrementalMode = new sfn.Pass(this, 'UseIncrementalMode', {
      result: sfn.Result.fromObject({ mode: 'incremental', cursor: null }),
    });
    const rejectInput = this.failWith(
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
    rejectScalarInput.next(this.notifyFailure);
    const check = new sfn.Choice(this, 'CheckInput')
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
    return { check, accepted: [useRequestedMode, useIncrementalMode] };
  }

  /** One invocation of the row fetch; the state machine loops on `done`, passing the cursor back. */
  private fetchPage(): tasks.LambdaInvoke {
    const fetch = new tasks.LambdaInvoke(this, 'FetchPage', {
      lambdaFunction: this.props.fetcher,
      payload: sfn.TaskInput.fromObject({
        runId: sfn.JsonPath.executionName,
        mode: sfn.JsonPath.stringAt('$.mode'),
        cursor: sfn.JsonPath.objectAt('$.cursor'),
      }),
      resultSelector: FETCHER_RESULT,
      resultPath: '$.fetch',
      retryOnServiceExceptions: true,
    });
    // A failed invocation is retried with the same cursor; the fetcher re-reads its checkpoint and
    // continues from whichever is further (rows re-sent are deduplicated downstream).
    fetch.addRetry(FETCHER_RETRY);
    fetch.addCatch(this.notifyFailure, ON_ERROR);
    return fetch;
  }

  /**
   * A fetcher phase looped on `done` like the row fetch: a Pass that starts it with a null
   * cursor at `path`, and the invocation that passes the cursor back, with the row fetch's retries.
   */
  private fetcherPhaseLoop(startId: string, id: string, phase: FetcherFollowUpPhase, path: '$.keyScan' | '$.repair'): PhaseLoop {
    const start = new sfn.Pass(this, startId, { parameters: { cursor: sfn.JsonPath.stringToJson('null') }, resultPath: path });
    const invoke = new tasks.LambdaInvoke(this, id, {
      lambdaFunction: this.props.fetcher,
      payload: sfn.TaskInput.fromObject({ runId: sfn.JsonPath.executionName, phase, cursor: sfn.JsonPath.objectAt(`${path}.cursor`) }),
      resultSelector: FETCHER_RESULT,
      resultPath: path,
      retryOnServiceExceptions: true,
    });
    invoke.addRetry(FETCHER_RETRY);
    invoke.addCatch(this.notifyFailure, ON_ERROR);
    return { start, invoke, path };
  }

  /** The Choice that invokes a phase again until it reports `done`, then goes on to `next`. */
  private loopUntilDone(id: string, loop: PhaseLoop, next: sfn.IChainable): sfn.Choice {
    return new sfn.Choice(this, id).when(sfn.Condition.booleanEquals(`${loop.path}.done`, true), next).otherwise(loop.invoke);
  }

  /** Firehose's buffering interval and a margin: after it, what the fetcher sent is in raw/. */
  private flushWait(id: string): sfn.Wait {
    return new sfn.Wait(this, id, {
      time: sfn.WaitTime.duration(Duration.seconds(this.props.dataset.delivery.bufferingIntervalSeconds + FIREHOSE_FLUSH_MARGIN_SECONDS)),
    });
  }

  /** Start the crawler, then poll it. */
  private crawlSteps(): CrawlSteps {
    const { crawlerName } = this.props;
    const start = new tasks.GlueStartCrawlerRun(this, 'StartCrawler', {
      crawlerName,
      resultPath: sfn.JsonPath.DISCARD,
    });
    // Already running (a crawl started by hand, or by an earlier run): wait for it to end, then
    // start ours, so the crawl we wait for has seen this run's objects.
    start.addRetry({ errors: ['Glue.CrawlerRunningException'], interval: Duration.seconds(60), maxAttempts: 10, backoffRate: 1.5, maxDelay: Duration.minutes(10) });
    start.addRetry({ errors: ['Glue.ThrottlingException', 'Glue.OperationTimeoutException', 'Glue.InternalServiceException'], interval: Duration.seconds(10), maxAttempts: 5, backoffRate: 2 });
    start.addCatch(this.notifyFailure, ON_ERROR);

    const wait = new sfn.Wait(this, 'WaitForCrawler', { time: sfn.WaitTime.duration(Duration.seconds(CRAWLER_POLL_SECONDS)) });
    const poll = new tasks.CallAwsService(this, 'GetCrawler', {
      service: 'glue',
      action: 'getCrawler',
      iamResources: [Stack.of(this).formatArn({ service: 'glue', resource: 'crawler', resourceName: crawlerName })],
      parameters: { Name: crawlerName },
      resultSelector: { crawler: sfn.JsonPath.objectAt('$.Crawler') },
      resultPath: '$.crawl',
    });
    poll.addRetry({ errors: [sfn.Errors.TASKS_FAILED], interval: Duration.seconds(10), maxAttempts: 5, backoffRate: 2 });
    poll.addCatch(this.notifyFailure, ON_ERROR);
    const failed = this.failWith('CrawlNotSucceeded', 'CrawlNotSucceeded', 'The crawl ended FAILED or CANCELLED (see $.crawl.crawler.LastCrawl and the crawler log)');
    return { start, wait, poll, failed };
  }

  /** After a poll: wait again while the crawler runs; then on to `next` if the last crawl succeeded. */
  private crawlerFinished(crawl: CrawlSteps, next: sfn.IChainable): sfn.Choice {
    const crawlerState = '$.crawl.crawler.State';
    const lastCrawl = '$.crawl.crawler.LastCrawl.Status';
    // Rules are tried in order, so each path is read only where an earlier rule proved it
    // present (a Choice on a missing path is a States.Runtime error, which no Catch sees).
    return new sfn.Choice(this, 'CrawlerFinished')
      .when(sfn.Condition.not(sfn.Condition.stringEquals(crawlerState, 'READY')), crawl.wait)
      .when(sfn.Condition.not(sfn.Condition.isPresent(lastCrawl)), crawl.failed)
      .when(sfn.Condition.stringEquals(lastCrawl, 'SUCCEEDED'), next)
      .otherwise(crawl.failed);
  }

  /** The transform task (.sync) and the failures its exit code can name. */
  private transformSteps(): TransformSteps {
    const { props } = this;
    const task = new ScopedEcsRunTask(this, 'RunTransform', {
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
    task.addRetry({ errors: RUN_TASK_TRANSIENT_ERRORS, interval: Duration.seconds(60), maxAttempts: 5, backoffRate: 2, maxDelay: Duration.minutes(15), jitterStrategy: sfn.JitterType.FULL });
    task.addCatch(this.notifyFailure, ON_ERROR);
    const failed = this.failWith('TransformFailed', 'TransformFailed', 'The transform task exited non-zero or never started (see $.transform and the task log)');
    const massDeleteRefused = this.failWith(
      'MassDeleteRefused',
      'MassDeleteRefused',
      `The key scan would delete more than deletions.maxDeleteShare (${props.dataset.deletions.maxDeleteShare}) of curated; nothing was deleted (transform exit ${TRANSFORM_EXIT.massDeleteRefused}; see the task log). Check the source; if the rows really are gone, raise maxDeleteShare for one run`,
    );
    const repairDidNotReconcile = this.failWith(
      'RepairDidNotReconcile',
      'RepairDidNotReconcile',
      `Source keys were still missing from curated after the repair (transform exit ${TRANSFORM_EXIT.repairNeeded} twice; see keysets/<dataset>/<run>/missing-keys.jsonl.gz and the quarantine)`,
    );
    return { task, failed, massDeleteRefused, repairDidNotReconcile };
  }

  /** The transform's exit code: ok on to `succeeded`, repairNeeded (first time) on to `repair`, else a named failure. */
  private transformExitCode(transform: TransformSteps, succeeded: sfn.IChainable, repair: sfn.IChainable): sfn.Choice {
    const exitCode = '$.transform.containers[0].ExitCode';
    return new sfn.Choice(this, 'TransformExitedZero')
      .when(sfn.Condition.not(sfn.Condition.isPresent(exitCode)), transform.failed)
      .when(sfn.Condition.numberEquals(exitCode, TRANSFORM_EXIT.ok), succeeded)
      .when(sfn.Condition.numberEquals(exitCode, TRANSFORM_EXIT.massDeleteRefused), transform.massDeleteRefused)
      .when(sfn.Condition.and(sfn.Condition.numberEquals(exitCode, TRANSFORM_EXIT.repairNeeded), sfn.Condition.not(sfn.Condition.isPresent('$.repaired'))), repair)
      .when(sfn.Condition.numberEquals(exitCode, TRANSFORM_EXIT.repairNeeded), transform.repairDidNotReconcile)
      .otherwise(transform.failed);
  }

  /** The success notice names the run's report and the history page; failing to send it does not fail the run. */
  private successNotice(): tasks.SnsPublish {
    const { dataset, curatedBucketName } = this.props;
    const notifySuccess = this.runNotice('NotifySuccess', 'SUCCEEDED', {
      lastFetchStats: sfn.JsonPath.objectAt('$.fetch.stats'),
      // The transform names the report by run id (the execution name), through the same layout
      // function: reports/<dataset>/<run-id>.html, beside the history page.
      report: sfn.JsonPath.format(`s3://${curatedBucketName}/${reportKey(dataset, '{}')}`, sfn.JsonPath.executionName),
      history: `s3://${curatedBucketName}/${historyKey(dataset)}`,
    });
    notifySuccess.addCatch(new sfn.Succeed(this, 'SucceededWithoutNotification', { comment: 'The data is in; only the success notice could not be sent' }), { errors: [sfn.Errors.ALL], resultPath: '$.notifyError' });
    return notifySuccess;
  }

  /** A run's notice: which dataset, run and outcome, then what that outcome adds; sending is retried. */
  private runNotice(id: string, status: 'FAILED' | 'SUCCEEDED', details: Record<string, unknown>): tasks.SnsPublish {
    const { dataset } = this.props;
    const notice = new tasks.SnsPublish(this, id, {
      topic: this.props.topic,
      subject: `Socrata pipeline ${dataset.name}: run ${status === 'FAILED' ? 'FAILED' : 'succeeded'}`,
      message: sfn.TaskInput.fromObject({ dataset: dataset.name, status, execution: sfn.JsonPath.executionId, ...details }),
      resultPath: sfn.JsonPath.DISCARD,
    });
    notice.addRetry({ errors: [sfn.Errors.TASKS_FAILED], interval: Duration.seconds(5), maxAttempts: 2, backoffRate: 2 });
    return notice;
  }

  private stateMachineOf(start: sfn.IChainable): sfn.StateMachine {
    const { props } = this;
    return new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: props.stateMachineName,
      comment: `Ingestion run of ${props.dataset.name}`,
      definitionBody: sfn.DefinitionBody.fromChainable(start),
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
  }
}
