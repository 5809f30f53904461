// fineTune's options: the public type and its one-time validation. Nothing
// downstream re-checks; a bad value fails here, before any file is read.
import type { Dataset } from '../data/types';
import type { DatasetSource } from '../data/dataset';
import { resolveAugmentOptions, type AugmentOptions, type ResolvedAugmentOptions } from '../image/options';
import { TRAIN_PRECISIONS, type TrainPrecision } from '../core/forward';
import {
  checkAbortSignal,
  checkBoolean,
  checkFraction,
  checkInteger,
  checkKnownKeys,
  checkNumber,
  checkObject,
  checkOneOf,
  checkString,
  invalidRange,
  invalidType,
  isPlainObject,
  keysOf,
  orDefault,
} from '../validate';
import { resolveDistributed, type DistributedOptions, type ResolvedDistributed } from './distributed';
import type { ScheduleSpec, ScheduleType } from './schedule';

/** 'sgd' (PyTorch's SGD, optionally with momentum and Nesterov) or 'adamw' (PyTorch's AdamW, decoupled weight decay). */
export type OptimizerType = 'sgd' | 'adamw';

/** The optimizer of {@link FineTuneOptions.optimizer}, as PyTorch's `torch.optim.SGD` / `AdamW` define them. Options of the other type are ignored. */
export interface OptimizerOptions {
  /** Which optimizer. Required. */
  type: OptimizerType;
  /** SGD momentum, in [0, 1]. Default: 0.9. */
  momentum?: number;
  /** SGD Nesterov momentum. Default: false. */
  nesterov?: boolean;
  /** Decoupled for AdamW, L2 added to the gradient for SGD (as in PyTorch); in [0, 1]. Default: 1e-4 (SGD), 0.01 (AdamW). */
  weightDecay?: number;
  /** AdamW betas, each in [0, 1). Default: [0.9, 0.999]. */
  betas?: [number, number];
  /** AdamW epsilon, in [0, 1]. Default: 1e-8. */
  eps?: number;
}

/**
 * The learning-rate schedule of {@link FineTuneOptions.schedule}: a factor of
 * both base rates (lr and headLr), a function of the global step, set before
 * each step:
 * - 'constant': 1;
 * - 'step': gamma^floor(epoch / stepSize) (torch's StepLR, per epoch);
 * - 'cosine': minLrRatio + (1 - minLrRatio)(1 + cos(pi t / T)) / 2 per step, t the
 *   global step, T = total steps - 1 (torch's CosineAnnealingLR with eta_min = minLrRatio x base);
 * - warm-up (mmcv's 'linear'): times 1 - (1 - t / warmupSteps)(1 - warmupRatio) while t < warmupSteps.
 */
export interface ScheduleOptions {
  /** Which schedule. Required. */
  type: ScheduleType;
  /** 'step': epochs between decays, a positive integer. Default: max(1, floor(epochs / 3)). */
  stepSize?: number;
  /** 'step': decay factor, in [0, 1]. Default: 0.1. */
  gamma?: number;
  /** 'cosine': final rate as a fraction of the base rate, in [0, 1]. Default: 0. */
  minLrRatio?: number;
  /** Linear warm-up length in steps, a non-negative integer (or use warmupEpochs, not both). Default: 0. */
  warmupSteps?: number;
  /** Linear warm-up length in epochs, a number in [0, epochs] (rounded to steps; not with warmupSteps). Default: 0. */
  warmupEpochs?: number;
  /** Warm-up starts at this fraction of the scheduled rate (mmcv's warmup_ratio), in [0, 1]. Default: 0.1. */
  warmupRatio?: number;
}

