// Public option types and their one-time validation (sharp's style: validate
// in JS once, with precise messages; the pipeline then trusts the values).
import { invalidType, isPlainObject, outOfRange } from '../validate';

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

/** Decoding options shared by `preprocess` and `augment`. */
export interface DecodeOptions {
  /**
   * Reject inputs whose header declares more than this many pixels, before
   * decoding (sharp's `limitInputPixels`). Default 268402689 (sharp's default,
   * 0x3FFF²); `false` disables the guard.
   */
  maxPixels?: number | false;
  /**
   * How much libvips' decoder complaints matter (sharp's `failOn`). Default
   * 'truncated': truncated files are errors (as in PIL, which refuses them
   * unless LOAD_TRUNCATED_IMAGES), mere warnings are not.
   */
  failOn?: FailOn;
  /**
   * Transparent images: by default alpha is DROPPED and the stored colour kept,
   * exactly as PIL's convert('RGB') and OpenCV's IMREAD_COLOR (mmcls' loader)
   * do, so we see what the model saw in training. Give a background colour
   * (CSS string or {r,g,b}) to composite onto it instead.
   */
  background?: string | Rgb;
  /**
   * Embedded ICC profiles are ignored by default: PIL and OpenCV ignore them,
   * so ImageNet-trained weights saw unconverted values. `true` converts to sRGB.
   */
  colourManage?: boolean;
}

/**
 * Options of the inference pipeline ({@link preprocess}, and `preprocess` of
 * classify / extractFeatures). Defaults = mmcls' ImageNet test pipeline:
 * short side 256, bilinear, centre crop 224, ImageNet mean/std. A bad value is
 * a TypeError 'ERR_INVALID_ARG_TYPE' naming the option; a crop larger than
 * `resizeShort` in 'short' mode a RangeError 'ERR_OUT_OF_RANGE'.
 */
export interface PreprocessOptions extends DecodeOptions {
  /** 'short' (default): short side to `resizeShort`, keep aspect, then crop. 'squash': resize straight to the crop size, ignoring aspect (ONNX-zoo notebooks). */
  resize?: ResizeMode;
  /** Target of the short side in 'short' mode, pixels (a positive integer). Default: 256. */
  resizeShort?: number;
  /** Centre crop in pixels: side, [height, width], or false for none (in 'squash' mode without crop, resizeShort x resizeShort). Default: 224. */
  crop?: number | readonly [number, number] | false;
  /** Per-channel RGB mean on the 0..255 scale, subtracted before dividing by `std`. Default: [123.675, 116.28, 103.53] ({@link IMAGENET_MEAN}). */
  mean?: readonly [number, number, number];
  /** Per-channel RGB standard deviation on the 0..255 scale, each positive. Default: [58.395, 57.12, 57.375] ({@link IMAGENET_STD}). */
  std?: readonly [number, number, number];
  /** Resampling filter. Default: 'bilinear' (mmcls' PIL backend). All antialias when shrinking. */
  interpolation?: Interpolation;
}

export interface ResolvedDecodeOptions {
  maxPixels: number | false;
  failOn: FailOn;
  background: string | Rgb | undefined;
  colourManage: boolean;
}

export interface ResolvedPreprocessOptions extends ResolvedDecodeOptions {
  resize: ResizeMode;
  resizeShort: number;
  crop: [number, number] | false; // [height, width]
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

const INTERPOLATIONS: readonly Interpolation[] = ['bilinear', 'bicubic', 'nearest', 'lanczos'];
const FAIL_ON: readonly FailOn[] = ['none', 'truncated', 'error', 'warning'];

export function isPositiveInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw invalidType(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  }
  return value as T;
}

