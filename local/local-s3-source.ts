/**
 * The generated source of `npm run local` for an S3 dataset (`source.type: "s3"`): objects under
 * the declared bucket and prefix, served by moto_server (local/moto-server.ts, the S3 wire
 * protocol as AWS answers it), which the fetcher reaches through AWS_ENDPOINT_URL_S3 with the
 * deployed adapter (s3-files-source.ts).
 *
 * moto keeps nothing between runs, so the objects live under `<dataDir>/local-s3/<dataset>/objects/`
 * and are uploaded at each start; their bytes are the same, so their ETags are too, and a run
 * with nothing new reads nothing. A larger `--rows` adds the new records in NEW objects, after the
 * others in key order (an event source's new day); tests add their own objects with
 * writeLocalObject (malformed lines, a rewritten object).
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { DatasetConfig } from '../runtime/dataset-config';
import { parseS3Url } from '../runtime/s3-location';
import { writeFileDurably } from './durable-file';
import { genericRecords, sourceBytes, type RecordGenerator, type SourceContent } from './generated-records';
import type { LocalSourceEndpoint, LocalSourceRequest } from './local-source-endpoint';
import { startMotoS3 } from './moto-server';

type S3Source = Extract<DatasetConfig['source'], { type: 's3' }>;

/** Records per generated object. */
const RECORDS_PER_OBJECT = 10_000;

interface GeneratedObjects {
  seed: number;
  /** Records after each generation: the first, then each growth's (as the Socrata source's history). */
  rows: number[];
}

function s3Source(dataset: DatasetConfig): S3Source {
  if (dataset.source.type !== 's3') throw new Error(`dataset ${dataset.name} is not an S3 source`);
  return dataset.source;
}

const sourceDir = (dataDir: string, dataset: DatasetConfig): string => path.join(dataDir, 'local-s3', dataset.name);
/** Where the objects' bytes are kept, by key relative to the prefix. */
export const localObjectsDir = (dataDir: string, dataset: DatasetConfig): string => path.join(sourceDir(dataDir, dataset), 'objects');
const stateFile = (dataDir: string, dataset: DatasetConfig): string => path.join(sourceDir(dataDir, dataset), 'generated.json');

const gzipped = (source: S3Source): boolean => source.compression === 'gzip';
/** The file name ending of a generated object: its format, and .gz when gzipped. */
const extension = (source: S3Source): string => `.${source.format}${gzipped(source) ? '.gz' : ''}`;

/**
 * Writes one object (relative key under the prefix) of `records`, or of `text` for malformed
 * objects, in the dataset's format; it is uploaded at the next start.
 */
export async function writeLocalObject(dataDir: string, dataset: DatasetConfig, key: string, content: SourceContent): Promise<void> {
  const source = s3Source(dataset);
  await writeFileDurably(path.join(localObjectsDir(dataDir, dataset), key), sourceBytes(dataset, source.format, gzipped(source), content));
}

async function listFiles(dir: string, under = ''): Promise<string[]> {
  const entries = await readdir(path.join(dir, under), { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    const rel = under ? `${under}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else if (!e.name.endsWith('.tmp')) out.push(rel);
  }
  return out.sort();
}

/** Generates the records from `from` to `to` into objects: the generator's own, else RECORDS_PER_OBJECT per object of this generation. */
async function generate(dataDir: string, dataset: DatasetConfig, gen: RecordGenerator | undefined, rows: number[], seed: number): Promise<void> {
  const source = s3Source(dataset);
  const from = rows.at(-2) ?? 0;
  const to = rows.at(-1)!;
  const generation = String(rows.length).padStart(4, '0');
  const existing = new Set(await listFiles(localObjectsDir(dataDir, dataset)));
  const objects = new Map<string, Record<string, unknown>[]>();
  let i = 0;
  for (const { record, object } of gen?.(dataset, to, seed) ?? genericRecords(dataset, to, seed)) {
    if (i >= from) {
      const key = object ?? `generation-${generation}/part-${String(Math.floor((i - from) / RECORDS_PER_OBJECT)).padStart(5, '0')}${extension(source)}`;
      // An append source never rewrites an object: new records go into new objects only.
      if (existing.has(key)) throw new Error(`the generator of ${dataset.name} put new record ${i} into ${key}, which an earlier run wrote`);
      (objects.get(key) ?? objects.set(key, []).get(key)!).push(record);
    }
    i++;
  }
  for (const [key, records] of objects) await writeLocalObject(dataDir, dataset, key, { records });
}

/** Starts moto_server with the dataset's bucket and objects; `gen` gives an example dataset's own records. */
export function localS3Source(gen?: RecordGenerator) {
  return async ({ dataset, dataDir, rows, seed }: LocalSourceRequest): Promise<LocalSourceEndpoint & { s3: import('@aws-sdk/client-s3').S3Client }> => {
    const source = s3Source(dataset);
    const state = await readFile(stateFile(dataDir, dataset), 'utf8').then(
      (t) => JSON.parse(t) as GeneratedObjects,
      () => undefined,
    );
    const last = state?.rows.at(-1) ?? 0;
    if (!state || state.seed !== seed || rows < last) {
      // A new source (another seed, or fewer rows than it has): its objects start again.
      await rm(localObjectsDir(dataDir, dataset), { recursive: true, force: true });
      await generate(dataDir, dataset, gen, [rows], seed);
      await writeFileDurably(stateFile(dataDir, dataset), `${JSON.stringify({ seed, rows: [rows] })}\n`);
    } else if (rows > last) {
      await generate(dataDir, dataset, gen, [...state.rows, rows], seed);
      await writeFileDurably(stateFile(dataDir, dataset), `${JSON.stringify({ seed, rows: [...state.rows, rows] })}\n`);
    }
    const { bucket, prefix } = parseS3Url(source.url);
    const moto = await startMotoS3(bucket);
    try {
      const dir = localObjectsDir(dataDir, dataset);
      for (const key of await listFiles(dir)) {
        await moto.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}${key}`, Body: await readFile(path.join(dir, key)) }));
      }
    } catch (err) {
      moto.stop();
      throw err;
    }
    return {
      env: { AWS_ENDPOINT_URL_S3: moto.endpoint },
      describe: `${source.url} (moto_server at ${moto.endpoint}, objects from ${path.relative(process.cwd(), localObjectsDir(dataDir, dataset)) || '.'})`,
      ...(moto.pid !== undefined ? { pid: moto.pid } : {}),
      s3: moto.s3,
      close: () => Promise.resolve(moto.stop()),
    };
  };
}
