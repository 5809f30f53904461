// Transfer learning in seconds (fineTune's `cacheFeatures`): when the whole
// trunk is frozen and augmentation is off, every epoch would feed the same
// images through the same convolutions. So run the trunk once per training
// image, keep its output (what the classifier takes: stage5 after its pool) in
// memory, and let each epoch's batches be rows of that cache, in the loader's
// own seeded order. The native trainStep then runs only the classifier
// (`features: true`), and the model stays an ordinary model.
// Standardised (the default): a random or foreign trunk's channels differ in
// scale by orders of magnitude, which SGD on fc6 handles badly (digits at 32x32
// from a random VGG-11-BN: 63% after 6 epochs on raw features, 97% standardised,
// in PyTorch). The batches serve (x - mean) / std per channel, and fc6 is
// rewritten to take that while training (enter) and back before anything else
// uses the model (leave): an exact reparametrisation, up to rounding.
import type { ModelCore } from '../core/model-core';
import type { Precision } from '../core/forward';
import type { DataLoader } from '../data/loader';
import type { DatasetProblem } from '../data/dataset';
import { throwIfAborted } from '../abort';

/** One step's rows: cached trunk outputs [n, C, h, w] (or images from a DataLoader) and their labels. */
export interface TrainBatch {
  data: Float32Array;
  shape: number[];
  labels: BigInt64Array;
  /** Positions in the dataset's items of the rows. */
  indices: number[];
  /** Items in this step's global batch (before skipping). */
  globalSize: number;
}

/** What fineTune's loop reads batches from: a DataLoader, or a FeatureCache over one. */
export interface BatchSource {
  readonly stepsPerEpoch: number;
  readonly skipped: DatasetProblem[];
  epoch(epoch: number, options?: { signal?: AbortSignal; startStep?: number }): AsyncGenerator<TrainBatch, void, undefined>;
}

/** Trunk outputs of a loader's items, by item index, and batches of them in the loader's epoch order. */
export class FeatureCache implements BatchSource {
  readonly stepsPerEpoch: number;
  readonly #loader: DataLoader;
  readonly #batchSize: number;
  readonly #rows: Map<number, { row: Float32Array; label: bigint }>;
  readonly #rowShape: number[];
  readonly #standard: Standardisation | undefined;
  #entered = false;
  /** Seconds spent computing the cache. */
  readonly seconds: number;

  private constructor(
    loader: DataLoader,
    batchSize: number,
    rows: Map<number, { row: Float32Array; label: bigint }>,
    rowShape: number[],
    seconds: number,
    standard: Standardisation | undefined,
  ) {
    this.#standard = standard;
    this.#loader = loader;
    this.#batchSize = batchSize;
    this.#rows = rows;
    this.#rowShape = rowShape;
    this.stepsPerEpoch = loader.stepsPerEpoch;
    this.seconds = seconds;
  }

  /** Images the loader could not decode (skipInvalid) while the cache was built. */
  get skipped(): DatasetProblem[] {
    return this.#loader.skipped;
  }

  /**
   * Decodes every item of `loader` once (its epoch 0; without augmentation each item's
   * tensor is the same in every epoch) and keeps the trunk's output for each.
   *
   * @param model - the model, its trunk frozen
   * @param loader - the training loader (augment false, one rank)
   * @param batchSize - its global batch size, for the epochs' batches
   * @param precision - the forward's precision
   * @param signal - aborting rejects with AbortError
   * @param standardize - serve the rows standardised per channel (statistics of this loader's items; see {@link FeatureCache.enter})
   * @returns the cache
   * @throws AbortError; ModelError 'NATIVE' from the forward
   * @example
   * const cache = await FeatureCache.build(core, loader, 32, 'fp32', undefined, true);
   */
  static async build(
    model: ModelCore,
    loader: DataLoader,
    batchSize: number,
    precision: Precision,
    signal: AbortSignal | undefined,
    standardize: boolean,
  ): Promise<FeatureCache> {
    const t0 = Date.now();
    const rows = new Map<number, { row: Float32Array; label: bigint }>();
    let rowShape: number[] = [];
    let stats: ChannelStats | undefined;
    for await (const batch of loader.epoch(0, { signal })) {
      if (batch.labels.length === 0) continue;
      const [out] = await model.forwardLayers({ data: batch.data, shape: batch.shape }, ['stage5'], { precision, channelsLast: false, signal });
      rowShape = out.shape.slice(1);
      const per = out.data.length / batch.labels.length;
      batch.indices.forEach((index, k) => rows.set(index, { row: out.data.slice(k * per, (k + 1) * per), label: batch.labels[k] }));
      if (standardize) {
        stats ??= new ChannelStats(rowShape[0]);
        stats.add(out.data, per);
      }
    }
    const standard = stats?.result();
    return new FeatureCache(loader, batchSize, rows, rowShape, (Date.now() - t0) / 1000, standard);
  }

