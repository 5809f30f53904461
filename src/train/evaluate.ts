// Accuracy of a model on a labelled dataset: eval-mode logits from
// model.forward over a non-augmented DataLoader, scored in JavaScript.
import { DataLoader } from '../data/loader';
import { DatasetError, loadDataset, validateDataset, type DatasetProblem, type DatasetSource } from '../data/dataset';
import type { Dataset } from '../data/types';
import type { ModelCore } from '../core/model-core';
import { PRECISIONS, type Precision } from '../core/forward';
import { checkAbortSignal, checkBoolean, checkInteger, checkKnownKeys, checkObject, checkOneOf, invalidRange, keysOf, orDefault } from '../validate';
import { isDataset } from './data';

/**
 * Options of {@link Vgg.evaluate}. Every option is optional, with the default
 * given; all are checked before any file is read (TypeError
 * 'ERR_INVALID_ARG_TYPE' for a wrong type, RangeError 'ERR_OUT_OF_RANGE' for a
 * value outside what is allowed or an unknown key, naming `options.<key>`).
 */
export interface EvaluateOptions {
  /** Images per forward, a positive integer. Default: 32. */
  batchSize?: number;
  /** Square input side in pixels, an integer in 32..16384. Default: the model's inputPipeline size (set by fineTune), else 224. */
  imageSize?: number;
  /** 'squash' or 'short' (ImageNet: short side to size*256/224, centre crop). Default: the model's inputPipeline, else 'short'. */
  resize?: 'squash' | 'short';
  /** 'fp32', 'fp16' (CUDA only) or 'bf16'. Default: 'fp32'. */
  precision?: Precision;
  /** Aborting rejects with AbortError. Default: none. */
  signal?: AbortSignal;
  /** Skip unreadable images (listed in `skipped`) instead of failing. Default: false. */
  skipInvalid?: boolean;
}

const EVALUATE_KEYS = keysOf<EvaluateOptions>()(['batchSize', 'imageSize', 'resize', 'precision', 'signal', 'skipInvalid']);

/** What {@link Vgg.evaluate} resolves with. */
export interface EvaluateResult {
  /** Share of images whose highest-scoring class is the true one, in [0, 1]. */
  top1: number;
  /** Share of images whose class is among the top min(5, numClasses), in [0, 1]. */
  top5: number;
  /** Mean cross-entropy (natural log). */
  loss: number;
  /** Images scored (skipped ones excluded). */
  count: number;
  /** One entry per class, in class order: its name, its images and their top-1 accuracy (0 when it has none). */
  perClass: Array<{
    /** Class name (the dataset's, else the model's label, else the index). */
    label: string;
    /** Images of this class scored. */
    count: number;
    /** Share of them predicted as this class, in [0, 1]. */
    top1: number;
  }>;
  /** confusion[trueClass][predictedClass], numClasses × numClasses. */
  confusion: number[][];
  /** Images that could not be used (only with skipInvalid), each with its reason. */
  skipped: DatasetProblem[];
}

/** Running totals; fineTune's validation shares it. */
export class Scorer {
  readonly confusion: number[][];
  private lossSum = 0;
  private top1 = 0;
  private top5 = 0;
  count = 0;

  constructor(readonly numClasses: number) {
    this.confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  }

  /** logits: [n, numClasses] row-major; labels: n class indices. */
  add(logits: Float32Array, labels: BigInt64Array): void {
    const C = this.numClasses;
    const k = Math.min(5, C);
    for (let r = 0; r < labels.length; r++) {
      const row = logits.subarray(r * C, (r + 1) * C);
      const y = Number(labels[r]);
      let max = -Infinity;
      let arg = 0;
      for (let c = 0; c < C; c++)
        if (row[c] > max) {
          max = row[c];
          arg = c;
        }
      let sum = 0;
      for (let c = 0; c < C; c++) sum += Math.exp(row[c] - max);
      this.lossSum += Math.log(sum) + max - row[y]; // -log softmax, shifted for stability
      // Rank of the true class: how many classes score higher (ties go to the lower index, as topk does).
      let above = 0;
      for (let c = 0; c < C; c++) if (row[c] > row[y] || (row[c] === row[y] && c < y)) above++;
      if (above === 0) this.top1++;
      if (above < k) this.top5++;
      this.confusion[y][arg]++;
      this.count++;
    }
  }

  result(classes: readonly string[], skipped: DatasetProblem[] = []): EvaluateResult {
    const n = Math.max(1, this.count);
    const perClass = classes.map((label, i) => {
      const row = this.confusion[i] ?? [];
      const count = row.reduce((a, b) => a + b, 0);
      return { label, count, top1: count > 0 ? row[i] / count : 0 };
    });
    return { top1: this.top1 / n, top5: this.top5 / n, loss: this.lossSum / n, count: this.count, perClass, confusion: this.confusion, skipped };
  }
}

