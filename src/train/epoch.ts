// What fineTune reports per epoch (its result) and the training report draws.

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
