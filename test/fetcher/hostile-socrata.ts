/**
 * A misbehaving Socrata-compatible source for tests: a proxy on 127.0.0.1 in front of the local
 * Socrata server that breaks one rule of the API the way real portals (or a wrong URL) do.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { SocrataServer } from '../../local/socrata-server';

export type HostileMode =
  /** Drops `$order`: the upstream then orders by `:id` only. */
  | { kind: 'ignore-order' }
  /** Serves each page in reverse. */
  | { kind: 'reverse-pages' }
  /** Drops `$where`: every request gets the first page again. */
  | { kind: 'ignore-where' }
  /** Serves at most `max` rows whatever `$limit` asks (as SODA 2.0 endpoints cap at 50,000). */
  | { kind: 'cap-limit'; max: number }
  /** Refuses a `$limit` above `max` with HTTP 400, as SODA 2.0 endpoints do above 50,000 ("length must be <= 50000"). */
  | { kind: 'refuse-limit'; max: number }
  /** Sends the headers, then one byte of the body every `intervalMs`. */
  | { kind: 'slow-loris'; intervalMs: number }
  /**
   * For the requests in `cuts` (1-based, counting resource requests: request number → bytes),
   * sends only that many bytes of the body, then: `reset` destroys the connection, `end` ends the
   * response cleanly (a truncated body), `stall` sends nothing more and keeps the connection open.
   */
  | { kind: 'cut-body'; cuts: Record<number, number>; how: 'reset' | 'end' | 'stall' }
  /** Answers 500 with the request's headers (the app token among them) echoed in the body; the first `times` requests, or all. */
  | { kind: 'echo-headers-500'; times?: number };

export interface HostileRequest {
  params: Record<string, string>;
  headers: http.IncomingHttpHeaders;
}

export interface HostileSocrata {
  url: string;
  datasetId: string;
  requests: HostileRequest[];
  close(): Promise<void>;
}

export async function startHostileSocrata(upstream: SocrataServer, mode: HostileMode): Promise<HostileSocrata> {
  const requests: HostileRequest[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const params = Object.fromEntries(url.searchParams);
      if (url.pathname.startsWith('/resource/')) requests.push({ params, headers: req.headers });
      if (mode.kind === 'echo-headers-500' && (mode.times === undefined || requests.length <= mode.times)) {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: true, message: 'Internal error', request: { url: req.url, headers: req.headers } }));
        return;
      }
      if (mode.kind === 'refuse-limit' && Number(url.searchParams.get('$limit') ?? 1000) > mode.max) {
        // The body of a real refusal (sodapy issue #54): a 400 whose message names the cap.
        res.writeHead(400, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ code: 'query.soql.invalid', error: true, message: `length must be <= ${mode.max}` }));
        return;
      }
      if (mode.kind === 'ignore-order') url.searchParams.delete('$order');
      if (mode.kind === 'ignore-where') url.searchParams.delete('$where');
      if (mode.kind === 'cap-limit' && Number(url.searchParams.get('$limit') ?? 1000) > mode.max) url.searchParams.set('$limit', String(mode.max));
      const answer = await fetch(`${upstream.url}${url.pathname}${url.search}`, { headers: { accept: 'application/json' } });
      let body = await answer.text();
      if (mode.kind === 'reverse-pages' && answer.status === 200) body = JSON.stringify((JSON.parse(body) as unknown[]).reverse());
      const cut = mode.kind === 'cut-body' ? mode.cuts[requests.length] : undefined;
      if (mode.kind === 'cut-body' && cut !== undefined && answer.status === 200) {
        const bytes = Buffer.from(body, 'utf8');
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write(bytes.subarray(0, cut));
        if (mode.how === 'reset') setTimeout(() => res.socket?.destroy(), 20);
        else if (mode.how === 'end') res.end();
        return;
      }
      if (mode.kind === 'slow-loris') {
        res.writeHead(answer.status, { 'Content-Type': 'application/json' });
        let i = 0;
        const drip = setInterval(() => {
          if (i >= body.length || res.destroyed) {
            clearInterval(drip);
            timers.delete(drip);
            res.end();
            return;
          }
          res.write(body[i++]);
        }, mode.intervalMs);
        timers.add(drip);
        return;
      }
      res.writeHead(answer.status, { 'Content-Type': 'application/json' });
      res.end(body);
    })().catch((err: unknown) => {
      res.writeHead(502);
      res.end(String(err));
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    datasetId: upstream.datasetId,
    requests,
    close: async () => {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
