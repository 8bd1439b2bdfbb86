/**
 * The synthesized ingestion state machine, EXECUTED in an independent ASL interpreter
 * (aws-local-stepfunctions), case by case: which states ran, how the execution ended, which
 * notice was sent, what each task was called with.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EXECUTION_NAME, TaskError, execute, happyHandlers, synthesizedStateMachine, type RunResult } from './state-machine-harness';

const fetchPayloads = (r: RunResult) => (r.calls.FetchPage ?? []).map((c) => (c as { Payload: Record<string, unknown> }).Payload);
const statuses = (r: RunResult) => r.notices.map((n) => n.message.status);
const noticeError = (r: RunResult) => (r.notices[0]?.message.error as { Error?: string } | undefined)?.Error;
const ran = (r: RunResult, state: string) => r.path.includes(state);
/** A fetch that saw a source column the dataset does not declare (schema drift): the crawler runs. */
const DRIFT_FETCH = { FetchPage: () => ({ StatusCode: 200, Payload: { runId: EXECUTION_NAME, done: true, cursor: null, stats: { rowsFetched: 10, undeclaredColumns: ['new_col'] } } }) };
const drifted = (overrides: Parameters<typeof happyHandlers>[0] = {}) => happyHandlers({ ...DRIFT_FETCH, ...overrides });

/** The tail every successful run ends with. */
const SUCCESS_TAIL = ['RunTransform', 'TransformExitedZero', 'ReleaseLease', 'NotifySuccess'];
/** The tail every failed run ends with. */
const FAILURE_TAIL = ['NotifyFailure', 'ReleaseLeaseAfterFailure', 'RunFailed'];

function assertSucceeded(r: RunResult): void {
  assert.equal(r.status, 'SUCCEEDED', `${r.error}: ${r.cause}\npath: ${r.path.join(' > ')}`);
  assert.deepEqual(r.path.slice(-SUCCESS_TAIL.length), SUCCESS_TAIL);
  assert.deepEqual(statuses(r), ['SUCCEEDED']);
  assert.equal(r.calls.ReleaseLease?.length, 1, 'lease released once');
}

function assertFailed(r: RunResult, error: string): void {
  assert.equal(r.status, 'FAILED', `path: ${r.path.join(' > ')}`);
  assert.equal(r.error, 'IngestionRunFailed');
  assert.deepEqual(r.path.slice(-FAILURE_TAIL.length), FAILURE_TAIL);
  assert.deepEqual(statuses(r), ['FAILED']);
  assert.equal(noticeError(r), error, JSON.stringify(r.notices[0]?.message.error));
  assert.deepEqual(r.calls.ReleaseLeaseAfterFailure, [{ action: 'release', runId: EXECUTION_NAME }]);
  assert.equal(ran(r, 'NotifySuccess'), false);
}

describe('input: every way a run is started', () => {
  test("the schedule's exact input runs to success as an incremental run", async () => {
    const { scheduleInput } = synthesizedStateMachine();
    assert.deepEqual(scheduleInput, { mode: 'incremental' });
    const r = await execute(scheduleInput, happyHandlers());
    assertSucceeded(r);
    assert.deepEqual(r.path.slice(0, 5), ['CheckInput', 'UseRequestedMode', 'AcquireLease', 'HoldsRunLease', 'FetchPage']);
    assert.deepEqual(fetchPayloads(r), [{ runId: EXECUTION_NAME, mode: 'incremental', cursor: null }]);
    assert.deepEqual(r.calls.AcquireLease, [{ action: 'acquire', runId: EXECUTION_NAME }]);
  });

  test('{} runs incrementally', async () => {
    const r = await execute({}, happyHandlers());
    assertSucceeded(r);
    assert.ok(ran(r, 'UseIncrementalMode'));
    assert.deepEqual(fetchPayloads(r), [{ runId: EXECUTION_NAME, mode: 'incremental', cursor: null }]);
  });

  test('{"mode":"full-refresh"} runs a full refresh', async () => {
    const r = await execute({ mode: 'full-refresh' }, happyHandlers());
    assertSucceeded(r);
    assert.deepEqual(fetchPayloads(r), [{ runId: EXECUTION_NAME, mode: 'full-refresh', cursor: null }]);
  });

  for (const mode of ['full', 'INCREMENTAL', 5, null]) {
    test(`a bad mode (${JSON.stringify(mode)}) fails before the lease, with an InvalidInput notice`, async () => {
      const r = await execute({ mode }, happyHandlers());
      assertFailed(r, 'InvalidInput');
      assert.deepEqual(r.path, ['CheckInput', 'RejectInput', ...FAILURE_TAIL]);
      assert.equal(r.calls.AcquireLease, undefined);
      assert.equal(r.calls.FetchPage, undefined);
    });
  }
});

