// Inference preprocessing: decode -> resize -> centre crop -> normalise -> [1,3,H,W].
// Defaults reproduce mmcls 0.x's ImageNet test pipeline with the pillow backend:
// Resize(size=(256, -1)) bilinear, CenterCrop(224), Normalize(ImageNet mean/std).
import * as os from 'node:os';
import type { Tensor } from '../tensor';
import { checkTensorInput, classifyInput, decodeRgb, type ImageInput } from './decode';
import { ImageInputError } from './errors';
import { checkInteger, checkObject, invalidType, orDefault } from '../validate';
import { centerCropBox, shortSideSize } from './geometry';
import { toNormalizedTensor, type Box, type RgbImage } from './normalize';
import { resolvePreprocessOptions, type PreprocessOptions, type ResolvedPreprocessOptions } from './options';
import { resizeRgb } from './resize';
import { mapBounded } from '../concurrency';
import { aspectWindow } from './limits';

export type { ImageInput, RawPixels } from './decode';
export type { PreprocessOptions, DecodeOptions, Interpolation, ResizeMode, FailOn, Rgb, ResolvedPreprocessOptions } from './options';
export { IMAGENET_MEAN, IMAGENET_STD, DEFAULT_MAX_PIXELS, resolvePreprocessOptions } from './options';
export { ImageInputError } from './errors';

/** Options of {@link preprocessBatch}: those of {@link preprocess} plus how many images decode at once. */
export interface PreprocessBatchOptions extends PreprocessOptions {
  /** Images decoded at once, a positive integer. Default: min(4, CPUs): libuv's pool has 4 threads unless UV_THREADPOOL_SIZE says otherwise. */
  concurrency?: number;
}

/** One batch item of {@link preprocessBatch}: its tensor, or why it failed (the rest of the batch still runs). */
export type PreprocessResult =
  | {
      /** The input became a tensor. */
      ok: true;
      /** Position of the input in `inputs`. */
      index: number;
      /** float32 NCHW `[1, 3, H, W]`, normalised RGB. */
      tensor: Tensor;
    }
  | {
      /** The input failed. */
      ok: false;
      /** Position of the input in `inputs`. */
      index: number;
      /** Why: an ImageInputError (with `.index`), or a TypeError/RangeError for an input of the wrong kind. */
      error: Error;
    };

/** A decoded, resized image and the box to crop from it: pixels not yet normalised. */
export interface Crop {
  image: RgbImage;
  box: Box;
}

/** Decode, resize, choose the crop: everything but normalising (tensor inputs pass through). */
async function toCrop(input: unknown, o: ResolvedPreprocessOptions, parameter: string): Promise<Tensor | Crop> {
  const item = classifyInput(input, parameter);
  if (item.kind === 'tensor') return checkTensorInput(item.tensor, parameter);

  const decoded = await decodeRgb(item, o);
  let size: { width: number; height: number } | null;
  if (o.resize === 'squash') {
    const [h, w] = o.crop || [o.resizeShort, o.resizeShort];
    size = { width: w, height: h };
  } else {
    // A 1x1 image is simply upscaled to 256x256 like mmcls would: the output
    // shape never depends on the input's size.
    size = shortSideSize(decoded.width, decoded.height, o.resizeShort);
  }
  // An extreme strip would be enlarged whole only to be cropped: resize its centre alone (limits.ts).
  const window = o.resize === 'short' && o.crop ? aspectWindow(decoded.width, decoded.height) : undefined;
  if (window) size = shortSideSize(window.width, window.height, o.resizeShort) ?? { width: window.width, height: window.height };
  const resized = size ? await resizeRgb(decoded, size.width, size.height, o.interpolation, { extract: window }) : decoded;
  const box = o.crop
    ? centerCropBox(resized.width, resized.height, o.crop[1], o.crop[0])
    : { left: 0, top: 0, width: resized.width, height: resized.height };
  return { image: resized, box };
}

function isCrop(x: Tensor | Crop): x is Crop {
  return (x as Crop).box !== undefined;
}

async function run(input: unknown, o: ResolvedPreprocessOptions, parameter: string): Promise<Tensor> {
  const c = await toCrop(input, o, parameter);
  return isCrop(c) ? toNormalizedTensor(c.image, c.box, o.mean, o.std) : c;
}

/**
 * One image -> float32 NCHW tensor [1, 3, H, W] (RGB, normalised).
 * Rejects with TypeError/RangeError for bad arguments, ImageInputError for
 * inputs that cannot be decoded (message and `.path` name the file).
 *
 * The defaults reproduce mmcls's ImageNet test pipeline with its PIL backend:
 * decode to 8-bit RGB (EXIF orientation applied, alpha dropped as PIL's
 * `convert('RGB')`, CMYK by PIL's formula), resize the short side to 256
 * (bilinear, antialiased), centre crop 224x224, then
 * `(v - mean[c]) / std[c]` with ImageNet's mean/std on the 0..255 scale. A
 * Tensor input passes through unchanged (reshaped to `[1, 3, H, W]`).
 *
 * @param input - a file path, encoded bytes, a sharp instance, raw pixels, or a `[3, H, W]` / `[1, 3, H, W]` Tensor
 * @param options - resize, crop, mean/std, interpolation, decoding; see {@link PreprocessOptions}. Default: all defaults (mmcls' ImageNet test pipeline)
 * @returns float32 `[1, 3, H, W]` (224x224 by default)
 * @throws TypeError 'ERR_INVALID_ARG_TYPE' for an input or option of the wrong type; RangeError
 *   'ERR_OUT_OF_RANGE' for an option value outside what is allowed (a crop larger than resizeShort, an
 *   unknown key) or raw data of the wrong length. Options are checked before the input is read; the
 *   message names the option (`options.crop`); the promise rejects
 * @throws {@link ImageInputError} 'NOT_FOUND', 'EMPTY', 'UNSUPPORTED_FORMAT', 'TOO_LARGE', 'CORRUPT', 'DECODE_FAILED'
 * @example
 * ```ts
 * import { preprocess, vgg } from 'vgg-native';
 *
 * const x = await preprocess('cat.jpg');                                        // [1, 3, 224, 224], mmcls/ImageNet
 * const y = await preprocess('cat.jpg', { resize: 'squash', crop: 224 });       // the ONNX zoo's pipeline
 * const logits = await (await vgg('vgg16', { weights: 'imagenet' })).forward(x); // [1, 1000]
 * ```
 */
