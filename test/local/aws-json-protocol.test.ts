/**
 * The request handling both local AWS endpoints share (local/aws-json-protocol.ts): a body over
 * the endpoint's limit is answered with that endpoint's error (after the body is read, so the
 * client sees it), a body that is not a JSON object with SerializationException.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadDatasetFile } from '../../runtime/dataset-config';
import { startAthenaServer } from '../../local/athena-server';
import { startLocalFirehose } from '../../local/firehose-server';
import type { TrinoClient } from '../../local/trino-client';

const DATASET = loadDatasetFile(path.join(import.meta.dirname, '..', '..', 'datasets', 'sf-fire-incidents.json'));

async function post(endpoint: string, target: string, body: string): Promise<{ status: number; type: string | null; json: { __type?: string } }> {
  const res = await fetch(endpoint, { method: 'POST', headers: { 'x-amz-target': target, 'content-type': 'application/x-amz-json-1.1' }, body });
  return { status: res.status, type: res.headers.get('x-amzn-errortype'), json: (await res.json()) as { __type?: string } };
}

describe('local AWS JSON endpoints: request limits and shape', () => {
  test('Firehose: over 16 MiB is InvalidArgumentException; not a JSON object is SerializationException', async () => {
    const server = await startLocalFirehose({ dataDir: mkdtempSync(path.join(tmpdir(), 'ajp-')), datasets: [DATASET] });
    try {
      const big = await post(server.url, 'Firehose_20150804.PutRecordBatch', 'x'.repeat(16 * 1024 * 1024 + 1));
      assert.deepEqual([big.status, big.type], [400, 'InvalidArgumentException']);
      for (const body of ['{not json', '[1, 2]']) {
        const bad = await post(server.url, 'Firehose_20150804.ListDeliveryStreams', body);
        assert.deepEqual([bad.status, bad.json.__type], [400, 'SerializationException'], body);
      }
      assert.equal((await post(server.url, 'Firehose_20150804.ListDeliveryStreams', '')).status, 200, 'an empty body is {}');
    } finally {
      await server.close();
    }
  });

  test('Athena: over 2 MiB is InvalidRequestException; not a JSON object is SerializationException', async () => {
    const trino = { url: 'unused', execute: async () => ({ queryId: 'q', columns: [], rows: [] }), cancel: async () => {} } as unknown as TrinoClient;
    const server = await startAthenaServer({ trino, workgroups: { primary: { outputDir: mkdtempSync(path.join(tmpdir(), 'ajp-')) } } });
    try {
      const big = await post(server.endpoint, 'AmazonAthena.StartQueryExecution', 'x'.repeat(2 * 1024 * 1024 + 1));
      assert.deepEqual([big.status, big.type], [400, 'InvalidRequestException']);
      const bad = await post(server.endpoint, 'AmazonAthena.StartQueryExecution', '"a string"');
      assert.deepEqual([bad.status, bad.json.__type], [400, 'SerializationException']);
    } finally {
      await server.close();
    }
  });
});
