// The environment of one rank, named as torchrun names it, so a script
// written for torchrun (or fineTune's `distributed` read from the
// environment, src/settings.ts) finds its place in the job unchanged.
import { childEnvironment } from '../settings';
import type { ResolvedLaunch } from './options';

/** The global rank of local rank `localRank` on this host. */
export function globalRank(o: ResolvedLaunch, localRank: number): number {
  return o.nodeRank * o.nprocPerNode + localRank;
}

/**
 * The variables torchrun sets, on top of `o.env` (or this process's
 * environment); OMP_NUM_THREADS 1 when unset and several ranks share the
 * host, as torchrun does, so the ranks do not fight over the cores.
 *
 * @param restart - how many times the group was restarted before (TORCHELASTIC_RESTART_COUNT)
 */
export function rankEnvironment(o: ResolvedLaunch, localRank: number, restart: number): Record<string, string | undefined> {
  const rank: Record<string, string> = {
    MASTER_ADDR: o.masterAddr,
    MASTER_PORT: String(o.masterPort),
    WORLD_SIZE: String(o.nnodes * o.nprocPerNode),
    RANK: String(globalRank(o, localRank)),
    LOCAL_RANK: String(localRank),
    LOCAL_WORLD_SIZE: String(o.nprocPerNode),
    GROUP_RANK: String(o.nodeRank),
    TORCHELASTIC_RESTART_COUNT: String(restart),
    TORCHELASTIC_MAX_RESTARTS: String(o.maxRestarts),
  };
  const base = o.env ?? childEnvironment();
  if (o.nprocPerNode > 1 && base.OMP_NUM_THREADS === undefined) rank.OMP_NUM_THREADS = '1';
  return { ...base, ...rank };
}
