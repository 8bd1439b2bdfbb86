/** Shared wiring for fetcher tests: the real fetch use case against the local Socrata server. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FirehoseClient, PutRecordBatchCommand, type PutRecordBatchCommandInput } from '@aws-sdk/client-firehose';
import { mockClient } from 'aws-sdk-client-mock';
import { LocalObjectStore } from '../../runtime/object-store';
import { CheckpointStore } from '../../lambdas/fetcher/checkpoint-store';
import { runFetch, type FetchInput, type FetchLogger, type FetchOutput, type FetchSettings } from '../../lambdas/fetcher/fetch-run';
import { FirehoseDelivery } from '../../lambdas/fetcher/firehose-delivery';
import { DirectObjectDelivery } from '../../lambdas/fetcher/direct-delivery';
import type { RetryPolicy } from '../../lambdas/fetcher/retry-policy';
import { SocrataClient, type SocrataApi, type PageQuery, type SourceRow, type StreamPageResult, type StreamQuery } from '../../lambdas/fetcher/sources/socrata/socrata-client';
import { SocrataSource } from '../../lambdas/fetcher/sources/socrata/socrata-source';
import type { KeysetPosition } from '../../lambdas/fetcher/sources/socrata/keyset';
import { gunzipSync } from 'node:zlib';
import type { SocrataServer } from '../../local/socrata-server';
import { serverIdentity } from '../support/source-identity';

export const firehoseMock = mockClient(FirehoseClient);

/** Records the delays asked for and yields without waiting them out. */
export function recordingRetry(maxAttempts: number, delays: number[] = []): RetryPolicy & { delays: number[] } {
  return {
    maxAttempts,
    baseDelayMs: 100,
    maxDelayMs: 5_000,
    random: () => 0.5,
    sleep: async (ms) => {
      delays.push(ms);
      await new Promise((r) => setImmediate(r));
    },
    delays,
  };
}

/** Every row Firehose accepted, parsed, plus the raw records. */
export interface Delivered {
  rows: Record<string, unknown>[];
  records: Buffer[];
  calls: PutRecordBatchCommandInput[];
}

/** A Firehose mock that accepts every record (unless `decide` rejects it) and keeps what it accepted. */
export function acceptingFirehose(decide?: (record: Buffer, call: number) => string | undefined): Delivered {
  const delivered: Delivered = { rows: [], records: [], calls: [] };
  firehoseMock.reset();
  firehoseMock.on(PutRecordBatchCommand).callsFake((input: PutRecordBatchCommandInput) => {
    delivered.calls.push(input);
    const call = delivered.calls.length;
    let failed = 0;
    const responses = (input.Records ?? []).map((r) => {
      const data = Buffer.from(r.Data!);
      const error = decide?.(data, call);
      if (error) {
        failed++;
        return { ErrorCode: error, ErrorMessage: 'injected' };
      }
      delivered.records.push(data);
      for (const line of data.toString('utf8').split('\n')) if (line) delivered.rows.push(JSON.parse(line) as Record<string, unknown>);
      return { RecordId: `r${delivered.records.length}` };
    });
    return { FailedPutCount: failed, Encrypted: false, RequestResponses: responses };
  });
  return delivered;
}

export interface Harness {
  store: LocalObjectStore;
  checkpoints: CheckpointStore;
  settings: FetchSettings;
  run(input: FetchInput, opts?: RunOptions): Promise<FetchOutput<KeysetPosition>>;
}

export interface RunOptions {
  remaining?: () => number;
  retry?: RetryPolicy;
  timeoutMs?: number;
  appToken?: string;
  logger?: FetchLogger;
  /** Wraps the source the fetch reads (to count or delay its requests). */
  wrapSource?: (source: TestSource) => TestSource;
  /** The Socrata API the client reads through (default SODA 2). */
  api?: SocrataApi;
}

export interface TestSource {
  streamPage(query: StreamQuery): Promise<StreamPageResult>;
  fetchPage(query: PageQuery): Promise<SourceRow[]>;
}

/** A logger that keeps every line, to assert on what would reach CloudWatch. */
export function capturingLogger(): FetchLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (message, extra) => lines.push(`INFO ${message} ${JSON.stringify(extra ?? {})}`),
    warn: (message, extra) => lines.push(`WARN ${message} ${JSON.stringify(extra ?? {})}`),
  };
}

/**
 * `opts.parallel`: parallel streams deliver as deployed, straight to the raw zone (the store), read
 * back with rawObjectRows; without it they share the Firehose mock with the single stream.
 */
/**
 * `overrides.source`: the source identity the checkpoint records (default: the server's own);
 * the rows are read from `server` whatever it says, as a misconfigured dataset would.
 */
