// Batches for training and evaluation: decode ahead on sharp's threads while
// the caller trains, deterministic in (seed, epoch, item) whatever the
// timing, the number of ranks or the step an epoch resumes from.
import { abortable, throwIfAborted } from '../abort';
import * as os from 'node:os';
import { augmentResolved } from '../image/augment';
import { ImageInputError } from '../image/errors';
import {
  resolvePreprocessOptions,
  type DecodeOptions,
  type Interpolation,
  type ResolvedAugmentOptions,
  type ResolvedPreprocessOptions,
} from '../image/options';
import { preprocessResolved } from '../image/preprocess';
import type { Tensor } from '../tensor';
import {
  checkAbortSignal,
  checkBoolean,
  checkInteger,
  checkObject,
  checkOneOf,
  invalidRange,
  invalidType,
  isPlainObject,
  orDefault,
} from '../validate';
import { DatasetError, type DatasetProblem } from './errors';
import { Limiter } from '../concurrency';
import { epochOrder, shardOfStep, stepsPerEpoch, type ShardingOptions } from './sharding';
import { PURPOSE, rngFor } from './seed';
import type { Dataset } from './types';

/**
 * Options of the (internal) DataLoader. `batchSize` is required; the rest
 * have the defaults given. The decoding options, `resize`, `interpolation`,
 * `mean` and `std` shape the deterministic eval pipeline; the augment pipeline
 * carries its own in its resolved options.
 */
export interface DataLoaderOptions extends DecodeOptions {
  /** Global batch size: items per step summed over all ranks, an integer >= 1 divisible by worldSize. Required. */
  batchSize: number;
  /** Side S of the square [B,3,S,S] output, an integer in 1..16384. Default: 224. */
  imageSize?: number;
  /** Visit items in a seeded random order, new each epoch. Default: false (as torch's DataLoader). */
  shuffle?: boolean;
  /** Seeds the order and the augmentation, a non-negative integer. Default: 0. */
  seed?: number;
  /**
   * Training augmentation, already resolved at the public boundary
   * (resolveAugmentOptions; fineTune does it with the path 'options.augment'),
   * so the loader runs it per image without checking it again; its `size`
   * must be imageSize x imageSize. false = the deterministic eval pipeline
   * chosen by `resize`. Default: false.
   */
  augment?: ResolvedAugmentOptions | false;
  /**
   * Eval pipeline. 'squash': resize the whole image to S×S, ignoring
   * aspect — nothing is cropped away, right for small or non-square pictures
   * (digits, icons) and what RandomResizedCrop's ratio range trains for.
   * 'short': ImageNet style, short side to round(S·256/224) then centre crop S.
   * Default: 'squash'.
   */
  resize?: 'squash' | 'short';
  /** Eval resampling filter. Default: 'bilinear'. */
  interpolation?: Interpolation;
  /** Eval per-channel RGB mean on 0..255. Default: ImageNet's. */
  mean?: readonly [number, number, number];
  /** Eval per-channel RGB standard deviation on 0..255. Default: ImageNet's. */
  std?: readonly [number, number, number];
  /** Drop the last, short batch. Default: false. */
  dropLast?: boolean;
  /** Data parallelism: this process's rank in [0, worldSize). Default: 0. */
  rank?: number;
  /** Data parallelism: number of ranks, a positive integer. Default: 1. */
  worldSize?: number;
  /** Batches decoded ahead of the one being consumed, 0..64; 0 = decode on demand. Default: 2. */
  prefetch?: number;
  /** Images decoded at once (libuv's pool has 4 threads by default), 1..256. Default: min(4, CPUs). */
  concurrency?: number;
  /** Skip images that fail to decode (reported per batch and in `loader.skipped`). Default: false (throw). */
  skipInvalid?: boolean;
}

export interface EpochOptions {
  /** Aborting rejects the pending `next()` with signal.reason (an AbortError) and stops all decoding. */
  signal?: AbortSignal;
  /** Resume mid-epoch: start at this step, skipping earlier batches without decoding them. Default 0. */
  startStep?: number;
}

export interface Batch {
  /** [b, 3, S, S] float32, NCHW, normalised. */
  data: Float32Array;
  shape: [number, 3, number, number];
  /** Class indices, int64 as cross-entropy wants them. */
  labels: BigInt64Array;
  /** Positions in dataset.items of the batch's rows. */
  indices: number[];
  epoch: number;
  step: number;
  /** Items in this step's global batch over all ranks (before skipping): weight for averaging across ranks. */
  globalSize: number;
  /** Items of this batch that could not be decoded (only with skipInvalid). */
  skipped: DatasetProblem[];
}

interface Resolved extends ShardingOptions {
  imageSize: number;
  prefetch: number;
  concurrency: number;
  skipInvalid: boolean;
  augment: ResolvedAugmentOptions | false;
  eval: ResolvedPreprocessOptions;
}