export function triple(name: string, value: unknown, fallback: readonly number[], positive: boolean): [number, number, number] {
  if (value === undefined) return [fallback[0], fallback[1], fallback[2]];
  const ok =
    (Array.isArray(value) || ArrayBuffer.isView(value)) &&
    (value as ArrayLike<number>).length === 3 &&
    Array.from(value as ArrayLike<unknown>).every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0));
  if (!ok) throw invalidType(name, `an array of 3 ${positive ? 'positive' : 'finite'} numbers`, value);
  const [a, b, c] = Array.from(value as ArrayLike<number>);
  return [a, b, c];
}

export function resolveDecodeOptions(o: Record<string, unknown>, prefix: string): ResolvedDecodeOptions {
  let maxPixels: number | false = DEFAULT_MAX_PIXELS;
  if (o.maxPixels !== undefined) {
    if (o.maxPixels !== false && !isPositiveInteger(o.maxPixels)) {
      throw invalidType(`${prefix}.maxPixels`, 'a positive integer or false', o.maxPixels);
    }
    maxPixels = o.maxPixels as number | false;
  }
  const bg = o.background;
  if (bg !== undefined) {
    const okRgb = isPlainObject(bg) && ['r', 'g', 'b'].every((k) => typeof bg[k] === 'number' && (bg[k] as number) >= 0 && (bg[k] as number) <= 255);
    if (!(typeof bg === 'string' && bg.length > 0) && !okRgb) {
      throw invalidType(`${prefix}.background`, 'a colour string or {r, g, b} with 0..255 components', bg);
    }
  }
  if (o.colourManage !== undefined && typeof o.colourManage !== 'boolean') {
    throw invalidType(`${prefix}.colourManage`, 'a boolean', o.colourManage);
  }
  return {
    maxPixels,
    failOn: oneOf(`${prefix}.failOn`, o.failOn, FAIL_ON, 'truncated'),
    background: bg as string | Rgb | undefined,
    colourManage: (o.colourManage as boolean | undefined) ?? false,
  };
}

export function resolveInterpolation(name: string, value: unknown): Interpolation {
  return oneOf(name, value, INTERPOLATIONS, 'bilinear');
}

/** Validates once; throws TypeError/RangeError naming the offending parameter. */
export function resolvePreprocessOptions(options: unknown, name = 'options'): ResolvedPreprocessOptions {
  if (options === undefined) options = {};
  if (!isPlainObject(options)) throw invalidType(name, 'an object', options);
  const o = options;
  const resize = oneOf(`${name}.resize`, o.resize, ['short', 'squash'] as const, 'short');

  let resizeShort = 256;
  if (o.resizeShort !== undefined) {
    if (!isPositiveInteger(o.resizeShort)) throw invalidType(`${name}.resizeShort`, 'a positive integer', o.resizeShort);
    resizeShort = o.resizeShort;
  }

  let crop: [number, number] | false = [224, 224];
  if (o.crop === false) crop = false;
  else if (isPositiveInteger(o.crop)) crop = [o.crop, o.crop];
  else if (Array.isArray(o.crop) && o.crop.length === 2 && o.crop.every(isPositiveInteger)) crop = [o.crop[0], o.crop[1]];
  else if (o.crop !== undefined) throw invalidType(`${name}.crop`, 'a positive integer, [height, width] or false', o.crop);

  // In 'short' mode the short side is exactly resizeShort, so a larger crop
  // would come out smaller than asked (mmcls silently does that); refuse it.
  if (resize === 'short' && crop && Math.max(crop[0], crop[1]) > resizeShort) {
    throw outOfRange(`Expected ${name}.crop (${crop.join('x')}) to fit within ${name}.resizeShort (${resizeShort})`);
  }

  return {
    ...resolveDecodeOptions(o, name),
    resize,
    resizeShort,
    crop,
    mean: triple(`${name}.mean`, o.mean, IMAGENET_MEAN, false),
    std: triple(`${name}.std`, o.std, IMAGENET_STD, true),
    interpolation: resolveInterpolation(`${name}.interpolation`, o.interpolation),
  };
}
