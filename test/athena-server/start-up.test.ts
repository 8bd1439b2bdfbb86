/**
 * Right after Trino starts, a statement can be refused with NO_NODES_AVAILABLE before its
 * catalog's node is registered (seen in a fresh clone: `npm run query` failed that way). The
 * endpoint sends such a refused statement again; any other failure is Athena's FAILED at once.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AthenaClient } from '@aws-sdk/client-athena';
import { AthenaQueryRunner } from '../../containers/transform/src/athena-query';
import { startAthenaServer } from '../../local/athena-server';
import type { TrinoClient, TrinoResult } from '../../local/trino-client';

function stubTrino(answers: (Partial<TrinoResult> & { errorName?: string })[]): { trino: TrinoClient; calls: string[] } {
  const calls: string[] = [];
  const trino = {
    url: 'stub',
    execute: async (sql: string): Promise<TrinoResult> => {
      calls.push(sql);
      const a = answers[Math.min(calls.length - 1, answers.length - 1)]!;
      const error = a.errorName ? { message: `${a.errorName}: stub`, errorCode: 1, errorName: a.errorName, errorType: 'INTERNAL_ERROR' } : undefined;
      return { queryId: `q${calls.length}`, columns: a.columns ?? [], rows: a.rows ?? [], ...(error ? { error } : {}) };
    },
    cancel: async () => {},
  } as unknown as TrinoClient;
  return { trino, calls };
}

async function run(trino: TrinoClient, sql: string) {
  const server = await startAthenaServer({ trino, workgroups: { primary: { outputDir: '/tmp/athena-start-up-test' } } });
  const client = new AthenaClient({ endpoint: server.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  try {
    return await new AthenaQueryRunner(client, { workgroup: 'primary', pollInitialMs: 10, pollMaxMs: 50 }).execute(sql);
  } finally {
    client.destroy();
    await server.close();
  }
}

describe('local Athena endpoint during Trino start-up', () => {
  test('a statement refused with NO_NODES_AVAILABLE is sent again and succeeds', async () => {
    const ok = { columns: [{ name: 'n', type: 'bigint', typeSignature: { rawType: 'bigint', arguments: [] } }], rows: [[42]] };
    const { trino, calls } = stubTrino([{ errorName: 'NO_NODES_AVAILABLE' }, { errorName: 'NO_NODES_AVAILABLE' }, ok]);
    assert.deepEqual(await run(trino, 'SELECT count(*) AS n FROM t'), [{ n: 42 }]);
    assert.equal(calls.length, 3);
  });

  test('any other failure is FAILED at once, not retried', async () => {
    const { trino, calls } = stubTrino([{ errorName: 'COLUMN_NOT_FOUND' }]);
    await assert.rejects(run(trino, 'SELECT nope FROM t'), /FAILED: COLUMN_NOT_FOUND/);
    assert.equal(calls.length, 1);
  });
});
