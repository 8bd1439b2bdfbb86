/**
 * One fetch contender, run in its own child process (forked by bench/contenders.ts) so that its
 * peak RSS is that of the process doing the work and nothing else (bench/peak-rss.ts):
 * the local Socrata and Firehose servers live in the parent process, on the other core.
 *
 * Input: a ContenderSpec as JSON in argv[2]; the fetcher's environment comes through the process
 * environment (set by the parent, exactly as the local pipeline sets it).
 * Output: one IPC message, a ContenderReport.
 */
import http from 'node:http';
import { createGunzip } from 'node:zlib';
import { FirehoseClient } from '@aws-sdk/client-firehose';
import { invokeUntilDone } from '../local/fetch-loop';
import type { ContenderReport, ContenderSpec, FetchCounts } from './contenders';
import { ownPeakRssBytes } from './peak-rss';

const spec = JSON.parse(process.argv[2] ?? '{}') as ContenderSpec;

/** Wall and CPU time from now: started after module loading, like every contender's timer. */
function startClock(): () => { seconds: number; cpuSeconds: number; cpuSystemSeconds: number } {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  return () => {
    const cpu = process.cpuUsage(cpu0);
    return { seconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6, cpuSystemSeconds: cpu.system / 1e6 };
  };
}

async function runOurs(): Promise<FetchCounts> {
  // The Lambda's own entry point: the same modules, the same environment variables.
  const { handler } = await import('../lambdas/fetcher/handler');
  const idleRssBytes = process.memoryUsage().rss;
  const stop = startClock();
  // Looping on `done` like the state machine, through the same loop the local pipeline uses.
  const { out, invocations } = await invokeUntilDone(handler, { runId: spec.runId, mode: 'full-refresh', budgetMs: spec.invocationBudgetMs });
  const s = out.stats;
  return {
    ...stop(),
    idleRssBytes,
    rows: s.rowsDelivered,
    rowsFetched: s.rowsFetched,
    pages: s.pages,
    records: s.firehoseRecords,
    putCalls: s.firehoseCalls,
    payloadBytes: s.bytesDelivered,
    invocations,
  };
}

async function runBaseline(): Promise<FetchCounts> {
  const { runBaselineFetch } = await import('./baseline-fetcher');
  const firehose = new FirehoseClient({
    endpoint: spec.firehoseUrl!,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const idleRssBytes = process.memoryUsage().rss;
  const stop = startClock();
  const s = await runBaselineFetch({ sourceUrl: spec.sourceUrl, datasetId: spec.datasetId, firehose, streamName: spec.streamName! });
  return {
    ...stop(),
    idleRssBytes,
    rows: s.rows,
    rowsFetched: s.rows,
    pages: s.pages,
    records: s.records,
    putCalls: s.putCalls,
    payloadBytes: s.payloadBytes,
    invocations: 1,
  };
}

/**
 * The limit: the same keyset pages as our fetcher (same `$select`, `$order`, `$where`, `$limit`),
 * downloaded over a keep-alive connection and discarded. Only the last row of each page is parsed,
 * because the next page's `$where` needs its `:updated_at` and `:id`. Rows are counted from the
 * local server's framing (`[`, one row per line, `]`), so nothing else is parsed.
 */
async function runLimit(): Promise<FetchCounts> {
  const { KEYSET_ORDER, SELECT_ALL, keysetWhere } = await import('../lambdas/fetcher/sources/socrata/keyset');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const get = (url: string): Promise<{ bytes: number; newlines: number; tail: string }> =>
    new Promise((resolve, reject) => {
      http
        .get(url, { agent, headers: { Accept: 'application/json', ...(spec.acceptGzip ? { 'Accept-Encoding': 'gzip' } : {}) } }, (raw) => {
          if (raw.statusCode !== 200) {
            raw.resume();
            reject(new Error(`limit contender: HTTP ${raw.statusCode} for ${url}`));
            return;
          }
          // Bytes and rows are counted as decoded, like every contender's payload.
          const res = raw.headers['content-encoding'] === 'gzip' ? raw.pipe(createGunzip()) : raw;
          if (res !== raw) raw.on('error', (err) => res.destroy(err));
          let bytes = 0;
          let newlines = 0;
          // The last chunks, enough to hold the last row: kept by reference, not copied per chunk
          // (a copy per chunk made garbage faster than the body arrived, inflating peak RSS).
          const tail: Buffer[] = [];
          let tailBytes = 0;
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) newlines++;
            tail.push(chunk);
            tailBytes += chunk.length;
            while (tail.length > 1 && tailBytes - tail[0]!.length >= 262_144) tailBytes -= tail.shift()!.length;
          });
          res.on('end', () => resolve({ bytes, newlines, tail: Buffer.concat(tail).toString('utf8') }));
          res.on('error', reject);
        })
        .on('error', reject);
    });

  const idleRssBytes = process.memoryUsage().rss;
  const stop = startClock();
  let position: { updatedAt: string; id: string } | null = null;
  let rows = 0;
  let pages = 0;
  let bytes = 0;
  for (;;) {
    const params: Record<string, string> = { $select: SELECT_ALL, $order: KEYSET_ORDER, $limit: String(spec.pageSize) };
    if (position) params.$where = keysetWhere(position);
    const page = await get(`${spec.sourceUrl}/resource/${spec.datasetId}.json?${new URLSearchParams(params).toString()}`);
    pages++;
    bytes += page.bytes;
    const pageRows = Math.max(0, page.newlines - 1);
    rows += pageRows;
    if (pageRows < spec.pageSize) break;
    const body = page.tail.trimEnd().replace(/\]$/, '').trimEnd();
    const last = JSON.parse(body.slice(body.lastIndexOf('\n') + 1)) as Record<string, unknown>;
    position = { updatedAt: String(last[':updated_at']), id: String(last[':id']) };
  }
  agent.destroy();
  return { ...stop(), idleRssBytes, rows, rowsFetched: rows, pages, records: 0, putCalls: 0, payloadBytes: bytes, invocations: 1 };
}

async function main(): Promise<void> {
  const run = spec.kind === 'ours' ? runOurs : spec.kind === 'baseline' ? runBaseline : runLimit;
  const counts = await run();
  const report: ContenderReport = { kind: spec.kind, ...counts, peakRssBytes: ownPeakRssBytes() };
  await new Promise<void>((resolve, reject) => process.send!(report, (err: Error | null) => (err ? reject(err) : resolve())));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`contender ${spec.kind} failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
