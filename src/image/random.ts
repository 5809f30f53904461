// A small seeded PRNG so augmentation is reproducible from a seed (Math.random is not seedable).
import { wrongType } from '../validate';

/** Returns uniform numbers in [0, 1). */
export type Rng = () => number;

/** mulberry32: 32-bit state, fast, good enough for augmentation draws (not for crypto). */
export function createRng(seed: number): Rng {
  if (typeof seed !== 'number' || !Number.isFinite(seed)) {
    throw wrongType(`Expected a finite number for seed but received ${String(seed)} of type ${typeof seed}`);
  }
  let a = Math.trunc(seed) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}

/** Integer in [lo, hi] inclusive (torch.randint(lo, hi + 1)). */
export function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}
