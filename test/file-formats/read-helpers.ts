/** Feeding readRecords the same bytes cut in different places, and collecting what comes out. */
import assert from 'node:assert/strict';
import { FileFormatError, readRecords, type ReadItem, type ReadRecordsOptions } from '../../runtime/file-formats';

/** The bytes as pieces cut at the given offsets (sorted, within the buffer). */
export function splitAt(bytes: Buffer, offsets: number[]): Buffer[] {
  const cuts = [...new Set(offsets.filter((o) => o > 0 && o < bytes.length))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const cut of cuts) {
    pieces.push(bytes.subarray(from, cut));
    from = cut;
  }
  pieces.push(bytes.subarray(from));
  return pieces;
}

export const oneBytePieces = (bytes: Buffer): Buffer[] => Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));

/** A small deterministic generator: the same seed gives the same cuts. */
export function randomCuts(length: number, count: number, seed: number): number[] {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  return Array.from({ length: count }, () => Math.floor(next() * length));
}

async function* piecesOf(pieces: Buffer[]): AsyncGenerator<Buffer> {
  for (const p of pieces) yield p;
}

export async function collect(pieces: Buffer[] | Buffer | string, options: ReadRecordsOptions): Promise<ReadItem[]> {
  const list = typeof pieces === 'string' ? [Buffer.from(pieces)] : Buffer.isBuffer(pieces) ? [pieces] : pieces;
  const items: ReadItem[] = [];
  for await (const item of readRecords(piecesOf(list), options)) items.push(item);
  return items;
}

/** What reading gives: the items, or the error (message and position) it stopped with, after the items before it. */
export async function outcome(pieces: Buffer[] | Buffer | string, options: ReadRecordsOptions): Promise<{ items: ReadItem[]; error?: { message: string; line?: number; byteOffset?: number } }> {
  const list = typeof pieces === 'string' ? [Buffer.from(pieces)] : Buffer.isBuffer(pieces) ? [pieces] : pieces;
  const items: ReadItem[] = [];
  try {
    for await (const item of readRecords(piecesOf(list), options)) items.push(item);
    return { items };
  } catch (err) {
    assert.ok(err instanceof FileFormatError, `expected a FileFormatError, got ${String(err)}`);
    return { items, error: { message: err.message, ...(err.position ?? {}) } };
  }
}

/**
 * Reading the bytes whole, one byte at a time, and cut at every offset (or, for long inputs,
 * at many random offsets) gives the same outcome.
 */
export async function assertSameAtEveryCut(bytes: Buffer, options: ReadRecordsOptions, expected?: Awaited<ReturnType<typeof outcome>>): Promise<Awaited<ReturnType<typeof outcome>>> {
  const whole = await outcome(bytes, options);
  if (expected) assert.deepEqual(whole, expected);
  assert.deepEqual(await outcome(oneBytePieces(bytes), options), whole, 'one byte per piece');
  const singleCuts = bytes.length <= 600 ? Array.from({ length: bytes.length - 1 }, (_, i) => [i + 1]) : Array.from({ length: 200 }, (_, k) => randomCuts(bytes.length, 1, k + 1));
  for (const cut of singleCuts) assert.deepEqual(await outcome(splitAt(bytes, cut), options), whole, `cut at ${cut.join(',')}`);
  for (let seed = 1; seed <= 20; seed++) {
    const cuts = randomCuts(bytes.length, 1 + (seed % 7) * 3, seed * 7919);
    assert.deepEqual(await outcome(splitAt(bytes, cuts), options), whole, `cut at ${cuts.join(',')}`);
  }
  return whole;
}
