// Preparing a fineTune run, everything before the first step: the data
// checked and split, the loaders, the checkpoint to resume from, the model's
// head and optimizer, the process group, and the feature cache. Failures
// surface here, before any weight changes where they can.
import { loadBinding, type NativeRuntime } from '../binding';
import type { ModelCore } from '../core/model-core';
import type { TrainPrecision } from '../core/forward';
import { ModelError } from '../errors';
import { DataLoader } from '../data/loader';
import { prepareData, type PreparedData } from './data';
import type { ResolvedDistributed } from './distributed';
import { DivergenceWatch } from './divergence';
import { FeatureCache, type BatchSource } from './feature-cache';
import { checkFreeze } from './freeze';
import { joinDistributed } from './join';
import type { RunPosition } from './observer';
import type { ResolvedFineTune } from './options';
import type { FineTuneReport } from './result';
import { findResumePoint, runIdentity, startingPoint, type ResumePoint } from './resume';
import { restoreOptimizer, restoreWeights } from './checkpoint';
import { lrFactor, type ScheduleSpec } from './schedule';

/** One fineTune run: what was prepared, and where it stands (`position`, `report` change as it trains). */
export interface TrainingRun {
  readonly model: ModelCore;
  readonly options: ResolvedFineTune;
  readonly data: PreparedData;
  /** Set when training data-parallel over more than one process. */
  readonly dist: ResolvedDistributed | undefined;
  readonly rank: number;
  readonly loader: DataLoader;
  readonly valLoader: DataLoader | undefined;
  /** With options.cacheFeatures: the trunk's outputs of the training (and validation) images. */
  readonly cache: FeatureCache | undefined;
  readonly valCache: FeatureCache | undefined;
  /** What the steps read: the feature cache, or the loader. */
  readonly source: BatchSource;
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  /** The learning-rate schedule with the warm-up in steps. */
  readonly schedule: ScheduleSpec;
  readonly resumed: ResumePoint | undefined;
  readonly report: FineTuneReport;
  readonly position: RunPosition;
  /** Warns when the loss diverges. */
  readonly divergence: DivergenceWatch;
}

/** Everything before the first step. @throws the data's, the resume's and the freeze check's errors */
export async function prepareRun(model: ModelCore, o: ResolvedFineTune): Promise<TrainingRun> {
  model.assertAlive();
  model.assertClassifier('be fine-tuned');
  checkFreeze(model, o.freeze);
  checkTrainPrecision(model.device, o.precision);
  const dist = o.distributed && o.distributed.worldSize > 1 ? o.distributed : undefined;
  const data = await prepareData(o);
  const { loader, valLoader } = makeLoaders(model, o, data, dist);
  const stepsPerEpoch = loader.stepsPerEpoch;
  const trainCount = data.train.items.length;
  // Found before the model changes, so a mismatch leaves it as it was.
  const resumed = await findResumePoint(o, runIdentity(model, o, data.classes, trainCount, stepsPerEpoch));
  await setUpModel(model, o, data.classes, resumed, dist);
  const { report, position } = startingPoint(resumed, {
    classes: data.classes,
    skipped: data.skipped,
    trainCount,
    valCount: data.val?.items.length ?? 0,
  });
  // cacheFeatures: the frozen trunk runs once per image (validation images too); the epochs train the classifier on its outputs.
  const cache = o.cacheFeatures
    ? await FeatureCache.build(model, loader, o.batchSize, o.precision, o.signal, o.cacheFeatures.standardize)
    : undefined;
  const valCache = cache && valLoader ? await FeatureCache.build(model, valLoader, o.evalBatchSize, o.precision, o.signal, false) : undefined;
  if (cache) report.featureCacheSeconds = cache.seconds + (valCache?.seconds ?? 0);
  return {
    model,
    options: o,
    data,
    dist,
    rank: dist?.rank ?? 0,
    loader,
    valLoader,
    cache,
    valCache,
    source: cache ?? loader,
    stepsPerEpoch,
    totalSteps: stepsPerEpoch * o.epochs,
    schedule: { ...o.schedule, warmupSteps: o.schedule.warmupSteps || Math.round(o.warmupEpochs * stepsPerEpoch) },
    resumed,
    report,
    position,
    divergence: new DivergenceWatch(data.classes.length, o.lr, o.batchSize),
  };
}

