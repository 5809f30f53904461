// The server's event loop keeps a core of its own: every other thread of the
// process (libuv's pool running sharp's decodes, the libvips workers those
// start, V8's platform threads) runs at the niceness LibTorch's workers
// already get (VGG_NATIVE_WORKER_NICE, default 10). On a 2-vCPU machine under
// 32 connections the loop otherwise waited up to 17-21 ms for a CPU held by
// nice-0 decode threads (bench/serve.js); with them lowered its largest gap
// was 12-17 ms at the same throughput. Linux only: niceness is per thread
// there, and /proc/self/task lists the threads; elsewhere nothing changes.
import * as fs from 'node:fs';
import * as os from 'node:os';

/** Threads appear lazily (libuv's pool on first use, libvips' per pipeline): looked at again this often. */
const RESCAN_MS = 1000;

/** Raises the niceness of every thread but the main one to at least `nice`; returns how many it changed. */
export function lowerHelperThreads(nice: number): number {
  let changed = 0;
  for (const entry of fs.readdirSync('/proc/self/task')) {
    const tid = Number(entry);
    if (tid === process.pid) continue; // the main thread: the event loop
    try {
      if (os.getPriority(tid) < nice) {
        os.setPriority(tid, nice);
        changed++;
      }
    } catch {
      // the thread exited between the listing and the call
    }
  }
  return changed;
}

/**
 * Keeps the helper threads at `nice` (0 turns it off) from now until the returned function is called.
 *
 * @param nice - niceness for every thread but the main one, 0..19; 0: leave them as they are
 * @returns stops the rescans
 */
export function keepEventLoopFirst(nice: number): () => void {
  if (process.platform !== 'linux' || nice <= 0) return () => undefined;
  lowerHelperThreads(nice);
  const timer = setInterval(() => lowerHelperThreads(nice), RESCAN_MS);
  timer.unref();
  return () => clearInterval(timer);
}
