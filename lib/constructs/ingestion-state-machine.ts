import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { type DatasetConfig } from '../../runtime/dataset-config';

/** Extra wait after Firehose's buffering interval before the crawler and transform read raw/. */
export const FIREHOSE_FLUSH_MARGIN_SECONDS = 60;
/** Poll interval of the crawler state. */
export const CRAWLER_POLL_SECONDS = 30;

export interface IngestionStateMachineProps {
  readonly dataset: DatasetConfig;
  /** Physical name; fixed so the state machine's own ARN can be named in its policy (overlap check). */
  readonly stateMachineName: string;
  readonly fetcher: lambda.IFunction;
  readonly crawlerName: string;
  readonly cluster: ecs.ICluster;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly container: ecs.ContainerDefinition;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly topic: sns.ITopic;
  readonly timeout: Duration;
  readonly logRetention: logs.RetentionDays;
}

/**
 * One run of a dataset: overlap guard → fetch loop (cursor passed back until `done`) → wait for
 * Firehose to flush → crawler (polled until READY) → transform task (.sync, exit code checked)
 * → SNS success or failure. Every failure path ends in a notification and a failed execution.
 */
export class IngestionStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: IngestionStateMachineProps) {
    super(scope, id);
    const { dataset } = props;
    const stack = Stack.of(this);
    const ownArn = stack.formatArn({
      service: 'states',
      resource: 'stateMachine',
      resourceName: props.stateMachineName,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });

    const notifyFailure = new tasks.SnsPublish(this, 'NotifyFailure', {
      topic: props.topic,
      subject: `Socrata pipeline ${dataset.name}: run FAILED`,
      message: sfn.TaskInput.fromObject({
        dataset: dataset.name,
        status: 'FAILED',
        execution: sfn.JsonPath.executionId,
        detail: sfn.JsonPath.jsonToString(sfn.JsonPath.objectAt('$')),
      }),
      resultPath: sfn.JsonPath.DISCARD,
    });
    notifyFailure.next(new sfn.Fail(this, 'RunFailed', { error: 'IngestionRunFailed', cause: 'See the failure notification and the execution history' }));
    const onError = { resultPath: '$.error', errors: [sfn.Errors.ALL] };

    // Overlap guard: Step Functions has no per-state-machine concurrency limit, so a run that
    // finds another RUNNING execution of this state machine (besides itself) ends at once.
    const checkOverlap = new tasks.CallAwsService(this, 'ListRunningExecutions', {
      service: 'sfn',
      action: 'listExecutions',
      iamAction: 'states:ListExecutions',
      iamResources: [ownArn],
      parameters: { StateMachineArn: sfn.JsonPath.stringAt('$$.StateMachine.Id'), StatusFilter: 'RUNNING', MaxResults: 10 },
      resultSelector: { running: sfn.JsonPath.arrayLength(sfn.JsonPath.listAt('$.Executions')) },
      resultPath: '$.overlap',
    });
    checkOverlap.addRetry({ errors: [sfn.Errors.TASKS_FAILED], interval: Duration.seconds(5), maxAttempts: 3, backoffRate: 2 });
    checkOverlap.addCatch(notifyFailure, onError);
    const skip = new sfn.Succeed(this, 'SkipOverlappingRun', { comment: 'Another execution of this dataset is running' });

