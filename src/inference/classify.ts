// classify(): images -> top-k class predictions, batched and pipelined
// (see pipeline.ts); softmax and top-k are done here in JS, in float64.
import type { ModelCore } from '../core/model-core';
import type { ImageInput } from '../image/preprocess';
import type { ModelInput, Tensor } from '../tensor';
import { checkInteger, keysOf, orDefault } from '../validate';
import {
  BATCH_KEYS,
  checkItem,
  checkModel,
  itemName,
  resolveBatchOptions,
  runPipeline,
  type BatchOptions,
  type ResolvedBatchOptions,
} from './pipeline';

/** One class of a classification, as {@link Vgg.classify} returns them (most probable first). */
export interface Prediction {
  /** Class index in the logits. */
  index: number;
  /** `model.labels[index]`, or `class_<index>` when the model has no labels. */
  label: string;
  /** Softmax probability over all classes, 0..1 (computed in float64 from the float32 logits). */
  probability: number;
}

/** Options of {@link Vgg.classify} and {@link Vgg.classifyStream}: batching and preprocessing ({@link BatchOptions}) plus these. */
export interface ClassifyOptions extends BatchOptions {
  /** Predictions per image, most probable first; a positive integer. Default: 5, clamped to numClasses. */
  topK?: number;
  /**
   * For an array of inputs: false (default) resolves with one ClassifyItem per
   * input, a bad image reported on its item while the others are classified;
   * true rejects with the first bad image's error and resolves with plain
   * Prediction[][] otherwise.
   */
  failFast?: boolean;
}

/** One input's outcome: its predictions, or why it could not be classified. */
export type ClassifyItem =
  | {
      /** Position of the input in the array (or the stream), from 0. */
      index: number;
      /** The input as given. */
      input: ImageInput;
      /** Top-K predictions, most probable first. */
      predictions: Prediction[];
      /** Absent on success. */
      error?: undefined;
    }
  | {
      /** Position of the input in the array (or the stream), from 0. */
      index: number;
      /** The input as given. */
      input: ImageInput;
      /** Absent on failure. */
      predictions?: undefined;
      /** Why: an {@link ImageInputError} for an unreadable image, a TypeError for an input of the wrong kind, a RangeError for a crop under 32x32. */
      error: Error;
    };

export interface ResolvedClassifyOptions extends ResolvedBatchOptions {
  topK: number;
}

const CLASSIFY_KEYS = keysOf<ClassifyOptions>()([...BATCH_KEYS, 'topK', 'failFast']);

/** Validates classify/classifyStream options once, at the boundary. */
export function resolveClassifyOptions(model: ModelCore, options: unknown): ResolvedClassifyOptions {
  const { resolved, raw } = resolveBatchOptions(model, options, CLASSIFY_KEYS);
  model.assertClassifier('classify (extractFeatures() gives its features)');
  const topK = orDefault(raw.topK, 5, (v) => checkInteger('options.topK', v, 1));
  return { ...resolved, topK: Math.min(topK, model.numClasses) };
}

/** Softmax of one row in float64, the maximum subtracted first so exp() cannot overflow. */
export function softmax(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  const p = new Float64Array(row.length);
  let sum = 0;
  for (let i = 0; i < row.length; i++) {
    p[i] = Math.exp(row[i] - max);
    sum += p[i];
  }
  for (let i = 0; i < row.length; i++) p[i] /= sum;
  return p;
}

/** Indices of the k largest values, largest first; ties keep the lower index first. O(n·k), no full sort. */
export function topIndices(p: Float64Array, k: number): number[] {
  const top: number[] = [];
  for (let i = 0; i < p.length; i++) {
    if (top.length === k && !(p[i] > p[top[k - 1]])) continue;
    let j = top.length < k ? top.length : k - 1;
    while (j > 0 && p[top[j - 1]] < p[i]) {
      top[j] = top[j - 1];
      j--;
    }
    top[j] = i;
  }
  return top;
}

/** Logits [n, C] -> n lists of the top-k predictions. */
export function predictionsFromLogits(logits: Tensor, topK: number, labels: readonly string[] | undefined): Prediction[][] {
  const [n, c] = logits.shape;
  const out: Prediction[][] = [];
  for (let r = 0; r < n; r++) {
    const p = softmax(logits.data.subarray(r * c, (r + 1) * c));
    out.push(topIndices(p, topK).map((index) => ({ index, label: labels?.[index] ?? `class_${index}`, probability: p[index] })));
  }
  return out;
}

/** The per-batch step of the pipeline: one native call, then softmax/top-k. */
export function predictor(model: ModelCore, o: ResolvedClassifyOptions): (x: ModelInput) => Promise<Prediction[][]> {
  return async (x) => {
    const [logits] = await model.forwardLayers(x, ['logits'], o.forward);
    return predictionsFromLogits(logits, o.topK, model.labels);
  };
}

/**
 * Classifies images with the model's classifier (softmax over the logits).
 *
 * - One input -> its top-k predictions; rejects if it cannot be read.
 * - An array -> one ClassifyItem per input, in order: a bad image (unreadable,
 *   truncated, too large, missing file) is reported on its item and the others
 *   still classified. With `failFast: true`: Prediction[][] or a rejection with
 *   the first bad image's error (an ImageInputError carrying `.index`/`.path`).
 * - Inputs of the wrong kind (a number, an object that is no image) reject the
 *   whole call with a TypeError naming `inputs[i]`, before any work.
 *
 * Images decode on libuv's pool while the previous batch runs in LibTorch;
 * the event loop stays free throughout. `signal` aborts with AbortError.
 */
export function classify(model: ModelCore, input: ImageInput, options?: ClassifyOptions): Promise<Prediction[]>;
export function classify(model: ModelCore, inputs: readonly ImageInput[], options: ClassifyOptions & { failFast: true }): Promise<Prediction[][]>;
export function classify(model: ModelCore, inputs: readonly ImageInput[], options?: ClassifyOptions & { failFast?: false }): Promise<ClassifyItem[]>;
export function classify(model: ModelCore, inputs: readonly ImageInput[], options?: ClassifyOptions): Promise<ClassifyItem[] | Prediction[][]>;
export async function classify(
  model: ModelCore,
  inputs: ImageInput | readonly ImageInput[],
  options?: ClassifyOptions,
): Promise<Prediction[] | ClassifyItem[] | Prediction[][]> {
  checkModel(model);
  const o = resolveClassifyOptions(model, options);
  const single = !Array.isArray(inputs);
  const list: readonly ImageInput[] = single ? [inputs as ImageInput] : (inputs as readonly ImageInput[]);
  list.forEach((input, i) => checkItem(input, itemName(i, single)));

  const run = predictor(model, o);
  if (single || o.failFast) {
    const all: Prediction[][] = [];
    for await (const r of runPipeline(list, { ...o, failFast: true }, run, single)) all.push(r.value!);
    return single ? all[0] : all;
  }
  const items: ClassifyItem[] = [];
  for await (const r of runPipeline(list, o, run)) {
    items.push(r.error ? { index: r.index, input: r.input, error: r.error } : { index: r.index, input: r.input, predictions: r.value! });
  }
  return items;
}
