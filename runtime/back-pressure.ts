/**
 * Waiting out a full stream buffer. A writer whose write() returned false waits for `drain`; it
 * also stops waiting on `close`, because a stream destroyed meanwhile never drains.
 */
import type { EventEmitter } from 'node:events';

export function drainedOrClosed(stream: EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