  /** Makes fc6 take the cache's standardised rows (idempotent; nothing to do unstandardised). Inside the model's queue. */
  async enter(model: ModelCore): Promise<void> {
    if (!this.#standard || this.#entered) return;
    const { mean, std } = this.#standard;
    await model.composeClassifierInput(std, mean); // x = std * x' + mean
    this.#entered = true;
  }

  /** Makes fc6 take the trunk's own outputs again (idempotent): before validation, explain, save. */
  async leave(model: ModelCore): Promise<void> {
    if (!this.#standard || !this.#entered) return;
    const { mean, std } = this.#standard;
    const scale = std.map((s) => 1 / s);
    await model.composeClassifierInput(
      scale,
      mean.map((m, c) => -m * scale[c]),
    ); // x' = (x - mean) / std
    this.#entered = false;
  }

  /** Runs `fn` on the ordinary model (fc6 on the trunk's own outputs), then restores the cache's state. */
  async ordinary<T>(model: ModelCore, fn: () => Promise<T>): Promise<T> {
    const entered = this.#entered;
    await this.leave(model);
    try {
      return await fn();
    } finally {
      if (entered) await this.enter(model);
    }
  }

  /** The cached rows of each step of `epoch`, in the loader's order for that epoch. */
  async *epoch(epoch: number, options: { signal?: AbortSignal; startStep?: number } = {}): AsyncGenerator<TrainBatch, void, undefined> {
    const order = this.#loader.order(epoch);
    const per = this.#rowShape.reduce((a, b) => a * b, 1);
    for (let step = options.startStep ?? 0; step < this.stepsPerEpoch; step++) {
      throwIfAborted(options.signal);
      const wanted = order.slice(step * this.#batchSize, (step + 1) * this.#batchSize);
      const indices = wanted.filter((i) => this.#rows.has(i));
      const kept = indices.map((i) => this.#rows.get(i)!);
      const data = new Float32Array(kept.length * per);
      // Standardised here, a batch at a time, rather than the whole cache in one pass on the JS thread.
      kept.forEach((r, k) => (this.#standard ? standardiseInto(data, k * per, r.row, this.#standard) : data.set(r.row, k * per)));
      yield { data, shape: [kept.length, ...this.#rowShape], labels: BigInt64Array.from(kept, (r) => r.label), indices, globalSize: wanted.length };
    }
  }
}

/** Per-channel mean and standard deviation of the cached rows. */
interface Standardisation {
  mean: Float32Array;
  std: Float32Array;
}

/** Running per-channel sums over cached rows ([C, h, w] each), in float64. */
class ChannelStats {
  readonly #sum: Float64Array;
  readonly #sq: Float64Array;
  #count = 0;

  constructor(readonly channels: number) {
    this.#sum = new Float64Array(channels);
    this.#sq = new Float64Array(channels);
  }

  /** rows: back-to-back rows of `per` values each. */
  add(rows: Float32Array, per: number): void {
    const plane = per / this.channels;
    for (let base = 0; base < rows.length; base += per) {
      for (let c = 0; c < this.channels; c++) {
        for (let k = base + c * plane; k < base + (c + 1) * plane; k++) {
          this.#sum[c] += rows[k];
          this.#sq[c] += rows[k] * rows[k];
        }
      }
      this.#count += plane;
    }
  }

  /**
   * Mean and population standard deviation of each channel over all rows and positions.
   * A channel that never varies (a dead ReLU) keeps std 1: any scale leaves its zero deviation zero.
   */
  result(): Standardisation {
    const n = Math.max(1, this.#count);
    const mean = Float32Array.from(this.#sum, (s) => s / n);
    const std = Float32Array.from(this.#sq, (q, c) => {
      const m = this.#sum[c] / n;
      const v = q / n - m * m;
      return v > 1e-12 * Math.max(1, m * m) ? Math.sqrt(v) : 1;
    });
    return { mean, std };
  }
}

/** (row - mean) / std per channel, written into data at offset. */
function standardiseInto(data: Float32Array, offset: number, row: Float32Array, { mean, std }: Standardisation): void {
  const plane = row.length / mean.length;
  for (let c = 0; c < mean.length; c++) {
    const m = mean[c];
    const s = std[c];
    for (let k = c * plane; k < (c + 1) * plane; k++) data[offset + k] = (row[k] - m) / s;
  }
}
