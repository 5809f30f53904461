// cli-progress bars on stderr, only when a person is watching them: a
// terminal on stderr and no --quiet. Piped or CI output stays clean.
import { SingleBar, Presets } from 'cli-progress';
import * as path from 'node:path';
import type { DownloadProgress } from '../hub/download';
import { cliState } from './state';

export interface Progress {
  increment(n?: number): void;
  stop(): void;
}

const NONE: Progress = { increment: () => undefined, stop: () => undefined };

const MIB = 2 ** 20;

/** Whether bars may be drawn at all. */
function watched(enabled: boolean): boolean {
  return enabled && !cliState.quiet && process.stderr.isTTY === true;
}

/**
 * A bar over `total` images when `enabled` and stderr is a terminal; a no-op
 * otherwise.
 */
export function progressBar(total: number, enabled: boolean): Progress {
  if (!watched(enabled) || total < 2) return NONE;
  const bar = new SingleBar(
    {
      stream: process.stderr,
      format: ' {bar} {value}/{total} images | {rate} img/s | ETA {eta_formatted}',
      hideCursor: true,
      clearOnComplete: true,
    },
    Presets.shades_classic,
  );
  const started = performance.now();
  bar.start(total, 0, { rate: '0.0' });
  let done = 0;
  return {
    increment(n = 1) {
      done += n;
      bar.update(done, { rate: (done / ((performance.now() - started) / 1000)).toFixed(1) });
    },
    stop() {
      bar.stop();
    },
  };
}

/** A download's bar: started on the first progress report (nothing is drawn for a cached file). */
export interface DownloadBar {
  update(p: DownloadProgress): void;
  stop(): void;
}

/** A bar in MiB for weights downloads (one file at a time). */
export function downloadBar(enabled: boolean): DownloadBar {
  if (!watched(enabled)) return { update: () => undefined, stop: () => undefined };
  let bar: SingleBar | undefined;
  let file = '';
  let started = 0;
  let startBytes = 0;
  const payload = (p: DownloadProgress) => {
    const seconds = (performance.now() - started) / 1000;
    return {
      file: path.basename(p.file),
      mib: (p.receivedBytes / MIB).toFixed(1),
      speed: seconds > 0 ? ((p.receivedBytes - startBytes) / MIB / seconds).toFixed(1) : '0.0',
    };
  };
  return {
    update(p) {
      if (!bar || file !== p.file) {
        bar?.stop();
        file = p.file;
        started = performance.now();
        startBytes = p.resumedFrom;
        bar = new SingleBar(
          {
            stream: process.stderr,
            hideCursor: true,
            clearOnComplete: true,
            format: p.totalBytes
              ? ' {file} {bar} {percentage}% | {mib} MiB | {speed} MiB/s | ETA {eta_formatted}'
              : ' {file} {mib} MiB | {speed} MiB/s',
          },
          Presets.shades_classic,
        );
        bar.start(p.totalBytes ?? 0, p.receivedBytes, payload(p));
      }
      bar.update(p.receivedBytes, payload(p));
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}
