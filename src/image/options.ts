// Public option types of the image pipelines and their one-time resolution
// (sharp's style: validate in JS once, with precise messages). Every public
// entry point resolves here at its boundary; the pipelines take the Resolved*
// values and never look at the raw objects again.
import sharp from 'sharp';
import type { ColorJitterOptions } from './jitter';
import {
  checkBoolean,
  checkInteger,
  checkInterval,
  checkKnownKeys,
  checkNumber,
  checkNumberAtLeast,
  checkObject,
  checkOneOf,
  checkSize,
  checkTriple,
  invalidRange,
  invalidType,
  isPlainObject,
  isPositiveInteger,
  keysOf,
  orDefault,
} from '../validate';

export { isPositiveInteger };

/**
 * Resampling filter for resizing, as sharp/libvips kernels: 'bilinear'
 * (libvips 'linear', within 2 grey levels of PIL's BILINEAR), 'bicubic'
 * (Catmull-Rom, PIL's BICUBIC kernel), 'nearest', 'lanczos' (lanczos3). When
 * shrinking, libvips widens the kernel with the shrink factor, as PIL does.
 */
export type Interpolation = 'bilinear' | 'bicubic' | 'nearest' | 'lanczos';
/**
 * 'short': the short side to `resizeShort`, aspect kept, then the centre crop
 * (mmcls/torchvision's ImageNet test pipeline); 'squash': straight to the
 * crop size, aspect ignored (the ONNX zoo's notebooks).
 */
export type ResizeMode = 'short' | 'squash';
/**
 * sharp's `failOn`: the least serious libvips decoder complaint that makes an
 * image an error: 'none', 'truncated', 'error' or 'warning' (strictest).
 */
export type FailOn = 'none' | 'truncated' | 'error' | 'warning';
/** A colour as 8-bit sRGB components. */
export type Rgb = {
  /** Red, 0..255. */
  r: number;
  /** Green, 0..255. */
  g: number;
  /** Blue, 0..255. */
  b: number;
};

/**
 * Decoding options shared by {@link PreprocessOptions} and {@link AugmentOptions}.
 * Every one is optional; the defaults read images as PIL's
 * `Image.open(...).convert('RGB')` does.
 */
export interface DecodeOptions {
  /**
   * Reject inputs whose header declares more than this many pixels, before
   * decoding (sharp's `limitInputPixels`): a positive integer, or `false` to
   * lift the guard. Default: 268402689 (sharp's default, 0x3FFF²).
   */
  maxPixels?: number | false;
  /**
   * How much libvips' decoder complaints matter (sharp's `failOn`). Default:
   * 'truncated': truncated files are errors (as in PIL, which refuses them
   * unless LOAD_TRUNCATED_IMAGES), mere warnings are not.
   */
  failOn?: FailOn;
  /**
   * Transparent images: by default alpha is DROPPED and the stored colour kept,
   * exactly as PIL's convert('RGB') and OpenCV's IMREAD_COLOR (mmcls' loader)
   * do, so we see what the model saw in training. Give a background colour
   * (a CSS colour string or {r, g, b} with 0..255 components) to composite
   * onto it instead. Default: none (alpha dropped).
   */
  background?: string | Rgb;
  /**
   * Embedded ICC profiles are ignored by default: PIL and OpenCV ignore them,
   * so ImageNet-trained weights saw unconverted values. `true` converts to
   * sRGB. Default: false.
   */
  colourManage?: boolean;
}

/**
 * Options of the inference pipeline ({@link preprocess}, and `preprocess` of
 * classify / extractFeatures / explain). Every option is optional; the
 * defaults are mmcls' ImageNet test pipeline: short side 256, bilinear,
 * centre crop 224, ImageNet mean/std. The options are checked before any
 * image is read: a value of the wrong type is a TypeError
 * 'ERR_INVALID_ARG_TYPE', a value of the right type outside what is allowed
 * (a crop larger than `resizeShort` in 'short' mode, an unknown key included)
 * a RangeError 'ERR_OUT_OF_RANGE'; the message names the full option path
 * (`options.preprocess.crop`).
 */
