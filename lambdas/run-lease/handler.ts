/**
 * Lambda entry point of the run lease: `{ action: "acquire" | "release", runId }` from the
 * ingestion state machine. A refused acquire is not an error: the state machine ends the run as
 * `SkippedOverlappingRun`, and this function counts it in the `SkippedRuns` metric.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { boundedRequestHandler, S3_REQUEST_TIMEOUT_MS } from '../../runtime/aws-request-handler';
import { openObjectStore } from '../../runtime/object-store';
import { leaseKey } from '../../runtime/storage-layout';
import { readRunLeaseConfig } from './config';
import { acquireLease, releaseLease, type AcquireResult, type ReleaseResult } from './run-lease';

export interface RunLeaseEvent {
  action: 'acquire' | 'release';
  runId: string;
}

const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'run-lease';
const logger = new Logger({ serviceName });
const metrics = new Metrics({ namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'SocrataPipeline', serviceName });
// Created once per process; keyed by the endpoint override so tests can point it at moto.
const s3Clients = new Map<string, S3Client>();
const s3 = (): S3Client => {
  const key = process.env.AWS_ENDPOINT_URL_S3 ?? '';
  let c = s3Clients.get(key);
  if (!c) s3Clients.set(key, (c = new S3Client({ requestHandler: boundedRequestHandler(S3_REQUEST_TIMEOUT_MS) })));
  return c;
};

export async function handler(event: RunLeaseEvent): Promise<AcquireResult | ReleaseResult> {
  if (!event || (event.action !== 'acquire' && event.action !== 'release') || typeof event.runId !== 'string' || !event.runId) {
    throw new Error(`Run-lease input must be { action: "acquire" | "release", runId }; got ${JSON.stringify(event).slice(0, 200)}`);
  }
  const config = readRunLeaseConfig();
  const deps = {
    store: openObjectStore(config.stateLocation, s3),
    key: leaseKey({ name: config.datasetName }),
    dataset: config.datasetName,
    leaseSeconds: config.leaseSeconds,
    clock: () => new Date(),
  };
  logger.appendKeys({ dataset: config.datasetName, runId: event.runId });
  try {
    if (event.action === 'release') {
      const out = await releaseLease(event.runId, deps);
      logger.info('run lease release', { ...out });
      return out;
    }
    const out = await acquireLease(event.runId, deps);
    if (!out.acquired) {
      logger.warn('another run holds the lease: this run is skipped', { holder: out.holder, expiresAt: out.expiresAt });
      metrics.addDimension('Dataset', config.datasetName);
      metrics.addMetric('SkippedRuns', MetricUnit.Count, 1);
      metrics.publishStoredMetrics();
    } else {
      logger.info('run lease acquired', { expiresAt: out.expiresAt });
    }
    return out;
  } finally {
    logger.removeKeys(['dataset', 'runId']);
  }
}
