// What fineTune resolves with: a report per epoch and the run's totals (the
// training report draws the same).
import type { DatasetProblem } from '../data/dataset';

/** One finished epoch of FineTuneReport.epochs. Losses are mean cross-entropy in nats; accuracies fractions in [0, 1]. */
export interface EpochReport {
  /** 0-based epoch number. */
  epoch: number;
  /** Mean training loss over the epoch's batches (this rank's shard when distributed). */
  trainLoss: number;
  /** Top-1 accuracy on the training batches as they were trained (augmented, dropout on; this rank's shard when distributed). */
  trainTop1: number;
  /** Mean validation loss; NaN without validation data. */
  valLoss: number;
  /** Validation top-1 accuracy; NaN without validation data. */
  valTop1: number;
  /** Validation top-5 accuracy (top-min(5, classes)); NaN without validation data. */
  valTop5: number;
  /** Global training throughput (all ranks). */
  imagesPerSecond: number;
  /** Backbone learning rate of the epoch's last step. */
  lr: number;
  /** Wall time of the epoch in seconds, validation included. */
  seconds: number;
}

/** What {@link Vgg.fineTune} resolves with. */
export interface FineTuneReport {
  /** Every finished epoch, in order (resumed runs include the epochs before the resume). */
  epochs: EpochReport[];
  /** Index into `epochs` of the best epoch: highest valTop1 (lowest trainLoss without validation). */
  bestEpoch: number;
  /** `epochs[bestEpoch]`. */
  best: EpochReport;
  /** The class names, index = label; they become `model.labels`. */
  classes: string[];
  /** Early stopping ended training before options.epochs. */
  stoppedEarly: boolean;
  /** Images dropped by skipInvalid (unknown labels, unreadable files). */
  skipped: DatasetProblem[];
  /** Training images after the checks (and after the validation split). */
  trainCount: number;
  /** Validation images (0 without validation). */
  valCount: number;
  /** The global step this run resumed from, when it did. */
  resumedFrom?: {
    /** Epoch the run continued in, 0-based. */
    epoch: number;
    /** Step within that epoch it continued at. */
    step: number;
    /** Steps already taken over all epochs. */
    globalStep: number;
    /** The checkpoint folder read. */
    checkpoint: string;
  };
  /** Seconds spent computing the trunk's outputs once (only with `cacheFeatures`). */
  featureCacheSeconds?: number;
  /** Where the last checkpoint went (rank 0 with checkpointDir). */
  checkpoint?: string;
  /** The training report's absolute path (rank 0 with options.report, when the page could be written). */
  reportPath?: string;
  /** What went wrong without stopping training, e.g. the divergence warning (see {@link FineTuneProgress.warning}). */
  warnings: string[];
}
