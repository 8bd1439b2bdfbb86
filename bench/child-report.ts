/**
 * A bench case run in its own process (so its peak RSS is its own) sends one report over IPC and
 * exits 0; anything else fails the case with the end of the child's stderr, where its error is.
 */
import type { ChildProcess } from 'node:child_process';

/** `child` must be forked with stderr piped and an IPC channel; `what` names the case in the error. */
export function childReport<Report>(child: ChildProcess, what: string): Promise<Report> {
  return new Promise((resolve, reject) => {
    let report: Report | undefined;
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('message', (m) => {
      report = m as Report;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0 && report) resolve(report);
      else reject(new Error(`${what} exited with ${signal ?? `code ${code}`}${stderr ? `:\n${stderr.trim().slice(-2000)}` : ''}`));
    });
  });
}
