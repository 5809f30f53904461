// options.onProgress as a training observer: the user's callback after every step.
import type { TrainingObserver } from './observer';
import type { FineTuneProgress } from './options';

/** Calls `onProgress` after every step with the epoch's throughput and the time left at that rate. */
export function progressObserver(onProgress: (p: FineTuneProgress) => void, batchSize: number): TrainingObserver {
  return {
    step(e) {
      const r = e.position.running;
      const imagesPerSecond = r.images / Math.max(r.seconds, 1e-6);
      onProgress({
        epoch: e.epoch,
        step: e.step,
        stepsPerEpoch: e.stepsPerEpoch,
        globalStep: e.globalStep,
        totalSteps: e.totalSteps,
        loss: e.loss,
        lr: e.lr,
        imagesPerSecond,
        etaSeconds: (e.totalSteps - e.globalStep) * (r.images > 0 ? batchSize / imagesPerSecond : e.seconds),
        ...(e.warning ? { warning: e.warning } : {}),
      });
    },
  };
}