/**
 * bf16 on the CPU trains fast only with bf16 dot products (AVX512_BF16 or AMX-BF16);
 * elsewhere LibTorch emulates them, slower than fp32, so the run is refused rather than slowed.
 * @throws ModelError 'BF16_UNSUPPORTED'
 */
export function checkTrainPrecision(device: string, precision: TrainPrecision, cpu?: NativeRuntime['cpu']): void {
  if (precision !== 'bf16' || device !== 'cpu') return;
  const { avx512Bf16, amxBf16 } = cpu ?? loadBinding().runtime().cpu;
  if (avx512Bf16 || amxBf16) return;
  throw new ModelError(
    'BF16_UNSUPPORTED',
    "options.precision 'bf16' needs a CPU with AVX512_BF16 or AMX-BF16 to train (runtime().cpu reports neither here); use 'fp32'",
  );
}

/** Backbone and head learning rates at a global step. */
export function ratesAt(run: TrainingRun, globalStep: number): [backbone: number, head: number] {
  const f = lrFactor(run.schedule, globalStep, run.stepsPerEpoch, run.totalSteps);
  return [run.options.lr * f, run.options.headLr * f];
}

function makeLoaders(
  model: ModelCore,
  o: ResolvedFineTune,
  data: PreparedData,
  dist: ResolvedDistributed | undefined,
): { loader: DataLoader; valLoader: DataLoader | undefined } {
  const worldSize = dist?.worldSize ?? 1;
  const dropLast = o.dropLast ?? (model.spec.batchNorm && lastShardTooSmall(data.train.items.length, o.batchSize, worldSize));
  const loader = new DataLoader(data.train, {
    batchSize: o.batchSize,
    imageSize: o.imageSize,
    shuffle: true,
    seed: o.seed,
    augment: o.augment,
    dropLast,
    rank: dist?.rank ?? 0,
    worldSize,
    skipInvalid: o.skipInvalid,
    resize: o.resize,
  });
  const valLoader = data.val
    ? new DataLoader(data.val, { batchSize: o.evalBatchSize, imageSize: o.imageSize, resize: o.resize, skipInvalid: o.skipInvalid })
    : undefined;
  return { loader, valLoader };
}

/** Head sized for the classes, weights and optimizer state restored, then the rendezvous. */
async function setUpModel(
  model: ModelCore,
  o: ResolvedFineTune,
  classes: string[],
  resumed: ResumePoint | undefined,
  dist: ResolvedDistributed | undefined,
): Promise<void> {
  if (model.numClasses !== classes.length) await model.resetHead(classes.length, classes, o.seed);
  else model.labels = classes;
  model.inputPipeline = { size: o.imageSize, resize: o.resize };
  if (resumed) await restoreWeights(resumed.dir, model);
  const { type, momentum, nesterov, weightDecay, betas, eps } = o.optimizer;
  await model.configureOptimizer({ type, lr: o.lr, headLr: o.headLr, momentum, nesterov, weightDecay, betas, eps });
  if (resumed) await restoreOptimizer(resumed.dir, model);
  // Rendezvous last: every rank then holds rank 0's (restored) weights.
  if (dist) await joinDistributed(model, dist);
}

/** A batch-norm layer cannot train on a 1-image shard (one value per channel at 1×1 maps). */
function lastShardTooSmall(n: number, batchSize: number, worldSize: number): boolean {
  const last = n % batchSize;
  return last !== 0 && Math.floor(last / worldSize) < 2;
}
