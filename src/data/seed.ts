// Seeds derived from (purpose, seed, epoch, item): every random draw in data
// loading depends only on these numbers, never on timing or on which process
// (rank) or resume point asked for it.
import { createRng, type Rng } from '../image/random';

export const PURPOSE = { order: 1, augment: 2, split: 3 } as const;

/** murmur3's 32-bit finaliser: a bijection with full avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hashes non-negative safe integers into one 32-bit seed (both halves of each number count). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    const lo = p >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    h = fmix32((h ^ Math.imul(lo, 0xcc9e2d51)) + 0x6b43a9b5);
    h = fmix32((h ^ Math.imul(hi, 0x1b873593)) + 0x2545f491);
  }
  return h;
}

export function rngFor(...parts: number[]): Rng {
  return createRng(mixSeed(...parts));
}

/** Fisher–Yates shuffle of `values` in place. */
export function shuffleInPlace<T>(values: T[], rng: Rng): T[] {
  for (let i = values.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = values[i];
    values[i] = values[j];
    values[j] = t;
  }
  return values;
}

/** 0..n-1 in a random order fixed by the rng. */
export function permutation(n: number, rng: Rng): number[] {
  return shuffleInPlace(
    Array.from({ length: n }, (_, i) => i),
    rng,
  );
}
