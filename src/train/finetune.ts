// fineTune: the training loop. Everything random is a function of (seed,
// epoch, step) — data order and augmentation in the loader, dropout reseeded
// every step here — and the learning rate a function of the global step, so
// a run resumed from a checkpoint continues exactly as if never stopped.
import { ModelError } from '../errors';
import { DataLoader } from '../data/loader';
import { mixSeed } from '../data/seed';
import type { DatasetProblem } from '../data/dataset';
import type { ModelCore } from '../core/model-core';
import { abortErrorOf, throwIfAborted } from '../abort';
import { runtime, setThreads } from '../runtime';
import {
  findCheckpoint,
  readCheckpointState,
  restoreOptimizer,
  restoreWeights,
  saveTrainingCheckpoint,
  CHECKPOINT_FORMAT,
  type CheckpointState,
} from './checkpoint';
import { prepareData } from './data';
import { joinDistributed } from './join';
import { checkFreeze } from './freeze';
import { resolveFineTuneOptions, type FineTuneOptions, type ResolvedFineTune } from './options';
import { scoreLoader } from './evaluate';
import { lrFactor } from './schedule';
import { FeatureCache, type BatchSource } from './feature-cache';
import { TrainingReport } from './report/writer';
import type { EpochReport } from './epoch';

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
}

/** Stream of dropout seeds: its own purpose tag, apart from the data loader's (order 1, augment 2, split 3). */
const DROPOUT_PURPOSE = 4;

export function dropoutSeed(seed: number, globalStep: number): number {
  return mixSeed(DROPOUT_PURPOSE, seed, globalStep);
}

function better(a: EpochReport, b: EpochReport, hasVal: boolean): boolean {
  return hasVal ? a.valTop1 > b.valTop1 : a.trainLoss < b.trainLoss;
}

/**
 * Fine-tunes `model` on a labelled image dataset and resolves with a report
 * per epoch. The head is replaced when the dataset's class count differs,
 * and model.labels become the class names.
 */
export async function fineTune(model: ModelCore, options: FineTuneOptions): Promise<FineTuneReport> {
  const o: ResolvedFineTune = resolveFineTuneOptions(options);
  const threadsBefore = runtime().threads;
  try {
    return await train(model, o);
  } finally {
    if (o.deterministic) setThreads(threadsBefore); // deterministic's single thread lasts for this run only
  }
}

