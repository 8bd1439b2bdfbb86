/**
 * Lambda entry point: read the configuration, wire the collaborators, run one time-boxed slice of
 * the fetch, publish metrics. The local pipeline imports and calls this same function.
 */
import { FirehoseClient } from '@aws-sdk/client-firehose';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { boundedRequestHandler, S3_REQUEST_TIMEOUT_MS } from '../../runtime/aws-request-handler';
import { fetchStatsRecord, writeFetchStats, type FetchPhase, type PhaseOutcome } from '../../runtime/fetch-run-stats';
import { FETCHER_PHASE, RUN_MODES, type FetcherPhase, type FetcherRequest } from '../../runtime/run-protocol';
import { openObjectStore } from '../../runtime/object-store';
import { getAppToken } from './app-token';
import { redactError, redactor } from './redact';
import { CheckpointStore } from './checkpoint-store';
import { readFetcherConfig } from './config';
import { runFetch, type CountStat, type FetchCursor, type FetchOutput, type FetchStats } from './fetch-run';
import { DirectObjectDelivery } from './direct-delivery';
import { FirehoseDelivery } from './firehose-delivery';
import { logger, metrics, tracer } from './powertools';
import { defaultRetryPolicy } from './retry-policy';
import { openSource } from './sources/registry';
import { runKeyScan, type KeyScanCursor, type KeyScanOutput } from './key-scan';
import { runRepair, type RepairCursor, type RepairOutput } from './repair';

/**
 * `phase` (default "rows"): "rows" fetches changed rows from the checkpoint; "keys" scans the
 * source's key set for deletion detection (key-scan.ts); "repair" fetches the rows the transform
 * found missing from curated (repair.ts). Each returns `done` and a cursor to pass back.
 */
export type { FetcherPhase };

/** The row fetch (the default phase). */
export type FetcherEvent = FetcherRequest<typeof FETCHER_PHASE.fetch, FetchCursor>;

export type KeyScanEvent = FetcherRequest<typeof FETCHER_PHASE.keys, KeyScanCursor> & { readonly phase: typeof FETCHER_PHASE.keys };

export type RepairEvent = FetcherRequest<typeof FETCHER_PHASE.repair, RepairCursor> & { readonly phase: typeof FETCHER_PHASE.repair };

export type AnyFetcherEvent = FetcherEvent | KeyScanEvent | RepairEvent;

/** Each phase's answer: callers that pass a row-fetch event get a FetchOutput back. */
export type FetcherOutput<E extends AnyFetcherEvent = AnyFetcherEvent> = E extends KeyScanEvent ? KeyScanOutput : E extends RepairEvent ? RepairOutput : FetchOutput;

/** The part of the Lambda context the fetcher uses; the local runner provides just this. */
export interface FetcherContext {
  getRemainingTimeInMillis(): number;
  awsRequestId: string;
}

/**
 * What the fetcher runs with. In Lambda, the function's environment and the SDK's own credential
 * chain; a local caller (the local pipeline, tests, the bench) passes its own, so nothing it
 * configures goes through `process.env`.
 */
export interface FetcherHost {
  /** The variables of runtime/fetcher-environment.ts (and the AWS_ENDPOINT_URL_* / AWS_REGION the SDK knows). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** For endpoints that ignore credentials (local servers); default: the SDK's provider chain. */
  readonly credentials?: { accessKeyId: string; secretAccessKey: string };
}

// SDK clients are created once per process. They are keyed by endpoint and credentials so a local
// process that starts several local endpoints (tests) never sends to a stale one.
const clients = new Map<string, unknown>();
function client<T>(host: FetcherHost, kind: string, endpointVar: string, create: (config: { endpoint?: string; region?: string; credentials?: FetcherHost['credentials'] }) => T): T {
  const endpoint = host.env[endpointVar] || undefined;
  const region = host.env.AWS_REGION || undefined;
  const key = `${kind}|${endpoint ?? ''}|${region ?? ''}|${host.credentials?.accessKeyId ?? ''}`;
  let c = clients.get(key) as T | undefined;
  if (!c) {
    const config = { ...(endpoint ? { endpoint } : {}), ...(region ? { region } : {}), ...(host.credentials ? { credentials: host.credentials } : {}) };
    c = tracer.captureAWSv3Client(create(config) as object) as T;
    clients.set(key, c);
  }
  return c;
}
// One retry layer for Firehose: FirehoseDelivery re-sends only the failed entries with its own
// backoff, so the SDK's retries (3 attempts by default) would multiply every wait.
// Every client gets connection and request timeouts (the SDK has none by default: an endpoint
// that accepts the connection and never answers would hang the invocation until Lambda kills it).
// requestTimeout ends at the response headers and socketTimeout bounds idle bodies; calls that
// matter also pass an abortSignal deadline (firehose-delivery.ts, app-token.ts).
const firehose = (host: FetcherHost) =>
  client(host, 'firehose', 'AWS_ENDPOINT_URL_FIREHOSE', (c) => new FirehoseClient({ ...c, maxAttempts: 1, requestHandler: boundedRequestHandler(FIREHOSE_CALL_TIMEOUT_MS) }));
