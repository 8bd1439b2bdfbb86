import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { startSocrataServer, type SocrataServer } from '../../local/socrata-server';
import { readFetcherConfig, FetcherConfigError } from '../../lambdas/fetcher/config';
import { acceptingFirehose, sortedIds } from './harness';
import { phaseDurationMs, readFetchFigures } from '../../runtime/fetch-run-stats';
import { LocalObjectStore } from '../../runtime/object-store';

const TOKEN = 'tok-SECRET-1234567890';
let server: SocrataServer;
const secretsMock = mockClient(SecretsManagerClient);

before(async () => {
  server = await startSocrataServer({ rows: 700, seed: 21 });
});
after(() => server.close());

/**
 * Runs `body` keeping the handler's JSON log lines (and warnings) written to stdout or stderr;
 * anything else (the test runner's own reports) passes through. The streams are restored after.
 */
async function withCapturedLogs<T>(body: () => Promise<T>): Promise<{ value: T; logs: string }> {
  const captured: string[] = [];
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  const capture = (chunk: unknown): boolean => {
    const text = String(chunk);
    if (text.startsWith('{') || text.includes('Warning')) captured.push(text);
    else out(chunk as string);
    return true;
  };
  process.stdout.write = capture as typeof process.stdout.write;
  process.stderr.write = capture as typeof process.stderr.write;
  try {
    const value = await body();
    return { value, logs: captured.join('') };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

function env(stateDir: string): Record<string, string> {
  return {
    AWS_REGION: 'us-east-1',
    DATASET_NAME: 'sf-fire-incidents',
    SOURCE_DOMAIN: 'data.sfgov.org',
    SOURCE_DATASET_ID: server.datasetId,
    SOURCE_BASE_URL: server.url,
    APP_TOKEN_SECRET_NAME: 'socrata/app-token',
    PRIMARY_KEY: 'id',
    POINT_COLUMNS: 'point',
    PAGE_SIZE: '250',
    LOOKBACK_MINUTES: '0',
    REQUEST_TIMEOUT_SECONDS: '5',
    MAX_ATTEMPTS: '3',
    DELIVERY_STREAM_NAME: 'sf-fire-incidents-raw',
    STATE_LOCATION: stateDir,
    TIME_BUDGET_MARGIN_MS: '1000',
  };
}

test('handler: sends the app token from Secrets Manager, never logs it, loops on done like the state machine', async () => {
  const testStart = Date.now();
  const stateDir = mkdtempSync(path.join(tmpdir(), 'fetcher-handler-'));
  Object.assign(process.env, env(stateDir));
  secretsMock.reset();
  secretsMock.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ appToken: TOKEN }) });
  const delivered = acceptingFirehose();
  // A server error makes the fetcher log a retry with the request URL.
  server.setFaults([{ kind: 'status', status: 500, requests: [2] }]);

  let invocations = 0;
  const { value: result, logs } = await withCapturedLogs(async () => {
    const { handler } = await import('../../lambdas/fetcher/handler');
    let pagesLeft = 0;
    const context = { awsRequestId: 'req-1', getRemainingTimeInMillis: () => (pagesLeft-- > 0 ? 60_000 : 0) };
    let cursor = null;
    let answer;
    do {
      // Two reads of the remaining time per invocation: one to prefetch a page, one to cover a retry wait.
      pagesLeft = 2;
      answer = await handler({ runId: 'run-handler', cursor }, context);
      cursor = answer.cursor;
      invocations++;
    } while (!answer.done);
    return answer;
  });
  assert.ok(invocations > 1);
  assert.deepEqual(sortedIds(delivered.rows, '_source_id'), sortedIds(server.rows, ':id'));
  const resourceRequests = server.requests.filter((r) => r.path.startsWith('/resource/'));
  assert.ok(resourceRequests.every((r) => r.appToken === TOKEN), 'every request carries X-App-Token');
  assert.equal(secretsMock.commandCalls(GetSecretValueCommand).length, 1, 'the secret is read once and cached');
  assert.match(logs, /retrying source request/, 'logs were captured');
  assert.match(logs, /"dataset":"sf-fire-incidents"/);
  assert.ok(!logs.includes(TOKEN), 'the token never appears in logs');
  assert.ok(!JSON.stringify(result).includes(TOKEN));
  // Each invocation's figures record when it started, so the report knows the phase's duration.
  const figures = await readFetchFigures(new LocalObjectStore(stateDir), 'sf-fire-incidents', 'run-handler');
  assert.equal(figures?.rows?.invocations, invocations);
  const started = Date.parse(figures!.rows!.startedAt!);
  assert.ok(started <= Date.parse(figures!.rows!.lastWrittenAt) && started >= testStart, `phase start ${figures!.rows!.startedAt}`);
  assert.ok(phaseDurationMs(figures!.rows!)! >= 0);
  // Each invocation publishes its own figures (the cursor carries the totals) as metrics in the
  // embedded metric format: summed over invocations they are the run's totals, under their names.
  const emf = logs.split('\n').filter((line) => line.includes('"_aws"')).map((line) => JSON.parse(line) as Record<string, unknown>);
  const total = (name: string): number => emf.reduce((sum, m) => sum + (typeof m[name] === 'number' ? (m[name] as number) : 0), 0);
  assert.equal(emf.length, invocations, 'one metrics document per invocation');
  assert.equal(total('RowsFetched'), server.rows.length);
  assert.equal(total('RowsDelivered'), server.rows.length);
  assert.equal(total('Pages'), (result.stats as { pages: number }).pages);
  assert.equal(total('SourceRetries'), 1, 'the one server error');
  assert.ok(total('BytesDelivered') > 0);
  const units = new Map(emf.flatMap((m) => (m._aws as { CloudWatchMetrics: { Metrics: { Name: string; Unit: string }[] }[] }).CloudWatchMetrics[0]!.Metrics.map((d) => [d.Name, d.Unit] as const)));
  assert.equal(units.get('BytesDelivered'), 'Bytes');
  assert.equal(units.get('RowsRejectedByFirehose'), 'Count');
  assert.equal(units.get('TimeBudgetDeferrals'), 'Count');
});

