// Telling a user early that training diverges: a loss far above chance (the
// cross-entropy of a uniform guess, ln(classes)) for several steps in a row
// means the steps overshoot, most often a learning rate too high for the
// batch size. NaN losses stop training instead (ModelError 'DIVERGED').

/** Steps in a row the loss must stay above the bound before the warning. */
export const DIVERGENCE_STEPS = 5;

/** The bound, as a multiple of chance: 3 ln(classes) nats (2.08 for 2 classes, 20.7 for 1000). */
export const DIVERGENCE_FACTOR = 3;

/** Watches the training losses of one run; warns once. */
export class DivergenceWatch {
  readonly #bound: number;
  #above = 0;
  #warned = false;

  constructor(
    private readonly classes: number,
    private readonly lr: number,
    private readonly batchSize: number,
  ) {
    this.#bound = DIVERGENCE_FACTOR * Math.log(classes);
  }

  /** Sees one step's mean loss (NaN: a step with no image, ignored); returns the warning the first time the loss diverges. */
  see(loss: number): string | undefined {
    if (Number.isNaN(loss)) return undefined;
    this.#above = loss > this.#bound ? this.#above + 1 : 0;
    if (this.#warned || this.#above < DIVERGENCE_STEPS) return undefined;
    this.#warned = true;
    return (
      `training is diverging: the loss stayed above ${this.#bound.toFixed(2)} (3 x ln(${this.classes}), chance is ${Math.log(this.classes).toFixed(2)}) ` +
      `for ${DIVERGENCE_STEPS} steps, last ${loss.toFixed(2)}. The likely cause is a learning rate too high for the batch: ` +
      `lr ${this.lr} at batchSize ${this.batchSize}; lower options.lr (the default scales with the batch), or add a warm-up (options.schedule.warmupEpochs)`
    );
  }
}
