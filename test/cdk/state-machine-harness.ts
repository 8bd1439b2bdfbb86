/**
 * Runs the SYNTHESIZED ingestion state machine (tokens resolved to fake ARNs) in
 * aws-local-stepfunctions, an independent Amazon States Language interpreter, with every Task
 * state served by a handler of the test. Records the states entered, the SNS notices and the
 * calls each task got; Wait states and retry intervals are shortened to zero, nothing else.
 */
import { ExecutionError, StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { FAKE, CfnResolver, loadTemplates } from './cfn-resolve';
import { synth } from './app-fixture';

// aws-local-stepfunctions 3 targets Node 22 (its retry waits use Promise.withResolvers); the
// project supports Node 20, so supply the one missing function for the tests.
const P = Promise as unknown as { withResolvers?: () => unknown };
P.withResolvers ??= () => {
  let resolve!: (v: unknown) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type TaskHandler = (input: Json, call: number) => Promise<Json> | Json;

/** An error as Step Functions names it (what Retry/Catch ErrorEquals match). */
export class TaskError extends Error {
  constructor(name: string, message = name) {
    super(message);
    this.name = name;
  }
}

export interface Synthesized {
  definition: StateMachineDefinition;
  /** The exact Input of the dataset's EventBridge schedule target. */
  scheduleInput: Json;
  stateMachineName: string;
}

let cached: Synthesized | undefined;

export function synthesizedStateMachine(): Synthesized {
  if (cached) return cached;
  const { outdir } = synth({ env: 'dev' });
  const resolver = new CfnResolver(loadTemplates(outdir));
  const stack = 'SocrataPipeline-dev-Dataset-sf-fire-incidents';
  const machines = resolver.resources(stack, 'AWS::StepFunctions::StateMachine');
  if (machines.length !== 1) throw new Error(`expected one state machine, found ${machines.length}`);
  const schedules = resolver.resources(stack, 'AWS::Scheduler::Schedule');
  if (schedules.length !== 1) throw new Error(`expected one schedule, found ${schedules.length}`);
  const m = machines[0]!.properties;
  cached = {
    definition: JSON.parse(m.DefinitionString as string) as StateMachineDefinition,
    scheduleInput: JSON.parse(schedules[0]!.properties.Target.Input as string) as Json,
    stateMachineName: m.StateMachineName as string,
  };
  return cached;
}

export interface RunResult {
  status: 'SUCCEEDED' | 'FAILED';
  /** Final state data (SUCCEEDED) */
  output: Json;
  /** Error name and cause of a FAILED execution. */
  error?: string;
  cause?: string;
  /** Every state entered, in order. */
  path: string[];
  /** Messages published to SNS (parsed), in order. */
  notices: Array<{ subject: string; message: Record<string, Json> }>;
  /** Inputs each task state received (after Parameters), per state name. */
  calls: Record<string, Json[]>;
}

export const EXECUTION_NAME = 'run-2026-01-01T06-00-00';

/**
 * Execute once. `handlers` serve Task states by name; a Task without a handler fails the test
 * (so no state is silently skipped).
 */
export async function execute(input: Json, handlers: Record<string, TaskHandler>): Promise<RunResult> {
  const { definition, stateMachineName } = synthesizedStateMachine();
  const calls: Record<string, Json[]> = {};
  const notices: RunResult['notices'] = [];
  const taskStates = Object.entries(definition.States).filter(([, s]) => s.Type === 'Task').map(([n]) => n);
  const waits = Object.entries(definition.States).filter(([, s]) => s.Type === 'Wait').map(([n]) => n);
  const local: Record<string, (input: Json) => Promise<Json>> = {};
  for (const name of taskStates) {
    local[name] = async (taskInput: Json) => {
      (calls[name] ??= []).push(taskInput);
      const h = handlers[name];
      if (!h) throw new Error(`test gave no handler for task state ${name}`);
      const out = await h(taskInput, calls[name]!.length);
      if (name === 'NotifySuccess' || name === 'NotifyFailure') {
        const p = taskInput as { Subject: string; Message: Record<string, Json> };
        notices.push({ subject: p.Subject, message: p.Message });
      }
      return out;
    };
  }
  const machine = new StateMachine(definition, { validationOptions: { checkArn: false } });
  const execution = machine.run(input as never, {
    overrides: {
      taskResourceLocalHandlers: local as never,
      waitTimeOverrides: Object.fromEntries(waits.map((w) => [w, 0])),
      retryIntervalOverrides: Object.fromEntries(taskStates.map((t) => [t, 0])),
    },
    context: {
      Execution: {
        Id: `arn:aws:states:${FAKE.region}:${FAKE.account}:execution:${stateMachineName}:${EXECUTION_NAME}`,
        Name: EXECUTION_NAME,
        Input: input,
        StartTime: '2026-01-01T06:00:00.000Z',
        RoleArn: `arn:aws:iam::${FAKE.account}:role/state-machine`,
      },
      StateMachine: { Id: `arn:aws:states:${FAKE.region}:${FAKE.account}:stateMachine:${stateMachineName}`, Name: stateMachineName },
    } as never,
  });
  const path: string[] = [];
  const collect = (async () => {
    for await (const e of execution.eventLogs) {
      if (e.type === 'StateEntered') path.push(e.state.name);
    }
  })();
  try {
    const output = (await execution.result) as Json;
    await collect;
    return { status: 'SUCCEEDED', output, path, notices, calls };
  } catch (err) {
    await collect.catch(() => undefined);
    if (!(err instanceof ExecutionError)) throw err;
    const cause = (err as Error & { cause?: Error }).cause;
    return { status: 'FAILED', output: null, error: cause?.name ?? err.name, cause: cause?.message ?? err.message, path, notices, calls };
  }
}

/** Handlers for a run where everything works: one fetch page, crawl SUCCEEDED, transform exit 0. */
export function happyHandlers(overrides: Record<string, TaskHandler> = {}): Record<string, TaskHandler> {
  return {
    AcquireLease: (i) => ({ acquired: true, holder: (i as { runId: string }).runId, expiresAt: '2026-01-01T09:10:00.000Z' }),
    ReleaseLease: () => ({ released: true, reason: 'released' }),
    ReleaseLeaseAfterFailure: () => ({ released: false, reason: 'absent' }),
    FetchPage: () => ({ StatusCode: 200, Payload: { runId: EXECUTION_NAME, done: true, cursor: null, stats: { rowsFetched: 10, rowsDelivered: 10, undeclaredColumns: [] } } }),
    ScanKeys: () => ({ StatusCode: 200, Payload: { runId: EXECUTION_NAME, phase: 'keys', done: true, cursor: null, stats: { keys: 10, pages: 1 } } }),
    RepairRows: () => ({ StatusCode: 200, Payload: { runId: EXECUTION_NAME, phase: 'repair', done: true, cursor: null, stats: { keysRequested: 1, rowsDelivered: 1 } } }),
    StartCrawler: () => ({}),
    GetCrawler: () => ({ Crawler: { Name: 'crawler', State: 'READY', LastCrawl: { Status: 'SUCCEEDED' } } }),
    RunTransform: () => ({ TaskArn: 'arn:aws:ecs:us-east-1:123456789012:task/cluster/abc', Containers: [{ Name: 'transform', ExitCode: 0 }], StopCode: 'EssentialContainerExited' }),
    NotifySuccess: () => ({ MessageId: 'm-1' }),
    NotifyFailure: () => ({ MessageId: 'm-2' }),
    ...overrides,
  };
}