export function harness(
  server: Pick<SocrataServer, 'url' | 'datasetId'>,
  overrides: Partial<FetchSettings> & { source?: { domain: string; datasetId: string } } = {},
  opts: { dir?: string; parallel?: boolean } = {},
): Harness {
  const { source: identity = serverIdentity(server), ...settingOverrides } = overrides;
  // A shared `dir` is the same raw bucket (checkpoints, quarantine) across harnesses.
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'fetcher-test-'));
  const store = new LocalObjectStore(dir);
  const settings: FetchSettings = {
    datasetName: 'sf-fire-incidents',
    primaryKey: 'id',
    pointColumns: ['point'],
    pageSize: 500,
    lookbackMinutes: 0,
    timeBudgetMarginMs: 1_000,
    ...settingOverrides,
  };
  const checkpoints = new CheckpointStore(store, settings.datasetName);
  const parallel = opts.parallel ?? false;
  return {
    store,
    checkpoints,
    settings,
    run: (input, opts = {}) => {
      let retries = 0;
      const client = new SocrataClient({
        datasetName: settings.datasetName,
        baseUrl: server.url,
        datasetId: server.datasetId,
        timeoutMs: opts.timeoutMs ?? 5_000,
        retry: opts.retry ?? recordingRetry(6),
        ...(opts.api ? { api: opts.api } : {}),
        ...(opts.appToken ? { appToken: () => Promise.resolve(opts.appToken) } : {}),
        onRetry: (info: { attempt: number; delayMs: number; reason: string; url: string }) => {
          retries++;
          opts.logger?.warn('retrying Socrata request', { ...info });
        },
      });
      return runFetch(input, settings, {
        source: new SocrataSource(opts.wrapSource ? opts.wrapSource(client) : client, identity, settings.primaryKey),
        ...(parallel ? { parallelDelivery: new DirectObjectDelivery(store, settings.datasetName, input.runId, () => new Date('2025-07-01T12:00:00.000Z')) } : {}),
        delivery: new FirehoseDelivery(new FirehoseClient({ region: 'us-east-1' }), 'test-stream', recordingRetry(6)),
        checkpoints,
        stateStore: store,
        clock: () => new Date('2025-07-01T12:00:00.000Z'),
        remainingTimeMs: opts.remaining ?? (() => 600_000),
        sourceRetries: () => retries,
        ...(opts.logger ? { logger: opts.logger } : {}),
      });
    },
  };
}

/** Ids sorted, for multiset comparison. */
export const sortedIds = (rows: readonly Record<string, unknown>[], field: string): string[] =>
  rows.map((r) => String(r[field])).sort();

/** Every raw row the fetcher wrote to the raw zone itself (direct and large-row objects), parsed. */
export async function rawObjectRows(store: LocalObjectStore, datasetName = 'sf-fire-incidents'): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for (const key of await store.list(`raw/${datasetName}/`)) {
    const obj = await store.get(key);
    for (const line of gunzipSync(obj!.body).toString('utf8').split('\n')) if (line) rows.push(JSON.parse(line) as Record<string, unknown>);
  }
  return rows;
}

/** The planner's requests, sent to the local server directly. */
export async function planRequest(server: Pick<SocrataServer, 'url' | 'datasetId'>, q: { select: string; where?: string; order?: string; limit: number; offset?: number }): Promise<Record<string, unknown>[]> {
  const params = new URLSearchParams({ $select: q.select, $limit: String(q.limit) });
  if (q.order) params.set('$order', q.order);
  if (q.offset) params.set('$offset', String(q.offset));
  if (q.where) params.set('$where', q.where);
  const res = await fetch(`${server.url}/resource/${server.datasetId}.json?${params.toString()}`);
  return (await res.json()) as Record<string, unknown>[];
}

/**
 * What a phase is given in the adapter tests (files, S3, the in-memory boundary source): the
 * source, a mocked Firehose, the checkpoint and state store, a fixed clock and the time left.
 */
export function wholeSourceDeps<S>(source: S, store: LocalObjectStore, checkpoints: CheckpointStore, remaining: () => number = () => 600_000) {
  return {
    source,
    delivery: new FirehoseDelivery(new FirehoseClient({ region: 'us-east-1' }), 'test-stream', recordingRetry(3)),
    checkpoints,
    stateStore: store,
    store,
    clock: () => new Date('2025-07-01T12:00:00.000Z'),
    remainingTimeMs: remaining,
  };
}

/**
 * Runs a fetch in invocations that each have the budget for `pagesPerInvocation` pages, passing
 * the cursor on (through JSON, as the state machine does) until it is done or 30 invocations pass.
 */
export async function fetchInSlices<P>(
  settings: FetchSettings,
  deps: (remaining: () => number) => Parameters<typeof runFetch<P>>[2],
  pagesPerInvocation = 2,
): Promise<{ out: FetchOutput<P>; invocations: number }> {
  const slice = (): (() => number) => {
    let n = 0;
    return () => (++n <= pagesPerInvocation ? 600_000 : 10);
  };
  let out = await runFetch({ runId: 'r1' }, settings, deps(slice()));
  let invocations = 1;
  while (!out.done && invocations < 30) {
    out = await runFetch({ runId: 'r1', cursor: JSON.parse(JSON.stringify(out.cursor)) as FetchOutput<P>['cursor'] }, settings, deps(slice()));
    invocations++;
  }
  return { out, invocations };
}