describe('input that is not an object', () => {
  // (A null input is rejected by the same rule in Step Functions; the interpreter cannot evaluate
  // any path on a null document, so it is not run here.)
  for (const input of ['full-refresh', 5, true]) {
    test(`${JSON.stringify(input)} fails with an InvalidInput notice instead of running`, async () => {
      const r = await execute(input, happyHandlers());
      assertFailed(r, 'InvalidInput');
      assert.deepEqual(r.path, ['CheckInput', 'RejectNonObjectInput', ...FAILURE_TAIL]);
      assert.equal(r.calls.FetchPage, undefined);
    });
  }
});

describe('fetch loop', () => {
  test('done:false twice, then true: three invocations, each given the cursor the previous returned', async () => {
    const pages = [
      { done: false, cursor: { page: 1 } },
      { done: false, cursor: { page: 2 } },
      { done: true, cursor: null },
    ];
    const r = await execute({}, happyHandlers({
      FetchPage: (_i, n) => ({ StatusCode: 200, Payload: { runId: EXECUTION_NAME, ...pages[n - 1]!, stats: { pages: n, undeclaredColumns: n === 3 ? [':@computed_region_x', 'new_col'] : [] } } }),
    }));
    assertSucceeded(r);
    assert.deepEqual(fetchPayloads(r).map((p) => p.cursor), [null, { page: 1 }, { page: 2 }]);
    assert.deepEqual(fetchPayloads(r).map((p) => p.mode), ['incremental', 'incremental', 'incremental']);
    assert.equal(r.path.filter((s) => s === 'NextPage').length, 2);
    assert.deepEqual(r.notices[0]!.message.lastFetchStats, { pages: 3, undeclaredColumns: [':@computed_region_x', 'new_col'] });
    // The notice links the run's report (named by the execution) and the dataset's history page.
    assert.match(String(r.notices[0]!.message.report), new RegExp(`^s3://[a-z0-9.-]+/reports/sf-fire-incidents/${EXECUTION_NAME}\\.html$`));
    assert.match(String(r.notices[0]!.message.history), /^s3:\/\/[a-z0-9.-]+\/reports\/sf-fire-incidents\/index\.html$/);
    assert.equal(String(r.notices[0]!.message.report).split('/')[2], String(r.notices[0]!.message.history).split('/')[2], 'same bucket');
    // The last invocation's (cumulative) schema drift reaches the transform task as UNDECLARED_COLUMNS.
    const overrides = (r.calls.RunTransform![0] as { Overrides: { ContainerOverrides: Array<{ Environment: Array<{ Name: string; Value: string }> }> } }).Overrides;
    const env = Object.fromEntries(overrides.ContainerOverrides[0]!.Environment.map((e) => [e.Name, e.Value]));
    assert.deepEqual(JSON.parse(env.UNDECLARED_COLUMNS!), [':@computed_region_x', 'new_col']);
    assert.equal(env.RUN_ID, EXECUTION_NAME);
  });

  for (const error of ['Lambda.ServiceException', 'Lambda.TooManyRequestsException', 'Error']) {
    test(`a transient Lambda error (${error}) is retried with the same cursor, then the run succeeds`, async () => {
      const r = await execute({}, happyHandlers({
        FetchPage: (_i, n) => {
          if (n === 1) throw new TaskError(error, 'socket hang up');
          return happyHandlers().FetchPage!(_i, n);
        },
      }));
      assertSucceeded(r);
      assert.equal(r.calls.FetchPage!.length, 2);
      assert.deepEqual(fetchPayloads(r)[1], fetchPayloads(r)[0]);
    });
  }

  test('a fetch that keeps failing ends in the failure notice with the fetch error', async () => {
    const r = await execute({}, happyHandlers({
      FetchPage: () => {
        throw new TaskError('SocrataRequestError', 'data.example.org answered 500 three times');
      },
    }));
    assertFailed(r, 'SocrataRequestError');
    assert.equal(r.calls.FetchPage!.length, 3, 'first try and two retries');
  });
});