async function train(model: ModelCore, o: ResolvedFineTune): Promise<FineTuneReport> {
  model.assertAlive();
  model.assertClassifier('be fine-tuned');
  checkFreeze(model, o.freeze);
  throwIfAborted(o.signal);
  if (o.deterministic) setThreads(1);
  const dist = o.distributed && o.distributed.worldSize > 1 ? o.distributed : undefined;
  const rank = dist?.rank ?? 0;
  const worldSize = dist?.worldSize ?? 1;

  // Data problems surface here, before any weight changes.
  const data = await prepareData(o);
  const { classes } = data;
  const dropLast = o.dropLast ?? (model.spec.batchNorm && lastShardTooSmall(data.train.items.length, o.batchSize, worldSize));
  const loader = new DataLoader(data.train, {
    batchSize: o.batchSize,
    imageSize: o.imageSize,
    shuffle: true,
    seed: o.seed,
    augment: o.augment,
    dropLast,
    rank,
    worldSize,
    skipInvalid: o.skipInvalid,
    resize: o.resize,
  });
  const valLoader = data.val
    ? new DataLoader(data.val, { batchSize: o.evalBatchSize, imageSize: o.imageSize, resize: o.resize, skipInvalid: o.skipInvalid })
    : undefined;
  const stepsPerEpoch = loader.stepsPerEpoch;
  const totalSteps = stepsPerEpoch * o.epochs;
  const schedule = { ...o.schedule, warmupSteps: o.schedule.warmupSteps || Math.round(o.warmupEpochs * stepsPerEpoch) };

  // Resume: find the checkpoint first so a mismatch fails before the model changes.
  let resumeFrom: { dir: string; state: CheckpointState } | undefined;
  if (o.resume !== false) {
    const where = typeof o.resume === 'string' ? o.resume : o.checkpointDir!;
    const dir = await findCheckpoint(where);
    if (!dir && typeof o.resume === 'string')
      throw new ModelError(
        'BAD_RESUME',
        `options.resume: no training checkpoint in "${where}" (expected state.json there, or a 'latest' file naming one)`,
      );
    if (dir) {
      const state = await readCheckpointState(dir);
      checkResumable(
        state,
        {
          arch: model.arch,
          classes,
          seed: o.seed,
          stepsPerEpoch,
          batchSize: o.batchSize,
          trainCount: data.train.items.length,
          optimizer: o.optimizer.type,
        },
        dir,
      );
      resumeFrom = { dir, state };
    }
  }

  if (model.numClasses !== classes.length) await model.resetHead(classes.length, classes, o.seed);
  else model.labels = classes;
  model.inputPipeline = { size: o.imageSize, resize: o.resize };
  if (resumeFrom) await restoreWeights(resumeFrom.dir, model);
  await model.schedule(() =>
    model.native.configureOptimizer({
      type: o.optimizer.type,
      lr: o.lr,
      headLr: o.headLr,
      momentum: o.optimizer.momentum,
      nesterov: o.optimizer.nesterov,
      weightDecay: o.optimizer.weightDecay,
      betas: o.optimizer.betas,
      eps: o.optimizer.eps,
    }),
  );
  if (resumeFrom) await restoreOptimizer(resumeFrom.dir, model);
  // Rendezvous last: every rank then holds rank 0's (restored) weights.
  if (dist) await joinDistributed(model, dist);

  const r0 = resumeFrom?.state;
  const report: FineTuneReport = r0
    ? {
        ...(r0.report as FineTuneReport),
        skipped: data.skipped,
        resumedFrom: { epoch: r0.epoch, step: r0.step, globalStep: r0.globalStep, checkpoint: resumeFrom!.dir },
      }
    : {
        epochs: [],
        bestEpoch: -1,
        best: undefined as unknown as EpochReport,
        classes,
        stoppedEarly: false,
        skipped: data.skipped,
        trainCount: data.train.items.length,
        valCount: data.val?.items.length ?? 0,
      };
  let epoch = r0?.epoch ?? 0;
  let step = r0?.step ?? 0;
  let globalStep = r0?.globalStep ?? 0;
  let sinceBest = r0?.sinceBest ?? 0;
  let running = r0 ? { ...r0.running } : { lossSum: 0, correct: 0, seen: 0, seconds: 0, images: 0 };
  let savedAt = r0 ? globalStep : -1;
  const writer = o.checkpointDir !== undefined && rank === 0;
  // options.report: the HTML page (rank 0), fed every step and rewritten after every epoch.
  const page =
    o.report !== undefined && rank === 0
      ? new TrainingReport({
          file: o.report,
          model,
          options: o,
          classes,
          trainCount: data.train.items.length,
          valItems: data.val?.items,
          stepsPerEpoch,
          ...(r0 ? { resumedAt: r0.globalStep } : {}),
        })
      : undefined;

  const checkpoint = async (): Promise<void> => {
    if (!writer || savedAt === globalStep) return;
    const state: CheckpointState = {
      format: CHECKPOINT_FORMAT,
      version: 1,
      arch: model.arch,
      classes,
      seed: o.seed,
      epoch,
      step,
      globalStep,
      stepsPerEpoch,
      batchSize: o.batchSize,
      trainCount: data.train.items.length,
      optimizer: o.optimizer.type,
      running,
      report: { ...report, skipped: [], resumedFrom: undefined, checkpoint: undefined },
      sinceBest,
    };
    report.checkpoint = await saveTrainingCheckpoint(o.checkpointDir!, model, state, o.keepCheckpoints);
    savedAt = globalStep;
  };

  const rates = (g: number): [backbone: number, head: number] => {
    const f = lrFactor(schedule, g, stepsPerEpoch, totalSteps);
    return [o.lr * f, o.headLr * f];
  };
  const signal = o.signal;
  // cacheFeatures: the frozen trunk runs once per image; the epochs train the classifier on its outputs.
  const cache = o.cacheFeatures ? await FeatureCache.build(model, loader, o.batchSize, o.precision, signal, o.cacheFeatures.standardize) : undefined;
  // Validation images through the same frozen trunk once too; scored by the classifier alone.
  const valCache = cache && valLoader ? await FeatureCache.build(model, valLoader, o.evalBatchSize, o.precision, signal, false) : undefined;
  const source: BatchSource = cache ?? loader;
  if (cache) report.featureCacheSeconds = cache.seconds + (valCache?.seconds ?? 0);
  await cache?.enter(model);

  try {
    while (epoch < o.epochs && !report.stoppedEarly) {
      let t0 = Date.now() - running.seconds * 1000;
      for await (const batch of source.epoch(epoch, { signal, startStep: step })) {
        const lr = rates(globalStep);
        const seedNow = dropoutSeed(o.seed, globalStep);
        const started = Date.now();
        // Every rank steps, even with an empty shard: the gradient allreduce needs all of them.
        // lossScale makes the averaged gradient the global batch's mean when shards differ in size.
        const lossScale = dist ? (batch.labels.length * dist.worldSize) / Math.max(batch.globalSize, 1) : 1;
        const stepOut =
          batch.labels.length === 0 && !dist
            ? undefined // every image of this batch was skipped: nothing to learn from
            : await model.schedule(() =>
                model.native.trainStep(batch.data, batch.shape, batch.labels, {
                  labelSmoothing: o.labelSmoothing,
                  clipGradNorm: o.clipGradNorm,
                  lr,
                  precision: o.precision,
                  lossScale,
                  seed: seedNow, // dropout reseeded in the worker, under the generator's lock
                  ...(o.cacheFeatures ? { features: true } : {}),
                }),
              );
        const out = batch.labels.length === 0 ? undefined : stepOut;
        if (out && !Number.isFinite(out.loss)) {
          throw new ModelError(
            'DIVERGED',
            `The training loss became ${out.loss} at epoch ${epoch}, step ${step} (lr ${lr[0]}): lower options.lr, ` +
              'add a warm-up (options.schedule.warmupSteps) or set options.clipGradNorm',
          );
        }
        if (out) {
          running.lossSum += out.loss * batch.labels.length;
          running.correct += out.correct;
          running.seen += batch.labels.length;
        }
        running.images += batch.globalSize;
        step++;
        globalStep++;
        page?.step({
          globalStep,
          epoch,
          loss: out?.loss ?? NaN,
          correct: out?.correct ?? 0,
          n: out ? batch.labels.length : 0,
          lr: lr[0],
          images: batch.globalSize,
        });
        const now = Date.now();
        running.seconds = (now - t0) / 1000;
        if (o.onProgress) {
          const ips = running.images / Math.max(running.seconds, 1e-6);
          const perStep = (now - started) / 1000;
          o.onProgress({
            epoch,
            step: step - 1,
            stepsPerEpoch,
            globalStep,
            totalSteps,
            loss: out?.loss ?? NaN,
            lr: lr[0],
            imagesPerSecond: ips,
            etaSeconds: (totalSteps - globalStep) * (running.images > 0 ? o.batchSize / ips : perStep),
          });
        }
        if (signal?.aborted) throw abortErrorOf(signal);
        if (o.checkpointEvery > 0 && globalStep % o.checkpointEvery === 0 && step < stepsPerEpoch) await checkpoint();
      }
      // Epoch done: validate, record, checkpoint.
      await cache?.leave(model); // validation and the report see an ordinary model
      const val = valLoader
        ? await scoreLoader(model, valCache ?? valLoader, o.precision, signal, page?.validation(), valCache !== undefined)
        : undefined;
      const v = val?.result(classes);
      const seconds = (Date.now() - t0) / 1000;
      const e: EpochReport = {
        epoch,
        trainLoss: running.lossSum / Math.max(1, running.seen),
        trainTop1: running.correct / Math.max(1, running.seen),
        valLoss: v?.loss ?? NaN,
        valTop1: v?.top1 ?? NaN,
        valTop5: v?.top5 ?? NaN,
        imagesPerSecond: running.images / Math.max(running.seconds, 1e-6),
        lr: rates(globalStep - 1)[0],
        seconds,
      };
      report.epochs.push(e);
      const hasVal = valLoader !== undefined;
      const improved =
        report.bestEpoch < 0 || (hasVal ? e.valTop1 > report.best.valTop1 + (o.earlyStopping?.minDelta ?? 0) : better(e, report.best, false));
      if (report.bestEpoch < 0 || better(e, report.best, hasVal)) {
        report.bestEpoch = report.epochs.length - 1;
        report.best = e;
      }
      sinceBest = improved ? 0 : sinceBest + 1;
      if (o.earlyStopping && hasVal && sinceBest >= o.earlyStopping.patience && epoch + 1 < o.epochs) report.stoppedEarly = true;
      await page?.epoch(report, v);
      if (epoch + 1 < o.epochs && !report.stoppedEarly) await cache?.enter(model);
      epoch++;
      step = 0;
      running = { lossSum: 0, correct: 0, seen: 0, seconds: 0, images: 0 };
      t0 = Date.now();
      await checkpoint();
      if (signal?.aborted) throw abortErrorOf(signal);
    }
  } catch (err) {
    if (!model.disposed) await cache?.leave(model); // the model stays one that takes images
    // An abort stops at a step boundary: save where we are so `resume` picks up from here.
    if (signal?.aborted) {
      await checkpoint();
      throw abortErrorOf(signal);
    }
    throw err;
  }
  // Images the loaders dropped during training (skipInvalid) join those the checks dropped.
  report.skipped = uniqueProblems([...report.skipped, ...loader.skipped, ...(valLoader?.skipped ?? [])]);
  const reportPath = await page?.finish(report);
  if (reportPath) report.reportPath = reportPath;
  return report;
}

