/**
 * The DuckDB engine's curated commit: one small pointer file switched by rename.
 *
 *   <table dir>/_manifest.json                     the pointer: which partition directory holds
 *                                                  each event year, now and in the previous commit
 *   <table dir>/v-<version>/event_year=YYYY/*.parquet   files written by one commit
 *
 * A commit writes the new years under a fresh `v-<version>/`, then replaces the pointer (write a
 * temporary file, fsync it, rename it over the pointer, fsync the directory). Readers and the
 * local catalog read only the files the pointer names, so they see the old state or the new one,
 * never a year missing, and a crash at any moment leaves one of the two. Directories the pointer
 * does not name (a crashed commit's files, retired versions) are removed after each commit and at
 * the start of the next run. The previous commit's files are kept until then: catalog views made
 * at the previous commit name them, so a `npm run query` during a run still reads a whole table.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { StateError } from '../../../runtime/pipeline-error';

export const MANIFEST_FILE = '_manifest.json';

export interface CuratedManifest {
  /** The version directory of the last commit (for messages). */
  version: string;
  /** Partition directory name (`event_year=2023`) → its directory relative to the table dir. */
  partitions: Record<string, string>;
  /** The previous commit's partitions, kept readable until the next run (see module comment). */
  previous: Record<string, string>;
}

export class CuratedManifestError extends StateError {
  override name = 'CuratedManifestError';
}

const REBUILD = 'rebuild curated from the raw zone: `npm run local -- --rebuild` locally, or start the transform task with REBUILD=true on AWS';

const EMPTY: CuratedManifest = { version: 'empty', partitions: {}, previous: {} };

const isPartitionDir = (name: string): boolean => /^[A-Za-z_][A-Za-z0-9_]*=[^/]+$/.test(name);

/**
 * The current manifest. A table written before manifests existed (year directories directly
 * under the table dir) reads as a manifest naming those directories; an absent table as empty.
 */
export function readManifest(tableDir: string): CuratedManifest {
  const file = path.join(tableDir, MANIFEST_FILE);
  if (existsSync(file)) {
    let doc: Partial<CuratedManifest>;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8')) as Partial<CuratedManifest>;
    } catch (err) {
      throw new CuratedManifestError(`Curated manifest ${file} is not valid JSON (${(err as Error).message}); ${REBUILD}`, { cause: err });
    }
    if (typeof doc.version !== 'string' || typeof doc.partitions !== 'object' || doc.partitions === null) {
      throw new CuratedManifestError(`Curated manifest ${file} has no version/partitions; ${REBUILD}`);
    }
    return { version: doc.version, partitions: doc.partitions, previous: doc.previous ?? {} };
  }
  const legacy = existsSync(tableDir) ? readdirSync(tableDir).filter(isPartitionDir).sort() : [];
  return { version: legacy.length ? 'legacy' : 'empty', partitions: Object.fromEntries(legacy.map((d) => [d, d])), previous: {} };
}

/** The manifest, or an empty one when it cannot be read (a rebuild replaces it anyway). */
export function readManifestForRebuild(tableDir: string): CuratedManifest {
  try {
    return readManifest(tableDir);
  } catch (err) {
    if (err instanceof CuratedManifestError) return EMPTY;
    throw err;
  }
}

/**
 * Absolute paths of the Parquet files the manifest names (sorted; empty for an empty table). A
 * named directory that has gone (deleted behind the pipeline's back) contributes nothing: the
 * rows are missing, which the reconciliation test reports (with the rebuild that repairs it).
 */
export function manifestFiles(tableDir: string, manifest: CuratedManifest = readManifest(tableDir)): string[] {
  const files: string[] = [];
  for (const rel of Object.values(manifest.partitions)) {
    const dir = path.join(tableDir, rel);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) if (f.endsWith('.parquet')) files.push(path.join(dir, f));
  }
  return files.sort();
}

async function fsyncPath(p: string): Promise<void> {
  const handle = await open(p, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Durably replace the manifest: temp file, fsync, rename, fsync the directory. `beforeSwitch`
 * runs between the fsync of the temp file and the rename (the crash tests' mid-commit point).
 */
export async function writeManifest(tableDir: string, manifest: CuratedManifest, beforeSwitch: () => void = () => {}): Promise<void> {
  await mkdir(tableDir, { recursive: true });
  const file = path.join(tableDir, MANIFEST_FILE);
  const tmp = path.join(tableDir, `.${MANIFEST_FILE}.${process.pid}.tmp`);
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(JSON.stringify(manifest, null, 1));
    await handle.sync();
  } finally {
    await handle.close();
  }
  beforeSwitch();
  await rename(tmp, file);
  await fsyncPath(tableDir);
}

/** Remove what neither the current nor the previous commit names (and stale temp manifests). */
export async function collectGarbage(tableDir: string, manifest: CuratedManifest = readManifest(tableDir)): Promise<string[]> {
  if (!existsSync(tableDir)) return [];
  const keep = new Set([...Object.values(manifest.partitions), ...Object.values(manifest.previous)].map((p) => path.normalize(p)));
  const removed: string[] = [];
  const drop = async (rel: string): Promise<void> => {
    await rm(path.join(tableDir, rel), { recursive: true, force: true });
    removed.push(rel);
  };
  for (const entry of readdirSync(tableDir, { withFileTypes: true })) {
    const name = entry.name;
    if (name === MANIFEST_FILE) continue;
    if (!entry.isDirectory()) {
      if (name.startsWith(`.${MANIFEST_FILE}.`)) await drop(name);
      continue;
    }
    if (isPartitionDir(name)) {
      // A year directory of the pre-manifest layout: kept while a manifest names it.
      if (!keep.has(name)) await drop(name);
      continue;
    }
    if (!name.startsWith('v-')) continue;
    const parts = readdirSync(path.join(tableDir, name));
    const kept = parts.filter((p) => keep.has(path.normalize(path.join(name, p))));
    if (!kept.length) await drop(name);
    else for (const p of parts) if (!kept.includes(p)) await drop(path.join(name, p));
  }
  return removed;
}
