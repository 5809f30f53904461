// The training report's data model: what fineTune hands over while it runs
// (steps, finished epochs, the last validation pass) and what the page is
// rendered from. Plain data, no I/O; html.ts turns a ReportData into a page.
import type { EpochReport } from '../result';

/** One training step as the report plots it. */
export interface StepRecord {
  /** Global step number, 1-based (steps done after this one, over all epochs). */
  globalStep: number;
  /** 0-based epoch of the step. */
  epoch: number;
  /** The step's mean training loss, cross-entropy in nats (NaN when the batch had no usable image). */
  loss: number;
  /** The step's training top-1 accuracy, a fraction in [0, 1] (NaN when the batch had no usable image). */
  top1: number;
  /** Backbone learning rate of the step. */
  lr: number;
  /** Images of the global batch over the wall time since the previous step (data loading included), per second. */
  imagesPerSecond: number;
}

/** The fields of a finished epoch the report shows: fineTune's own EpochReport. */
export type EpochRow = EpochReport;

/** A misclassified validation image, one of the worst (highest loss) of an epoch. */
export interface Misclassified {
  /** The image file. */
  path: string;
  /** Its class index. */
  trueClass: number;
  /** The class the model picked. */
  predicted: number;
  /** Its cross-entropy, nats. */
  loss: number;
  /** Softmax probability of the picked class, in [0, 1]. */
  probability: number;
  /** A small PNG of the image as the network saw it, as a data: URI (absent when it could not be made). */
  thumbnail?: string;
  /** The same with the picked class's Grad-CAM blended over it, as a data: URI (absent when it could not be made). */
  overlay?: string;
}

/** The last validation pass: its confusion matrix, per-class accuracy and worst images. */
export interface ValidationSnapshot {
  /** 0-based epoch it followed. */
  epoch: number;
  /** Images scored. */
  count: number;
  /** confusion[trueClass][predictedClass], numClasses x numClasses. */
  confusion: number[][];
  /** Per class, in class order: its images and their top-1 accuracy. */
  perClass: Array<{ label: string; count: number; top1: number }>;
  /** The misclassified images with the highest loss, worst first. */
  worst: Misclassified[];
}

/** Everything the page shows; see {@link renderReport}. */
export interface ReportData {
  /** The page's heading, e.g. 'vgg11_bn fine-tuning'. */
  title: string;
  /** 'running' while training (the page reloads itself), 'finished' at the end. */
  status: 'running' | 'finished';
  /** When the page was written (ISO 8601). */
  updated: string;
  /** Class names, index = label. */
  classes: string[];
  /** Training images. */
  trainCount: number;
  /** Validation images (0 without validation). */
  valCount: number;
  /** Optimizer steps per epoch. */
  stepsPerEpoch: number;
  /** Epochs asked for. */
  epochsPlanned: number;
  /** The global step this run resumed at (per-step data starts there), when it resumed. */
  resumedAt?: number;
  /** This run's steps, in order. */
  steps: StepRecord[];
  /** Finished epochs, in order. */
  epochs: EpochRow[];
  /** Index into `epochs` of the best epoch, -1 before the first. */
  bestEpoch: number;
  /** The last validation pass; absent without validation data (or before the first epoch ends). */
  validation?: ValidationSnapshot;
  /** Warnings of the run (training diverging), in order. */
  warnings: string[];
  /** Option name and its value as text, in option order. */
  options: Array<[string, string]>;
  /** Machine facts: name and value as text. */
  machine: Array<[string, string]>;
}

/**
 * Per-step records with their own clock: a step's throughput is its global
 * batch over the time since the previous record (or since `restartClock`,
 * which fineTune's report calls after each epoch's validation and writing).
 */
export class StepLog {
  readonly steps: StepRecord[] = [];
  #last = performance.now();

  /** Records one step; `correct` and `n` are this rank's (n = 0: no usable image, loss and top-1 NaN). */
  record(s: { globalStep: number; epoch: number; loss: number; correct: number; n: number; lr: number; images: number }): void {
    const now = performance.now();
    const seconds = Math.max((now - this.#last) / 1000, 1e-6);
    this.#last = now;
    this.steps.push({
      globalStep: s.globalStep,
      epoch: s.epoch,
      loss: s.n > 0 ? s.loss : NaN,
      top1: s.n > 0 ? s.correct / s.n : NaN,
      lr: s.lr,
      imagesPerSecond: s.images / seconds,
    });
  }

  /** The next step's time counts from now (time spent outside training steps is not a step's). */
  restartClock(): void {
    this.#last = performance.now();
  }
}
