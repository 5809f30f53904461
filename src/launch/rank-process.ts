// One rank's process: started with its environment, each line it writes
// passed on with a "[rank<N>]: " prefix (torchrun's --tee prefix), so the
// ranks' interleaved output stays readable; its last error line is kept for
// the launcher's message when it fails.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';

/** How a rank's process ended. */
export interface RankExit {
  rank: number;
  localRank: number;
  /** Exit status; null when a signal ended it or it never started. */
  code: number | null;
  /** The signal that ended it, e.g. 'SIGKILL'. */
  signal: NodeJS.Signals | null;
  /** The last line it wrote on stderr that reads as an error (stack frames and Node's version banner left out), or why it did not start. */
  lastError: string | undefined;
}

/** Where the ranks' prefixed lines go. */
export interface LaunchOutput {
  stdout: Writable;
  stderr: Writable;
}

/**
 * Lines that say nothing about why a rank failed: an uncaught error's stack frames, caret line and
 * Node's banner, and LibTorch's (c10) warnings such as "[W1206 11:33:57.70 socket.cpp:207] [c10d] ...".
 */
const NOISE = /^(\s+at |\s*\^+\s*$|Node\.js v\d|\[W\d{4} )/;

export class RankProcess {
  /** Settles (never rejects) when the process has ended and its output is flushed. */
  readonly exited: Promise<RankExit>;
  #stopping = false;
  #killTimer: NodeJS.Timeout | undefined;
  readonly #child;

  constructor(
    readonly rank: number,
    readonly localRank: number,
    command: readonly string[],
    env: Record<string, string | undefined>,
    out: LaunchOutput,
  ) {
    this.#child = spawn(command[0], command.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let lastError: string | undefined;
    const prefix = `[rank${rank}]: `;
    createInterface({ input: this.#child.stdout }).on('line', (l) => out.stdout.write(`${prefix}${l}\n`));
    createInterface({ input: this.#child.stderr }).on('line', (l) => {
      out.stderr.write(`${prefix}${l}\n`);
      if (l.trim() !== '' && !NOISE.test(l)) lastError = l.trim();
    });
    this.exited = new Promise((resolve) => {
      let settled = false;
      const settle = (code: number | null, signal: NodeJS.Signals | null, why?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(this.#killTimer);
        resolve({ rank, localRank, code, signal, lastError: why ?? lastError });
      };
      this.#child.on('error', (e) => settle(null, null, `it did not start: ${e.message}`));
      this.#child.on('close', (code, signal) => settle(code, signal));
    });
  }

  /** The process id (undefined when it did not start). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Whether the launcher asked it to stop (its exit then is no failure of its own). */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** SIGTERM now, SIGKILL after `graceMs` if still running. */
  stop(graceMs: number): void {
    if (this.#stopping || this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#stopping = true;
    this.#child.kill('SIGTERM');
    this.#killTimer = setTimeout(() => this.#child.kill('SIGKILL'), graceMs);
    this.#killTimer.unref();
  }
}

/** "rank 1 (local rank 1) exited with code 1: <its last error line>", or "... was killed by SIGKILL" (the signal is the cause, not its last line). */
export function describeExit(e: RankExit): string {
  const who = `rank ${e.rank} (local rank ${e.localRank})`;
  if (e.signal) return `${who} was killed by ${e.signal}`;
  const how = e.code === null ? 'did not run' : `exited with code ${e.code}`;
  return e.lastError ? `${who} ${how}: ${e.lastError}` : `${who} ${how}`;
}