/** What {@link FineTuneOptions.onProgress} receives after every training step. */
export interface FineTuneProgress {
  /** 0-based epoch of the step just done. */
  epoch: number;
  /** 0-based step within the epoch (the step just done). */
  step: number;
  /** Optimizer steps per epoch (batches of the global batch size). */
  stepsPerEpoch: number;
  /** Steps done since the start of training (over all epochs, resumed ones included). */
  globalStep: number;
  /** stepsPerEpoch x epochs. */
  totalSteps: number;
  /** This step's mean training loss, cross-entropy in nats (this rank's shard when distributed; NaN when this rank's batch had no usable image). */
  loss: number;
  /** Backbone learning rate used for this step. */
  lr: number;
  /** Global images per second over the epoch so far (all ranks). */
  imagesPerSecond: number;
  /** Estimated seconds left, validation excluded. */
  etaSeconds: number;
  /**
   * Set once, on the step where training is seen to diverge (the loss above 3 x ln(classes) for 5 steps in a row):
   * what happened and the likely cause. Also in {@link FineTuneReport.warnings} and the HTML report.
   */
  warning?: string;
}

/** What `cacheFeatures: { ... }` of {@link FineTuneOptions} may say. */
export interface CacheFeaturesOptions {
  /**
   * Train the classifier on standardised features: each of the trunk's 512 output channels
   * shifted and scaled to mean 0, variance 1 over the training set (as scikit-learn's
   * StandardScaler before a linear probe), which lets SGD train fc6-fc8 on a trunk whose
   * channels differ in scale by orders of magnitude (a randomly initialised one, say).
   * The standardisation is folded into fc6 (W / sigma per input channel, the bias shifted)
   * before each validation and at the end, so the model stays an ordinary VGG that takes
   * images; the optimizer's steps are then those of the standardised problem, not the
   * same as training on the images. Default: true.
   */
  standardize?: boolean;
}

/**
 * Options of {@link Vgg.fineTune}. `train` and `epochs` are required; every
 * other option has the default given with it. Every option, nested ones
 * included, is checked before any file is read: a value of the wrong type is
 * a TypeError 'ERR_INVALID_ARG_TYPE', a value of the right type outside what
 * is allowed (an unknown key included) a RangeError 'ERR_OUT_OF_RANGE', and
 * the message names the full option path (`options.augment.hflip`). Loss:
 * cross-entropy (PyTorch's, with label smoothing); images normalised with
 * ImageNet's mean/std unless `augment` says otherwise.
 */
