/**
 * Writes that survive a crash or a power cut, for the embedded pipeline's local files: a file is
 * written under a temporary name, fsynced, renamed over its target, and the directory fsynced, so
 * a reader sees either the old file or the whole new one, never a torn one, and the rename itself
 * is on disk before the caller goes on (e.g. before it records that the file exists).
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/** fsync a directory, making the entries created, renamed or removed in it durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** `mkdir -p`, with each newly created directory's entry fsynced in its parent. */
export async function mkdirDurably(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  // Every directory from `first` down to `dir` is new: fsync the parent of each.
  const created: string[] = [];
  for (let d = path.resolve(dir); d.length >= path.resolve(first).length; d = path.dirname(d)) created.push(d);
  for (const d of created) await syncDir(path.dirname(d));
}

/** Write `data` to `target` atomically and durably (temporary name, fsync, rename, fsync dir). */
export async function writeFileDurably(target: string, data: Buffer | string): Promise<void> {
  const dir = path.dirname(target);
  await mkdirDurably(dir);
  // `.tmp` names are skipped by LocalObjectStore.list, so a leftover one is never read as data.
  const tmp = `${target}.${randomUUID()}.tmp`;
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  await rename(tmp, target);
  await syncDir(dir);
}