/** Sees each scored batch's logits ([n, numClasses] row-major) beside its labels and item indices (fineTune's report keeps the worst items). */
export type BatchObserver = (logits: Float32Array, batch: { labels: BigInt64Array; indices: number[] }) => void;

/** What scoreLoader reads: a DataLoader (images), or a FeatureCache (the trunk's outputs, `features` true). */
export interface ScoredSource {
  epoch(
    epoch: number,
    options: { signal?: AbortSignal },
  ): AsyncIterable<{ data: Float32Array; shape: number[]; labels: BigInt64Array; indices: number[] }>;
}

/**
 * Runs the source's batches through the model in eval mode (the classifier alone when `features`);
 * `observe`, when given, sees every scored batch.
 */
export async function scoreLoader(
  model: ModelCore,
  loader: ScoredSource,
  precision: Precision,
  signal: AbortSignal | undefined,
  observe?: BatchObserver,
  features = false,
): Promise<Scorer> {
  const scorer = new Scorer(model.numClasses);
  for await (const b of loader.epoch(0, { signal })) {
    if (b.labels.length === 0) continue;
    const x = { data: b.data, shape: b.shape };
    const o = { precision, channelsLast: false, signal };
    const out = await (features ? model.classifierLogits(x, o) : model.logits(x, o));
    scorer.add(out.data, b.labels);
    observe?.(out.data, b);
  }
  return scorer;
}

/**
 * Top-1/top-5 accuracy, loss, per-class accuracy and the confusion matrix.
 * `dataset` is an ImageFolder path, a list, { csv } or a Dataset; its class
 * indices must be the model's (names are matched to model.labels when both exist).
 */
export async function evaluate(model: ModelCore, dataset: DatasetSource | Dataset, options?: EvaluateOptions): Promise<EvaluateResult> {
  model.assertAlive();
  const o = checkKnownKeys('options', checkObject('options', options), EVALUATE_KEYS);
  const batchSize = orDefault(o.batchSize, 32, (v) => checkInteger('options.batchSize', v, 1));
  const imageSize = orDefault(o.imageSize, model.inputPipeline?.size ?? 224, (v) => checkInteger('options.imageSize', v, 32, 16384));
  // A model fine-tuned here uses its training pipeline; otherwise ImageNet's protocol, as classify does.
  const resize = orDefault(o.resize, model.inputPipeline?.resize ?? 'short', (v) => checkOneOf('options.resize', v, ['squash', 'short'] as const));
  const precision = orDefault(o.precision, 'fp32', (v) => checkOneOf('options.precision', v, PRECISIONS));
  const signal = checkAbortSignal('options.signal', o.signal);
  const skipInvalid = orDefault(o.skipInvalid, false, (v) => checkBoolean('options.skipInvalid', v));
  model.assertClassifier('be evaluated');

  let ds: Dataset;
  const skipped: DatasetProblem[] = [];
  if (isDataset(dataset)) {
    ds = dataset;
  } else {
    // Folder names are looked up in the model's labels so index i means the model's class i.
    const loaded = await loadDataset(dataset as DatasetSource, { classes: model.labels, skipInvalid });
    skipped.push(...loaded.skipped);
    ds = loaded;
  }
  if (ds.classes.length > model.numClasses) {
    throw invalidRange('dataset', `at most ${model.numClasses} classes (the model's outputs)`, `${ds.classes.length} classes`);
  }
  const bad = ds.items.findIndex((it) => !Number.isInteger(it.label) || it.label < 0 || it.label >= model.numClasses);
  if (bad >= 0) throw invalidRange(`dataset.items[${bad}].label`, `an integer in [0, ${model.numClasses})`, ds.items[bad].label);
  const checked = await validateDataset(ds, { numClasses: model.numClasses, skipInvalid }).catch((err: unknown) => {
    // One class is fine to evaluate on; only fine-tuning needs two.
    if (err instanceof DatasetError && err.code === 'TOO_FEW_CLASSES') return { dataset: ds, skipped: [] as DatasetProblem[] };
    throw err;
  });
  skipped.push(...checked.skipped);
  const loader = new DataLoader(checked.dataset, { batchSize, imageSize, resize, skipInvalid, prefetch: 2 });
  const scorer = await scoreLoader(model, loader, precision, signal);
  skipped.push(...loader.skipped);
  const names =
    ds.classes.length === model.numClasses
      ? ds.classes
      : Array.from({ length: model.numClasses }, (_, i) => model.labels?.[i] ?? ds.classes[i] ?? String(i));
  return scorer.result(names, skipped);
}