export interface FineTuneOptions {
  /** Training data: an ImageFolder path, a list of { path, label }, { csv, root? }, or a loaded Dataset. Required. */
  train: DatasetSource | Dataset;
  /** Validation data (classes matched to train's by name). Default: a seeded stratified split of train. */
  val?: DatasetSource | Dataset;
  /** Share of train held out for validation when `val` is not given (not allowed with `val`), in [0, 1); 0 = no validation. Default: 0.2. */
  valFraction?: number;
  /** Passes over the training data, an integer in 1..1000000. Required. */
  epochs: number;
  /** Global batch size (over all ranks when distributed, and divisible by their number), an integer in 1..1000000. Default: 32 (as Keras' fit and mmcls' configs). */
  batchSize?: number;
  /** Square input side in pixels, an integer in 32..16384. Default: 224. */
  imageSize?: number;
  /**
   * How images are sized when not augmented (validation, and training with
   * `augment: false`): 'squash' (the whole image to imageSize x imageSize,
   * aspect ignored) or 'short' (ImageNet style: short side to
   * round(imageSize x 256 / 224), centre crop imageSize). Kept in
   * `model.inputPipeline`. Default: 'squash'.
   */
  resize?: 'squash' | 'short';
  /** Backbone learning rate, a number in [0, 100]. Default: SGD 0.02 x batchSize / 256 (linear scaling; 0.0025 at batchSize 32), AdamW 0.001. */
  lr?: number;
  /** Learning rate of the new head (the classifier's last Linear), in [0, 100]. Default: lr. */
  headLr?: number;
  /** The optimizer: a type, or a type with its options. Default: 'sgd' (momentum 0.9, weight decay 1e-4). */
  optimizer?: OptimizerType | OptimizerOptions;
  /** The learning-rate schedule: a type, or a type with its options. Default: 'cosine' (per step, down to 0, no warm-up). */
  schedule?: ScheduleType | ScheduleOptions;
  /** Cross-entropy label smoothing in [0, 1). Default: 0. */
  labelSmoothing?: number;
  /** Clip the global gradient L2 norm to this value (torch.nn.utils.clip_grad_norm_); 0 = off. Default: 0. */
  clipGradNorm?: number;
  /**
   * Which mmcls stages get no gradient: 'none', 'features' (all five) or a
   * count. LibTorch fixes this when the model is built, so the model must be
   * created with the same `vgg(arch, { frozenStages })`; fineTune checks it
   * (a mismatch is a RangeError 'ERR_OUT_OF_RANGE'). A count is in 0..5.
   * Default: whatever the model was built with.
   */
  freeze?: 'none' | 'features' | number;
  /**
   * Transfer learning in seconds: with the whole trunk frozen (`freeze: 'features'` or 5)
   * and `augment: false`, compute every training image's trunk output once, keep it in
   * memory (N x 512 x (imageSize/32)^2 float32), and train only the classifier on it
   * (the frozen trunk runs in eval mode either way). `true` = `{ standardize: true }`:
   * see {@link CacheFeaturesOptions}. Not with distributed training, checkpoints or resume.
   * Default: false.
   */
  cacheFeatures?: boolean | CacheFeaturesOptions;
  /**
   * Training augmentation ({@link AugmentOptions} without `size`, which is
   * imageSize). true = the defaults: random resized crop (scale [0.08, 1],
   * ratio [3/4, 4/3]) and a horizontal flip with probability 0.5, no colour
   * jitter unless `colorJitter` is given; an object = those defaults with
   * its values over them; false = none (images sized by `resize`). Checked
   * with the rest, before any file is read (`options.augment.hflip`).
   * Default: true.
   */
  augment?: boolean | Omit<AugmentOptions, 'size'>;
  /** Drop the last, short batch. Default: only when a batch-norm model would get a shard of fewer than 2 images. */
  dropLast?: boolean;
  /**
   * Folder for checkpoints (an epoch's end, every checkpointEvery steps, and on abort). Only rank 0 writes.
   * Each checkpoint is a folder `step-<globalStep>` holding model.pth (mmcls layout), optimizer.pt and
   * state.json; the file `latest` names the newest. Default: none (no checkpoints).
   */
  checkpointDir?: string;
  /** Also checkpoint every this many steps mid-epoch (needs checkpointDir); 0 = epoch ends only. Default: 0. */
  checkpointEvery?: number;
  /** Checkpoints kept on disk (the newest), a positive integer. Default: 1. */
  keepCheckpoints?: number;
  /**
   * true: continue from checkpointDir's latest checkpoint if there is one (else start fresh);
   * a path: that checkpoint (or checkpoint folder), which must exist. The data,
   * seed, batchSize and optimizer type must be the checkpoint's (else ModelError
   * 'BAD_RESUME'). Default: false.
   */
  resume?: boolean | string;
  /** Stops at the next step boundary and rejects with AbortError; a checkpoint is written first when checkpointDir is set. Default: none. */
  signal?: AbortSignal;
  /** Called after every training step, on the JS thread. Default: none. */
  onProgress?: (p: FineTuneProgress) => void;
  /** Seeds data order, augmentation, the validation split, a new head and dropout; an integer in 0..2^32-1. Default: 0. */
  seed?: number;
  /** One LibTorch thread (process-wide, restored afterwards) so every reduction runs in one order: bitwise-repeatable runs. Default: false. */
  deterministic?: boolean;
  /** Skip unreadable images and unknown labels (listed in the report's `skipped`) instead of failing. Default: false. */
  skipInvalid?: boolean;
  /** Autocast precision for training and validation: 'fp32', 'fp16' (CUDA only) or 'bf16'. Default: 'fp32'. */
  precision?: TrainPrecision;
  /**
   * Data-parallel training over processes (Gloo): true = from the torchrun
   * environment; an object = explicit. Default: the environment when WORLD_SIZE > 1.
   */
  distributed?: boolean | DistributedOptions;
  /** Stop when validation top-1 has not improved by minDelta for `patience` epochs (needs validation data). Default: none. */
  earlyStopping?: {
    /** Epochs without improvement before stopping, a positive integer. Required. */
    patience: number;
    /** Smallest rise in validation top-1 (a fraction, in [0, 1]) that counts as improvement. Default: 0. */
    minDelta?: number;
  };
  /** Validation batch size, a positive integer. Default: batchSize. */
  evalBatchSize?: number;
  /**
   * Write a training report to this HTML file (a non-empty path): one
   * self-contained page (inline SVG charts and PNGs, no network) with loss,
   * accuracy, learning rate and images/s per step and per epoch, the
   * validation confusion matrix, per-class accuracy, the worst misclassified
   * validation images with their Grad-CAM, the options and the machine.
   * Rewritten atomically after every epoch (it reloads itself while training
   * runs) and at the end; only rank 0 writes. A page that cannot be written
   * is a process warning, never a training failure. Default: none.
   */
  report?: string;
}

