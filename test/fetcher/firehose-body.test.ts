/**
 * PutRecordBatch's body built natively (firehose-delivery.ts putRecordBatchBody) instead of by the
 * SDK's serializer: the same JSON, sent by the real SDK client over real HTTP, with a matching
 * content-length and the records' exact bytes. Does not import ./harness (its Firehose mock would
 * replace the client's send).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { FirehoseClient, PutRecordBatchCommand } from '@aws-sdk/client-firehose';
import { BatchBodyBuffers, putRecordBatch, putRecordBatchBody } from '../../lambdas/fetcher/firehose-delivery';

/** Records whose lengths cross every base64 slice and padding case, and a UTF-8 row. */
const records = (): Buffer[] => [
  ...[1, 2, 3, 4, 49_151, 49_152, 49_153, 98_305, 1_000 * 1024].map((n) => randomBytes(n)),
  Buffer.from('{"address":"Café ☕, \\"quoted\\"","id":"1"}\n', 'utf8'),
];

const sdkJson = (stream: string, rs: Buffer[]): string => JSON.stringify({ DeliveryStreamName: stream, Records: rs.map((r) => ({ Data: r.toString('base64') })) });

describe('PutRecordBatch body built natively', () => {
  test('is byte for byte the JSON of the stream name and base64 records', () => {
    const rs = records();
    assert.equal(putRecordBatchBody('sf-fire-incidents-raw', rs).toString('utf8'), sdkJson('sf-fire-incidents-raw', rs));
    assert.equal(putRecordBatchBody('s', [rs[0]!]).toString('utf8'), sdkJson('s', [rs[0]!]));
    // A view into a larger buffer (a pooled record) encodes only its own bytes.
    const big = randomBytes(10_000);
    assert.equal(putRecordBatchBody('s', [big.subarray(5, 5_005)]).toString('utf8'), sdkJson('s', [big.subarray(5, 5_005)]));
  });

  describe('sent by the real SDK client over HTTP', () => {
    const received: { headers: http.IncomingHttpHeaders; body: Buffer }[] = [];
    let server: http.Server;
    let client: FirehoseClient;
    before(async () => {
      server = http.createServer((req, res) => {
        const parts: Buffer[] = [];
        req.on('data', (c: Buffer) => parts.push(c));
        req.on('end', () => {
          const body = Buffer.concat(parts);
          received.push({ headers: req.headers, body });
          const parsed = JSON.parse(body.toString('utf8')) as { DeliveryStreamName: string; Records: unknown[] };
          if (parsed.DeliveryStreamName === 'refused') {
            res.writeHead(500, { 'Content-Type': 'application/x-amz-json-1.1' });
            res.end(JSON.stringify({ __type: 'ServiceUnavailableException', message: 'slow down' }));
            return;
          }
          const n = parsed.Records.length;
          res.writeHead(200, { 'Content-Type': 'application/x-amz-json-1.1' });
          res.end(JSON.stringify({ FailedPutCount: 0, Encrypted: false, RequestResponses: Array.from({ length: n }, (_, i) => ({ RecordId: `r${i}` })) }));
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      client = new FirehoseClient({
        endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        region: 'us-east-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        maxAttempts: 1,
      });
    });
    after(async () => {
      client.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    });

    test('the body the endpoint receives is what the SDK itself would send, with its content-length and signature', async () => {
      const rs = records();
      const result = await putRecordBatch(client, 'sf-fire-incidents-raw', rs);
      assert.deepEqual(result.errors, rs.map(() => undefined));
      await client.send(new PutRecordBatchCommand({ DeliveryStreamName: 'sf-fire-incidents-raw', Records: rs.map((Data) => ({ Data })) }));
      const [ours, sdks] = received.slice(-2);
      assert.deepEqual(JSON.parse(ours!.body.toString('utf8')), JSON.parse(sdks!.body.toString('utf8')));
      assert.equal(ours!.headers['content-length'], String(ours!.body.length));
      assert.equal(ours!.headers['x-amz-target'], 'Firehose_20150804.PutRecordBatch');
      assert.match(String(ours!.headers.authorization), /^AWS4-HMAC-SHA256 /);
      const decoded = (JSON.parse(ours!.body.toString('utf8')) as { Records: { Data: string }[] }).Records.map((r) => Buffer.from(r.Data, 'base64'));
      assert.deepEqual(decoded, rs);
    });

    test('a reused body buffer carries each call\'s own records; a refused call\'s body is not reused', async () => {
      const bodies = new BatchBodyBuffers();
      const first = [randomBytes(3_000_000)];
      const second = [randomBytes(700), randomBytes(20_000)];
      await putRecordBatch(client, 'a', first, 30_000, bodies);
      assert.equal(bodies.available, 1, 'answered: its buffer is free again');
      await putRecordBatch(client, 'b', second, 30_000, bodies);
      assert.equal(bodies.available, 1, 'the second call took the same buffer and gave it back');
      const [a, b] = received.slice(-2).map((r) => JSON.parse(r.body.toString('utf8')) as { DeliveryStreamName: string; Records: { Data: string }[] });
      assert.deepEqual(a!.Records.map((r) => Buffer.from(r.Data, 'base64')), first);
      assert.equal(b!.DeliveryStreamName, 'b');
      assert.deepEqual(b!.Records.map((r) => Buffer.from(r.Data, 'base64')), second);
      // A call that fails keeps its buffer out of the pool (an aborted request may still be writing it).
      await assert.rejects(putRecordBatch(client, 'refused', second, 30_000, bodies), /slow down/);
      assert.equal(bodies.available, 0);
    });
  });
});
