// cli-progress bars on stderr, only when a person is watching them: a
// terminal on stderr and no --quiet. Piped or CI output stays clean.
import { SingleBar, Presets } from 'cli-progress';
import * as path from 'node:path';
import type { DownloadProgress } from '../hub/download';
import type { FineTuneProgress } from '../train/options';
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

/** The one bar builder: a cli-progress bar on stderr drawing `format`, or undefined when nobody watches. */
function newBar(format: string, enabled: boolean): SingleBar | undefined {
  if (!watched(enabled)) return undefined;
  return new SingleBar({ stream: process.stderr, format, hideCursor: true, clearOnComplete: true }, Presets.shades_classic);
}

/**
 * A bar over `total` images when `enabled` and stderr is a terminal; a no-op
 * otherwise.
 */
export function progressBar(total: number, enabled: boolean): Progress {
  const bar = total < 2 ? undefined : newBar(' {bar} {value}/{total} images | {rate} img/s | ETA {eta_formatted}', enabled);
  if (!bar) return NONE;
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
        bar = newBar(
          p.totalBytes ? ' {file} {bar} {percentage}% | {mib} MiB | {speed} MiB/s | ETA {eta_formatted}' : ' {file} {mib} MiB | {speed} MiB/s',
          enabled,
        )!;
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

/** A training bar: fed every step's progress. */
export interface TrainingBar {
  update(p: FineTuneProgress): void;
  stop(): void;
}

/** `finetune`'s bar: one per epoch, over its steps, with loss, lr, speed and the run's ETA. */
export function epochBar(enabled: boolean): TrainingBar {
  const bar = newBar(' epoch {epoch} {bar} {value}/{total} | loss {loss} | lr {lr} | {ips} img/s | ETA {eta}s', enabled);
  if (!bar) return { update: () => undefined, stop: () => undefined };
  let epoch = -1;
  return {
    update(p) {
      const payload = {
        epoch: p.epoch + 1,
        loss: p.loss.toFixed(4),
        lr: p.lr.toExponential(2),
        ips: p.imagesPerSecond.toFixed(1),
        eta: p.etaSeconds.toFixed(0),
      };
      if (p.epoch !== epoch) {
        if (epoch >= 0) bar.stop();
        bar.start(p.stepsPerEpoch, 0, payload);
        epoch = p.epoch;
      }
      bar.update(p.step + 1, payload);
    },
    stop: () => bar.stop(),
  };
}

/** The demo's bar: one per training phase (`phase` names it), over the phase's steps. */
export function phaseBar(enabled: boolean): { update(phase: string, p: FineTuneProgress): void; stop(): void } {
  const bar = newBar(' {phase} {bar} step {value}/{total} | epoch {epoch} | loss {loss} | {ips} img/s', enabled);
  if (!bar) return { update: () => undefined, stop: () => undefined };
  let current = '';
  return {
    update(phase, p) {
      const payload = { phase, epoch: p.epoch + 1, loss: p.loss.toFixed(4), ips: p.imagesPerSecond.toFixed(1) };
      if (phase !== current) {
        if (current) bar.stop();
        bar.start(p.totalSteps, 0, payload);
        current = phase;
      }
      bar.update(p.globalStep, payload);
    },
    stop() {
      if (current) bar.stop();
      current = '';
    },
  };
}