test('config: every missing or malformed variable is named in one error', () => {
  assert.throws(
    () => readFetcherConfig({ DATASET_NAME: 'x', PAGE_SIZE: 'lots' }),
    (e: unknown) =>
      e instanceof FetcherConfigError &&
      /SOURCE_DATASET_ID is not set/.test(e.message) &&
      /PAGE_SIZE="lots" must be an integer/.test(e.message) &&
      /DELIVERY_STREAM_NAME is not set/.test(e.message) &&
      /STATE_LOCATION is not set/.test(e.message),
  );
  // Pages above SODA 2.0's 50,000 are allowed (2.1 has no cap), up to the dataset schema's bound.
  assert.equal(readFetcherConfig({ ...env('/tmp/x'), PAGE_SIZE: '1000000' }).pageSize, 1_000_000);
  assert.throws(() => readFetcherConfig({ ...env('/tmp/x'), PAGE_SIZE: '1000001' }), /PAGE_SIZE="1000001" must be an integer between 1 and 1000000/);
  const c = readFetcherConfig({ ...env('/tmp/x'), SOURCE_BASE_URL: '', POINT_COLUMNS: '' });
  assert.equal(c.sourceBaseUrl, 'https://data.sfgov.org');
  assert.deepEqual(c.pointColumns, []);
  assert.equal(c.requestTimeoutMs, 5000);
});

test('config: the key scan cadence from DELETIONS_DETECT / KEY_SCAN_EVERY_HOURS, named when malformed; phases are checked', async () => {
  assert.deepEqual(readFetcherConfig(env('/tmp/x')).deletions, { detect: true, scanEveryHours: 0 });
  assert.deepEqual(readFetcherConfig({ ...env('/tmp/x'), DELETIONS_DETECT: 'false', KEY_SCAN_EVERY_HOURS: '6' }).deletions, { detect: false, scanEveryHours: 6 });
  assert.throws(
    () => readFetcherConfig({ ...env('/tmp/x'), DELETIONS_DETECT: 'yes', KEY_SCAN_EVERY_HOURS: 'daily' }),
    (e: unknown) => e instanceof FetcherConfigError && /DELETIONS_DETECT="yes" must be "true" or "false"/.test(e.message) && /KEY_SCAN_EVERY_HOURS="daily" must be a number of hours/.test(e.message),
  );
  const { handler } = await import('../../lambdas/fetcher/handler');
  await assert.rejects(
    handler({ runId: 'r', phase: 'delete-everything' } as never, { getRemainingTimeInMillis: () => 1_000, awsRequestId: 'x' }),
    /Fetcher phase must be "rows", "keys" or "repair", not "delete-everything"/,
  );
});

test('handler: a source echoing the token in every 500 body fails with no token in the error, the logs or the metrics', async () => {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'fetcher-handler-echo-'));
  Object.assign(process.env, env(stateDir), { MAX_ATTEMPTS: '2' });
  secretsMock.reset();
  secretsMock.on(GetSecretValueCommand).resolves({ SecretString: TOKEN });
  acceptingFirehose();
  const n = server.requests.filter((r) => r.path.startsWith('/resource/')).length;
  server.setFaults([{ kind: 'status', status: 500, body: `{"error":"upstream","headers":{"X-App-Token":"${TOKEN}"}}`, requests: [n + 1, n + 2] }]);
  const { value: error, logs } = await withCapturedLogs(async () => {
    const { handler } = await import('../../lambdas/fetcher/handler');
    return handler({ runId: 'run-echo' }, { awsRequestId: 'req-echo', getRemainingTimeInMillis: () => 600_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
  });
  assert.ok(error instanceof Error, 'the run failed');
  assert.match(error.message, /HTTP 500/);
  assert.match(error.message, /\[REDACTED\]/, 'the echoed body is shown, redacted');
  assert.match(logs, /fetch failed/);
  for (const text of [error.message, error.stack ?? '', logs]) assert.ok(!text.includes(TOKEN));
});
