// A cli-progress bar on stderr, only when a person is watching it.
import { SingleBar, Presets } from 'cli-progress';

export interface Progress { increment(n?: number): void; stop(): void }

const NONE: Progress = { increment: () => undefined, stop: () => undefined };

/**
 * A bar over `total` images when `enabled` and stderr is a terminal; a no-op
 * otherwise (so piped or CI output stays clean).
 */
export function progressBar(total: number, enabled: boolean): Progress {
  if (!enabled || !process.stderr.isTTY || total < 2) return NONE;
  const bar = new SingleBar({
    stream: process.stderr,
    format: ' {bar} {value}/{total} images | {rate} img/s | ETA {eta_formatted}',
    hideCursor: true,
    clearOnComplete: true,
  }, Presets.shades_classic);
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
