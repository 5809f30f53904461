// Learning-rate schedules as pure functions of the global step, so the
// "schedule state" a checkpoint needs is just that step number, and a resumed
// run sets exactly the rate the uninterrupted run would have set.

/** Learning-rate schedule: 'constant', 'step' (decay by gamma every stepSize epochs) or 'cosine' (per step, to minLrRatio); see {@link ScheduleOptions}. */
export type ScheduleType = 'constant' | 'step' | 'cosine';

export interface ScheduleSpec {
  type: ScheduleType;
  /** 'step': multiply by gamma every stepSize epochs. */
  stepSize: number;
  gamma: number;
  /** 'cosine': the rate reached at the last step, as a fraction of the base rate. */
  minLrRatio: number;
  /** Linear warm-up over the first warmupSteps steps, starting at warmupRatio × the scheduled rate (mmcv's 'linear'). */
  warmupSteps: number;
  warmupRatio: number;
}

/**
 * The multiplier of the base learning rates (backbone and head alike) for
 * 0-based `globalStep`, set before that step's optimizer update.
 *
 * - constant: 1
 * - step: gamma^floor(epoch / stepSize), epoch = floor(globalStep / stepsPerEpoch) (torch's StepLR per epoch)
 * - cosine: minLrRatio + (1 - minLrRatio)(1 + cos(π t / T)) / 2 per step, t = globalStep, T = totalSteps - 1
 *   (so the first step uses the base rate and the last step minLrRatio × base)
 * - warm-up (mmcv linear): × (1 - (1 - globalStep / warmupSteps)(1 - warmupRatio)) while globalStep < warmupSteps
 */
export function lrFactor(s: ScheduleSpec, globalStep: number, stepsPerEpoch: number, totalSteps: number): number {
  let f = 1;
  if (s.type === 'step') {
    f = s.gamma ** Math.floor(Math.floor(globalStep / stepsPerEpoch) / s.stepSize);
  } else if (s.type === 'cosine') {
    const T = Math.max(1, totalSteps - 1);
    const t = Math.min(globalStep, T);
    f = s.minLrRatio + ((1 - s.minLrRatio) * (1 + Math.cos((Math.PI * t) / T))) / 2;
  }
  if (globalStep < s.warmupSteps) f *= 1 - (1 - globalStep / s.warmupSteps) * (1 - s.warmupRatio);
  return f;
}