export interface ResolvedFineTune {
  train: DatasetSource | Dataset;
  val: DatasetSource | Dataset | undefined;
  valFraction: number;
  epochs: number;
  batchSize: number;
  evalBatchSize: number;
  imageSize: number;
  resize: 'squash' | 'short';
  lr: number;
  headLr: number;
  optimizer: Required<OptimizerOptions>;
  schedule: ScheduleSpec;
  /** Warm-up given in epochs; turned into steps once stepsPerEpoch is known. */
  warmupEpochs: number;
  labelSmoothing: number;
  clipGradNorm: number;
  freeze: number | undefined; // frozen stages, or undefined = not asked
  cacheFeatures: Required<CacheFeaturesOptions> | undefined;
  /** Resolved here with the path 'options.augment' (size = imageSize); the loader runs it as it is. */
  augment: ResolvedAugmentOptions | false;
  dropLast: boolean | undefined;
  checkpointDir: string | undefined;
  checkpointEvery: number;
  keepCheckpoints: number;
  resume: boolean | string;
  signal: AbortSignal | undefined;
  onProgress: ((p: FineTuneProgress) => void) | undefined;
  seed: number;
  deterministic: boolean;
  skipInvalid: boolean;
  precision: TrainPrecision;
  distributed: ResolvedDistributed | undefined;
  earlyStopping: { patience: number; minDelta: number } | undefined;
  report: string | undefined;
}

const FINE_TUNE_KEYS = keysOf<FineTuneOptions>()([
  'train',
  'val',
  'valFraction',
  'epochs',
  'batchSize',
  'imageSize',
  'resize',
  'lr',
  'headLr',
  'optimizer',
  'schedule',
  'labelSmoothing',
  'clipGradNorm',
  'freeze',
  'cacheFeatures',
  'augment',
  'dropLast',
  'checkpointDir',
  'checkpointEvery',
  'keepCheckpoints',
  'resume',
  'signal',
  'onProgress',
  'seed',
  'deterministic',
  'skipInvalid',
  'precision',
  'distributed',
  'earlyStopping',
  'evalBatchSize',
  'report',
]);
const KNOWN = new Set<string>(FINE_TUNE_KEYS);
/** Keras' fit and mmcls' configs both default to 32 images a step. */
/**
 * SGD's default learning rate per 256 images of (global) batch: the rate scales linearly with the batch
 * (Goyal et al. 2017, "Accurate, Large Minibatch SGD"; mmcls's auto_scale_lr). 0.02 was chosen by measurement
 * (README "Defaults that train"): 0.01 per 256 is mmcls's VGG ImageNet recipe; from random weights on a small
 * task twice that trains as well and faster, while a fixed 0.01 at batch 16 diverged.
 */
export const SGD_LR_PER_256 = 0.02;

/** AdamW's default learning rate (not scaled: Adam's step size does not grow with the batch as SGD's does). */
export const ADAMW_LR = 0.001;

/** The default backbone learning rate for an optimizer and global batch size. */
export function defaultLr(optimizer: 'sgd' | 'adamw', batchSize: number): number {
  return optimizer === 'sgd' ? (SGD_LR_PER_256 * batchSize) / 256 : ADAMW_LR;
}