const EVAL_KEYS = ['maxPixels', 'failOn', 'background', 'colourManage', 'mean', 'std', 'interpolation'] as const;

function resolve(ds: Dataset, options: unknown): Resolved {
  if (!ds || typeof ds !== 'object' || !Array.isArray(ds.items) || !Array.isArray(ds.classes)) {
    throw invalidType('dataset', 'a Dataset { items, classes }', ds);
  }
  if (ds.items.length === 0) throw new DatasetError('EMPTY', `No images in ${ds.source ?? 'the dataset'}: nothing to load`, { path: ds.source });
  if (!isPlainObject(options)) throw invalidType('options', 'an object with at least batchSize', options);
  const o = options;
  const batchSize = checkInteger('options.batchSize', o.batchSize, 1);
  const worldSize = orDefault(o.worldSize, 1, (v) => checkInteger('options.worldSize', v, 1));
  const rank = orDefault(o.rank, 0, (v) => checkInteger('options.rank', v, 0, worldSize - 1));
  if (batchSize % worldSize !== 0) {
    throw invalidRange(
      'options.batchSize',
      `a multiple of options.worldSize (${worldSize}), the global batch being split evenly across ranks`,
      batchSize,
    );
  }
  const imageSize = orDefault(o.imageSize, 224, (v) => checkInteger('options.imageSize', v, 1, 16384));
  const augment = orDefault<ResolvedAugmentOptions | false>(o.augment, false, (v) => (v === false ? false : checkAugment(v, imageSize)));
  const resize = orDefault(o.resize, 'squash', (v) => checkOneOf('options.resize', v, ['squash', 'short'] as const));
  // The eval pipeline, resolved once here: every batch runs it as it is.
  const evalOptions: Record<string, unknown> = Object.fromEntries(EVAL_KEYS.map((k) => [k, o[k]]));
  const evalPipeline = resolvePreprocessOptions(
    { ...evalOptions, resize, resizeShort: Math.round((imageSize * 256) / 224), crop: imageSize },
    'options',
  );
  const defaultConcurrency = Math.max(1, Math.min(4, os.availableParallelism?.() ?? os.cpus().length));
  return {
    batchSize,
    worldSize,
    rank,
    imageSize,
    shuffle: orDefault(o.shuffle, false, (v) => checkBoolean('options.shuffle', v)),
    seed: orDefault(o.seed, 0, (v) => checkInteger('options.seed', v, 0)),
    dropLast: orDefault(o.dropLast, false, (v) => checkBoolean('options.dropLast', v)),
    prefetch: orDefault(o.prefetch, 2, (v) => checkInteger('options.prefetch', v, 0, 64)),
    concurrency: orDefault(o.concurrency, defaultConcurrency, (v) => checkInteger('options.concurrency', v, 1, 256)),
    skipInvalid: orDefault(o.skipInvalid, false, (v) => checkBoolean('options.skipInvalid', v)),
    augment,
    eval: evalPipeline,
  };
}

/** Resolved augment options (not re-checked: resolveAugmentOptions did that) whose size is the loader's. */
function checkAugment(v: unknown, imageSize: number): ResolvedAugmentOptions {
  const a = checkObject('options.augment', v) as unknown as ResolvedAugmentOptions;
  if (!Array.isArray(a.size) || typeof a.colorJitter !== 'object') {
    throw invalidType('options.augment', 'augment options resolved by resolveAugmentOptions()', v);
  }
  if (a.size[0] !== imageSize || a.size[1] !== imageSize) {
    throw invalidRange('options.augment.size', `[${imageSize}, ${imageSize}] (options.imageSize)`, a.size);
  }
  return a;
}

/**
 * Iterates a Dataset in batches:
 *
 *   const augment = resolveAugmentOptions({ size: 224 }, 'options.augment'); // once, at the public boundary
 *   const loader = new DataLoader(train, { batchSize: 32, imageSize: 224, shuffle: true, augment });
 *   for (let e = 0; e < epochs; e++)
 *     for await (const { data, shape, labels } of loader.epoch(e, { signal })) await model.trainStep(...);
 *
 * Order = permutation(seed, epoch); augmentation of item i in epoch e draws
 * from rng(seed, e, i). With worldSize W each rank gets its B/W share of every
 * global batch of B, so W ranks see what one process with batch B sees.
 */
export class DataLoader {
  readonly dataset: Dataset;
  /** Steps in one epoch (the same on every rank). */
  readonly stepsPerEpoch: number;
  /** Every image skipped so far (skipInvalid), once per item. */
  readonly skipped: DatasetProblem[] = [];
  private readonly o: Resolved;
  private readonly skippedIndices = new Set<number>();