const s3 = (host: FetcherHost) => client(host, 's3', 'AWS_ENDPOINT_URL_S3', (c) => new S3Client({ ...c, requestHandler: boundedRequestHandler(S3_REQUEST_TIMEOUT_MS) }));
const secrets = (host: FetcherHost) =>
  client(host, 'secrets', 'AWS_ENDPOINT_URL_SECRETS_MANAGER', (c) => new SecretsManagerClient({ ...c, requestHandler: boundedRequestHandler(10_000) }));

const FIREHOSE_CALL_TIMEOUT_MS = 30_000;

export type FetcherHandler = <E extends AnyFetcherEvent>(event: E, context: FetcherContext) => Promise<FetcherOutput<E>>;

/** The fetcher for a host: the Lambda's is `handler`; a local caller makes its own. */
export function fetcherHandler(host: FetcherHost): FetcherHandler {
  return async <E extends AnyFetcherEvent>(event: E, context: FetcherContext) => (await handle(event, context, host)) as FetcherOutput<E>;
}

/** The Lambda entry point: the function's own environment, read at each invocation. */
export const handler: FetcherHandler = fetcherHandler({ env: process.env });

async function handle(event: AnyFetcherEvent, context: FetcherContext, host: FetcherHost): Promise<FetcherOutput> {
  if (!event || typeof event.runId !== 'string' || !event.runId) {
    throw new Error(`Fetcher input must be { runId, phase?, mode?, cursor? }; got ${JSON.stringify(event).slice(0, 200)}`);
  }
  const phases: readonly string[] = Object.values(FETCHER_PHASE);
  const phase = event.phase ?? FETCHER_PHASE.fetch;
  if (!phases.includes(phase)) {
    throw new Error(`Fetcher phase must be ${oneOf(phases)}, not ${JSON.stringify(event.phase)}`);
  }
  const mode = 'mode' in event ? event.mode : undefined;
  if (mode !== undefined && !(RUN_MODES as readonly string[]).includes(mode)) {
    throw new Error(`Fetcher mode must be ${oneOf(RUN_MODES)}, not ${JSON.stringify(mode)}`);
  }
  const config = readFetcherConfig(host.env);
  // Powertools reads these once, at import; a host's own apply at each invocation.
  const logLevel = host.env.POWERTOOLS_LOG_LEVEL?.trim();
  if (logLevel) logger.setLogLevel(logLevel as Parameters<typeof logger.setLogLevel>[0]);
  const publishMetrics = host.env.POWERTOOLS_METRICS_DISABLED !== 'true';
  logger.appendKeys({ dataset: config.datasetName, runId: event.runId, requestId: context.awsRequestId });
  metrics.addDimension('Dataset', config.datasetName);

  let sourceRetries = 0;
  // Kept only to redact it from a failure; never logged or returned.
  let appToken: string | undefined;
  const secretName = config.appTokenSecretName;
  const source = openSource(config, {
    ...(secretName
      ? { appToken: async () => (appToken = await getAppToken(secrets(host), secretName)) }
      : config.appToken
        ? { appToken: async () => (appToken = config.appToken) }
        : {}),
    s3: () => s3(host),
    onRetry: ({ attempt, delayMs, reason, url }) => {
      sourceRetries++;
      logger.warn('retrying source request', { attempt, delayMs, reason, url });
    },
  });
  const stateStore = openObjectStore(config.stateLocation, () => s3(host));
  const settings = config;
  // The invocation's figures for the run report, written once its work is delivered: a failure
  // here fails the invocation (retried with the same cursor, which rewrites the same object).
  // The report's phase durations start at the earliest invocation's start of each phase.
  const invocationStart = new Date().toISOString();
  const recordRun = async <T extends PhaseOutcome>(out: T, p: FetchPhase): Promise<T> => {
    await writeFetchStats(stateStore, fetchStatsRecord(config.datasetName, event.runId, p, { ...out, startedAt: invocationStart }, new Date()));
    return out;
  };
  const common = {
    source,
    clock: () => new Date(),
    remainingTimeMs: () => context.getRemainingTimeInMillis(),
    logger: {
      info: (message: string, extra?: Record<string, unknown>) => logger.info(message, extra ?? {}),
      warn: (message: string, extra?: Record<string, unknown>) => logger.warn(message, extra ?? {}),
    },
    sourceRetries: () => sourceRetries,
  };
  try {
    if (phase === FETCHER_PHASE.keys) {
      const out = await runKeyScan(
        { runId: event.runId, cursor: (event.cursor as KeyScanCursor | null | undefined) ?? null },
        { ...settings, detect: config.deletions.detect, scanEveryHours: config.deletions.scanEveryHours },
        { ...common, store: stateStore },
      );
      const before = (event.cursor as KeyScanCursor | null | undefined)?.stats;
      metrics.addMetric('KeysScanned', MetricUnit.Count, out.stats.keys - (before?.keys ?? 0));
      if (out.done && !out.skipped) metrics.addMetric('KeyScansCompleted', MetricUnit.Count, 1);
      return await recordRun(out, 'keys');
    }
    if (phase === FETCHER_PHASE.repair) {
      const out = await runRepair({ runId: event.runId, cursor: (event.cursor as RepairCursor | null | undefined) ?? null }, settings, {
        ...common,
        delivery: new FirehoseDelivery(firehose(host), config.deliveryStreamName, defaultRetryPolicy(8), 4, FIREHOSE_CALL_TIMEOUT_MS),
        store: stateStore,
      });
      const before = (event.cursor as RepairCursor | null | undefined)?.stats;
      metrics.addMetric('RowsRepaired', MetricUnit.Count, out.stats.rowsDelivered - (before?.rowsDelivered ?? 0));
      return await recordRun(out, 'repair');
    }
    const before = (event.cursor as FetchCursor | null | undefined)?.stats;
    const out = await runFetch(
      { runId: event.runId, ...(mode ? { mode } : {}), cursor: (event.cursor as FetchCursor | null | undefined) ?? null },
      config,
      {
        ...common,
        delivery: new FirehoseDelivery(firehose(host), config.deliveryStreamName, defaultRetryPolicy(8), 4, FIREHOSE_CALL_TIMEOUT_MS),
        checkpoints: new CheckpointStore(stateStore, config.datasetName),
        // A parallel backfill writes its rows to the raw zone itself (direct-delivery.ts says why).
        parallelDelivery: new DirectObjectDelivery(stateStore, config.datasetName, event.runId),
        stateStore,
      },
    );
    recordMetrics(out.stats, before);
    return await recordRun(out, 'rows');
  } catch (err) {
    // Last line of defence: whatever a source echoed into a message, the token does not reach
    // the log, the Step Functions error or the failure notice.
    redactError(err, redactor([appToken]));
    logger.error('fetch failed; checkpoint left at the last fully delivered page', err as Error);
    metrics.addMetric('FetchFailures', MetricUnit.Count, 1);
    throw err;
  } finally {
    if (publishMetrics) metrics.publishStoredMetrics();
    else {
      // What publishing would have cleared, so the next invocation starts as clean.
      metrics.clearMetrics();
      metrics.clearDimensions();
      metrics.clearMetadata();
    }
    logger.removeKeys(['dataset', 'runId', 'requestId']);
  }
}

