/**
 * A shaping HTTP proxy on 127.0.0.1 that makes a local server behave like a remote source: each
 * request waits a latency (server-side query planning plus the round trip) before it is forwarded,
 * and response bodies share one link of limited bandwidth (a token bucket). Loopback answers in
 * microseconds, which hides what page sizes cost against a real Socrata; the benchmark puts this in
 * front of the local Socrata server (docs/bench.md, "Source profiles").
 *
 * Streaming is preserved: the body is forwarded chunk by chunk, paced by the bucket, and the
 * upstream response is only read as fast as the client reads (backpressure both ways). Nothing
 * holds a whole body.
 */
import http from 'node:http';
import { createGzip } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { drainedOrClosed } from '../runtime/back-pressure';
import { seededRandom } from './fire-incidents-generator';

export interface SourceProfile {
  /** Label in tables and logs, e.g. "0.5 s + 10 MB/s". */
  name: string;
  /** Added to every request before it reaches the server, so before the first byte of the answer. */
  latencyMs: number;
  /** Bytes per second of response body, shared by all concurrent responses (one link). Absent: unlimited. */
  bandwidthBytesPerSecond?: number;
  /**
   * Bytes per second of each response on its own, however fast the link: a portal serving one
   * request at its own pace (data.sfgov.org measured ~2.4 MB/s a request, 2026-02), so that
   * concurrent requests add up until the shared link is full. Absent: only the link limits.
   */
  perRequestBytesPerSecond?: number;
  /** Each request's latency gets a further uniform random 0..jitterMs (seeded, reproducible). */
  jitterMs?: number;
  /** Seed of the jitter (default 1). */
  seed?: number;
  /**
   * Gzip 200 bodies for clients that send `Accept-Encoding: gzip`, as Socrata does (`Vary:
   * Accept-Encoding`), so the link carries compressed bytes. Level 1: the real server compresses
   * on its own hardware, and the proxy, on the parent's one core, must not become the bottleneck.
   */
  gzip?: boolean;
}

export interface SourceProfileProxy {
  /** Base URL of the proxy (use it where the server's URL would go). */
  url: string;
  profile: SourceProfile;
  /** Requests forwarded and response body bytes sent, so far. */
  counters(): { requests: number; bodyBytes: number };
  close(): Promise<void>;
}

/** The profiles of the benchmark's table (issue 12): loopback, then 0.1 s, 0.5 s and 2 s at 10 MB/s. */
export const BENCH_PROFILES: SourceProfile[] = [
  { name: 'loopback', latencyMs: 0 },
  { name: '0.1 s + 10 MB/s', latencyMs: 100, bandwidthBytesPerSecond: 10e6 },
  { name: '0.5 s + 10 MB/s', latencyMs: 500, bandwidthBytesPerSecond: 10e6 },
  { name: '2 s + 10 MB/s', latencyMs: 2000, bandwidthBytesPerSecond: 10e6 },
];

/** True when the profile changes nothing (the benchmark then talks to the server directly). */
export function isLoopback(profile: SourceProfile): boolean {
  return profile.latencyMs <= 0 && !profile.jitterMs && profile.bandwidthBytesPerSecond === undefined && profile.perRequestBytesPerSecond === undefined;
}

/** Largest piece written at once: small enough that pacing is smooth (1.6 ms at 10 MB/s). */
const PIECE_BYTES = 16 * 1024;

/** Headers that belong to one hop (RFC 9110 §7.6.1) and must not be copied across the proxy. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

function forwardHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

/**
 * How late the proxy may be in sending a piece and still send it on the link's schedule: a real
 * source keeps sending into the socket's buffers while the reader is busy, so a late timer on the
 * proxy's event loop (8 streams' pieces, a loaded machine) must not cost link time. Beyond it the
 * link counts as idle and starts afresh (no burst after a pause). ~120 KB at 2.4 MB/s: about what
 * a socket buffer holds.
 */
export const LINK_CATCH_UP_MS = 50;

/**
 * One link: pieces are sent back to back at the link's rate, whichever response they belong to.
 * `take(n)` resolves when the link is free to start sending n bytes, and books it for n / rate.
 */
