// `vgg-native launch` as a function: this host's ranks started, watched and,
// after a failure, started again up to maxRestarts times; a script that
// resumes from its checkpoint (fineTune's `resume: true` with a
// checkpointDir) then continues where the group stopped.
import { AbortError, ModelError } from '../errors';
import { runGroup } from './group';
import { type LaunchOptions, resolveLaunchOptions } from './options';
import { describeExit, type LaunchOutput } from './rank-process';

/** What a launch did. */
export interface LaunchResult {
  /** How often the group was restarted before every rank exited 0. */
  restarts: number;
}

/**
 * Starts `options.nprocPerNode` ranks of `options.command` on this host with
 * torchrun's environment (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK,
 * LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, TORCHELASTIC_RESTART_COUNT), their
 * output prefixed "[rank<N>]: ". When a rank exits with an error the others
 * get SIGTERM (SIGKILL after `stopGraceMs`); with restarts left the group is
 * started again, else the launch fails. Run it once per host, each with its
 * `nodeRank`.
 *
 * @param out - where the ranks' lines go. Default: this process's stdout and stderr.
 * @param signal - aborting stops the ranks and rejects with an AbortError
 * @returns once every rank of an attempt exited 0
 * @throws ModelError 'RANK_FAILED' with the first failure's message ("rank 1 (local rank 1) exited with code 1: <its last error line>") when no restart is left; AbortError; TypeError/RangeError for bad options
 * @example
 * ```ts
 * await launch({ command: [process.execPath, 'train.js'], nprocPerNode: 2, maxRestarts: 1 });
 * ```
 */
export async function launch(
  options: LaunchOptions,
  out: LaunchOutput = { stdout: process.stdout, stderr: process.stderr },
  signal?: AbortSignal,
): Promise<LaunchResult> {
  const o = resolveLaunchOptions(options);
  for (let restart = 0; ; restart++) {
    if (signal?.aborted) throw new AbortError();
    const outcome = await runGroup(o, restart, out, signal);
    if (signal?.aborted) throw new AbortError();
    if (outcome.ok) return { restarts: restart };
    const why = describeExit(outcome.failure);
    if (restart >= o.maxRestarts) {
      const after = o.maxRestarts > 0 ? ` (after ${restart} restart${restart === 1 ? '' : 's'})` : '';
      throw new ModelError('RANK_FAILED', `${why}; the other ranks were stopped${after}`);
    }
    out.stderr.write(`vgg-native launch: ${why}; restarting the group (${restart + 1} of ${o.maxRestarts})\n`);
  }
}
