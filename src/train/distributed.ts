// Where a data-parallel process finds its peers: an explicit option or the
// environment torchrun (and `torch.distributed.launch`, `vgg-native launch`)
// sets for each process, which src/settings.ts reads; which backend averages
// CUDA gradients; and the codes of the process group's faults.
import { ModelError, type ModelErrorCode } from '../errors';
import { type DistBackend, type Environment, setting, torchrunSettings } from '../settings';
import { checkBoolean, checkInteger, checkObject, checkOneOf, checkString, invalidRange, isPlainObject, orDefault } from '../validate';

/**
 * Explicit coordinates for data-parallel fine-tuning over processes
 * ({@link FineTuneOptions.distributed}), as torchrun's MASTER_ADDR,
 * MASTER_PORT, WORLD_SIZE and RANK give them: rank 0 hosts the c10d TCPStore,
 * gradients are averaged with an allreduce (Gloo, or NCCL for CUDA tensors).
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
  /**
   * How long to wait for the other ranks, milliseconds, at least 1000: at the
   * rendezvous (a late rank is waited for this long; ModelError
   * 'RENDEZVOUS_TIMEOUT' after it) and in each collective (a rank that died or
   * is cut off makes the others fail with ModelError 'RANK_LOST' within it,
   * plus 2.5 heartbeats of a tenth of it, 0.2..5 s, to find which rank).
   * Default: 300000 (5 min).
   */
  timeoutMs?: number;
  /**
   * Which backend averages gradients of a model on CUDA: 'auto' (NCCL when
   * the LibTorch has it, else Gloo), 'nccl' (an error on the CPU or without
   * NCCL) or 'gloo' (NCCL refuses two ranks on one GPU). CPU models always use
   * Gloo. Every rank must pass the same. Default: VGG_NATIVE_DIST_BACKEND, else 'auto'.
   */
  backend?: DistBackend;
}

export interface ResolvedDistributed {
  rank: number;
  worldSize: number;
  /** LOCAL_RANK from the environment: pick the device with it (`device: \`cuda:${localRank}\``). */
  localRank: number;
  masterAddr: string;
  masterPort: number;
  timeoutMs: number;
  /** 'nccl' or 'gloo' when chosen (the option, else VGG_NATIVE_DIST_BACKEND); absent means 'auto'. Hand it to setDistributed as is. */
  backend?: 'nccl' | 'gloo';
}

const DEFAULT_PORT = 29500;
const DEFAULT_TIMEOUT_MS = 300_000;
const BACKENDS: readonly DistBackend[] = ['auto', 'nccl', 'gloo'];

/** The backend field of a resolved config: present only when not 'auto', so the common case reads as before. */
function backendField(backend: DistBackend): Pick<ResolvedDistributed, 'backend'> {
  return backend === 'auto' ? {} : { backend };
}

/**
 * The torchrun environment (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK,
 * LOCAL_RANK, as src/settings.ts reads them) and VGG_NATIVE_DIST_BACKEND, or
 * undefined when WORLD_SIZE is unset or 1.
 *
 * @param env - Default: this process's environment (through src/settings.ts).
 * @throws SettingsError 'BAD_SETTING' naming the variable
 */
export function distributedFromEnv(env?: Environment): ResolvedDistributed | undefined {
  const t = torchrunSettings(env);
  if (!t) return undefined;
  return { ...t, timeoutMs: DEFAULT_TIMEOUT_MS, ...backendField(setting('distBackend', env)) };
}

/**
 * fineTune's `distributed` option: false = single process; an object = those
 * coordinates; true = the environment, which must then describe > 1 process;
 * undefined = the environment when WORLD_SIZE > 1, else single process.
 *
 * @param env - the environment torchrun's variables and VGG_NATIVE_DIST_BACKEND come from. Default: this process's environment.
 */
export function resolveDistributed(value: unknown, env?: Environment): ResolvedDistributed | undefined {
  if (value === undefined) return distributedFromEnv(env);
  if (typeof value === 'boolean') {
    if (!checkBoolean('options.distributed', value)) return undefined;
    const fromEnv = distributedFromEnv(env);
    if (!fromEnv) {
      throw invalidRange(
        'options.distributed',
        'false, an object { rank, worldSize, masterAddr, masterPort }, or true with WORLD_SIZE > 1 and RANK set in the environment (as torchrun sets them)',
        'true while WORLD_SIZE is unset or 1',
      );
    }
    return fromEnv;
  }
  if (!isPlainObject(value))
    throw invalidRange('options.distributed', 'a boolean or an object { rank, worldSize, masterAddr?, masterPort?, timeoutMs?, backend? }', value);
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
    ...backendField(orDefault(o.backend, undefined, (v) => checkOneOf('options.distributed.backend', v, BACKENDS)) ?? setting('distBackend', env)),
  };
}

/** The codes native/distributed.cc tags its deliberate errors with: "[<CODE> ranks=<r,...>] <message>". */
const TAGGED = /^\[(RENDEZVOUS_TIMEOUT|RENDEZVOUS_MISMATCH|RANK_LOST) ranks=[\d,]*\] /;

/**
 * A process-group failure as its coded ModelError ('RENDEZVOUS_TIMEOUT',
 * 'RENDEZVOUS_MISMATCH', 'RANK_LOST', the message naming the ranks); any other
 * error unchanged. The native side can only send a message, so the code
 * travels in it and is taken off here.
 */
export function distributedError(e: unknown): unknown {
  if (!(e instanceof ModelError) || e.code !== 'NATIVE') return e;
  const m = TAGGED.exec(e.message);
  return m ? new ModelError(m[1] as ModelErrorCode, e.message.slice(m[0].length), { cause: e }) : e;
}
