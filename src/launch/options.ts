// What `vgg-native launch` is asked to start, in torchrun's vocabulary,
// validated once here; everything after trusts the resolved values.
import { checkInteger, checkObject, checkString, invalidRange, orDefault } from '../validate';

/**
 * One host's share of a data-parallel job, as torchrun's flags give it.
 * WORLD_SIZE is nnodes × nprocPerNode; this host's ranks are
 * nodeRank × nprocPerNode + 0..nprocPerNode-1.
 */
export interface LaunchOptions {
  /** The command each rank runs: an executable and its arguments (the CLI puts `node` and the script first). */
  command: readonly string[];
  /** Ranks on this host (LOCAL_WORLD_SIZE), an integer in 1..1024. Default: 1. */
  nprocPerNode?: number;
  /** Hosts in the job, an integer in 1..65536. Default: 1. */
  nnodes?: number;
  /** This host's index (GROUP_RANK), in [0, nnodes). Default: 0. */
  nodeRank?: number;
  /** Host of rank 0, where its c10d TCPStore listens (MASTER_ADDR). Default: '127.0.0.1'. */
  masterAddr?: string;
  /** Port of rank 0's store (MASTER_PORT), 1..65535. Default: 29500 (torchrun's). */
  masterPort?: number;
  /** How often the whole local group is started again after a rank fails, an integer in 0..1000. Default: 0. */
  maxRestarts?: number;
  /** How long a stopped rank gets between SIGTERM and SIGKILL, milliseconds, 0..600000. Default: 5000. */
  stopGraceMs?: number;
  /** The environment the ranks start from (the rank variables are set on top). Default: this process's. */
  env?: Readonly<Record<string, string | undefined>>;
}

export type ResolvedLaunch = Required<Omit<LaunchOptions, 'env'>> & { env: Readonly<Record<string, string | undefined>> | undefined };

const DEFAULT_PORT = 29500;
const DEFAULT_STOP_GRACE_MS = 5000;

/** @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' naming the option */
export function resolveLaunchOptions(options: LaunchOptions): ResolvedLaunch {
  const o = checkObject('options', options);
  if (!Array.isArray(o.command) || o.command.length === 0)
    throw invalidRange('options.command', 'a non-empty array of strings (the program each rank runs, then its arguments)', o.command);
  const command = o.command.map((c, i) => checkString(`options.command[${i}]`, c));
  const nnodes = orDefault(o.nnodes, 1, (v) => checkInteger('options.nnodes', v, 1, 65536));
  return {
    command,
    nprocPerNode: orDefault(o.nprocPerNode, 1, (v) => checkInteger('options.nprocPerNode', v, 1, 1024)),
    nnodes,
    nodeRank: orDefault(o.nodeRank, 0, (v) => checkInteger('options.nodeRank', v, 0, nnodes - 1)),
    masterAddr: orDefault(o.masterAddr, '127.0.0.1', (v) => checkString('options.masterAddr', v)),
    masterPort: orDefault(o.masterPort, DEFAULT_PORT, (v) => checkInteger('options.masterPort', v, 1, 65535)),
    maxRestarts: orDefault(o.maxRestarts, 0, (v) => checkInteger('options.maxRestarts', v, 0, 1000)),
    stopGraceMs: orDefault(o.stopGraceMs, DEFAULT_STOP_GRACE_MS, (v) => checkInteger('options.stopGraceMs', v, 0, 600_000)),
    env: o.env === undefined ? undefined : (checkObject('options.env', o.env) as Record<string, string | undefined>),
  };
}
