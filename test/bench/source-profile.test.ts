/**
 * The shaping proxy of the benchmark's source profiles, over real HTTP. Only lower bounds on time
 * are asserted (a profile must never make a source faster than it says), with slack; the one
 * upper bound (concurrent requests are not serialized) is many times the expected figure.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { Link, LINK_CATCH_UP_MS, startSourceProfileProxy, type SourceProfile, type SourceProfileProxy } from '../../local/source-profile';

const MB1 = 1_000_000;
const body1MB = randomBytes(MB1);
/** A compressible body shaped like a page of rows (~1 MB). */
const rowsBody = Buffer.from(`[${Array.from({ length: 8_000 }, (_, i) => JSON.stringify({ id: String(i), battalion: `B0${i % 10}`, address: `${i} Market St` })).join(',\n')}]`);

interface Upstream {
  url: string;
  /** Body bytes the /endless handler has managed to hand to its socket. */
  endlessWritten: () => number;
  close: () => Promise<void>;
}

async function startUpstream(): Promise<Upstream> {
  let endlessWritten = 0;
  const server = http.createServer((req, res) => {
    if (req.url === '/one-mb') {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': MB1, 'X-Source': 'upstream' });
      // In 64 KiB writes, respecting backpressure, like the local Socrata server.
      let off = 0;
      const pump = (): void => {
        while (off < MB1) {
          const ok = res.write(body1MB.subarray(off, off + 65_536));
          off += 65_536;
          if (!ok) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    } else if (req.url === '/endless') {
      // 200 MB if anybody reads it all; written only as fast as the proxy takes it.
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      const piece = Buffer.alloc(65_536, 0x61);
      const pump = (): void => {
        while (endlessWritten < 200 * MB1) {
          endlessWritten += piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    } else if (req.url === '/cut') {
      // Chunked (no Content-Length), so only the missing last chunk tells that the body is cut.
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.write(Buffer.alloc(500, 0x62), () => res.socket?.destroy());
    } else if (req.url === '/rows') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': rowsBody.length });
      res.end(rowsBody);
    } else if (req.url === '/small') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('[]');
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain', 'X-Error-Code': 'no-such-thing' });
      res.end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    endlessWritten: () => endlessWritten,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  firstByteMs: number;
  totalMs: number;
}

function get(url: string, headers: http.OutgoingHttpHeaders = {}): Promise<Got> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        const firstByteMs = performance.now() - t0;
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts), firstByteMs, totalMs: performance.now() - t0 }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('source profile proxy', { timeout: 60_000 }, () => {
  let upstream: Upstream;
  const proxies: SourceProfileProxy[] = [];
  before(async () => {
    upstream = await startUpstream();
  });
  after(async () => {
    for (const p of proxies) await p.close();
    await upstream.close();
  });
  const proxy = async (profile: SourceProfile): Promise<SourceProfileProxy> => {
    const p = await startSourceProfileProxy(upstream.url, profile);
    proxies.push(p);
    return p;
  };

  test('1 MB through 200 ms + 2 MB/s takes at least latency + size ÷ bandwidth, bytes identical', async () => {
    const p = await proxy({ name: '200 ms + 2 MB/s', latencyMs: 200, bandwidthBytesPerSecond: 2 * MB1 });
    const got = await get(`${p.url}/one-mb`);
    assert.equal(got.status, 200);
    assert.equal(got.body.length, MB1);
    assert.equal(sha(got.body), sha(body1MB));
    assert.equal(got.headers['content-length'], String(MB1));
    assert.equal(got.headers['x-source'], 'upstream');
    assert.ok(got.firstByteMs >= 190, `first byte after ${got.firstByteMs.toFixed(0)} ms, latency is 200 ms`);
    // 0.2 s + (1 MB - one 16 KiB piece sent at once) / 2 MB/s ≈ 0.69 s; asserted with slack.
    assert.ok(got.totalMs >= 600, `1 MB took ${got.totalMs.toFixed(0)} ms, at least ~690 ms expected`);
    assert.equal(p.counters().bodyBytes, MB1);
  });

  test('a gzip profile gzips a 200 body for a client that asks, so the link carries fewer bytes; not otherwise', async () => {
    const p = await proxy({ name: '10 ms, gzip', latencyMs: 10, bandwidthBytesPerSecond: 50 * MB1, gzip: true });
    const zipped = await get(`${p.url}/rows`, { 'Accept-Encoding': 'gzip, deflate' });
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.equal(zipped.headers['content-length'], undefined);
    assert.equal(sha(gunzipSync(zipped.body)), sha(rowsBody));
    assert.ok(p.counters().bodyBytes < rowsBody.length / 3, `${p.counters().bodyBytes} bytes crossed the link for ${rowsBody.length}`);
    const plain = await get(`${p.url}/rows`);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(sha(plain.body), sha(rowsBody));
    // Without the profile's gzip, a client that asks still gets the body as the server sent it.
    const q = await proxy({ name: '10 ms', latencyMs: 10 });
    assert.equal((await get(`${q.url}/rows`, { 'Accept-Encoding': 'gzip' })).headers['content-encoding'], undefined);
  });

  test('without a bandwidth cap the body is still streamed whole and identical', async () => {
    const p = await proxy({ name: 'latency only', latencyMs: 50 });
    const got = await get(`${p.url}/one-mb`);
    assert.equal(sha(got.body), sha(body1MB));
    assert.ok(got.firstByteMs >= 45);
  });

  test('many concurrent requests each pay the latency, in parallel', async () => {
    const p = await proxy({ name: '300 ms', latencyMs: 300, bandwidthBytesPerSecond: 10 * MB1 });
    const n = 10;
    const t0 = performance.now();
    const all = await Promise.all(Array.from({ length: n }, () => get(`${p.url}/small`)));
    const total = performance.now() - t0;
    for (const g of all) {
      assert.equal(g.body.toString(), '[]');
      assert.ok(g.firstByteMs >= 290, `a request answered after ${g.firstByteMs.toFixed(0)} ms, before its 300 ms latency`);
    }
    assert.equal(p.counters().requests, n);
    // Serialized, they would take n × 300 ms; in parallel ~300 ms.
    assert.ok(total < n * 300, `${n} concurrent requests took ${total.toFixed(0)} ms: the proxy serialized them`);
  });

  test('a per-request pace holds each response to it, while concurrent responses add up on a fast link', async () => {
    const p = await proxy({ name: '2 MB/s a request', latencyMs: 0, perRequestBytesPerSecond: 2 * MB1, bandwidthBytesPerSecond: 100 * MB1 });
    const t0 = performance.now();
    const all = await Promise.all(Array.from({ length: 4 }, () => get(`${p.url}/one-mb`)));
    const total = performance.now() - t0;
    for (const g of all) {
      assert.equal(sha(g.body), sha(body1MB));
      // (1 MB - one piece sent at once) / 2 MB/s ≈ 0.49 s each, asserted with slack.
      assert.ok(g.totalMs >= 420, `a 1 MB response took ${g.totalMs.toFixed(0)} ms at 2 MB/s a request`);
    }
    // One shared 2 MB/s pace would take 4 × 0.49 s; four requests at their own pace take ~0.5 s.
    assert.ok(total < 1_500, `4 concurrent 1 MB responses took ${total.toFixed(0)} ms: the pace was shared, not per request`);
  });

  test('the link keeps its schedule when the proxy is a little late, and starts afresh after a pause', async () => {
    let t = 0;
    const waits: number[] = [];
    const link = new Link(1_000_000, () => t, async (ms) => void waits.push(ms)); // 1 MB/s: 1 ms per 1,000 bytes
    await link.take(10_000); // 0-10 ms
    t = 14; // the event loop ran this piece 4 ms late: it is booked at 10 ms, right after the last
    await link.take(10_000); // 10-20 ms
    t = 15;
    await link.take(10_000); // 20-30 ms: ahead of the clock, so it waits 5 ms
    assert.deepEqual(waits, [5]);
    t = 30 + LINK_CATCH_UP_MS + 1; // idle longer than the catch-up window: no burst, starts now
    await link.take(10_000);
    assert.deepEqual(waits, [5]);
    await link.take(10_000); // booked 10 ms after the previous start
    assert.deepEqual(waits, [5, 10]);
  });

  test('jitter adds to the latency, never subtracts', async () => {
    const p = await proxy({ name: 'jitter', latencyMs: 100, jitterMs: 100, seed: 3 });
    for (let i = 0; i < 3; i++) assert.ok((await get(`${p.url}/small`)).firstByteMs >= 95);
  });

  test('backpressure: a client that stops reading stops the upstream too (no whole body held)', async () => {
    const p = await proxy({ name: 'latency only', latencyMs: 1 });
    await new Promise<void>((resolve, reject) => {
      http
        .get(`${p.url}/endless`, (res) => {
          res.pause();
          setTimeout(() => {
            // Socket buffers on three hops, but far less than the 200 MB body.
            const written = upstream.endlessWritten();
            try {
              assert.ok(written < 20 * MB1, `upstream wrote ${written} bytes while the client read nothing`);
              res.destroy();
              resolve();
            } catch (err) {
              reject(err as Error);
            }
          }, 800);
        })
        .on('error', () => {});
    });
  });

  test('an upstream body cut short reaches the client cut short, not complete', async () => {
    const p = await proxy({ name: 'cut', latencyMs: 0 });
    await assert.rejects(get(`${p.url}/cut`), /aborted|ECONNRESET|socket hang up|terminated/);
  });

  test('status and headers pass through (a 404 stays a 404)', async () => {
    const p = await proxy({ name: 'status', latencyMs: 10 });
    const got = await get(`${p.url}/nothing-here?x=1`);
    assert.equal(got.status, 404);
    assert.equal(got.headers['x-error-code'], 'no-such-thing');
    assert.equal(got.body.toString(), 'not found');
  });

  test('an unreachable upstream answers 502 with a message naming it', async () => {
    const p = await startSourceProfileProxy('http://127.0.0.1:1', { name: 'dead', latencyMs: 0 });
    proxies.push(p);
    const got = await get(`${p.url}/x`);
    assert.equal(got.status, 502);
    assert.match(got.body.toString(), /source profile proxy: http:\/\/127\.0\.0\.1:1 failed: .*ECONNREFUSED/);
  });

  test('bad profiles and targets fail clearly', async () => {
    await assert.rejects(startSourceProfileProxy(upstream.url, { name: 'neg', latencyMs: -1 }), /source profile "neg": latencyMs and jitterMs must be ≥ 0/);
    await assert.rejects(startSourceProfileProxy(upstream.url, { name: 'zero', latencyMs: 0, bandwidthBytesPerSecond: 0 }), /bandwidthBytesPerSecond must be > 0/);
    await assert.rejects(startSourceProfileProxy('https://example.org', { name: 'tls', latencyMs: 0 }), /must be an http:\/\/ URL/);
  });
});