const DEFAULT_BATCH_SIZE = 32;

const OPTIMIZER_KEYS = keysOf<OptimizerOptions>()(['type', 'momentum', 'nesterov', 'weightDecay', 'betas', 'eps']);
const SCHEDULE_KEYS = keysOf<ScheduleOptions>()(['type', 'stepSize', 'gamma', 'minLrRatio', 'warmupSteps', 'warmupEpochs', 'warmupRatio']);

function checkSource(param: string, v: unknown): DatasetSource | Dataset {
  const ok = (typeof v === 'string' && v.length > 0) || Array.isArray(v) || (isPlainObject(v) && ('csv' in v || ('items' in v && 'classes' in v)));
  if (!ok) throw invalidType(param, 'a folder path, an array of { path, label }, { csv, root? } or a Dataset { items, classes }', v);
  return v as DatasetSource | Dataset;
}

function resolveOptimizer(v: unknown): Required<OptimizerOptions> {
  const o =
    typeof v === 'string' || v === undefined
      ? { type: v ?? 'sgd' }
      : checkKnownKeys('options.optimizer', checkObject('options.optimizer', v), OPTIMIZER_KEYS);
  const type = checkOneOf(typeof v === 'string' ? 'options.optimizer' : 'options.optimizer.type', o.type, ['sgd', 'adamw'] as const);
  const betas = o.betas === undefined ? [0.9, 0.999] : o.betas;
  if (!Array.isArray(betas)) throw invalidType('options.optimizer.betas', 'an array [beta1, beta2] of numbers in [0, 1)', betas);
  if (betas.length !== 2) throw invalidRange('options.optimizer.betas', 'an array [beta1, beta2] of numbers in [0, 1)', betas);
  betas.forEach((b, i) => {
    checkNumber(`options.optimizer.betas[${i}]`, b, 0, 0.999999999);
  });
  return {
    type,
    momentum: orDefault(o.momentum, 0.9, (v) => checkNumber('options.optimizer.momentum', v, 0, 1)),
    nesterov: orDefault(o.nesterov, false, (v) => checkBoolean('options.optimizer.nesterov', v)),
    weightDecay: orDefault(o.weightDecay, type === 'sgd' ? 1e-4 : 0.01, (v) => checkNumber('options.optimizer.weightDecay', v, 0, 1)),
    betas: [betas[0], betas[1]] as [number, number],
    eps: orDefault(o.eps, 1e-8, (v) => checkNumber('options.optimizer.eps', v, 0, 1)),
  };
}

function resolveSchedule(v: unknown, epochs: number): { spec: ScheduleSpec; warmupEpochs: number } {
  const o =
    typeof v === 'string' || v === undefined
      ? { type: v ?? 'cosine' }
      : checkKnownKeys('options.schedule', checkObject('options.schedule', v), SCHEDULE_KEYS);
  const type = checkOneOf(typeof v === 'string' ? 'options.schedule' : 'options.schedule.type', o.type, ['constant', 'step', 'cosine'] as const);
  if (o.warmupSteps !== undefined && o.warmupEpochs !== undefined) {
    throw invalidRange('options.schedule', 'warmupSteps or warmupEpochs, not both', o);
  }
  return {
    spec: {
      type,
      stepSize: orDefault(o.stepSize, Math.max(1, Math.floor(epochs / 3)), (v) => checkInteger('options.schedule.stepSize', v, 1)),
      gamma: orDefault(o.gamma, 0.1, (v) => checkNumber('options.schedule.gamma', v, 0, 1)),
      minLrRatio: orDefault(o.minLrRatio, 0, (v) => checkNumber('options.schedule.minLrRatio', v, 0, 1)),
      warmupSteps: orDefault(o.warmupSteps, 0, (v) => checkInteger('options.schedule.warmupSteps', v, 0)),
      warmupRatio: orDefault(o.warmupRatio, 0.1, (v) => checkNumber('options.schedule.warmupRatio', v, 0, 1)),
    },
    warmupEpochs: orDefault(o.warmupEpochs, 0, (v) => checkNumber('options.schedule.warmupEpochs', v, 0, epochs)),
  };
}