describe('crawler', () => {
  test('no schema drift: the crawler is skipped and the transform runs after the flush wait', async () => {
    const r = await execute({}, happyHandlers());
    assertSucceeded(r);
    const at = (s: string) => r.path.indexOf(s);
    assert.ok(at('WaitForFirehoseFlush') < at('SchemaDrifted') && at('SchemaDrifted') + 1 === at('RunTransform'), r.path.join(' > '));
    assert.equal(r.calls.StartCrawler, undefined);
    assert.equal(r.calls.GetCrawler, undefined);
  });

  test('schema drift in the last fetch stats: the crawler runs (and is waited for) before the transform', async () => {
    const r = await execute({}, drifted());
    assertSucceeded(r);
    const at = (s: string) => r.path.indexOf(s);
    assert.ok(at('SchemaDrifted') < at('StartCrawler') && at('GetCrawler') < at('RunTransform'), r.path.join(' > '));
    assert.equal(r.calls.StartCrawler!.length, 1);
  });

  test('drift seen on an earlier page counts: the stats are cumulative, the last invocation carries them', async () => {
    const pages = [{ done: false, cursor: { page: 1 } }, { done: true, cursor: null }];
    const r = await execute({}, happyHandlers({
      FetchPage: (_i, n) => ({ StatusCode: 200, Payload: { runId: EXECUTION_NAME, ...pages[n - 1]!, stats: { pages: n, undeclaredColumns: ['new_col'] } } }),
    }));
    assertSucceeded(r);
    assert.equal(r.calls.StartCrawler!.length, 1);
  });

  test('already running: StartCrawler is retried until the running crawl ends, then ours runs', async () => {
    const r = await execute({}, drifted({
      StartCrawler: (_i, n) => {
        if (n <= 2) throw new TaskError('Glue.CrawlerRunningException', 'Crawler with name x has already started');
        return {};
      },
    }));
    assertSucceeded(r);
    assert.equal(r.calls.StartCrawler!.length, 3);
  });

  test('polled while RUNNING / STOPPING, the transform runs once READY with a SUCCEEDED crawl', async () => {
    const states = ['RUNNING', 'STOPPING', 'READY'];
    const r = await execute({}, drifted({
      GetCrawler: (_i, n) => ({ Crawler: { State: states[n - 1]!, ...(n === 3 ? { LastCrawl: { Status: 'SUCCEEDED' } } : {}) } }),
    }));
    assertSucceeded(r);
    assert.equal(r.calls.GetCrawler!.length, 3);
    assert.equal(r.path.filter((s) => s === 'WaitForCrawler').length, 3);
  });

  for (const status of ['FAILED', 'CANCELLED']) {
    test(`crawl ${status}: no transform, failure notice CrawlNotSucceeded`, async () => {
      const r = await execute({}, drifted({
        GetCrawler: () => ({ Crawler: { State: 'READY', LastCrawl: { Status: status, ErrorMessage: 'x' } } }),
      }));
      assertFailed(r, 'CrawlNotSucceeded');
      assert.equal(r.calls.RunTransform, undefined);
      assert.ok(ran(r, 'CrawlNotSucceeded'));
    });
  }

  test('READY without a last crawl (never crawled) is not a success either', async () => {
    const r = await execute({}, drifted({ GetCrawler: () => ({ Crawler: { State: 'READY' } }) }));
    assertFailed(r, 'CrawlNotSucceeded');
  });
});

