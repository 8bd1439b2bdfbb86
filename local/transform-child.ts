/**
 * Entry of the local pipeline's transform process (started by ./transform-process.ts, never by
 * hand): the crawl and the DuckDB transform run here, in a process that starts small and ends
 * with them, so DuckDB's memory never adds to what the fetch phase left in the pipeline's heap.
 * Exits when told to or when the parent is gone.
 */
import { crawlRaw } from '../containers/transform/src/catalog';
import { runTransform } from '../containers/transform/src/transform';
import { LocalObjectStore } from '../runtime/object-store';
import type { TransformChildMessage, TransformParentMessage } from './transform-process';

const send = (m: TransformChildMessage): void => {
  if (process.connected) process.send!(m);
};

process.on('disconnect', () => process.exit(0));
// Ctrl-C reaches the whole process group: the parent decides what stops and when.
process.on('SIGINT', () => {});

process.on('message', (m: TransformParentMessage) => {
  if (m.type === 'close') process.exit(0);
  const work =
    m.type === 'crawl'
      ? crawlRaw(m.opts)
      : runTransform({
          ...m.opts,
          engine: 'duckdb',
          rawStore: new LocalObjectStore(m.opts.rawDir),
          curatedStore: new LocalObjectStore(m.opts.curatedDir),
          log: (line) => send({ type: 'log', line }),
        });
  work.then(
    (value) => send({ type: 'result', id: m.id, value }),
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      // The name travels: the CLI tells a refused mass delete (exit 4) from a crash by it.
      send({ type: 'result', id: m.id, error: { name: e.name, message: e.message } });
    },
  );
});