  constructor(dataset: Dataset, options: DataLoaderOptions) {
    this.o = resolve(dataset, options);
    this.dataset = dataset;
    const n = dataset.items.length;
    this.stepsPerEpoch = stepsPerEpoch(n, this.o.batchSize, this.o.dropLast);
    if (this.stepsPerEpoch === 0) {
      throw new DatasetError(
        'EMPTY',
        `The dataset has ${n} item(s), fewer than one batch of ${this.o.batchSize}, and dropLast is set: an epoch would be empty`,
        { path: dataset.source },
      );
    }
  }

  /** The global item order of an epoch (all ranks). */
  order(epoch: number): number[] {
    return epochOrder(this.dataset.items.length, checkInteger('epoch', epoch, 0), this.o);
  }

  /** Batches of one epoch, decoded `prefetch` ahead. Breaking out of the loop stops the decoding. */
  async *epoch(epoch: number, options?: EpochOptions): AsyncGenerator<Batch, void, undefined> {
    checkInteger('epoch', epoch, 0);
    const eo = checkObject('options', options);
    const signal = checkAbortSignal('options.signal', eo.signal);
    const startStep = orDefault(eo.startStep, 0, (v) => checkInteger('options.startStep', v, 0, this.stepsPerEpoch));
    throwIfAborted(signal);

    const order = this.order(epoch);
    const limiter = new Limiter(this.o.concurrency);
    const state = { stopped: false };
    const pending = new Map<number, Promise<Batch>>();
    let scheduled = startStep;
    const scheduleUpTo = (last: number) => {
      for (; scheduled <= Math.min(last, this.stepsPerEpoch - 1); scheduled++) {
        const p = this.loadBatch(order, epoch, scheduled, limiter, state);
        p.catch(() => undefined); // observed when its turn comes; never an unhandled rejection meanwhile
        pending.set(scheduled, p);
      }
    };
    try {
      for (let step = startStep; step < this.stepsPerEpoch; step++) {
        throwIfAborted(signal);
        scheduleUpTo(step + this.o.prefetch);
        const batch = await abortable(pending.get(step)!, signal);
        pending.delete(step);
        yield batch;
      }
    } finally {
      state.stopped = true; // queued decodes of later batches return without work
    }
  }

  private async loadBatch(order: readonly number[], epoch: number, step: number, limiter: Limiter, state: { stopped: boolean }): Promise<Batch> {
    const { indices, globalSize } = shardOfStep(order, step, this.o);
    const S = this.o.imageSize;
    const per = 3 * S * S;
    const data = new Float32Array(indices.length * per);
    const ok = new Uint8Array(indices.length);
    const skipped: DatasetProblem[] = [];
    const settled = await Promise.allSettled(
      indices.map((index, k) =>
        limiter.run(async () => {
          if (state.stopped) return;
          const t = await this.loadItem(index, epoch, skipped);
          if (t) {
            data.set(t.data, k * per);
            ok[k] = 1;
          }
        }),
      ),
    );
    // The batch's first failing item by position, not by which decode finished first.
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    if (skipped.length === 0) return this.batch(data, indices, epoch, step, globalSize, skipped);
    const kept = indices.filter((_, k) => ok[k]);
    const packed = new Float32Array(kept.length * per);
    let row = 0;
    indices.forEach((_, k) => {
      if (ok[k]) packed.set(data.subarray(k * per, (k + 1) * per), row++ * per);
    });
    return this.batch(packed, kept, epoch, step, globalSize, skipped);
  }

  private batch(data: Float32Array, indices: number[], epoch: number, step: number, globalSize: number, skipped: DatasetProblem[]): Batch {
    const S = this.o.imageSize;
    const labels = BigInt64Array.from(indices, (i) => BigInt(this.dataset.items[i].label));
    return { data, shape: [indices.length, 3, S, S], labels, indices, epoch, step, globalSize, skipped };
  }

  /** One item's tensor, or undefined when skipped. Randomness: rng(seed, epoch, index) only. */
  private async loadItem(index: number, epoch: number, skipped: DatasetProblem[]): Promise<Tensor | undefined> {
    const item = this.dataset.items[index];
    try {
      return this.o.augment
        ? await augmentResolved(item.path, this.o.augment, rngFor(PURPOSE.augment, this.o.seed, epoch, index))
        : await preprocessResolved(item.path, this.o.eval);
    } catch (err) {
      if (!(err instanceof ImageInputError)) throw err; // option errors are bugs, not bad files
      const reason = /missing|ENOENT|no such file/i.test(err.reason) ? 'file not found' : err.reason;
      if (!this.o.skipInvalid) {
        throw new DatasetError(
          'UNREADABLE_IMAGES',
          `Cannot load image "${item.path}" (item #${index}, class '${this.dataset.classes[item.label] ?? item.label}'): ${reason}. Pass skipInvalid: true to skip unreadable images`,
          { path: item.path, cause: err },
        );
      }
      skipped.push({ path: item.path, reason });
      if (!this.skippedIndices.has(index)) {
        this.skippedIndices.add(index);
        this.skipped.push({ path: item.path, reason });
      }
      return undefined;
    }
  }
}
