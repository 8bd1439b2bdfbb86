/**
 * What `npm run local` remembers of a data directory's generated sources (see startLocalSource in
 * ./dataset-rows.ts), one file per dataset: running another dataset in the same directory must
 * not make the next run of this one regenerate its source (new `:updated_at`s, every row fetched
 * again).
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { DatasetConfig } from '../runtime/dataset-config';

export interface SourceHistory {
  dataset: string;
  seed: number;
  rows: number[];
  /** The port it was served on: reused when free, so the source URL stays the same across runs. */
  port?: number;
  /** When the source was created (ISO): its first load's `:updated_at` (see localLoadedAt). */
  loadedAt?: string;
  /** When each growth happened (ISO, one per `rows` entry after the first): the new rows' `:updated_at`. */
  grownAt?: string[];
  /**
   * The most rows this dataset's source held in this directory (a smaller `--rows` starts a new,
   * smaller source; curated still holds the larger one's rows): what a refused mass delete names.
   */
  largestRows?: number;
}

/** `<dataDir>/local-sources/<dataset>.json`. */
export const localSourceFile = (dataDir: string, datasetName: string): string => path.join(dataDir, 'local-sources', `${datasetName}.json`);

/** Where earlier versions kept the one remembered source of the whole directory. */
const legacyFile = (dataDir: string): string => path.join(dataDir, 'local-source.json');

async function readState(file: string): Promise<SourceHistory | undefined> {
  return readFile(file, 'utf8').then(
    (text) => JSON.parse(text) as SourceHistory,
    () => undefined,
  );
}

/** The remembered source of this dataset in dataDir, if there is one (an older directory's single file counts for its dataset). */
export async function readLocalSource(dataDir: string, dataset: DatasetConfig): Promise<SourceHistory | undefined> {
  const previous = (await readState(localSourceFile(dataDir, dataset.name))) ?? (await readState(legacyFile(dataDir)));
  return previous?.dataset === dataset.name && Array.isArray(previous.rows) && previous.rows.length > 0 ? previous : undefined;
}

/** Remembers this dataset's source; the older single file, now copied into its dataset's, goes. */
export async function writeLocalSource(dataDir: string, state: SourceHistory, write: (file: string, text: string) => Promise<void>): Promise<void> {
  await write(localSourceFile(dataDir, state.dataset), `${JSON.stringify(state)}\n`);
  const legacy = await readState(legacyFile(dataDir));
  if (legacy?.dataset === state.dataset) await rm(legacyFile(dataDir), { force: true });
}

/**
 * Why a refused mass delete happened when the cause is this machine, not the source: a `--rows`
 * below the remembered source's size starts a new, smaller source, so most curated keys look gone.
 */
export function shrunkSourceHint(previous: SourceHistory | undefined, rows: number, rowsGiven: boolean, dataDir: string): string | undefined {
  const last = Math.max(previous?.largestRows ?? 0, ...(previous?.rows ?? []));
  if (!previous || rows >= last) return undefined;
  const fmt = (n: number): string => n.toLocaleString('en-US');
  return (
    `the local source shrank: ${dataDir} held a ${previous.dataset} source of ${fmt(last)} rows and this run generated ${fmt(rows)}` +
    `${rowsGiven ? '' : ' (the default --rows)'}, a new and smaller source, so the rows it lacks look deleted. ` +
    `Run with --rows ${last} to keep the source of this directory, or add --fresh to start over with ${fmt(rows)} rows`
  );
}
