/**
 * Fixtures a whole suite shares, set up by the hooks of the describe (or file) that calls these:
 * started before its first test, closed after its last. Each hands what it made to `ready`, which
 * keeps it in the suite's own variable, so the tests read it as they would a `let` of their own.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { startSocrataServer, type SocrataServer, type SocrataServerOptions } from '../../local/socrata-server';

/** A local Socrata server for the suite; `ready` may also prepare it (mutations the tests expect). */
export function suiteSocrataServer(options: SocrataServerOptions, ready: (server: SocrataServer) => void): void {
  let server: SocrataServer | undefined;
  before(async () => {
    server = await startSocrataServer(options);
    ready(server);
  });
  after(() => server?.close());
}

/** A fresh directory under the system's temporary directory for the suite, removed with its contents after. */
export function suiteTempDir(prefix: string, ready: (dir: string) => void): void {
  let dir: string | undefined;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), prefix));
    ready(dir);
  });
  after(() => (dir === undefined ? undefined : rm(dir, { recursive: true, force: true })));
}
