// Training augmentation (torchvision / mmcls train pipeline):
// RandomResizedCrop -> horizontal flip -> ColorJitter -> Normalize -> [1,3,H,W].
// Every random draw comes from the caller's PRNG, so a seed reproduces a sample.
import type { Tensor } from '../tensor';
import { classifyInput, decodeRgb, type ImageInput } from './decode';
import { invalidType, isPlainObject } from '../validate';
import { colorJitter, type ColorJitterOptions } from './jitter';
import { toNormalizedTensor } from './normalize';
import {
  IMAGENET_MEAN,
  IMAGENET_STD,
  isPositiveInteger,
  resolveDecodeOptions,
  resolveInterpolation,
  triple,
  type DecodeOptions,
  type Interpolation,
  type ResolvedDecodeOptions,
} from './options';
import { randInt, uniform, type Rng } from './random';
import { resizeRgb } from './resize';

export { createRng, type Rng } from './random';
export type { ColorJitterOptions } from './jitter';

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
 * seeded generator so a (seed, epoch, item) reproduces a sample. In
 * {@link FineTuneOptions.augment} the output size is `imageSize`. A bad value
 * is a TypeError 'ERR_INVALID_ARG_TYPE' naming the option.
 */
export interface AugmentOptions extends DecodeOptions {
  /** Output size in pixels: side or [height, width]. Default: 224. */
  size?: number | readonly [number, number];
  /** Random crop then resize to `size`; false = resize the whole image to `size`. Default: on with torchvision's defaults (scale [0.08, 1], ratio [3/4, 4/3]). */
  randomResizedCrop?: RandomResizedCropOptions | false;
  /** Probability of a left-right mirror, in [0, 1]. Default: 0.5. */
  hflip?: number;
  /** Colour jitter factors (torchvision's ColorJitter, in random order); false or absent = off. Default: off. */
  colorJitter?: ColorJitterOptions | false;
  /** Per-channel RGB mean on the 0..255 scale. Default: {@link IMAGENET_MEAN}. */
  mean?: readonly [number, number, number];
  /** Per-channel RGB standard deviation on the 0..255 scale, each positive. Default: {@link IMAGENET_STD}. */
  std?: readonly [number, number, number];
  /** Resampling filter. Default: 'bilinear' (torchvision's RandomResizedCrop default). */
  interpolation?: Interpolation;
}

function range(name: string, v: unknown, fallback: [number, number], min: number): [number, number] {
  if (v === undefined) return fallback;
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => typeof x === 'number' && Number.isFinite(x) && x > min) || v[0] > v[1]) {
    throw invalidType(name, `[lo, hi] with ${min} < lo <= hi`, v);
  }
  return [v[0], v[1]];
}

interface CropRanges {
  scale: [number, number];
  ratio: [number, number];
}

