/**
 * One random stream per record, derived from (seed, record number) alone: record i is the same
 * whatever the number of records asked for, which is what makes a larger `rows` a publisher's
 * inserts (the same first records, then new ones) rather than a different file.
 */
import { seededRandom } from '../fire-incidents-generator';

export type Random = () => number;

/** The random stream of record `index` under `seed` (a 32-bit mix of both, then mulberry32). */
export function recordRandom(seed: number, index: number, salt = 0): Random {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35) ^ Math.imul(salt + 1, 0x27d4eb2f);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return seededRandom((h ^ (h >>> 16)) >>> 0);
}

export const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

/** An item of `weighted` ([item, weight] pairs), chosen in proportion to its weight. */
export function pickWeighted<T>(random: Random, weighted: readonly (readonly [T, number])[]): T {
  const total = weighted.reduce((s, [, w]) => s + w, 0);
  let r = random() * total;
  for (const [item, w] of weighted) {
    r -= w;
    if (r < 0) return item;
  }
  return weighted[weighted.length - 1]![0];
}

export const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** A whole number in [min, max]. */
export const between = (random: Random, min: number, max: number): number => min + Math.floor(random() * (max - min + 1));
