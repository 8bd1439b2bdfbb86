import { TimeZone } from 'aws-cdk-lib';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { type DatasetConfig } from '../../runtime/dataset-config';

export interface IngestionScheduleProps {
  readonly dataset: DatasetConfig;
  readonly stateMachine: sfn.IStateMachine;
  /** Off in dev by default: runs are started by hand there. */
  readonly enabled: boolean;
}

/** The dataset's EventBridge Scheduler schedule, starting an incremental run. */
export class IngestionSchedule extends Construct {
  readonly schedule: scheduler.Schedule;

  constructor(scope: Construct, id: string, props: IngestionScheduleProps) {
    super(scope, id);
    const { dataset } = props;
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: `Incremental ingestion of ${dataset.name}`,
      schedule: scheduler.ScheduleExpression.expression(dataset.schedule.expression, TimeZone.of(dataset.schedule.timezone)),
      target: new targets.StepFunctionsStartExecution(props.stateMachine, {
        input: scheduler.ScheduleTargetInput.fromObject({ mode: 'incremental' }),
        // A failed start is retried a few times; the state machine itself prevents overlaps.
        retryAttempts: 3,
      }),
      enabled: props.enabled,
    });
  }
}
