/**
 * Entry of the local Socrata server's own process (started by ./socrata-process.ts, never by
 * hand): receives what to serve over IPC, starts the server, relays each request's record, runs
 * mutations and fault rules the parent asks for, and exits when told to or when the parent is
 * gone (the IPC channel closes when the parent exits or is killed: no orphan server).
 */
import { generateRows, isFireIncidents, sourceFor } from './dataset-rows';
import { startSocrataServer, type SocrataServer } from './socrata-server';
import type { ChildMessage, ParentMessage, SocrataProcessSpec } from './socrata-process';

const send = (m: ChildMessage): void => {
  if (process.connected) process.send!(m);
};

/** One line a person can act on: the parent prints it as the reason the source failed. */
function fail(what: string, err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  send({ type: 'error', message: `${what}: ${message.split('\n')[0]}` });
  process.exit(1);
}

process.on('disconnect', () => process.exit(0));
// Ctrl-C reaches the whole process group: the parent decides (it delivers the Firehose buffer and
// exits, and this process follows through 'disconnect'), so the source stays up until then.
process.on('SIGINT', () => {});
process.on('uncaughtException', (err) => fail('local Socrata server crashed', err));
process.on('unhandledRejection', (err) => fail('local Socrata server crashed', err));

async function start(spec: SocrataProcessSpec): Promise<SocrataServer> {
  const onRequest = (record: SocrataServer['requests'][number]): void => send({ type: 'request', record });
  if (spec.kind === 'options') return startSocrataServer({ ...spec.options, onRequest });
  const { dataset, history, seed, storageDir, loadedAt, grownAt } = spec;
  const fire = isFireIncidents(dataset);
  const options = {
    ...sourceFor(dataset, history[0]!, seed),
    // Generated fire incidents grow (and are generated) inside the compact store; other datasets' rows
    // are replayed below as the publisher's inserts.
    ...(fire ? { growth: history.slice(1).map((n, i) => n - history[i]!), storageDir, ...(grownAt ? { growthAt: grownAt } : {}) } : { storageDir }),
    ...(loadedAt ? { loadedAt } : {}),
    onRequest,
  };
  const server = await startSocrataServer({ ...options, port: spec.port }).catch((err: NodeJS.ErrnoException) => {
    // The remembered port is taken: any free one (the checkpoint's source URL then changes, as before).
    if (err.code === 'EADDRINUSE' && spec.port) return startSocrataServer(options);
    throw err;
  });
  if (!fire) {
    for (let i = 1; i < history.length; i++) {
      // Inserted at the growth's own time when that is after every row (mutate's default is one second after the newest).
      const at = grownAt?.[i - 1] ? new Date(grownAt[i - 1]!) : undefined;
      const newest = Math.max(0, ...server.rows.map((r) => Date.parse(String(r[':updated_at']))));
      server.mutate({ addRows: generateRows(dataset, history[i]!, seed).slice(history[i - 1]), ...(at && at.getTime() > newest ? { at } : {}) });
    }
  }
  return server;
}

let server: SocrataServer | undefined;

process.on('message', (m: ParentMessage) => {
  void (async () => {
    if (m.type === 'start') {
      try {
        server = await start(m.spec);
      } catch (err) {
        fail('local Socrata server did not start', err);
      }
      send({ type: 'ready', url: server.url, datasetId: server.datasetId });
    } else if (m.type === 'call') {
      try {
        if (!server) throw new Error('not started');
        const value = m.method === 'mutate' ? server.mutate(m.arg as Parameters<SocrataServer['mutate']>[0]) : server.setFaults(m.arg as Parameters<SocrataServer['setFaults']>[0]);
        send({ type: 'result', id: m.id, value: value ?? null });
      } catch (err) {
        send({ type: 'result', id: m.id, error: (err as Error).message });
      }
    } else if (m.type === 'close') {
      await server?.close();
      process.exit(0);
    }
  })();
});