    const useRequestedMode = new sfn.Pass(this, 'UseRequestedMode', {
      parameters: { mode: sfn.JsonPath.stringAt('$.mode'), cursor: null },
    });
    const useIncrementalMode = new sfn.Pass(this, 'UseIncrementalMode', {
      result: sfn.Result.fromObject({ mode: 'incremental', cursor: null }),
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
    // A failed invocation resumes from the same cursor; rows re-sent are deduplicated downstream.
    fetch.addRetry({ errors: [sfn.Errors.TASKS_FAILED, sfn.Errors.TIMEOUT], interval: Duration.seconds(30), maxAttempts: 2, backoffRate: 2, jitterStrategy: sfn.JitterType.FULL });
    fetch.addCatch(notifyFailure, onError);

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
    startCrawler.addRetry({ errors: ['Glue.CrawlerRunningException'], interval: Duration.seconds(60), maxAttempts: 10, backoffRate: 1.5 });
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

    const runTransform = new tasks.EcsRunTask(this, 'RunTransform', {
      integrationPattern: sfn.IntegrationPattern.RUN_JOB,
      cluster: props.cluster,
      taskDefinition: props.taskDefinition,
      launchTarget: new tasks.EcsFargateLaunchTarget({ platformVersion: ecs.FargatePlatformVersion.LATEST }),
      assignPublicIp: true,
      subnets: { subnetType: ec2.SubnetType.PUBLIC },
      securityGroups: [props.securityGroup],
      containerOverrides: [
        { containerDefinition: props.container, environment: [{ name: 'RUN_ID', value: sfn.JsonPath.executionName }] },
      ],
      // Only fields that are always present: a task that never started has no exit code.
      resultSelector: { containers: sfn.JsonPath.listAt('$.Containers'), taskArn: sfn.JsonPath.stringAt('$.TaskArn') },
      resultPath: '$.transform',
    });
    runTransform.addRetry({ errors: ['ECS.AmazonECSException', 'ECS.ServerException', 'ECS.ThrottlingException'], interval: Duration.seconds(30), maxAttempts: 3, backoffRate: 2 });
    runTransform.addCatch(notifyFailure, onError);

    const notifySuccess = new tasks.SnsPublish(this, 'NotifySuccess', {
      topic: props.topic,
      subject: `Socrata pipeline ${dataset.name}: run succeeded`,
      message: sfn.TaskInput.fromObject({
        dataset: dataset.name,
        status: 'SUCCEEDED',
        execution: sfn.JsonPath.executionId,
        lastFetchStats: sfn.JsonPath.objectAt('$.fetch.stats'),
      }),
      resultPath: sfn.JsonPath.DISCARD,
    });
    notifySuccess.addCatch(new sfn.Succeed(this, 'SucceededWithoutNotification'), { errors: [sfn.Errors.ALL] });

    const crawlerState = '$.crawl.crawler.State';
    const lastCrawl = '$.crawl.crawler.LastCrawl.Status';
    const definition = checkOverlap.next(
      new sfn.Choice(this, 'IsAnotherRunActive')
        .when(sfn.Condition.numberGreaterThan('$.overlap.running', 1), skip)
        .otherwise(
          new sfn.Choice(this, 'HasRequestedMode')
            .when(sfn.Condition.isPresent('$.mode'), useRequestedMode)
            .otherwise(useIncrementalMode),
        ),
    );
    useRequestedMode.next(fetch);
    useIncrementalMode.next(fetch);
    fetch.next(
      new sfn.Choice(this, 'FetchDone')
        .when(sfn.Condition.booleanEquals('$.fetch.done', true), waitFlush)
        .otherwise(nextPage),
    );
    nextPage.next(fetch);
    waitFlush.next(startCrawler).next(waitCrawler).next(getCrawler).next(
      new sfn.Choice(this, 'CrawlerFinished')
        .when(
          sfn.Condition.and(
            sfn.Condition.stringEquals(crawlerState, 'READY'),
            sfn.Condition.isPresent(lastCrawl),
            sfn.Condition.stringEquals(lastCrawl, 'FAILED'),
          ),
          notifyFailure,
        )
        .when(sfn.Condition.stringEquals(crawlerState, 'READY'), runTransform)
        .otherwise(waitCrawler),
    );
    runTransform.next(
      new sfn.Choice(this, 'TransformExitedZero')
        .when(
          sfn.Condition.and(
            sfn.Condition.isPresent('$.transform.containers[0].ExitCode'),
            sfn.Condition.numberEquals('$.transform.containers[0].ExitCode', 0),
          ),
          notifySuccess,
        )
        .otherwise(notifyFailure),
    );

    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: props.stateMachineName,
      comment: `Ingestion run of ${dataset.name}`,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      timeout: props.timeout,
      tracingEnabled: true,
      logs: {
        destination: new logs.LogGroup(this, 'Logs', { retention: props.logRetention }),
        level: sfn.LogLevel.ALL,
        includeExecutionData: true,
      },
    });
    props.topic.grantPublish(this.stateMachine);
  }
}