export interface PreprocessOptions extends DecodeOptions {
  /** 'short': short side to `resizeShort`, keep aspect, then crop. 'squash': resize straight to the crop size, ignoring aspect (ONNX-zoo notebooks). Default: 'short'. */
  resize?: ResizeMode;
  /** Target of the short side in 'short' mode, pixels, an integer in 1..65536. Default: 256. */
  resizeShort?: number;
  /** Centre crop in pixels: side, [height, width] (integers in 1..65536), or false for none (in 'squash' mode without crop, resizeShort x resizeShort). Default: 224. */
  crop?: number | readonly [number, number] | false;
  /** Per-channel RGB mean on the 0..255 scale, subtracted before dividing by `std`. Default: [123.675, 116.28, 103.53] ({@link IMAGENET_MEAN}). */
  mean?: readonly [number, number, number];
  /** Per-channel RGB standard deviation on the 0..255 scale, each positive. Default: [58.395, 57.12, 57.375] ({@link IMAGENET_STD}). */
  std?: readonly [number, number, number];
  /** Resampling filter. Default: 'bilinear' (mmcls' PIL backend). All antialias when shrinking. */
  interpolation?: Interpolation;
}

/**
 * torchvision's RandomResizedCrop: a crop of random area and aspect ratio
 * (10 tries, then a centre crop clamped to the ratio range), resized to the
 * output size.
 */
export interface RandomResizedCropOptions {
  /** Fraction of the image area to crop, drawn uniformly: [lo, hi] with 0 < lo <= hi <= 1. Default: [0.08, 1]. */
  scale?: readonly [number, number];
  /** Aspect ratio w/h of the crop, drawn log-uniformly: [lo, hi] with 0 < lo <= hi. Default: [3/4, 4/3]. */
  ratio?: readonly [number, number];
}

/**
 * Training augmentation, as torchvision's / mmcls's train pipeline:
 * RandomResizedCrop, horizontal flip, ColorJitter, Normalize, drawn from a
 * seeded generator so a (seed, epoch, item) reproduces a sample. Every option
 * is optional. In {@link FineTuneOptions.augment} the output size is
 * `imageSize`. Checked before any image is read: a value of the wrong type is
 * a TypeError 'ERR_INVALID_ARG_TYPE', a value of the right type outside what
 * is allowed (an unknown key included) a RangeError 'ERR_OUT_OF_RANGE'; the
 * message names the full option path (`options.augment.hflip` in fineTune).
 */
export interface AugmentOptions extends DecodeOptions {
  /** Output size in pixels: side or [height, width], integers in 1..65536. Default: 224. */
  size?: number | readonly [number, number];
  /** Random crop then resize to `size`; false = resize the whole image to `size`. Default: on with torchvision's defaults (scale [0.08, 1], ratio [3/4, 4/3]). */
  randomResizedCrop?: RandomResizedCropOptions | false;
  /** Probability of a left-right mirror, in [0, 1]. Default: 0.5. */
  hflip?: number;
  /** Colour jitter factors (torchvision's ColorJitter, in random order); false = off. Default: off (every factor 0). */
  colorJitter?: ColorJitterOptions | false;
  /** Per-channel RGB mean on the 0..255 scale. Default: [123.675, 116.28, 103.53] ({@link IMAGENET_MEAN}). */
  mean?: readonly [number, number, number];
  /** Per-channel RGB standard deviation on the 0..255 scale, each positive. Default: [58.395, 57.12, 57.375] ({@link IMAGENET_STD}). */
  std?: readonly [number, number, number];
  /** Resampling filter. Default: 'bilinear' (torchvision's RandomResizedCrop default). */
  interpolation?: Interpolation;
}

/** {@link DecodeOptions} with every default filled in. */
export interface ResolvedDecodeOptions {
  maxPixels: number | false;
  failOn: FailOn;
  background: string | Rgb | undefined;
  colourManage: boolean;
}

/** {@link PreprocessOptions} checked and with every default filled in: what the inference pipeline runs. */
export interface ResolvedPreprocessOptions extends ResolvedDecodeOptions {
  resize: ResizeMode;
  resizeShort: number;
  crop: [number, number] | false; // [height, width]
  mean: [number, number, number];
  std: [number, number, number];
  interpolation: Interpolation;
}

/** {@link AugmentOptions} checked and with every default filled in: what the training pipeline runs. */
export interface ResolvedAugmentOptions extends ResolvedDecodeOptions {
  size: [number, number]; // [height, width]
  randomResizedCrop: { scale: [number, number]; ratio: [number, number] } | false;
  hflip: number;
  colorJitter: Required<ColorJitterOptions>;
  mean: [number, number, number];
  std: [number, number, number];
  interpolation: Interpolation;
}