export async function preprocess(input: ImageInput, options?: PreprocessOptions): Promise<Tensor> {
  return preprocessResolved(input, resolvePreprocessOptions(options, 'options'));
}

/** {@link preprocess} with options already resolved: nothing is checked again (the data loader's path). */
export function preprocessResolved(input: ImageInput, o: ResolvedPreprocessOptions): Promise<Tensor> {
  return run(input, o, 'input');
}

/**
 * Many images, `concurrency` at a time, results in input order. Never rejects
 * for a bad item: each result carries its tensor or its error (with `.index`).
 * Rejects only for invalid options or a non-array `inputs`.
 *
 * @param inputs - image inputs, as for {@link preprocess}
 * @param options - those of {@link preprocess}, plus `concurrency`
 * @returns one {@link PreprocessResult} per input, in input order
 * @throws TypeError 'ERR_INVALID_ARG_TYPE' / RangeError 'ERR_OUT_OF_RANGE' for a non-array `inputs` or a bad option; the promise rejects
 * @example
 * ```ts
 * import { preprocessBatch } from 'vgg-native';
 *
 * for (const r of await preprocessBatch(['a.jpg', 'b.png'], { concurrency: 2 })) {
 *   if (r.ok) console.log(r.index, r.tensor.shape);
 *   else console.warn(r.index, r.error.message);
 * }
 * ```
 */
export async function preprocessBatch(inputs: readonly ImageInput[], options?: PreprocessBatchOptions): Promise<PreprocessResult[]> {
  const { preprocess: o, concurrency } = resolvePreprocessBatchOptions(options);
  const results = await mapInputs(inputs, o, concurrency, run);
  return results.map((r) => (r.ok ? { ok: true, index: r.index, tensor: r.value } : r));
}

/** One batch item for the inference pipeline: its crop (or ready tensor), or why it failed. */
export type CropResult = { ok: true; index: number; crop: Crop | Tensor } | { ok: false; index: number; error: Error };

/**
 * preprocessBatch without the normalisation: the 8-bit crops go to the native
 * side, which normalises them on the thread pool. A thin wrapper over
 * {@link cropBatchResolved} for callers holding raw options.
 */
export async function cropBatch(
  inputs: readonly ImageInput[],
  options?: PreprocessBatchOptions,
): Promise<{ results: CropResult[]; mean: readonly number[]; std: readonly number[] }> {
  const { preprocess: o, concurrency } = resolvePreprocessBatchOptions(options);
  return cropBatchResolved(inputs, o, concurrency);
}

/** {@link cropBatch} with options already resolved (the inference pipeline's path, once per call rather than per batch). */
export async function cropBatchResolved(
  inputs: readonly ImageInput[],
  o: ResolvedPreprocessOptions,
  concurrency: number = defaultConcurrency(),
): Promise<{ results: CropResult[]; mean: readonly number[]; std: readonly number[] }> {
  const results = await mapInputs(inputs, o, concurrency, toCrop);
  return { results: results.map((r) => (r.ok ? { ok: true, index: r.index, crop: r.value } : r)), mean: o.mean, std: o.std };
}

/** min(4, CPUs): libuv's pool has 4 threads unless UV_THREADPOOL_SIZE says otherwise. */
function defaultConcurrency(): number {
  return Math.max(1, Math.min(4, os.availableParallelism?.() ?? os.cpus().length));
}

function resolvePreprocessBatchOptions(options: unknown): { preprocess: ResolvedPreprocessOptions; concurrency: number } {
  const { concurrency, ...rest } = checkObject('options', options);
  return {
    concurrency: orDefault(concurrency, defaultConcurrency(), (v) => checkInteger('options.concurrency', v, 1)),
    preprocess: resolvePreprocessOptions(rest, 'options'),
  };
}

type ItemResult<T> = { ok: true; index: number; value: T } | { ok: false; index: number; error: Error };

/** `each` over the inputs, `concurrency` at a time, in input order; an item's failure stays with the item. */
async function mapInputs<T>(
  inputs: readonly ImageInput[],
  o: ResolvedPreprocessOptions,
  concurrency: number,
  each: (input: unknown, o: ResolvedPreprocessOptions, parameter: string) => Promise<T>,
): Promise<Array<ItemResult<T>>> {
  if (!Array.isArray(inputs)) throw invalidType('inputs', 'an array of image inputs', inputs);
  return mapBounded(inputs, concurrency, async (input, index): Promise<ItemResult<T>> => {
    try {
      return { ok: true, index, value: await each(input, o, `inputs[${index}]`) };
    } catch (err) {
      const error = err instanceof ImageInputError ? err.withIndex(index) : err instanceof Error ? err : new Error(String(err));
      return { ok: false, index, error };
    }
  });
}
