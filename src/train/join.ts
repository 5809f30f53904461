// Joining the process group once per model: the native side keeps the group
// (and rank 0's TCPStore, which holds the port) for the model's lifetime, so
// a second fineTune on the same model reuses it (re-broadcasting rank 0's
// weights) rather than rendezvousing again.
import { ModelError } from '../errors';
import type { ModelCore } from '../core/model-core';
import { distributedError, type ResolvedDistributed } from './distributed';

const joined = new WeakMap<ModelCore, string>();

/**
 * Joins `model` to the process group `d` describes (or re-broadcasts rank 0's weights when it already is).
 * @throws ModelError 'ALREADY_DISTRIBUTED', 'RENDEZVOUS_TIMEOUT', 'RENDEZVOUS_MISMATCH', 'RANK_LOST'
 */
export async function joinDistributed(model: ModelCore, d: ResolvedDistributed): Promise<void> {
  try {
    await join(model, d);
  } catch (e) {
    throw distributedError(e);
  }
}

async function join(model: ModelCore, d: ResolvedDistributed): Promise<void> {
  const key = `${d.masterAddr}:${d.masterPort}/${d.rank}/${d.worldSize}`;
  const before = joined.get(model);
  if (before === key) {
    // Already in the group (an earlier fineTune): the head may have been re-initialised per rank since.
    await model.broadcastWeights();
    return;
  }
  if (before !== undefined) {
    throw new ModelError(
      'ALREADY_DISTRIBUTED',
      `this model already trains in the process group ${before}; a model joins one group for its lifetime: create a new model for ${key}`,
    );
  }
  await model.joinProcessGroup({
    masterAddr: d.masterAddr,
    masterPort: d.masterPort,
    rank: d.rank,
    worldSize: d.worldSize,
    timeoutMs: d.timeoutMs,
    backend: d.backend,
  });
  joined.set(model, key);
}
