import { loadBinding, type NativeRuntime } from './binding';
import { checkInteger } from './validate';

export type Runtime = NativeRuntime;

/** What this build of the addon runs on: LibTorch version, CUDA, threads. */
export function runtime(): Runtime {
  return loadBinding().runtime() as Runtime;
}

/** Intra-op threads for every model (default: the CPU count). */
export function setThreads(threads: number): void {
  loadBinding().setThreads(checkInteger('threads', threads, 1, 1024));
}

/** Seeds LibTorch's global generator (weight init, dropout). */
export function manualSeed(seed: number): void {
  loadBinding().manualSeed(checkInteger('seed', seed, 0));
}
