/**
 * One run per data directory: `npm run local` (and `serve`) hold `<data-dir>/.run.lock`, a file
 * holding the owner's PID, for as long as they use the directory. A second run fails at once
 * naming the owner, instead of racing on the checkpoint, the Firehose journal and DuckDB's catalog
 * (whose own lock error names neither the run nor what to do). A lock whose PID is no longer alive
 * was left by a crashed run and is taken over.
 */
import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { StateError } from '../runtime/pipeline-error';

export class DataDirLockedError extends StateError {
  override name = 'DataDirLockedError';
}

export const LOCK_FILE = '.run.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The PID holding the data directory, if any; stale: that process is gone (the next run takes the lock over). */
export async function lockHolder(dataDir: string): Promise<{ pid: number; stale: boolean } | undefined> {
  const pid = await readFile(path.join(dataDir, LOCK_FILE), 'utf8').then(
    (t) => Number.parseInt(t, 10),
    () => undefined,
  );
  return pid !== undefined && Number.isInteger(pid) && pid > 0 ? { pid, stale: !alive(pid) } : undefined;
}

export interface DataDirLock {
  readonly file: string;
  /** The dead PID whose lock was taken over, if any. */
  readonly tookOverFrom?: number;
  release(): Promise<void>;
}

export async function lockDataDir(dataDir: string, pid = process.pid): Promise<DataDirLock> {
  await mkdir(dataDir, { recursive: true });
  const file = path.join(dataDir, LOCK_FILE);
  let tookOverFrom: number | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    // Written whole under a private name, then linked into place: the lock never exists empty.
    const tmp = `${file}.${pid}-${randomUUID()}.tmp`;
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(`${pid}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    const linked = await link(tmp, file).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST') return false;
        throw err;
      },
    ).finally(() => rm(tmp, { force: true }));
    if (linked) {
      return {
        file,
        ...(tookOverFrom !== undefined ? { tookOverFrom } : {}),
        async release() {
          // Only our own lock: a run that lost it (someone deleted it by hand) must not free another's.
          const owner = await readFile(file, 'utf8').catch(() => '');
          if (Number(owner.trim()) === pid) await rm(file, { force: true });
        },
      };
    }
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) continue; // released meanwhile: try again
    const owner = Number(text.trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== pid && alive(owner)) {
      throw new DataDirLockedError(
        `Another run (PID ${owner}) is using data directory ${dataDir}; wait for it to finish or stop it, or give another --data-dir ` +
          `(if PID ${owner} is not a pipeline run, delete ${file})`,
      );
    }
    // Stale: move it aside under a unique name (of two takers only one rename succeeds), then retry.
    const aside = `${file}.stale-${randomUUID()}`;
    const moved = await rename(file, aside).then(
      () => true,
      () => false,
    );
    if (moved) {
      // Another taker may have replaced the stale lock between our read and our rename: put a
      // lock that is not the one we judged stale back where it was.
      if ((await readFile(aside, 'utf8').catch(() => '')) !== text) await link(aside, file).catch(() => undefined);
      else tookOverFrom = Number.isInteger(owner) && owner > 0 ? owner : undefined;
      await rm(aside, { force: true });
    }
  }
  throw new DataDirLockedError(`Could not take the lock ${file} after several attempts; another run keeps taking it`);
}