function resolveFreeze(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (v === 'none') return 0;
  if (v === 'features') return 5;
  if (typeof v === 'number') return checkInteger('options.freeze', v, 0, 5);
  throw (typeof v === 'string' ? invalidRange : invalidType)('options.freeze', "'none', 'features' or a number of stages 0..5", v);
}

/** Validates every option; throws TypeError/RangeError naming the option. */
export function resolveFineTuneOptions(options: unknown): ResolvedFineTune {
  if (!isPlainObject(options)) throw invalidType('options', 'an object { train, epochs, … }', options);
  const o = options;
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) throw invalidRange('options', `only the keys ${[...KNOWN].join(', ')}`, key);
  }
  const train = checkSource('options.train', o.train);
  const val = orDefault(o.val, undefined, (v) => checkSource('options.val', v));
  if (o.valFraction !== undefined && val !== undefined) throw invalidRange('options.valFraction', 'nothing when options.val is given', o.valFraction);
  const valFraction = orDefault(o.valFraction, 0.2, (v) => checkFraction('options.valFraction', v));
  const epochs = checkInteger('options.epochs', o.epochs, 1, 1_000_000);
  const batchSize = orDefault(o.batchSize, DEFAULT_BATCH_SIZE, (v) => checkInteger('options.batchSize', v, 1, 1_000_000));
  const imageSize = orDefault(o.imageSize, 224, (v) => checkInteger('options.imageSize', v, 32, 16384));
  const optimizer = resolveOptimizer(o.optimizer);
  const lr = orDefault(o.lr, defaultLr(optimizer.type, batchSize), (v) => checkNumber('options.lr', v, 0, 100));
  const { spec, warmupEpochs } = resolveSchedule(o.schedule, epochs);
  const augment = resolveFineTuneAugment(o.augment, imageSize);
  let earlyStopping: ResolvedFineTune['earlyStopping'];
  if (o.earlyStopping !== undefined) {
    const e = checkKnownKeys('options.earlyStopping', checkObject('options.earlyStopping', o.earlyStopping), ['patience', 'minDelta']);
    earlyStopping = {
      patience: checkInteger('options.earlyStopping.patience', e.patience, 1),
      minDelta: orDefault(e.minDelta, 0, (v) => checkNumber('options.earlyStopping.minDelta', v, 0, 1)),
    };
  }
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw invalidType('options.onProgress', 'a function', o.onProgress);
  let resume: boolean | string = false;
  if (o.resume !== undefined)
    resume = typeof o.resume === 'string' ? checkString('options.resume', o.resume) : checkBoolean('options.resume', o.resume);
  const checkpointDir = orDefault(o.checkpointDir, undefined, (v) => checkString('options.checkpointDir', v));
  if (resume === true && checkpointDir === undefined) {
    throw invalidRange('options.resume', 'a checkpoint path, or true together with options.checkpointDir', o.resume);
  }
  const checkpointEvery = orDefault(o.checkpointEvery, 0, (v) => checkInteger('options.checkpointEvery', v, 0));
  if (checkpointEvery > 0 && checkpointDir === undefined) {
    throw invalidRange('options.checkpointEvery', '0 unless options.checkpointDir is given', checkpointEvery);
  }
  const freeze = resolveFreeze(o.freeze);
  const distributed = resolveDistributed(o.distributed);
  // The global batch is split evenly over the ranks: checked now, not once the data has been read.
  if (distributed && batchSize % distributed.worldSize !== 0) {
    const from = isPlainObject(o.distributed) ? 'options.distributed.worldSize' : 'the WORLD_SIZE environment variable';
    const given = o.batchSize === undefined ? ` (options.batchSize defaults to ${DEFAULT_BATCH_SIZE})` : '';
    throw invalidRange(
      'options.batchSize',
      `a multiple of the number of ranks (${distributed.worldSize}, ${from}), the global batch being split evenly across them${given}`,
      batchSize,
    );
  }
  const cacheFeatures = resolveCacheFeatures(o.cacheFeatures);
  if (cacheFeatures) {
    const why =
      freeze !== 5
        ? "options.freeze 'features' (the cached trunk must not change)"
        : augment !== false
          ? 'options.augment false (each epoch would see other images)'
          : distributed && distributed.worldSize > 1
            ? 'no options.distributed'
            : checkpointDir !== undefined || resume !== false
              ? 'no options.checkpointDir or options.resume'
              : undefined;
    if (why) throw invalidRange('options.cacheFeatures', `false, or true together with ${why}`, o.cacheFeatures);
  }
  return {
    train,
    val,
    valFraction,
    epochs,
    batchSize,
    evalBatchSize: orDefault(o.evalBatchSize, batchSize, (v) => checkInteger('options.evalBatchSize', v, 1)),
    imageSize,
    resize: orDefault(o.resize, 'squash', (v) => checkOneOf('options.resize', v, ['squash', 'short'] as const)),
    lr,
    headLr: orDefault(o.headLr, lr, (v) => checkNumber('options.headLr', v, 0, 100)),
    optimizer,
    schedule: spec,
    warmupEpochs,
    labelSmoothing: orDefault(o.labelSmoothing, 0, (v) => checkNumber('options.labelSmoothing', v, 0, 0.999999)),
    clipGradNorm: orDefault(o.clipGradNorm, 0, (v) => checkNumber('options.clipGradNorm', v, 0, Number.MAX_VALUE)),
    freeze,
    cacheFeatures,
    augment,
    dropLast: orDefault(o.dropLast, undefined, (v) => checkBoolean('options.dropLast', v)),
    checkpointDir,
    checkpointEvery,
    keepCheckpoints: orDefault(o.keepCheckpoints, 1, (v) => checkInteger('options.keepCheckpoints', v, 1)),
    resume,
    signal: checkAbortSignal('options.signal', o.signal),
    onProgress: o.onProgress as ResolvedFineTune['onProgress'],
    seed: orDefault(o.seed, 0, (v) => checkInteger('options.seed', v, 0, 0xffffffff)),
    deterministic: orDefault(o.deterministic, false, (v) => checkBoolean('options.deterministic', v)),
    skipInvalid: orDefault(o.skipInvalid, false, (v) => checkBoolean('options.skipInvalid', v)),
    precision: orDefault(o.precision, 'fp32', (v) => checkOneOf('options.precision', v, TRAIN_PRECISIONS)),
    distributed,
    earlyStopping,
    report: orDefault(o.report, undefined, (v) => checkString('options.report', v)),
  };
}

