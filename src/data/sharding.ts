// Which dataset items make up step s of epoch e on rank r: pure arithmetic on
// (seed, epoch), shared by every rank and by a resumed run.
import { PURPOSE, permutation, rngFor } from './seed';

/** How an epoch is cut into global batches and each batch into rank shards. */
export interface ShardingOptions {
  batchSize: number; // global batch, over all ranks
  shuffle: boolean;
  seed: number;
  dropLast: boolean;
  rank: number;
  worldSize: number;
}

export function stepsPerEpoch(n: number, batchSize: number, dropLast: boolean): number {
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/** The epoch's item order: a seeded permutation of (seed, epoch), or 0..n-1 unshuffled. */
export function epochOrder(n: number, epoch: number, o: Pick<ShardingOptions, 'shuffle' | 'seed'>): number[] {
  return o.shuffle ? permutation(n, rngFor(PURPOSE.order, o.seed, epoch)) : Array.from({ length: n }, (_, i) => i);
}

/**
 * This rank's slice of global batch `step`: of the batch's m items, rank r
 * takes [floor(r*m/W), floor((r+1)*m/W)) — exactly [r*B/W, (r+1)*B/W) for a
 * full batch, and an even split of a short last batch. Concatenating the
 * ranks' slices in rank order gives the single-process batch.
 */
export function shardOfStep(order: readonly number[], step: number, o: ShardingOptions): { indices: number[]; globalSize: number } {
  const start = step * o.batchSize;
  const m = Math.min(o.batchSize, order.length - start);
  const lo = Math.floor((o.rank * m) / o.worldSize);
  const hi = Math.floor(((o.rank + 1) * m) / o.worldSize);
  return { indices: order.slice(start + lo, start + hi), globalSize: m };
}
