/**
 * The generated source of `npm run local` for a file dataset (`source.type: "file"`): the file,
 * written from generated records in the dataset's format and compression, served over real HTTP
 * at the declared URL's path with the headers a publisher's server sends (a strong ETag,
 * Last-Modified, 304 to a conditional request that names the current version). The fetcher reads
 * it through the deployed adapter (http-file-source.ts) with SOURCE_ENDPOINT_URL pointing here.
 *
 * The file and its version are kept under `<dataDir>/local-files/<dataset>/`: a run with the same
 * `--rows` and seed serves the same version (the fetcher reads nothing), a different one writes a
 * new version (inserts, or a smaller dataset whose missing keys are deletions). Tests write their
 * own versions with writeLocalFileVersion (updates, deletions, malformed lines).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import type { DatasetConfig } from '../runtime/dataset-config';
import { writeFileDurably } from './durable-file';
import { genericRecords, sourceBytes, type RecordGenerator, type SourceContent } from './generated-records';
import type { LocalSourceEndpoint, LocalSourceRequest } from './local-source-endpoint';

type FileSource = Extract<DatasetConfig['source'], { type: 'file' }>;

interface FileVersion {
  /** What generated it; absent when a test wrote it (a run then keeps it whatever its --rows). */
  generated?: { rows: number; seed: number };
  etag: string;
  /** Whole seconds (HTTP dates have no more), each version's later than the one before. */
  lastModified: string;
}

function fileSource(dataset: DatasetConfig): FileSource {
  if (dataset.source.type !== 'file') throw new Error(`dataset ${dataset.name} is not a file source`);
  return dataset.source;
}

const sourceDir = (dataDir: string, dataset: DatasetConfig): string => path.join(dataDir, 'local-files', dataset.name);
const stateFile = (dataDir: string, dataset: DatasetConfig): string => path.join(sourceDir(dataDir, dataset), 'version.json');
/** The file's bytes on disk, named as the URL names it. */
export const localFilePath = (dataDir: string, dataset: DatasetConfig): string =>
  path.join(sourceDir(dataDir, dataset), 'file', path.basename(new URL(fileSource(dataset).url).pathname) || 'data');

/** Gzipped when the definition says so, or says auto and the URL ends in .gz (as a publisher's would be). */
const gzipped = (source: FileSource): boolean => source.compression === 'gzip' || (source.compression !== 'none' && /\.gz$/i.test(new URL(source.url).pathname));

async function readVersion(dataDir: string, dataset: DatasetConfig): Promise<FileVersion | undefined> {
  return readFile(stateFile(dataDir, dataset), 'utf8').then(
    (t) => JSON.parse(t) as FileVersion,
    () => undefined,
  );
}

/**
 * Writes a new version of the dataset's file: `records` (or `text`, for malformed files) in its
 * format, gzipped as declared. Returns the new version's ETag.
 */
export async function writeLocalFileVersion(
  dataDir: string,
  dataset: DatasetConfig,
  content: SourceContent,
  generated?: FileVersion['generated'],
): Promise<string> {
  const source = fileSource(dataset);
  const bytes = sourceBytes(dataset, source.format, gzipped(source), content);
  const previous = await readVersion(dataDir, dataset);
  const now = Math.floor(Date.now() / 1000) * 1000;
  const lastModified = new Date(Math.max(now, previous ? Date.parse(previous.lastModified) + 1000 : 0)).toISOString();
  const etag = `"${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}"`;
  await writeFileDurably(localFilePath(dataDir, dataset), bytes);
  const version: FileVersion = { ...(generated ? { generated } : {}), etag, lastModified };
  await writeFileDurably(stateFile(dataDir, dataset), `${JSON.stringify(version)}\n`);
  return etag;
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as { port: number }).port}`));
  });
}

/** Starts the file server; `generate` gives an example dataset's own records (local/seed-rows). */
export function localFileSource(generate?: RecordGenerator) {
  return async ({ dataset, dataDir, rows, seed }: LocalSourceRequest): Promise<LocalSourceEndpoint & { requests: { status: number; conditional: boolean }[] }> => {
    const source = fileSource(dataset);
    const version = await readVersion(dataDir, dataset);
    const regenerate = !version || (version.generated !== undefined && (version.generated.rows !== rows || version.generated.seed !== seed));
    if (regenerate) {
      const records = generate?.(dataset, rows, seed) ?? genericRecords(dataset, rows, seed);
      await writeLocalFileVersion(dataDir, dataset, { records: (function* () { for (const r of records) yield r.record; })() }, { rows, seed });
    }
    const file = localFilePath(dataDir, dataset);
    const servedPath = new URL(source.url).pathname;
    const requests: { status: number; conditional: boolean }[] = [];
    const server = createServer((req, res) => {
      void (async () => {
        // Read per request: a test may write a new version while the server runs.
        const current = (await readVersion(dataDir, dataset))!;
        const conditional = req.headers['if-none-match'] !== undefined || req.headers['if-modified-since'] !== undefined;
        const answer = (status: number): void => void requests.push({ status, conditional });
        if (new URL(req.url ?? '/', 'http://local').pathname !== servedPath || (req.method !== 'GET' && req.method !== 'HEAD')) {
          answer(404);
          res.writeHead(404).end();
          return;
        }
        const lastModified = new Date(current.lastModified).toUTCString();
        const headers = { ETag: current.etag, 'Last-Modified': lastModified };
        const since = req.headers['if-modified-since'] ? Date.parse(req.headers['if-modified-since']) : NaN;
        const inm = req.headers['if-none-match'];
        if (inm !== undefined ? inm.split(',').some((t) => t.trim() === current.etag) : since >= Date.parse(current.lastModified)) {
          answer(304);
          res.writeHead(304, headers).end();
          return;
        }
        const { size } = await stat(file);
        answer(200);
        res.writeHead(200, { ...headers, 'Content-Length': size, 'Content-Type': gzipped(source) ? 'application/gzip' : 'text/plain; charset=utf-8' });
        if (req.method === 'HEAD') res.end();
        else createReadStream(file).pipe(res);
      })().catch((err: unknown) => res.writeHead(500).end(String(err)));
    });
    const origin = await listen(server);
    return {
      env: { SOURCE_ENDPOINT_URL: origin },
      describe: `${source.url} (served from ${path.relative(process.cwd(), file) || file} at ${origin})`,
      requests,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  };
}