describe('transform task', () => {
  test('exit 0: success notice, lease released', async () => {
    const r = await execute({}, happyHandlers());
    assertSucceeded(r);
    const run = r.calls.RunTransform![0] as { Overrides: { ContainerOverrides: Array<{ Environment: unknown[] }> } };
    assert.deepEqual(run.Overrides.ContainerOverrides[0]!.Environment, [
      { Name: 'RUN_ID', Value: EXECUTION_NAME },
      { Name: 'UNDECLARED_COLUMNS', Value: '[]' },
    ]);
  });

  test('exit 3: failure notice TransformFailed, lease released on the failure path', async () => {
    const r = await execute({}, happyHandlers({
      RunTransform: () => ({ TaskArn: 't', Containers: [{ Name: 'transform', ExitCode: 3 }] }),
    }));
    assertFailed(r, 'TransformFailed');
    assert.equal(r.calls.ReleaseLease, undefined);
  });

  test('a task that never started (no exit code) fails the run', async () => {
    const r = await execute({}, happyHandlers({
      RunTransform: () => ({ TaskArn: 't', Containers: [{ Name: 'transform', Reason: 'CannotPullContainerError' }], StoppedReason: 'CannotPullContainerError' }),
    }));
    assertFailed(r, 'TransformFailed');
  });

  for (const error of ['AmazonECS.Unknown', 'ECS.AmazonECSException']) {
    test(`RunTask capacity failure (${error}) is retried, then the run succeeds`, async () => {
      const r = await execute({}, happyHandlers({
        RunTransform: (i, n) => {
          if (n <= 2) throw new TaskError(error, 'Failures: [{"reason":"Capacity is unavailable at this time"}]');
          return happyHandlers().RunTransform!(i, n);
        },
      }));
      assertSucceeded(r);
      assert.equal(r.calls.RunTransform!.length, 3);
    });
  }

  test('RunTask capacity failure that persists ends in the failure notice', async () => {
    const r = await execute({}, happyHandlers({
      RunTransform: () => {
        throw new TaskError('AmazonECS.Unknown', 'Capacity is unavailable at this time');
      },
    }));
    assertFailed(r, 'AmazonECS.Unknown');
    assert.equal(r.calls.RunTransform!.length, 6, 'first try and five retries');
  });
});

describe('run lease', () => {
  test('another run holds the lease: SkippedOverlappingRun, nothing fetched, no notice, the lease left alone', async () => {
    const r = await execute({ mode: 'incremental' }, happyHandlers({
      AcquireLease: () => ({ acquired: false, holder: 'run-earlier', expiresAt: '2026-01-01T09:00:00.000Z' }),
    }));
    assert.equal(r.status, 'SUCCEEDED');
    assert.deepEqual(r.path, ['CheckInput', 'UseRequestedMode', 'AcquireLease', 'HoldsRunLease', 'SkippedOverlappingRun']);
    assert.equal(r.calls.FetchPage, undefined);
    assert.equal(r.calls.ReleaseLease, undefined);
    assert.equal(r.calls.ReleaseLeaseAfterFailure, undefined);
    assert.deepEqual(r.notices, []);
    assert.deepEqual((r.output as { lease: unknown }).lease, { acquired: false, holder: 'run-earlier', expiresAt: '2026-01-01T09:00:00.000Z' });
  });

  test('the lease Lambda failing for good fails the run with a notice', async () => {
    const r = await execute({}, happyHandlers({
      AcquireLease: () => {
        throw new TaskError('Lambda.ServiceException', 'Service unavailable');
      },
    }));
    assertFailed(r, 'Lambda.ServiceException');
    assert.equal(r.calls.AcquireLease!.length, 5);
  });

  test('a release that fails after a good transform fails the run loudly (the next runs would skip)', async () => {
    const r = await execute({}, happyHandlers({
      ReleaseLease: () => {
        throw new TaskError('PreconditionFailedError', 'lease rewritten');
      },
    }));
    assertFailed(r, 'PreconditionFailedError');
  });
});

describe('SNS failures', () => {
  test('success notice cannot be sent: the run still succeeds (data is in), ending SucceededWithoutNotification', async () => {
    const r = await execute({}, happyHandlers({
      NotifySuccess: () => {
        throw new TaskError('SNS.KMSAccessDeniedException', 'key disabled');
      },
    }));
    assert.equal(r.status, 'SUCCEEDED');
    assert.deepEqual(r.path.slice(-3), ['ReleaseLease', 'NotifySuccess', 'SucceededWithoutNotification']);
    assert.equal(r.calls.NotifySuccess!.length, 3, 'first try and two retries');
    assert.deepEqual(r.notices, []);
  });

  test('failure notice cannot be sent: the lease is still released and the run still fails', async () => {
    const r = await execute({}, happyHandlers({
      RunTransform: () => ({ TaskArn: 't', Containers: [{ ExitCode: 3 }] }),
      NotifyFailure: () => {
        throw new TaskError('SNS.AuthorizationErrorException', 'not authorized');
      },
    }));
    assert.equal(r.status, 'FAILED');
    assert.equal(r.error, 'IngestionRunFailed');
    assert.deepEqual(r.path.slice(-3), ['NotifyFailure', 'ReleaseLeaseAfterFailure', 'RunFailed']);
    assert.equal(r.calls.ReleaseLeaseAfterFailure!.length, 1);
    assert.deepEqual(r.notices, []);
  });
});

