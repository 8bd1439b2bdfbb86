/**
 * Whether raw objects can be read whole: a gzip object must decompress to its end (a truncated or
 * corrupt one would otherwise be read partly, or fail a whole batch). Used for engines that cannot
 * tell themselves (Athena reads the objects in S3 and either skips or fails on them): the object
 * is fetched through the store once and decompressed (streamed, not kept), a few at a time.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { ObjectStore } from '../../../runtime/object-store';
import type { UnreadableObject } from './engine';

/** Decompress to nowhere (streaming: the uncompressed text is never held in memory). */
const checkGzip = (body: Buffer): Promise<void> =>
  // 256 KiB output chunks: the 16 KiB default spends more on per-chunk JavaScript than on inflating.
  pipeline(Readable.from([body]), createGunzip({ chunkSize: 1 << 18 }), new Writable({ write: (_c, _e, cb) => cb() }));

export async function unreadableInStore(store: ObjectStore, keys: string[], concurrency = 4): Promise<UnreadableObject[]> {
  const bad: UnreadableObject[] = [];
  const check = async (key: string): Promise<void> => {
    const obj = await store.get(key);
    if (!obj) {
      bad.push({ key, error: 'listed but gone when read' });
      return;
    }
    if (obj.body.length < 2 || obj.body[0] !== 0x1f || obj.body[1] !== 0x8b) return;
    try {
      await checkGzip(obj.body);
    } catch (err) {
      bad.push({ key, error: (err as Error).message });
    }
  };
  for (let i = 0; i < keys.length; i += concurrency) await Promise.all(keys.slice(i, i + concurrency).map(check));
  return bad.sort((a, b) => a.key.localeCompare(b.key));
}