function resolve(options: unknown): ResolvedDecodeOptions & {
  size: [number, number];
  rrc: CropRanges | false;
  hflip: number;
  jitter: Required<ColorJitterOptions>;
  mean: [number, number, number];
  std: [number, number, number];
  interpolation: Interpolation;
} {
  if (options === undefined) options = {};
  if (!isPlainObject(options)) throw invalidType('options', 'an object', options);
  const o = options;
  let size: [number, number] = [224, 224];
  if (isPositiveInteger(o.size)) size = [o.size, o.size];
  else if (Array.isArray(o.size) && o.size.length === 2 && o.size.every(isPositiveInteger)) size = [o.size[0], o.size[1]];
  else if (o.size !== undefined) throw invalidType('options.size', 'a positive integer or [height, width]', o.size);

  let rrc: CropRanges | false = { scale: [0.08, 1], ratio: [3 / 4, 4 / 3] };
  if (o.randomResizedCrop === false) rrc = false;
  else if (o.randomResizedCrop !== undefined) {
    if (!isPlainObject(o.randomResizedCrop)) throw invalidType('options.randomResizedCrop', 'an object or false', o.randomResizedCrop);
    const scale = range('options.randomResizedCrop.scale', o.randomResizedCrop.scale, [0.08, 1], 0);
    if (scale[1] > 1) throw invalidType('options.randomResizedCrop.scale', '[lo, hi] within (0, 1]', o.randomResizedCrop.scale);
    rrc = { scale, ratio: range('options.randomResizedCrop.ratio', o.randomResizedCrop.ratio, [3 / 4, 4 / 3], 0) };
  }

  let hflip = 0.5;
  if (o.hflip !== undefined) {
    if (typeof o.hflip !== 'number' || !(o.hflip >= 0 && o.hflip <= 1)) throw invalidType('options.hflip', 'a probability in [0, 1]', o.hflip);
    hflip = o.hflip;
  }

  const jitter = { brightness: 0, contrast: 0, saturation: 0 };
  if (o.colorJitter !== undefined && o.colorJitter !== false) {
    if (!isPlainObject(o.colorJitter)) throw invalidType('options.colorJitter', 'an object or false', o.colorJitter);
    for (const k of ['brightness', 'contrast', 'saturation'] as const) {
      const v = o.colorJitter[k];
      if (v === undefined) continue;
      if (typeof v !== 'number' || !(v >= 0) || !Number.isFinite(v)) throw invalidType(`options.colorJitter.${k}`, 'a non-negative number', v);
      jitter[k] = v;
    }
  }
  return {
    ...resolveDecodeOptions(o, 'options'),
    size,
    rrc,
    hflip,
    jitter,
    mean: triple('options.mean', o.mean, IMAGENET_MEAN, false),
    std: triple('options.std', o.std, IMAGENET_STD, true),
    interpolation: resolveInterpolation('options.interpolation', o.interpolation),
  };
}

/** torchvision RandomResizedCrop.get_params: 10 tries, then a centre crop clamped to the ratio range. */
export function randomResizedCropBox(
  width: number,
  height: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
  rng: Rng,
): { left: number; top: number; width: number; height: number } {
  const area = width * height;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * uniform(rng, scale[0], scale[1]);
    const aspect = Math.exp(uniform(rng, logRatio[0], logRatio[1]));
    const w = Math.round(Math.sqrt(targetArea * aspect));
    const h = Math.round(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return { top: randInt(rng, 0, height - h), left: randInt(rng, 0, width - w), width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(ratio[0], ratio[1])) h = Math.round(w / Math.min(ratio[0], ratio[1]));
  else if (inRatio > Math.max(ratio[0], ratio[1])) w = Math.round(h * Math.max(ratio[0], ratio[1]));
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), width: w, height: h };
}

/**
 * One training sample: decode, random-resized-crop, maybe mirror, colour
 * jitter, normalise -> [1, 3, size, size]. Deterministic for a given `rng`
 * state (draw order: crop, flip, jitter order and factors).
 */
export async function augment(input: ImageInput, options: AugmentOptions | undefined, rng: Rng): Promise<Tensor> {
  const o = resolve(options);
  if (typeof rng !== 'function') throw invalidType('rng', 'a function returning numbers in [0, 1) (see createRng)', rng);
  const item = classifyInput(input, 'input');
  if (item.kind === 'tensor') throw invalidType('input', 'an image (a normalised Tensor cannot be augmented)', input);
  const img = await decodeRgb(item, o);
  const box = o.rrc ? randomResizedCropBox(img.width, img.height, o.rrc.scale, o.rrc.ratio, rng) : undefined;
  const flop = rng() < o.hflip;
  const [h, w] = o.size;
  const out = await resizeRgb(img, w, h, o.interpolation, { extract: box, flop });
  if (out === img) out.data = out.data.slice(); // jitter works in place; never touch the caller's pixels
  colorJitter(out, o.jitter, rng);
  return toNormalizedTensor(out, { left: 0, top: 0, width: w, height: h }, o.mean, o.std);
}
