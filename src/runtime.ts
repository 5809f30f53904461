import { type AddonInfo, loadAddon, loadBinding, type NativeRuntime } from './binding';
import { checkInteger } from './validate';

/** What {@link runtime} returns: the facts of this build and process (see {@link NativeRuntime} for each field), and which addon file is loaded. */
export type Runtime = NativeRuntime & {
  /** The loaded addon: 'prebuilt' (the platform package), 'source' (`npx vgg-native build`) or 'env' (VGG_NATIVE_ADDON), and its path. */
  addon: AddonInfo;
};

/**
 * What this build of the addon runs on: which addon file, LibTorch version, CUDA and cuDNN,
 * thread counts, c10d/Gloo, the caching CPU allocator's counters, the oneDNN
 * engine and the fully connected kernel. Read fresh on every call.
 *
 * @returns a new {@link Runtime} object
 * @throws {@link ModelError} 'NATIVE' when the native addon is not built (the message names the paths searched)
 * @example
 * ```ts
 * import { runtime } from 'vgg-native';
 *
 * const r = runtime();
 * console.log(r.torchVersion, r.cuda ? `${r.cudaDevices} GPU(s)` : 'CPU', r.threads, r.onednn.isa);
 * ```
 */
export function runtime(): Runtime {
  const { binding, info } = loadAddon();
  return { ...binding.runtime(), addon: info };
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