export class Link {
  private freeAt = Number.NEGATIVE_INFINITY;
  constructor(
    private readonly bytesPerSecond: number,
    private readonly now: () => number = () => performance.now(),
    private readonly wait: (ms: number) => Promise<unknown> = sleep,
  ) {
    if (!(bytesPerSecond > 0)) throw new Error(`source profile: bandwidthBytesPerSecond must be > 0, got ${bytesPerSecond}`);
  }
  async take(n: number): Promise<void> {
    const now = this.now();
    // Late by a little: on schedule (catching up); late by more: the link was idle, start now.
    const start = this.freeAt >= now - LINK_CATCH_UP_MS ? this.freeAt : now;
    this.freeAt = start + (n * 1000) / this.bytesPerSecond;
    if (start > now) await this.wait(start - now);
  }
}

/** Start a proxy in front of `target` (e.g. the local Socrata server's URL) with this profile. */
export async function startSourceProfileProxy(target: string, profile: SourceProfile): Promise<SourceProfileProxy> {
  const upstream = new URL(target);
  if (upstream.protocol !== 'http:') throw new Error(`source profile proxy: target ${upstream.origin} must be an http:// URL (a local server)`);
  if (!(profile.latencyMs >= 0) || !((profile.jitterMs ?? 0) >= 0)) {
    throw new Error(`source profile "${profile.name}": latencyMs and jitterMs must be ≥ 0, got ${profile.latencyMs} and ${profile.jitterMs}`);
  }
  const link = profile.bandwidthBytesPerSecond === undefined ? undefined : new Link(profile.bandwidthBytesPerSecond);
  const perRequest = profile.perRequestBytesPerSecond;
  if (perRequest !== undefined && !(perRequest > 0)) throw new Error(`source profile "${profile.name}": perRequestBytesPerSecond must be > 0, got ${perRequest}`);
  const jitter = seededRandom(profile.seed ?? 1);
  const agent = new http.Agent({ keepAlive: true });
  let requests = 0;
  let bodyBytes = 0;

  const server = http.createServer((req, res) => {
    requests++;
    const delay = profile.latencyMs + (profile.jitterMs ? jitter() * profile.jitterMs : 0);
    let clientGone = false;
    req.on('close', () => {
      if (!res.writableFinished) clientGone = true;
    });
    const forward = (): void => {
      if (clientGone) return;
      const upstreamReq = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...forwardHeaders(req.headers), host: upstream.host }, agent },
        (upstreamRes) => {
          const headers = forwardHeaders(upstreamRes.headers);
          const gzip = profile.gzip && upstreamRes.statusCode === 200 && !upstreamRes.headers['content-encoding'] && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
          if (gzip) {
            delete headers['content-length'];
            headers['content-encoding'] = 'gzip';
            headers.vary = 'Accept-Encoding';
          }
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, headers);
          // A body the server cut short (the iteration throws "aborted") must reach the client cut
          // short too, never looking complete.
          const body = gzip ? upstreamRes.pipe(createGzip({ level: 1 })) : upstreamRes;
          if (gzip) upstreamRes.on('aborted', () => body.destroy(new Error('aborted')));
          void pump(body, res).catch(() => res.destroy());
        },
      );
      upstreamReq.on('error', (err) => {
        if (!res.headersSent) {
          res.writeHead(502, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end(`source profile proxy: ${upstream.origin} failed: ${err.message}\n`);
        } else res.destroy(err);
      });
      res.on('close', () => {
        // The client hung up: stop reading from the server too.
        if (!res.writableFinished) upstreamReq.destroy();
      });
      req.pipe(upstreamReq);
    };
    if (delay > 0) setTimeout(forward, delay);
    else forward();
  });

  /** Copy the body piece by piece at the link's pace, waiting for the client when it is slow. */
  async function pump(from: NodeJS.ReadableStream & { destroy(): void }, to: http.ServerResponse): Promise<void> {
    // This response's own pace, booked alongside the shared link's: a piece waits for the later of the two.
    const own = perRequest === undefined ? undefined : new Link(perRequest);
    for await (const chunk of from as AsyncIterable<Buffer>) {
      for (let off = 0; off < chunk.length; off += PIECE_BYTES) {
        const piece = chunk.subarray(off, off + PIECE_BYTES);
        if (link && own) await Promise.all([link.take(piece.length), own.take(piece.length)]);
        else if (link) await link.take(piece.length);
        else if (own) await own.take(piece.length);
        if (to.destroyed) {
          from.destroy();
          return;
        }
        bodyBytes += piece.length;
        if (!to.write(piece)) await drainedOrClosed(to);
      }
    }
    to.end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    profile,
    counters: () => ({ requests, bodyBytes }),
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