/** ImageNet's per-channel RGB mean on the 0..255 scale (torchvision's [0.485, 0.456, 0.406] x 255, as mmcls writes it): the default `mean`. */
export const IMAGENET_MEAN: readonly [number, number, number] = [123.675, 116.28, 103.53];
/** ImageNet's per-channel RGB standard deviation on the 0..255 scale (torchvision's [0.229, 0.224, 0.225] x 255): the default `std`. */
export const IMAGENET_STD: readonly [number, number, number] = [58.395, 57.12, 57.375];
/** sharp's own default pixel limit. */
export const DEFAULT_MAX_PIXELS = 0x3fff * 0x3fff;
/** Largest side, crop or short side in pixels: far past what one resize may produce (src/image/limits.ts), so only nonsense is refused here. */
export const MAX_SIDE = 65536;

const INTERPOLATIONS: readonly Interpolation[] = ['bilinear', 'bicubic', 'nearest', 'lanczos'];
const FAIL_ON: readonly FailOn[] = ['none', 'truncated', 'error', 'warning'];
const RESIZE_MODES: readonly ResizeMode[] = ['short', 'squash'];

const DECODE_KEYS = keysOf<DecodeOptions>()(['maxPixels', 'failOn', 'background', 'colourManage']);
const PREPROCESS_KEYS = keysOf<PreprocessOptions>()([...DECODE_KEYS, 'resize', 'resizeShort', 'crop', 'mean', 'std', 'interpolation']);
const AUGMENT_KEYS = keysOf<AugmentOptions>()([...DECODE_KEYS, 'size', 'randomResizedCrop', 'hflip', 'colorJitter', 'mean', 'std', 'interpolation']);
const RRC_KEYS = keysOf<RandomResizedCropOptions>()(['scale', 'ratio']);
const JITTER_KEYS = keysOf<ColorJitterOptions>()(['brightness', 'contrast', 'saturation']);

/** A CSS colour string sharp can parse, or {r, g, b} with 0..255 components. */
function checkColour(param: string, v: unknown): string | Rgb {
  if (isPlainObject(v)) {
    checkKnownKeys(param, v, ['r', 'g', 'b'] as const);
    return { r: checkNumber(`${param}.r`, v.r, 0, 255), g: checkNumber(`${param}.g`, v.g, 0, 255), b: checkNumber(`${param}.b`, v.b, 0, 255) };
  }
  if (typeof v !== 'string') throw invalidType(param, 'a colour string or {r, g, b} with 0..255 components', v);
  try {
    // sharp's own parser, so a colour it would refuse at the first image is refused now.
    sharp().flatten({ background: v });
  } catch {
    throw invalidRange(param, "a CSS colour sharp can parse ('white', '#ff8800', 'rgb(255, 136, 0)') or {r, g, b}", v);
  }
  return v;
}

/** The decoding part of an options object already checked to be a plain object. */
export function resolveDecodeOptions(o: Record<string, unknown>, name: string): ResolvedDecodeOptions {
  return {
    maxPixels: orDefault<number | false>(o.maxPixels, DEFAULT_MAX_PIXELS, (v) =>
      v === false ? false : checkInteger(`${name}.maxPixels`, v, 1, Number.MAX_SAFE_INTEGER),
    ),
    failOn: orDefault(o.failOn, 'truncated', (v) => checkOneOf(`${name}.failOn`, v, FAIL_ON)),
    background: orDefault<string | Rgb | undefined>(o.background, undefined, (v) => checkColour(`${name}.background`, v)),
    colourManage: orDefault(o.colourManage, false, (v) => checkBoolean(`${name}.colourManage`, v)),
  };
}

function copy(t: readonly [number, number, number]): [number, number, number] {
  return [t[0], t[1], t[2]];
}

function resolveInterpolation(name: string, v: unknown): Interpolation {
  return orDefault(v, 'bilinear', (x) => checkOneOf(name, x, INTERPOLATIONS));
}

/**
 * Checks {@link PreprocessOptions} once and fills in every default. The public
 * entry points call it at their boundary with the option's full path as
 * `name` ('options', 'options.preprocess') and hand the result inward.
 *
 * @param options - the caller's options; undefined = all defaults
 * @param name - the option's path in messages. Default: 'options'.
 * @returns the resolved options
 * @throws TypeError 'ERR_INVALID_ARG_TYPE' for a value of the wrong type; RangeError 'ERR_OUT_OF_RANGE'
 *   for a value outside what is allowed, an unknown key, or a crop larger than resizeShort in 'short' mode
 * @example
 * ```ts
 * const o = resolvePreprocessOptions({ resize: 'squash', crop: 224 }, 'options.preprocess');
 * o.crop; // [224, 224]
 * ```
 */
