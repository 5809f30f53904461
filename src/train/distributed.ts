// Where a data-parallel process finds its peers: an explicit option or the
// environment torchrun (and `torch.distributed.launch`) sets for each process.
import { checkBoolean, checkInteger, checkObject, checkString, invalidRange, isPlainObject, orDefault } from '../validate';

/**
 * Explicit coordinates for data-parallel fine-tuning over processes
 * ({@link FineTuneOptions.distributed}), as torchrun's MASTER_ADDR,
 * MASTER_PORT, WORLD_SIZE and RANK give them: rank 0 hosts the c10d TCPStore,
 * gradients are averaged with Gloo's allreduce.
 */
export interface DistributedOptions {
  /** This process's rank, an integer in [0, worldSize); rank 0 writes the checkpoints. */
  rank: number;
  /** Number of processes, a positive integer. */
  worldSize: number;
  /** Host of rank 0's TCPStore. Default: '127.0.0.1'. */
  masterAddr?: string;
  /** Port of rank 0's TCPStore, 1..65535. Default: 29500 (torchrun's). */
  masterPort?: number;
  /** How long to wait for the other ranks (rendezvous and each collective), milliseconds, at least 1000. Default: 300000 (5 min). */
  timeoutMs?: number;
}

export interface ResolvedDistributed {
  rank: number;
  worldSize: number;
  /** LOCAL_RANK from the environment: pick the device with it (`device: \`cuda:${localRank}\``). */
  localRank: number;
  masterAddr: string;
  masterPort: number;
  timeoutMs: number;
}

const DEFAULT_PORT = 29500;
const DEFAULT_TIMEOUT_MS = 300_000;

function envInteger(env: NodeJS.ProcessEnv, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw.trim())) throw invalidRange(`environment variable ${name}`, `an integer between ${min} and ${max}`, raw);
  return checkInteger(`environment variable ${name}`, Number(raw.trim()), min, max);
}

/**
 * The torchrun environment (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK,
 * LOCAL_RANK), or undefined when WORLD_SIZE is unset or 1.
 */
export function distributedFromEnv(env: NodeJS.ProcessEnv = process.env): ResolvedDistributed | undefined {
  const worldSize = envInteger(env, 'WORLD_SIZE', 1);
  if (worldSize === undefined || worldSize === 1) return undefined;
  const rank = envInteger(env, 'RANK', 0, worldSize - 1);
  if (rank === undefined) {
    throw invalidRange('environment variable RANK', `an integer between 0 and ${worldSize - 1} (WORLD_SIZE is ${worldSize})`, env.RANK);
  }
  return {
    rank,
    worldSize,
    localRank: envInteger(env, 'LOCAL_RANK', 0) ?? rank,
    masterAddr: env.MASTER_ADDR && env.MASTER_ADDR.length > 0 ? env.MASTER_ADDR : '127.0.0.1',
    masterPort: envInteger(env, 'MASTER_PORT', 1, 65535) ?? DEFAULT_PORT,
    timeoutMs: DEFAULT_TIMEOUT_MS,
  };
}

/**
 * fineTune's `distributed` option: false = single process; an object = those
 * coordinates; true = the environment, which must then describe > 1 process;
 * undefined = the environment when WORLD_SIZE > 1, else single process.
 */
export function resolveDistributed(value: unknown, env: NodeJS.ProcessEnv = process.env): ResolvedDistributed | undefined {
  if (value === undefined) return distributedFromEnv(env);
  if (typeof value === 'boolean') {
    if (!checkBoolean('options.distributed', value)) return undefined;
    const fromEnv = distributedFromEnv(env);
    if (!fromEnv) {
      throw invalidRange(
        'options.distributed',
        'false, an object { rank, worldSize, masterAddr, masterPort }, or true with WORLD_SIZE > 1 and RANK set in the environment (as torchrun sets them)',
        `true with WORLD_SIZE=${env.WORLD_SIZE ?? '(unset)'}`,
      );
    }
    return fromEnv;
  }
  if (!isPlainObject(value))
    throw invalidRange('options.distributed', 'a boolean or an object { rank, worldSize, masterAddr?, masterPort?, timeoutMs? }', value);
  const o = checkObject('options.distributed', value);
  const worldSize = checkInteger('options.distributed.worldSize', o.worldSize, 1);
  const rank = checkInteger('options.distributed.rank', o.rank, 0, worldSize - 1);
  return {
    rank,
    worldSize,
    localRank: orDefault(o.localRank, rank, (v) => checkInteger('options.distributed.localRank', v, 0)),
    masterAddr: orDefault(o.masterAddr, '127.0.0.1', (v) => checkString('options.distributed.masterAddr', v)),
    masterPort: orDefault(o.masterPort, DEFAULT_PORT, (v) => checkInteger('options.distributed.masterPort', v, 1, 65535)),
    timeoutMs: orDefault(o.timeoutMs, DEFAULT_TIMEOUT_MS, (v) => checkInteger('options.distributed.timeoutMs', v, 1000)),
  };
}
