// One attempt of this host's ranks: all started together, watched, and when
// one fails the others are stopped (their peers would otherwise wait out the
// timeout in a collective), as torchrun's local agent does.
import type { ResolvedLaunch } from './options';
import { rankEnvironment, globalRank } from './rank-env';
import { type LaunchOutput, type RankExit, RankProcess } from './rank-process';

/** How an attempt ended: every rank exited 0, or the first failure (others were stopped after it). */
export type GroupOutcome = { ok: true } | { ok: false; failure: RankExit };

/**
 * Runs the local ranks once; settles when all have exited.
 * @param restart - the attempt's number, 0 first (TORCHELASTIC_RESTART_COUNT)
 * @param signal - aborting stops every rank
 */
export function runGroup(o: ResolvedLaunch, restart: number, out: LaunchOutput, signal?: AbortSignal): Promise<GroupOutcome> {
  const ranks = Array.from(
    { length: o.nprocPerNode },
    (_, local) => new RankProcess(globalRank(o, local), local, o.command, rankEnvironment(o, local, restart), out),
  );
  const stopAll = () => {
    for (const r of ranks) r.stop(o.stopGraceMs);
  };
  signal?.addEventListener('abort', stopAll, { once: true });
  let failure: RankExit | undefined;
  return Promise.all(
    ranks.map(async (r) => {
      const exit = await r.exited;
      if (failure === undefined && !r.stopping && exit.code !== 0) {
        failure = exit;
        stopAll();
      }
    }),
  ).then(() => {
    signal?.removeEventListener('abort', stopAll);
    return failure ? { ok: false, failure } : { ok: true };
  });
}