export function resolvePreprocessOptions(options: unknown, name = 'options'): ResolvedPreprocessOptions {
  const o = checkKnownKeys(name, checkObject(name, options), PREPROCESS_KEYS);
  const resize = orDefault(o.resize, 'short', (v) => checkOneOf(`${name}.resize`, v, RESIZE_MODES));
  const resizeShort = orDefault(o.resizeShort, 256, (v) => checkInteger(`${name}.resizeShort`, v, 1, MAX_SIDE));
  const crop = orDefault<[number, number] | false>(o.crop, [224, 224], (v) => (v === false ? false : checkSize(`${name}.crop`, v, MAX_SIDE)));
  // In 'short' mode the short side is exactly resizeShort, so a larger crop
  // would come out smaller than asked (mmcls silently does that); refuse it.
  if (resize === 'short' && crop && Math.max(crop[0], crop[1]) > resizeShort) {
    throw invalidRange(`${name}.crop`, `a crop within ${name}.resizeShort (${resizeShort}) in 'short' mode`, o.crop ?? crop);
  }
  return {
    ...resolveDecodeOptions(o, name),
    resize,
    resizeShort,
    crop,
    mean: orDefault(o.mean, copy(IMAGENET_MEAN), (v) => checkTriple(`${name}.mean`, v, false)),
    std: orDefault(o.std, copy(IMAGENET_STD), (v) => checkTriple(`${name}.std`, v, true)),
    interpolation: resolveInterpolation(`${name}.interpolation`, o.interpolation),
  };
}

/**
 * Checks {@link AugmentOptions} once and fills in every default (fineTune
 * calls it with `name` 'options.augment'); the loader then runs the result
 * for every image without checking again.
 *
 * @param options - the caller's options; undefined = all defaults
 * @param name - the option's path in messages. Default: 'options'.
 * @returns the resolved options
 * @throws TypeError 'ERR_INVALID_ARG_TYPE' for a value of the wrong type; RangeError 'ERR_OUT_OF_RANGE'
 *   for a value outside what is allowed (hflip outside [0, 1], a scale range outside (0, 1]) or an unknown key
 * @example
 * ```ts
 * const o = resolveAugmentOptions({ hflip: 0, colorJitter: { brightness: 0.2 } }, 'options.augment');
 * o.randomResizedCrop; // { scale: [0.08, 1], ratio: [0.75, 1.333…] }
 * ```
 */
export function resolveAugmentOptions(options: unknown, name = 'options'): ResolvedAugmentOptions {
  const o = checkKnownKeys(name, checkObject(name, options), AUGMENT_KEYS);
  return {
    ...resolveDecodeOptions(o, name),
    size: orDefault<[number, number]>(o.size, [224, 224], (v) => checkSize(`${name}.size`, v, MAX_SIDE)),
    randomResizedCrop: resolveRandomResizedCrop(`${name}.randomResizedCrop`, o.randomResizedCrop),
    hflip: orDefault(o.hflip, 0.5, (v) => checkNumber(`${name}.hflip`, v, 0, 1)),
    colorJitter: resolveColorJitter(`${name}.colorJitter`, o.colorJitter),
    mean: orDefault(o.mean, copy(IMAGENET_MEAN), (v) => checkTriple(`${name}.mean`, v, false)),
    std: orDefault(o.std, copy(IMAGENET_STD), (v) => checkTriple(`${name}.std`, v, true)),
    interpolation: resolveInterpolation(`${name}.interpolation`, o.interpolation),
  };
}

function resolveRandomResizedCrop(name: string, v: unknown): ResolvedAugmentOptions['randomResizedCrop'] {
  if (v === false) return false;
  if (v !== undefined && !isPlainObject(v)) throw invalidType(name, 'an object { scale?, ratio? } or false', v);
  const o = checkKnownKeys(name, checkObject(name, v), RRC_KEYS);
  return {
    scale: orDefault<[number, number]>(o.scale, [0.08, 1], (x) => checkInterval(`${name}.scale`, x, 0, 1)),
    ratio: orDefault<[number, number]>(o.ratio, [3 / 4, 4 / 3], (x) => checkInterval(`${name}.ratio`, x, 0)),
  };
}

function resolveColorJitter(name: string, v: unknown): Required<ColorJitterOptions> {
  if (v === false || v === undefined) return { brightness: 0, contrast: 0, saturation: 0 };
  if (!isPlainObject(v)) throw invalidType(name, 'an object { brightness?, contrast?, saturation? } or false', v);
  const o = checkKnownKeys(name, v, JITTER_KEYS);
  const factor = (k: keyof ColorJitterOptions) => orDefault(o[k], 0, (x) => checkNumberAtLeast(`${name}.${k}`, x, 0));
  return { brightness: factor('brightness'), contrast: factor('contrast'), saturation: factor('saturation') };
}
