// quantize(): post-training static calibration for int8 inference. Calibration
// images go through the classify pipeline (decode, resize, crop on sharp's
// pool; normalisation on LibTorch's) in batches; the native side runs the
// float32 trunk and accumulates each convolution's input statistics
// (native/calibrate.h), then turns them into per-convolution input scales that
// the int8 trunk (native/onednn_trunk.cc) quantises with.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { int8Support, type ModelCore, type QuantizationInfo } from '../core/model-core';
import { isImageFile } from '../data/folder';
import { ModelError } from '../errors';
import type { PreprocessOptions } from '../image/preprocess';
import { resolvePreprocessOptions } from '../image/options';
import type { ModelInput } from '../tensor';
import {
  checkAbortSignal,
  checkInteger,
  checkKnownKeys,
  checkNumber,
  checkObject,
  checkOneOf,
  checkString,
  invalidRange,
  invalidType,
  keysOf,
  orDefault,
} from '../validate';
import { checkModel, runPipeline, type ResolvedBatchOptions } from './pipeline';

/** Options of {@link Vgg.quantize}. */
export interface QuantizeOptions {
  /**
   * The calibration images: a folder (searched recursively for image files, taken in sorted path
   * order) or a list of image paths. Use images like those the model will see (a few per class of
   * its training or validation set). Required.
   */
  calibration: string | readonly string[];
  /**
   * How many images to calibrate on, an integer in 1..100000; when there are more, that many are
   * taken evenly spaced through the sorted list. Default: 100 (as Hugging Face Optimum's ONNX Runtime
   * `get_calibration_dataset(num_samples=100)`; OpenVINO's POT recommends at least 300,
   * `stat_subset_size`).
   */
  samples?: number;
  /**
   * How each convolution's input range is chosen: 'minmax' (the largest |x| seen) or 'percentile'
   * (the `percentile`-th percentile of |x|, which ignores rare outliers and keeps finer steps for the
   * rest). Default: 'percentile'.
   */
  method?: 'minmax' | 'percentile';
  /** The percentile for method 'percentile', a number in 90..100. Default: 99.99. */
  percentile?: number;
  /** How images become tensors, as {@link Vgg.classify}'s. Default: the model's {@link Vgg.inputPipeline}, else ImageNet's test pipeline. */
  preprocess?: PreprocessOptions;
  /** Images per native call, an integer in 1..256. Default: 8. */
  batchSize?: number;
  /** Aborting rejects with AbortError; the model keeps its previous calibration. Default: none. */
  signal?: AbortSignal;
}

/** What {@link Vgg.quantize} resolves with. */
export interface QuantizeResult {
  /** The method used. */
  method: 'minmax' | 'percentile';
  /** Images calibrated on. */
  samples: number;
  /** Input scale of each convolution (see {@link QuantizationInfo.scales}). */
  scales: number[];
  /** Wall-clock seconds the calibration took (decoding included). */
  seconds: number;
}

const QUANTIZE_KEYS = keysOf<QuantizeOptions>()(['calibration', 'samples', 'method', 'percentile', 'preprocess', 'batchSize', 'signal']);

/** Image files under `root`, recursively, in sorted path order. */
async function imagesUnder(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && isImageFile(e.name)) found.push(p);
    }
  };
  await walk(root);
  return found.sort();
}

/** `n` items evenly spaced through `list` (all of it when it is no longer). */
function spread<T>(list: readonly T[], n: number): T[] {
  if (list.length <= n) return [...list];
  return Array.from({ length: n }, (_, i) => list[Math.floor((i * list.length) / n)]);
}

/** Validates quantize() options (names in errors: `options.<key>`) and calibrates the model. */
export async function quantize(core: ModelCore, options: unknown): Promise<QuantizeResult> {
  checkModel(core);
  const o = checkKnownKeys('options', checkObject('options', options), QUANTIZE_KEYS);
  const calibration = o.calibration;
  let list: string[] | undefined;
  let folder: string | undefined;
  if (typeof calibration === 'string') folder = checkString('options.calibration', calibration);
  else if (Array.isArray(calibration)) list = calibration.map((p, i) => checkString(`options.calibration[${i}]`, p));
  else throw invalidType('options.calibration', 'a folder path or an array of image paths', calibration);
  const samples = orDefault(o.samples, 100, (v) => checkInteger('options.samples', v, 1, 100_000));
  const method = orDefault(o.method, 'percentile' as const, (v) => checkOneOf('options.method', v, ['minmax', 'percentile'] as const));
  const percentile = orDefault(o.percentile, 99.99, (v) => checkNumber('options.percentile', v, 90, 100));
  const batchSize = orDefault(o.batchSize, 8, (v) => checkInteger('options.batchSize', v, 1, 256));
  const preprocess = resolvePreprocessOptions(o.preprocess ?? core.defaultPreprocess(), 'options.preprocess');
  const signal = checkAbortSignal('options.signal', o.signal);
  const unsupported = int8Support(core.device);
  if (unsupported) throw new ModelError('INT8_UNSUPPORTED', unsupported);

  const started = performance.now();
  if (folder !== undefined) {
    const info = await stat(folder).catch(() => undefined);
    if (!info?.isDirectory()) throw invalidRange('options.calibration', 'an existing folder or an array of image paths', folder);
    list = await imagesUnder(folder);
  }
  const chosen = spread(list!, samples);
  if (chosen.length === 0) throw invalidRange('options.calibration', 'a folder holding image files or a non-empty list', calibration);
  const resolved: ResolvedBatchOptions = {
    batchSize,
    concurrency: undefined,
    preprocess,
    forward: { channelsLast: false, signal },
    signal,
    failFast: true, // an unreadable calibration image rejects the call (ImageInputError with its index and path)
  };
  let first = true;
  let images = 0;
  const run = async (x: ModelInput): Promise<undefined[]> => {
    const n = x.shape[0];
    images = await core.calibrateBatch(x, first, signal);
    first = false;
    return new Array<undefined>(n).fill(undefined);
  };
  for await (const _ of runPipeline(chosen, resolved, run)) {
    // every item was accumulated by its batch
  }
  const scales = await core.finishCalibration(method, percentile);
  const q: QuantizationInfo = { method, ...(method === 'percentile' ? { percentile } : {}), samples: images, scales };
  await core.setQuantization(q, true);
  return { method, samples: images, scales, seconds: (performance.now() - started) / 1000 };
}