/** One entry per path, the first reason kept. */
function uniqueProblems(problems: DatasetProblem[]): DatasetProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => !seen.has(p.path) && seen.add(p.path) !== undefined);
}

/** A batch-norm layer cannot train on a 1-image shard (one value per channel at 1×1 maps). */
function lastShardTooSmall(n: number, batchSize: number, worldSize: number): boolean {
  const last = n % batchSize;
  return last !== 0 && Math.floor(last / worldSize) < 2;
}

function checkResumable(
  state: CheckpointState,
  now: Pick<CheckpointState, 'arch' | 'classes' | 'seed' | 'stepsPerEpoch' | 'batchSize' | 'trainCount' | 'optimizer'>,
  dir: string,
): void {
  const diffs: string[] = [];
  if (state.arch !== now.arch) diffs.push(`arch ${state.arch} vs ${now.arch}`);
  if (JSON.stringify(state.classes) !== JSON.stringify(now.classes))
    diffs.push(`classes [${state.classes.slice(0, 5).join(', ')}…] vs [${now.classes.slice(0, 5).join(', ')}…]`);
  if (state.seed !== now.seed) diffs.push(`seed ${state.seed} vs ${now.seed}`);
  if (state.batchSize !== now.batchSize) diffs.push(`batchSize ${state.batchSize} vs ${now.batchSize}`);
  if (state.trainCount !== now.trainCount) diffs.push(`${state.trainCount} vs ${now.trainCount} training images`);
  else if (state.stepsPerEpoch !== now.stepsPerEpoch) diffs.push(`${state.stepsPerEpoch} vs ${now.stepsPerEpoch} steps per epoch`);
  if (state.optimizer !== now.optimizer) diffs.push(`optimizer ${state.optimizer} vs ${now.optimizer}`);
  if (diffs.length > 0) {
    throw new ModelError(
      'BAD_RESUME',
      `Cannot resume from "${dir}": it was written by a different run (checkpoint vs now: ${diffs.join('; ')}). ` +
        'Resume with the same data, seed, batchSize and optimizer, or start afresh without options.resume',
    );
  }
}
