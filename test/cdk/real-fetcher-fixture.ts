/**
 * The real fetcher handler's surroundings for a state-machine suite: the local Socrata and Firehose
 * endpoints over real HTTP, a raw directory, and the fetcher's environment pointing at them (one
 * attempt per request, so an injected 500 fails at once; logs silent, the failures are expected).
 * The environment is restored after the suite.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import type { DatasetConfig } from '../../runtime/dataset-config';
import { LocalObjectStore } from '../../runtime/object-store';
import { startFirehoseServer, streamsFromDatasets, type FirehoseServer } from '../../local/firehose-server';
import { localFetcherEnv } from '../../local/pipeline';
import { startSocrataServer, type SocrataServer } from '../../local/socrata-server';
import { fireIncidents, type DatasetOverrides } from '../support/dataset-builder';

export interface RealFetcherEndpoints {
  socrata: SocrataServer;
  firehose: FirehoseServer;
  rawDir: string;
  dataset: DatasetConfig;
}

export interface RealFetcherOptions {
  /** The fire-incidents definition's fetch settings for this suite. */
  fetch: DatasetOverrides['fetch'];
  rows: number;
  seed: number;
  /** Prefix of the raw directory's name under the system's temporary directory. */
  tmpPrefix: string;
}

/** Sets the endpoints up before the suite and hands them to `ready`; closes them after. */
export function realFetcherSuite(options: RealFetcherOptions, ready: (endpoints: RealFetcherEndpoints) => void): void {
  const savedEnv = { ...process.env };
  let endpoints: Partial<RealFetcherEndpoints> = {};
  before(async () => {
    const dataset = fireIncidents({ fetch: options.fetch });
    const rawDir = mkdtempSync(path.join(os.tmpdir(), options.tmpPrefix));
    const socrata = await startSocrataServer({ rows: options.rows, seed: options.seed });
    endpoints = { dataset, rawDir, socrata };
    const firehose = await startFirehoseServer({ store: new LocalObjectStore(rawDir), streams: streamsFromDatasets([dataset]) });
    endpoints.firehose = firehose;
    Object.assign(process.env, localFetcherEnv({ dataset, datasetId: socrata.datasetId, baseUrl: socrata.url, firehoseUrl: firehose.url, rawDir, marginMs: 0 }), {
      MAX_ATTEMPTS: '1',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
    });
    ready({ dataset, rawDir, socrata, firehose });
  });
  after(async () => {
    await endpoints.firehose?.close();
    await endpoints.socrata?.close();
    process.env = savedEnv;
  });
}