const payloadsOf = (r: RunResult, state: string) => (r.calls[state] ?? []).map((c) => (c as { Payload: Record<string, unknown> }).Payload);
const exit = (code: number) => ({ TaskArn: 't', Containers: [{ Name: 'transform', ExitCode: code }] });

describe('key scan and repair (deletions, issue 10)', () => {
  test('key scan loop: after the row fetch, done:false twice then true, each call given the cursor the previous returned; then the flush wait', async () => {
    const scans = [
      { done: false, cursor: { afterId: 'a' } },
      { done: false, cursor: { afterId: 'b' } },
      { done: true, cursor: null },
    ];
    const r = await execute({}, happyHandlers({
      ScanKeys: (_i, n) => ({ StatusCode: 200, Payload: { runId: EXECUTION_NAME, phase: 'keys', ...scans[n - 1]!, stats: { keys: n } } }),
    }));
    assertSucceeded(r);
    const payloads = payloadsOf(r, 'ScanKeys');
    assert.deepEqual(payloads.map((p) => p.cursor), [null, { afterId: 'a' }, { afterId: 'b' }]);
    assert.ok(payloads.every((p) => p.phase === 'keys' && p.runId === EXECUTION_NAME));
    const at = (s: string) => r.path.indexOf(s);
    assert.ok(at('FetchDone') < at('StartKeyScan') && at('ScanKeys') < at('WaitForFirehoseFlush') && at('WaitForFirehoseFlush') < at('RunTransform'), r.path.join(' > '));
    assert.equal(ran(r, 'StartRepair'), false, 'exit 0: no repair');
  });

  test('a key scan that keeps failing ends in the failure notice; nothing is transformed', async () => {
    const r = await execute({}, happyHandlers({
      ScanKeys: () => {
        throw new TaskError('SocrataRequestError', 'HTTP 503');
      },
    }));
    assertFailed(r, 'SocrataRequestError');
    assert.equal(r.calls.ScanKeys!.length, 3, 'first try and two retries');
    assert.equal(ran(r, 'RunTransform'), false);
  });

  test('exit 5 (repair needed): the repair loop runs, Firehose flushes, the transform runs again and the run succeeds', async () => {
    const repairs = [
      { done: false, cursor: { chunk: 1 } },
      { done: true, cursor: null },
    ];
    const r = await execute({}, drifted({
      RunTransform: (_i, n) => (n === 1 ? exit(5) : exit(0)),
      RepairRows: (_i, n) => ({ StatusCode: 200, Payload: { runId: EXECUTION_NAME, phase: 'repair', ...repairs[n - 1]!, stats: { rowsDelivered: n } } }),
    }));
    assertSucceeded(r);
    assert.equal(r.calls.RunTransform!.length, 2);
    assert.deepEqual(payloadsOf(r, 'RepairRows').map((p) => [p.phase, p.cursor]), [['repair', null], ['repair', { chunk: 1 }]]);
    const at = (s: string) => r.path.indexOf(s);
    assert.ok(at('RepairRows') < at('WaitForRepairFlush') && at('WaitForRepairFlush') < r.path.lastIndexOf('RunTransform'), r.path.join(' > '));
    assert.equal(r.path.filter((s) => s === 'StartCrawler').length, 1, 'no second crawl');
  });

  test('exit 5 again after the repair: bounded to once, failure notice RepairDidNotReconcile', async () => {
    // Bounded here too: an unbounded repair loop ends with this error instead of hanging the test.
    const r = await execute({}, happyHandlers({
      RunTransform: (_i, n) => {
        if (n > 2) throw new TaskError('TransformLoopedPastOneRepair');
        return exit(5);
      },
    }));
    assertFailed(r, 'RepairDidNotReconcile');
    assert.equal(r.calls.RunTransform!.length, 2);
    assert.equal(r.calls.RepairRows!.length, 1);
  });

  test('exit 4 (mass delete refused): failure notice MassDeleteRefused, no repair, lease released on the failure path', async () => {
    const r = await execute({}, happyHandlers({ RunTransform: () => exit(4) }));
    assertFailed(r, 'MassDeleteRefused');
    assert.match(String((r.notices[0]!.message.error as { Cause?: string }).Cause), /nothing was deleted/);
    assert.equal(ran(r, 'StartRepair'), false);
    assert.equal(r.calls.ReleaseLease, undefined);
  });
});