/** fineTune's `augment`: true/undefined = the defaults, an object = those over the defaults, false = none; its size is always imageSize. */
function resolveFineTuneAugment(v: unknown, imageSize: number): ResolvedAugmentOptions | false {
  if (v === false) return false;
  if (v === undefined || v === true) return resolveAugmentOptions({ size: imageSize }, 'options.augment');
  if (!isPlainObject(v)) throw invalidType('options.augment', 'a boolean or an object of augment options', v);
  if (v.size !== undefined) throw invalidRange('options.augment.size', 'nothing: the size is options.imageSize', v.size);
  return resolveAugmentOptions({ ...v, size: imageSize }, 'options.augment');
}

const CACHE_FEATURES_KEYS = keysOf<CacheFeaturesOptions>()(['standardize']);

function resolveCacheFeatures(v: unknown): Required<CacheFeaturesOptions> | undefined {
  if (v === undefined || v === false) return undefined;
  if (v === true) return { standardize: true };
  if (!isPlainObject(v)) throw invalidType('options.cacheFeatures', 'a boolean or { standardize?: boolean }', v);
  const o = v as Record<string, unknown>;
  checkKnownKeys('options.cacheFeatures', o, CACHE_FEATURES_KEYS);
  return { standardize: orDefault(o.standardize, true, (x) => checkBoolean('options.cacheFeatures.standardize', x)) };
}
