import { type AddonInfo, loadAddon, loadBinding, type NativeRuntime } from './binding';
import { readSettings, type Settings, type TorchrunSettings, torchrunSettings } from './settings';
import { checkInteger, checkKnownKeys, checkObject, orDefault } from './validate';

/** Every setting's effective value, as {@link runtime} reports it. */
export type EffectiveSettings = Settings & {
  /** The torchrun coordinates (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), or null when WORLD_SIZE is unset or 1. */
  torchrun: TorchrunSettings | null;
};

/** What {@link runtime} returns: the facts of this build and process (see {@link NativeRuntime} for each field), which addon file is loaded, and every setting. */
export type Runtime = Omit<NativeRuntime, 'settings'> & {
  /** The loaded addon: 'prebuilt' (the platform package), 'source' (`npx vgg-native build`) or 'env' (VGG_NATIVE_ADDON), and its path. */
  addon: AddonInfo;
  /**
   * The effective value of every setting (README "Environment"): the native
   * ones (onednn, tf32, hostCacheMb, workerNice, gemv, convAlgo) as native
   * code runs with them (read from the environment when the addon loaded;
   * hostCacheMb as {@link hostCache} last set it), the others as the
   * environment holds them now.
   */
  settings: EffectiveSettings;
};

/**
 * What this build of the addon runs on: which addon file, LibTorch version, CUDA and cuDNN,
 * thread counts, c10d/Gloo, the caching CPU allocator's counters, the oneDNN
 * engine, the fully connected kernel, and the effective value of every
 * setting. Read fresh on every call.
 *
 * @returns a new {@link Runtime} object
 * @throws {@link ModelError} 'NATIVE' when the native addon is not built (the message names the paths searched)
 * @throws {@link SettingsError} 'BAD_SETTING' when an environment variable the package reads holds a bad value
 * @example
 * ```ts
 * import { runtime } from 'vgg-native';
 *
 * const r = runtime();
 * console.log(r.torchVersion, r.cuda ? `${r.cudaDevices} GPU(s)` : 'CPU', r.threads, r.onednn.isa, r.settings.gemv);
 * ```
 */
export function runtime(): Runtime {
  const { binding, info } = loadAddon();
  const { settings: native, ...facts } = binding.runtime();
  return { ...facts, addon: info, settings: { ...readSettings(), ...native, torchrun: torchrunSettings() ?? null } };
}

/** The options of {@link hostCache}. */
export interface HostCacheOptions {
  /** Most memory the caching CPU allocator keeps for reuse from now on, MiB, an integer in 0..1048576; 0 frees what it holds and stops caching. Default: unchanged (VGG_NATIVE_HOST_CACHE_MB at load, else 2048). */
  limitMb?: number;
}

/** What {@link hostCache} returns: the caching CPU allocator's cap and counters after the call. */
export interface HostCacheInfo {
  /** The cap in force, MiB. */
  limitMb: number;
  /** Bytes held for reuse now. */
  cachedBytes: number;
  /** Large allocations served from the cache so far. */
  hits: number;
  /** Large allocations that went to the system so far. */
  misses: number;
  /** Parked blocks freed so far to keep the cache under its cap, least recently parked first. */
  evictions: number;
}

/**
 * Sets and reports the caching CPU allocator (process-wide, every model):
 * blocks of 256 KiB and up freed by one forward or training step are kept
 * for the next, up to `limitMb`; past it the least recently freed blocks go
 * back to the system first. With no argument it only reports, as
 * `sharp.cache()` does.
 *
 * @param options - `limitMb`: the new cap (see {@link HostCacheOptions}). Default: `{}` (report only).
 * @returns the cap in force and the counters, after the change
 * @throws TypeError 'ERR_INVALID_ARG_TYPE' or RangeError 'ERR_OUT_OF_RANGE' for a bad `limitMb` or an unknown key
 * @throws {@link ModelError} 'NATIVE' when the native addon is not built
 * @example
 * ```ts
 * import { hostCache } from 'vgg-native';
 *
 * hostCache({ limitMb: 512 }); // { limitMb: 512, cachedBytes: ..., hits: ..., misses: ... }
 * hostCache().limitMb; // 512
 * ```
 */
export function hostCache(options: HostCacheOptions = {}): HostCacheInfo {
  const o = checkKnownKeys('options', checkObject('options', options), ['limitMb']);
  const limitMb = orDefault(o.limitMb, undefined, (v) => checkInteger('options.limitMb', v, 0, 1048576));
  const binding = loadBinding();
  if (limitMb !== undefined) binding.setHostCacheLimit(limitMb);
  const { hostCache: c } = binding.runtime();
  return { limitMb: c.limitBytes / 2 ** 20, cachedBytes: c.cachedBytes, hits: c.hits, misses: c.misses, evictions: c.evictions };
}

/**
 * Sets and reports LibTorch's intra-op threads for the whole process (every
 * model; OpenBLAS's follow), as `sharp.concurrency()` does: with no argument
 * it only reports. {@link setThreads} is the same setter without the report.
 *
 * @param threads - an integer in 1..1024. Default: unchanged (the CPU count unless set).
 * @returns the intra-op threads in force after the call
 * @throws TypeError 'ERR_INVALID_ARG_TYPE' (not a number) or RangeError 'ERR_OUT_OF_RANGE' (not an integer in 1..1024)
 * @throws {@link ModelError} 'NATIVE' when the native addon is not built
 * @example
 * ```ts
 * import { threads } from 'vgg-native';
 *
 * threads(); // e.g. 8 (the CPU count)
 * threads(2); // 2
 * ```
 */
export function threads(threads?: number): number {
  const binding = loadBinding();
  if (threads !== undefined) binding.setThreads(checkInteger('threads', threads, 1, 1024));
  return binding.runtime().threads;
}

/**
 * Sets LibTorch's intra-op threads for the whole process (every model), and
 * OpenBLAS's with them. The package starts at the CPU count; the `threads`
 * option of {@link vgg} calls this too.
 *
 * @param threads - an integer in 1..1024
 * @throws TypeError 'ERR_INVALID_ARG_TYPE' (not a number) or RangeError 'ERR_OUT_OF_RANGE' (not an integer in 1..1024)
 * @throws {@link ModelError} 'NATIVE' when the native addon is not built
 * @example
 * ```ts
 * import * as os from 'node:os';
 * import { setThreads } from 'vgg-native';
 *
 * setThreads(Math.max(1, os.cpus().length - 1)); // leave the event loop a core
 * ```
 */
export function setThreads(threads: number): void {
  loadBinding().setThreads(checkInteger('threads', threads, 1, 1024));
}

/**
 * Seeds LibTorch's global generators (process-wide), as `torch.manual_seed`
 * does: the weight initialisation of models built without a `seed` option,
 * and {@link Vgg.resetHead} without one, draw from them. The `seed` option of
 * {@link vgg} reseeds the same generators before initialising; `fineTune`
 * reseeds dropout every step from its own `seed`.
 *
 * @param seed - a non-negative safe integer
 * @throws TypeError 'ERR_INVALID_ARG_TYPE' (not a number) or RangeError 'ERR_OUT_OF_RANGE' (negative or not an integer)
 * @throws {@link ModelError} 'NATIVE' when the native addon is not built
 * @example
 * ```ts
 * import { manualSeed, vgg } from 'vgg-native';
 *
 * manualSeed(42);
 * const model = await vgg('vgg11', { numClasses: 10 }); // the same random weights on every run
 * ```
 */
export function manualSeed(seed: number): void {
  loadBinding().manualSeed(checkInteger('seed', seed, 0));
}