/** `"a", "b" or "c"`: the values an input may take, for its error message. */
function oneOf(values: readonly string[]): string {
  const quoted = values.map((v) => `"${v}"`);
  return quoted.length > 1 ? `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}` : (quoted[0] ?? '');
}

/**
 * The invocation's counted figures sent as metrics, each under its figure's name capitalised
 * (RowsFetched), but for the renamed ones.
 */
const METRIC_STATS: readonly CountStat[] = [
  ...['rowsFetched', 'rowsDelivered', 'rowsQuarantined', 'pages', 'firehoseRecords', 'directObjects', 'bytesDelivered'] as const,
  ...['sourceRetries', 'firehoseRetriedRecords', 'firehoseThrottledCalls', 'quarantinedRejected', 'timeBudgetDeferrals'] as const,
];
const RENAMED_METRICS: Partial<Record<CountStat, string>> = { quarantinedRejected: 'RowsRejectedByFirehose' };

/** Metrics for this invocation only: the cursor carries cumulative totals. */
function recordMetrics(after: FetchStats, before: FetchStats | undefined): void {
  for (const stat of METRIC_STATS) {
    const name = RENAMED_METRICS[stat] ?? `${stat[0]!.toUpperCase()}${stat.slice(1)}`;
    metrics.addMetric(name, stat === 'bytesDelivered' ? MetricUnit.Bytes : MetricUnit.Count, after[stat] - (before?.[stat] ?? 0));
  }
  // A level, not a delta: how many undeclared source columns the run has seen (alarm on > 0).
  metrics.addMetric('UndeclaredColumns', MetricUnit.Count, after.undeclaredColumns.length);
}
