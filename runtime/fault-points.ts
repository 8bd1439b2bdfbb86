/**
 * Deterministic crash points for the crash-safety tests of the embedded pipeline.
 *
 * Code that must survive a crash at a given moment calls `faultPoint('<area>:<moment>')` there.
 * With `PIPELINE_CRASH_AT=<name>` (or `<name>#<n>` for the n-th time that point is reached, from 1)
 * the process kills itself with SIGKILL at that moment: no `finally`, no flush, no exit handler
 * runs, exactly like a power cut or an OOM kill. Without the variable a fault point costs a map
 * lookup and does nothing; it is never set in deployed environments.
 *
 * Names in use (keep this list in step with the calls):
 *   fetch:after-checkpoint-write     the fetcher wrote a checkpoint (Firehose had accepted the rows), or
 *                                    in a parallel backfill a range's progress (its rows were in raw/)
 *   fetch:after-direct-object        a parallel backfill wrote a raw object, before its range's progress
 *   firehose:after-journal-append    the local Firehose endpoint journaled a call, before answering
 *   firehose:after-object-write      the local Firehose endpoint delivered an object to raw/
 *   transform:after-scratch-write    the DuckDB engine wrote the new curated files, before commit
 *   transform:mid-commit             inside the curated commit (files written, pointer not switched)
 *   transform:after-commit           the curated commit is done, bookkeeping not yet written
 */
const hits = new Map<string, number>();

/** The parsed `PIPELINE_CRASH_AT`, or undefined when no crash is asked for. */
function target(): { name: string; nth: number } | undefined {
  const spec = process.env.PIPELINE_CRASH_AT;
  if (!spec) return undefined;
  const [name, nth] = spec.split('#');
  const n = nth === undefined ? 1 : Number(nth);
  if (!name || !Number.isInteger(n) || n < 1) {
    throw new Error(`PIPELINE_CRASH_AT="${spec}" must be <fault point name> or <name>#<n> with n ≥ 1`);
  }
  return { name, nth: n };
}

export function faultPoint(name: string): void {
  const t = target();
  if (!t || t.name !== name) return;
  const count = (hits.get(name) ?? 0) + 1;
  hits.set(name, count);
  if (count === t.nth) {
    // Say where, on stderr and synchronously, so a test can tell the kill happened where it asked.
    process.stderr.write(`fault point ${name}#${count}: SIGKILL\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
