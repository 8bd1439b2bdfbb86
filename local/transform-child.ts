/**
 * Entry of the local pipeline's transform process (started by ./transform-process.ts, never by
 * hand): the crawl and the transform (DuckDB, or Athena on a local Trino) run here, in a process that starts small and ends
 * with them, so DuckDB's memory never adds to what the fetch phase left in the pipeline's heap.
 * Exits when told to or when the parent is gone.
 */
import { crawlRaw, queryCatalog } from '../containers/transform/src/catalog';
import { runTransform } from '../containers/transform/src/transform';
import type { DatasetConfig } from '../runtime/dataset-config';
import { LocalObjectStore } from '../runtime/object-store';
import { errorReport } from '../runtime/pipeline-error';
import type { LocalAthena } from './athena-local';
import { localAthenaRunEngine, openLocalAthena, queryAthena } from './local-engine';
import type { TransformChildMessage, TransformOptions, TransformParentMessage } from './transform-process';

const send = (m: TransformChildMessage): void => {
  if (process.connected) process.send!(m);
};

// Trino, started on the first Athena call and kept for the run (a repair transforms twice).
let athena: Promise<LocalAthena> | undefined;
const athenaFor = (dataDir: string, dataset: DatasetConfig | undefined): Promise<LocalAthena> =>
  (athena ??= openLocalAthena(dataDir, dataset, (line) => send({ type: 'log', line })));
const exit = (): void => {
  // Trino's watchdog also ends it when this process is gone; a clean stop is quicker.
  void (athena ?? Promise.resolve(undefined)).then((a) => a?.close()).finally(() => process.exit(0));
};

process.on('disconnect', exit);
// Ctrl-C reaches the whole process group: the parent decides what stops and when.
process.on('SIGINT', () => {});

async function transform(opts: TransformOptions) {
  const { engine: name, dataDir, ...rest } = opts;
  const engine = name === 'athena' ? localAthenaRunEngine(await athenaFor(dataDir, opts.dataset), dataDir, opts.dataset, opts.runId) : ('duckdb' as const);
  return runTransform({
    ...rest,
    engine,
    rawStore: new LocalObjectStore(opts.rawDir),
    curatedStore: new LocalObjectStore(opts.curatedDir),
    log: (line) => send({ type: 'log', line }),
  });
}

process.on('message', (m: TransformParentMessage) => {
  if (m.type === 'close') return exit();
  const work: Promise<unknown> =
    m.type === 'crawl'
      ? crawlRaw(m.opts)
      : m.type === 'query'
        ? m.opts.engine === 'athena'
          ? athenaFor(m.opts.dataDir, undefined).then((a) => queryAthena(a, m.opts.sql))
          : queryCatalog(m.opts.catalogPath, m.opts.sql)
        : transform(m.opts);
  work.then(
    (value) => send({ type: 'result', id: m.id, value }),
    // The category travels with the name: the CLI tells a refused mass delete (exit 4) from a crash by it.
    (err: unknown) => send({ type: 'result', id: m.id, error: errorReport(err) }),
  );
});
