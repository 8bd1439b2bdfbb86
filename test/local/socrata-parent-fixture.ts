/**
 * A parent process for the "no orphan" test: starts the local Socrata server's child process,
 * prints its PID, and waits to be killed.
 */
import { startSocrataProcess } from '../../local/socrata-process';

const server = await startSocrataProcess({ kind: 'options', options: { rows: 100, seed: 3, storageDir: process.argv[2]! } });
process.stdout.write(`${JSON.stringify({ pid: server.pid, url: server.url })}\n`);
setInterval(() => {}, 60_000);
